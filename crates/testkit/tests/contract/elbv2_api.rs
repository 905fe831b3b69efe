//! ELBv2's API, in-process through the HTTP stack (Query protocol): load balancers with
//! their loopback address, target groups and their health check defaults, attributes,
//! listeners and rules (priorities, both condition forms, weighted forwards), targets and
//! DescribeTargetHealth's states, ResourceInUse, paging, tags, and HTTPS listeners with an
//! IAM server certificate. (The aws CLI workflow: tests/tests/e2e/elbv2_api.rs.)

use berth_testkit::{Endpoint, REGION, TestServer};

const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUJyr7vqEM9JQRVVF2ZMgsxz+xdsIwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOd2ViLmJlcnRoLnRlc3QwHhcNMjYxMjA3MDQxNjAzWhcNMzYx
MjA0MDQxNjAzWjAZMRcwFQYDVQQDDA53ZWIuYmVydGgudGVzdDBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABGHx61XMZRB090ADZwbJ4mRnE8sNAtmElauyAhOiz5pC
SW+lXw+yc+fj5ocP0civOOk1qdOxlsF4w3We+W7e3YijUzBRMB0GA1UdDgQWBBSU
MZGlYxlG4Rm9LSHgdBTevI5SzzAfBgNVHSMEGDAWgBSUMZGlYxlG4Rm9LSHgdBTe
vI5SzzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDUjz0TtOyH
lEhAExG98zYMSpA2ecpDdOyl8iCZEaOM5QIgGzHtxgN3AdkiSkt6VmIrCQVUY5+t
UdjoSmH4B/FiP+M=
-----END CERTIFICATE-----
";

// A throwaway key made for this test with `openssl req -x509` (self-signed, test only).
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEi2FgOen5Vdaqr5b
jOmWkjLcN9HPGwX+kICyUGdfOtShRANCAARh8etVzGUQdPdAA2cGyeJkZxPLDQLZ
hJWrsgITos+aQklvpV8PsnPn4+aHD9HIrzjpNanTsZbBeMN1nvlu3t2I
-----END PRIVATE KEY-----
";

/// A Query answer: the status and the XML text.
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    #[track_caller]
    fn ok(self) -> Reply {
        assert_eq!(self.status, 200, "{}", self.body);
        self
    }

    /// The text of the first `<tag>`.
    fn get(&self, tag: &str) -> String {
        self.all(tag)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no <{tag}> in {}", self.body))
    }

    /// The texts of every `<tag>…</tag>` (innermost text, no nested elements).
    fn all(&self, tag: &str) -> Vec<String> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let end = rest.find(&close).unwrap_or(rest.len());
            out.push(unescape(&rest[..end]));
            rest = &rest[end..];
        }
        out
    }

    #[track_caller]
    fn error(&self, code: &str) -> String {
        assert_eq!(self.status, 400, "{}", self.body);
        assert_eq!(self.get("Code"), code, "{}", self.body);
        self.get("Message")
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(
            |b| match b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                true => (b as char).to_string(),
                false => format!("%{b:02X}"),
            },
        )
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

fn elb(s: &TestServer, action: &str, params: &[(&str, &str)]) -> Reply {
    call(s, "elasticloadbalancing", "2015-12-01", action, params)
}

fn iam(s: &TestServer, action: &str, params: &[(&str, &str)]) -> Reply {
    call(s, "iam", "2010-05-08", action, params)
}

/// The default VPC's id, its default subnets in zones a, b, c and its default group.
struct Net {
    vpc: String,
    a: String,
    b: String,
    c: String,
    sg: String,
}

impl Net {
    fn of(s: &TestServer) -> Net {
        let ec2 = |action: &str, params: &[(&str, &str)]| {
            call(s, "ec2", "2016-11-15", action, params).ok()
        };
        let subnets = ec2(
            "DescribeSubnets",
            &[
                ("Filter.1.Name", "default-for-az"),
                ("Filter.1.Value.1", "true"),
            ],
        );
        let mut placed: Vec<(String, String)> = subnets
            .all("availabilityZone")
            .into_iter()
            .zip(subnets.all("subnetId"))
            .collect();
        placed.sort();
        let groups = ec2(
            "DescribeSecurityGroups",
            &[
                ("Filter.1.Name", "group-name"),
                ("Filter.1.Value.1", "default"),
            ],
        );
        Net {
            vpc: subnets.get("vpcId"),
            a: placed[0].1.clone(),
            b: placed[1].1.clone(),
            c: placed[2].1.clone(),
            sg: groups.get("groupId"),
        }
    }
}

fn create_alb(s: &TestServer, name: &str) -> Reply {
    let n = Net::of(s);
    elb(
        s,
        "CreateLoadBalancer",
        &[
            ("Name", name),
            ("Subnets.member.1", &n.a),
            ("Subnets.member.2", &n.b),
            ("SecurityGroups.member.1", &n.sg),
        ],
    )
}

fn create_tg(s: &TestServer, name: &str, protocol: &str, port: &str) -> String {
    let n = Net::of(s);
    elb(
        s,
        "CreateTargetGroup",
        &[
            ("Name", name),
            ("Protocol", protocol),
            ("Port", port),
            ("VpcId", &n.vpc),
            ("TargetType", "ip"),
        ],
    )
    .ok()
    .get("TargetGroupArn")
}

fn create_http_listener(s: &TestServer, lb: &str, port: &str, tg: &str) -> String {
    elb(
        s,
        "CreateListener",
        &[
            ("LoadBalancerArn", lb),
            ("Protocol", "HTTP"),
            ("Port", port),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", tg),
        ],
    )
    .ok()
    .get("ListenerArn")
}

#[test]
fn a_load_balancer_gets_a_loopback_address_as_its_dns_name_and_becomes_active() {
    let s = TestServer::start();
    let n = Net::of(&s);
    let created = create_alb(&s, "web").ok();
    let arn = created.get("LoadBalancerArn");
    assert!(
        arn.starts_with(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/"
        ),
        "{arn}"
    );
    assert_eq!(arn.rsplit('/').next().unwrap().len(), 16);
    assert_eq!(created.get("Code"), "provisioning");
    let dns: std::net::Ipv4Addr = created.get("DNSName").parse().unwrap();
    assert_eq!(dns.octets()[0], 127);
    assert_eq!(dns.octets()[1] & 0xc0, 64, "{dns} is in 127.64.0.0/10");
    assert_eq!(created.get("Type"), "application");
    assert_eq!(created.get("Scheme"), "internet-facing");
    assert_eq!(created.get("IpAddressType"), "ipv4");
    assert_eq!(created.get("CanonicalHostedZoneId"), "Z35SXDOTRQ7X7K");
    assert!(created.get("VpcId").starts_with("vpc-"));
    assert_eq!(created.all("SubnetId"), [n.a.clone(), n.b.clone()]);
    assert_eq!(created.get("ZoneName"), "us-east-1a");
    assert!(created.get("CreatedTime").ends_with('Z'));
    let other = create_alb(&s, "api").ok();
    assert_ne!(other.get("DNSName"), created.get("DNSName"));
    let by_name = elb(&s, "DescribeLoadBalancers", &[("Names.member.1", "web")]).ok();
    assert_eq!(by_name.get("LoadBalancerArn"), arn);
    assert_eq!(by_name.get("Code"), "active");
    let by_arn = elb(
        &s,
        "DescribeLoadBalancers",
        &[("LoadBalancerArns.member.1", &arn)],
    )
    .ok();
    assert_eq!(by_arn.get("DNSName"), created.get("DNSName"));
    let nlb = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "tcp"),
            ("Type", "network"),
            ("Scheme", "internal"),
            ("Subnets.member.1", &n.a),
        ],
    )
    .ok();
    assert!(
        nlb.get("LoadBalancerArn")
            .contains(":loadbalancer/net/tcp/")
    );
    assert_eq!(nlb.get("CanonicalHostedZoneId"), "Z26RNL4JYFTOTI");
    elb(&s, "DeleteLoadBalancer", &[("LoadBalancerArn", &arn)]).ok();
    let gone = elb(&s, "DescribeLoadBalancers", &[("Names.member.1", "web")]);
    gone.error("LoadBalancerNotFound");
    // Deleting again is not an error, as on AWS.
    elb(&s, "DeleteLoadBalancer", &[("LoadBalancerArn", &arn)]).ok();
}

#[test]
fn requests_are_refused_with_elbv2_codes_and_messages() {
    let s = TestServer::start();
    let n = Net::of(&s);
    let first = create_alb(&s, "web").ok().get("LoadBalancerArn");
    // The same request again answers the same load balancer.
    assert_eq!(create_alb(&s, "web").ok().get("LoadBalancerArn"), first);
    let dup = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "web"),
            ("Subnets.member.1", &n.a),
            ("Subnets.member.2", &n.c),
        ],
    );
    assert_eq!(
        dup.error("DuplicateLoadBalancerName"),
        "A load balancer with the same name 'web' exists, but with different settings"
    );
    let one_subnet = elb(
        &s,
        "CreateLoadBalancer",
        &[("Name", "x"), ("Subnets.member.1", &n.a)],
    );
    assert_eq!(
        one_subnet.error("ValidationError"),
        "At least two subnets in two different Availability Zones must be specified"
    );
    let bad_subnet = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "x"),
            ("Subnets.member.1", &n.a),
            ("Subnets.member.2", "oops"),
        ],
    );
    assert_eq!(
        bad_subnet.error("SubnetNotFound"),
        "The subnet ID 'oops' is not valid"
    );
    let bad_name = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "internal-x"),
            ("Subnets.member.1", &n.a),
            ("Subnets.member.2", "subnet-0b"),
        ],
    );
    assert_eq!(
        bad_name.error("ValidationError"),
        "Load balancer name 'internal-x' cannot begin with 'internal-'"
    );
    let bad_arn = elb(
        &s,
        "DescribeLoadBalancers",
        &[("LoadBalancerArns.member.1", "nope")],
    );
    assert_eq!(
        bad_arn.error("ValidationError"),
        "'nope' is not a valid load balancer ARN"
    );
    let missing = elb(
        &s,
        "DescribeTargetGroups",
        &[(
            "TargetGroupArns.member.1",
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/none/0123456789abcdef",
        )],
    );
    assert_eq!(
        missing.error("TargetGroupNotFound"),
        "One or more target groups not found"
    );
    create_tg(&s, "tg", "HTTP", "80");
    let dup_tg = elb(
        &s,
        "CreateTargetGroup",
        &[
            ("Name", "tg"),
            ("Protocol", "HTTP"),
            ("Port", "8080"),
            ("VpcId", &n.vpc),
        ],
    );
    assert_eq!(
        dup_tg.error("DuplicateTargetGroupName"),
        "A target group with the same name 'tg' exists, but with different settings"
    );
    let enum_value = elb(
        &s,
        "CreateTargetGroup",
        &[("Name", "t2"), ("Protocol", "FTP")],
    );
    assert!(
        enum_value
            .error("ValidationError")
            .contains("Member must satisfy enum value set")
    );
    let no_name = elb(&s, "CreateTargetGroup", &[("Protocol", "HTTP")]);
    assert!(no_name.error("ValidationError").contains("'name'"));
}

#[test]
fn describe_load_balancers_pages_with_marker_and_page_size() {
    let s = TestServer::start();
    for name in ["a", "b", "c"] {
        create_alb(&s, name).ok();
    }
    let first = elb(&s, "DescribeLoadBalancers", &[("PageSize", "2")]).ok();
    assert_eq!(first.all("LoadBalancerName"), ["a", "b"]);
    let marker = first.get("NextMarker");
    let second = elb(
        &s,
        "DescribeLoadBalancers",
        &[("PageSize", "2"), ("Marker", &marker)],
    )
    .ok();
    assert_eq!(second.all("LoadBalancerName"), ["c"]);
    assert!(second.all("NextMarker").is_empty());
    let too_big = elb(&s, "DescribeLoadBalancers", &[("PageSize", "401")]);
    too_big.error("ValidationError");
}

#[test]
fn target_groups_take_elbv2_health_check_defaults_and_attributes() {
    let s = TestServer::start();
    let n = Net::of(&s);
    let http = elb(
        &s,
        "CreateTargetGroup",
        &[
            ("Name", "http"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("VpcId", &n.vpc),
        ],
    )
    .ok();
    assert!(http.get("TargetGroupArn").contains(":targetgroup/http/"));
    assert_eq!(http.get("HealthCheckProtocol"), "HTTP");
    assert_eq!(http.get("HealthCheckPort"), "traffic-port");
    assert_eq!(http.get("HealthCheckPath"), "/");
    assert_eq!(http.get("HealthCheckIntervalSeconds"), "30");
    assert_eq!(http.get("HealthCheckTimeoutSeconds"), "5");
    assert_eq!(http.get("HealthyThresholdCount"), "5");
    assert_eq!(http.get("UnhealthyThresholdCount"), "2");
    assert_eq!(http.get("HttpCode"), "200");
    assert_eq!(http.get("TargetType"), "instance");
    assert_eq!(http.get("ProtocolVersion"), "HTTP1");
    let tcp = elb(
        &s,
        "CreateTargetGroup",
        &[
            ("Name", "tcp"),
            ("Protocol", "TCP"),
            ("Port", "5432"),
            ("VpcId", &n.vpc),
            ("TargetType", "ip"),
        ],
    )
    .ok();
    assert_eq!(tcp.get("HealthCheckProtocol"), "TCP");
    assert_eq!(tcp.get("HealthCheckTimeoutSeconds"), "10");
    assert!(tcp.all("HealthCheckPath").is_empty());
    assert!(tcp.all("Matcher").is_empty());
    let arn = http.get("TargetGroupArn");
    let modified = elb(
        &s,
        "ModifyTargetGroup",
        &[
            ("TargetGroupArn", &arn),
            ("HealthCheckPath", "/health"),
            ("Matcher.HttpCode", "200-299"),
            ("HealthCheckIntervalSeconds", "10"),
        ],
    )
    .ok();
    assert_eq!(modified.get("HealthCheckPath"), "/health");
    assert_eq!(modified.get("HttpCode"), "200-299");
    let bad = elb(
        &s,
        "ModifyTargetGroup",
        &[
            ("TargetGroupArn", &arn),
            ("HealthCheckTimeoutSeconds", "10"),
        ],
    );
    assert_eq!(
        bad.error("InvalidConfigurationRequest"),
        "Health check interval '10' must be greater than the timeout '10'"
    );
    let attrs = elb(
        &s,
        "DescribeTargetGroupAttributes",
        &[("TargetGroupArn", &arn)],
    )
    .ok();
    let keys = attrs.all("Key");
    let values = attrs.all("Value");
    let value = |k: &str| values[keys.iter().position(|x| x == k).unwrap()].clone();
    assert_eq!(value("deregistration_delay.timeout_seconds"), "300");
    assert_eq!(value("stickiness.enabled"), "false");
    assert_eq!(value("stickiness.type"), "lb_cookie");
    assert_eq!(value("stickiness.lb_cookie.duration_seconds"), "86400");
    assert_eq!(value("slow_start.duration_seconds"), "0");
    let changed = elb(
        &s,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &arn),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "30"),
            ("Attributes.member.2.Key", "stickiness.enabled"),
            ("Attributes.member.2.Value", "true"),
        ],
    )
    .ok();
    let keys = changed.all("Key");
    assert_eq!(
        changed.all("Value")[keys
            .iter()
            .position(|k| k == "deregistration_delay.timeout_seconds")
            .unwrap()],
        "30"
    );
    let slow = elb(
        &s,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &arn),
            ("Attributes.member.1.Key", "slow_start.duration_seconds"),
            ("Attributes.member.1.Value", "10"),
        ],
    );
    assert!(
        slow.error("InvalidConfigurationRequest")
            .contains("slow_start.duration_seconds")
    );
    let unknown = elb(
        &s,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &arn),
            ("Attributes.member.1.Key", "nope"),
            ("Attributes.member.1.Value", "1"),
        ],
    );
    assert_eq!(
        unknown.error("InvalidConfigurationRequest"),
        "Target group attribute key 'nope' is not recognized"
    );
    let lb = create_alb(&s, "web").ok().get("LoadBalancerArn");
    let lb_attrs = elb(
        &s,
        "DescribeLoadBalancerAttributes",
        &[("LoadBalancerArn", &lb)],
    )
    .ok();
    let keys = lb_attrs.all("Key");
    assert_eq!(
        lb_attrs.all("Value")[keys
            .iter()
            .position(|k| k == "idle_timeout.timeout_seconds")
            .unwrap()],
        "60"
    );
    let idle = elb(
        &s,
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &lb),
            ("Attributes.member.1.Key", "idle_timeout.timeout_seconds"),
            ("Attributes.member.1.Value", "5000"),
        ],
    );
    idle.error("InvalidConfigurationRequest");
    elb(
        &s,
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &lb),
            ("Attributes.member.1.Key", "deletion_protection.enabled"),
            ("Attributes.member.1.Value", "true"),
        ],
    )
    .ok();
    let protected = elb(&s, "DeleteLoadBalancer", &[("LoadBalancerArn", &lb)]);
    assert!(
        protected
            .error("OperationNotPermitted")
            .contains("deletion protection is enabled")
    );
}

#[test]
fn rules_keep_priorities_unique_and_show_both_condition_forms_and_weighted_forwards() {
    let s = TestServer::start();
    let lb = create_alb(&s, "web").ok().get("LoadBalancerArn");
    let a = create_tg(&s, "a", "HTTP", "80");
    let b = create_tg(&s, "b", "HTTP", "80");
    let listener = create_http_listener(&s, &lb, "80", &a);
    assert!(listener.contains(":listener/app/web/"), "{listener}");
    let dup = elb(
        &s,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &a),
        ],
    );
    assert!(
        dup.error("DuplicateListener")
            .starts_with("A listener already exists on this port")
    );
    let legacy = elb(
        &s,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "path-pattern"),
            ("Conditions.member.1.Values.member.1", "/a/*"),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", &a),
        ],
    )
    .ok();
    let r10 = legacy.get("RuleArn");
    assert!(r10.contains(":listener-rule/app/web/"), "{r10}");
    assert_eq!(
        legacy.all("Values"),
        ["<member>/a/*</member>", "<member>/a/*</member>"]
    );
    assert_eq!(legacy.get("Weight"), "1");
    let weighted = elb(
        &s,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "20"),
            ("Conditions.member.1.Field", "path-pattern"),
            (
                "Conditions.member.1.PathPatternConfig.Values.member.1",
                "/b/*",
            ),
            ("Conditions.member.2.Field", "http-header"),
            (
                "Conditions.member.2.HttpHeaderConfig.HttpHeaderName",
                "X-Canary",
            ),
            (
                "Conditions.member.2.HttpHeaderConfig.Values.member.1",
                "yes",
            ),
            ("Conditions.member.3.Field", "query-string"),
            (
                "Conditions.member.3.QueryStringConfig.Values.member.1.Key",
                "v",
            ),
            (
                "Conditions.member.3.QueryStringConfig.Values.member.1.Value",
                "2",
            ),
            ("Actions.member.1.Type", "forward"),
            (
                "Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn",
                &a,
            ),
            (
                "Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight",
                "80",
            ),
            (
                "Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn",
                &b,
            ),
            (
                "Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight",
                "20",
            ),
            (
                "Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled",
                "true",
            ),
            (
                "Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds",
                "300",
            ),
        ],
    )
    .ok();
    let r20 = weighted.get("RuleArn");
    assert_eq!(weighted.all("Weight"), ["80", "20"]);
    assert_eq!(weighted.get("DurationSeconds"), "300");
    assert_eq!(weighted.get("HttpHeaderName"), "X-Canary");
    assert_eq!(weighted.get("Key"), "v");
    // A forward to several groups has no TargetGroupArn of its own.
    assert_eq!(weighted.all("TargetGroupArn").len(), 2);
    let taken = elb(
        &s,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "host-header"),
            ("Conditions.member.1.Values.member.1", "x.example.com"),
            ("Actions.member.1.Type", "fixed-response"),
            ("Actions.member.1.FixedResponseConfig.StatusCode", "404"),
        ],
    );
    assert_eq!(
        taken.error("PriorityInUse"),
        "Priority '10' is currently in use"
    );
    let out_of_range = elb(
        &s,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "50001"),
            ("Conditions.member.1.Field", "source-ip"),
            (
                "Conditions.member.1.SourceIpConfig.Values.member.1",
                "10.0.0.0/8",
            ),
            ("Actions.member.1.Type", "fixed-response"),
            ("Actions.member.1.FixedResponseConfig.StatusCode", "403"),
        ],
    );
    assert!(
        out_of_range
            .error("ValidationError")
            .contains("less than or equal to 50000")
    );
    let bad_cidr = elb(
        &s,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "30"),
            ("Conditions.member.1.Field", "source-ip"),
            (
                "Conditions.member.1.SourceIpConfig.Values.member.1",
                "10.0.0.0",
            ),
            ("Actions.member.1.Type", "fixed-response"),
            ("Actions.member.1.FixedResponseConfig.StatusCode", "403"),
        ],
    );
    bad_cidr.error("ValidationError");
    let redirect = elb(
        &s,
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "30"),
            ("Conditions.member.1.Field", "http-request-method"),
            (
                "Conditions.member.1.HttpRequestMethodConfig.Values.member.1",
                "GET",
            ),
            ("Actions.member.1.Type", "redirect"),
            ("Actions.member.1.RedirectConfig.Protocol", "HTTPS"),
            ("Actions.member.1.RedirectConfig.Port", "443"),
            ("Actions.member.1.RedirectConfig.StatusCode", "HTTP_301"),
        ],
    )
    .ok();
    assert_eq!(redirect.get("Host"), "#{host}");
    assert_eq!(redirect.get("Path"), "/#{path}");
    let swapped = elb(
        &s,
        "SetRulePriorities",
        &[
            ("RulePriorities.member.1.RuleArn", &r10),
            ("RulePriorities.member.1.Priority", "20"),
            ("RulePriorities.member.2.RuleArn", &r20),
            ("RulePriorities.member.2.Priority", "10"),
        ],
    )
    .ok();
    assert_eq!(swapped.all("RuleArn").len(), 2);
    let rules = elb(&s, "DescribeRules", &[("ListenerArn", &listener)]).ok();
    assert_eq!(rules.all("Priority"), ["10", "20", "30", "default"]);
    assert_eq!(rules.all("RuleArn")[0], r20);
    assert_eq!(rules.all("IsDefault"), ["false", "false", "false", "true"]);
    let paged = elb(
        &s,
        "DescribeRules",
        &[("ListenerArn", &listener), ("PageSize", "3")],
    )
    .ok();
    assert_eq!(paged.all("Priority"), ["10", "20", "30"]);
    let rest = elb(
        &s,
        "DescribeRules",
        &[
            ("ListenerArn", &listener),
            ("PageSize", "3"),
            ("Marker", &paged.get("NextMarker")),
        ],
    )
    .ok();
    assert_eq!(rest.all("Priority"), ["default"]);
    let default_rule = rules.all("RuleArn")[3].clone();
    let refused = elb(&s, "DeleteRule", &[("RuleArn", &default_rule)]);
    refused.error("OperationNotPermitted");
    elb(&s, "DeleteRule", &[("RuleArn", &r10)]).ok();
    let gone = elb(&s, "DescribeRules", &[("RuleArns.member.1", &r10)]);
    assert_eq!(gone.error("RuleNotFound"), "One or more rules not found");
}

#[test]
fn target_health_is_unused_until_a_listener_forwards_to_the_group_then_initial() {
    let s = TestServer::start();
    let tg = create_tg(&s, "app", "HTTP", "8080");
    elb(
        &s,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg),
            ("Targets.member.1.Id", "10.0.0.5"),
            ("Targets.member.2.Id", "10.0.0.6"),
            ("Targets.member.2.Port", "9090"),
        ],
    )
    .ok();
    let unused = elb(&s, "DescribeTargetHealth", &[("TargetGroupArn", &tg)]).ok();
    assert_eq!(unused.all("Id"), ["10.0.0.5", "10.0.0.6"]);
    assert_eq!(unused.all("Port"), ["8080", "9090"]);
    assert_eq!(unused.all("State"), ["unused", "unused"]);
    assert_eq!(unused.get("Reason"), "Target.NotInUse");
    assert_eq!(
        unused.get("Description"),
        "Target group is not configured to receive traffic from the load balancer"
    );
    let lb = create_alb(&s, "web").ok().get("LoadBalancerArn");
    create_http_listener(&s, &lb, "80", &tg);
    let initial = elb(&s, "DescribeTargetHealth", &[("TargetGroupArn", &tg)]).ok();
    assert_eq!(initial.all("State"), ["initial", "initial"]);
    // Registration in progress until the health checker's first pass over the group
    // starts, which may already have happened on a busy machine.
    let reason = (initial.get("Reason"), initial.get("Description"));
    assert!(
        [
            (
                "Elb.RegistrationInProgress".to_string(),
                "Target registration is in progress".to_string()
            ),
            (
                "Elb.InitialHealthChecking".to_string(),
                "Initial health checks in progress".to_string()
            ),
        ]
        .contains(&reason),
        "{reason:?}"
    );
    assert_eq!(initial.all("HealthCheckPort"), ["8080", "9090"]);
    let by_lb = elb(&s, "DescribeTargetGroups", &[("LoadBalancerArn", &lb)]).ok();
    assert_eq!(by_lb.get("TargetGroupArn"), tg);
    let described = elb(
        &s,
        "DescribeTargetGroups",
        &[("TargetGroupArns.member.1", &tg)],
    )
    .ok();
    assert_eq!(
        described.all("LoadBalancerArns"),
        [format!("<member>{lb}</member>")]
    );
    let unknown = elb(
        &s,
        "DescribeTargetHealth",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "10.0.0.9")],
    )
    .ok();
    assert_eq!(unknown.get("State"), "unused");
    assert_eq!(unknown.get("Reason"), "Target.NotRegistered");
    elb(
        &s,
        "DeregisterTargets",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "10.0.0.5")],
    )
    .ok();
    let draining = elb(
        &s,
        "DescribeTargetHealth",
        &[("TargetGroupArn", &tg), ("Targets.member.1.Id", "10.0.0.5")],
    )
    .ok();
    assert_eq!(draining.get("State"), "draining");
    assert_eq!(draining.get("Reason"), "Target.DeregistrationInProgress");
    let not_registered = elb(
        &s,
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &tg),
            ("Targets.member.1.Id", "10.0.0.77"),
        ],
    );
    // As on AWS: "If the specified target does not exist, the action returns successfully."
    not_registered.ok();
    let bad_ip = elb(
        &s,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg),
            ("Targets.member.1.Id", "i-0123456789abcdef0"),
        ],
    );
    bad_ip.error("InvalidTarget");
}

#[test]
fn a_target_group_a_listener_forwards_to_cannot_be_deleted() {
    let s = TestServer::start();
    let lb = create_alb(&s, "web").ok().get("LoadBalancerArn");
    let tg = create_tg(&s, "app", "HTTP", "80");
    let listener = create_http_listener(&s, &lb, "80", &tg);
    let in_use = elb(&s, "DeleteTargetGroup", &[("TargetGroupArn", &tg)]);
    assert_eq!(
        in_use.error("ResourceInUse"),
        format!("Target group '{tg}' is currently in use by a listener or a rule")
    );
    // A TCP group does not fit an application load balancer.
    let tcp = create_tg(&s, "tcp", "TCP", "80");
    let misfit = elb(
        &s,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "81"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tcp),
        ],
    );
    misfit.error("InvalidConfigurationRequest");
    let listed = elb(&s, "DescribeListeners", &[("LoadBalancerArn", &lb)]).ok();
    assert_eq!(listed.get("ListenerArn"), listener);
    assert_eq!(listed.get("Port"), "80");
    elb(&s, "DeleteListener", &[("ListenerArn", &listener)]).ok();
    elb(&s, "DeleteTargetGroup", &[("TargetGroupArn", &tg)]).ok();
    let gone = elb(&s, "DescribeTargetGroups", &[("Names.member.1", "app")]);
    gone.error("TargetGroupNotFound");
    let no_listener = elb(
        &s,
        "DescribeListeners",
        &[("ListenerArns.member.1", &listener)],
    );
    assert_eq!(
        no_listener.error("ListenerNotFound"),
        "One or more listeners not found"
    );
}

#[test]
fn https_listeners_present_an_uploaded_iam_server_certificate() {
    let s = TestServer::start();
    let lb = create_alb(&s, "web").ok().get("LoadBalancerArn");
    let tg = create_tg(&s, "app", "HTTP", "80");
    let arn = "arn:aws:iam::000000000000:server-certificate/web";
    let https = |cert: &str| {
        elb(
            &s,
            "CreateListener",
            &[
                ("LoadBalancerArn", &lb),
                ("Protocol", "HTTPS"),
                ("Port", "443"),
                ("Certificates.member.1.CertificateArn", cert),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &tg),
            ],
        )
    };
    assert_eq!(
        https(arn).error("CertificateNotFound"),
        format!("Certificate '{arn}' not found")
    );
    let malformed = iam(
        &s,
        "UploadServerCertificate",
        &[
            ("ServerCertificateName", "web"),
            ("CertificateBody", "nope"),
            ("PrivateKey", KEY),
        ],
    );
    malformed.error("MalformedCertificate");
    let uploaded = iam(
        &s,
        "UploadServerCertificate",
        &[
            ("ServerCertificateName", "web"),
            ("CertificateBody", CERT),
            ("PrivateKey", KEY),
        ],
    )
    .ok();
    assert_eq!(uploaded.get("Arn"), arn);
    assert!(uploaded.get("ServerCertificateId").starts_with("ASCA"));
    assert_eq!(uploaded.get("Expiration"), "2036-12-04T04:16:03Z");
    let got = iam(
        &s,
        "GetServerCertificate",
        &[("ServerCertificateName", "web")],
    )
    .ok();
    assert_eq!(got.get("CertificateBody"), CERT);
    assert!(!got.body.contains("PRIVATE KEY"), "the key is never shown");
    let listed = iam(&s, "ListServerCertificates", &[]).ok();
    assert_eq!(listed.all("ServerCertificateName"), ["web"]);
    let listener = https(arn).ok();
    assert_eq!(listener.get("SslPolicy"), "ELBSecurityPolicy-2016-08");
    assert_eq!(listener.get("CertificateArn"), arn);
    let listener_arn = listener.get("ListenerArn");
    let second = iam(
        &s,
        "UploadServerCertificate",
        &[
            ("ServerCertificateName", "web2"),
            ("Path", "/lb/"),
            ("CertificateBody", CERT),
            ("PrivateKey", KEY),
        ],
    )
    .ok()
    .get("Arn");
    assert_eq!(
        second,
        "arn:aws:iam::000000000000:server-certificate/lb/web2"
    );
    elb(
        &s,
        "AddListenerCertificates",
        &[
            ("ListenerArn", &listener_arn),
            ("Certificates.member.1.CertificateArn", &second),
        ],
    )
    .ok();
    let certificates = elb(
        &s,
        "DescribeListenerCertificates",
        &[("ListenerArn", &listener_arn)],
    )
    .ok();
    assert_eq!(certificates.all("CertificateArn"), [arn, second.as_str()]);
    assert_eq!(certificates.all("IsDefault"), ["true", "false"]);
    let default_removed = elb(
        &s,
        "RemoveListenerCertificates",
        &[
            ("ListenerArn", &listener_arn),
            ("Certificates.member.1.CertificateArn", arn),
        ],
    );
    default_removed.error("OperationNotPermitted");
    let in_use = iam(
        &s,
        "DeleteServerCertificate",
        &[("ServerCertificateName", "web")],
    );
    assert_eq!(in_use.status, 409, "{}", in_use.body);
    assert_eq!(in_use.get("Code"), "DeleteConflict");
    elb(&s, "DeleteListener", &[("ListenerArn", &listener_arn)]).ok();
    iam(
        &s,
        "DeleteServerCertificate",
        &[("ServerCertificateName", "web")],
    )
    .ok();
    let gone = iam(
        &s,
        "GetServerCertificate",
        &[("ServerCertificateName", "web")],
    );
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[test]
fn tags_are_added_described_and_removed_on_every_resource_kind() {
    let s = TestServer::start();
    let n = Net::of(&s);
    let lb = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "web"),
            ("Subnets.member.1", &n.a),
            ("Subnets.member.2", &n.b),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "web"),
        ],
    )
    .ok()
    .get("LoadBalancerArn");
    let tg = create_tg(&s, "app", "HTTP", "80");
    elb(
        &s,
        "AddTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("ResourceArns.member.2", &tg),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "test"),
        ],
    )
    .ok();
    let described = elb(
        &s,
        "DescribeTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("ResourceArns.member.2", &tg),
        ],
    )
    .ok();
    assert_eq!(described.all("ResourceArn"), [lb.clone(), tg.clone()]);
    assert_eq!(described.all("Key"), ["team", "env", "env"]);
    elb(
        &s,
        "RemoveTags",
        &[("ResourceArns.member.1", &lb), ("TagKeys.member.1", "team")],
    )
    .ok();
    let after = elb(&s, "DescribeTags", &[("ResourceArns.member.1", &lb)]).ok();
    assert_eq!(after.all("Key"), ["env"]);
    let dup = elb(
        &s,
        "AddTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.2.Key", "a"),
        ],
    );
    dup.error("DuplicateTagKeys");
}

#[test]
fn load_balancers_are_placed_in_ec2_subnets_and_groups_of_one_vpc() {
    let s = TestServer::start();
    let n = Net::of(&s);
    // An ALB in two zones of the default VPC is in that VPC.
    let lb = create_alb(&s, "web").ok();
    assert_eq!(lb.get("VpcId"), n.vpc);
    assert_eq!(lb.all("ZoneName"), ["us-east-1a", "us-east-1b"]);
    assert!(
        lb.body.contains(&format!(
            "<SecurityGroups><member>{}</member></SecurityGroups>",
            n.sg
        )),
        "{}",
        lb.body
    );
    // The alias names the default subnet (zone a) too.
    let nlb = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "tcp"),
            ("Type", "network"),
            ("Subnets.member.1", "subnet-default"),
        ],
    )
    .ok();
    assert_eq!(nlb.get("SubnetId"), n.a);
    // A subnet EC2 does not know.
    let unknown = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "x"),
            ("Subnets.member.1", &n.a),
            ("Subnets.member.2", "subnet-0123456789abcdef0"),
        ],
    );
    assert_eq!(
        unknown.error("SubnetNotFound"),
        "The subnet ID 'subnet-0123456789abcdef0' is not valid"
    );
    // Two subnets of one zone.
    let vpc_form = "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.1.0.0%2F16";
    let other_vpc = s.json_client().query("ec2", REGION, vpc_form).unwrap();
    let other_vpc = Reply {
        status: other_vpc.status,
        body: String::from_utf8_lossy(&other_vpc.body).into_owned(),
    }
    .ok()
    .get("vpcId");
    let subnet = |cidr: &str, zone: &str| {
        call(
            &s,
            "ec2",
            "2016-11-15",
            "CreateSubnet",
            &[
                ("VpcId", &other_vpc),
                ("CidrBlock", cidr),
                ("AvailabilityZone", zone),
            ],
        )
        .ok()
        .get("subnetId")
    };
    let (x1, x2) = (
        subnet("10.1.1.0/24", "us-east-1a"),
        subnet("10.1.2.0/24", "us-east-1a"),
    );
    let same_zone = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "x"),
            ("Subnets.member.1", &x1),
            ("Subnets.member.2", &x2),
        ],
    );
    assert_eq!(
        same_zone.error("InvalidConfigurationRequest"),
        "A load balancer cannot be attached to multiple subnets in the same Availability Zone"
    );
    // Subnets of two VPCs.
    let two_vpcs = elb(
        &s,
        "CreateLoadBalancer",
        &[
            ("Name", "x"),
            ("Subnets.member.1", &n.a),
            ("Subnets.member.2", &x2),
        ],
    );
    two_vpcs.error("InvalidConfigurationRequest");
    // A group of another VPC, and one that does not exist.
    let other_group = call(
        &s,
        "ec2",
        "2016-11-15",
        "DescribeSecurityGroups",
        &[
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", &other_vpc),
        ],
    )
    .ok()
    .get("groupId");
    for group in [other_group.as_str(), "sg-0123456789abcdef0"] {
        let refused = elb(
            &s,
            "CreateLoadBalancer",
            &[
                ("Name", "x"),
                ("Subnets.member.1", &n.a),
                ("Subnets.member.2", &n.b),
                ("SecurityGroups.member.1", group),
            ],
        );
        assert_eq!(
            refused.error("InvalidSecurityGroup"),
            format!("Invalid security group '{group}'")
        );
    }
    // A target group's VPC must exist.
    let no_vpc = elb(
        &s,
        "CreateTargetGroup",
        &[
            ("Name", "tg"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("VpcId", "vpc-0123456789abcdef0"),
        ],
    );
    assert_eq!(
        no_vpc.error("ValidationError"),
        "The VPC ID 'vpc-0123456789abcdef0' is not found"
    );
}
