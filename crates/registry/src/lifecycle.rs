//! ECR lifecycle policies as the user guide defines them ("Lifecycle policies", "Lifecycle
//! policy properties", "Examples of lifecycle policies"): the policy text parsed and checked
//! with ECR's validation messages, and a pure planner (images in, expirations out) shared by
//! the preview and the daily run.
//!
//! Evaluation, as documented: every rule looks at every image; rules are applied by
//! priority (lowest number first); an image whose tags a higher-priority rule matched is
//! never expired by a lower one (it still counts towards that rule's `imageCountMoreThan`);
//! each rule expires oldest first (`pushed_at`).

use std::collections::{HashMap, HashSet};

use berth_model::Digest;
use serde_json::{Map, Value};

use crate::RegistryError;

/// Most wildcards (`*`) one `tagPatternList` entry may hold (the user guide: "a maximum
/// limit of four wildcards (*) per string").
const MAX_WILDCARDS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// Which tagged images a `tagged` rule selects: those with every prefix (or pattern)
/// matched by one of their tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    None,
    Prefixes(Vec<String>),
    Patterns(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountRule {
    /// Keep the `n` most recently pushed, expire the rest.
    ImageCountMoreThan(u64),
    /// Expire images pushed more than `n` days ago.
    SinceImagePushedDays(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    pub priority: i64,
    pub tag_status: TagStatus,
    pub tags: TagFilter,
    pub count: CountRule,
}

/// A parsed policy, its rules in evaluation order (lowest priority number first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicy {
    pub rules: Vec<LifecycleRule>,
}

/// What the planner needs to know of an image.
#[derive(Debug, Clone)]
pub struct LifecycleImage {
    pub digest: Digest,
    pub tags: Vec<String>,
    pub pushed_at: f64,
}

/// One image a rule expires.
#[derive(Debug, Clone, PartialEq)]
pub struct Expiration {
    pub digest: Digest,
    pub rule_priority: i64,
}

/// ECR's InvalidParameterException for a policy it refuses. The structural messages are
/// those of ECR's JSON-schema check (seen in published AWS answers, e.g.
/// cloudposse/terraform-aws-ecr#132's "instance failed to match exactly one schema (matched
/// 0 out of 2)"); the semantic ones as AWS answers them (quoted in users' notes: "Must
/// specify tagPrefixList or tagPatternList when tagStatus=TAGGED.", "Rule for
/// tagStatus=ANY must have the lowest priority per storage class", "Only one rule can
/// select Untagged images per storage class").
fn invalid(why: impl std::fmt::Display) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {why}'"
    ))
}

fn check_properties(
    obj: &Map<String, Value>,
    required: &[&str],
    allowed: &[&str],
) -> Result<(), RegistryError> {
    let mut missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !obj.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(invalid(format!(
            "object has missing required properties ({})",
            Value::from(missing)
        )));
    }
    let mut extra: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(invalid(format!(
            "object instance has properties which are not allowed by the schema: ({})",
            Value::from(extra)
        )));
    }
    Ok(())
}

fn enum_value<'a>(v: &'a Value, allowed: &[&str]) -> Result<&'a str, RegistryError> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(s),
        _ => {
            // The schema validator shows the value as JSON (a string quoted).
            Err(invalid(format!(
                "instance value ({v}) not found in enum (possible values: {})",
                Value::from(allowed.to_vec())
            )))
        }
    }
}

fn string_list(v: &Value) -> Result<Vec<String>, RegistryError> {
    let items = v.as_array().ok_or_else(|| {
        invalid("instance type does not match any allowed primitive type (allowed: [\"array\"])")
    })?;
    items
        .iter()
        .map(|s| {
            s.as_str().map(str::to_string).ok_or_else(|| {
                invalid("instance type does not match any allowed primitive type (allowed: [\"string\"])")
            })
        })
        .collect()
}

fn object(v: &Value) -> Result<&Map<String, Value>, RegistryError> {
    v.as_object().ok_or_else(|| {
        invalid("instance type does not match any allowed primitive type (allowed: [\"object\"])")
    })
}

fn parse_rule(v: &Value) -> Result<LifecycleRule, RegistryError> {
    let rule = object(v)?;
    check_properties(
        rule,
        &["rulePriority", "selection", "action"],
        &["rulePriority", "description", "selection", "action"],
    )?;
    let priority = rule["rulePriority"].as_i64().ok_or_else(|| {
        invalid("instance type does not match any allowed primitive type (allowed: [\"integer\"])")
    })?;
    if priority < 1 {
        return Err(invalid(format!(
            "numeric instance is lower than the required minimum (minimum: 1, found: {priority})"
        )));
    }
    let action = object(&rule["action"])?;
    check_properties(action, &["type"], &["type"])?;
    enum_value(&action["type"], &["expire"])?;

    let selection = object(&rule["selection"])?;
    check_properties(
        selection,
        &["tagStatus", "countType", "countNumber"],
        &[
            "tagStatus",
            "tagPrefixList",
            "tagPatternList",
            "countType",
            "countUnit",
            "countNumber",
        ],
    )?;
    let tag_status = match enum_value(&selection["tagStatus"], &["any", "tagged", "untagged"])? {
        "tagged" => TagStatus::Tagged,
        "untagged" => TagStatus::Untagged,
        _ => TagStatus::Any,
    };
    let count_number = selection["countNumber"].as_i64().ok_or_else(|| {
        invalid("instance type does not match any allowed primitive type (allowed: [\"integer\"])")
    })?;
    if count_number < 1 {
        return Err(invalid(format!(
            "numeric instance is lower than the required minimum (minimum: 1, found: {count_number})"
        )));
    }
    // The schema's oneOf: imageCountMoreThan without countUnit, sinceImagePushed with it.
    let count = match (
        selection["countType"].as_str(),
        selection.get("countUnit").map(|u| u.as_str()),
    ) {
        (Some("imageCountMoreThan"), None) => CountRule::ImageCountMoreThan(count_number as u64),
        (Some("sinceImagePushed"), Some(Some("days"))) => {
            CountRule::SinceImagePushedDays(count_number as u64)
        }
        (Some("sinceImagePushed"), Some(_)) => {
            return Err(invalid(format!(
                "instance value ({}) not found in enum (possible values: [\"days\"])",
                selection["countUnit"]
            )));
        }
        _ => {
            return Err(invalid(
                "instance failed to match exactly one schema (matched 0 out of 2)",
            ));
        }
    };
    let prefixes = selection
        .get("tagPrefixList")
        .map(string_list)
        .transpose()?;
    let patterns = selection
        .get("tagPatternList")
        .map(string_list)
        .transpose()?;
    let tags = match (tag_status, prefixes, patterns) {
        (TagStatus::Tagged, Some(_), Some(_)) => {
            return Err(invalid(
                "tagPrefixList and tagPatternList cannot both be specified",
            ));
        }
        (TagStatus::Tagged, Some(p), None) if !p.is_empty() => TagFilter::Prefixes(p),
        (TagStatus::Tagged, None, Some(p)) if !p.is_empty() => {
            if let Some(bad) = p.iter().find(|p| p.matches('*').count() > MAX_WILDCARDS) {
                return Err(invalid(format!(
                    "tagPatternList value '{bad}' has more than {MAX_WILDCARDS} wildcards"
                )));
            }
            TagFilter::Patterns(p)
        }
        (TagStatus::Tagged, _, _) => {
            return Err(invalid(
                "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.",
            ));
        }
        (_, None, None) => TagFilter::None,
        (_, _, _) => {
            return Err(invalid(
                "tagPrefixList and tagPatternList can only be specified when tagStatus=TAGGED.",
            ));
        }
    };
    Ok(LifecycleRule {
        priority,
        tag_status,
        tags,
        count,
    })
}

/// Parse and check a lifecycle policy text.
pub fn parse_lifecycle_policy(text: &str) -> Result<LifecyclePolicy, RegistryError> {
    let doc: Value = serde_json::from_str(text)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| invalid("Could not map policyString into LifecyclePolicy."))?;
    let Some(rules) = doc.get("rules") else {
        return Err(invalid(
            "object has missing required properties ([\"rules\"])",
        ));
    };
    let rules = rules.as_array().ok_or_else(|| {
        invalid("instance type does not match any allowed primitive type (allowed: [\"array\"])")
    })?;
    if rules.is_empty() {
        return Err(invalid(
            "array is too short: must have at least 1 elements but instance has 0 elements",
        ));
    }
    let mut rules = rules
        .iter()
        .map(parse_rule)
        .collect::<Result<Vec<_>, _>>()?;
    rules.sort_by_key(|r| r.priority);
    if rules.windows(2).any(|w| w[0].priority == w[1].priority) {
        // No published AWS answer found for this case; the user guide's words.
        return Err(invalid("rulePriority must be unique"));
    }
    if rules[..rules.len() - 1]
        .iter()
        .any(|r| r.tag_status == TagStatus::Any)
    {
        return Err(invalid(
            "Rule for tagStatus=ANY must have the lowest priority per storage class",
        ));
    }
    if rules
        .iter()
        .filter(|r| r.tag_status == TagStatus::Untagged)
        .count()
        > 1
    {
        return Err(invalid(
            "Only one rule can select Untagged images per storage class",
        ));
    }
    Ok(LifecyclePolicy { rules })
}

/// `*` matches any run of characters (also none); everything else matches itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic greedy match with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl LifecycleRule {
    /// Whether the rule's tagging requirements select this image.
    pub fn selects(&self, image: &LifecycleImage) -> bool {
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => image.tags.is_empty(),
            TagStatus::Tagged => match &self.tags {
                TagFilter::None => false,
                TagFilter::Prefixes(ps) => ps
                    .iter()
                    .all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str()))),
                TagFilter::Patterns(ps) => ps
                    .iter()
                    .all(|p| image.tags.iter().any(|t| wildcard_match(p, t))),
            },
        }
    }
}

/// The images `policy` expires among `images` at `now` (seconds since the epoch), each with
/// the priority of the rule that expires it, oldest first within a rule.
pub fn plan_expirations(
    policy: &LifecyclePolicy,
    images: &[LifecycleImage],
    now: f64,
) -> Vec<Expiration> {
    let mut seen: HashSet<&Digest> = HashSet::new();
    let mut expired: HashMap<&Digest, i64> = HashMap::new();
    let mut out = Vec::new();
    for rule in &policy.rules {
        let mut matched: Vec<&LifecycleImage> = images.iter().filter(|i| rule.selects(i)).collect();
        // Youngest first; ties broken by digest so that a plan is deterministic.
        matched.sort_by(|a, b| {
            b.pushed_at
                .total_cmp(&a.pushed_at)
                .then_with(|| a.digest.cmp(&b.digest))
        });
        let mut candidates: Vec<&LifecycleImage> = match rule.count {
            CountRule::ImageCountMoreThan(n) => matched.iter().skip(n as usize).copied().collect(),
            CountRule::SinceImagePushedDays(days) => {
                let cutoff = now - days as f64 * 86400.0;
                matched
                    .iter()
                    .filter(|i| i.pushed_at < cutoff)
                    .copied()
                    .collect()
            }
        };
        candidates.reverse(); // oldest first
        for image in candidates {
            if seen.contains(&image.digest) || expired.contains_key(&image.digest) {
                continue;
            }
            expired.insert(&image.digest, rule.priority);
            out.push(Expiration {
                digest: image.digest.clone(),
                rule_priority: rule.priority,
            });
        }
        seen.extend(matched.iter().map(|i| &i.digest));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86400.0;
    const NOW: f64 = 100.0 * DAY;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    fn image(n: u8, tags: &[&str], days_ago: f64) -> LifecycleImage {
        LifecycleImage {
            digest: digest(n),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: NOW - days_ago * DAY,
        }
    }

    fn rule(priority: i64, selection: Value) -> Value {
        serde_json::json!({"rulePriority": priority, "selection": selection, "action": {"type": "expire"}})
    }

    fn policy(rules: Vec<Value>) -> LifecyclePolicy {
        parse_lifecycle_policy(&serde_json::json!({ "rules": rules }).to_string()).unwrap()
    }

    fn expired(policy: &LifecyclePolicy, images: &[LifecycleImage]) -> Vec<(Digest, i64)> {
        plan_expirations(policy, images, NOW)
            .into_iter()
            .map(|e| (e.digest, e.rule_priority))
            .collect()
    }

    fn count_rule(priority: i64, key: &str, tags: &[&str], n: u64) -> Value {
        let mut selection = serde_json::json!({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": n});
        selection[key] = serde_json::json!(tags);
        rule(priority, selection)
    }

    /// The user guide's "Filtering on multiple rules", example A: rule 2 would expire B,
    /// but rule 1 (higher priority) saw B, so only A goes.
    #[test]
    fn a_higher_priority_rule_shields_what_it_saw() {
        let images = [
            image(0xa, &["beta-1", "prod-1"], 10.0),
            image(0xb, &["beta-2", "prod-2"], 9.0),
            image(0xc, &["beta-3"], 8.0),
        ];
        let p = policy(vec![
            count_rule(1, "tagPrefixList", &["prod"], 1),
            count_rule(2, "tagPrefixList", &["beta"], 1),
        ]);
        assert_eq!(expired(&p, &images), vec![(digest(0xa), 1)]);
        // Example B: the priorities swapped: rule 1 expires A and B, rule 2 sees nothing new.
        let p = policy(vec![
            count_rule(1, "tagPrefixList", &["beta"], 1),
            count_rule(2, "tagPrefixList", &["prod"], 1),
        ]);
        assert_eq!(
            expired(&p, &images),
            vec![(digest(0xa), 1), (digest(0xb), 1)]
        );
    }

    /// "Filtering on multiple tags in a single rule": every prefix must match a tag.
    #[test]
    fn every_prefix_must_match_and_age_counts_in_days() {
        let images = [
            image(0xa, &["alpha-1"], 12.0),
            image(0xb, &["beta-1"], 11.0),
            image(0xc, &["alpha-2", "beta-2"], 10.0),
            image(0xd, &["alpha-3"], 4.0),
            image(0xe, &["beta-3"], 3.0),
            image(0xf, &["alpha-4", "beta-4"], 2.0),
        ];
        let p = policy(vec![rule(
            1,
            serde_json::json!({"tagStatus": "tagged", "tagPrefixList": ["alpha", "beta"],
                "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 5}),
        )]);
        assert_eq!(expired(&p, &images), vec![(digest(0xc), 1)]);
    }

    #[test]
    fn untagged_any_and_patterns() {
        let images = [
            image(1, &[], 5.0),
            image(2, &[], 4.0),
            image(3, &["v1.0-rc1"], 3.0),
            image(4, &["v1.0"], 2.0),
            image(5, &["latest"], 1.0),
        ];
        let p = policy(vec![
            rule(
                1,
                serde_json::json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}),
            ),
            count_rule(2, "tagPatternList", &["v*-rc*"], 1),
            rule(
                3,
                serde_json::json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}),
            ),
        ]);
        // Rule 1 expires the older untagged image; rule 2 keeps its only rc; rule 3 (any)
        // keeps the youngest of all five, and may expire only what no rule saw: v1.0.
        assert_eq!(expired(&p, &images), vec![(digest(1), 1), (digest(4), 3)]);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("prod*", "prod"));
        assert!(wildcard_match("prod*", "prod-2"));
        assert!(!wildcard_match("prod*", "xprod"));
        assert!(wildcard_match("*test*1*2*3", "a-test-1-2-3"));
        assert!(wildcard_match("*", "anything"));
        assert!(!wildcard_match("v*-rc", "v1-rc1"));
        assert!(wildcard_match("a*b*c", "abbbc"));
    }

    #[test]
    fn malformed_policies_are_refused_with_ecr_messages() {
        let refused = |text: &str| match parse_lifecycle_policy(text) {
            Err(RegistryError::InvalidParameter(m)) => m,
            other => panic!("{text}: {other:?}"),
        };
        let prefix = "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ";
        let cases = [
            (
                "not json",
                "Could not map policyString into LifecyclePolicy.'",
            ),
            (
                "{}",
                "object has missing required properties ([\"rules\"])'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}}]}"#,
                "object has missing required properties ([\"action\"])'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#,
                "instance failed to match exactly one schema (matched 0 out of 2)'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}}]}"#,
                "numeric instance is lower than the required minimum (minimum: 1, found: 0)'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "Rule for tagStatus=ANY must have the lowest priority per storage class'",
            ),
            (
                r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["a*b*c*d*e*f"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
                "tagPatternList value 'a*b*c*d*e*f' has more than 4 wildcards'",
            ),
        ];
        for (text, why) in cases {
            assert_eq!(refused(text), format!("{prefix}{why}"), "{text}");
        }
    }
}
