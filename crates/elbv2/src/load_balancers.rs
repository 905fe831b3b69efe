//! Load balancers: CreateLoadBalancer (with its loopback address, `address.rs`),
//! DescribeLoadBalancers, DeleteLoadBalancer (with its listeners and its address),
//! SetSecurityGroups, SetSubnets, SetIpAddressType, and their attributes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_store::{Change, Compare, Op, TxnOutcome};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::address::{MAX_PROBES, address_candidate};
use crate::attributes::{self, Attribute};
use crate::keys::{ElbScope, address_key};
use crate::tags::{self, Tag};
use crate::{
    Elbv2, Elbv2Error, IpAddressType, LoadBalancerArn, LoadBalancerState, LoadBalancerType, Page,
    Paging, Result, Scheme, config, invalid, lb_not_found, now, random_id,
};

/// A subnet the load balancer is in, and its zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityZone {
    pub zone_name: String,
    pub subnet_id: String,
}

/// A load balancer as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub arn: LoadBalancerArn,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: LoadBalancerType,
    pub scheme: Scheme,
    pub ip_address_type: IpAddressType,
    pub vpc_id: String,
    pub availability_zones: Vec<AvailabilityZone>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    pub state: LoadBalancerState,
    pub created_time: f64,
    /// The loopback address the data plane listens on (`DNSName` shows it).
    pub address: Ipv4Addr,
    /// Attributes set (Describe shows AWS's defaults for the others).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl LoadBalancer {
    /// `DNSName`: the load balancer's address as text (Berth has no DNS; a client on the
    /// host connects to it directly).
    pub fn dns_name(&self) -> String {
        self.address.to_string()
    }

    pub fn canonical_hosted_zone_id(&self) -> &'static str {
        canonical_zone(self.kind, self.arn.scope().0)
    }

    /// An attribute's value, set or default.
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.attributes.get(key).cloned().or_else(|| {
            attributes::load_balancer_defaults(self.kind)
                .get(key)
                .map(|v| v.to_string())
        })
    }

    pub fn attributes(&self) -> Vec<Attribute> {
        attributes::merged(
            attributes::load_balancer_defaults(self.kind),
            &self.attributes,
        )
    }
}

/// The Route 53 zone AWS gives a region's load balancers (those of us-east-1 elsewhere:
/// Berth has no Route 53; the value only keeps clients that read it working).
pub fn canonical_zone(kind: LoadBalancerType, region: &str) -> &'static str {
    match (kind, region) {
        (LoadBalancerType::Application, "us-west-2") => "Z1H1FL5HABSF5",
        (LoadBalancerType::Network, "us-west-2") => "Z18D5FSROUN65G",
        (LoadBalancerType::Application, "eu-west-1") => "Z32O12XQLNTSW2",
        (LoadBalancerType::Network, "eu-west-1") => "Z2IFOLAFXWLO4F",
        (LoadBalancerType::Application, _) => "Z35SXDOTRQ7X7K",
        (LoadBalancerType::Network, _) => "Z26RNL4JYFTOTI",
    }
}

/// The VPC of an account's load balancers when ELBv2 runs without EC2's records (unit
/// tests): one id per account and region, stable.
pub(crate) fn default_vpc_id(scope: &ElbScope) -> String {
    let digest = Sha256::digest(format!("{}/{}", scope.account, scope.region).as_bytes());
    format!("vpc-{}", &hex::encode(&digest[..])[..17])
}

/// CreateLoadBalancer's request, parsed.
#[derive(Debug, Clone)]
pub struct CreateLoadBalancer {
    pub name: String,
    pub kind: LoadBalancerType,
    pub scheme: Scheme,
    pub ip_address_type: IpAddressType,
    /// `Subnets` and `SubnetMappings[].SubnetId` together.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub tags: Vec<Tag>,
}

/// An id of EC2's shape: `{prefix}` then lower-case letters and digits.
pub(crate) fn is_resource_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 32 {
        return Err(invalid(
            "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length between 1 and 32",
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(invalid(format!(
            "The load balancer name '{name}' must contain only alphanumeric characters or hyphens"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(invalid(format!(
            "Load balancer name '{name}' cannot begin or end with '-'"
        )));
    }
    if name.starts_with("internal-") {
        return Err(invalid(format!(
            "Load balancer name '{name}' cannot begin with 'internal-'"
        )));
    }
    Ok(())
}

/// Subnets named as EC2 shapes them, each once; their zones. The subnets' records (and
/// their real zones and VPC) come with the EC2 API: the existence check goes here.
/// A load balancer's subnets: their shape, no repeats, at least two for an application load
/// balancer (one for a network one); with EC2's records, that each exists, that they share
/// one VPC and that no two are in one zone (an application load balancer's in two zones at
/// least). The zones and the VPC they place it in.
fn check_subnets(
    scope: &ElbScope,
    networks: Option<&dyn crate::Networks>,
    kind: LoadBalancerType,
    subnets: &[String],
) -> Result<(Vec<AvailabilityZone>, String)> {
    for s in subnets {
        if !is_resource_id(s, "subnet-") {
            return Err(Elbv2Error::SubnetNotFound(format!(
                "The subnet ID '{s}' is not valid"
            )));
        }
    }
    let mut unique = subnets.to_vec();
    unique.sort();
    unique.dedup();
    if unique.len() != subnets.len() {
        return Err(invalid("A subnet cannot be specified more than once"));
    }
    let two_zones =
        || invalid("At least two subnets in two different Availability Zones must be specified");
    match kind {
        LoadBalancerType::Application if subnets.len() < 2 => return Err(two_zones()),
        LoadBalancerType::Network if subnets.is_empty() => {
            return Err(config("At least one subnet must be specified"));
        }
        _ => {}
    }
    let Some(networks) = networks else {
        return Ok((
            subnets
                .iter()
                .map(|s| AvailabilityZone {
                    zone_name: format!("{}a", scope.region),
                    subnet_id: s.clone(),
                })
                .collect(),
            default_vpc_id(scope),
        ));
    };
    let mut zones: Vec<AvailabilityZone> = Vec::new();
    let mut vpc: Option<String> = None;
    for s in subnets {
        let placed = networks
            .subnet(scope, s)
            .map_err(Elbv2Error::Internal)?
            .ok_or_else(|| {
                Elbv2Error::SubnetNotFound(format!("The subnet ID '{s}' is not valid"))
            })?;
        match &vpc {
            Some(v) if *v != placed.vpc_id => {
                return Err(config(format!(
                    "The subnets '{}' and '{}' are not in the same VPC",
                    zones[0].subnet_id, placed.id
                )));
            }
            _ => vpc = Some(placed.vpc_id.clone()),
        }
        if zones
            .iter()
            .any(|z| z.zone_name == placed.availability_zone)
        {
            return Err(config(
                "A load balancer cannot be attached to multiple subnets in the same Availability Zone",
            ));
        }
        zones.push(AvailabilityZone {
            zone_name: placed.availability_zone,
            subnet_id: placed.id,
        });
    }
    Ok((zones, vpc.unwrap_or_else(|| default_vpc_id(scope))))
}

/// Security groups: their shape; with EC2's records, that each exists in the load balancer's
/// VPC. Their own ids (`sg-default` resolved).
fn check_security_groups(
    scope: &ElbScope,
    networks: Option<&dyn crate::Networks>,
    vpc_id: &str,
    groups: &[String],
) -> Result<Vec<String>> {
    let invalid_group =
        |g: &str| Elbv2Error::InvalidSecurityGroup(format!("Invalid security group '{g}'"));
    if let Some(g) = groups.iter().find(|g| !is_resource_id(g, "sg-")) {
        return Err(invalid_group(g));
    }
    let Some(networks) = networks else {
        return Ok(groups.to_vec());
    };
    groups
        .iter()
        .map(|g| {
            match networks
                .security_group(scope, g)
                .map_err(Elbv2Error::Internal)?
            {
                Some((id, vpc)) if vpc == vpc_id => Ok(id),
                _ => Err(invalid_group(g)),
            }
        })
        .collect()
}

impl Elbv2 {
    /// CreateLoadBalancer. The same request again answers the load balancer it made; a
    /// name taken with other settings is `DuplicateLoadBalancerName`. Answers it
    /// `provisioning`, as AWS does; the record is `active` right after (the data plane binds
    /// its address when it reads it).
    pub fn create_load_balancer(
        &self,
        scope: &ElbScope,
        req: CreateLoadBalancer,
    ) -> Result<LoadBalancer> {
        check_name(&req.name)?;
        let (zones, vpc_id) = check_subnets(scope, self.networks(), req.kind, &req.subnets)?;
        let security_groups =
            check_security_groups(scope, self.networks(), &vpc_id, &req.security_groups)?;
        tags::check(&req.tags)?;
        let key = scope.load_balancer_key(&req.name);
        let arn = LoadBalancerArn::new(scope, req.kind, &req.name, &random_id());
        let mut lb = LoadBalancer {
            arn: arn.clone(),
            name: req.name.clone(),
            kind: req.kind,
            scheme: req.scheme,
            ip_address_type: req.ip_address_type,
            vpc_id,
            availability_zones: zones,
            security_groups,
            state: LoadBalancerState::Provisioning,
            created_time: now(),
            address: Ipv4Addr::LOCALHOST,
            attributes: BTreeMap::new(),
            tags: req.tags.clone(),
        };
        let mut attempt = 0;
        loop {
            if let Some(kv) = self.store().get(&key)? {
                let existing: LoadBalancer = berth_store::decode(&kv)?;
                let same = existing.kind == req.kind
                    && existing.scheme == req.scheme
                    && sorted(
                        existing
                            .availability_zones
                            .iter()
                            .map(|z| z.subnet_id.clone()),
                    ) == sorted(req.subnets.iter().cloned())
                    && sorted(existing.security_groups.iter().cloned())
                        == sorted(req.security_groups.iter().cloned());
                return match same {
                    true => Ok(existing),
                    false => Err(Elbv2Error::DuplicateLoadBalancerName(format!(
                        "A load balancer with the same name '{}' exists, but with different settings",
                        req.name
                    ))),
                };
            }
            if attempt >= MAX_PROBES {
                return Err(Elbv2Error::TooManyLoadBalancers(
                    "No free load balancer address was found near the one hashed for it".into(),
                ));
            }
            lb.address = address_candidate(self.installation.as_str(), arn.as_str(), attempt);
            let claim = address_key(lb.address);
            let outcome = self.store().txn(
                &[
                    Compare::ModRevision(key.clone(), 0),
                    Compare::ModRevision(claim.clone(), 0),
                ],
                &[
                    Op::put(&key, berth_store::encode(&lb)),
                    Op::put(&claim, arn.as_str().as_bytes().to_vec()),
                ],
            )?;
            if let TxnOutcome::Committed(_) = outcome {
                break;
            }
            // Either the name was taken meanwhile (answered above) or the address is
            // another load balancer's: the next one.
            attempt += 1;
        }
        self.set_load_balancer_state(scope, &arn, LoadBalancerState::Active)?;
        Ok(lb)
    }

    /// Sets a load balancer's state (the data plane: `active` once it listens, `failed`
    /// when it cannot bind the address).
    pub fn set_load_balancer_state(
        &self,
        scope: &ElbScope,
        arn: &LoadBalancerArn,
        state: LoadBalancerState,
    ) -> Result<()> {
        self.change_load_balancer(scope, arn, |lb| {
            lb.state = state;
            Ok(())
        })
        .map(|_| ())
    }

    /// The load balancer `arn` names, and its record's key.
    pub(crate) fn load_balancer_at(
        &self,
        scope: &ElbScope,
        arn: &LoadBalancerArn,
    ) -> Result<(String, LoadBalancer, berth_store::Revision)> {
        if !scope.owns(arn.scope()) {
            return Err(lb_not_found());
        }
        let key = scope.load_balancer_key(arn.name());
        let kv = self.store().get(&key)?.ok_or_else(lb_not_found)?;
        let lb: LoadBalancer = berth_store::decode(&kv)?;
        if lb.arn != *arn {
            return Err(lb_not_found());
        }
        Ok((key, lb, kv.mod_revision))
    }

    pub fn load_balancer(&self, scope: &ElbScope, arn: &LoadBalancerArn) -> Result<LoadBalancer> {
        Ok(self.load_balancer_at(scope, arn)?.1)
    }

    /// A read-modify-write of the load balancer `arn`.
    pub(crate) fn change_load_balancer(
        &self,
        scope: &ElbScope,
        arn: &LoadBalancerArn,
        mut change: impl FnMut(&mut LoadBalancer) -> Result<()>,
    ) -> Result<LoadBalancer> {
        if !scope.owns(arn.scope()) {
            return Err(lb_not_found());
        }
        let key = scope.load_balancer_key(arn.name());
        let stored = berth_store::update(self.store(), &key, |current: Option<LoadBalancer>| {
            let mut lb = current
                .filter(|lb| lb.arn == *arn)
                .ok_or_else(lb_not_found)?;
            change(&mut lb)?;
            Ok::<_, Elbv2Error>(Change::Put(lb))
        })?;
        stored.ok_or_else(lb_not_found)
    }

    /// DescribeLoadBalancers: those `arns` or `names` name (all found, else
    /// `LoadBalancerNotFound`), or a page of all of them by name.
    pub fn describe_load_balancers(
        &self,
        scope: &ElbScope,
        arns: &[LoadBalancerArn],
        names: &[String],
        paging: &Paging,
    ) -> Result<Page<LoadBalancer>> {
        if !arns.is_empty() && !names.is_empty() {
            return Err(invalid(
                "Load balancer names and load balancer ARNs cannot be specified at the same time",
            ));
        }
        let size = paging.size()?;
        if !arns.is_empty() {
            let items = arns
                .iter()
                .map(|arn| self.load_balancer(scope, arn))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Page::whole(items));
        }
        if !names.is_empty() {
            return named(
                self.store(),
                names,
                |name| scope.load_balancer_key(name),
                |name| {
                    Elbv2Error::LoadBalancerNotFound(format!("Load balancers '[{name}]' not found"))
                },
            );
        }
        page_of(self.store(), &scope.load_balancers_prefix(), paging, size)
    }

    /// Every load balancer of the scope (the data plane reads them all).
    pub fn load_balancers(&self, scope: &ElbScope) -> Result<Vec<LoadBalancer>> {
        all_of(self.store(), &scope.load_balancers_prefix())
    }

    /// A watch on the scope's load balancer records (from now on): enforcing security
    /// groups follows which groups load balancers are in.
    pub fn watch_load_balancers(&self, scope: &ElbScope) -> Result<berth_store::Watcher> {
        let revision = self.store().current_revision()?;
        Ok(self
            .store()
            .watch(&scope.load_balancers_prefix(), revision)?)
    }

    /// DeleteLoadBalancer: the load balancer, its listeners (and their rules) and its
    /// address, in one transaction. A load balancer that does not exist is not an error
    /// (AWS's answer); one with deletion protection is `OperationNotPermitted`.
    pub fn delete_load_balancer(&self, scope: &ElbScope, arn: &LoadBalancerArn) -> Result<()> {
        loop {
            let (key, lb, revision) = match self.load_balancer_at(scope, arn) {
                Ok(found) => found,
                Err(Elbv2Error::LoadBalancerNotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            if lb.attribute("deletion_protection.enabled").as_deref() == Some("true") {
                return Err(Elbv2Error::OperationNotPermitted(format!(
                    "Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
                )));
            }
            let mut ops = vec![Op::delete(&key), Op::delete(address_key(lb.address))];
            let listeners = self.store().range(&scope.listeners_of(arn.id()), None, 0)?;
            let mut compares = vec![Compare::ModRevision(key.clone(), revision)];
            for kv in listeners {
                compares.push(Compare::ModRevision(kv.key.clone(), kv.mod_revision));
                ops.push(Op::delete(&kv.key));
            }
            if self.store().txn(&compares, &ops)?.is_committed() {
                return Ok(());
            }
        }
    }

    /// SetSecurityGroups (application load balancers only).
    pub fn set_security_groups(
        &self,
        scope: &ElbScope,
        arn: &LoadBalancerArn,
        groups: Vec<String>,
    ) -> Result<LoadBalancer> {
        let vpc_id = self.load_balancer(scope, arn)?.vpc_id;
        let groups = check_security_groups(scope, self.networks(), &vpc_id, &groups)?;
        self.change_load_balancer(scope, arn, |lb| {
            lb.security_groups = groups.clone();
            Ok(())
        })
    }

    /// SetSubnets.
    pub fn set_subnets(
        &self,
        scope: &ElbScope,
        arn: &LoadBalancerArn,
        subnets: Vec<String>,
    ) -> Result<LoadBalancer> {
        let networks = self.networks();
        self.change_load_balancer(scope, arn, |lb| {
            let (zones, vpc_id) = check_subnets(scope, networks, lb.kind, &subnets)?;
            if vpc_id != lb.vpc_id {
                return Err(config(format!(
                    "The subnets must be in the load balancer's VPC '{}'",
                    lb.vpc_id
                )));
            }
            lb.availability_zones = zones;
            Ok(())
        })
    }

    /// SetIpAddressType.
    pub fn set_ip_address_type(
        &self,
        scope: &ElbScope,
        arn: &LoadBalancerArn,
        kind: IpAddressType,
    ) -> Result<LoadBalancer> {
        self.change_load_balancer(scope, arn, |lb| {
            lb.ip_address_type = kind;
            Ok(())
        })
    }

    /// ModifyLoadBalancerAttributes: the changes checked, then all attributes shown.
    pub fn modify_load_balancer_attributes(
        &self,
        scope: &ElbScope,
        arn: &LoadBalancerArn,
        changes: &[Attribute],
    ) -> Result<Vec<Attribute>> {
        let lb = self.change_load_balancer(scope, arn, |lb| {
            attributes::check_load_balancer(lb.kind, changes)?;
            for a in changes {
                lb.attributes.insert(a.key.clone(), a.value.clone());
            }
            Ok(())
        })?;
        Ok(lb.attributes())
    }
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v
}

/// A page of the records under `prefix` in key order.
/// The records of `names` (keys from `key_of`), in the order asked, as one page; the first
/// one missing is `missing(name)`.
pub(crate) fn named<T: serde::de::DeserializeOwned>(
    store: &dyn berth_store::Store,
    names: &[String],
    key_of: impl Fn(&str) -> String,
    missing: impl Fn(&str) -> Elbv2Error,
) -> Result<Page<T>> {
    let items = names
        .iter()
        .map(|name| {
            let kv = store.get(&key_of(name))?.ok_or_else(|| missing(name))?;
            Ok(berth_store::decode(&kv)?)
        })
        .collect::<Result<Vec<T>>>()?;
    Ok(Page::whole(items))
}

pub(crate) fn page_of<T: serde::de::DeserializeOwned>(
    store: &dyn berth_store::Store,
    prefix: &str,
    paging: &Paging,
    size: usize,
) -> Result<Page<T>> {
    let after = paging.start_after()?;
    let kvs = store.range(prefix, after.as_deref(), size + 1)?;
    let more = kvs.len() > size;
    let kvs = &kvs[..kvs.len().min(size)];
    let next_marker = more
        .then(|| {
            kvs.last()
                .map(|kv| berth_store::page_token::encode(&kv.key))
        })
        .flatten();
    let items = kvs
        .iter()
        .map(berth_store::decode)
        .collect::<Result<Vec<T>, _>>()?;
    Ok(Page { items, next_marker })
}

/// Every record under `prefix`, decoded.
pub(crate) fn all_of<T: serde::de::DeserializeOwned>(
    store: &dyn berth_store::Store,
    prefix: &str,
) -> Result<Vec<T>> {
    store
        .range(prefix, None, 0)?
        .iter()
        .map(|kv| berth_store::decode(kv).map_err(Elbv2Error::from))
        .collect()
}
