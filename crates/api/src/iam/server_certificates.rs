//! Server certificates: UploadServerCertificate, GetServerCertificate,
//! ListServerCertificates, UpdateServerCertificate, DeleteServerCertificate. The private
//! key is never shown; a certificate a load balancer's listener presents cannot be deleted.

use berth_iam::{IamError, ServerCertificate, UploadServerCertificate};

use super::users::{page, tags};
use super::{iam_error, iso8601};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &[
    "UploadServerCertificate",
    "GetServerCertificate",
    "ListServerCertificates",
    "UpdateServerCertificate",
    "DeleteServerCertificate",
];

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let iam = &ctx.app.iam;
    let account = ctx.scope.account.to_string();
    let account = account.as_str();
    let mut xml = Xml::default();
    let name = || r.required("ServerCertificateName");
    match r.action.as_str() {
        "UploadServerCertificate" => {
            let c = iam
                .upload_server_certificate(
                    account,
                    UploadServerCertificate {
                        name: name()?.to_string(),
                        path: r.get("Path").map(str::to_string),
                        certificate_body: r.required("CertificateBody")?.to_string(),
                        private_key: r.required("PrivateKey")?.to_string(),
                        certificate_chain: r.get("CertificateChain").map(str::to_string),
                        tags: tags(r),
                    },
                )
                .map_err(iam_error)?;
            xml.element("ServerCertificateMetadata", |x| metadata_xml(x, &c));
            if !c.tags.is_empty() {
                xml.members("Tags", &c.tags, |x, (k, v)| {
                    x.leaf("Key", k).leaf("Value", v);
                });
            }
        }
        "GetServerCertificate" => {
            let c = iam
                .get_server_certificate(account, name()?)
                .map_err(iam_error)?;
            xml.element("ServerCertificate", |x| {
                x.element("ServerCertificateMetadata", |x| metadata_xml(x, &c))
                    .leaf("CertificateBody", &c.certificate_body)
                    .opt_leaf("CertificateChain", c.certificate_chain.as_deref());
                if !c.tags.is_empty() {
                    x.members("Tags", &c.tags, |x, (k, v)| {
                        x.leaf("Key", k).leaf("Value", v);
                    });
                }
            });
        }
        "ListServerCertificates" => {
            let all = iam
                .list_server_certificates(account, r.get("PathPrefix"))
                .map_err(iam_error)?;
            let page = page(r, &all, |c| c.server_certificate_name.as_str())?;
            xml.members("ServerCertificateMetadataList", page.items, metadata_xml);
            page.write_truncation(&mut xml);
        }
        "UpdateServerCertificate" => {
            iam.update_server_certificate(
                account,
                name()?,
                r.get("NewServerCertificateName"),
                r.get("NewPath"),
            )
            .map_err(iam_error)?;
            return Ok(None);
        }
        "DeleteServerCertificate" => {
            let c = iam
                .get_server_certificate(account, name()?)
                .map_err(iam_error)?;
            let users = ctx
                .app
                .elbv2
                .listeners_using_certificate(account, &c.arn)
                .map_err(crate::elbv2::elb_error)?;
            if let Some(listener) = users.first() {
                return Err(iam_error(IamError::DeleteConflict(format!(
                    "Certificate: {} is currently in use by {listener}. Please remove it first before deleting it from IAM.",
                    c.server_certificate_id
                ))));
            }
            iam.delete_server_certificate(account, &c.server_certificate_name)
                .map_err(iam_error)?;
            return Ok(None);
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

fn metadata_xml(x: &mut Xml, c: &ServerCertificate) {
    x.leaf("Path", &c.path)
        .leaf("ServerCertificateName", &c.server_certificate_name)
        .leaf("ServerCertificateId", &c.server_certificate_id)
        .leaf("Arn", &c.arn)
        .leaf("UploadDate", iso8601(c.upload_date))
        .opt_leaf("Expiration", c.expiration.map(iso8601));
}
