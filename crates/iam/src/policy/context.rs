//! The request context a decision is made on: who asks (the principal), what (the action),
//! on what (resource ARNs) and the condition keys with their values. Keys are
//! case-insensitive (stored lowercased); every value is parsed once, when it is added, into
//! the forms the operators compare (number, date, IP address, boolean), so that a decision
//! parses and allocates nothing.

use std::net::IpAddr;

use super::pattern::{ArnSplit, Vars};

/// What kind of principal makes the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user.
    Root,
    /// An IAM user.
    User,
    /// A role session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    AssumedRole,
    /// An AWS service (`ecs-tasks.amazonaws.com`), named by `arn`.
    Service,
    /// A federated principal (an identity provider), named by `arn`.
    Federated,
    /// No credentials.
    Anonymous,
}

/// The principal of a request, as policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPrincipal {
    pub kind: PrincipalKind,
    /// The caller's ARN: the user's, the role session's, the root's; a service's name.
    pub arn: String,
    /// `aws:PrincipalArn`: the role's ARN for a role session, else the caller's ARN.
    pub principal_arn: String,
    pub account: String,
    /// `aws:userid`: the account for root, `AIDA…` for a user, `AROA…:session` for a role.
    pub user_id: String,
    /// `aws:username` (users only).
    pub user_name: Option<String>,
    /// `aws:PrincipalTag/…`.
    pub tags: Vec<(String, String)>,
}

impl RequestPrincipal {
    pub fn root(account: &str) -> RequestPrincipal {
        RequestPrincipal {
            kind: PrincipalKind::Root,
            arn: format!("arn:aws:iam::{account}:root"),
            principal_arn: format!("arn:aws:iam::{account}:root"),
            account: account.to_string(),
            user_id: account.to_string(),
            user_name: None,
            tags: Vec::new(),
        }
    }

    pub fn user(account: &str, name: &str, id: &str, arn: &str) -> RequestPrincipal {
        RequestPrincipal {
            kind: PrincipalKind::User,
            arn: arn.to_string(),
            principal_arn: arn.to_string(),
            account: account.to_string(),
            user_id: id.to_string(),
            user_name: Some(name.to_string()),
            tags: Vec::new(),
        }
    }

    /// A session of role `role_arn` (`arn:aws:iam::A:role/path/NAME`) named `session`.
    pub fn assumed_role(
        account: &str,
        role_arn: &str,
        role_id: &str,
        session: &str,
    ) -> RequestPrincipal {
        let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        RequestPrincipal {
            kind: PrincipalKind::AssumedRole,
            arn: format!("arn:aws:sts::{account}:assumed-role/{name}/{session}"),
            principal_arn: role_arn.to_string(),
            account: account.to_string(),
            user_id: format!("{role_id}:{session}"),
            user_name: None,
            tags: Vec::new(),
        }
    }

    /// An AWS service (`ecs-tasks.amazonaws.com`) acting as itself: how a trust policy's
    /// `{"Service": …}` principal is matched.
    pub fn service(name: &str) -> RequestPrincipal {
        RequestPrincipal {
            kind: PrincipalKind::Service,
            arn: name.to_string(),
            principal_arn: name.to_string(),
            account: String::new(),
            user_id: String::new(),
            user_name: None,
            tags: Vec::new(),
        }
    }

    pub fn with_tag(mut self, key: &str, value: &str) -> RequestPrincipal {
        self.tags.push((key.to_string(), value.to_string()));
        self
    }
}

impl From<&crate::Principal> for RequestPrincipal {
    fn from(p: &crate::Principal) -> RequestPrincipal {
        match p {
            crate::Principal::Root { account } => RequestPrincipal::root(account),
            crate::Principal::User {
                account,
                name,
                id,
                arn,
            } => RequestPrincipal::user(account, name, id, arn),
            crate::Principal::AssumedRole {
                account,
                role_arn,
                role_id,
                session_name,
                ..
            } => RequestPrincipal::assumed_role(account, role_arn, role_id, session_name),
        }
    }
}

/// One value of a condition key, with the typed forms it parses to.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextValue {
    text: String,
    pub(crate) number: Option<f64>,
    /// Nanoseconds since the epoch (ISO 8601 or epoch seconds).
    pub(crate) time: Option<i128>,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) boolean: Option<bool>,
}

impl ContextValue {
    pub fn new(text: impl Into<String>) -> ContextValue {
        let text = text.into();
        ContextValue {
            number: parse_number(&text),
            time: parse_time(&text),
            ip: text.parse().ok(),
            boolean: parse_bool(&text),
            text,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

pub(crate) fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// ISO 8601 (`2026-12-06T19:00:00Z`, with fraction or offset, `2026-12-06T19:00:00`,
/// `2026-12-06`) or epoch seconds, as nanoseconds since the epoch.
pub(crate) fn parse_time(s: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let s = s.trim();
    // Dates and epochs start with a digit (or a sign): most values (names, ARNs) stop here.
    if !s.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !s[1..].contains('-') {
        return s
            .parse::<i64>()
            .ok()
            .map(|secs| secs as i128 * 1_000_000_000);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    let no_zone = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(t) = time::PrimitiveDateTime::parse(s.trim_end_matches('Z'), &no_zone) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    let date = format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &date)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp_nanos())
}

/// The action, resources, principal and condition keys of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    action: String,
    /// The length of the action's service prefix (`ecs` in `ecs:RunTask`).
    service_len: usize,
    resources: Vec<String>,
    /// Each resource split into its parts, once.
    splits: Vec<ArnSplit>,
    resource_account: Option<String>,
    principal: RequestPrincipal,
    /// Lowercased key → values; a handful of entries, scanned linearly (cheaper than hashing).
    keys: Vec<(Box<str>, Vec<ContextValue>)>,
}

impl Request {
    /// A request by `principal` for `action` (`ecs:RunTask`) on `resource` (an ARN, or `*` for
    /// actions without a resource). The principal's global keys are filled in: aws:username,
    /// aws:userid, aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType,
    /// aws:PrincipalTag/….
    pub fn new(principal: RequestPrincipal, action: &str, resource: &str) -> Request {
        let mut request = Request {
            action: action.to_string(),
            service_len: action.find(':').unwrap_or(action.len()),
            resources: vec![resource.to_string()],
            splits: vec![ArnSplit::of(resource)],
            resource_account: None,
            principal,
            keys: Vec::new(),
        };
        let p = request.principal.clone();
        if let Some(name) = &p.user_name {
            request.set("aws:username", [name.as_str()]);
        }
        // Services and anonymous callers have no IAM identity: no id, ARN or account keys.
        if !matches!(p.kind, PrincipalKind::Service | PrincipalKind::Anonymous) {
            request.set("aws:userid", [p.user_id.as_str()]);
            request.set("aws:PrincipalArn", [p.principal_arn.as_str()]);
            request.set("aws:PrincipalAccount", [p.account.as_str()]);
        }
        let kind = match p.kind {
            PrincipalKind::Root => "Account",
            PrincipalKind::User => "User",
            PrincipalKind::AssumedRole => "AssumedRole",
            PrincipalKind::Service => "Service",
            PrincipalKind::Federated => "FederatedUser",
            PrincipalKind::Anonymous => "Anonymous",
        };
        request.set("aws:PrincipalType", [kind]);
        for (k, v) in &p.tags {
            request.set(&format!("aws:PrincipalTag/{k}"), [v.as_str()]);
        }
        let is_service = p.kind == PrincipalKind::Service;
        request.set(
            "aws:PrincipalIsAWSService",
            [if is_service { "true" } else { "false" }],
        );
        if is_service {
            request.set("aws:PrincipalServiceName", [p.arn.as_str()]);
        }
        request
    }

    /// Adds a resource: the request is allowed only if every resource is.
    pub fn with_resource(mut self, arn: &str) -> Request {
        self.resources.push(arn.to_string());
        self.splits.push(ArnSplit::of(arn));
        self
    }

    /// The account owning the resources, when the ARN does not say (S3's ARNs) or to override
    /// it. By default: the account part of the first resource ARN, else the principal's.
    pub fn with_resource_account(mut self, account: &str) -> Request {
        self.resource_account = Some(account.to_string());
        self
    }

    /// Sets a single-valued key (replacing any value it had).
    pub fn with_key(mut self, key: &str, value: &str) -> Request {
        self.set(key, [value]);
        self
    }

    /// Sets a multi-valued key (aws:TagKeys, …).
    pub fn with_values<'v>(
        mut self,
        key: &str,
        values: impl IntoIterator<Item = &'v str>,
    ) -> Request {
        self.set(key, values);
        self
    }

    /// aws:CurrentTime (ISO 8601) and aws:EpochTime, from `now`.
    pub fn with_time(self, now: time::OffsetDateTime) -> Request {
        use time::format_description::well_known::Rfc3339;
        let iso = now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .format(&Rfc3339)
            .unwrap_or_default();
        let epoch = now.unix_timestamp().to_string();
        self.with_key("aws:CurrentTime", &iso)
            .with_key("aws:EpochTime", &epoch)
    }

    pub fn set<'v>(&mut self, key: &str, values: impl IntoIterator<Item = &'v str>) {
        let lower = key.to_ascii_lowercase();
        let values: Vec<ContextValue> = values.into_iter().map(ContextValue::new).collect();
        match self.keys.iter_mut().find(|(k, _)| **k == *lower) {
            Some((_, v)) => *v = values,
            None => self.keys.push((lower.into_boxed_str(), values)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.keys.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The action's service prefix (`ecs`).
    pub fn service(&self) -> &str {
        &self.action[..self.service_len]
    }

    /// Resource `i` and its parts.
    pub(crate) fn resource(&self, i: usize) -> (&str, &ArnSplit) {
        (&self.resources[i], &self.splits[i])
    }

    pub fn principal(&self) -> &RequestPrincipal {
        &self.principal
    }

    /// The account owning the resources (see `with_resource_account`).
    pub fn resource_account(&self) -> &str {
        if let Some(a) = &self.resource_account {
            return a;
        }
        match self
            .resources
            .first()
            .and_then(|r| self.splits[0].part(r, 4))
        {
            Some(a) if !a.is_empty() && a != "*" => a,
            _ => &self.principal.account,
        }
    }

    /// A key's values (any case); `None` when absent.
    pub fn values(&self, key: &str) -> Option<&[ContextValue]> {
        self.keys
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
    }

    /// By lowercased key: what conditions use (their keys are lowercased when compiled).
    pub(crate) fn lookup(&self, key_lower: &str) -> &[ContextValue] {
        for (k, v) in &self.keys {
            if k.len() == key_lower.len() && **k == *key_lower {
                return v;
            }
        }
        &[]
    }
}

impl Vars for Request {
    fn var(&self, key_lower: &str) -> Option<&str> {
        match self.lookup(key_lower) {
            [one] => Some(one.text()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let t = parse_time("2026-12-06T00:00:00Z").unwrap();
        assert_eq!(parse_time("2026-12-06"), Some(t));
        assert_eq!(parse_time("2026-12-06T00:00:00"), Some(t));
        assert_eq!(parse_time("2026-12-06T01:00:00+01:00"), Some(t));
        assert_eq!(parse_time(&(t / 1_000_000_000).to_string()), Some(t));
        assert_eq!(
            parse_time("2026-12-06T00:00:00.500Z"),
            Some(t + 500_000_000)
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn principal_keys_filled() {
        let p = RequestPrincipal::user(
            "111122223333",
            "bob",
            "AIDAEXAMPLE",
            "arn:aws:iam::111122223333:user/bob",
        )
        .with_tag("team", "blue");
        let r = Request::new(
            p,
            "ecs:RunTask",
            "arn:aws:ecs:us-east-1:444455556666:cluster/c",
        );
        assert_eq!(r.values("AWS:UserName").unwrap()[0].text(), "bob");
        assert_eq!(r.values("aws:principaltag/TEAM").unwrap()[0].text(), "blue");
        assert_eq!(r.resource_account(), "444455556666");
        assert_eq!(r.var("aws:userid"), Some("AIDAEXAMPLE"));
    }
}
