//! Exponential backoff with jitter, for every retry loop of the agent: the ACS and telemetry
//! sessions, registration, Docker's event stream, state-change reports and the awslogs
//! shippers.

use std::time::Duration;

/// Exponential backoff with ±20 % jitter.
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
    multiplier: f64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            min,
            max,
            multiplier: 2.0,
        }
    }

    pub(crate) fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = self.next.mul_f64(self.multiplier).min(self.max);
        let jitter: f64 = rand::random::<f64>() * 0.4 + 0.8;
        base.mul_f64(jitter).min(self.max)
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}
