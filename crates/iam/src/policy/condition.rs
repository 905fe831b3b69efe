//! The `Condition` element: operators compiled with their typed values (patterns, numbers,
//! dates, CIDR blocks, ARN patterns), evaluated against the request's keys.
//!
//! The rules, as IAM documents them (reference_policies_elements_condition_operators.html and
//! reference_policies_condition-logic-multiple-context-keys-or-values.html): operators in a
//! block are ANDed, keys under one operator ANDed, values of one key ORed — NORed for the
//! negated operators (`StringNotEquals`: the request's value equals none of them). A key absent
//! from the request makes a condition false, but true for the negated operators; `…IfExists`
//! makes an absent key true; `Null` tests presence. `ForAnyValue:` is true when some request
//! value matches (false for an absent key), `ForAllValues:` when every one does (true for an
//! absent key). A policy variable without a value makes its condition false (IAM: "the entire
//! statement may be invalid").

use std::net::IpAddr;

use super::context::{ContextValue, Request, parse_bool, parse_number, parse_time};
use super::pattern::{ArnPattern, Syntax, Template};

/// The operator families; the negated ones are a family plus `negated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

/// `(name, family, negated)`; `ArnEquals` and `ArnLike` behave alike (both take wildcards).
const OPERATORS: &[(&str, Family, bool)] = &[
    ("StringEquals", Family::StringEquals, false),
    ("StringNotEquals", Family::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Family::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Family::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Family::StringLike, false),
    ("StringNotLike", Family::StringLike, true),
    ("NumericEquals", Family::NumericEquals, false),
    ("NumericNotEquals", Family::NumericEquals, true),
    ("NumericLessThan", Family::NumericLessThan, false),
    (
        "NumericLessThanEquals",
        Family::NumericLessThanEquals,
        false,
    ),
    ("NumericGreaterThan", Family::NumericGreaterThan, false),
    (
        "NumericGreaterThanEquals",
        Family::NumericGreaterThanEquals,
        false,
    ),
    ("DateEquals", Family::DateEquals, false),
    ("DateNotEquals", Family::DateEquals, true),
    ("DateLessThan", Family::DateLessThan, false),
    ("DateLessThanEquals", Family::DateLessThanEquals, false),
    ("DateGreaterThan", Family::DateGreaterThan, false),
    (
        "DateGreaterThanEquals",
        Family::DateGreaterThanEquals,
        false,
    ),
    ("Bool", Family::Bool, false),
    ("BinaryEquals", Family::BinaryEquals, false),
    ("IpAddress", Family::IpAddress, false),
    ("NotIpAddress", Family::IpAddress, true),
    ("ArnEquals", Family::ArnLike, false),
    ("ArnLike", Family::ArnLike, false),
    ("ArnNotEquals", Family::ArnLike, true),
    ("ArnNotLike", Family::ArnLike, true),
    ("Null", Family::Null, false),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// A parsed operator name: `[ForAnyValue:|ForAllValues:]Name[IfExists]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    family: Family,
    negated: bool,
    if_exists: bool,
    qualifier: Qualifier,
}

fn parse_operator(name: &str) -> Option<Operator> {
    let (qualifier, rest) = if let Some(r) = strip_prefix_ci(name, "ForAnyValue:") {
        (Qualifier::ForAnyValue, r)
    } else if let Some(r) = strip_prefix_ci(name, "ForAllValues:") {
        (Qualifier::ForAllValues, r)
    } else {
        (Qualifier::None, name)
    };
    let (base, if_exists) = match rest.len().checked_sub("IfExists".len()) {
        Some(at) if rest.is_char_boundary(at) && rest[at..].eq_ignore_ascii_case("IfExists") => {
            (&rest[..at], true)
        }
        _ => (rest, false),
    };
    let &(_, family, negated) = OPERATORS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(base))?;
    if family == Family::Null && if_exists {
        return None;
    }
    Some(Operator {
        family,
        negated,
        if_exists,
        qualifier,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// A CIDR block (`203.0.113.0/24`, `2001:db8::/32`; a bare address is /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cidr {
    V4(u32, u32),
    V6(u128, u128),
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
            None => (s.trim(), None),
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return None;
                }
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                Some(Cidr::V4(u32::from(a) & mask, mask))
            }
            IpAddr::V6(a) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return None;
                }
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                Some(Cidr::V6(u128::from(a) & mask, mask))
            }
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Cidr::V4(net, mask), IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (Cidr::V6(net, mask), IpAddr::V6(a)) => u128::from(a) & mask == *net,
            // An IPv4 request address against an IPv4-mapped IPv6 block and the reverse.
            (Cidr::V6(..), IpAddr::V4(a)) => self.contains(IpAddr::V6(a.to_ipv6_mapped())),
            (Cidr::V4(..), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|a| self.contains(IpAddr::V4(a))),
        }
    }
}

/// A condition's values in the operator's type; a value that does not parse (`NumericEquals`
/// on "ten") is kept as `None` and matches nothing.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Strings(Box<[Template]>),
    Numbers(Box<[Option<f64>]>),
    Dates(Box<[Option<i128>]>),
    Bools(Box<[Option<bool>]>),
    Binary(Box<[Box<str>]>),
    Cidrs(Box<[Option<Cidr>]>),
    Arns(Box<[ArnPattern]>),
    /// `Null`: true means "the key must be absent".
    Null(Option<bool>),
}

/// One operator on one key.
#[derive(Debug, Clone, PartialEq)]
struct KeyCondition {
    op: Operator,
    key: Box<str>,
    values: Values,
}

/// A statement's compiled `Condition` element.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ConditionBlock {
    conditions: Box<[KeyCondition]>,
}

/// Why a `Condition` element is refused (the caller words it as MalformedPolicyDocument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConditionError {
    NotAnObject,
    UnknownOperator(String),
    BadValue(String),
}

impl ConditionBlock {
    /// Compiles `{"Operator": {"key": value | [values]}}`; `variables` per policy version.
    pub fn parse(
        value: &serde_json::Value,
        variables: bool,
    ) -> Result<ConditionBlock, ConditionError> {
        let ops = value.as_object().ok_or(ConditionError::NotAnObject)?;
        let mut conditions = Vec::new();
        for (name, keys) in ops {
            let op = parse_operator(name)
                .ok_or_else(|| ConditionError::UnknownOperator(name.clone()))?;
            let keys = keys.as_object().ok_or(ConditionError::NotAnObject)?;
            for (key, raw) in keys {
                let texts =
                    value_texts(raw).ok_or_else(|| ConditionError::BadValue(key.clone()))?;
                let values = compile_values(op.family, &texts, variables);
                conditions.push(KeyCondition {
                    op,
                    key: key.to_ascii_lowercase().into_boxed_str(),
                    values,
                });
            }
        }
        Ok(ConditionBlock {
            conditions: conditions.into_boxed_slice(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Every condition holds.
    pub fn holds(&self, request: &Request) -> bool {
        self.conditions.iter().all(|c| c.holds(request))
    }
}

/// A condition value: a string, number or boolean, or an array of them.
fn value_texts(v: &serde_json::Value) -> Option<Vec<String>> {
    fn one(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match v {
        serde_json::Value::Array(items) => items.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}

fn compile_values(family: Family, texts: &[String], variables: bool) -> Values {
    let strings = |wildcards: bool, fold: bool| {
        let syntax = Syntax {
            wildcards,
            variables,
            fold,
        };
        Values::Strings(texts.iter().map(|t| Template::parse(t, syntax)).collect())
    };
    match family {
        Family::StringEquals => strings(false, false),
        Family::StringEqualsIgnoreCase => strings(false, true),
        Family::StringLike => strings(true, false),
        Family::NumericEquals
        | Family::NumericLessThan
        | Family::NumericLessThanEquals
        | Family::NumericGreaterThan
        | Family::NumericGreaterThanEquals => {
            Values::Numbers(texts.iter().map(|t| parse_number(t)).collect())
        }
        Family::DateEquals
        | Family::DateLessThan
        | Family::DateLessThanEquals
        | Family::DateGreaterThan
        | Family::DateGreaterThanEquals => {
            Values::Dates(texts.iter().map(|t| parse_time(t)).collect())
        }
        Family::Bool => Values::Bools(texts.iter().map(|t| parse_bool(t)).collect()),
        Family::BinaryEquals => Values::Binary(texts.iter().map(|t| t.trim().into()).collect()),
        Family::IpAddress => Values::Cidrs(texts.iter().map(|t| Cidr::parse(t)).collect()),
        Family::ArnLike => Values::Arns(
            texts
                .iter()
                .map(|t| ArnPattern::parse(t, variables))
                .collect(),
        ),
        Family::Null => Values::Null(texts.first().and_then(|t| parse_bool(t))),
    }
}

impl KeyCondition {
    fn holds(&self, request: &Request) -> bool {
        let present = request.lookup(&self.key);
        if let Values::Null(want_absent) = self.values {
            return want_absent.is_some_and(|absent| absent == present.is_empty());
        }
        let op = self.op;
        if present.is_empty() {
            return op.if_exists
                || match op.qualifier {
                    Qualifier::ForAllValues => true,
                    Qualifier::ForAnyValue => false,
                    Qualifier::None => op.negated,
                };
        }
        self.holds_on(present, request).unwrap_or(false)
    }

    /// With the key present; `None` when a policy variable has no value.
    fn holds_on(&self, present: &[ContextValue], request: &Request) -> Option<bool> {
        let op = self.op;
        match op.qualifier {
            Qualifier::None => {
                // A single-valued operator on several request values: true when one matches
                // (and, negated, when none does).
                let mut any = false;
                for v in present {
                    if self.matches(v, request)? {
                        any = true;
                        break;
                    }
                }
                Some(any != op.negated)
            }
            Qualifier::ForAnyValue => {
                let mut any = false;
                for v in present {
                    if self.matches(v, request)? != op.negated {
                        any = true;
                        break;
                    }
                }
                Some(any)
            }
            Qualifier::ForAllValues => {
                let mut all = true;
                for v in present {
                    if self.matches(v, request)? == op.negated {
                        all = false;
                        break;
                    }
                }
                Some(all)
            }
        }
    }

    /// The positive operator on one request value: some policy value matches it.
    fn matches(&self, v: &ContextValue, request: &Request) -> Option<bool> {
        let f = self.op.family;
        Some(match &self.values {
            Values::Strings(ts) => {
                for t in ts.iter() {
                    if t.matches(v.text(), request)? {
                        return Some(true);
                    }
                }
                false
            }
            Values::Arns(ps) => {
                for p in ps.iter() {
                    if p.matches(v.text(), request)? {
                        return Some(true);
                    }
                }
                false
            }
            Values::Numbers(ns) => v.number.is_some_and(|x| {
                ns.iter().flatten().any(|&n| match f {
                    Family::NumericEquals => x == n,
                    Family::NumericLessThan => x < n,
                    Family::NumericLessThanEquals => x <= n,
                    Family::NumericGreaterThan => x > n,
                    _ => x >= n,
                })
            }),
            Values::Dates(ds) => v.time.is_some_and(|x| {
                ds.iter().flatten().any(|&d| match f {
                    Family::DateEquals => x == d,
                    Family::DateLessThan => x < d,
                    Family::DateLessThanEquals => x <= d,
                    Family::DateGreaterThan => x > d,
                    _ => x >= d,
                })
            }),
            Values::Bools(bs) => v
                .boolean
                .is_some_and(|x| bs.iter().flatten().any(|&b| b == x)),
            Values::Binary(bs) => bs.iter().any(|b| **b == *v.text().trim()),
            Values::Cidrs(cs) => {
                v.ip.is_some_and(|ip| cs.iter().flatten().any(|c| c.contains(ip)))
            }
            Values::Null(_) => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let op = parse_operator("ForAllValues:StringNotLikeIfExists").unwrap();
        assert_eq!(op.family, Family::StringLike);
        assert!(op.negated && op.if_exists);
        assert_eq!(op.qualifier, Qualifier::ForAllValues);
        assert!(parse_operator("StringEqualz").is_none());
        assert!(parse_operator("NullIfExists").is_none());
        assert_eq!(parse_operator("ArnEquals").unwrap().family, Family::ArnLike);
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.7".parse().unwrap()));
        assert!(!c.contains("203.0.114.7".parse().unwrap()));
        assert!(!c.contains("2001:db8::1".parse().unwrap()));
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!c.contains("2001:db9::1".parse().unwrap()));
        assert!(
            Cidr::parse("10.0.0.1")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(
            Cidr::parse("::ffff:10.0.0.0/104")
                .unwrap()
                .contains("10.1.2.3".parse().unwrap())
        );
    }
}
