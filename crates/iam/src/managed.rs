//! AWS managed policies that ECS and ECR users attach, by their real ARNs and default
//! versions' documents, as AWS's managed policy reference and the ECS developer guide show
//! them. Read-only: every account sees the same ones. More join as the services that use
//! them arrive. Policies under `/aws-service-role/` belong to service-linked roles
//! (`service_linked.rs`) and cannot be attached to users, groups or roles.
//!
//! Sources: the AWS Managed Policy Reference's pages for each policy (its "Policy version"
//! and "JSON policy document"). Where the reference has moved on since the copy read here,
//! the version kept is named in its entry.

pub(crate) struct Catalogued {
    pub(crate) name: &'static str,
    pub(crate) path: &'static str,
    pub(crate) version: &'static str,
    /// Creation and last edit, seconds since the epoch (the reference's "Creation time" and
    /// "Edited time").
    pub(crate) created: f64,
    pub(crate) edited: f64,
    pub(crate) description: &'static str,
    pub(crate) document: &'static str,
}

pub(crate) const CATALOGUE: &[Catalogued] = &[
    Catalogued {
        name: "AmazonEC2ContainerRegistryReadOnly",
        path: "/",
        version: "v3",
        created: 1_450_717_440.0, // 2015-12-21T17:04Z
        edited: 1_576_011_360.0,  // 2019-12-10T20:56Z
        description: "Provides read-only access to Amazon EC2 Container Registry repositories.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:GetRepositoryPolicy","ecr:DescribeRepositories","ecr:ListImages","ecr:DescribeImages","ecr:BatchGetImage","ecr:GetLifecyclePolicy","ecr:GetLifecyclePolicyPreview","ecr:ListTagsForResource","ecr:DescribeImageScanFindings"],"Resource":"*"}]}"#,
    },
    Catalogued {
        name: "AmazonECSTaskExecutionRolePolicy",
        path: "/service-role/",
        version: "v1",
        // Task execution roles came with ECS agent 1.16.0 (November 2017); the exact times
        // are not recorded here.
        created: 1_510_790_400.0, // 2017-11-16
        edited: 1_510_790_400.0,
        description: "Provides access to other AWS service resources that are required to run Amazon ECS tasks",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    },
    Catalogued {
        name: "AmazonEC2ContainerServiceEventsRole",
        path: "/service-role/",
        version: "v3",
        created: 1_496_163_060.0, // 2017-05-30T16:51Z
        edited: 1_678_141_500.0,  // 2023-03-06T22:25Z
        description: "Policy to enable CloudWatch Events for EC2 Container Service",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:RunTask"],"Resource":["*"]},{"Effect":"Allow","Action":"iam:PassRole","Resource":["*"],"Condition":{"StringLike":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}},{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*","Condition":{"StringEquals":{"ecs:CreateAction":["RunTask"]}}}]}"#,
    },
    Catalogued {
        name: "AmazonEC2ContainerServiceAutoscaleRole",
        path: "/service-role/",
        version: "v2",
        created: 1_463_095_500.0, // 2016-05-12T23:25Z
        edited: 1_517_858_100.0,  // 2018-02-05T19:15Z
        description: "Policy to enable Task Autoscaling for Amazon EC2 Container Service",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:DescribeServices","ecs:UpdateService"],"Resource":["*"]},{"Effect":"Allow","Action":["cloudwatch:DescribeAlarms","cloudwatch:PutMetricAlarm"],"Resource":["*"]}]}"#,
    },
    Catalogued {
        // The reference's v21 (edited 2024-08-13T19:39Z), read in full; the reference now
        // shows a v22 (edited 2026-09-02T14:47Z) whose document was not available here.
        name: "AmazonECS_FullAccess",
        path: "/",
        version: "v21",
        created: 1_510_090_560.0, // 2017-11-07T21:36Z
        edited: 1_723_577_940.0,  // 2024-08-13T19:39Z
        description: "Provides administrative access to Amazon ECS resources and enables ECS features through access to other AWS service resources, including VPCs, Auto Scaling groups, and CloudFormation stacks.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"ECSIntegrationsManagementPolicy","Effect":"Allow","Action":["application-autoscaling:DeleteScalingPolicy","application-autoscaling:DeregisterScalableTarget","application-autoscaling:DescribeScalableTargets","application-autoscaling:DescribeScalingActivities","application-autoscaling:DescribeScalingPolicies","application-autoscaling:PutScalingPolicy","application-autoscaling:RegisterScalableTarget","appmesh:DescribeVirtualGateway","appmesh:DescribeVirtualNode","appmesh:ListMeshes","appmesh:ListVirtualGateways","appmesh:ListVirtualNodes","autoscaling:CreateAutoScalingGroup","autoscaling:CreateLaunchConfiguration","autoscaling:DeleteAutoScalingGroup","autoscaling:DeleteLaunchConfiguration","autoscaling:Describe*","autoscaling:UpdateAutoScalingGroup","cloudformation:CreateStack","cloudformation:DeleteStack","cloudformation:DescribeStack*","cloudformation:UpdateStack","cloudwatch:DeleteAlarms","cloudwatch:DescribeAlarms","cloudwatch:GetMetricStatistics","cloudwatch:PutMetricAlarm","codedeploy:BatchGetApplicationRevisions","codedeploy:BatchGetApplications","codedeploy:BatchGetDeploymentGroups","codedeploy:BatchGetDeployments","codedeploy:ContinueDeployment","codedeploy:CreateApplication","codedeploy:CreateDeployment","codedeploy:CreateDeploymentGroup","codedeploy:GetApplication","codedeploy:GetApplicationRevision","codedeploy:GetDeployment","codedeploy:GetDeploymentConfig","codedeploy:GetDeploymentGroup","codedeploy:GetDeploymentTarget","codedeploy:ListApplicationRevisions","codedeploy:ListApplications","codedeploy:ListDeploymentConfigs","codedeploy:ListDeploymentGroups","codedeploy:ListDeployments","codedeploy:ListDeploymentTargets","codedeploy:RegisterApplicationRevision","codedeploy:StopDeployment","ec2:AssociateRouteTable","ec2:AttachInternetGateway","ec2:AuthorizeSecurityGroupIngress","ec2:CancelSpotFleetRequests","ec2:CreateInternetGateway","ec2:CreateLaunchTemplate","ec2:CreateRoute","ec2:CreateRouteTable","ec2:CreateSecurityGroup","ec2:CreateSubnet","ec2:CreateVpc","ec2:DeleteLaunchTemplate","ec2:DeleteSubnet","ec2:DeleteVpc","ec2:Describe*","ec2:DetachInternetGateway","ec2:DisassociateRouteTable","ec2:ModifySubnetAttribute","ec2:ModifyVpcAttribute","ec2:RequestSpotFleet","ec2:RunInstances","ecs:*","elasticfilesystem:DescribeAccessPoints","elasticfilesystem:DescribeFileSystems","elasticloadbalancing:CreateListener","elasticloadbalancing:CreateLoadBalancer","elasticloadbalancing:CreateRule","elasticloadbalancing:CreateTargetGroup","elasticloadbalancing:DeleteListener","elasticloadbalancing:DeleteLoadBalancer","elasticloadbalancing:DeleteRule","elasticloadbalancing:DeleteTargetGroup","elasticloadbalancing:DescribeListeners","elasticloadbalancing:DescribeLoadBalancers","elasticloadbalancing:DescribeRules","elasticloadbalancing:DescribeTargetGroups","events:DeleteRule","events:DescribeRule","events:ListRuleNamesByTarget","events:ListTargetsByRule","events:PutRule","events:PutTargets","events:RemoveTargets","fsx:DescribeFileSystems","iam:ListAttachedRolePolicies","iam:ListInstanceProfiles","iam:ListRoles","lambda:ListFunctions","logs:CreateLogGroup","logs:DescribeLogGroups","logs:FilterLogEvents","route53:CreateHostedZone","route53:DeleteHostedZone","route53:GetHealthCheck","route53:GetHostedZone","route53:ListHostedZonesByName","servicediscovery:CreatePrivateDnsNamespace","servicediscovery:CreateService","servicediscovery:DeleteService","servicediscovery:GetNamespace","servicediscovery:GetOperation","servicediscovery:GetService","servicediscovery:ListNamespaces","servicediscovery:ListServices","servicediscovery:UpdateService","sns:ListTopics"],"Resource":["*"]},{"Sid":"SSMPolicy","Effect":"Allow","Action":["ssm:GetParameter","ssm:GetParameters","ssm:GetParametersByPath"],"Resource":"arn:aws:ssm:*:*:parameter/aws/service/ecs*"},{"Sid":"ManagedCloudformationResourcesCleanupPolicy","Effect":"Allow","Action":["ec2:DeleteInternetGateway","ec2:DeleteRoute","ec2:DeleteRouteTable","ec2:DeleteSecurityGroup"],"Resource":["*"],"Condition":{"StringLike":{"ec2:ResourceTag/aws:cloudformation:stack-name":"EC2ContainerService-*"}}},{"Sid":"TasksPassRolePolicy","Action":"iam:PassRole","Effect":"Allow","Resource":["*"],"Condition":{"StringLike":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}},{"Sid":"InfrastructurePassRolePolicy","Action":"iam:PassRole","Effect":"Allow","Resource":["arn:aws:iam::*:role/ecsInfrastructureRole"],"Condition":{"StringEquals":{"iam:PassedToService":"ecs.amazonaws.com"}}},{"Sid":"InstancePassRolePolicy","Action":"iam:PassRole","Effect":"Allow","Resource":["arn:aws:iam::*:role/ecsInstanceRole*"],"Condition":{"StringLike":{"iam:PassedToService":["ec2.amazonaws.com","ec2.amazonaws.com.cn"]}}},{"Sid":"AutoScalingPassRolePolicy","Action":"iam:PassRole","Effect":"Allow","Resource":["arn:aws:iam::*:role/ecsAutoscaleRole*"],"Condition":{"StringLike":{"iam:PassedToService":["application-autoscaling.amazonaws.com","application-autoscaling.amazonaws.com.cn"]}}},{"Sid":"ServiceLinkedRoleCreationPolicy","Effect":"Allow","Action":"iam:CreateServiceLinkedRole","Resource":"*","Condition":{"StringLike":{"iam:AWSServiceName":["ecs.amazonaws.com","autoscaling.amazonaws.com","ecs.application-autoscaling.amazonaws.com","spot.amazonaws.com","spotfleet.amazonaws.com"]}}},{"Sid":"ELBTaggingPolicy","Effect":"Allow","Action":["elasticloadbalancing:AddTags"],"Resource":"*","Condition":{"StringEquals":{"elasticloadbalancing:CreateAction":["CreateTargetGroup","CreateRule","CreateListener","CreateLoadBalancer"]}}}]}"#,
    },
    Catalogued {
        // The reference's v23 (edited 2026-02-12T17:58Z), read in full; the reference now
        // shows a v24 (edited 2026-04-22T23:12Z) whose full document was not available here.
        name: "AmazonECSServiceRolePolicy",
        path: "/aws-service-role/",
        version: "v23",
        created: 1_507_943_880.0, // 2017-10-14T01:18Z
        edited: 1_770_919_080.0,  // 2026-02-12T17:58Z
        description: "Policy to enable Amazon ECS to manage your cluster.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"ECSTaskManagement","Effect":"Allow","Action":["ec2:AttachNetworkInterface","ec2:AssociateTrunkInterface","ec2:CreateNetworkInterface","ec2:CreateNetworkInterfacePermission","ec2:DeleteNetworkInterface","ec2:DeleteNetworkInterfacePermission","ec2:Describe*","ec2:DetachNetworkInterface","ec2:DisassociateTrunkInterface","elasticloadbalancing:DeregisterInstancesFromLoadBalancer","elasticloadbalancing:DeregisterTargets","elasticloadbalancing:Describe*","elasticloadbalancing:RegisterInstancesWithLoadBalancer","elasticloadbalancing:RegisterTargets","route53:ChangeResourceRecordSets","route53:CreateHealthCheck","route53:DeleteHealthCheck","route53:Get*","route53:List*","route53:UpdateHealthCheck","servicediscovery:DeregisterInstance","servicediscovery:Get*","servicediscovery:List*","servicediscovery:RegisterInstance","servicediscovery:UpdateInstanceCustomHealthStatus"],"Resource":"*"},{"Sid":"AutoScaling","Effect":"Allow","Action":["autoscaling:Describe*"],"Resource":"*"},{"Sid":"AutoScalingManagement","Effect":"Allow","Action":["autoscaling:DeletePolicy","autoscaling:PutScalingPolicy","autoscaling:SetInstanceProtection","autoscaling:UpdateAutoScalingGroup","autoscaling:PutLifecycleHook","autoscaling:DeleteLifecycleHook","autoscaling:CompleteLifecycleAction","autoscaling:RecordLifecycleActionHeartbeat"],"Resource":"*","Condition":{"Null":{"autoscaling:ResourceTag/AmazonECSManaged":"false"}}},{"Sid":"AutoScalingPlanManagement","Effect":"Allow","Action":["autoscaling-plans:CreateScalingPlan","autoscaling-plans:DeleteScalingPlan","autoscaling-plans:DescribeScalingPlans","autoscaling-plans:DescribeScalingPlanResources"],"Resource":"*"},{"Sid":"EventBridge","Effect":"Allow","Action":["events:DescribeRule","events:ListTargetsByRule"],"Resource":"arn:aws:events:*:*:rule/ecs-managed-*"},{"Sid":"EventBridgeRuleManagement","Effect":"Allow","Action":["events:PutRule","events:PutTargets"],"Resource":"*","Condition":{"StringEquals":{"events:ManagedBy":"ecs.amazonaws.com"}}},{"Sid":"CWAlarmManagement","Effect":"Allow","Action":["cloudwatch:DeleteAlarms","cloudwatch:DescribeAlarms","cloudwatch:PutMetricAlarm"],"Resource":"arn:aws:cloudwatch:*:*:alarm:*"},{"Sid":"ECSTagging","Effect":"Allow","Action":["ec2:CreateTags"],"Resource":"arn:aws:ec2:*:*:network-interface/*"},{"Sid":"CWLogGroupManagement","Effect":"Allow","Action":["logs:CreateLogGroup","logs:DescribeLogGroups","logs:PutRetentionPolicy"],"Resource":"arn:aws:logs:*:*:log-group:/aws/ecs/*"},{"Sid":"CWLogStreamManagement","Effect":"Allow","Action":["logs:CreateLogStream","logs:DescribeLogStreams","logs:PutLogEvents"],"Resource":"arn:aws:logs:*:*:log-group:/aws/ecs/*:log-stream:*"},{"Sid":"ExecuteCommandSessionManagement","Effect":"Allow","Action":["ssm:DescribeSessions"],"Resource":"*"},{"Sid":"ExecuteCommand","Effect":"Allow","Action":["ssm:StartSession"],"Resource":["arn:aws:ecs:*:*:task/*","arn:aws:ssm:*:*:document/AmazonECS-ExecuteInteractiveCommand"]},{"Sid":"OpenDataChannel","Effect":"Allow","Action":["ssmmessages:OpenDataChannel"],"Resource":["arn:aws:ssm:*:*:session/*"],"Condition":{"StringEquals":{"aws:PrincipalAccount":"${aws:ResourceAccount}"}}},{"Sid":"CloudMapResourceCreation","Effect":"Allow","Action":["servicediscovery:CreateHttpNamespace","servicediscovery:CreateService"],"Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["AmazonECSManaged"]}}},{"Sid":"CloudMapResourceTagging","Effect":"Allow","Action":"servicediscovery:TagResource","Resource":"*","Condition":{"StringLike":{"aws:RequestTag/AmazonECSManaged":"*"}}},{"Sid":"CloudMapResourceDeletion","Effect":"Allow","Action":["servicediscovery:DeleteService"],"Resource":"*","Condition":{"Null":{"aws:ResourceTag/AmazonECSManaged":"false"}}},{"Sid":"CloudMapResourceDiscovery","Effect":"Allow","Action":["servicediscovery:DiscoverInstances","servicediscovery:DiscoverInstancesRevision"],"Resource":"*"},{"Sid":"CloudMapResourceAttributeManagement","Effect":"Allow","Action":["servicediscovery:UpdateServiceAttributes"],"Resource":"*","Condition":{"Null":{"aws:ResourceTag/AmazonECSManaged":"false"}}},{"Sid":"ReadOnlyPermissionsForInstanceEventWindows","Effect":"Allow","Action":["ec2:DescribeInstanceEventWindows"],"Resource":"*"}]}"#,
    },
    Catalogued {
        name: "AWSApplicationAutoscalingECSServicePolicy",
        path: "/aws-service-role/",
        version: "v2",
        created: 1_508_975_580.0, // 2017-10-25T23:53Z
        edited: 1_729_800_300.0,  // 2024-10-24T20:05Z
        description: "Policy granting permissions to Application Auto Scaling to access EC2 Container Service and CloudWatch.",
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:DescribeServices","ecs:UpdateService","cloudwatch:PutMetricAlarm","cloudwatch:DescribeAlarms","cloudwatch:GetMetricData","cloudwatch:DeleteAlarms"],"Resource":["*"]}]}"#,
    },
    Catalogued {
        name: "AutoScalingServiceRolePolicy",
        path: "/aws-service-role/",
        version: "v9",
        created: 1_515_453_000.0, // 2018-01-08T23:10Z
        edited: 1_731_690_600.0,  // 2024-11-15T17:10Z
        description: "Enables access to AWS services and Resources used or managed by Auto Scaling",
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"EC2InstanceManagement","Effect":"Allow","Action":["ec2:AttachClassicLinkVpc","ec2:CancelSpotInstanceRequests","ec2:CreateFleet","ec2:CreateTags","ec2:DeleteTags","ec2:Describe*","ec2:DetachClassicLinkVpc","ec2:GetInstanceTypesFromInstanceRequirements","ec2:GetSecurityGroupsForVpc","ec2:ModifyInstanceAttribute","ec2:RequestSpotInstances","ec2:RunInstances","ec2:StartInstances","ec2:StopInstances","ec2:TerminateInstances"],"Resource":"*"},{"Sid":"EC2InstanceProfileManagement","Effect":"Allow","Action":["iam:PassRole"],"Resource":"*","Condition":{"StringLike":{"iam:PassedToService":"ec2.amazonaws.com*"}}},{"Sid":"EC2SpotManagement","Effect":"Allow","Action":["iam:CreateServiceLinkedRole"],"Resource":"*","Condition":{"StringEquals":{"iam:AWSServiceName":"spot.amazonaws.com"}}},{"Sid":"ELBManagement","Effect":"Allow","Action":["elasticloadbalancing:Register*","elasticloadbalancing:Deregister*","elasticloadbalancing:Describe*"],"Resource":"*"},{"Sid":"CWManagement","Effect":"Allow","Action":["cloudwatch:DeleteAlarms","cloudwatch:DescribeAlarms","cloudwatch:GetMetricData","cloudwatch:PutMetricAlarm"],"Resource":"*"},{"Sid":"SNSManagement","Effect":"Allow","Action":["sns:Publish"],"Resource":"*"},{"Sid":"EventBridgeRuleManagement","Effect":"Allow","Action":["events:PutRule","events:PutTargets","events:RemoveTargets","events:DeleteRule","events:DescribeRule"],"Resource":"*","Condition":{"StringEquals":{"events:ManagedBy":"autoscaling.amazonaws.com"}}},{"Sid":"SystemsManagerParameterManagement","Effect":"Allow","Action":["ssm:GetParameters"],"Resource":"*"},{"Sid":"VpcLatticeManagement","Effect":"Allow","Action":["vpc-lattice:DeregisterTargets","vpc-lattice:GetTargetGroup","vpc-lattice:ListTargets","vpc-lattice:ListTargetGroups","vpc-lattice:RegisterTargets"],"Resource":"*"},{"Sid":"ResourceGroupsManagement","Effect":"Allow","Action":["resource-groups:ListGroupResources"],"Resource":"arn:*:resource-groups:*:*:group/*"}]}"#,
    },
];
