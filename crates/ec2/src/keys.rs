//! EC2's key layout, all of it, and its ids. Under `ec2/{account}/{region}/`:
//! `vpc/{id}`, `subnet/{id}`, `sg/{id}`, `igw/{id}`, `rtb/{id}` (one record per resource,
//! its tags, rules, routes and associations inside), `group-name/{vpc}/{name}` (the group
//! holding a name in a VPC), `default-vpc` (the default VPC's id, written with it),
//! `lt/{id}` (a launch template with all its versions) and `lt-name/{name}` (its id).

use rand::Rng;

const ROOT: &str = "ec2/";

/// Whose resources: an account in a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ec2Scope {
    pub account: String,
    pub region: String,
}

impl Ec2Scope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Ec2Scope {
        Ec2Scope {
            account: account.into(),
            region: region.into(),
        }
    }

    fn base(&self) -> String {
        format!("{ROOT}{}/{}/", self.account, self.region)
    }

    /// The prefix of every record of the scope.
    pub(crate) fn root(&self) -> String {
        self.base()
    }

    /// The prefix of every record of one kind (`vpc`, `subnet`, `sg`, `igw`, `rtb`).
    pub(crate) fn prefix(&self, kind: Kind) -> String {
        format!("{}{}/", self.base(), kind.key())
    }

    pub(crate) fn key(&self, kind: Kind, id: &str) -> String {
        format!("{}{id}", self.prefix(kind))
    }

    pub(crate) fn group_name_key(&self, vpc: &str, name: &str) -> String {
        format!("{}group-name/{vpc}/{name}", self.base())
    }

    pub(crate) fn launch_template_key(&self, id: &str) -> String {
        format!("{}lt/{id}", self.base())
    }

    pub(crate) fn launch_templates_prefix(&self) -> String {
        format!("{}lt/", self.base())
    }

    pub(crate) fn launch_template_name_key(&self, name: &str) -> String {
        format!("{}lt-name/{name}", self.base())
    }

    pub(crate) fn default_vpc_key(&self) -> String {
        format!("{}default-vpc", self.base())
    }

    /// `arn:aws:ec2:REGION:ACCOUNT:KIND/ID`.
    pub fn arn(&self, kind: &str, id: &str) -> String {
        format!("arn:aws:ec2:{}:{}:{kind}/{id}", self.region, self.account)
    }
}

/// The kinds of record, by their ids' prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vpc,
    Subnet,
    SecurityGroup,
    InternetGateway,
    RouteTable,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Vpc,
        Kind::Subnet,
        Kind::SecurityGroup,
        Kind::InternetGateway,
        Kind::RouteTable,
    ];

    fn key(self) -> &'static str {
        match self {
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::SecurityGroup => "sg",
            Kind::InternetGateway => "igw",
            Kind::RouteTable => "rtb",
        }
    }

    /// The kind of the resource an id names.
    pub fn of_id(id: &str) -> Option<Kind> {
        let (prefix, rest) = id.split_once('-')?;
        if rest.is_empty() {
            return None;
        }
        match prefix {
            "vpc" => Some(Kind::Vpc),
            "subnet" => Some(Kind::Subnet),
            "sg" => Some(Kind::SecurityGroup),
            "igw" => Some(Kind::InternetGateway),
            "rtb" => Some(Kind::RouteTable),
            _ => None,
        }
    }

    /// The name DescribeTags gives the kind (`resourceType`).
    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::SecurityGroup => "security-group",
            Kind::InternetGateway => "internet-gateway",
            Kind::RouteTable => "route-table",
        }
    }
}

/// A new id as EC2 makes them: the prefix and 17 lower-case hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let digits: String = (0..17)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("a hex digit"))
        .collect();
    format!("{prefix}-{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_prefix_and_seventeen_hex_digits() {
        let id = new_id("vpc");
        let hex = id.strip_prefix("vpc-").unwrap();
        assert_eq!(hex.len(), 17);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(Kind::of_id(&id), Some(Kind::Vpc));
        assert_eq!(Kind::of_id("sg-"), None);
        assert_eq!(Kind::of_id("eni-1"), None);
    }
}
