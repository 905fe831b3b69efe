//! What the data plane counts, for the CloudWatch metrics ELBv2 publishes
//! (`AWS/ApplicationELB`, `AWS/NetworkELB`): per load balancer its connections (flows) and
//! requests and the answers it made itself (HTTPCode_ELB_*), per target group its targets'
//! answers by class, their response time, failed connections, and its healthy and unhealthy
//! hosts. Counters are cumulative since the data plane started; a publisher takes the
//! difference between two [`DataPlane::traffic`](crate::DataPlane::traffic) snapshots.
//! Response times are also kept as a histogram ([`RESPONSE_TIME_BINS`] bins 2 % wide on a
//! log scale), so TargetResponseTime can be published as values and counts and its
//! percentiles read back.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::StatusCode;

/// A load balancer's counters, shared by its listeners.
#[derive(Debug, Default)]
pub(crate) struct BalancerCounters {
    connections: AtomicU64,
    closed: AtomicU64,
    requests: AtomicU64,
    elb: [AtomicU64; 3],
    elb_502: AtomicU64,
    elb_503: AtomicU64,
    elb_504: AtomicU64,
    processed_bytes: AtomicU64,
}

/// A target group's counters, shared by its targets.
#[derive(Debug, Default)]
pub(crate) struct GroupCounters {
    requests: AtomicU64,
    target: [AtomicU64; 4],
    response_micros: AtomicU64,
    responses: AtomicU64,
    response_bins: ResponseBins,
    connection_errors: AtomicU64,
}

/// How many response time bins a target group keeps: bin 0 holds answers within 1 µs,
/// bin `k` those within [1.02^(k-1), 1.02^k) µs, the last everything from ~100 s on.
pub const RESPONSE_TIME_BINS: usize = 931;
const BIN_RATIO: f64 = 1.02;

/// The bin of an answer `micros` long.
pub fn response_time_bin(micros: u64) -> usize {
    if micros <= 1 {
        return 0;
    }
    let bin = ((micros as f64).ln() / BIN_RATIO.ln()).floor() as usize + 1;
    bin.min(RESPONSE_TIME_BINS - 1)
}

/// The value a bin stands for, in seconds: the geometric middle of its bounds (within 1 %
/// of any time in it).
pub fn response_time_bin_seconds(bin: usize) -> f64 {
    if bin == 0 {
        return 1e-6;
    }
    BIN_RATIO.powf(bin as f64 - 0.5) / 1e6
}

/// A target group's answers counted per response time bin.
#[derive(Debug)]
struct ResponseBins(Box<[AtomicU64]>);

impl Default for ResponseBins {
    fn default() -> Self {
        ResponseBins((0..RESPONSE_TIME_BINS).map(|_| AtomicU64::new(0)).collect())
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl BalancerCounters {
    /// Counts a client connection (an NLB flow) for as long as `serve` runs.
    pub fn connection<F: Future<Output = ()>>(
        self: Arc<Self>,
        serve: F,
    ) -> impl Future<Output = ()> {
        add(&self.connections, 1);
        async move {
            let _open = Open(self);
            serve.await;
        }
    }

    /// A request the load balancer received.
    pub fn request(&self) {
        add(&self.requests, 1);
    }

    /// An answer the load balancer made itself (fixed response, redirect, 502/503/504).
    pub fn answered(&self, status: StatusCode) {
        if let Some(class) = status
            .as_u16()
            .checked_div(100)
            .and_then(|c| c.checked_sub(3))
            && let Some(counter) = self.elb.get(usize::from(class))
        {
            add(counter, 1);
        }
        match status {
            StatusCode::BAD_GATEWAY => add(&self.elb_502, 1),
            StatusCode::SERVICE_UNAVAILABLE => add(&self.elb_503, 1),
            StatusCode::GATEWAY_TIMEOUT => add(&self.elb_504, 1),
            _ => {}
        }
    }

    /// Bytes relayed either way (NLB flows).
    pub fn processed(&self, bytes: u64) {
        add(&self.processed_bytes, bytes);
    }

    pub fn snapshot(&self) -> BalancerTraffic {
        let connections = get(&self.connections);
        BalancerTraffic {
            new_connections: connections,
            active_connections: connections.saturating_sub(get(&self.closed)),
            requests: get(&self.requests),
            elb_3xx: get(&self.elb[0]),
            elb_4xx: get(&self.elb[1]),
            elb_5xx: get(&self.elb[2]),
            elb_502: get(&self.elb_502),
            elb_503: get(&self.elb_503),
            elb_504: get(&self.elb_504),
            processed_bytes: get(&self.processed_bytes),
        }
    }
}

/// Counts the connection closed when the serving future ends (or is dropped).
struct Open(Arc<BalancerCounters>);

impl Drop for Open {
    fn drop(&mut self) {
        add(&self.0.closed, 1);
    }
}

impl GroupCounters {
    /// A target's answer (its head received `elapsed` after the request left).
    pub fn answered(&self, status: StatusCode, elapsed: Duration) {
        add(&self.requests, 1);
        if let Some(class) = status
            .as_u16()
            .checked_div(100)
            .and_then(|c| c.checked_sub(2))
            && let Some(counter) = self.target.get(usize::from(class))
        {
            add(counter, 1);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        add(&self.response_micros, micros);
        add(&self.responses, 1);
        add(&self.response_bins.0[response_time_bin(micros)], 1);
    }

    /// A request routed to the group that no target answered (refused, reset, timed out).
    pub fn failed(&self) {
        add(&self.requests, 1);
        add(&self.connection_errors, 1);
    }

    pub fn snapshot(&self, healthy_hosts: u64, unhealthy_hosts: u64) -> TargetGroupTraffic {
        TargetGroupTraffic {
            requests: get(&self.requests),
            target_2xx: get(&self.target[0]),
            target_3xx: get(&self.target[1]),
            target_4xx: get(&self.target[2]),
            target_5xx: get(&self.target[3]),
            response_time_micros: get(&self.response_micros),
            responses: get(&self.responses),
            response_bins: self.response_bins.0.iter().map(get).collect(),
            connection_errors: get(&self.connection_errors),
            healthy_hosts,
            unhealthy_hosts,
        }
    }
}

/// A load balancer's traffic since the data plane started (`active_connections`: now).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BalancerTraffic {
    /// Client connections accepted (NewConnectionCount; NLB: NewFlowCount).
    pub new_connections: u64,
    /// Client connections open now (ActiveConnectionCount; NLB: ActiveFlowCount).
    pub active_connections: u64,
    /// Requests received (RequestCount).
    pub requests: u64,
    /// HTTPCode_ELB_3XX/4XX/5XX_Count and HTTPCode_ELB_502/503/504_Count.
    pub elb_3xx: u64,
    pub elb_4xx: u64,
    pub elb_5xx: u64,
    pub elb_502: u64,
    pub elb_503: u64,
    pub elb_504: u64,
    /// NLB flows' bytes, both ways (ProcessedBytes).
    pub processed_bytes: u64,
}

/// A target group's traffic since the data plane started (hosts: now).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupTraffic {
    /// Requests routed to the group (RequestCount by TargetGroup).
    pub requests: u64,
    /// HTTPCode_Target_2XX..5XX_Count.
    pub target_2xx: u64,
    pub target_3xx: u64,
    pub target_4xx: u64,
    pub target_5xx: u64,
    /// TargetResponseTime: the sum of the answers' times and how many there were.
    pub response_time_micros: u64,
    pub responses: u64,
    /// The answers per response time bin ([`response_time_bin`]; empty: none yet).
    pub response_bins: Vec<u64>,
    /// TargetConnectionErrorCount.
    pub connection_errors: u64,
    /// HealthyHostCount, UnHealthyHostCount.
    pub healthy_hosts: u64,
    pub unhealthy_hosts: u64,
}

impl TargetGroupTraffic {
    /// The answers since `earlier` as (seconds, how many) per bin that has any, fastest first.
    pub fn response_times_since(&self, earlier: &TargetGroupTraffic) -> Vec<(f64, u64)> {
        self.response_bins
            .iter()
            .enumerate()
            .filter_map(|(bin, now)| {
                let before = earlier.response_bins.get(bin).copied().unwrap_or(0);
                let n = now.saturating_sub(before);
                (n > 0).then(|| (response_time_bin_seconds(bin), n))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_count_while_served_and_answers_by_class() {
        let lb = Arc::new(BalancerCounters::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(lb.clone().connection(async {
            let _ = rx.await;
        }));
        tokio::task::yield_now().await;
        assert_eq!(lb.snapshot().active_connections, 1);
        tx.send(()).unwrap();
        served.await.unwrap();
        lb.request();
        lb.answered(StatusCode::SERVICE_UNAVAILABLE);
        lb.answered(StatusCode::MOVED_PERMANENTLY);
        lb.answered(StatusCode::OK); // a fixed 200: no ELB class of its own
        let s = lb.snapshot();
        assert_eq!((s.new_connections, s.active_connections), (1, 0));
        assert_eq!((s.elb_3xx, s.elb_4xx, s.elb_5xx, s.elb_503), (1, 0, 1, 1));
        assert_eq!(s.requests, 1);

        let group = GroupCounters::default();
        group.answered(StatusCode::OK, Duration::from_millis(3));
        group.answered(StatusCode::INTERNAL_SERVER_ERROR, Duration::from_millis(5));
        group.failed();
        let g = group.snapshot(2, 1);
        assert_eq!(g.requests, 3);
        assert_eq!((g.target_2xx, g.target_5xx, g.connection_errors), (1, 1, 1));
        assert_eq!((g.response_time_micros, g.responses), (8_000, 2));
        assert_eq!((g.healthy_hosts, g.unhealthy_hosts), (2, 1));
        assert_eq!(
            g.response_times_since(&TargetGroupTraffic::default()).len(),
            2
        );
    }

    #[test]
    fn response_times_are_binned_within_one_percent() {
        for micros in [2, 17, 999, 1_000, 3_456, 250_000, 1_234_567, 60_000_000] {
            let seconds = micros as f64 / 1e6;
            let shown = response_time_bin_seconds(response_time_bin(micros));
            assert!(
                (shown - seconds).abs() / seconds < 0.01,
                "{micros} µs shown as {shown} s"
            );
        }
        assert_eq!(response_time_bin(0), 0);
        assert_eq!(response_time_bin(u64::MAX), RESPONSE_TIME_BINS - 1);
        // A period's answers: the difference of two snapshots, per bin.
        let group = GroupCounters::default();
        group.answered(StatusCode::OK, Duration::from_millis(3));
        let before = group.snapshot(1, 0);
        group.answered(StatusCode::OK, Duration::from_millis(3));
        group.answered(StatusCode::OK, Duration::from_millis(3));
        group.answered(StatusCode::OK, Duration::from_millis(80));
        let times = group.snapshot(1, 0).response_times_since(&before);
        assert_eq!(times.iter().map(|t| t.1).collect::<Vec<_>>(), [2, 1]);
        assert!((times[0].0 - 0.003).abs() < 0.00003, "{times:?}");
        assert!((times[1].0 - 0.080).abs() < 0.0008, "{times:?}");
    }
}
