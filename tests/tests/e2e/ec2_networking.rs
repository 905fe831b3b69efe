//! EC2's networking API driven by the real `aws ec2` CLI (which must parse every answer):
//! a user builds a VPC, two subnets in two zones, a security group with rules, an internet
//! gateway and a route table, tags them, reads them back with filters, and tears them
//! down; the default VPC shows; an awsvpc task's interface shows in
//! describe-network-interfaces.

use berth_e2e::docker_agent::{Agent, cluster_with_image, wait_connected, wait_statuses};
use berth_e2e::{BerthServer, assert_aws_error, ok_json, unique};
use serde_json::{Value, json};

fn ec2(s: &BerthServer, args: &[&str]) -> Value {
    let mut all = vec!["ec2"];
    all.extend_from_slice(args);
    let out = s.aws(&all);
    if out.stdout.is_empty() && out.status.success() {
        return Value::Null;
    }
    ok_json(&out)
}

fn ec2_fails(s: &BerthServer, args: &[&str], code: &str) {
    let mut all = vec!["ec2"];
    all.extend_from_slice(args);
    assert_aws_error(&s.aws(&all), code);
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

#[test]
fn a_user_builds_a_vpc_reads_it_back_by_filters_and_tears_it_down() {
    let s = BerthServer::start();

    // The default VPC is there from the start.
    let default = ec2(
        &s,
        &["describe-vpcs", "--filters", "Name=isDefault,Values=true"],
    );
    assert_eq!(default["Vpcs"].as_array().unwrap().len(), 1, "{default:#}");
    assert_eq!(default["Vpcs"][0]["IsDefault"], true);
    let zones = ec2(&s, &["describe-availability-zones"]);
    assert_eq!(zones["AvailabilityZones"].as_array().unwrap().len(), 3);
    let attributes = ec2(&s, &["describe-account-attributes"]);
    assert_eq!(
        attributes["AccountAttributes"][1]["AttributeValues"][0]["AttributeValue"],
        default["Vpcs"][0]["VpcId"]
    );

    let name = unique("net-");
    let vpc = ec2(
        &s,
        &[
            "create-vpc",
            "--cidr-block",
            "10.20.0.0/16",
            "--tag-specifications",
            &format!("ResourceType=vpc,Tags=[{{Key=Name,Value={name}}}]"),
        ],
    );
    let vpc_id = text(&vpc["Vpc"]["VpcId"]);
    assert_eq!(vpc["Vpc"]["CidrBlock"], "10.20.0.0/16");
    ec2(
        &s,
        &[
            "modify-vpc-attribute",
            "--vpc-id",
            &vpc_id,
            "--enable-dns-hostnames",
            "{\"Value\":true}",
        ],
    );
    let dns = ec2(
        &s,
        &[
            "describe-vpc-attribute",
            "--vpc-id",
            &vpc_id,
            "--attribute",
            "enableDnsHostnames",
        ],
    );
    assert_eq!(dns["EnableDnsHostnames"]["Value"], true);

    let mut subnets = Vec::new();
    for (cidr, zone) in [
        ("10.20.1.0/24", "us-east-1a"),
        ("10.20.2.0/24", "us-east-1b"),
    ] {
        let subnet = ec2(
            &s,
            &[
                "create-subnet",
                "--vpc-id",
                &vpc_id,
                "--cidr-block",
                cidr,
                "--availability-zone",
                zone,
            ],
        );
        assert_eq!(subnet["Subnet"]["AvailabilityZone"], zone);
        assert_eq!(subnet["Subnet"]["AvailableIpAddressCount"], 251);
        subnets.push(text(&subnet["Subnet"]["SubnetId"]));
    }
    ec2_fails(
        &s,
        &[
            "create-subnet",
            "--vpc-id",
            &vpc_id,
            "--cidr-block",
            "10.20.1.0/25",
        ],
        "InvalidSubnet.Conflict",
    );

    let group = ec2(
        &s,
        &[
            "create-security-group",
            "--group-name",
            &name,
            "--description",
            "web",
            "--vpc-id",
            &vpc_id,
        ],
    );
    let group_id = text(&group["GroupId"]);
    let rules = ec2(
        &s,
        &[
            "authorize-security-group-ingress",
            "--group-id",
            &group_id,
            "--ip-permissions",
            "IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=0.0.0.0/0,Description=https}]",
        ],
    );
    assert_eq!(rules["Return"], true);
    let rule_id = text(&rules["SecurityGroupRules"][0]["SecurityGroupRuleId"]);
    assert!(rule_id.starts_with("sgr-"));
    ec2_fails(
        &s,
        &[
            "authorize-security-group-ingress",
            "--group-id",
            &group_id,
            "--protocol",
            "tcp",
            "--port",
            "443",
            "--cidr",
            "0.0.0.0/0",
        ],
        "InvalidPermission.Duplicate",
    );
    let described = ec2(
        &s,
        &[
            "describe-security-group-rules",
            "--filters",
            &format!("Name=group-id,Values={group_id}"),
        ],
    );
    let ids: Vec<String> = described["SecurityGroupRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| text(&r["SecurityGroupRuleId"]))
        .collect();
    assert!(ids.contains(&rule_id), "{described:#}");

    let igw = ec2(&s, &["create-internet-gateway"]);
    let igw_id = text(&igw["InternetGateway"]["InternetGatewayId"]);
    ec2(
        &s,
        &[
            "attach-internet-gateway",
            "--internet-gateway-id",
            &igw_id,
            "--vpc-id",
            &vpc_id,
        ],
    );
    let table = ec2(&s, &["create-route-table", "--vpc-id", &vpc_id]);
    let table_id = text(&table["RouteTable"]["RouteTableId"]);
    ec2(
        &s,
        &[
            "create-route",
            "--route-table-id",
            &table_id,
            "--destination-cidr-block",
            "0.0.0.0/0",
            "--gateway-id",
            &igw_id,
        ],
    );
    let association = ec2(
        &s,
        &[
            "associate-route-table",
            "--route-table-id",
            &table_id,
            "--subnet-id",
            &subnets[0],
        ],
    );
    let association_id = text(&association["AssociationId"]);

    ec2(
        &s,
        &[
            "create-tags",
            "--resources",
            &subnets[0],
            &subnets[1],
            &group_id,
            &igw_id,
            &table_id,
            "--tags",
            &format!("Key=Name,Value={name}"),
        ],
    );
    // Read back by filters.
    let by_name = ec2(
        &s,
        &[
            "describe-vpcs",
            "--filters",
            &format!("Name=tag:Name,Values={name}"),
        ],
    );
    assert_eq!(by_name["Vpcs"][0]["VpcId"], vpc_id.as_str());
    let in_vpc = ec2(
        &s,
        &[
            "describe-subnets",
            "--filters",
            &format!("Name=vpc-id,Values={vpc_id}"),
        ],
    );
    assert_eq!(in_vpc["Subnets"].as_array().unwrap().len(), 2);
    let in_b = ec2(
        &s,
        &[
            "describe-subnets",
            "--filters",
            &format!("Name=vpc-id,Values={vpc_id}"),
            "Name=availability-zone,Values=us-east-1b",
        ],
    );
    assert_eq!(in_b["Subnets"][0]["SubnetId"], subnets[1].as_str());
    let by_group_name = ec2(
        &s,
        &[
            "describe-security-groups",
            "--filters",
            &format!("Name=group-name,Values={name}"),
        ],
    );
    let permissions = &by_group_name["SecurityGroups"][0]["IpPermissions"];
    assert_eq!(permissions[0]["FromPort"], 443);
    assert_eq!(permissions[0]["IpRanges"][0]["Description"], "https");
    let gateways = ec2(
        &s,
        &[
            "describe-internet-gateways",
            "--filters",
            &format!("Name=attachment.vpc-id,Values={vpc_id}"),
        ],
    );
    assert_eq!(
        gateways["InternetGateways"][0]["InternetGatewayId"],
        igw_id.as_str()
    );
    let tables = ec2(
        &s,
        &[
            "describe-route-tables",
            "--filters",
            &format!("Name=association.subnet-id,Values={}", subnets[0]),
        ],
    );
    assert_eq!(tables["RouteTables"][0]["RouteTableId"], table_id.as_str());
    assert_eq!(
        tables["RouteTables"][0]["Routes"][1]["GatewayId"],
        igw_id.as_str()
    );
    let tags = ec2(
        &s,
        &[
            "describe-tags",
            "--filters",
            &format!("Name=value,Values={name}"),
        ],
    );
    assert_eq!(tags["Tags"].as_array().unwrap().len(), 6, "{tags:#}");

    // Torn down in the order EC2 asks for.
    ec2_fails(
        &s,
        &["delete-vpc", "--vpc-id", &vpc_id],
        "DependencyViolation",
    );
    ec2(
        &s,
        &[
            "disassociate-route-table",
            "--association-id",
            &association_id,
        ],
    );
    ec2(&s, &["delete-route-table", "--route-table-id", &table_id]);
    ec2(
        &s,
        &[
            "detach-internet-gateway",
            "--internet-gateway-id",
            &igw_id,
            "--vpc-id",
            &vpc_id,
        ],
    );
    ec2(
        &s,
        &["delete-internet-gateway", "--internet-gateway-id", &igw_id],
    );
    ec2(&s, &["delete-security-group", "--group-id", &group_id]);
    for subnet in &subnets {
        ec2(&s, &["delete-subnet", "--subnet-id", subnet]);
    }
    ec2(&s, &["delete-vpc", "--vpc-id", &vpc_id]);
    ec2_fails(
        &s,
        &["describe-vpcs", "--vpc-ids", &vpc_id],
        "InvalidVpcID.NotFound",
    );
}

#[test]
fn an_awsvpc_tasks_interface_shows_in_describe_network_interfaces() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "eni-");
    let _agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "600"]);
    wait_connected(&s, &cluster);
    let family = unique("eni-");
    let containers = json!([{
        "name": "a", "image": image, "memory": 64, "essential": true, "stopTimeout": 2,
        "entryPoint": ["sh", "-c"], "command": ["exec sleep 600"]
    }]);
    ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        &family,
        "--network-mode",
        "awsvpc",
        "--container-definitions",
        &containers.to_string(),
    ]));
    let run = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-default],securityGroups=[sg-default]}",
    ]));
    let arn = text(&run["tasks"][0]["taskArn"]);
    let tasks = wait_statuses(&s, &cluster, std::slice::from_ref(&arn), "RUNNING");
    let details = tasks[0]["attachments"][0]["details"].as_array().unwrap();
    let detail = |name: &str| {
        text(
            &details
                .iter()
                .find(|d| d["name"] == name)
                .unwrap_or_else(|| panic!("no {name}"))["value"],
        )
    };
    let ip = detail("privateIPv4Address");
    let found = ec2(
        &s,
        &[
            "describe-network-interfaces",
            "--filters",
            &format!("Name=addresses.private-ip-address,Values={ip}"),
        ],
    );
    let interfaces = found["NetworkInterfaces"].as_array().unwrap();
    assert_eq!(interfaces.len(), 1, "{found:#}");
    let eni = &interfaces[0];
    assert_eq!(
        eni["NetworkInterfaceId"],
        detail("networkInterfaceId").as_str()
    );
    assert_eq!(eni["PrivateIpAddress"], ip.as_str());
    assert_eq!(eni["Status"], "in-use");
    assert_eq!(eni["InterfaceType"], "interface");
    assert_eq!(eni["Groups"][0]["GroupName"], "default");
    let default_vpc = ec2(
        &s,
        &["describe-vpcs", "--filters", "Name=isDefault,Values=true"],
    );
    assert_eq!(eni["VpcId"], default_vpc["Vpcs"][0]["VpcId"]);
    ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", &arn]));
    wait_statuses(&s, &cluster, std::slice::from_ref(&arn), "STOPPED");
    let after = ec2(
        &s,
        &[
            "describe-network-interfaces",
            "--filters",
            &format!("Name=addresses.private-ip-address,Values={ip}"),
        ],
    );
    assert_eq!(after["NetworkInterfaces"], json!([]));

    // A VPC of the user's own: the task takes its address from the subnet's block and its
    // zone from the subnet. The block is drawn at random from 10.64.0.0/10 (clear of the
    // default VPCs' 10.192.0.0/10) so parallel tests' installations do not share one.
    let draw = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let (b, c) = (64 + (draw >> 8) % 64, draw % 256);
    let vpc = ec2(
        &s,
        &["create-vpc", "--cidr-block", &format!("10.{b}.0.0/16")],
    );
    let block = format!("10.{b}.{c}.0/24");
    let subnet = ec2(
        &s,
        &[
            "create-subnet",
            "--vpc-id",
            &text(&vpc["Vpc"]["VpcId"]),
            "--cidr-block",
            &block,
            "--availability-zone",
            "us-east-1c",
        ],
    );
    let subnet_id = text(&subnet["Subnet"]["SubnetId"]);
    let group = ec2(
        &s,
        &[
            "describe-security-groups",
            "--filters",
            &format!("Name=vpc-id,Values={}", text(&vpc["Vpc"]["VpcId"])),
        ],
    );
    let group_id = text(&group["SecurityGroups"][0]["GroupId"]);
    let run = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
        "--network-configuration",
        &format!("awsvpcConfiguration={{subnets=[{subnet_id}],securityGroups=[{group_id}]}}"),
    ]));
    let arn = text(&run["tasks"][0]["taskArn"]);
    let task = &wait_statuses(&s, &cluster, std::slice::from_ref(&arn), "RUNNING")[0];
    assert_eq!(task["availabilityZone"], "us-east-1c", "{task:#}");
    let details = task["attachments"][0]["details"].as_array().unwrap();
    let detail = |name: &str| text(&details.iter().find(|d| d["name"] == name).unwrap()["value"]);
    assert_eq!(detail("subnetId"), subnet_id);
    let ip = detail("privateIPv4Address");
    assert!(berth_e2e::network::in_block(&ip, &block), "{ip} in {block}");
    // AWS keeps a subnet's first four addresses: the first task gets the fifth.
    assert_eq!(ip, format!("10.{b}.{c}.4"));
    let shown = ec2(
        &s,
        &[
            "describe-network-interfaces",
            "--filters",
            &format!("Name=subnet-id,Values={subnet_id}"),
        ],
    );
    assert_eq!(
        shown["NetworkInterfaces"][0]["PrivateIpAddress"],
        ip.as_str()
    );
    assert_eq!(
        shown["NetworkInterfaces"][0]["AvailabilityZone"],
        "us-east-1c"
    );
    ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", &arn]));
    wait_statuses(&s, &cluster, std::slice::from_ref(&arn), "STOPPED");
}
