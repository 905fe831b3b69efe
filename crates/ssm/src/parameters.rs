//! The calls on one parameter: PutParameter (versions, tiers, patterns, policies, the
//! SecureString seal), GetParameter(s) with selectors, DeleteParameter(s),
//! GetParameterHistory, LabelParameterVersion / UnlabelParameterVersion and tags.

use berth_store::{Change, page_token};

use crate::names::{ParameterName, Selector, parse_selector};
use crate::{
    MAX_LABELS_PER_VERSION, MAX_TAGS, MAX_VERSIONS, Parameter, ParameterRecord, ParameterType,
    ParameterVersion, Result, Ssm, SsmError, SsmScope, StoredPolicy, Tier, now_ms, validation,
};

/// A PutParameter request, its fields as the API names them. `Debug` leaves the value out
/// (it may be a SecureString's plaintext).
#[derive(Clone, Default)]
pub struct PutParameter {
    pub name: String,
    pub value: String,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub key_id: Option<String>,
    pub overwrite: bool,
    pub allowed_pattern: Option<String>,
    pub tags: Vec<(String, String)>,
    pub tier: Option<String>,
    pub policies: Option<String>,
    pub data_type: Option<String>,
    /// The caller's ARN (LastModifiedUser).
    pub user: String,
}

impl std::fmt::Debug for PutParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutParameter")
            .field("name", &self.name)
            .field("value", &"<hidden>")
            .field("kind", &self.kind)
            .field("overwrite", &self.overwrite)
            .field("tier", &self.tier)
            .finish_non_exhaustive()
    }
}

/// PutParameter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    pub version: u64,
    pub tier: Tier,
}

/// LabelParameterVersion's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelOutcome {
    pub version: u64,
    pub invalid_labels: Vec<String>,
}

/// UnlabelParameterVersion's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlabelOutcome {
    pub removed_labels: Vec<String>,
    pub invalid_labels: Vec<String>,
}

fn not_found(name: &str) -> SsmError {
    SsmError::ParameterNotFound(format!("Parameter {name} not found."))
}

fn version_not_found(name: &str, version: u64) -> SsmError {
    SsmError::ParameterVersionNotFound(format!(
        "Systems Manager could not find version {version} of {name}. Verify the version and try again."
    ))
}

/// The tier a write lands in, and the value limit it checks.
fn choose_tier(
    asked: Option<&str>,
    current: Option<Tier>,
    value_len: usize,
    has_policies: bool,
) -> Result<Tier> {
    let tier = match asked {
        Some("Standard") => Tier::Standard,
        Some("Advanced") => Tier::Advanced,
        Some("Intelligent-Tiering") => {
            if value_len > Tier::Standard.value_limit()
                || has_policies
                || current == Some(Tier::Advanced)
            {
                Tier::Advanced
            } else {
                Tier::Standard
            }
        }
        Some(other) => {
            return Err(validation(format!(
                "1 validation error detected: Value '{other}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]"
            )));
        }
        None => current.unwrap_or(Tier::Standard),
    };
    if tier == Tier::Standard && current == Some(Tier::Advanced) {
        return Err(validation(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
        ));
    }
    if value_len > Tier::Advanced.value_limit() {
        return Err(validation(format!(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to {}",
            Tier::Advanced.value_limit()
        )));
    }
    if tier == Tier::Standard && value_len > Tier::Standard.value_limit() {
        return Err(validation(
            "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
        ));
    }
    if tier == Tier::Standard && has_policies {
        return Err(validation(
            "Parameter policies are supported only for parameters in the advanced-parameter tier.",
        ));
    }
    Ok(tier)
}

/// `Policies`: a JSON array of policies, each naming its `Type`.
fn parse_policies(text: &str) -> Result<Vec<StoredPolicy>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| SsmError::InvalidPolicy("The policies input is not valid JSON.".into()))?;
    let list = match value {
        serde_json::Value::Array(list) => list,
        one @ serde_json::Value::Object(_) => vec![one],
        _ => {
            return Err(SsmError::InvalidPolicy(
                "The policies input is not valid.".into(),
            ));
        }
    };
    list.into_iter()
        .map(|policy| {
            let kind = policy
                .get("Type")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_string();
            if !matches!(
                kind.as_str(),
                "Expiration" | "ExpirationNotification" | "NoChangeNotification"
            ) {
                return Err(SsmError::InvalidPolicy(format!(
                    "{kind} is not a valid policy type."
                )));
            }
            Ok(StoredPolicy {
                text: policy.to_string(),
                kind,
            })
        })
        .collect()
}

fn check_data_type(data_type: &str, kind: ParameterType, value: &str) -> Result<()> {
    match data_type {
        "text" => Ok(()),
        "aws:ec2:image" | "aws:ssm:integration" if kind != ParameterType::String => {
            Err(validation(format!(
                "The data type {data_type} is supported only for String parameters."
            )))
        }
        "aws:ec2:image" => {
            let id = value.strip_prefix("ami-").unwrap_or("");
            if (8..=17).contains(&id.len()) && id.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(())
            } else {
                Err(validation(format!(
                    "Parameter value, {value}, is not in a valid format for the data type aws:ec2:image."
                )))
            }
        }
        "aws:ssm:integration" => Ok(()),
        other => Err(validation(format!(
            "The following data type is not supported: {other} (Data type names are all lowercase.)"
        ))),
    }
}

fn check_pattern(pattern: &str, value: &str) -> Result<()> {
    let re = regex::Regex::new(pattern).map_err(|_| {
        SsmError::InvalidAllowedPattern(format!(
            "The allowed pattern {pattern} is not a valid regular expression."
        ))
    })?;
    if re.is_match(value) {
        Ok(())
    } else {
        Err(SsmError::ParameterPatternMismatch(pattern.to_string()))
    }
}

/// Whether `label` may name a version: 1–100 of letters, digits, `.`, `-`, `_`, not
/// starting with a digit nor with `aws`/`ssm`.
fn label_is_valid(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    !label.is_empty()
        && label.len() <= 100
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn check_tags(tags: &[(String, String)]) -> Result<()> {
    for (key, value) in tags {
        if key.is_empty() || key.len() > 128 || value.len() > 256 {
            return Err(validation(format!(
                "1 validation error detected: Value '{key}' at 'tags.key' failed to satisfy constraint: Member must have length between 1 and 128"
            )));
        }
    }
    Ok(())
}

impl Ssm {
    /// The parameter `name` names and its record; a flat name from an ARN (`parameter/x`)
    /// is also looked for as `/x`.
    pub(crate) fn resolve(
        &self,
        scope: &SsmScope,
        name: &ParameterName,
    ) -> Result<Option<(ParameterName, ParameterRecord)>> {
        if !name.is_in(&scope.region, &scope.account) {
            return Ok(None);
        }
        if let Some(record) = self.read(scope, name)? {
            return Ok(Some((name.clone(), record)));
        }
        match name.rooted() {
            Some(rooted) => Ok(self.read(scope, &rooted)?.map(|r| (rooted, r))),
            None => Ok(None),
        }
    }

    /// PutParameter: a new parameter, or with `overwrite` a new version of one.
    pub fn put_parameter(&self, scope: &SsmScope, req: PutParameter) -> Result<PutOutcome> {
        let name = ParameterName::parse_new(&req.name)?;
        if req.overwrite && !req.tags.is_empty() {
            return Err(validation(
                "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
            ));
        }
        check_tags(&req.tags)?;
        if req.tags.len() > MAX_TAGS {
            return Err(SsmError::TooManyTags);
        }
        if req.value.is_empty() {
            return Err(validation(
                "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let asked_kind = req.kind.as_deref().map(ParameterType::parse).transpose()?;
        let policies = match req.policies.as_deref() {
            Some(text) if !text.trim().is_empty() => parse_policies(text)?,
            _ => Vec::new(),
        };
        let key = scope.parameter_key(&name);
        let mut outcome = None;
        let mut sealed: Option<(u64, String)> = None;
        berth_store::update(
            self.store.as_ref(),
            &key,
            |current: Option<ParameterRecord>| {
                if current.is_some() && !req.overwrite {
                    return Err(SsmError::ParameterAlreadyExists);
                }
                let previous = current.as_ref().map(|r| r.latest());
                let kind = match (asked_kind, previous) {
                    (Some(kind), _) => kind,
                    (None, Some(previous)) => previous.kind,
                    (None, None) => {
                        return Err(validation(
                            "A parameter type is required when you create a parameter.",
                        ));
                    }
                };
                if req.key_id.is_some() && kind != ParameterType::SecureString {
                    return Err(validation(
                        "KeyId is required for SecureString type parameter only.",
                    ));
                }
                let tier = choose_tier(
                    req.tier.as_deref(),
                    previous.map(|p| p.tier),
                    req.value.len(),
                    !policies.is_empty(),
                )?;
                let data_type = req
                    .data_type
                    .clone()
                    .or_else(|| previous.map(|p| p.data_type.clone()))
                    .unwrap_or_else(|| "text".to_string());
                check_data_type(&data_type, kind, &req.value)?;
                let allowed_pattern = req
                    .allowed_pattern
                    .clone()
                    .or_else(|| previous.and_then(|p| p.allowed_pattern.clone()));
                if let Some(pattern) = &allowed_pattern {
                    check_pattern(pattern, &req.value)?;
                }
                let mut record = current.clone().unwrap_or_else(|| ParameterRecord {
                    name: name.as_str().to_string(),
                    versions: Vec::new(),
                    tags: req.tags.clone(),
                });
                let version = record.versions.last().map_or(1, |v| v.version + 1);
                if record.versions.len() >= MAX_VERSIONS {
                    let oldest = &record.versions[0];
                    if !oldest.labels.is_empty() {
                        return Err(SsmError::ParameterMaxVersionLimitExceeded(format!(
                            "You attempted to create a new version of {} by calling the PutParameter API with the overwrite flag. Version {}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.",
                            name.as_str(),
                            oldest.version
                        )));
                    }
                    record.versions.remove(0);
                }
                let key_id = (kind == ParameterType::SecureString).then(|| {
                    req.key_id
                        .clone()
                        .or_else(|| previous.and_then(|p| p.key_id.clone()))
                        .unwrap_or_else(|| berth_kms::SSM_DEFAULT_KEY.to_string())
                });
                // A retry of this closure seals again only when the version changed.
                let value = match kind {
                    ParameterType::SecureString => match &sealed {
                        Some((v, s)) if *v == version => s.clone(),
                        _ => {
                            let s = self
                                .key
                                .seal(&Ssm::binding(scope, &name, version), req.value.as_bytes())?;
                            sealed = Some((version, s.clone()));
                            s
                        }
                    },
                    _ => req.value.clone(),
                };
                record.versions.push(ParameterVersion {
                    version,
                    kind,
                    value,
                    key_id,
                    description: req
                        .description
                        .clone()
                        .or_else(|| previous.and_then(|p| p.description.clone())),
                    allowed_pattern,
                    tier,
                    policies: if req.policies.is_some() {
                        policies.clone()
                    } else {
                        previous.map(|p| p.policies.clone()).unwrap_or_default()
                    },
                    data_type,
                    last_modified_ms: now_ms(),
                    last_modified_user: req.user.clone(),
                    labels: Vec::new(),
                });
                outcome = Some(PutOutcome { version, tier });
                Ok(Change::Put(record))
            },
        )?;
        Ok(outcome.expect("a committed put decided its outcome"))
    }

    /// GetParameter: the version a name (with its selector) selects.
    pub fn get_parameter(&self, scope: &SsmScope, given: &str, decrypt: bool) -> Result<Parameter> {
        let (name, selector) = parse_selector(given)?;
        let Some((name, record)) = self.resolve(scope, &name)? else {
            return Err(SsmError::ParameterNotFound(String::new()));
        };
        let version = match &selector {
            Selector::Latest => record.latest(),
            Selector::Version(v) => record
                .version(*v)
                .ok_or_else(|| version_not_found(name.as_str(), *v))?,
            Selector::Label(label) => record.labelled(label).ok_or_else(|| {
                SsmError::ParameterVersionNotFound(format!(
                    "Systems Manager could not find label {label} of {}. Verify the label and try again.",
                    name.as_str()
                ))
            })?,
        };
        Ok(Parameter {
            arn: scope.parameter_arn(name.as_str()),
            selector: selector.shown(),
            version: self.shown(scope, &name, version.clone(), decrypt)?,
            name: name.as_str().to_string(),
        })
    }

    /// GetParameters: the parameters found, and the names that select none (as given).
    pub fn get_parameters(
        &self,
        scope: &SsmScope,
        names: &[String],
        decrypt: bool,
    ) -> Result<(Vec<Parameter>, Vec<String>)> {
        check_name_count(names.len())?;
        let (mut found, mut invalid) = (Vec::new(), Vec::new());
        let mut seen = std::collections::BTreeSet::new();
        for given in names {
            if !seen.insert(given.clone()) {
                continue;
            }
            match self.get_parameter(scope, given, decrypt) {
                Ok(parameter) => found.push(parameter),
                Err(e) if e.is_internal() => return Err(e),
                Err(_) => invalid.push(given.clone()),
            }
        }
        Ok((found, invalid))
    }

    /// DeleteParameter: the parameter and every version of it.
    pub fn delete_parameter(&self, scope: &SsmScope, given: &str) -> Result<()> {
        let name = ParameterName::parse(given)?;
        let Some((name, _)) = self.resolve(scope, &name)? else {
            return Err(not_found(given));
        };
        let mut existed = false;
        berth_store::update(
            self.store.as_ref(),
            &scope.parameter_key(&name),
            |current: Option<ParameterRecord>| {
                existed = current.is_some();
                Ok::<_, SsmError>(if existed {
                    Change::Delete
                } else {
                    Change::Keep
                })
            },
        )?;
        if existed {
            Ok(())
        } else {
            Err(not_found(given))
        }
    }

    /// DeleteParameters: (deleted, invalid) names as given.
    pub fn delete_parameters(
        &self,
        scope: &SsmScope,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>)> {
        check_name_count(names.len())?;
        let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
        for given in names {
            match self.delete_parameter(scope, given) {
                Ok(()) => deleted.push(given.clone()),
                Err(e) if e.is_internal() => return Err(e),
                Err(_) => invalid.push(given.clone()),
            }
        }
        Ok((deleted, invalid))
    }

    /// GetParameterHistory: every kept version, oldest first, a page at a time.
    pub fn parameter_history(
        &self,
        scope: &SsmScope,
        given: &str,
        decrypt: bool,
        max_results: usize,
        next_token: Option<&str>,
    ) -> Result<(Vec<Parameter>, Option<String>)> {
        let name = ParameterName::parse(given)?;
        let Some((name, record)) = self.resolve(scope, &name)? else {
            return Err(not_found(given));
        };
        let after = match next_token {
            Some(token) => Some(
                page_token::decode(token)
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(SsmError::InvalidNextToken)?,
            ),
            None => None,
        };
        let arn = scope.parameter_arn(name.as_str());
        let mut page = Vec::new();
        let mut rest = record
            .versions
            .iter()
            .filter(|v| after.is_none_or(|a| v.version > a));
        for version in rest.by_ref().take(max_results) {
            page.push(Parameter {
                name: name.as_str().to_string(),
                arn: arn.clone(),
                selector: None,
                version: self.shown(scope, &name, version.clone(), decrypt)?,
            });
        }
        let token = match (rest.next(), page.last()) {
            (Some(_), Some(last)) => Some(page_token::encode(&last.version.version.to_string())),
            _ => None,
        };
        Ok((page, token))
    }

    /// LabelParameterVersion: valid labels move to the version (latest when `None`).
    pub fn label_parameter_version(
        &self,
        scope: &SsmScope,
        given: &str,
        version: Option<u64>,
        labels: &[String],
    ) -> Result<LabelOutcome> {
        check_label_count(labels.len())?;
        let name = ParameterName::parse(given)?;
        let Some((name, _)) = self.resolve(scope, &name)? else {
            return Err(not_found(given));
        };
        let (valid, invalid): (Vec<String>, Vec<String>) =
            labels.iter().cloned().partition(|l| label_is_valid(l));
        let mut labelled = 0;
        berth_store::update(
            self.store.as_ref(),
            &scope.parameter_key(&name),
            |current: Option<ParameterRecord>| {
                let mut record = current.ok_or_else(|| not_found(given))?;
                let target = version.unwrap_or(record.latest().version);
                if record.version(target).is_none() {
                    return Err(version_not_found(name.as_str(), target));
                }
                for v in &mut record.versions {
                    if v.version == target {
                        for label in &valid {
                            if !v.labels.contains(label) {
                                v.labels.push(label.clone());
                            }
                        }
                        if v.labels.len() > MAX_LABELS_PER_VERSION {
                            return Err(SsmError::ParameterVersionLabelLimitExceeded);
                        }
                    } else {
                        v.labels.retain(|l| !valid.contains(l));
                    }
                }
                labelled = target;
                Ok(Change::Put(record))
            },
        )?;
        Ok(LabelOutcome {
            version: labelled,
            invalid_labels: invalid,
        })
    }

    /// UnlabelParameterVersion: the labels removed from the version, and those it lacked.
    pub fn unlabel_parameter_version(
        &self,
        scope: &SsmScope,
        given: &str,
        version: u64,
        labels: &[String],
    ) -> Result<UnlabelOutcome> {
        check_label_count(labels.len())?;
        let name = ParameterName::parse(given)?;
        let Some((name, _)) = self.resolve(scope, &name)? else {
            return Err(not_found(given));
        };
        let mut outcome = UnlabelOutcome {
            removed_labels: Vec::new(),
            invalid_labels: Vec::new(),
        };
        berth_store::update(
            self.store.as_ref(),
            &scope.parameter_key(&name),
            |current: Option<ParameterRecord>| {
                let mut record = current.ok_or_else(|| not_found(given))?;
                let Some(v) = record.versions.iter_mut().find(|v| v.version == version) else {
                    return Err(version_not_found(name.as_str(), version));
                };
                let (removed, invalid) = labels.iter().cloned().partition(|l| v.labels.contains(l));
                v.labels.retain(|l| !labels.contains(l));
                outcome = UnlabelOutcome {
                    removed_labels: removed,
                    invalid_labels: invalid,
                };
                Ok(Change::Put(record))
            },
        )?;
        Ok(outcome)
    }

    /// The parameter a tagging call's `ResourceType`/`ResourceId` names.
    fn tagged(&self, scope: &SsmScope, kind: &str, id: &str) -> Result<ParameterName> {
        if kind != "Parameter" {
            return Err(SsmError::InvalidResourceType);
        }
        let name = ParameterName::parse(id).map_err(|_| SsmError::InvalidResourceId)?;
        match self.resolve(scope, &name)? {
            Some((name, _)) => Ok(name),
            None => Err(SsmError::InvalidResourceId),
        }
    }

    fn retag(
        &self,
        scope: &SsmScope,
        name: &ParameterName,
        change: impl Fn(&mut Vec<(String, String)>) -> Result<()>,
    ) -> Result<()> {
        berth_store::update(
            self.store.as_ref(),
            &scope.parameter_key(name),
            |current: Option<ParameterRecord>| {
                let mut record = current.ok_or(SsmError::InvalidResourceId)?;
                change(&mut record.tags)?;
                Ok::<_, SsmError>(Change::Put(record))
            },
        )?;
        Ok(())
    }

    /// AddTagsToResource: tags added or their values replaced.
    pub fn add_tags(
        &self,
        scope: &SsmScope,
        kind: &str,
        id: &str,
        tags: &[(String, String)],
    ) -> Result<()> {
        check_tags(tags)?;
        let name = self.tagged(scope, kind, id)?;
        self.retag(scope, &name, |current| {
            for (key, value) in tags {
                match current.iter_mut().find(|(k, _)| k == key) {
                    Some(tag) => tag.1 = value.clone(),
                    None => current.push((key.clone(), value.clone())),
                }
            }
            if current.len() > MAX_TAGS {
                return Err(SsmError::TooManyTags);
            }
            Ok(())
        })
    }

    /// RemoveTagsFromResource.
    pub fn remove_tags(
        &self,
        scope: &SsmScope,
        kind: &str,
        id: &str,
        keys: &[String],
    ) -> Result<()> {
        let name = self.tagged(scope, kind, id)?;
        self.retag(scope, &name, |current| {
            current.retain(|(k, _)| !keys.contains(k));
            Ok(())
        })
    }

    /// ListTagsForResource.
    pub fn list_tags(
        &self,
        scope: &SsmScope,
        kind: &str,
        id: &str,
    ) -> Result<Vec<(String, String)>> {
        let name = self.tagged(scope, kind, id)?;
        self.read(scope, &name)?
            .map(|r| r.tags)
            .ok_or(SsmError::InvalidResourceId)
    }

    /// The tags of parameter `given` (for `aws:ResourceTag/…`); none when it does not exist.
    pub fn parameter_tags(&self, scope: &SsmScope, given: &str) -> Vec<(String, String)> {
        ParameterName::parse(given)
            .ok()
            .and_then(|name| self.resolve(scope, &name).ok().flatten())
            .map(|(_, r)| r.tags)
            .unwrap_or_default()
    }

    /// The KMS key ids of the SecureString versions `names` select (for `kms:Decrypt`).
    pub fn secure_key_ids(&self, scope: &SsmScope, names: &[String]) -> Vec<String> {
        let mut keys: Vec<String> = names
            .iter()
            .filter_map(|given| self.get_parameter(scope, given, false).ok())
            .filter_map(|p| p.version.key_id)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

fn check_name_count(n: usize) -> Result<()> {
    if (1..=10).contains(&n) {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length {}",
            if n == 0 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 10"
            }
        )))
    }
}

fn check_label_count(n: usize) -> Result<()> {
    if (1..=10).contains(&n) {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length {}",
            if n == 0 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 10"
            }
        )))
    }
}
