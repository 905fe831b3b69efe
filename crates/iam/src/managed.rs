//! AWS managed policies that ECS and ECR users attach, by their real ARNs and default
//! versions' documents, as AWS's managed policy reference and the ECS developer guide show
//! them. Read-only: every account sees the same ones. More join as the services that use
//! them arrive (AmazonECS_FullAccess, whose document spans a dozen services, is not here
//! yet).

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
];
