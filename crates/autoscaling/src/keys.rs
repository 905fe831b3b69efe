//! The key layout, all of it, and ids: `autoscaling/group/{account}/{region}/{name}` (a
//! group with its instances: one compare-and-swap decides a scaling step; every group of
//! the installation under one prefix, which the controller reads each pass) and
//! `autoscaling/activity/{account}/{region}/{group}/{inverted-start}-{id}` (its scaling
//! activities, newest first in key order).

use rand::Rng;

const ROOT: &str = "autoscaling/";

/// Whose groups: an account in a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsgScope {
    pub account: String,
    pub region: String,
}

impl AsgScope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> AsgScope {
        AsgScope {
            account: account.into(),
            region: region.into(),
        }
    }

    fn base(&self, kind: &str) -> String {
        format!("{ROOT}{kind}/{}/{}/", self.account, self.region)
    }

    pub(crate) fn groups_prefix(&self) -> String {
        self.base("group")
    }

    pub(crate) fn group_key(&self, name: &str) -> String {
        format!("{}{name}", self.groups_prefix())
    }

    /// Every account's and region's activities (the retention's scan).
    pub(crate) fn all_activities_prefix() -> String {
        format!("{ROOT}activity/")
    }

    pub(crate) fn activities_prefix(&self, group: &str) -> String {
        format!("{}{group}/", self.base("activity"))
    }

    /// An activity's key: newer activities sort first (by the nanosecond they were made,
    /// so activities of one millisecond keep their order).
    pub(crate) fn activity_key(&self, group: &str, made_nanos: u128, id: &str) -> String {
        format!(
            "{}{:020}-{id}",
            self.activities_prefix(group),
            99_999_999_999_999_999_999u128.saturating_sub(made_nanos)
        )
    }

    /// The scope and name of a group key.
    pub(crate) fn of_group_key(key: &str) -> Option<(AsgScope, String)> {
        let rest = key.strip_prefix(ALL_GROUPS)?;
        let mut parts = rest.splitn(3, '/');
        let (account, region, name) = (parts.next()?, parts.next()?, parts.next()?);
        Some((AsgScope::new(account, region), name.to_string()))
    }
}

/// Every group of every scope lives under this prefix.
pub(crate) const ALL_GROUPS: &str = "autoscaling/group/";

/// An EC2 instance id: `i-` and 17 lower-case hex digits.
pub(crate) fn new_instance_id() -> String {
    let mut rng = rand::thread_rng();
    let digits: String = (0..17)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("a hex digit"))
        .collect();
    format!("i-{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_look_like_ec2s() {
        let id = new_instance_id();
        let hex = id.strip_prefix("i-").unwrap();
        assert_eq!(hex.len(), 17);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn newer_activities_sort_first_and_group_keys_parse() {
        let scope = AsgScope::new("000000000000", "us-east-1");
        let old = scope.activity_key("g", 1_000, "a");
        let new = scope.activity_key("g", 1_001, "b");
        assert!(new < old);
        assert_eq!(
            AsgScope::of_group_key(&scope.group_key("web/x")),
            Some((scope, "web/x".to_string()))
        );
    }
}
