//! Tags on every EC2 resource: CreateTags, DeleteTags, DescribeTags. Each record keeps its own tags (`tags`), so a
//! tag change is one read-modify-write of that record, whatever its kind.

use crate::filters::Filter;
use crate::keys::Kind;
use crate::tag::{Tag, check, merge};
use crate::{Ec2, Ec2Error, Ec2Scope, Result};

/// One tag of one resource, as DescribeTags lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceTag {
    pub resource_id: String,
    pub resource_type: &'static str,
    pub key: String,
    pub value: String,
}

impl Ec2 {
    /// The record key of a taggable resource id (`InvalidID` for one EC2 could not mean).
    fn tagged_key(&self, scope: &Ec2Scope, id: &str) -> Result<String> {
        let kind = Kind::of_id(id)
            .ok_or_else(|| Ec2Error::InvalidId(format!("The ID '{id}' is not valid")))?;
        Ok(scope.key(kind, id))
    }

    /// The record of `id`, as JSON, through `change` (`NotFound` of its kind when absent).
    fn retag(
        &self,
        scope: &Ec2Scope,
        id: &str,
        mut change: impl FnMut(&mut Vec<Tag>) -> Result<()>,
    ) -> Result<()> {
        let key = self.tagged_key(scope, id)?;
        berth_store::update(self.store(), &key, |record: Option<serde_json::Value>| {
            let mut record = record.ok_or_else(|| not_found(id))?;
            let mut tags: Vec<Tag> = record
                .get("tags")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| berth_store::StoreError::Corrupt(format!("{key}: {e}")))?
                .unwrap_or_default();
            change(&mut tags)?;
            record["tags"] = serde_json::to_value(&tags).expect("tags serialise");
            Ok::<_, Ec2Error>(berth_store::Change::Put(record))
        })?;
        Ok(())
    }

    /// CreateTags: adds or overwrites each tag on each resource.
    pub fn create_tags(&self, scope: &Ec2Scope, ids: &[String], tags: &[Tag]) -> Result<()> {
        let ids = self.resolve_aliases(scope, ids)?;
        for id in &ids {
            self.tagged_key(scope, id)?;
        }
        for id in &ids {
            self.retag(scope, id, |current| {
                merge(current, tags);
                check(current)
            })?;
        }
        Ok(())
    }

    /// DeleteTags: a tag given with a value goes only when its value matches; without a
    /// value, whatever its value; no tags at all: every tag of the resources.
    pub fn delete_tags(
        &self,
        scope: &Ec2Scope,
        ids: &[String],
        tags: &[(String, Option<String>)],
    ) -> Result<()> {
        let ids = self.resolve_aliases(scope, ids)?;
        for id in &ids {
            self.retag(scope, id, |current| {
                if tags.is_empty() {
                    current.clear();
                } else {
                    current.retain(|t| {
                        !tags
                            .iter()
                            .any(|(k, v)| *k == t.key && v.as_ref().is_none_or(|v| *v == t.value))
                    });
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// DescribeTags: every tag of every resource of the scope, filtered by `resource-id`,
    /// `resource-type`, `key` and `value`.
    pub fn describe_tags(&self, scope: &Ec2Scope, filters: &[Filter]) -> Result<Vec<ResourceTag>> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let records: Vec<serde_json::Value> = self.all(&scope.prefix(kind))?;
            for record in records {
                let id = record
                    .get("id")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                let tags: Vec<Tag> = record
                    .get("tags")
                    .cloned()
                    .and_then(|t| serde_json::from_value(t).ok())
                    .unwrap_or_default();
                for tag in tags {
                    out.push(ResourceTag {
                        resource_id: id.clone(),
                        resource_type: kind.resource_type(),
                        key: tag.key,
                        value: tag.value,
                    });
                }
            }
        }
        for filter in filters {
            let field = |t: &ResourceTag| -> Result<String> {
                Ok(match filter.name.as_str() {
                    "resource-id" => t.resource_id.clone(),
                    "resource-type" => t.resource_type.to_string(),
                    "key" => t.key.clone(),
                    "value" => t.value.clone(),
                    other => {
                        return Err(Ec2Error::InvalidParameterValue(format!(
                            "The filter '{other}' is invalid"
                        )));
                    }
                })
            };
            let mut kept = Vec::with_capacity(out.len());
            for t in out {
                let v = field(&t)?;
                if filter.values.iter().any(|f| f == &v) {
                    kept.push(t);
                }
            }
            out = kept;
        }
        Ok(out)
    }
}

fn not_found(id: &str) -> Ec2Error {
    match Kind::of_id(id) {
        Some(Kind::Vpc) => crate::errors::vpc_not_found(id),
        Some(Kind::Subnet) => crate::errors::subnet_not_found(id),
        Some(Kind::SecurityGroup) => crate::errors::group_not_found(id),
        Some(Kind::InternetGateway) => crate::errors::igw_not_found(id),
        Some(Kind::RouteTable) => crate::errors::route_table_not_found(id),
        None => Ec2Error::InvalidId(format!("The ID '{id}' is not valid")),
    }
}
