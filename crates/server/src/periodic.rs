//! The server's periodic housekeeping: one helper for every "every N seconds, do this on the
//! blocking pool, log what it did" loop, each ending with the server.

use std::time::Duration;

use tokio::sync::watch;

/// Runs `work` every `period` (first after one period) on tokio's blocking pool until
/// `shutdown` turns true; `Ok(n)` with n > 0 is logged as `n` things done, errors as warnings.
pub fn every<E: std::fmt::Display + Send + 'static>(
    what: &'static str,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    work: impl Fn() -> Result<usize, E> + Clone + Send + Sync + 'static,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => return,
            }
            match tokio::task::spawn_blocking(work.clone()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(count = n, "{what}"),
                Ok(Err(e)) => tracing::warn!(error = %e, "{what}: failed"),
                Err(e) => tracing::error!(error = %e, "{what}: panicked"),
            }
        }
    });
}
