//! The `Filter.N.Name` / `Filter.N.Value.M` of EC2's Describe calls: a resource matches when
//! every filter has a value among the resource's values for that name; values may hold `*`
//! and `?` wildcards. `tag:KEY`, `tag-key` and `tag-value` work on every resource.

use crate::tag::Tag;
use crate::{Ec2Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// A resource Describe calls filter: its values for a filter name (`None`: a name this
/// resource's call does not know), and its tags.
pub(crate) trait Filtered {
    fn filter_values(&self, name: &str) -> Option<Vec<String>>;
    fn tags(&self) -> &[Tag];
}

/// Whether `item` passes every filter. A filter name the call does not know is refused, as
/// EC2 does.
pub(crate) fn matches(filters: &[Filter], item: &impl Filtered) -> Result<bool> {
    for filter in filters {
        let values: Vec<String> = if let Some(key) = filter.name.strip_prefix("tag:") {
            item.tags()
                .iter()
                .filter(|t| t.key == key)
                .map(|t| t.value.clone())
                .collect()
        } else if filter.name == "tag-key" {
            item.tags().iter().map(|t| t.key.clone()).collect()
        } else if filter.name == "tag-value" {
            item.tags().iter().map(|t| t.value.clone()).collect()
        } else {
            item.filter_values(&filter.name).ok_or_else(|| {
                Ec2Error::InvalidParameterValue(format!("The filter '{}' is invalid", filter.name))
            })?
        };
        let hit = filter
            .values
            .iter()
            .any(|pattern| values.iter().any(|v| wildcard(pattern, v)));
        if !hit {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `*` any run of characters, `?` any one; otherwise exact.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
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

/// `true`/`false` as filter values show a boolean.
pub(crate) fn flag(b: bool) -> Vec<String> {
    vec![b.to_string()]
}

pub(crate) fn one(s: &str) -> Vec<String> {
    vec![s.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        assert!(wildcard("web-*", "web-a"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "abbc"));
        assert!(wildcard("*b*", "abc"));
        assert!(!wildcard("web", "web-a"));
    }
}
