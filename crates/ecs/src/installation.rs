//! The installation's identity and what it must not collide with on a shared host.
//!
//! The id is chosen once, the first time a control plane opens the store, and kept in the
//! store (so every replica of one installation agrees on it); the binary mirrors it into the
//! data dir for `berth down`. Subnet address ranges are hashed from it, so two installations
//! rarely draw the same range; [`HostNetworks`] says which ranges the host already routes
//! (Docker networks included), so a new subnet never takes one of them.

use std::net::Ipv4Addr;

use berth_model::InstallationId;
use berth_store::{Compare, Op};

use crate::{Ecs, EcsError, Result};

const INSTALLATION_KEY: &str = "installation";

/// An IPv4 range routed on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub network: Ipv4Addr,
    pub prefix: u8,
    /// The interface it is routed to (`br-1a2b3c4d5e6f` for a Docker network).
    pub interface: String,
}

impl HostRoute {
    /// Whether the route and the range `network/prefix` share any address.
    pub fn overlaps(&self, network: Ipv4Addr, prefix: u8) -> bool {
        let shorter = self.prefix.min(prefix);
        let mask = u32::MAX.checked_shl(32 - u32::from(shorter)).unwrap_or(0);
        u32::from(self.network) & mask == u32::from(network) & mask
    }
}

/// The ranges this host already routes: what a new subnet's range must stay clear of.
pub trait HostNetworks: Send + Sync {
    fn routes(&self) -> Vec<HostRoute>;
}

/// The kernel's IPv4 routing table (`/proc/net/route`): every interface's routes, Docker's
/// bridges among them even while no container is attached (their routes are kept
/// `linkdown`). The default route is left out.
pub struct ProcNetRoute;

impl HostNetworks for ProcNetRoute {
    fn routes(&self) -> Vec<HostRoute> {
        match std::fs::read_to_string("/proc/net/route") {
            Ok(text) => parse_proc_net_route(&text),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read /proc/net/route; host routes unknown");
                Vec::new()
            }
        }
    }
}

/// Parses `/proc/net/route`: a header line, then `Iface Destination Gateway Flags … Mask …`
/// with addresses as little-endian hex.
pub fn parse_proc_net_route(text: &str) -> Vec<HostRoute> {
    let address = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::from_be);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (interface, destination, mask) = (fields.first()?, fields.get(1)?, fields.get(7)?);
            let mask = address(mask)?;
            if mask == 0 {
                return None; // the default route
            }
            Some(HostRoute {
                network: Ipv4Addr::from(address(destination)? & mask),
                prefix: mask.count_ones() as u8,
                interface: (*interface).to_owned(),
            })
        })
        .collect()
}

impl Ecs {
    /// The installation's id, chosen (at random) and stored the first time it is asked for.
    pub fn installation(&self) -> Result<InstallationId> {
        if let Some(id) = self.installation.get() {
            return Ok(id.clone());
        }
        let id = loop {
            if let Some(kv) = self.store.get(INSTALLATION_KEY)? {
                let text = String::from_utf8_lossy(&kv.value);
                break text
                    .parse::<InstallationId>()
                    .map_err(|e| EcsError::Corrupt(format!("{INSTALLATION_KEY}: {e}")))?;
            }
            let new = InstallationId::from_random(uuid::Uuid::new_v4().as_u128());
            let committed = self.store.txn(
                &[Compare::ModRevision(INSTALLATION_KEY.to_owned(), 0)],
                &[Op::put(INSTALLATION_KEY, new.as_str().as_bytes().to_vec())],
            )?;
            if committed.is_committed() {
                break new;
            }
        };
        Ok(self.installation.get_or_init(|| id).clone())
    }

    /// The host routes a new subnet's range must avoid (none without a [`HostNetworks`]).
    pub(crate) fn host_routes(&self) -> Vec<HostRoute> {
        self.host_networks
            .as_ref()
            .map(|h| h.routes())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn routes_parse_from_the_kernels_table() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            br-e6b249310c5c\t0003FA0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = parse_proc_net_route(table);
        assert_eq!(
            routes,
            vec![
                HostRoute {
                    network: Ipv4Addr::new(10, 250, 3, 0),
                    prefix: 24,
                    interface: "br-e6b249310c5c".into()
                },
                HostRoute {
                    network: Ipv4Addr::new(172, 17, 0, 0),
                    prefix: 16,
                    interface: "docker0".into()
                },
            ]
        );
        let docker0 = &routes[1];
        assert!(docker0.overlaps(Ipv4Addr::new(172, 17, 5, 0), 24));
        assert!(docker0.overlaps(Ipv4Addr::new(172, 0, 0, 0), 8));
        assert!(!docker0.overlaps(Ipv4Addr::new(172, 18, 0, 0), 24));
    }

    #[test]
    fn the_installation_id_is_chosen_once_and_kept_in_the_store() {
        let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::MemStore::new());
        let id = Ecs::new(store.clone()).installation().unwrap();
        assert_eq!(Ecs::new(store.clone()).installation().unwrap(), id);
        let other = Ecs::new(Arc::new(berth_store::MemStore::new()))
            .installation()
            .unwrap();
        assert_ne!(other, id);
    }
}
