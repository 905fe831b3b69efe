//! Listeners: CreateListener, DescribeListeners, ModifyListener, DeleteListener, and their
//! certificate lists (Add/Remove/DescribeListenerCertificates). HTTPS and TLS listeners
//! name IAM server certificates (ACM is not served): each must exist.

use berth_elbv2::{
    CreateListener, Listener, ListenerArn, LoadBalancerArn, ModifyListener, Protocol,
};

use super::rules::{action_xml, actions};
use super::{elb_error, next_marker, paging, parsed, scope};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &[
    "CreateListener",
    "DescribeListeners",
    "ModifyListener",
    "DeleteListener",
    "AddListenerCertificates",
    "RemoveListenerCertificates",
    "DescribeListenerCertificates",
];

fn listener_arn(r: &QueryRequest) -> Result<ListenerArn, AwsError> {
    ListenerArn::parse(r.required("ListenerArn")?).map_err(elb_error)
}

/// `Certificates.member.N.CertificateArn`.
fn certificates(r: &QueryRequest) -> Vec<String> {
    r.structs("Certificates")
        .into_iter()
        .filter_map(|c| c.get("CertificateArn").map(|a| a.to_string()))
        .collect()
}

fn alpn(r: &QueryRequest) -> Vec<String> {
    r.list("AlpnPolicy")
        .into_iter()
        .map(str::to_string)
        .collect()
}

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let elb = &ctx.app.elbv2;
    let scope = scope(ctx);
    let account = ctx.scope.account.to_string();
    let certificate_exists = |arn: &str| {
        ctx.app
            .iam
            .server_certificate_by_arn(&account, arn)
            .ok()
            .flatten()
            .is_some()
    };
    let mut xml = Xml::default();
    match r.action.as_str() {
        "CreateListener" => {
            let listener = elb
                .create_listener(
                    &scope,
                    CreateListener {
                        load_balancer: LoadBalancerArn::parse(r.required("LoadBalancerArn")?)
                            .map_err(elb_error)?,
                        protocol: parsed(r, "Protocol", Protocol::parse)?,
                        port: r.int("Port")?,
                        ssl_policy: r.get("SslPolicy").map(str::to_string),
                        certificates: certificates(r),
                        alpn_policy: alpn(r),
                        default_actions: actions(r, "DefaultActions")?,
                        tags: super::tags(r),
                    },
                    &certificate_exists,
                )
                .map_err(elb_error)?;
            xml.members("Listeners", [&listener], listener_xml);
        }
        "DescribeListeners" => {
            let lb = r
                .get("LoadBalancerArn")
                .map(LoadBalancerArn::parse)
                .transpose()
                .map_err(elb_error)?;
            let arns = super::arn_list(r, "ListenerArns", ListenerArn::parse)?;
            let page = elb
                .describe_listeners(&scope, lb.as_ref(), &arns, &paging(r)?)
                .map_err(elb_error)?;
            xml.members("Listeners", &page.items, listener_xml);
            next_marker(&mut xml, page.next_marker.as_deref());
        }
        "ModifyListener" => {
            let given = |list: &str| !r.structs(list).is_empty();
            let change = ModifyListener {
                protocol: parsed(r, "Protocol", Protocol::parse)?,
                port: r.int("Port")?,
                ssl_policy: r.get("SslPolicy").map(str::to_string),
                certificates: given("Certificates").then(|| certificates(r)),
                alpn_policy: (!r.list("AlpnPolicy").is_empty()).then(|| alpn(r)),
                default_actions: given("DefaultActions")
                    .then(|| actions(r, "DefaultActions"))
                    .transpose()?,
            };
            let listener = elb
                .modify_listener(&scope, &listener_arn(r)?, change, &certificate_exists)
                .map_err(elb_error)?;
            xml.members("Listeners", [&listener], listener_xml);
        }
        "DeleteListener" => {
            elb.delete_listener(&scope, &listener_arn(r)?)
                .map_err(elb_error)?;
        }
        "AddListenerCertificates"
        | "RemoveListenerCertificates"
        | "DescribeListenerCertificates" => {
            let arn = listener_arn(r)?;
            let listener = match r.action.as_str() {
                "AddListenerCertificates" => elb.add_listener_certificates(
                    &scope,
                    &arn,
                    &certificates(r),
                    &certificate_exists,
                ),
                "RemoveListenerCertificates" => {
                    elb.remove_listener_certificates(&scope, &arn, &certificates(r))
                }
                _ => elb.listener(&scope, &arn),
            }
            .map_err(elb_error)?;
            if r.action != "RemoveListenerCertificates" {
                xml.members("Certificates", &listener.certificates, |x, c| {
                    x.leaf("CertificateArn", &c.arn)
                        .leaf("IsDefault", c.is_default);
                });
            }
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

/// A listener as ELBv2 shows it.
fn listener_xml(x: &mut Xml, l: &Listener) {
    x.leaf("ListenerArn", &l.arn)
        .leaf("LoadBalancerArn", &l.load_balancer_arn)
        .leaf("Port", l.port)
        .leaf("Protocol", l.protocol);
    if !l.certificates.is_empty() {
        x.members("Certificates", &l.certificates, |x, c| {
            x.leaf("CertificateArn", &c.arn);
        });
    }
    x.opt_leaf("SslPolicy", l.ssl_policy.as_deref()).members(
        "DefaultActions",
        &l.default_actions,
        action_xml,
    );
    if !l.alpn_policy.is_empty() {
        x.members("AlpnPolicy", &l.alpn_policy, |x, p| {
            x.text(p);
        });
    }
}
