//! EC2 Auto Scaling over the Query protocol (signing name `autoscaling`), a module per
//! resource: groups, instances, activities. Requests are parsed here into
//! `berth_autoscaling`'s types; its errors keep their codes (HTTP 400 for the client's).
//! `Ec2Launches` is how Auto Scaling reads EC2's launch templates and subnets.

mod activities;
mod groups;
mod instances;

use std::sync::Arc;

use axum::http::StatusCode;
use berth_autoscaling::{
    AsgScope, AutoScalingError, Ec2Directory, LaunchTemplateSpec, ResolvedTemplate,
};
use berth_ec2::{Ec2, Ec2Error, Ec2Scope, LaunchTemplateRef};

use crate::protocol::query::{Namespace, QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// EC2 Auto Scaling's XML namespace.
pub const NAMESPACE: Namespace = Namespace("http://autoscaling.amazonaws.com/doc/2011-01-01/");

/// The service name in the SigV4 credential scope and in IAM actions.
pub const SERVICE: &str = "autoscaling";

/// Runs an Auto Scaling action: its `Result` element's content.
pub async fn dispatch(ctx: &AwsContext, request: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let (ctx, request) = (ctx.clone(), request.clone());
    crate::protocol::json::blocking(move || {
        let action = request.action.as_str();
        if groups::ACTIONS.contains(&action) {
            groups::dispatch(&ctx, &request)
        } else if instances::ACTIONS.contains(&action) {
            instances::dispatch(&ctx, &request)
        } else if activities::ACTIONS.contains(&action) {
            activities::dispatch(&ctx, &request)
        } else {
            Err(AwsError::client(
                "InvalidAction",
                format!("The action {action} is not valid for this web service."),
            ))
        }
    })
    .await
}

pub(crate) fn asg_error(e: AutoScalingError) -> AwsError {
    if e.is_internal() {
        return AwsError::new(StatusCode::INTERNAL_SERVER_ERROR, e.code(), e.to_string());
    }
    AwsError::client(e.code(), e.to_string())
}

pub(crate) fn scope(ctx: &AwsContext) -> AsgScope {
    AsgScope::new(ctx.scope.account.as_str(), ctx.scope.region.as_str())
}

/// `true`/`false`.
pub(crate) fn boolean(r: &QueryRequest, name: &str) -> Result<Option<bool>, AwsError> {
    match r.get(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(AwsError::client(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{other}' at '{}' failed to satisfy constraint: Member must be a boolean",
                lower_camel(name)
            ),
        )),
    }
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `LaunchTemplate.LaunchTemplateId`/`LaunchTemplateName`/`Version`.
pub(crate) fn launch_template(r: &QueryRequest) -> Result<Option<LaunchTemplateSpec>, AwsError> {
    let id = r.get("LaunchTemplate.LaunchTemplateId").map(str::to_string);
    let name = r
        .get("LaunchTemplate.LaunchTemplateName")
        .map(str::to_string);
    let version = r.get("LaunchTemplate.Version").map(str::to_string);
    match (&id, &name) {
        (None, None) if version.is_none() => Ok(None),
        (Some(_), None) | (None, Some(_)) => Ok(Some(LaunchTemplateSpec { id, name, version })),
        _ => Err(AwsError::client(
            "ValidationError",
            "Valid requests must contain either launchTemplateId or LaunchTemplateName",
        )),
    }
}

/// A launch template as groups and instances show it.
pub(crate) fn launch_template_xml(x: &mut Xml, id: &str, name: &str, version: &str) {
    x.element("LaunchTemplate", |x| {
        x.leaf("LaunchTemplateId", id)
            .leaf("LaunchTemplateName", name)
            .leaf("Version", version);
    });
}

/// Auto Scaling's view of EC2: launch templates and subnets.
pub struct Ec2Launches(pub Arc<Ec2>);

impl Ec2Launches {
    fn template_error(spec: &LaunchTemplateSpec, e: Ec2Error) -> AutoScalingError {
        let which = match (&spec.id, &spec.name) {
            (Some(id), _) => format!("with template ID {id}"),
            (None, Some(name)) => format!("with template name {name}"),
            (None, None) => String::new(),
        };
        match e {
            Ec2Error::LaunchTemplateIdNotFound(_) | Ec2Error::LaunchTemplateNameNotFound(_) => {
                AutoScalingError::Validation(format!(
                    "You must use a valid fully-formed launch template. The specified launch template, {which}, does not exist."
                ))
            }
            e if e.is_internal() => AutoScalingError::Internal(e.to_string()),
            e => AutoScalingError::Validation(format!(
                "You must use a valid fully-formed launch template. {e}"
            )),
        }
    }
}

impl Ec2Directory for Ec2Launches {
    fn launch_template(
        &self,
        scope: &AsgScope,
        spec: &LaunchTemplateSpec,
    ) -> berth_autoscaling::Result<ResolvedTemplate> {
        let ec2_scope = Ec2Scope::new(scope.account.clone(), scope.region.clone());
        let which = match (&spec.id, &spec.name) {
            (Some(id), _) => LaunchTemplateRef::Id(id.clone()),
            (None, Some(name)) => LaunchTemplateRef::Name(name.clone()),
            (None, None) => {
                return Err(AutoScalingError::Validation(
                    "Valid requests must contain either launchTemplateId or LaunchTemplateName"
                        .into(),
                ));
            }
        };
        let template = self
            .0
            .launch_template(&ec2_scope, &which)
            .map_err(|e| Self::template_error(spec, e))?;
        let version = template
            .version(spec.version.as_deref())
            .map_err(|e| Self::template_error(spec, e))?;
        Ok(ResolvedTemplate {
            id: template.id.clone(),
            name: template.name.clone(),
            version: version.version_number.to_string(),
            instance_type: version.data.instance_type.clone(),
            user_data: version.data.user_data.clone(),
        })
    }

    fn subnet_zone(&self, scope: &AsgScope, subnet_id: &str) -> berth_autoscaling::Result<String> {
        let ec2_scope = Ec2Scope::new(scope.account.clone(), scope.region.clone());
        match self
            .0
            .describe_subnets(&ec2_scope, &[subnet_id.to_string()], &[])
        {
            Ok(subnets) => subnets
                .into_iter()
                .next()
                .map(|s| s.availability_zone)
                .ok_or_else(|| {
                    AutoScalingError::Validation(format!(
                        "The subnet ID '{subnet_id}' does not exist"
                    ))
                }),
            Err(e) if e.is_internal() => Err(AutoScalingError::Internal(e.to_string())),
            Err(_) => Err(AutoScalingError::Validation(format!(
                "The subnet ID '{subnet_id}' does not exist"
            ))),
        }
    }

    fn zones(&self, region: &str) -> Vec<String> {
        berth_ec2::availability_zones(region)
    }
}
