//! Security groups enforced in awsvpc tasks: each task's groups resolved to addresses for
//! Berth's agent (`berthFirewall` on the ACS interface; `crates/agent/src/firewall.rs` makes
//! it an nftables table in the task's namespace), and kept current.
//!
//! - [`Membership`] is one account and region's view, read from the store: the EC2
//!   security groups, which live awsvpc tasks (their addresses) are in which groups, which
//!   groups load balancers are in. [`Membership::firewall`] is pure: an interface in, its
//!   rules as addresses out (a source group becomes its members' `/32`s).
//! - The host counts as a member of every VPC's default group (as an EC2 instance launched
//!   without groups is), and load balancers proxy from the host; both reach a task from its
//!   subnet's gateway address (`.1`, the host's address on the subnet's bridge), so a rule
//!   naming a default group, or a group a load balancer is in, lets that address in too.
//! - The hub keeps one [`Membership`] per scope that has sessions asking (a feed: store
//!   watches on the scope's tasks, EC2 records and load balancers; a change is read again
//!   after [`SETTLE`], and published when it differs). Each ACS session resolves its own
//!   tasks against it and sends those whose rules changed in a `BerthFirewallMessage`, to
//!   Berth's agents only (they ask for it at connect: `berthExtensions=firewall`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use berth_agent_protocol::acs::{self, BerthTaskFirewall, Firewall, FirewallRule};
use berth_ec2::{Ec2Scope, PermissionSource, SecurityGroup, Subnet};
use berth_model::Scope;
use tokio::sync::watch;

use crate::AppState;

/// How long a feed lets a burst of changes settle before reading the scope again.
const SETTLE: Duration = Duration::from_millis(50);

/// Why the scope's security groups could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error(transparent)]
    Ecs(#[from] berth_ecs::EcsError),
    #[error(transparent)]
    Ec2(#[from] berth_ec2::Ec2Error),
    #[error(transparent)]
    Elbv2(#[from] berth_elbv2::Elbv2Error),
    #[error("a blocking store call failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// An awsvpc task's interface, as its rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub address: Ipv4Addr,
    pub subnet_id: String,
    /// As RunTask named them (`sg-default` included); none: its VPC's default group.
    pub groups: Vec<String>,
}

impl Interface {
    /// The interface of an awsvpc task (`None` for other tasks).
    pub fn of_task(task: &berth_ecs::Task) -> Option<Interface> {
        let eni = task.eni()?;
        Some(Interface {
            address: eni.detail("privateIPv4Address")?.parse().ok()?,
            subnet_id: eni.detail("subnetId").unwrap_or_default().to_string(),
            groups: task.security_groups.clone(),
        })
    }
}

/// One scope's security groups and who is in them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Membership {
    groups: HashMap<String, SecurityGroup>,
    /// Each VPC's default group.
    default_groups: HashMap<String, String>,
    default_vpc: Option<String>,
    /// The VPC of each subnet EC2 knows.
    subnet_vpcs: HashMap<String, String>,
    /// The gateway of each subnet EC2 knows (the first address after the network's).
    subnet_gateways: HashMap<String, Ipv4Addr>,
    /// The addresses of the live awsvpc tasks in each group.
    members: HashMap<String, BTreeSet<Ipv4Addr>>,
    /// The groups some load balancer is in.
    balancer_groups: HashSet<String>,
}

impl Membership {
    /// The membership of `interfaces` (the live awsvpc tasks) and of load balancers in
    /// `balancer_groups` (each load balancer's groups as named; none: its VPC's default).
    pub fn new(
        groups: Vec<SecurityGroup>,
        subnets: Vec<Subnet>,
        default_vpc: Option<String>,
        interfaces: &[Interface],
        balancer_groups: &[(String, Vec<String>)],
    ) -> Membership {
        let mut membership = Membership {
            default_groups: groups
                .iter()
                .filter(|g| g.is_default())
                .map(|g| (g.vpc_id.clone(), g.id.clone()))
                .collect(),
            groups: groups.into_iter().map(|g| (g.id.clone(), g)).collect(),
            default_vpc,
            subnet_gateways: subnets
                .iter()
                .map(|s| (s.id.clone(), s.cidr().host(1)))
                .collect(),
            subnet_vpcs: subnets.into_iter().map(|s| (s.id, s.vpc_id)).collect(),
            ..Membership::default()
        };
        for interface in interfaces {
            for group in membership.groups_of(&interface.groups, &interface.subnet_id) {
                membership
                    .members
                    .entry(group)
                    .or_default()
                    .insert(interface.address);
            }
        }
        for (vpc, named) in balancer_groups {
            let groups: Vec<String> = if named.is_empty() {
                membership
                    .default_groups
                    .get(vpc)
                    .cloned()
                    .into_iter()
                    .collect()
            } else {
                named.iter().map(|g| membership.resolve(g)).collect()
            };
            membership.balancer_groups.extend(groups);
        }
        membership
    }

    /// The host's address as an interface's namespace sees it: its subnet's gateway (a
    /// subnet EC2 does not know: the first address of the interface's /24).
    fn gateway(&self, interface: &Interface) -> Ipv4Addr {
        self.subnet_gateways
            .get(&interface.subnet_id)
            .copied()
            .unwrap_or_else(|| Ipv4Addr::from((u32::from(interface.address) & 0xffff_ff00) + 1))
    }

    /// `sg-default` as the default VPC's default group; other ids as they are.
    fn resolve(&self, group: &str) -> String {
        if group == berth_ec2::DEFAULT_GROUP_ALIAS
            && let Some(id) = self
                .default_vpc
                .as_ref()
                .and_then(|vpc| self.default_groups.get(vpc))
        {
            return id.clone();
        }
        group.to_string()
    }

    /// The groups an interface in `subnet` is in: those named, or its VPC's default group
    /// (a subnet EC2 does not know is taken as the default VPC's).
    fn groups_of(&self, named: &[String], subnet: &str) -> Vec<String> {
        if !named.is_empty() {
            return named.iter().map(|g| self.resolve(g)).collect();
        }
        self.subnet_vpcs
            .get(subnet)
            .or(self.default_vpc.as_ref())
            .and_then(|vpc| self.default_groups.get(vpc))
            .cloned()
            .into_iter()
            .collect()
    }

    /// Whether traffic from `group` includes the host's: the host is in every default
    /// group, and a load balancer in the group proxies from the host.
    fn holds_host(&self, group: &str) -> bool {
        self.balancer_groups.contains(group)
            || self.groups.get(group).is_some_and(|g| g.is_default())
    }

    /// The interface's rules as addresses: its groups' rules of each direction, every peer
    /// group replaced by its members' `/32`s (and the host's gateway address when the host
    /// is in it). IPv6 ranges, prefix lists and ICMPv6 have no effect on IPv4 tasks and are
    /// left out; a group EC2 does not know contributes nothing.
    pub fn firewall(&self, interface: &Interface) -> Firewall {
        let groups: Vec<&SecurityGroup> = self
            .groups_of(&interface.groups, &interface.subnet_id)
            .iter()
            .filter_map(|id| self.groups.get(id))
            .collect();
        let rules = |egress: bool| -> Vec<FirewallRule> {
            let mut out = Vec::new();
            for rule in groups.iter().flat_map(|g| &g.rules) {
                if rule.is_egress != egress || rule.protocol == "icmpv6" {
                    continue;
                }
                let peers: BTreeSet<String> = match &rule.source {
                    PermissionSource::CidrIpv4(cidr) => BTreeSet::from([cidr.clone()]),
                    PermissionSource::Group(peer) => {
                        let mut addresses: BTreeSet<Ipv4Addr> =
                            self.members.get(peer).cloned().unwrap_or_default();
                        if self.holds_host(peer) {
                            addresses.insert(self.gateway(interface));
                        }
                        addresses.iter().map(|a| format!("{a}/32")).collect()
                    }
                    PermissionSource::CidrIpv6(_) | PermissionSource::PrefixList(_) => continue,
                };
                if peers.is_empty() {
                    continue;
                }
                let (from, to) = rule.ports();
                out.push(FirewallRule {
                    ip_protocol: Some(rule.protocol.clone()),
                    from_port: from.map(i64::from),
                    to_port: to.map(i64::from),
                    cidrs: Some(peers.into_iter().collect()),
                });
            }
            out
        };
        Firewall {
            ingress: Some(rules(false)),
            egress: Some(rules(true)),
        }
    }
}

/// Reads the scope's membership (making its default VPC first, so `sg-default` names a
/// group even before any EC2 call).
fn read_membership(app: &AppState, scope: &Scope) -> Result<Membership, FirewallError> {
    let ec2_scope = Ec2Scope::new(scope.account.to_string(), scope.region.to_string());
    let installation = app.ecs.installation()?;
    app.ec2
        .ensure_default_vpc(&ec2_scope, &installation.to_string())?;
    let interfaces: Vec<Interface> = app
        .ecs
        .tasks_with_interfaces(scope)?
        .iter()
        .filter_map(Interface::of_task)
        .collect();
    let elb_scope = berth_elbv2::ElbScope::new(scope.account.to_string(), scope.region.to_string());
    let balancers: Vec<(String, Vec<String>)> = app
        .elbv2
        .load_balancers(&elb_scope)?
        .into_iter()
        .map(|lb| (lb.vpc_id, lb.security_groups))
        .collect();
    Ok(Membership::new(
        app.ec2.security_groups(&ec2_scope)?,
        app.ec2.subnets(&ec2_scope)?,
        app.ec2.default_vpc_id(&ec2_scope)?,
        &interfaces,
        &balancers,
    ))
}

/// The hub's feeds, one per scope some session follows.
#[derive(Default)]
pub struct Feeds {
    feeds: std::sync::Mutex<HashMap<String, watch::Sender<Arc<Membership>>>>,
}

impl Feeds {
    /// The scope's membership, kept current: the running feed's, or a new feed's.
    pub async fn subscribe(
        self: &Arc<Self>,
        app: &Arc<AppState>,
        scope: &Scope,
    ) -> Result<watch::Receiver<Arc<Membership>>, FirewallError> {
        let key = format!("{}/{}", scope.account, scope.region);
        if let Some(tx) = self.lock().get(&key) {
            return Ok(tx.subscribe());
        }
        // Watch first, then read: a change in between is read again, never missed.
        let (app2, scope2) = (app.clone(), scope.clone());
        let (membership, watchers) = tokio::task::spawn_blocking(move || {
            let ec2_scope = Ec2Scope::new(scope2.account.to_string(), scope2.region.to_string());
            let elb_scope =
                berth_elbv2::ElbScope::new(scope2.account.to_string(), scope2.region.to_string());
            let watchers = (
                app2.ecs.watch_all_tasks(&scope2)?,
                app2.ec2.watch(&ec2_scope)?,
                app2.elbv2.watch_load_balancers(&elb_scope)?,
            );
            Ok::<_, FirewallError>((read_membership(&app2, &scope2)?, watchers))
        })
        .await??;
        let mut feeds = self.lock();
        if let Some(tx) = feeds.get(&key) {
            return Ok(tx.subscribe()); // another session started one meanwhile
        }
        let (tx, rx) = watch::channel(Arc::new(membership));
        feeds.insert(key.clone(), tx.clone());
        tokio::spawn(run_feed(
            self.clone(),
            key,
            app.clone(),
            scope.clone(),
            tx,
            watchers,
        ));
        Ok(rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Arc<Membership>>>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Watchers = (
    berth_store::Watcher,
    berth_store::Watcher,
    berth_store::Watcher,
);

/// Reads the scope again whenever a record that may change its membership changes, until
/// no session follows it (or the store drops a watch: the next session starts a new feed).
async fn run_feed(
    feeds: Arc<Feeds>,
    key: String,
    app: Arc<AppState>,
    scope: Scope,
    tx: watch::Sender<Arc<Membership>>,
    (mut tasks, mut ec2, mut balancers): Watchers,
) {
    loop {
        let relevant = tokio::select! {
            event = tasks.recv() => match event {
                // Only awsvpc tasks are members; a task's record is deleted long after it
                // stopped.
                Some(event) => matches!(berth_ecs::Task::from_event(&event), Ok(Some(t)) if t.eni().is_some()),
                None => break,
            },
            event = ec2.recv() => match event { Some(_) => true, None => break },
            event = balancers.recv() => match event { Some(_) => true, None => break },
            _ = tx.closed() => break,
        };
        if !relevant {
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        while tasks.try_recv().is_ok() || ec2.try_recv().is_ok() || balancers.try_recv().is_ok() {}
        let (app, read_scope) = (app.clone(), scope.clone());
        match tokio::task::spawn_blocking(move || read_membership(&app, &read_scope)).await {
            Ok(Ok(membership)) => {
                tx.send_if_modified(|current| {
                    let changed = **current != membership;
                    if changed {
                        *current = Arc::new(membership);
                    }
                    changed
                });
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading security groups failed; rules unchanged")
            }
            Err(e) => tracing::warn!(error = %e, "reading security groups failed; rules unchanged"),
        }
    }
    let mut all = feeds.lock();
    if all
        .get(&key)
        .is_some_and(|current| current.same_channel(&tx))
    {
        all.remove(&key);
    }
}

/// One ACS session's side: the rules each of its awsvpc tasks was last given.
#[derive(Default)]
pub struct SessionFirewalls {
    /// The agent takes `BerthFirewallMessage`s.
    updates: bool,
    feed: Option<watch::Receiver<Arc<Membership>>>,
    /// By task ARN: the interface and the rules last sent.
    tasks: HashMap<String, (Interface, Firewall)>,
}

impl SessionFirewalls {
    /// `updates`: the agent takes `BerthFirewallMessage`s.
    pub fn new(updates: bool) -> SessionFirewalls {
        SessionFirewalls {
            updates,
            ..SessionFirewalls::default()
        }
    }

    /// Gives an awsvpc task being sent to run its rules (`berthFirewall`), and remembers
    /// them; a task sent to stop is forgotten.
    pub async fn for_payload(
        &mut self,
        app: &Arc<AppState>,
        scope: &Scope,
        task: &berth_ecs::Task,
        out: &mut acs::Task,
    ) -> Result<(), FirewallError> {
        let arn = task.arn(scope);
        let Some(interface) = Interface::of_task(task) else {
            return Ok(());
        };
        if !task.is_live() || task.desired_status != berth_model::ecs::DesiredStatus::Running {
            self.tasks.remove(&arn);
            return Ok(());
        }
        // Read without marking it seen: the other tasks are brought up to date by
        // `updates` when the feed has news they have not had.
        let membership = self.membership(app, scope, false).await?;
        let firewall = membership.firewall(&interface);
        if let Some(eni) = out
            .elastic_network_interfaces
            .as_mut()
            .and_then(|enis| enis.first_mut())
        {
            eni.berth_firewall = Some(firewall.clone());
        }
        self.tasks.insert(arn, (interface, firewall));
        Ok(())
    }

    /// The scope's latest membership (`seen`: marked as read, so `changed` waits for the
    /// next one).
    async fn membership(
        &mut self,
        app: &Arc<AppState>,
        scope: &Scope,
        seen: bool,
    ) -> Result<Arc<Membership>, FirewallError> {
        if self.feed.is_none() {
            self.feed = Some(app.agents.firewalls.subscribe(app, scope).await?);
        }
        let feed = self.feed.as_mut().expect("subscribed");
        Ok(if seen {
            feed.borrow_and_update().clone()
        } else {
            feed.borrow().clone()
        })
    }

    /// Resolves when the scope's membership may have changed (never while there is no
    /// task to update, or the agent takes no updates).
    pub async fn changed(&mut self) {
        match &mut self.feed {
            Some(feed) if self.updates && !self.tasks.is_empty() => {
                if feed.changed().await.is_err() {
                    // The feed ended: the next read subscribes again.
                    self.feed = None;
                }
            }
            _ => std::future::pending().await,
        }
    }

    /// The tasks whose rules differ from those last sent, with their new rules (now
    /// remembered as sent).
    pub async fn updates(
        &mut self,
        app: &Arc<AppState>,
        scope: &Scope,
    ) -> Result<Vec<BerthTaskFirewall>, FirewallError> {
        let membership = self.membership(app, scope, true).await?;
        let mut out = Vec::new();
        for (arn, (interface, sent)) in &mut self.tasks {
            let firewall = membership.firewall(interface);
            if firewall != *sent {
                *sent = firewall.clone();
                out.push(BerthTaskFirewall {
                    task_arn: Some(arn.clone()),
                    firewall: Some(firewall),
                });
            }
        }
        out.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
