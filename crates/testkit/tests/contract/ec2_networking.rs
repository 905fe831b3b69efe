//! EC2's networking API in-process over EC2's flavour of the Query protocol: answer and
//! error shapes, the default VPC, subnets' rules, security group rules and their ids,
//! dependency violations, filters, tags, and the network interfaces of awsvpc tasks.

use berth_testkit::ecs::{self, register_task_definition, run_task};
use berth_testkit::{Endpoint, TestServer, unique};
use serde_json::json;

const VERSION: &str = "Version=2016-11-15";

/// An EC2 call's answer: status and body.
fn ec2(s: &TestServer, form: &str) -> (u16, String) {
    let r = s
        .json_client()
        .query("ec2", berth_testkit::REGION, &format!("{form}&{VERSION}"))
        .unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// A call that must succeed: its body.
#[track_caller]
fn ok(s: &TestServer, form: &str) -> String {
    let (status, body) = ec2(s, form);
    assert_eq!(status, 200, "{form}: {body}");
    body
}

/// A call that must fail: its code and message.
#[track_caller]
fn error(s: &TestServer, form: &str) -> (String, String) {
    let (status, body) = ec2(s, form);
    assert_eq!(status, 400, "{form}: {body}");
    assert!(
        body.contains("<Response><Errors><Error><Code>") && body.contains("<RequestID>"),
        "{body}"
    );
    (
        first(&body, "Code"),
        first(&body, "Message").replace("&apos;", "'"),
    )
}

/// The text of every `<tag>…</tag>` in document order.
fn texts(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(after[..end].to_string());
        rest = &after[end + close.len()..];
    }
    out
}

#[track_caller]
fn first(body: &str, tag: &str) -> String {
    texts(body, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {body}"))
}

#[test]
fn answers_carry_a_request_id_and_no_result_wrapper() {
    let s = TestServer::start();
    let body = ok(&s, "Action=DescribeVpcs");
    assert!(
        body.contains(
            "<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>"
        ),
        "{body}"
    );
    assert!(!body.contains("DescribeVpcsResult"), "{body}");
    assert!(body.contains("<vpcSet><item>"), "{body}");
    let (code, _) = error(&s, "Action=LaunchRocket");
    assert_eq!(code, "InvalidAction");
}

#[test]
fn every_account_has_a_default_vpc_with_a_subnet_per_zone() {
    let s = TestServer::start();
    let body = ok(
        &s,
        "Action=DescribeVpcs&Filter.1.Name=isDefault&Filter.1.Value.1=true",
    );
    let vpcs = texts(&body, "vpcId");
    assert_eq!(vpcs.len(), 1, "{body}");
    let cidr = first(&body, "cidrBlock");
    assert!(cidr.starts_with("10.") && cidr.ends_with(".0/20"), "{cidr}");
    let body = ok(
        &s,
        &format!(
            "Action=DescribeSubnets&Filter.1.Name=vpc-id&Filter.1.Value.1={}&Filter.2.Name=default-for-az&Filter.2.Value.1=true",
            vpcs[0]
        ),
    );
    let mut zones = texts(&body, "availabilityZone");
    zones.sort();
    assert_eq!(zones, ["us-east-1a", "us-east-1b", "us-east-1c"]);
    assert_eq!(
        texts(&body, "availableIpAddressCount"),
        ["1019", "1019", "1019"]
    );
    // `subnet-default` and `sg-default` name the default VPC's.
    let body = ok(&s, "Action=DescribeSubnets&SubnetId.1=subnet-default");
    assert_eq!(first(&body, "availabilityZone"), "us-east-1a");
    assert_eq!(first(&body, "vpcId"), vpcs[0]);
    let body = ok(&s, "Action=DescribeSecurityGroups&GroupId.1=sg-default");
    assert_eq!(first(&body, "groupName"), "default");
    assert_eq!(first(&body, "vpcId"), vpcs[0]);
    // The account attributes name it.
    let body = ok(&s, "Action=DescribeAccountAttributes");
    assert_eq!(
        texts(&body, "attributeValue"),
        ["VPC".to_string(), vpcs[0].clone()]
    );
    let body = ok(&s, "Action=DescribeAvailabilityZones");
    assert_eq!(
        texts(&body, "zoneName"),
        ["us-east-1a", "us-east-1b", "us-east-1c"]
    );
    assert_eq!(first(&body, "zoneId"), "use1-az1");
    // Another region has its own.
    let other = s
        .json_client()
        .query(
            "ec2",
            "eu-west-1",
            &format!("Action=DescribeVpcs&{VERSION}"),
        )
        .unwrap();
    let other = String::from_utf8_lossy(&other.body).into_owned();
    assert_ne!(first(&other, "vpcId"), vpcs[0]);
}

#[test]
fn subnets_must_fit_their_vpc_and_not_overlap() {
    let s = TestServer::start();
    let body = ok(&s, "Action=CreateVpc&CidrBlock=10.0.0.0%2F16");
    let vpc = first(&body, "vpcId");
    assert!(vpc.starts_with("vpc-") && vpc.len() == 21, "{vpc}");
    assert_eq!(first(&body, "isDefault"), "false");
    let (code, message) = error(&s, "Action=CreateVpc&CidrBlock=10.0.0.0%2F8");
    assert_eq!(code, "InvalidVpc.Range");
    assert_eq!(message, "The CIDR '10.0.0.0/8' is invalid.");
    let body = ok(
        &s,
        &format!(
            "Action=CreateSubnet&VpcId={vpc}&CidrBlock=10.0.1.0%2F24&AvailabilityZone=us-east-1b"
        ),
    );
    let subnet = first(&body, "subnetId");
    assert_eq!(first(&body, "availableIpAddressCount"), "251");
    assert_eq!(first(&body, "availabilityZoneId"), "use1-az2");
    let (code, message) = error(
        &s,
        &format!("Action=CreateSubnet&VpcId={vpc}&CidrBlock=10.0.1.0%2F25"),
    );
    assert_eq!(code, "InvalidSubnet.Conflict");
    assert_eq!(
        message,
        "The CIDR '10.0.1.0/25' conflicts with another subnet"
    );
    let (code, message) = error(
        &s,
        &format!("Action=CreateSubnet&VpcId={vpc}&CidrBlock=10.9.0.0%2F24"),
    );
    assert_eq!(code, "InvalidSubnet.Range");
    assert_eq!(message, "The CIDR '10.9.0.0/24' is invalid.");
    let (code, message) = error(
        &s,
        "Action=CreateSubnet&VpcId=vpc-0123456789abcdef0&CidrBlock=10.0.1.0%2F24",
    );
    assert_eq!(code, "InvalidVpcID.NotFound");
    assert_eq!(message, "The vpc ID 'vpc-0123456789abcdef0' does not exist");
    let (code, message) = error(&s, &format!("Action=DeleteVpc&VpcId={vpc}"));
    assert_eq!(code, "DependencyViolation");
    assert_eq!(
        message,
        format!("The vpc '{vpc}' has dependencies and cannot be deleted.")
    );
    ok(&s, &format!("Action=DeleteSubnet&SubnetId={subnet}"));
    ok(&s, &format!("Action=DeleteVpc&VpcId={vpc}"));
    let (code, _) = error(&s, &format!("Action=DescribeVpcs&VpcId.1={vpc}"));
    assert_eq!(code, "InvalidVpcID.NotFound");
}

#[test]
fn a_new_vpc_gets_a_default_group_and_a_main_route_table() {
    let s = TestServer::start();
    let vpc = first(&ok(&s, "Action=CreateVpc&CidrBlock=10.3.0.0%2F16"), "vpcId");
    let body = ok(
        &s,
        &format!("Action=DescribeSecurityGroups&Filter.1.Name=vpc-id&Filter.1.Value.1={vpc}"),
    );
    assert_eq!(texts(&body, "groupName"), ["default"]);
    let body = ok(
        &s,
        &format!(
            "Action=DescribeRouteTables&Filter.1.Name=vpc-id&Filter.1.Value.1={vpc}&Filter.2.Name=association.main&Filter.2.Value.1=true"
        ),
    );
    // One table (its association names it again).
    assert_eq!(texts(&body, "routeTableAssociationId").len(), 1, "{body}");
    assert_eq!(texts(&body, "vpcId"), std::slice::from_ref(&vpc), "{body}");
    assert_eq!(first(&body, "destinationCidrBlock"), "10.3.0.0/16");
    assert_eq!(first(&body, "gatewayId"), "local");
    let (code, _) = error(
        &s,
        &format!(
            "Action=DeleteRouteTable&RouteTableId={}",
            first(&body, "routeTableId")
        ),
    );
    assert_eq!(code, "DependencyViolation");
    let (code, _) = error(&s, "Action=ModifyVpcAttribute&VpcId=vpc-1");
    assert_eq!(code, "InvalidParameterCombination");
    ok(
        &s,
        &format!("Action=ModifyVpcAttribute&VpcId={vpc}&EnableDnsHostnames.Value=true"),
    );
    let body = ok(
        &s,
        &format!("Action=DescribeVpcAttribute&VpcId={vpc}&Attribute=enableDnsHostnames"),
    );
    assert!(
        body.contains("<enableDnsHostnames><value>true</value></enableDnsHostnames>"),
        "{body}"
    );
}

#[test]
fn security_group_rules_get_ids_and_are_refused_twice() {
    let s = TestServer::start();
    let vpc = first(&ok(&s, "Action=CreateVpc&CidrBlock=10.4.0.0%2F16"), "vpcId");
    let body = ok(
        &s,
        &format!(
            "Action=CreateSecurityGroup&GroupName=web&GroupDescription=web+servers&VpcId={vpc}&TagSpecification.1.ResourceType=security-group&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=web"
        ),
    );
    let web = first(&body, "groupId");
    assert!(web.starts_with("sg-"), "{body}");
    let (code, message) = error(
        &s,
        &format!("Action=CreateSecurityGroup&GroupName=web&GroupDescription=again&VpcId={vpc}"),
    );
    assert_eq!(code, "InvalidGroup.Duplicate");
    assert_eq!(
        message,
        format!("The security group 'web' already exists for VPC '{vpc}'")
    );
    let app = first(
        &ok(
            &s,
            &format!("Action=CreateSecurityGroup&GroupName=app&GroupDescription=app&VpcId={vpc}"),
        ),
        "groupId",
    );
    let http = format!(
        "Action=AuthorizeSecurityGroupIngress&GroupId={web}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0&IpPermissions.1.IpRanges.1.Description=http"
    );
    let body = ok(&s, &http);
    assert_eq!(first(&body, "return"), "true");
    let rule = first(&body, "securityGroupRuleId");
    assert!(rule.starts_with("sgr-") && rule.len() == 21, "{rule}");
    assert_eq!(first(&body, "cidrIpv4"), "0.0.0.0/0");
    let (code, message) = error(&s, &http);
    assert_eq!(code, "InvalidPermission.Duplicate");
    assert_eq!(
        message.replace("&quot;", "\""),
        "the specified rule \"peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW\" already exists"
    );
    // From another group, and all traffic out by protocol -1.
    ok(
        &s,
        &format!(
            "Action=AuthorizeSecurityGroupIngress&GroupId={app}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=8080&IpPermissions.1.ToPort=8080&IpPermissions.1.Groups.1.GroupId={web}"
        ),
    );
    let body = ok(
        &s,
        &format!("Action=DescribeSecurityGroups&GroupId.1={app}"),
    );
    assert!(
        body.contains(&format!(
            "<groups><item><userId>000000000000</userId><groupId>{web}</groupId></item></groups>"
        )),
        "{body}"
    );
    // A new group's egress: everything.
    assert!(
        body.contains("<ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups></groups><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges>"),
        "{body}"
    );
    let body = ok(
        &s,
        &format!("Action=DescribeSecurityGroupRules&Filter.1.Name=group-id&Filter.1.Value.1={web}"),
    );
    let ids = texts(&body, "securityGroupRuleId");
    assert_eq!(ids.len(), 2, "{body}");
    assert!(ids.contains(&rule));
    // Referenced by app's rule, web cannot go; the default group never.
    let (code, message) = error(&s, &format!("Action=DeleteSecurityGroup&GroupId={web}"));
    assert_eq!(code, "DependencyViolation");
    assert_eq!(message, format!("resource {web} has a dependent object"));
    let (code, _) = error(&s, "Action=DeleteSecurityGroup&GroupId=sg-default");
    assert_eq!(code, "CannotDelete");
    // Revoked by rule id, then gone for good.
    ok(
        &s,
        &format!("Action=RevokeSecurityGroupIngress&GroupId={web}&SecurityGroupRuleId.1={rule}"),
    );
    let (code, _) = error(
        &s,
        &format!(
            "Action=RevokeSecurityGroupIngress&GroupId={web}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0"
        ),
    );
    assert_eq!(code, "InvalidPermission.NotFound");
    let (code, _) = error(
        &s,
        &format!(
            "Action=AuthorizeSecurityGroupIngress&GroupId={web}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=1&IpPermissions.1.ToPort=2&IpPermissions.1.Groups.1.GroupId=sg-0000000000000000f"
        ),
    );
    assert_eq!(code, "InvalidGroup.NotFound");
    let body = ok(
        &s,
        "Action=DescribeSecurityGroups&Filter.1.Name=tag%3AName&Filter.1.Value.1=w*",
    );
    assert_eq!(texts(&body, "groupId"), [web]);
}

#[test]
fn gateways_and_route_tables_refuse_what_ec2_refuses() {
    let s = TestServer::start();
    let vpc = first(&ok(&s, "Action=CreateVpc&CidrBlock=10.5.0.0%2F16"), "vpcId");
    let subnet = first(
        &ok(
            &s,
            &format!("Action=CreateSubnet&VpcId={vpc}&CidrBlock=10.5.0.0%2F24"),
        ),
        "subnetId",
    );
    let igw = first(&ok(&s, "Action=CreateInternetGateway"), "internetGatewayId");
    assert!(igw.starts_with("igw-"));
    ok(
        &s,
        &format!("Action=AttachInternetGateway&InternetGatewayId={igw}&VpcId={vpc}"),
    );
    let (code, message) = error(
        &s,
        &format!("Action=DeleteInternetGateway&InternetGatewayId={igw}"),
    );
    assert_eq!(code, "DependencyViolation");
    assert_eq!(
        message,
        format!("The internetGateway '{igw}' has dependencies and cannot be deleted.")
    );
    let (code, _) = error(&s, &format!("Action=DeleteVpc&VpcId={vpc}"));
    assert_eq!(code, "DependencyViolation");
    let rtb = first(
        &ok(&s, &format!("Action=CreateRouteTable&VpcId={vpc}")),
        "routeTableId",
    );
    ok(
        &s,
        &format!(
            "Action=CreateRoute&RouteTableId={rtb}&DestinationCidrBlock=0.0.0.0%2F0&GatewayId={igw}"
        ),
    );
    let (code, _) = error(
        &s,
        &format!(
            "Action=CreateRoute&RouteTableId={rtb}&DestinationCidrBlock=0.0.0.0%2F0&GatewayId={igw}"
        ),
    );
    assert_eq!(code, "RouteAlreadyExists");
    let body = ok(
        &s,
        &format!("Action=AssociateRouteTable&RouteTableId={rtb}&SubnetId={subnet}"),
    );
    let association = first(&body, "associationId");
    assert!(association.starts_with("rtbassoc-"));
    let body = ok(
        &s,
        &format!(
            "Action=DescribeRouteTables&Filter.1.Name=association.subnet-id&Filter.1.Value.1={subnet}"
        ),
    );
    assert_eq!(texts(&body, "vpcId"), std::slice::from_ref(&vpc), "{body}");
    assert_eq!(first(&body, "routeTableId"), rtb);
    let (code, _) = error(&s, &format!("Action=DeleteSubnet&SubnetId={subnet}"));
    assert_eq!(code, "DependencyViolation");
    ok(
        &s,
        &format!("Action=DisassociateRouteTable&AssociationId={association}"),
    );
    let (code, _) = error(
        &s,
        &format!("Action=DisassociateRouteTable&AssociationId={association}"),
    );
    assert_eq!(code, "InvalidAssociationID.NotFound");
    ok(&s, &format!("Action=DeleteRouteTable&RouteTableId={rtb}"));
    ok(
        &s,
        &format!("Action=DetachInternetGateway&InternetGatewayId={igw}&VpcId={vpc}"),
    );
    let (code, _) = error(
        &s,
        &format!("Action=DetachInternetGateway&InternetGatewayId={igw}&VpcId={vpc}"),
    );
    assert_eq!(code, "Gateway.NotAttached");
    ok(
        &s,
        &format!("Action=DeleteInternetGateway&InternetGatewayId={igw}"),
    );
    ok(&s, &format!("Action=DeleteSubnet&SubnetId={subnet}"));
    ok(&s, &format!("Action=DeleteVpc&VpcId={vpc}"));
}

#[test]
fn tags_are_described_and_filtered_on_every_resource() {
    let s = TestServer::start();
    let vpc = first(
        &ok(
            &s,
            "Action=CreateVpc&CidrBlock=10.6.0.0%2F16&TagSpecification.1.ResourceType=vpc&TagSpecification.1.Tag.1.Key=team&TagSpecification.1.Tag.1.Value=core",
        ),
        "vpcId",
    );
    let igw = first(&ok(&s, "Action=CreateInternetGateway"), "internetGatewayId");
    ok(
        &s,
        &format!(
            "Action=CreateTags&ResourceId.1={vpc}&ResourceId.2={igw}&Tag.1.Key=Name&Tag.1.Value=main"
        ),
    );
    let body = ok(
        &s,
        &format!("Action=DescribeTags&Filter.1.Name=resource-id&Filter.1.Value.1={vpc}"),
    );
    let mut keys = texts(&body, "key");
    keys.sort();
    assert_eq!(keys, ["Name", "team"]);
    let body = ok(
        &s,
        "Action=DescribeInternetGateways&Filter.1.Name=tag-key&Filter.1.Value.1=Name",
    );
    assert_eq!(
        texts(&body, "internetGatewayId"),
        std::slice::from_ref(&igw)
    );
    ok(
        &s,
        &format!("Action=DeleteTags&ResourceId.1={vpc}&Tag.1.Key=team"),
    );
    let body = ok(
        &s,
        "Action=DescribeVpcs&Filter.1.Name=tag%3Ateam&Filter.1.Value.1=core",
    );
    assert!(texts(&body, "vpcId").is_empty(), "{body}");
    let (code, _) = error(
        &s,
        "Action=CreateTags&ResourceId.1=bogus&Tag.1.Key=a&Tag.1.Value=b",
    );
    assert_eq!(code, "InvalidID");
    let (code, message) = error(
        &s,
        "Action=DescribeVpcs&Filter.1.Name=colour&Filter.1.Value.1=red",
    );
    assert_eq!(code, "InvalidParameterValue");
    assert_eq!(message, "The filter 'colour' is invalid");
}

#[test]
fn an_awsvpc_tasks_interface_is_described_with_its_address_and_groups() {
    let s = TestServer::start();
    let (cluster, _) =
        ecs::cluster_with_instances(&s, "eni-", &ecs::instance(1024, 2048), &["us-east-1a"]);
    let family = unique("vpc-");
    register_task_definition(
        &s,
        json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["EC2"],
               "containerDefinitions": [{"name": "a", "image": "a:1", "memory": 64}]}),
    );
    let web = first(
        &ok(
            &s,
            "Action=CreateSecurityGroup&GroupName=tasks&GroupDescription=tasks",
        ),
        "groupId",
    );
    let run = run_task(
        &s,
        &cluster,
        &family,
        json!({"networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-default"], "securityGroups": [web]}}}),
    );
    let task = &run["tasks"][0];
    let details = task["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .clone();
    let detail = |name: &str| {
        details
            .iter()
            .find(|d| d["name"] == name)
            .and_then(|d| d["value"].as_str())
            .unwrap()
            .to_string()
    };
    let eni = detail("networkInterfaceId");
    let ip = detail("privateIPv4Address");
    let body = ok(
        &s,
        &format!(
            "Action=DescribeNetworkInterfaces&Filter.1.Name=addresses.private-ip-address&Filter.1.Value.1={ip}"
        ),
    );
    assert_eq!(
        texts(&body, "networkInterfaceId"),
        std::slice::from_ref(&eni),
        "{body}"
    );
    assert_eq!(first(&body, "privateIpAddress"), ip);
    assert_eq!(first(&body, "status"), "in-use");
    assert_eq!(first(&body, "interfaceType"), "interface");
    assert_eq!(first(&body, "groupId"), web);
    assert_eq!(first(&body, "groupName"), "tasks");
    assert_eq!(first(&body, "availabilityZone"), "us-east-1a");
    assert!(
        first(&body, "description").starts_with("arn:aws:ecs:us-east-1:000000000000:attachment/"),
        "{body}"
    );
    let default_subnet = first(
        &ok(&s, "Action=DescribeSubnets&SubnetId.1=subnet-default"),
        "subnetId",
    );
    assert_eq!(first(&body, "subnetId"), default_subnet);
    // By the default subnet's alias and real id, by group; a group that has it cannot go.
    for filter in [
        "Filter.1.Name=subnet-id&Filter.1.Value.1=subnet-default".to_string(),
        format!("Filter.1.Name=subnet-id&Filter.1.Value.1={default_subnet}"),
        format!("Filter.1.Name=group-id&Filter.1.Value.1={web}"),
        format!("NetworkInterfaceId.1={eni}"),
    ] {
        let body = ok(&s, &format!("Action=DescribeNetworkInterfaces&{filter}"));
        assert_eq!(
            texts(&body, "networkInterfaceId"),
            std::slice::from_ref(&eni),
            "{filter}"
        );
    }
    let body = ok(
        &s,
        "Action=DescribeNetworkInterfaces&Filter.1.Name=group-id&Filter.1.Value.1=sg-0000000000000000f",
    );
    assert!(texts(&body, "networkInterfaceId").is_empty(), "{body}");
    let (code, _) = error(&s, &format!("Action=DeleteSecurityGroup&GroupId={web}"));
    assert_eq!(code, "DependencyViolation");
    let (code, _) = error(
        &s,
        "Action=DescribeNetworkInterfaces&NetworkInterfaceId.1=eni-0000000000000000f",
    );
    assert_eq!(code, "InvalidNetworkInterfaceID.NotFound");
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
fn a_user_may_describe_but_not_create_as_its_policy_says() {
    let s = TestServer::start();
    let iam = |form: &str| {
        let r = s
            .json_client()
            .query("iam", "us-east-1", &format!("{form}&Version=2010-05-08"))
            .unwrap();
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 200, "{body}");
        body
    };
    iam("Action=CreateUser&UserName=viewer");
    let key = iam("Action=CreateAccessKey&UserName=viewer");
    let policy = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22ec2%3ADescribe*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D";
    iam(&format!(
        "Action=PutUserPolicy&UserName=viewer&PolicyName=p&PolicyDocument={policy}"
    ));
    let user = As {
        port: s.port(),
        key: first(&key, "AccessKeyId"),
        secret: first(&key, "SecretAccessKey"),
    };
    let call = |form: &str| {
        let r = user
            .json_client()
            .query("ec2", "us-east-1", &format!("{form}&{VERSION}"))
            .unwrap();
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    };
    let (status, body) = call("Action=DescribeVpcs");
    assert_eq!(status, 200, "{body}");
    let (status, body) = call("Action=CreateVpc&CidrBlock=10.7.0.0%2F16");
    assert_eq!(status, 403, "{body}");
    assert_eq!(first(&body, "Code"), "UnauthorizedOperation");
    assert!(
        first(&body, "Message").starts_with("You are not authorized to perform this operation."),
        "{body}"
    );
}
