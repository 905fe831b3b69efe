//! Every load balancer, target group and listener of the installation, read in one pass:
//! what the data plane is built from. Health records and address claims are left out (the
//! data plane writes the first and never needs the second).

use crate::keys::{ElbScope, ROOT};
use crate::{Elbv2, Listener, LoadBalancer, Result, TargetGroup};

/// ELBv2's records, each with the account and region it belongs to.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub load_balancers: Vec<(ElbScope, LoadBalancer)>,
    pub target_groups: Vec<(ElbScope, TargetGroup)>,
    pub listeners: Vec<(ElbScope, Listener)>,
}

/// Whether a change to `key` can change what the data plane serves (health records, which
/// the data plane itself writes, cannot).
pub fn shapes_data_plane(key: &str) -> bool {
    match key.strip_prefix(ROOT).and_then(record_kind) {
        Some((_, kind)) => matches!(kind, "loadbalancer" | "targetgroup" | "listener"),
        None => false,
    }
}

/// `{account}/{region}/{kind}/…` → the scope and the kind.
fn record_kind(rest: &str) -> Option<(ElbScope, &str)> {
    let mut parts = rest.splitn(4, '/');
    let (account, region, kind) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((ElbScope::new(account, region), kind))
}

impl Elbv2 {
    /// Every record the data plane serves, in every account and region.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        berth_store::scan(self.store(), ROOT, None, |kv| {
            let Some((scope, kind)) = kv.key.strip_prefix(ROOT).and_then(record_kind) else {
                return Ok(true);
            };
            match kind {
                "loadbalancer" => snapshot
                    .load_balancers
                    .push((scope, berth_store::decode(kv)?)),
                "targetgroup" => snapshot
                    .target_groups
                    .push((scope, berth_store::decode(kv)?)),
                "listener" => snapshot.listeners.push((scope, berth_store::decode(kv)?)),
                _ => {}
            }
            Ok::<_, crate::Elbv2Error>(true)
        })?;
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_records_the_data_plane_serves_shape_it() {
        assert!(shapes_data_plane(
            "elbv2/000000000000/us-east-1/loadbalancer/web"
        ));
        assert!(shapes_data_plane(
            "elbv2/000000000000/us-east-1/listener/abc/def"
        ));
        assert!(!shapes_data_plane(
            "elbv2/000000000000/us-east-1/health/abc/10.0.0.1:80"
        ));
        assert!(!shapes_data_plane("elbv2/addresses/127.64.0.9"));
        assert!(!shapes_data_plane("ecs/000000000000/us-east-1/task/x"));
    }
}
