//! ELBv2's key layout, all of it. Per account and region (`elbv2/{account}/{region}/`):
//! `loadbalancer/{name}` (names are unique per region), `targetgroup/{name}` (with its
//! targets), `listener/{lb-id}/{listener-id}` (with its rules: a load balancer's listeners
//! are one range), `health/{tg-id}/{target-id}:{port}` (written by the data plane).
//! Per installation: `elbv2/addresses/{ipv4}` → the load balancer's ARN holding that
//! loopback address (addresses belong to the host, so they are claimed across accounts
//! and regions; an account id is twelve digits, so the two never meet).

pub(crate) const ROOT: &str = "elbv2/";

/// Whose load balancers: an account in a region, as the request's signature names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ElbScope {
    pub account: String,
    pub region: String,
}

impl ElbScope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> ElbScope {
        ElbScope {
            account: account.into(),
            region: region.into(),
        }
    }

    /// Whether an ARN's `(region, account)` are this scope's.
    pub(crate) fn owns(&self, (region, account): (&str, &str)) -> bool {
        region == self.region && account == self.account
    }

    fn prefix(&self) -> String {
        format!("{ROOT}{}/{}/", self.account, self.region)
    }

    pub(crate) fn load_balancers_prefix(&self) -> String {
        format!("{}loadbalancer/", self.prefix())
    }

    pub(crate) fn load_balancer_key(&self, name: &str) -> String {
        format!(
            "{}{}",
            self.load_balancers_prefix(),
            name.to_ascii_lowercase()
        )
    }

    pub(crate) fn target_groups_prefix(&self) -> String {
        format!("{}targetgroup/", self.prefix())
    }

    pub(crate) fn target_group_key(&self, name: &str) -> String {
        format!(
            "{}{}",
            self.target_groups_prefix(),
            name.to_ascii_lowercase()
        )
    }

    pub(crate) fn listeners_prefix(&self) -> String {
        format!("{}listener/", self.prefix())
    }

    pub(crate) fn listeners_of(&self, lb_id: &str) -> String {
        format!("{}{lb_id}/", self.listeners_prefix())
    }

    pub(crate) fn listener_key(&self, lb_id: &str, listener_id: &str) -> String {
        format!("{}{listener_id}", self.listeners_of(lb_id))
    }

    pub(crate) fn health_prefix(&self, tg_id: &str) -> String {
        format!("{}health/{tg_id}/", self.prefix())
    }

    pub(crate) fn health_key(&self, tg_id: &str, target: &str, port: u16) -> String {
        format!("{}{target}:{port}", self.health_prefix(tg_id))
    }
}

/// The claim on a loopback address.
pub(crate) fn address_key(address: std::net::Ipv4Addr) -> String {
    format!("{ROOT}addresses/{address}")
}
