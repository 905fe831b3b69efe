//! ELBv2's control plane through the real `aws elbv2` and `aws iam` CLIs, the seed's flow as
//! records: an application load balancer, target groups, an HTTP listener, two path rules
//! with weighted forwards, targets registered and described, and an HTTPS listener
//! presenting a certificate made with `openssl req -x509` and uploaded with `aws iam
//! upload-server-certificate`.

use std::process::Command;

use berth_e2e::{BerthServer, assert_aws_error, ok_json, unique};
use serde_json::Value;

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {v}"))
        .to_string()
}

#[test]
fn an_alb_with_weighted_path_rules_and_an_https_listener_is_built_with_the_aws_cli() {
    let s = BerthServer::start();
    let net = berth_e2e::network::DefaultNetwork::of(&s);
    let elb = |args: &[&str]| {
        let mut all = vec!["elbv2"];
        all.extend_from_slice(args);
        ok_json(&s.aws(&all))
    };
    let name = unique("web");
    let lb = elb(&[
        "create-load-balancer",
        "--name",
        &name,
        "--subnets",
        &net.subnets[0],
        &net.subnets[1],
        "--security-groups",
        &net.security_group,
    ]);
    let lb_arn = text(&lb, "/LoadBalancers/0/LoadBalancerArn");
    let dns = text(&lb, "/LoadBalancers/0/DNSName");
    let address: std::net::Ipv4Addr = dns.parse().unwrap_or_else(|_| panic!("{dns}"));
    assert_eq!(address.octets()[0], 127, "{dns}");
    // The CLI's waiter reads the state AWS's way.
    let waited = s.aws(&[
        "elbv2",
        "wait",
        "load-balancer-available",
        "--load-balancer-arns",
        &lb_arn,
    ]);
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );

    let tg = |name: &str| {
        let created = elb(&[
            "create-target-group",
            "--name",
            name,
            "--protocol",
            "HTTP",
            "--port",
            "8080",
            "--vpc-id",
            &net.vpc,
            "--target-type",
            "ip",
            "--health-check-path",
            "/health",
        ]);
        assert_eq!(text(&created, "/TargetGroups/0/HealthCheckPath"), "/health");
        text(&created, "/TargetGroups/0/TargetGroupArn")
    };
    let (blue, green) = (tg(&unique("blue")), tg(&unique("green")));
    let listener = elb(&[
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={blue}"),
    ]);
    let listener_arn = text(&listener, "/Listeners/0/ListenerArn");
    let weighted = |blue_weight: u32| {
        format!(
            r#"[{{"Type":"forward","ForwardConfig":{{"TargetGroups":[{{"TargetGroupArn":"{blue}","Weight":{blue_weight}}},{{"TargetGroupArn":"{green}","Weight":{}}}],"TargetGroupStickinessConfig":{{"Enabled":true,"DurationSeconds":60}}}}}}]"#,
            100 - blue_weight
        )
    };
    for (priority, path, blue_weight) in [("10", "/api/*", 90), ("20", "/static/*", 50)] {
        let rule = elb(&[
            "create-rule",
            "--listener-arn",
            &listener_arn,
            "--priority",
            priority,
            "--conditions",
            &format!(r#"[{{"Field":"path-pattern","PathPatternConfig":{{"Values":["{path}"]}}}}]"#),
            "--actions",
            &weighted(blue_weight),
        ]);
        let groups = &rule["Rules"][0]["Actions"][0]["ForwardConfig"]["TargetGroups"];
        assert_eq!(groups[0]["Weight"], blue_weight, "{rule}");
        assert_eq!(groups[1]["Weight"], 100 - blue_weight, "{rule}");
    }
    let rules = elb(&["describe-rules", "--listener-arn", &listener_arn]);
    let priorities: Vec<&str> = rules["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Priority"].as_str().unwrap())
        .collect();
    assert_eq!(priorities, ["10", "20", "default"]);
    assert_eq!(rules["Rules"][0]["Conditions"][0]["Values"][0], "/api/*");
    let taken = s.aws(&[
        "elbv2",
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "10",
        "--conditions",
        "Field=path-pattern,Values=/other/*",
        "--actions",
        &format!("Type=forward,TargetGroupArn={green}"),
    ]);
    assert_aws_error(&taken, "PriorityInUse");

    elb(&[
        "register-targets",
        "--target-group-arn",
        &blue,
        "--targets",
        "Id=10.0.0.5",
        "Id=10.0.0.6,Port=9090",
    ]);
    let health = elb(&["describe-target-health", "--target-group-arn", &blue]);
    let described = health["TargetHealthDescriptions"].as_array().unwrap();
    assert_eq!(described.len(), 2, "{health}");
    for d in described {
        // Registered, then checked by the data plane (these addresses answer nothing).
        assert_eq!(d["TargetHealth"]["State"], "initial", "{health}");
        let reason = d["TargetHealth"]["Reason"].as_str().unwrap_or_default();
        assert!(
            ["Elb.RegistrationInProgress", "Elb.InitialHealthChecking"].contains(&reason),
            "{health}"
        );
    }
    assert_eq!(described[1]["Target"]["Port"], 9090);
    let in_use = s.aws(&["elbv2", "delete-target-group", "--target-group-arn", &green]);
    assert_aws_error(&in_use, "ResourceInUse");

    // An HTTPS listener with a certificate made by openssl and uploaded to IAM.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=web.berth.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let cert_name = unique("web-cert");
    let uploaded = ok_json(&s.aws(&[
        "iam",
        "upload-server-certificate",
        "--server-certificate-name",
        &cert_name,
        "--certificate-body",
        &format!("file://{}", cert.display()),
        "--private-key",
        &format!("file://{}", key.display()),
    ]));
    let cert_arn = text(&uploaded, "/ServerCertificateMetadata/Arn");
    assert_eq!(
        cert_arn,
        format!("arn:aws:iam::000000000000:server-certificate/{cert_name}")
    );
    assert!(
        uploaded["ServerCertificateMetadata"]["Expiration"].is_string(),
        "{uploaded}"
    );
    let got = ok_json(&s.aws(&[
        "iam",
        "get-server-certificate",
        "--server-certificate-name",
        &cert_name,
    ]));
    assert!(
        !got.to_string().contains("PRIVATE KEY"),
        "the key is never shown"
    );
    let https = elb(&[
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTPS",
        "--port",
        "443",
        "--certificates",
        &format!("CertificateArn={cert_arn}"),
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={green}"),
    ]);
    assert_eq!(
        text(&https, "/Listeners/0/Certificates/0/CertificateArn"),
        cert_arn
    );
    assert_eq!(
        text(&https, "/Listeners/0/SslPolicy"),
        "ELBSecurityPolicy-2016-08"
    );
    let listeners = elb(&["describe-listeners", "--load-balancer-arn", &lb_arn]);
    assert_eq!(listeners["Listeners"].as_array().unwrap().len(), 2);

    // Deleting the load balancer takes its listeners; the groups are then free.
    elb(&["delete-load-balancer", "--load-balancer-arn", &lb_arn]);
    elb(&["delete-target-group", "--target-group-arn", &green]);
    let gone = s.aws(&["elbv2", "describe-load-balancers", "--names", &name]);
    assert_aws_error(&gone, "LoadBalancerNotFound");
}
