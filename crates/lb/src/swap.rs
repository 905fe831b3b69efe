//! An atomically replaced `Arc`: readers take a snapshot, a writer swaps in a new value;
//! requests in flight keep the snapshot they started with.

use std::sync::{Arc, PoisonError, RwLock};

pub(crate) struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    pub fn new(value: T) -> Self {
        Self(RwLock::new(Arc::new(value)))
    }

    /// A std lock is fine here: it is held only to clone or replace an `Arc`, never across
    /// an `.await`.
    pub fn load(&self) -> Arc<T> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn store(&self, value: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }
}
