//! EC2 Auto Scaling's API and EC2's launch templates, in-process through the HTTP stack
//! (Query protocol): groups' shapes and defaults, EC2 Auto Scaling's errors and messages,
//! instances launched and terminated by the leader's controller (through a provisioner
//! command that starts nothing, so instances stay Pending), scale-in protection, and the
//! scaling activities' texts. (Real agents with the aws CLI: tests/tests/e2e/autoscaling_groups.rs.)

use std::time::{Duration, Instant};

use berth_testkit::{Endpoint, REGION, TestServer};

pub(crate) struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    #[track_caller]
    pub(crate) fn ok(self) -> Reply {
        assert_eq!(self.status, 200, "{}", self.body);
        self
    }

    pub(crate) fn all(&self, tag: &str) -> Vec<String> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let end = rest.find(&close).unwrap_or(rest.len());
            out.push(
                rest[..end]
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            );
            rest = &rest[end..];
        }
        out
    }

    #[track_caller]
    pub(crate) fn get(&self, tag: &str) -> String {
        self.all(tag)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no <{tag}> in {}", self.body))
    }

    /// The error's message, after checking its code.
    #[track_caller]
    pub(crate) fn error(&self, code: &str) -> String {
        assert_eq!(self.status, 400, "{}", self.body);
        assert_eq!(self.get("Code"), code, "{}", self.body);
        self.get("Message")
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn call(
    s: &TestServer,
    service: &str,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
) -> Reply {
    let mut form = format!("Action={action}&Version={version}");
    for (k, v) in params {
        form.push_str(&format!("&{}={}", encode(k), encode(v)));
    }
    let r = s.json_client().query(service, REGION, &form).unwrap();
    Reply {
        status: r.status,
        body: String::from_utf8_lossy(&r.body).into_owned(),
    }
}

pub(crate) fn asg(s: &TestServer, action: &str, params: &[(&str, &str)]) -> Reply {
    call(s, "autoscaling", "2011-01-01", action, params)
}

pub(crate) fn ec2(s: &TestServer, action: &str, params: &[(&str, &str)]) -> Reply {
    call(s, "ec2", "2016-11-15", action, params)
}

/// A server whose Auto Scaling instances are handed to a command that starts nothing.
pub(crate) fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.asg_provisioner =
            berth_server::autoscaling::provisioner::ProvisionerConfig::Command("/bin/true".into());
    })
}

/// `ECS_CLUSTER=web` as user data, base64.
const USER_DATA: &str =
    "IyEvYmluL2Jhc2gKZWNobyBFQ1NfQ0xVU1RFUj13ZWIgPj4gL2V0Yy9lY3MvZWNzLmNvbmZpZwo=";

pub(crate) fn template(s: &TestServer, name: &str) -> String {
    ec2(
        s,
        "CreateLaunchTemplate",
        &[
            ("LaunchTemplateName", name),
            ("LaunchTemplateData.InstanceType", "t3.micro"),
            ("LaunchTemplateData.ImageId", "ami-0123456789abcdef0"),
            ("LaunchTemplateData.UserData", USER_DATA),
        ],
    )
    .ok()
    .get("launchTemplateId")
}

/// Polls DescribeAutoScalingGroups until `done` holds for the group's answer.
#[track_caller]
pub(crate) fn wait_for(
    s: &TestServer,
    group: &str,
    what: &str,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = asg(
            s,
            "DescribeAutoScalingGroups",
            &[("AutoScalingGroupNames.member.1", group)],
        )
        .ok();
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "never {what}: {}", r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn launch_templates_are_created_versioned_described_and_deleted() {
    let s = server();
    let id = template(&s, "web-lt");
    assert!(id.starts_with("lt-") && id.len() == 20, "{id}");
    let again = ec2(
        &s,
        "CreateLaunchTemplate",
        &[("LaunchTemplateName", "web-lt")],
    );
    assert_eq!(
        again.error("InvalidLaunchTemplateName.AlreadyExistsException"),
        "Launch template name already in use."
    );
    let v2 = ec2(
        &s,
        "CreateLaunchTemplateVersion",
        &[
            ("LaunchTemplateName", "web-lt"),
            ("SourceVersion", "1"),
            ("LaunchTemplateData.InstanceType", "t3.large"),
        ],
    )
    .ok();
    assert_eq!(v2.get("versionNumber"), "2");
    assert_eq!(v2.get("defaultVersion"), "false");
    // Version 2 keeps what it did not change.
    assert_eq!(v2.get("userData"), USER_DATA);
    let described = ec2(
        &s,
        "DescribeLaunchTemplates",
        &[("LaunchTemplateName.1", "web-lt")],
    )
    .ok();
    assert_eq!(described.get("launchTemplateId"), id);
    assert_eq!(described.get("defaultVersionNumber"), "1");
    assert_eq!(described.get("latestVersionNumber"), "2");
    let latest = ec2(
        &s,
        "DescribeLaunchTemplateVersions",
        &[
            ("LaunchTemplateId", &id),
            ("LaunchTemplateVersion.1", "$Latest"),
        ],
    )
    .ok();
    assert_eq!(latest.all("instanceType"), ["t3.large"]);
    let unknown = ec2(
        &s,
        "DescribeLaunchTemplates",
        &[("LaunchTemplateName.1", "nope")],
    );
    assert_eq!(
        unknown.error("InvalidLaunchTemplateName.NotFoundException"),
        "At least one of the launch templates specified in the request does not exist."
    );
    ec2(&s, "DeleteLaunchTemplate", &[("LaunchTemplateId", &id)]).ok();
    let gone = ec2(
        &s,
        "DescribeLaunchTemplates",
        &[("LaunchTemplateId.1", &id)],
    );
    assert_eq!(
        gone.error("InvalidLaunchTemplateId.NotFound"),
        format!("The specified launch template, with template ID {id}, does not exist.")
    );
}

#[test]
fn groups_have_auto_scalings_shapes_defaults_and_errors() {
    let s = server();
    let id = template(&s, "api-lt");
    let create = |name: &str, extra: &[(&str, &str)]| {
        let mut params = vec![
            ("AutoScalingGroupName", name),
            ("LaunchTemplate.LaunchTemplateName", "api-lt"),
            ("MinSize", "0"),
            ("MaxSize", "3"),
            ("AvailabilityZones.member.1", "us-east-1a"),
        ];
        params.extend_from_slice(extra);
        asg(&s, "CreateAutoScalingGroup", &params)
    };
    create(
        "api",
        &[("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "x")],
    )
    .ok();
    assert_eq!(
        create("api", &[]).error("AlreadyExists"),
        "AutoScalingGroup by this name already exists - A group with the name api already exists"
    );
    let g = asg(
        &s,
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "api")],
    )
    .ok();
    assert!(g.body.contains("<DescribeAutoScalingGroupsResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">"), "{}", g.body);
    let arn = g.get("AutoScalingGroupARN");
    assert!(
        arn.starts_with("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:")
            && arn.ends_with(":autoScalingGroupName/api"),
        "{arn}"
    );
    assert_eq!(g.get("LaunchTemplateId"), id);
    assert_eq!(g.get("Version"), "$Default");
    assert_eq!(g.get("DesiredCapacity"), "0");
    assert_eq!(g.get("DefaultCooldown"), "300");
    assert_eq!(g.get("HealthCheckType"), "EC2");
    assert_eq!(g.get("HealthCheckGracePeriod"), "0");
    assert_eq!(g.all("TerminationPolicies"), ["<member>Default</member>"]);
    assert_eq!(g.get("NewInstancesProtectedFromScaleIn"), "false");
    assert_eq!(g.get("ResourceType"), "auto-scaling-group");

    // EC2 Auto Scaling's checks, with its texts.
    assert_eq!(
        create("big", &[("DesiredCapacity", "5")]).error("ValidationError"),
        "Desired capacity:5 must be between the specified min size:0 and max size:3"
    );
    assert_eq!(
        asg(
            &s,
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", "x"),
                ("MinSize", "0"),
                ("MaxSize", "1"),
                ("AvailabilityZones.member.1", "us-east-1a")
            ]
        )
        .error("ValidationError"),
        "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter."
    );
    assert_eq!(
        asg(
            &s,
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", "x"),
                ("LaunchTemplate.LaunchTemplateName", "nope"),
                ("MinSize", "0"),
                ("MaxSize", "1"),
                ("AvailabilityZones.member.1", "us-east-1a")
            ]
        )
        .error("ValidationError"),
        "You must use a valid fully-formed launch template. The specified launch template, with template name nope, does not exist."
    );
    assert_eq!(
        asg(
            &s,
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", "x"),
                ("LaunchTemplate.LaunchTemplateName", "api-lt"),
                ("MinSize", "0"),
                ("MaxSize", "1")
            ]
        )
        .error("ValidationError"),
        "At least one Availability Zone or VPC Subnet is required."
    );
    assert_eq!(
        asg(
            &s,
            "SetDesiredCapacity",
            &[("AutoScalingGroupName", "api"), ("DesiredCapacity", "4")]
        )
        .error("ValidationError"),
        "New SetDesiredCapacity value 4 is above max value 3 for the AutoScalingGroup."
    );
    assert_eq!(
        asg(
            &s,
            "UpdateAutoScalingGroup",
            &[("AutoScalingGroupName", "api"), ("MinSize", "4")]
        )
        .error("ValidationError"),
        "Max bound, 3, must be greater than or equal to min bound, 4"
    );
    assert_eq!(
        asg(
            &s,
            "SetDesiredCapacity",
            &[("AutoScalingGroupName", "nope"), ("DesiredCapacity", "1")]
        )
        .error("ValidationError"),
        "AutoScalingGroup name not found - AutoScalingGroup nope not found"
    );
    asg(
        &s,
        "UpdateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "api"),
            ("MaxSize", "6"),
            ("DefaultCooldown", "60"),
        ],
    )
    .ok();
    let g = asg(
        &s,
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "api")],
    )
    .ok();
    assert_eq!(
        (g.get("MaxSize"), g.get("DefaultCooldown")),
        ("6".into(), "60".into())
    );
    // A VPC subnet gives the group its zone.
    let subnets = ec2(&s, "DescribeSubnets", &[]).ok().all("subnetId");
    let zones = ec2(&s, "DescribeSubnets", &[]).ok().all("availabilityZone");
    create("vpc", &[("VPCZoneIdentifier", &subnets[0])]).ok();
    let g = asg(
        &s,
        "DescribeAutoScalingGroups",
        &[("AutoScalingGroupNames.member.1", "vpc")],
    )
    .ok();
    assert_eq!(g.get("VPCZoneIdentifier"), subnets[0]);
    assert_eq!(
        g.all("AvailabilityZones"),
        [format!("<member>{}</member>", zones[0])]
    );
    asg(
        &s,
        "DeleteAutoScalingGroup",
        &[("AutoScalingGroupName", "api")],
    )
    .ok();
    asg(
        &s,
        "DeleteAutoScalingGroup",
        &[("AutoScalingGroupName", "vpc")],
    )
    .ok();
    let none = asg(&s, "DescribeAutoScalingGroups", &[]).ok();
    assert!(none.all("AutoScalingGroupName").is_empty(), "{}", none.body);
}

#[test]
fn instances_are_launched_protected_terminated_and_recorded_as_activities() {
    let s = server();
    template(&s, "web-lt");
    asg(
        &s,
        "CreateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "web"),
            ("LaunchTemplate.LaunchTemplateName", "web-lt"),
            ("MinSize", "0"),
            ("MaxSize", "3"),
            ("DesiredCapacity", "2"),
            ("AvailabilityZones.member.1", "us-east-1a"),
            ("AvailabilityZones.member.2", "us-east-1b"),
        ],
    )
    .ok();
    let g = wait_for(&s, "web", "two instances", |r| {
        r.all("InstanceId").len() == 2
    });
    let ids = g.all("InstanceId");
    for id in &ids {
        let hex = id.strip_prefix("i-").unwrap();
        assert!(
            hex.len() == 17 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    // The provisioner started nothing: no agent registered, so they stay Pending.
    assert_eq!(g.all("LifecycleState"), ["Pending", "Pending"]);
    assert_eq!(g.all("InstanceType"), ["t3.micro", "t3.micro"]);
    let mut zones = g.all("AvailabilityZone");
    zones.sort();
    assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
    let described = asg(
        &s,
        "DescribeAutoScalingInstances",
        &[("InstanceIds.member.1", &ids[0])],
    )
    .ok();
    assert_eq!(described.get("AutoScalingGroupName"), "web");
    assert_eq!(described.get("HealthStatus"), "HEALTHY");
    assert_eq!(described.get("Version"), "1");

    assert_eq!(
        asg(
            &s,
            "DeleteAutoScalingGroup",
            &[("AutoScalingGroupName", "web")]
        )
        .error("ResourceInUse"),
        "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group."
    );
    asg(
        &s,
        "SetInstanceProtection",
        &[
            ("AutoScalingGroupName", "web"),
            ("InstanceIds.member.1", &ids[0]),
            ("ProtectedFromScaleIn", "true"),
        ],
    )
    .ok();
    asg(
        &s,
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "web"), ("DesiredCapacity", "0")],
    )
    .ok();
    // Scale-in passes over the protected instance.
    let g = wait_for(&s, "web", "the unprotected instance terminated", |r| {
        r.all("InstanceId").len() == 1
    });
    assert_eq!(g.all("InstanceId"), [ids[0].clone()]);
    assert_eq!(g.get("ProtectedFromScaleIn"), "true");

    let activities = asg(
        &s,
        "DescribeScalingActivities",
        &[("AutoScalingGroupName", "web")],
    )
    .ok();
    let descriptions = activities.all("Description");
    assert_eq!(
        descriptions[0],
        format!("Terminating EC2 instance: {}", ids[1])
    );
    assert_eq!(activities.all("StatusCode")[0], "Successful");
    let cause = &activities.all("Cause")[0];
    assert!(cause.contains("a user request explicitly set group desired capacity changing the desired capacity from 2 to 0."), "{cause}");
    assert!(
        cause.contains(&format!(
            "instance {} was selected for termination.",
            ids[1]
        )),
        "{cause}"
    );
    let launches: Vec<&String> = descriptions
        .iter()
        .filter(|d| d.starts_with("Launching a new EC2 instance: i-"))
        .collect();
    assert_eq!(launches.len(), 2, "{descriptions:?}");
    assert!(activities.all("Cause").iter().any(|c| c.contains(
        "a user request created an AutoScalingGroup changing the desired capacity from 0 to 2."
    )));

    assert_eq!(
        asg(
            &s,
            "TerminateInstanceInAutoScalingGroup",
            &[
                ("InstanceId", &ids[0]),
                ("ShouldDecrementDesiredCapacity", "true")
            ]
        )
        .error("ValidationError"),
        "Currently, desiredCapacity (0) is equal to minSize (0); cannot decrement desiredCapacity below minSize."
    );
    assert_eq!(
        asg(
            &s,
            "TerminateInstanceInAutoScalingGroup",
            &[
                ("InstanceId", "i-00000000000000000"),
                ("ShouldDecrementDesiredCapacity", "false")
            ]
        )
        .error("ValidationError"),
        "Instance Id not found - No managed instance found for instance ID: i-00000000000000000"
    );
    let terminated = asg(
        &s,
        "TerminateInstanceInAutoScalingGroup",
        &[
            ("InstanceId", &ids[0]),
            ("ShouldDecrementDesiredCapacity", "false"),
        ],
    )
    .ok();
    assert_eq!(
        terminated.get("Description"),
        format!("Terminating EC2 instance: {}", ids[0])
    );
    assert!(terminated.get("Cause").contains(&format!(
        "instance {} was taken out of service in response to a user request.",
        ids[0]
    )));
    wait_for(&s, "web", "no instance left", |r| {
        r.all("InstanceId").is_empty()
    });
    asg(
        &s,
        "DeleteAutoScalingGroup",
        &[("AutoScalingGroupName", "web")],
    )
    .ok();
}

#[test]
fn force_delete_terminates_the_instances_then_the_group() {
    let s = server();
    template(&s, "batch-lt");
    asg(
        &s,
        "CreateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "batch"),
            ("LaunchTemplate.LaunchTemplateName", "batch-lt"),
            ("MinSize", "1"),
            ("MaxSize", "1"),
            ("AvailabilityZones.member.1", "us-east-1c"),
            ("NewInstancesProtectedFromScaleIn", "true"),
        ],
    )
    .ok();
    let g = wait_for(&s, "batch", "an instance", |r| {
        r.all("InstanceId").len() == 1
    });
    assert_eq!(g.get("ProtectedFromScaleIn"), "true");
    asg(
        &s,
        "DeleteAutoScalingGroup",
        &[("AutoScalingGroupName", "batch"), ("ForceDelete", "true")],
    )
    .ok();
    wait_for(&s, "batch", "the group gone", |r| {
        r.all("AutoScalingGroupName").is_empty()
    });
    let after = asg(
        &s,
        "DescribeScalingActivities",
        &[("AutoScalingGroupName", "batch")],
    );
    assert_eq!(
        after.error("ValidationError"),
        "AutoScalingGroup name not found - AutoScalingGroup batch not found"
    );
}

/// An IAM user's credentials.
struct As {
    port: u16,
    key: String,
    secret: String,
}

impl Endpoint for As {
    fn port(&self) -> u16 {
        self.port
    }
    fn access_key(&self) -> &str {
        &self.key
    }
    fn secret_key(&self) -> &str {
        &self.secret
    }
}

#[test]
fn a_users_policy_decides_on_groups_by_name() {
    let s = server();
    let iam =
        |action: &str, params: &[(&str, &str)]| call(&s, "iam", "2010-05-08", action, params).ok();
    iam("CreateUser", &[("UserName", "scaler")]);
    let key = iam("CreateAccessKey", &[("UserName", "scaler")]);
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"autoscaling:Describe*","Resource":"*"},
        {"Effect":"Allow","Action":"autoscaling:SetDesiredCapacity","Resource":"arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:*:autoScalingGroupName/web"}]}"#;
    iam(
        "PutUserPolicy",
        &[
            ("UserName", "scaler"),
            ("PolicyName", "p"),
            ("PolicyDocument", policy),
        ],
    );
    let user = As {
        port: s.port(),
        key: key.get("AccessKeyId"),
        secret: key.get("SecretAccessKey"),
    };
    let as_user = |action: &str, params: &[(&str, &str)]| {
        let mut form = format!("Action={action}&Version=2011-01-01");
        for (k, v) in params {
            form.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        let r = user
            .json_client()
            .query("autoscaling", REGION, &form)
            .unwrap();
        Reply {
            status: r.status,
            body: String::from_utf8_lossy(&r.body).into_owned(),
        }
    };
    as_user("DescribeAutoScalingGroups", &[]).ok();
    let denied = as_user(
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "other"), ("DesiredCapacity", "1")],
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert_eq!(denied.get("Code"), "AccessDenied");
    assert!(
        denied
            .get("Message")
            .contains("autoscaling:SetDesiredCapacity"),
        "{}",
        denied.body
    );
    // Allowed on `web`: the call goes through (and finds no such group).
    let allowed = as_user(
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "web"), ("DesiredCapacity", "1")],
    );
    assert_eq!(
        allowed.error("ValidationError"),
        "AutoScalingGroup name not found - AutoScalingGroup web not found"
    );
}
