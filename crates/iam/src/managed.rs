//! AWS managed policies that ECS and ECR users attach, by their real ARNs and default
//! versions' documents, as AWS's managed policy reference and the ECS developer guide show
//! them. Read-only: every account sees the same ones. More join as the services that use
//! them arrive (AmazonECS_FullAccess, whose document spans a dozen services, is not here
//! yet).

use crate::policies::{ManagedPolicy, PolicyVersion};

struct Catalogued {
    name: &'static str,
    path: &'static str,
    version: &'static str,
    /// Creation and last edit, seconds since the epoch (the reference's "Creation time" and
    /// "Edited time").
    created: f64,
    edited: f64,
    description: &'static str,
    document: &'static str,
}

const CATALOGUE: &[Catalogued] = &[
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

fn policy(c: &Catalogued) -> ManagedPolicy {
    ManagedPolicy {
        policy_name: c.name.to_string(),
        // Stable per policy (AWS's own ids are not published with the documents).
        policy_id: format!("ANPA{:017X}", fnv(c.name) & 0xFFFF_FFFF_FFFF_FFFF),
        arn: format!("arn:aws:iam::aws:policy{}{}", c.path, c.name),
        path: c.path.to_string(),
        description: Some(c.description.to_string()),
        default_version_id: c.version.to_string(),
        versions: vec![PolicyVersion {
            version_id: c.version.to_string(),
            document: c.document.to_string(),
            create_date: c.edited,
        }],
        next_version: 0,
        attachment_count: 0,
        create_date: c.created,
        update_date: c.edited,
        tags: Vec::new(),
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The AWS managed policy at `arn`, if it is one Berth knows.
pub(crate) fn aws_policy(arn: &str) -> Option<ManagedPolicy> {
    CATALOGUE
        .iter()
        .find(|c| arn == format!("arn:aws:iam::aws:policy{}{}", c.path, c.name))
        .map(policy)
}

/// Every AWS managed policy Berth knows.
pub(crate) fn aws_policies() -> Vec<ManagedPolicy> {
    CATALOGUE.iter().map(policy).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_document_is_a_policy() {
        for p in aws_policies() {
            crate::policies::check_document(p.default_document(), 6144).unwrap();
            assert_eq!(aws_policy(&p.arn).unwrap().policy_name, p.policy_name);
            assert_eq!(p.policy_id.len(), 21, "{}", p.policy_id);
        }
        assert!(
            aws_policy("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
                .is_some()
        );
    }
}
