//! Launch templates: CreateLaunchTemplate, CreateLaunchTemplateVersion,
//! DescribeLaunchTemplates, DescribeLaunchTemplateVersions, DeleteLaunchTemplate
//! (`LaunchTemplateData`'s ImageId, InstanceType, UserData and IamInstanceProfile kept).

use berth_ec2::{
    Ec2, Ec2Scope, LaunchTemplate, LaunchTemplateData, LaunchTemplateRef, LaunchTemplateVersion,
};

use super::{ec2_error, ids, required, tag_set, tag_specifications};
use crate::elbv2::timestamp;
use crate::protocol::AwsError;
use crate::protocol::query::{QueryRequest, Xml};

/// `LaunchTemplateData.*`.
fn data(r: &QueryRequest) -> LaunchTemplateData {
    let field = |name: &str| {
        r.get(&format!("LaunchTemplateData.{name}"))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    LaunchTemplateData {
        image_id: field("ImageId"),
        instance_type: field("InstanceType"),
        user_data: field("UserData"),
        iam_instance_profile_arn: field("IamInstanceProfile.Arn"),
        iam_instance_profile_name: field("IamInstanceProfile.Name"),
    }
}

/// `LaunchTemplateId` or `LaunchTemplateName`, exactly one.
fn which(r: &QueryRequest) -> Result<LaunchTemplateRef, AwsError> {
    match (r.get("LaunchTemplateId"), r.get("LaunchTemplateName")) {
        (Some(id), None) => Ok(LaunchTemplateRef::Id(id.to_string())),
        (None, Some(name)) => Ok(LaunchTemplateRef::Name(name.to_string())),
        (Some(_), Some(_)) => Err(AwsError::client(
            "InvalidParameterCombination",
            "Both a launch template ID and a launch template name were specified. Specify either a launch template ID or a launch template name, but not both.",
        )),
        (None, None) => Err(AwsError::client(
            "MissingParameter",
            "The request must include either a launch template ID or a launch template name.",
        )),
    }
}

fn template_xml(x: &mut Xml, t: &LaunchTemplate) {
    x.leaf("createTime", timestamp(t.create_time))
        .leaf("createdBy", &t.created_by)
        .leaf("defaultVersionNumber", t.default_version_number)
        .leaf("latestVersionNumber", t.latest_version_number())
        .leaf("launchTemplateId", &t.id)
        .leaf("launchTemplateName", &t.name);
    tag_set(x, &t.tags);
}

fn version_xml(x: &mut Xml, t: &LaunchTemplate, v: &LaunchTemplateVersion) {
    let d = &v.data;
    x.leaf("createTime", timestamp(v.create_time))
        .leaf("createdBy", &t.created_by)
        .leaf(
            "defaultVersion",
            v.version_number == t.default_version_number,
        )
        .element("launchTemplateData", |x| {
            x.opt_leaf("imageId", d.image_id.as_deref())
                .opt_leaf("instanceType", d.instance_type.as_deref())
                .opt_leaf("userData", d.user_data.as_deref());
            if d.iam_instance_profile_arn.is_some() || d.iam_instance_profile_name.is_some() {
                x.element("iamInstanceProfile", |x| {
                    x.opt_leaf("arn", d.iam_instance_profile_arn.as_deref())
                        .opt_leaf("name", d.iam_instance_profile_name.as_deref());
                });
            }
        })
        .leaf("launchTemplateId", &t.id)
        .leaf("launchTemplateName", &t.name)
        .opt_leaf("versionDescription", v.version_description.as_deref())
        .leaf("versionNumber", v.version_number);
}

pub(super) fn create_launch_template(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let name = required(r, "LaunchTemplateName")?;
    let tags = tag_specifications(r, "launch-template")?;
    let template = ec2
        .create_launch_template(
            scope,
            name,
            r.get("VersionDescription").map(str::to_string),
            data(r),
            tags,
        )
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.element("launchTemplate", |x| template_xml(x, &template));
    Ok(x)
}

pub(super) fn create_launch_template_version(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let (template, version) = ec2
        .create_launch_template_version(
            scope,
            &which(r)?,
            r.get("SourceVersion"),
            r.get("VersionDescription").map(str::to_string),
            data(r),
        )
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.element("launchTemplateVersion", |x| {
        version_xml(x, &template, &version)
    });
    Ok(x)
}

pub(super) fn describe_launch_templates(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let templates = ec2
        .describe_launch_templates(
            scope,
            &ids(r, "LaunchTemplateId"),
            &ids(r, "LaunchTemplateName"),
        )
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.items("launchTemplates", &templates, template_xml);
    Ok(x)
}

pub(super) fn describe_launch_template_versions(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let template = ec2.launch_template(scope, &which(r)?).map_err(ec2_error)?;
    let selectors = ids(r, "LaunchTemplateVersion");
    let versions: Vec<&LaunchTemplateVersion> = if selectors.is_empty() {
        template.versions.iter().collect()
    } else {
        selectors
            .iter()
            .map(|s| template.version(Some(s)))
            .collect::<Result<_, _>>()
            .map_err(ec2_error)?
    };
    let mut x = Xml::default();
    x.items("launchTemplateVersionSet", versions, |x, v| {
        version_xml(x, &template, v)
    });
    Ok(x)
}

pub(super) fn delete_launch_template(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let template = ec2
        .delete_launch_template(scope, &which(r)?)
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.element("launchTemplate", |x| template_xml(x, &template));
    Ok(x)
}
