//! Parameter names as SSM checks them: hierarchical (`/a/b/c`, at most 15 levels) or flat
//! (`name`), the ARN form (`arn:aws:ssm:REGION:ACCOUNT:parameter/a/b`), and the selectors
//! `name:version` and `name:label` that GetParameter(s) accept.

use crate::{Result, SsmError, validation};

/// Hierarchies are at most this deep.
pub const MAX_HIERARCHY_LEVELS: usize = 15;
/// The longest fully qualified name.
const MAX_NAME: usize = 1011;

/// A parameter's name, checked: what its record is keyed by; when it was given as an ARN,
/// that ARN's region and account (a parameter of another scope is not this scope's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ParameterName(String, Option<(String, String)>);

impl ParameterName {
    /// A name as PutParameter takes it (no ARN: "You can't enter the ARN for a parameter").
    pub fn parse_new(name: &str) -> Result<ParameterName> {
        if name.starts_with("arn:") {
            return Err(invalid_name());
        }
        ParameterName::check(name)
    }

    /// A name or a parameter ARN of `scope`'s region and account, as the reading and
    /// deleting calls take it. An ARN's `parameter/a/b` is `/a/b`; `parameter/a` is `a`
    /// (a flat name) — `Ssm` also tries `/a` when `a` does not exist.
    pub fn parse(name: &str) -> Result<ParameterName> {
        match name.strip_prefix("arn:") {
            Some(rest) => {
                // aws:ssm:REGION:ACCOUNT:parameter/NAME
                let parts: Vec<&str> = rest.splitn(5, ':').collect();
                let [_, "ssm", region, account, resource] = parts[..] else {
                    return Err(invalid_name());
                };
                let Some(inner) = resource.strip_prefix("parameter") else {
                    return Err(invalid_name());
                };
                let inner = inner.strip_prefix('/').unwrap_or(inner);
                let name = if inner.contains('/') {
                    ParameterName::check(&format!("/{inner}"))?
                } else {
                    ParameterName::check(inner)?
                };
                Ok(ParameterName(
                    name.0,
                    Some((region.to_string(), account.to_string())),
                ))
            }
            None => ParameterName::check(name),
        }
    }

    fn check(name: &str) -> Result<ParameterName> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(validation(format!(
                "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must have length between 1 and {MAX_NAME}"
            )));
        }
        let ok_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
        let bare = name.strip_prefix('/').unwrap_or(name);
        let reserved = bare.len() >= 3
            && (bare[..3].eq_ignore_ascii_case("aws") || bare[..3].eq_ignore_ascii_case("ssm"));
        if !ok_chars || reserved {
            return Err(invalid_name());
        }
        if name.contains('/') {
            if !name.starts_with('/') || name.ends_with('/') || name.contains("//") {
                return Err(validation(
                    "Parameter name must be a fully qualified name. If formed as a path, it must begin with a slash and have no empty sub-paths.",
                ));
            }
            if name.matches('/').count() > MAX_HIERARCHY_LEVELS {
                return Err(SsmError::HierarchyLevelLimitExceeded);
            }
        }
        Ok(ParameterName(name.to_string(), None))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `/x` for a flat `x` (how an ARN naming `parameter/x` may also mean it).
    pub(crate) fn rooted(&self) -> Option<ParameterName> {
        (!self.0.starts_with('/')).then(|| ParameterName(format!("/{}", self.0), self.1.clone()))
    }

    /// Whether the name can be one of `region`'s and `account`'s parameters (an ARN of
    /// another region or account is not).
    pub(crate) fn is_in(&self, region: &str, account: &str) -> bool {
        self.1
            .as_ref()
            .is_none_or(|(r, a)| r == region && a == account)
    }
}

fn invalid_name() -> SsmError {
    validation(
        "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
    )
}

/// What a GetParameter(s) name selects beyond the latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(u64),
    Label(String),
}

impl Selector {
    /// The selector as answers show it (`:3`, `:prod`).
    pub fn shown(&self) -> Option<String> {
        match self {
            Selector::Latest => None,
            Selector::Version(v) => Some(format!(":{v}")),
            Selector::Label(l) => Some(format!(":{l}")),
        }
    }
}

/// `name`, `name:version` or `name:label` (an ARN's own colons are not a selector).
pub fn parse_selector(given: &str) -> Result<(ParameterName, Selector)> {
    let arn_colons = if given.starts_with("arn:") { 5 } else { 0 };
    let colons = given.matches(':').count();
    if colons > arn_colons + 1 {
        return Err(invalid_name());
    }
    if colons == arn_colons {
        return Ok((ParameterName::parse(given)?, Selector::Latest));
    }
    let (name, selector) = given.rsplit_once(':').expect("a colon was counted");
    let name = ParameterName::parse(name)?;
    if selector.is_empty() {
        return Err(invalid_name());
    }
    let selector = match selector.parse::<u64>() {
        Ok(v) => Selector::Version(v),
        Err(_) => Selector::Label(selector.to_string()),
    };
    Ok((name, selector))
}

/// A GetParametersByPath / `Path` filter path: `/` or `/a/b` (a trailing slash allowed).
/// Returned with a trailing slash, the prefix every name under it starts with.
pub(crate) fn parse_path(path: &str) -> Result<String> {
    let ok_chars = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if !path.starts_with('/') || !ok_chars || path.len() > 2048 {
        return Err(validation(
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.",
        ));
    }
    let prefix = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    if prefix.matches('/').count() > MAX_HIERARCHY_LEVELS + 1 {
        return Err(SsmError::HierarchyLevelLimitExceeded);
    }
    Ok(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_arns_and_selectors() {
        assert_eq!(ParameterName::parse("/a/b").unwrap().as_str(), "/a/b");
        assert_eq!(ParameterName::parse("flat").unwrap().as_str(), "flat");
        assert_eq!(
            ParameterName::parse("arn:aws:ssm:us-east-1:000000000000:parameter/a/b")
                .unwrap()
                .as_str(),
            "/a/b"
        );
        assert_eq!(
            ParameterName::parse("arn:aws:ssm:us-east-1:000000000000:parameter/flat")
                .unwrap()
                .as_str(),
            "flat"
        );
        for bad in ["a/b", "/a//b", "/a/", "awsthing", "/SSM/x", "a b", ""] {
            assert!(ParameterName::parse_new(bad).is_err(), "{bad}");
        }
        let deep = "/l".repeat(16);
        assert!(matches!(
            ParameterName::parse_new(&deep),
            Err(SsmError::HierarchyLevelLimitExceeded)
        ));
        assert!(ParameterName::parse_new(&"/l".repeat(15)).is_ok());
        assert_eq!(
            parse_selector("/a:3").unwrap(),
            (ParameterName::parse("/a").unwrap(), Selector::Version(3))
        );
        let (name, selector) = parse_selector("arn:aws:ssm:r:1:parameter/a/b:prod").unwrap();
        assert_eq!(
            (name.as_str(), selector),
            ("/a/b", Selector::Label("prod".into()))
        );
        assert!(name.is_in("r", "1") && !name.is_in("r", "2"));
        assert!(ParameterName::parse("arn:aws:ecs:r:1:parameter/a").is_err());
        assert!(parse_selector("/a:1:2").is_err());
        assert_eq!(parse_path("/a").unwrap(), "/a/");
        assert_eq!(parse_path("/").unwrap(), "/");
        assert!(parse_path("a").is_err());
    }
}
