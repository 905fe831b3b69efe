//! Launch templates: CreateLaunchTemplate, CreateLaunchTemplateVersion,
//! DescribeLaunchTemplates, DescribeLaunchTemplateVersions, DeleteLaunchTemplate. One record
//! per template holding every version (`lt/{id}`), its name claimed by `lt-name/{name}` in
//! the same transaction, so a name is unique by one compare-and-swap. Only what Berth acts
//! on is kept of `LaunchTemplateData`: the image, the instance type, the user data (as
//! given, base64) and the instance profile.

use berth_store::{Change, Compare, Op, Update};
use serde::{Deserialize, Serialize};

use crate::keys::new_id;
use crate::tag::{Tag, check};
use crate::{Ec2, Ec2Error, Ec2Scope, Result};

/// The part of `LaunchTemplateData` Berth keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Base64, as the caller gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateVersion {
    pub version_number: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_description: Option<String>,
    pub create_time: f64,
    pub data: LaunchTemplateData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplate {
    pub id: String,
    pub name: String,
    pub create_time: f64,
    pub created_by: String,
    pub default_version_number: u64,
    pub versions: Vec<LaunchTemplateVersion>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl LaunchTemplate {
    pub fn latest_version_number(&self) -> u64 {
        self.versions
            .iter()
            .map(|v| v.version_number)
            .max()
            .unwrap_or(1)
    }

    /// A version by EC2's selector: a number, `$Latest` or `$Default` (`None`: the default).
    pub fn version(&self, selector: Option<&str>) -> Result<&LaunchTemplateVersion> {
        let number = match selector {
            None | Some("$Default") => self.default_version_number,
            Some("$Latest") => self.latest_version_number(),
            Some(n) => n.parse::<u64>().map_err(|_| {
                Ec2Error::InvalidParameterValue(format!(
                    "The launch template version '{n}' is not valid. Specify a version number, $Latest or $Default."
                ))
            })?,
        };
        self.versions
            .iter()
            .find(|v| v.version_number == number)
            .ok_or_else(|| {
                Ec2Error::LaunchTemplateVersionNotFound(format!(
                    "Could not find launch template version {number} for launch template {}.",
                    self.id
                ))
            })
    }
}

/// Which template a call names: its id or its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchTemplateRef {
    Id(String),
    Name(String),
}

fn id_not_found(id: &str) -> Ec2Error {
    Ec2Error::LaunchTemplateIdNotFound(format!(
        "The specified launch template, with template ID {id}, does not exist."
    ))
}

fn name_not_found(name: &str) -> Ec2Error {
    Ec2Error::LaunchTemplateNameNotFound(format!(
        "The specified launch template, with template name {name}, does not exist."
    ))
}

/// EC2's rule for names: 3 to 128 characters of letters, digits and `()./_-`.
fn check_name(name: &str) -> Result<()> {
    let ok = (3..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()./_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Ec2Error::InvalidParameterValue(format!(
            "Launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.' (name: {name})"
        )))
    }
}

impl Ec2 {
    /// CreateLaunchTemplate: the template with its version 1 (the default).
    pub fn create_launch_template(
        &self,
        scope: &Ec2Scope,
        name: &str,
        description: Option<String>,
        data: LaunchTemplateData,
        tags: Vec<Tag>,
    ) -> Result<LaunchTemplate> {
        check_name(name)?;
        check(&tags)?;
        let now = berth_store::now_epoch();
        let template = LaunchTemplate {
            id: new_id("lt"),
            name: name.to_string(),
            create_time: now,
            created_by: format!("arn:aws:iam::{}:root", scope.account),
            default_version_number: 1,
            versions: vec![LaunchTemplateVersion {
                version_number: 1,
                version_description: description,
                create_time: now,
                data,
            }],
            tags,
        };
        let name_key = scope.launch_template_name_key(name);
        let ops = [
            Op::put(name_key.clone(), template.id.clone().into_bytes()),
            Op::put(
                scope.launch_template_key(&template.id),
                berth_store::encode(&template),
            ),
        ];
        if !self
            .store()
            .txn(&[Compare::ModRevision(name_key, 0)], &ops)?
            .is_committed()
        {
            return Err(Ec2Error::LaunchTemplateNameExists(
                "Launch template name already in use.".into(),
            ));
        }
        Ok(template)
    }

    /// The template `which` names.
    pub fn launch_template(
        &self,
        scope: &Ec2Scope,
        which: &LaunchTemplateRef,
    ) -> Result<LaunchTemplate> {
        let id = match which {
            LaunchTemplateRef::Id(id) => id.clone(),
            LaunchTemplateRef::Name(name) => {
                match self.store().get(&scope.launch_template_name_key(name))? {
                    Some(kv) => String::from_utf8_lossy(&kv.value).into_owned(),
                    None => return Err(name_not_found(name)),
                }
            }
        };
        self.read(&scope.launch_template_key(&id))?
            .ok_or_else(|| id_not_found(&id))
    }

    /// DescribeLaunchTemplates: those named by id or name (every one when neither), in id
    /// order.
    pub fn describe_launch_templates(
        &self,
        scope: &Ec2Scope,
        ids: &[String],
        names: &[String],
    ) -> Result<Vec<LaunchTemplate>> {
        if ids.is_empty() && names.is_empty() {
            return self.all(&scope.launch_templates_prefix());
        }
        let mut out = Vec::new();
        for id in ids {
            out.push(self.launch_template(scope, &LaunchTemplateRef::Id(id.clone()))?);
        }
        for name in names {
            let found = self
                .launch_template(scope, &LaunchTemplateRef::Name(name.clone()))
                .map_err(|e| match e {
                    Ec2Error::LaunchTemplateNameNotFound(_) => {
                        Ec2Error::LaunchTemplateNameNotFound(
                            "At least one of the launch templates specified in the request does not exist."
                                .into(),
                        )
                    }
                    other => other,
                })?;
            if !out.iter().any(|t: &LaunchTemplate| t.id == found.id) {
                out.push(found);
            }
        }
        Ok(out)
    }

    /// CreateLaunchTemplateVersion: a new version, from `source` (its data overridden by
    /// the fields `data` sets) or from `data` alone.
    pub fn create_launch_template_version(
        &self,
        scope: &Ec2Scope,
        which: &LaunchTemplateRef,
        source: Option<&str>,
        description: Option<String>,
        data: LaunchTemplateData,
    ) -> Result<(LaunchTemplate, LaunchTemplateVersion)> {
        let id = self.launch_template(scope, which)?.id;
        let mut created = None;
        let stored = berth_store::update(
            self.store(),
            &scope.launch_template_key(&id),
            |t: Option<LaunchTemplate>| -> Result<Update<LaunchTemplate>> {
                let mut t = t.ok_or_else(|| id_not_found(&id))?;
                let base = match source {
                    Some(s) => t.version(Some(s))?.data.clone(),
                    None => LaunchTemplateData::default(),
                };
                let merged = LaunchTemplateData {
                    image_id: data.image_id.clone().or(base.image_id),
                    instance_type: data.instance_type.clone().or(base.instance_type),
                    user_data: data.user_data.clone().or(base.user_data),
                    iam_instance_profile_arn: data
                        .iam_instance_profile_arn
                        .clone()
                        .or(base.iam_instance_profile_arn),
                    iam_instance_profile_name: data
                        .iam_instance_profile_name
                        .clone()
                        .or(base.iam_instance_profile_name),
                };
                let version = LaunchTemplateVersion {
                    version_number: t.latest_version_number() + 1,
                    version_description: description.clone(),
                    create_time: berth_store::now_epoch(),
                    data: merged,
                };
                created = Some(version.clone());
                t.versions.push(version);
                Ok(Change::Put(t).into())
            },
        )?
        .expect("a Put leaves the template stored");
        Ok((stored, created.expect("decided")))
    }

    /// DeleteLaunchTemplate: the template and all its versions.
    pub fn delete_launch_template(
        &self,
        scope: &Ec2Scope,
        which: &LaunchTemplateRef,
    ) -> Result<LaunchTemplate> {
        let template = self.launch_template(scope, which)?;
        berth_store::update(
            self.store(),
            &scope.launch_template_key(&template.id),
            |t: Option<LaunchTemplate>| -> Result<Update<LaunchTemplate>> {
                let t = t.ok_or_else(|| id_not_found(&template.id))?;
                Ok(Update::from(Change::Delete)
                    .also(Op::delete(scope.launch_template_name_key(&t.name))))
            },
        )?;
        Ok(template)
    }
}
