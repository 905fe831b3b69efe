//! The registry's own settings: its permissions policy (Put/Get/DeleteRegistryPolicy) and
//! its scanning configuration (Put/GetRegistryScanningConfiguration, and what it means for
//! each repository: BatchGetRepositoryScanningConfiguration). Stored, not acted on: Berth
//! has no scanner, and the policy is not enforced.

use berth_model::RepositoryName;
use serde::{Deserialize, Serialize};

use crate::lifecycle::wildcard_match;
use crate::repository::check_policy;
use crate::{Registry, RegistryError, Result, Scope, decode, keys};

/// ECR's ScanningRepositoryFilter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanningRepositoryFilter {
    pub filter: String,
    pub filter_type: String,
}

/// ECR's RegistryScanningRule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryScanningRule {
    pub scan_frequency: String,
    pub repository_filters: Vec<ScanningRepositoryFilter>,
}

/// ECR's RegistryScanningConfiguration; a registry never configured has BASIC and no rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryScanningConfiguration {
    pub scan_type: String,
    #[serde(default)]
    pub rules: Vec<RegistryScanningRule>,
}

impl Default for RegistryScanningConfiguration {
    fn default() -> Self {
        RegistryScanningConfiguration {
            scan_type: "BASIC".into(),
            rules: Vec::new(),
        }
    }
}

/// How one repository is scanned under the registry's configuration (ECR's
/// RepositoryScanningConfiguration without the ARN, which the edge adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryScanning {
    pub name: RepositoryName,
    pub scan_on_push: bool,
    pub scan_frequency: String,
    pub applied_scan_filters: Vec<ScanningRepositoryFilter>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegistryPolicy {
    policy_text: String,
}

fn invalid_enum(field: &str, allowed: &str, got: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at '{field}' failed to satisfy constraint: 'Member must satisfy enum value set: [{allowed}]' (got '{got}')"
    ))
}

/// The constraints of the API reference's shapes: scanType BASIC|ENHANCED, at most two
/// rules, scanFrequency SCAN_ON_PUSH|CONTINUOUS_SCAN|MANUAL, WILDCARD filters.
fn check_scanning(config: &RegistryScanningConfiguration) -> Result<()> {
    if !matches!(config.scan_type.as_str(), "BASIC" | "ENHANCED") {
        return Err(invalid_enum(
            "scanType",
            "BASIC, ENHANCED",
            &config.scan_type,
        ));
    }
    if config.rules.len() > 2 {
        return Err(RegistryError::InvalidParameter(
            "Invalid parameter at 'rules' failed to satisfy constraint: 'Member must have length less than or equal to 2'".into(),
        ));
    }
    for rule in &config.rules {
        if !matches!(
            rule.scan_frequency.as_str(),
            "SCAN_ON_PUSH" | "CONTINUOUS_SCAN" | "MANUAL"
        ) {
            return Err(invalid_enum(
                "rules.scanFrequency",
                "SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL",
                &rule.scan_frequency,
            ));
        }
        for f in &rule.repository_filters {
            if f.filter_type != "WILDCARD" {
                return Err(invalid_enum(
                    "rules.repositoryFilters.filterType",
                    "WILDCARD",
                    &f.filter_type,
                ));
            }
            if f.filter.is_empty() || f.filter.len() > 255 {
                return Err(RegistryError::InvalidParameter(
                    "Invalid parameter at 'rules.repositoryFilters.filter' failed to satisfy constraint: 'Member must have length between 1 and 255'".into(),
                ));
            }
        }
    }
    Ok(())
}

impl Registry {
    /// PutRegistryPolicy: the text must be a policy document, as SetRepositoryPolicy's.
    pub fn put_registry_policy(&self, scope: &Scope, text: &str) -> Result<()> {
        check_policy(text)?;
        let record = RegistryPolicy {
            policy_text: text.to_string(),
        };
        berth_store::upsert(&*self.store, &keys::registry_policy(scope), |_| {
            Ok::<_, RegistryError>(record.clone())
        })?;
        Ok(())
    }

    pub fn get_registry_policy(&self, scope: &Scope) -> Result<String> {
        match self.store.get(&keys::registry_policy(scope))? {
            Some(kv) => Ok(decode::<RegistryPolicy>(&kv)?.policy_text),
            None => Err(RegistryError::RegistryPolicyNotFound {
                registry: scope.account.to_string(),
            }),
        }
    }

    pub fn delete_registry_policy(&self, scope: &Scope) -> Result<String> {
        let mut removed = None;
        berth_store::update(
            &*self.store,
            &keys::registry_policy(scope),
            |current: Option<RegistryPolicy>| match current {
                Some(p) => {
                    removed = Some(p.policy_text);
                    Ok(berth_store::Change::Delete)
                }
                None => Err(RegistryError::RegistryPolicyNotFound {
                    registry: scope.account.to_string(),
                }),
            },
        )?;
        Ok(removed.expect("set when the delete succeeded"))
    }

    pub fn put_registry_scanning_configuration(
        &self,
        scope: &Scope,
        config: RegistryScanningConfiguration,
    ) -> Result<RegistryScanningConfiguration> {
        check_scanning(&config)?;
        berth_store::upsert(&*self.store, &keys::scanning_configuration(scope), |_| {
            Ok::<_, RegistryError>(config.clone())
        })
    }

    pub fn registry_scanning_configuration(
        &self,
        scope: &Scope,
    ) -> Result<RegistryScanningConfiguration> {
        match self.store.get(&keys::scanning_configuration(scope))? {
            Some(kv) => decode(&kv),
            None => Ok(RegistryScanningConfiguration::default()),
        }
    }

    /// How each named repository is scanned: the first registry rule with a filter matching
    /// its name gives the frequency and the filters that matched; without one, the
    /// repository's own scanOnPush (SCAN_ON_PUSH) or MANUAL. Missing repositories come back
    /// as the second list.
    pub fn repository_scanning(
        &self,
        scope: &Scope,
        names: &[RepositoryName],
    ) -> Result<(Vec<RepositoryScanning>, Vec<RegistryError>)> {
        let config = self.registry_scanning_configuration(scope)?;
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            let repo = match self.repository(scope, name) {
                Ok(r) => r,
                Err(e @ RegistryError::RepositoryNotFound { .. }) => {
                    missing.push(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let applied = config.rules.iter().find_map(|rule| {
                let filters: Vec<ScanningRepositoryFilter> = rule
                    .repository_filters
                    .iter()
                    .filter(|f| wildcard_match(&f.filter, name.as_str()))
                    .cloned()
                    .collect();
                (!filters.is_empty()).then(|| (rule.scan_frequency.clone(), filters))
            });
            found.push(match applied {
                Some((frequency, filters)) => RepositoryScanning {
                    name: name.clone(),
                    scan_on_push: frequency == "SCAN_ON_PUSH",
                    scan_frequency: frequency,
                    applied_scan_filters: filters,
                },
                None => RepositoryScanning {
                    name: name.clone(),
                    scan_on_push: repo.scan_on_push,
                    scan_frequency: if repo.scan_on_push {
                        "SCAN_ON_PUSH".into()
                    } else {
                        "MANUAL".into()
                    },
                    applied_scan_filters: Vec::new(),
                },
            });
        }
        Ok((found, missing))
    }
}
