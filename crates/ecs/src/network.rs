//! awsvpc networking in the control plane: RunTask's `networkConfiguration` (checked with
//! ECS's messages), subnets (EC2's, `vpc_subnets.rs`; without EC2 a subnet id maps to a /24
//! chosen the first time the id is used),
//! the addresses in them (IPAM: one key per assigned address, written in the transaction that
//! creates the task and deleted in the one that stops it, so an address is never handed out
//! twice and is known before any agent sees the task), and the task's ENI attachment.
//!
//! Keys are the installation's, not an account's, because the Docker networks they become
//! are the host's: `net/subnet/{id}` → the subnet, `net/cidr/{network address}` → the subnet
//! id holding that /24, `net/ip/{subnet id}/{address}` → the task holding the address.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use berth_model::Scope;
use berth_model::ecs::LaunchType;
use berth_model::ecs::{AttachmentStatus, EcsArn};
use berth_store::{Compare, Op, Store};
use serde::{Deserialize, Serialize};

use crate::installation::HostRoute;
use crate::keys::{SUBNET_PREFIX, cidr_key, ip_key, ip_prefix};
use crate::{Ecs, EcsError, Result, decode, encode};

/// The range subnets' /24s are taken from: 10.192.0.0/10, 16 384 of them, clear of Docker's
/// default pools (172.17–31/16, 192.168/16). A subnet's /24 starts at a slot hashed from the
/// installation's id and the subnet's, so installations sharing a Docker host (CI jobs, two
/// checkouts, a test suite's servers) rarely draw the same one for the same subnet id; a slot
/// already taken in this store, or overlapping a range the host routes (another
/// installation's network, anything else), moves to the next free one. Once chosen, the
/// range is stored: every host of the installation uses the same one.
const POOL_BASE: u32 = 10 << 24 | 192 << 16;
const POOL_SLOTS: u32 = 1 << 14;
/// `.1` is the subnet's gateway (the Docker bridge), `.255` its broadcast address.
const FIRST_HOST: u32 = 2;
const LAST_HOST: u32 = 254;
pub const ENI_ATTACHMENT: &str = "ElasticNetworkInterface";

/// RunTask's `networkConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsVpcConfiguration {
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<String>,
}

const MAX_SUBNETS: usize = 16;
const MAX_SECURITY_GROUPS: usize = 5;

/// Checks a request's network configuration against the task definition's network mode and
/// the launch type, with ECS's messages; the awsvpc configuration an awsvpc task runs with.
///
/// Messages: "seen" ones are ECS's own (quoted in public issues); "pattern" ones carry a
/// seen message's wording over to a sibling case.
pub fn check_network_configuration(
    network_mode: Option<&str>,
    launch_type: LaunchType,
    configuration: Option<&NetworkConfiguration>,
) -> Result<Option<AwsVpcConfiguration>> {
    let invalid = |m: String| Err(EcsError::InvalidParameter(m));
    if network_mode != Some("awsvpc") {
        // seen (aws-actions/amazon-ecs-deploy-task-definition#616)
        return match configuration {
            None => Ok(None),
            Some(_) => invalid(
                "Network Configuration is not valid for the given networkMode of this task definition."
                    .into(),
            ),
        };
    }
    // seen (aws-actions/amazon-ecs-deploy-task-definition#802)
    let Some(vpc) = configuration.and_then(|c| c.awsvpc_configuration.clone()) else {
        return invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.".into(),
        );
    };
    // pattern
    if vpc.subnets.is_empty() {
        return invalid("subnets can not be empty.".into());
    }
    if vpc.subnets.len() > MAX_SUBNETS {
        return invalid(format!(
            "subnets can have at most {MAX_SUBNETS} items; {} were given.",
            vpc.subnets.len()
        ));
    }
    if vpc.security_groups.len() > MAX_SECURITY_GROUPS {
        return invalid(format!(
            "securityGroups can have at most {MAX_SECURITY_GROUPS} items; {} were given.",
            vpc.security_groups.len()
        ));
    }
    for subnet in &vpc.subnets {
        if !is_resource_id(subnet, "subnet-") {
            return invalid(format!(
                "Error retrieving subnet information for [{subnet}]: The subnet ID '{subnet}' is malformed"
            ));
        }
    }
    for group in &vpc.security_groups {
        if !is_resource_id(group, "sg-") {
            return invalid(format!(
                "Error retrieving security group information for [{group}]: The security group ID '{group}' is malformed"
            ));
        }
    }
    match vpc.assign_public_ip.as_deref() {
        None | Some("DISABLED") => {}
        // seen (hashicorp/waypoint#643): only Fargate tasks get public addresses.
        Some("ENABLED") if launch_type != LaunchType::Fargate => {
            return invalid("Assign public IP is not supported for this launch type.".into());
        }
        Some("ENABLED") => {}
        Some(other) => {
            return invalid(format!(
                "Invalid value '{other}' for assignPublicIp. Valid values are ENABLED and DISABLED."
            ));
        }
    }
    Ok(Some(vpc))
}

/// `subnet-0abc…`, `sg-default`: the prefix, then lower-case letters and digits.
fn is_resource_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 64
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// A subnet tasks use: EC2's (its block, VPC and zone), or without EC2 a Berth-chosen /24.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub id: String,
    /// `10.0.1.0/24`.
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

impl Subnet {
    pub(crate) fn network(&self) -> Ipv4Addr {
        self.cidr
            .split_once('/')
            .and_then(|(a, _)| a.parse().ok())
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// The prefix length (24 when the record has none).
    pub fn prefix(&self) -> u8 {
        self.cidr
            .split_once('/')
            .and_then(|(_, p)| p.parse().ok())
            .filter(|p| *p <= 32)
            .unwrap_or(24)
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix()))
            .unwrap_or(0)
    }

    /// The subnet's gateway, the first address after the network's (the bridge's address on
    /// the host; EC2's VPC router address).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }

    /// The gateway with the prefix length, as ACS gives it to the agent (`10.0.1.1/24`).
    pub fn gateway_cidr(&self) -> String {
        format!("{}/{}", self.gateway(), self.prefix())
    }

    fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + n)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether the two subnets' blocks share any address.
    pub(crate) fn overlaps(&self, other: &Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.network()) & mask == u32::from(other.network()) & mask
    }

    /// The offsets of the addresses tasks may hold: in EC2's subnets all but the four
    /// first and the last (AWS keeps them), in a Berth-chosen /24 all but the network, the
    /// gateway and the broadcast address.
    fn hosts(&self) -> std::ops::RangeInclusive<u32> {
        if self.vpc_id.is_some() {
            let size = 1u64 << (32 - u32::from(self.prefix()));
            4..=u32::try_from(size.saturating_sub(2)).unwrap_or(u32::MAX)
        } else {
            FIRST_HOST..=LAST_HOST
        }
    }
}

/// FNV-1a: stable across builds and platforms (std's hasher is not).
fn slot_of(id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % POOL_SLOTS
}

fn slot_network(slot: u32) -> Ipv4Addr {
    Ipv4Addr::from(POOL_BASE + (slot << 8))
}

impl Ecs {
    /// The first /24 from the subnet's hashed slot on that neither this store holds nor a
    /// host route overlaps (saying so in the log when routes made it move on).
    pub(crate) fn free_range(&self, id: &str, routes: &[HostRoute]) -> Result<Ipv4Addr> {
        let start = slot_of(&format!("{}/{id}", self.installation()?));
        let mut routed: Option<(Ipv4Addr, &HostRoute)> = None;
        for offset in 0..POOL_SLOTS {
            let network = slot_network((start + offset) % POOL_SLOTS);
            if self.store.get(&cidr_key(network))?.is_some() {
                continue;
            }
            if let Some(route) = routes.iter().find(|r| r.overlaps(network, 24)) {
                routed.get_or_insert((network, route));
                continue;
            }
            if let Some((first, route)) = routed {
                tracing::info!(
                    subnet = id,
                    skipped = %format!("{first}/24"),
                    routed_on = %route.interface,
                    range = %format!("{network}/24"),
                    "a subnet's range is in use on this host (another installation's network, or anything else routed here); took a free one"
                );
            }
            return Ok(network);
        }
        Err(EcsError::InvalidParameter(format!(
            "No address range is left for subnet {id}: all {POOL_SLOTS} subnets are in use."
        )))
    }

    /// Moves each subnet that holds no address now and whose range a host route overlaps
    /// (other than the installation's own networks, whose interfaces are `own`) to a free
    /// range: a network that appeared on the host since the range was chosen (another
    /// installation's, or an older Berth's that named networks without the installation)
    /// would make every task on the subnet fail. Run at start, before requests are served.
    /// Returns (subnet id, old range, new range) for each move.
    pub fn move_subnets_off_host_routes(
        &self,
        own: &std::collections::HashSet<String>,
    ) -> Result<Vec<(String, String, String)>> {
        let routes: Vec<HostRoute> = self
            .host_routes()
            .into_iter()
            .filter(|r| !own.contains(&r.interface))
            .collect();
        let mut moved = Vec::new();
        for kv in self.store.range(SUBNET_PREFIX, None, 0)? {
            let subnet: Subnet = decode(&kv)?;
            // EC2's subnets keep their blocks (a clash refuses them when first used).
            if subnet.vpc_id.is_some()
                || !routes.iter().any(|r| r.overlaps(subnet.network(), 24))
                || !self
                    .store
                    .range(&ip_prefix(&subnet.id), None, 1)?
                    .is_empty()
            {
                continue;
            }
            let network = self.free_range(&subnet.id, &routes)?;
            let new = Subnet {
                id: subnet.id.clone(),
                cidr: format!("{network}/24"),
                ..subnet.clone()
            };
            let committed = self.store.txn(
                &[
                    Compare::ModRevision(kv.key.clone(), kv.mod_revision),
                    Compare::ModRevision(cidr_key(network), 0),
                ],
                &[
                    Op::put(kv.key.clone(), encode(&new)),
                    Op::delete(cidr_key(subnet.network())),
                    Op::put(cidr_key(network), subnet.id.as_bytes().to_vec()),
                ],
            )?;
            if committed.is_committed() {
                tracing::info!(subnet = %subnet.id, from = %subnet.cidr, to = %new.cidr, "moved a subnet off a range now routed on this host");
                moved.push((subnet.id, subnet.cidr, new.cidr));
            }
        }
        Ok(moved)
    }
}

/// The addresses in use in the subnets one placement batch assigns from: read from the store
/// once per subnet, then kept up to date with the batch's own picks.
#[derive(Default)]
pub(crate) struct AddressBook {
    used: HashMap<String, BTreeSet<u32>>,
}

/// An address a task will hold: the key and compare that claim it in the task's transaction.
pub(crate) struct Assignment {
    pub subnet: Subnet,
    pub ip: Ipv4Addr,
}

impl Assignment {
    pub(crate) fn claim(&self, owner: &str) -> (Compare, Op) {
        let key = ip_key(&self.subnet.id, self.ip);
        (
            Compare::ModRevision(key.clone(), 0),
            Op::put(key, owner.as_bytes().to_vec()),
        )
    }
}

impl AddressBook {
    fn used(&mut self, store: &dyn Store, subnet: &Subnet) -> Result<&mut BTreeSet<u32>> {
        if !self.used.contains_key(&subnet.id) {
            let prefix = ip_prefix(&subnet.id);
            let mut used = BTreeSet::new();
            for kv in store.range(&prefix, None, 0)? {
                if let Ok(ip) = kv.key[prefix.len()..].parse::<Ipv4Addr>()
                    && subnet.contains(ip)
                {
                    used.insert(u32::from(ip) - u32::from(subnet.network()));
                }
            }
            self.used.insert(subnet.id.clone(), used);
        }
        Ok(self.used.get_mut(&subnet.id).expect("inserted"))
    }

    /// How many addresses are free in these subnets together.
    pub(crate) fn free(&mut self, store: &dyn Store, subnets: &[Subnet]) -> Result<usize> {
        let mut free = 0;
        for subnet in subnets {
            let hosts = subnet.hosts();
            let used = self.used(store, subnet)?;
            let held = used.range(hosts.clone()).count();
            free += (hosts.count()).saturating_sub(held);
        }
        Ok(free)
    }

    /// The lowest free address of the first subnet that has one.
    pub(crate) fn take(
        &mut self,
        store: &dyn Store,
        subnets: &[Subnet],
    ) -> Result<Option<Assignment>> {
        for subnet in subnets {
            let hosts = subnet.hosts();
            let used = self.used(store, subnet)?;
            if let Some(n) = hosts.into_iter().find(|n| !used.contains(n)) {
                used.insert(n);
                return Ok(Some(Assignment {
                    subnet: subnet.clone(),
                    ip: subnet.host(n),
                }));
            }
        }
        Ok(None)
    }
}

/// A task attachment as DescribeTasks shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: AttachmentStatus,
    pub details: Vec<AttachmentDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentDetail {
    pub name: String,
    pub value: String,
}

impl Attachment {
    pub fn detail(&self, name: &str) -> Option<&str> {
        self.details
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }

    pub fn arn(&self, scope: &Scope) -> String {
        EcsArn::attachment(scope, &self.id).into_string()
    }

    pub fn is_eni(&self) -> bool {
        self.kind == ENI_ATTACHMENT
    }

    /// The subnet and address an ENI attachment holds.
    pub(crate) fn address(&self) -> Option<(&str, Ipv4Addr)> {
        Some((
            self.detail("subnetId")?,
            self.detail("privateIPv4Address")?.parse().ok()?,
        ))
    }
}

/// The ENI attachment of a new task holding `assignment`. The interface id comes from the
/// task id, the MAC address from the IP address as Docker's bridge driver derives it
/// (`02:42` and the four address bytes), so the infra container's real MAC is the one shown
/// (the agent also asks Docker for it explicitly, which newer Engines honour).
pub(crate) fn eni_attachment(scope: &Scope, task_id: &str, assignment: &Assignment) -> Attachment {
    let ip = assignment.ip;
    let [a, b, c, d] = ip.octets();
    let dns_suffix = if scope.region.as_str() == "us-east-1" {
        "ec2.internal".to_string()
    } else {
        format!("{}.compute.internal", scope.region)
    };
    let detail = |name: &str, value: String| AttachmentDetail {
        name: name.into(),
        value,
    };
    Attachment {
        id: uuid::Uuid::new_v4().to_string(),
        kind: ENI_ATTACHMENT.into(),
        status: AttachmentStatus::Precreated,
        details: vec![
            detail("subnetId", assignment.subnet.id.clone()),
            detail(
                "networkInterfaceId",
                format!("eni-{}", &task_id[..task_id.len().min(17)]),
            ),
            detail(
                "macAddress",
                format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"),
            ),
            detail("privateDnsName", format!("ip-{a}-{b}-{c}-{d}.{dns_suffix}")),
            detail("privateIPv4Address", ip.to_string()),
        ],
    }
}

/// What releasing a stopped task's addresses writes.
pub(crate) fn release_ops(attachments: &[Attachment]) -> Vec<Op> {
    attachments
        .iter()
        .filter(|a| a.is_eni())
        .filter_map(Attachment::address)
        .map(|(subnet, ip)| Op::delete(ip_key(subnet, ip)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn config(subnets: &[&str], groups: &[&str], public: Option<&str>) -> NetworkConfiguration {
        NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: subnets.iter().map(|s| s.to_string()).collect(),
                security_groups: groups.iter().map(|s| s.to_string()).collect(),
                assign_public_ip: public.map(str::to_string),
            }),
        }
    }

    fn message(r: Result<Option<AwsVpcConfiguration>>) -> String {
        match r {
            Err(EcsError::InvalidParameter(m)) => m,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn awsvpc_needs_a_configuration_and_others_refuse_one() {
        assert_eq!(
            message(check_network_configuration(
                Some("awsvpc"),
                LaunchType::Ec2,
                None
            )),
            "Network Configuration must be provided when networkMode 'awsvpc' is specified."
        );
        assert_eq!(
            message(check_network_configuration(
                Some("awsvpc"),
                LaunchType::Ec2,
                Some(&NetworkConfiguration::default())
            )),
            "Network Configuration must be provided when networkMode 'awsvpc' is specified."
        );
        for mode in [None, Some("bridge"), Some("host"), Some("none")] {
            assert_eq!(
                message(check_network_configuration(
                    mode,
                    LaunchType::Ec2,
                    Some(&config(&["subnet-1"], &[], None))
                )),
                "Network Configuration is not valid for the given networkMode of this task definition."
            );
            assert_eq!(
                check_network_configuration(mode, LaunchType::Ec2, None).unwrap(),
                None
            );
        }
        let ok = config(
            &["subnet-0abc", "subnet-default"],
            &["sg-default"],
            Some("DISABLED"),
        );
        assert_eq!(
            check_network_configuration(Some("awsvpc"), LaunchType::Ec2, Some(&ok)).unwrap(),
            ok.awsvpc_configuration
        );
    }

    #[test]
    fn subnets_groups_and_public_ip_are_checked() {
        let check = |c: NetworkConfiguration| {
            check_network_configuration(Some("awsvpc"), LaunchType::Ec2, Some(&c))
        };
        assert_eq!(
            message(check(config(&[], &[], None))),
            "subnets can not be empty."
        );
        let many: Vec<String> = (0..17).map(|i| format!("subnet-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(message(check(config(&many, &[], None))).contains("at most 16"));
        assert!(check(config(&many[..16], &[], None)).is_ok());
        let groups = ["sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"];
        assert!(message(check(config(&["subnet-1"], &groups, None))).contains("at most 5"));
        assert!(check(config(&["subnet-1"], &groups[..5], None)).is_ok());
        assert!(message(check(config(&["vpc-1"], &[], None))).contains("'vpc-1' is malformed"));
        assert!(message(check(config(&["subnet-"], &[], None))).contains("malformed"));
        assert!(message(check(config(&["subnet-1"], &["group"], None))).contains("malformed"));
        assert_eq!(
            message(check(config(&["subnet-1"], &[], Some("ENABLED")))),
            "Assign public IP is not supported for this launch type."
        );
        assert!(message(check(config(&["subnet-1"], &[], Some("YES")))).contains("assignPublicIp"));
        assert!(
            check_network_configuration(
                Some("awsvpc"),
                LaunchType::Fargate,
                Some(&config(&["subnet-1"], &[], Some("ENABLED")))
            )
            .is_ok()
        );
    }

    fn scope() -> Scope {
        Scope::new(
            "000000000000".parse().unwrap(),
            "us-east-1".parse().unwrap(),
        )
    }

    fn ecs() -> Ecs {
        Ecs::new(Arc::new(berth_store::MemStore::new()))
    }

    /// An installation with a known id.
    fn installation(id: &str) -> Ecs {
        let store = Arc::new(berth_store::MemStore::new());
        berth_store::Store::put(&*store, "installation", id.as_bytes()).unwrap();
        Ecs::new(store)
    }

    struct Routes(Vec<HostRoute>);

    impl crate::HostNetworks for Routes {
        fn routes(&self) -> Vec<HostRoute> {
            self.0.clone()
        }
    }

    fn route(cidr: &str, interface: &str) -> HostRoute {
        let (network, prefix) = cidr.split_once('/').unwrap();
        HostRoute {
            network: network.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
            interface: interface.into(),
        }
    }

    #[test]
    fn installations_draw_different_ranges_and_avoid_what_the_host_routes() {
        let a = installation("insta00001")
            .ensure_subnet(&scope(), "subnet-default")
            .unwrap();
        // The same installation (another host of it, a restart) maps the id to the same range.
        assert_eq!(
            installation("insta00001")
                .ensure_subnet(&scope(), "subnet-default")
                .unwrap(),
            a
        );
        let b = installation("instb00002")
            .ensure_subnet(&scope(), "subnet-default")
            .unwrap();
        assert_ne!(a.cidr, b.cidr, "two installations, one subnet id");

        // The host routes a's range (another installation's network): a third installation
        // drawing the same slot moves on.
        let host = Arc::new(Routes(vec![route(&a.cidr, "br-0123456789ab")]));
        let c = installation("insta00001")
            .with_host_networks(host.clone())
            .ensure_subnet(&scope(), "subnet-default")
            .unwrap();
        assert_ne!(c.cidr, a.cidr);
        // A wide route covering the start of the pool is skipped whole.
        let wide = Arc::new(Routes(vec![route("10.192.0.0/11", "tun0")]));
        let d = ecs()
            .with_host_networks(wide)
            .ensure_subnet(&scope(), "subnet-x")
            .unwrap();
        assert!(
            !route("10.192.0.0/11", "tun0").overlaps(d.network(), 24),
            "{}",
            d.cidr
        );
    }

    #[test]
    fn an_idle_subnet_moves_off_a_range_the_host_now_routes() {
        let ecs = installation("insta00001");
        let idle = ecs.ensure_subnet(&scope(), "subnet-idle").unwrap();
        let busy = ecs.ensure_subnet(&scope(), "subnet-busy").unwrap();
        let mut book = AddressBook::default();
        let held = book
            .take(&*ecs.store, std::slice::from_ref(&busy))
            .unwrap()
            .unwrap();
        let (compare, op) = held.claim("task-1");
        assert!(ecs.store.txn(&[compare], &[op]).unwrap().is_committed());
        let own = route(&idle.cidr, "br-000000000001");
        let host = Arc::new(Routes(vec![
            route(&idle.cidr, "br-aaaaaaaaaaaa"),
            route(&busy.cidr, "br-bbbbbbbbbbbb"),
            own.clone(),
        ]));
        let ecs = ecs.with_host_networks(host);
        let moved = ecs
            .move_subnets_off_host_routes(&std::collections::HashSet::new())
            .unwrap();
        // Only the idle one moves (the busy one's tasks hold addresses in its range).
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!(moved[0].0, "subnet-idle");
        assert_eq!(moved[0].1, idle.cidr);
        let now = ecs.ensure_subnet(&scope(), "subnet-idle").unwrap();
        assert_eq!(now.cidr, moved[0].2);
        assert_ne!(now.cidr, idle.cidr);
        assert_eq!(ecs.ensure_subnet(&scope(), "subnet-busy").unwrap(), busy);
        // The old range is free again in the store; nothing moves twice.
        assert!(ecs.store.get(&cidr_key(idle.network())).unwrap().is_none());
        assert!(
            ecs.move_subnets_off_host_routes(&std::collections::HashSet::new())
                .unwrap()
                .is_empty()
        );
        // A route on one of the installation's own networks is no reason to move.
        let mine = installation("instc00003");
        let sub = mine.ensure_subnet(&scope(), "subnet-mine").unwrap();
        let mine =
            mine.with_host_networks(Arc::new(Routes(vec![route(&sub.cidr, "br-mine00000001")])));
        let own = std::collections::HashSet::from(["br-mine00000001".to_owned()]);
        assert!(mine.move_subnets_off_host_routes(&own).unwrap().is_empty());
    }

    #[test]
    fn a_subnet_keeps_its_cidr_and_two_subnets_never_share_one() {
        let ecs = ecs();
        let a = ecs.ensure_subnet(&scope(), "subnet-0abc").unwrap();
        assert_eq!(ecs.ensure_subnet(&scope(), "subnet-0abc").unwrap(), a);
        assert!(
            a.cidr.starts_with("10.") && a.cidr.ends_with(".0/24"),
            "{}",
            a.cidr
        );
        let network = a.network();
        assert!(
            u32::from(network) >= POOL_BASE && u32::from(network) < POOL_BASE + (POOL_SLOTS << 8)
        );
        assert_eq!(a.gateway(), Ipv4Addr::from(u32::from(network) + 1));
        assert_eq!(a.gateway_cidr(), format!("{}/24", a.gateway()));
        assert!(a.contains(a.host(9)) && !a.contains(a.host(256)));

        // An id whose hashed slot is taken gets the next free one.
        let mut cidrs = BTreeSet::new();
        for i in 0..200 {
            cidrs.insert(
                ecs.ensure_subnet(&scope(), &format!("subnet-{i}"))
                    .unwrap()
                    .cidr,
            );
        }
        cidrs.insert(a.cidr);
        assert_eq!(cidrs.len(), 201);
    }

    #[test]
    fn addresses_are_unique_and_counted_per_subnet() {
        let ecs = ecs();
        let subnet = ecs.ensure_subnet(&scope(), "subnet-1").unwrap();
        let store = &*ecs.store;
        let mut book = AddressBook::default();
        assert_eq!(
            book.free(store, std::slice::from_ref(&subnet)).unwrap(),
            253
        );
        let first = book
            .take(store, std::slice::from_ref(&subnet))
            .unwrap()
            .unwrap();
        assert_eq!(first.ip, subnet.host(2));
        let (compare, op) = first.claim("task-1");
        assert!(store.txn(&[compare], &[op]).unwrap().is_committed());
        // Another batch reads what the first committed.
        let mut other = AddressBook::default();
        let second = other
            .take(store, std::slice::from_ref(&subnet))
            .unwrap()
            .unwrap();
        assert_eq!(second.ip, subnet.host(3));
        // Claiming an address someone holds fails its compare.
        let (compare, op) = first.claim("task-2");
        assert!(!store.txn(&[compare], &[op]).unwrap().is_committed());
        // Full subnets spill into the next one.
        let next = ecs.ensure_subnet(&scope(), "subnet-2").unwrap();
        let both = [subnet.clone(), next.clone()];
        let mut book = AddressBook::default();
        assert_eq!(book.free(store, &both).unwrap(), 252 + 253);
        for _ in 0..252 {
            assert_eq!(book.take(store, &both).unwrap().unwrap().subnet, subnet);
        }
        assert_eq!(book.take(store, &both).unwrap().unwrap().subnet, next);
    }

    #[test]
    fn the_eni_attachment_carries_ecs_detail_names() {
        let scope = Scope::new(
            "000000000000".parse().unwrap(),
            "us-west-2".parse().unwrap(),
        );
        let assignment = Assignment {
            subnet: Subnet {
                id: "subnet-1".into(),
                cidr: "10.200.3.0/24".into(),
                vpc_id: None,
                availability_zone: None,
            },
            ip: Ipv4Addr::new(10, 200, 3, 7),
        };
        let task_id = "0123456789abcdef0123456789abcdef";
        let a = eni_attachment(&scope, task_id, &assignment);
        assert_eq!(a.kind, "ElasticNetworkInterface");
        assert_eq!(a.status, AttachmentStatus::Precreated);
        assert_eq!(a.detail("subnetId"), Some("subnet-1"));
        assert_eq!(
            a.detail("networkInterfaceId"),
            Some("eni-0123456789abcdef0")
        );
        assert_eq!(a.detail("macAddress"), Some("02:42:0a:c8:03:07"));
        assert_eq!(
            a.detail("privateDnsName"),
            Some("ip-10-200-3-7.us-west-2.compute.internal")
        );
        assert_eq!(a.detail("privateIPv4Address"), Some("10.200.3.7"));
        assert_eq!(
            eni_attachment(&scope, task_id, &assignment).details,
            a.details
        );
        assert_eq!(
            release_ops(std::slice::from_ref(&a)),
            vec![Op::delete("net/ip/subnet-1/10.200.3.7".to_string())]
        );
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["type"], "ElasticNetworkInterface");
        assert_eq!(
            json["details"][0],
            serde_json::json!({"name": "subnetId", "value": "subnet-1"})
        );
    }
}
