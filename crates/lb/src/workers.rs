//! Threads that serve client connections of plain-HTTP ALB listeners, each with a
//! single-threaded runtime of its own, as HAProxy and nginx run: a connection stays on the
//! thread it was handed to for its life (its target connections with it), so nothing wakes
//! across threads on the request path and no task migrates between cores. The accept loop
//! hands connections out in turn.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

thread_local! {
    /// The worker this thread is (`None` off the workers).
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The worker the calling thread is, 0 off the workers (what per-worker state is keyed by).
pub(crate) fn current() -> usize {
    WORKER.with(|w| w.get().unwrap_or(0))
}

pub(crate) struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl Workers {
    /// `n` threads, each running until `shutdown` is cancelled. None when no thread could be
    /// started (the caller's runtime serves then).
    pub fn start(n: usize, shutdown: &CancellationToken) -> Option<Workers> {
        let mut handles = Vec::new();
        for index in 0..n {
            let (tx, rx) = std::sync::mpsc::channel();
            let stop = shutdown.clone();
            let started = std::thread::Builder::new()
                .name(format!("berth-lb-{index}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(Some(index)));
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot start a load balancer worker");
                            return;
                        }
                    };
                    let _ = tx.send(runtime.handle().clone());
                    runtime.block_on(stop.cancelled());
                });
            if started.is_err() {
                break;
            }
            match rx.recv() {
                Ok(handle) => handles.push(handle),
                Err(_) => break,
            }
        }
        (!handles.is_empty()).then(|| Workers {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    /// Serves `stream` on the next worker: `serve` gets it registered with that worker's
    /// runtime.
    pub fn hand<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Ok(std_stream) = stream.into_std() else {
            return;
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        // Registered with the worker's reactor: made inside its runtime.
        self.handles[i].spawn(async move {
            if let Ok(stream) = TcpStream::from_std(std_stream) {
                serve(stream).await;
            }
        });
    }
}
