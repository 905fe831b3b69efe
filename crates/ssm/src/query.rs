//! The calls over many parameters: GetParametersByPath (a hierarchy, recursive or one
//! level) and DescribeParameters, with `ParameterFilters` (and the older `Filters`), a
//! page at a time by the key-based token every list operation uses.

use berth_store::page_token;

use crate::names::parse_path;
use crate::{
    Parameter, ParameterName, ParameterRecord, ParameterVersion, Result, Ssm, SsmError, SsmScope,
    decode,
};

/// How a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOption {
    Equals,
    BeginsWith,
    Contains,
    Recursive,
    OneLevel,
}

/// One `ParameterStringFilter` (or an older `ParametersFilter`, given `Equals` or, for
/// `Name`, `BeginsWith`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub key: String,
    pub option: Option<String>,
    pub values: Vec<String>,
}

/// One page of an answer and the token of the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// Which call a filter is checked for: the two accept different keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    ByPath,
    Describe,
}

/// A filter checked: its key, option and values.
struct Checked {
    key: String,
    option: FilterOption,
    values: Vec<String>,
}

fn check_filters(filters: &[Filter], call: Call) -> Result<Vec<Checked>> {
    filters
        .iter()
        .map(|f| {
            let key = f.key.as_str();
            let known = match call {
                Call::ByPath => matches!(key, "Type" | "KeyId" | "Label"),
                Call::Describe => {
                    matches!(key, "Name" | "Type" | "KeyId" | "Path" | "Tier" | "DataType")
                        || key.starts_with("tag:")
                }
            };
            if !known {
                return Err(SsmError::InvalidFilterKey(match call {
                    Call::ByPath => format!(
                        "The following filter key is not valid: {key}. Valid filter keys include: [Type, KeyId, Label]."
                    ),
                    Call::Describe => format!(
                        "The following filter key is not valid: {key}. Valid filter keys include: [Path, Name, Type, KeyId, Tier, DataType, tag:<key>]."
                    ),
                }));
            }
            let option = match (key, f.option.as_deref()) {
                ("Path", None) => FilterOption::OneLevel,
                (_, None) => FilterOption::Equals,
                ("Path", Some("Recursive")) => FilterOption::Recursive,
                ("Path", Some("OneLevel")) => FilterOption::OneLevel,
                // Equals and BeginsWith for every other key, Contains for Name too, only
                // Equals for Label (ParameterStringFilter's API reference).
                (k, Some("BeginsWith")) if k != "Path" && k != "Label" => {
                    FilterOption::BeginsWith
                }
                ("Name", Some("Contains")) => FilterOption::Contains,
                (k, Some("Equals")) if k != "Path" => FilterOption::Equals,
                (_, Some(other)) => {
                    return Err(SsmError::InvalidFilterOption(format!(
                        "The following filter option is not valid: {other}. Valid options include: [Recursive, OneLevel] for Path, [Equals, BeginsWith, Contains] for Name, [Equals] for Label, [Equals, BeginsWith] for other keys."
                    )));
                }
            };
            let tag_key = key.starts_with("tag:");
            if (f.values.is_empty() && !tag_key) || f.values.len() > 50 {
                return Err(SsmError::InvalidFilterValue(format!(
                    "The following filter values are missing or too many: {key}. Give 1 to 50 values."
                )));
            }
            if key == "Path" {
                for path in &f.values {
                    parse_path(path)?;
                }
            }
            Ok(Checked {
                key: key.to_string(),
                option,
                values: f.values.clone(),
            })
        })
        .collect()
}

/// Whether `name` lies under `path` (`/a` or `/a/`): directly, or at any depth.
fn under(name: &str, path: &str, recursive: bool) -> bool {
    let Ok(prefix) = parse_path(path) else {
        return false;
    };
    match name.strip_prefix(&prefix) {
        Some(rest) => !rest.is_empty() && (recursive || !rest.contains('/')),
        None => false,
    }
}

fn text_matches(option: FilterOption, have: &str, values: &[String]) -> bool {
    values.iter().any(|want| match option {
        FilterOption::BeginsWith => have.starts_with(want.as_str()),
        FilterOption::Contains => have.contains(want.as_str()),
        _ => have == want,
    })
}

/// Whether a record passes a filter; for `Label`, the version it selects.
fn passes<'r>(record: &'r ParameterRecord, filter: &Checked) -> Option<&'r ParameterVersion> {
    let latest = record.latest();
    let ok = match filter.key.as_str() {
        "Name" => {
            // SSM matches a name with or without the leading slash it was given.
            let bare = |s: &str| s.trim_start_matches('/').to_string();
            let values: Vec<String> = filter.values.iter().map(|v| bare(v)).collect();
            text_matches(filter.option, &bare(&record.name), &values)
        }
        "Type" => text_matches(filter.option, latest.kind.as_str(), &filter.values),
        "KeyId" => latest
            .key_id
            .as_deref()
            .is_some_and(|k| text_matches(filter.option, k, &filter.values)),
        "Tier" => text_matches(filter.option, latest.tier.as_str(), &filter.values),
        "DataType" => text_matches(filter.option, &latest.data_type, &filter.values),
        "Path" => filter
            .values
            .iter()
            .any(|path| under(&record.name, path, filter.option == FilterOption::Recursive)),
        "Label" => {
            return record
                .versions
                .iter()
                .rev()
                .find(|v| v.labels.iter().any(|l| filter.values.contains(l)));
        }
        key => {
            let tag = key.strip_prefix("tag:").unwrap_or(key);
            record.tags.iter().any(|(k, v)| {
                k == tag
                    && (filter.values.is_empty() || text_matches(filter.option, v, &filter.values))
            })
        }
    };
    ok.then_some(latest)
}

/// The version a record shows when it passes every filter (the labelled one for `Label`).
fn select<'r>(record: &'r ParameterRecord, filters: &[Checked]) -> Option<&'r ParameterVersion> {
    let mut shown = record.latest();
    for filter in filters {
        let version = passes(record, filter)?;
        if filter.key == "Label" {
            shown = version;
        }
    }
    Some(shown)
}

fn check_max(max: Option<i64>, limit: i64) -> Result<usize> {
    match max {
        None => Ok(limit as usize),
        Some(n) if (1..=limit).contains(&n) => Ok(n as usize),
        Some(n) => Err(crate::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value {}",
            if n < 1 {
                "greater than or equal to 1".to_string()
            } else {
                format!("less than or equal to {limit}")
            }
        ))),
    }
}

impl Ssm {
    /// The records under `prefix` that `keep` selects a version of, a page at a time.
    fn page_of(
        &self,
        scope: &SsmScope,
        prefix: &str,
        max: usize,
        next_token: Option<&str>,
        decrypt: bool,
        keep: impl Fn(&ParameterRecord) -> Option<ParameterVersion>,
    ) -> Result<Page<Parameter>> {
        let after = match next_token {
            Some(token) => Some(page_token::decode(token).ok_or(SsmError::InvalidNextToken)?),
            None => None,
        };
        let base = scope.parameters_prefix();
        let mut found: Vec<(String, ParameterRecord, ParameterVersion)> = Vec::new();
        berth_store::scan(self.store.as_ref(), prefix, after, |kv| {
            let record = decode(&kv.key, &kv.value)?;
            if let Some(version) = keep(&record) {
                found.push((kv.key.clone(), record, version));
            }
            Ok::<_, SsmError>(found.len() <= max)
        })?;
        let next_token = (found.len() > max).then(|| {
            found.truncate(max);
            page_token::encode(&found[max - 1].0)
        });
        let items = found
            .into_iter()
            .map(|(key, record, version)| {
                let name = ParameterName::parse(key.strip_prefix(&base).unwrap_or(&record.name))?;
                Ok(Parameter {
                    arn: scope.parameter_arn(name.as_str()),
                    selector: None,
                    version: self.shown(scope, &name, version, decrypt)?,
                    name: name.as_str().to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next_token })
    }

    /// GetParametersByPath: the parameters under `path` (one level, or every level when
    /// `recursive`) that pass `filters` (Type, KeyId, Label); 1–10 a page.
    #[allow(clippy::too_many_arguments)]
    pub fn parameters_by_path(
        &self,
        scope: &SsmScope,
        path: &str,
        recursive: bool,
        filters: &[Filter],
        decrypt: bool,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<Page<Parameter>> {
        let prefix = parse_path(path)?;
        let filters = check_filters(filters, Call::ByPath)?;
        let max = check_max(max_results, 10)?;
        let key_prefix = format!("{}{prefix}", scope.parameters_prefix());
        self.page_of(scope, &key_prefix, max, next_token, decrypt, |record| {
            let rest = record.name.strip_prefix(&prefix)?;
            if !recursive && rest.contains('/') {
                return None;
            }
            select(record, &filters).cloned()
        })
    }

    /// DescribeParameters: every parameter's latest version (values left out by the edge)
    /// that passes the filters; 1–50 a page.
    pub fn describe_parameters(
        &self,
        scope: &SsmScope,
        filters: &[Filter],
        parameter_filters: &[Filter],
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<Page<Parameter>> {
        if !filters.is_empty() && !parameter_filters.is_empty() {
            return Err(crate::validation(
                "You can use either Filters or ParameterFilters in a single request.",
            ));
        }
        let older: Vec<Filter> = filters
            .iter()
            .map(|f| {
                if !matches!(f.key.as_str(), "Name" | "Type" | "KeyId") {
                    return Err(SsmError::InvalidFilterKey(format!(
                        "1 validation error detected: Value '{}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [Name, Type, KeyId]",
                        f.key
                    )));
                }
                Ok(Filter {
                    key: f.key.clone(),
                    option: Some(
                        if f.key == "Name" { "BeginsWith" } else { "Equals" }.to_string(),
                    ),
                    values: f.values.clone(),
                })
            })
            .collect::<Result<_>>()?;
        let filters = check_filters(
            if older.is_empty() {
                parameter_filters
            } else {
                &older
            },
            Call::Describe,
        )?;
        let max = check_max(max_results, 50)?;
        self.page_of(
            scope,
            &scope.parameters_prefix(),
            max,
            next_token,
            false,
            |record| select(record, &filters).cloned(),
        )
    }
}
