//! ECS's ARNs, built and read in one place: `arn:aws:ecs:REGION:ACCOUNT:RESOURCE`, where
//! RESOURCE is `cluster/NAME`, `task/CLUSTER/ID`, `container-instance/CLUSTER/ID`,
//! `service/CLUSTER/NAME`, `task-definition/FAMILY:REVISION`, `container/CLUSTER/TASK/ID`,
//! `attachment/ID`, `capacity-provider/NAME`, `service-deployment/CLUSTER/SERVICE/ID` or
//! `service-revision/CLUSTER/SERVICE/N` or `task-set/CLUSTER/SERVICE/ID` (ECS's long ARN format; the old short format
//! without the cluster is read too, for tasks, instances and services).

use std::fmt;

use crate::Scope;

/// What an ECS ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcsResource<'a> {
    Cluster(&'a str),
    /// `cluster` is `None` in the old short format.
    Task {
        cluster: Option<&'a str>,
        id: &'a str,
    },
    ContainerInstance {
        cluster: Option<&'a str>,
        id: &'a str,
    },
    Service {
        cluster: Option<&'a str>,
        name: &'a str,
    },
    /// `revision` is `None` for `task-definition/FAMILY` (or `FAMILY:`): a family.
    TaskDefinition {
        family: &'a str,
        revision: Option<&'a str>,
    },
    Container {
        cluster: &'a str,
        task: &'a str,
        id: &'a str,
    },
    Attachment(&'a str),
    CapacityProvider(&'a str),
    ServiceDeployment {
        cluster: &'a str,
        service: &'a str,
        id: &'a str,
    },
    ServiceRevision {
        cluster: &'a str,
        service: &'a str,
        revision: &'a str,
    },
    TaskSet {
        cluster: &'a str,
        service: &'a str,
        id: &'a str,
    },
}

impl EcsResource<'_> {
    /// The part after `ACCOUNT:`.
    fn path(&self) -> String {
        let scoped = |kind: &str, cluster: Option<&str>, last: &str| match cluster {
            Some(c) => format!("{kind}/{c}/{last}"),
            None => format!("{kind}/{last}"),
        };
        match *self {
            EcsResource::Cluster(name) => format!("cluster/{name}"),
            EcsResource::Task { cluster, id } => scoped("task", cluster, id),
            EcsResource::ContainerInstance { cluster, id } => {
                scoped("container-instance", cluster, id)
            }
            EcsResource::Service { cluster, name } => scoped("service", cluster, name),
            EcsResource::TaskDefinition { family, revision } => match revision {
                Some(revision) => format!("task-definition/{family}:{revision}"),
                None => format!("task-definition/{family}"),
            },
            EcsResource::Container { cluster, task, id } => {
                format!("container/{cluster}/{task}/{id}")
            }
            EcsResource::Attachment(id) => format!("attachment/{id}"),
            EcsResource::CapacityProvider(name) => format!("capacity-provider/{name}"),
            EcsResource::ServiceDeployment {
                cluster,
                service,
                id,
            } => format!("service-deployment/{cluster}/{service}/{id}"),
            EcsResource::ServiceRevision {
                cluster,
                service,
                revision,
            } => format!("service-revision/{cluster}/{service}/{revision}"),
            EcsResource::TaskSet {
                cluster,
                service,
                id,
            } => format!("task-set/{cluster}/{service}/{id}"),
        }
    }
}

/// An ECS ARN of one account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EcsArn(String);

impl EcsArn {
    pub fn new(scope: &Scope, resource: EcsResource<'_>) -> EcsArn {
        EcsArn(scope.arn("ecs", &resource.path()))
    }

    pub fn cluster(scope: &Scope, name: &str) -> EcsArn {
        EcsArn::new(scope, EcsResource::Cluster(name))
    }

    pub fn task(scope: &Scope, cluster: &str, id: &str) -> EcsArn {
        EcsArn::new(
            scope,
            EcsResource::Task {
                cluster: Some(cluster),
                id,
            },
        )
    }

    pub fn container_instance(scope: &Scope, cluster: &str, id: &str) -> EcsArn {
        EcsArn::new(
            scope,
            EcsResource::ContainerInstance {
                cluster: Some(cluster),
                id,
            },
        )
    }

    pub fn service(scope: &Scope, cluster: &str, name: &str) -> EcsArn {
        EcsArn::new(
            scope,
            EcsResource::Service {
                cluster: Some(cluster),
                name,
            },
        )
    }

    pub fn task_definition(scope: &Scope, family: &str, revision: i64) -> EcsArn {
        let revision = revision.to_string();
        EcsArn::new(
            scope,
            EcsResource::TaskDefinition {
                family,
                revision: Some(&revision),
            },
        )
    }

    /// `…:task-definition/FAMILY:`: what the ARN of every revision of the family starts
    /// with (a prefix, not an ARN).
    pub fn task_definition_prefix(scope: &Scope, family: &str) -> String {
        format!(
            "{}:",
            EcsArn::new(
                scope,
                EcsResource::TaskDefinition {
                    family,
                    revision: None
                }
            )
        )
    }

    /// A task definition as a request names it: `FAMILY:REVISION` or `FAMILY`.
    pub fn task_definition_named(scope: &Scope, reference: &str) -> EcsArn {
        let (family, revision) = match reference.split_once(':') {
            Some((family, revision)) => (family, Some(revision)),
            None => (reference, None),
        };
        EcsArn::new(scope, EcsResource::TaskDefinition { family, revision })
    }

    pub fn container(scope: &Scope, cluster: &str, task: &str, id: &str) -> EcsArn {
        EcsArn::new(scope, EcsResource::Container { cluster, task, id })
    }

    pub fn attachment(scope: &Scope, id: &str) -> EcsArn {
        EcsArn::new(scope, EcsResource::Attachment(id))
    }

    pub fn capacity_provider(scope: &Scope, name: &str) -> EcsArn {
        EcsArn::new(scope, EcsResource::CapacityProvider(name))
    }

    pub fn service_deployment(scope: &Scope, cluster: &str, service: &str, id: &str) -> EcsArn {
        EcsArn::new(
            scope,
            EcsResource::ServiceDeployment {
                cluster,
                service,
                id,
            },
        )
    }

    pub fn task_set(scope: &Scope, cluster: &str, service: &str, id: &str) -> EcsArn {
        EcsArn::new(
            scope,
            EcsResource::TaskSet {
                cluster,
                service,
                id,
            },
        )
    }

    pub fn service_revision(scope: &Scope, cluster: &str, service: &str, revision: u64) -> EcsArn {
        let revision = revision.to_string();
        EcsArn::new(
            scope,
            EcsResource::ServiceRevision {
                cluster,
                service,
                revision: &revision,
            },
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// What `arn` names, if it is an ECS ARN of `scope` of a kind listed above (an ARN of
    /// another account, region or service, or a malformed one, is `None`).
    pub fn parse<'a>(scope: &Scope, arn: &'a str) -> Option<EcsResource<'a>> {
        let path = arn.strip_prefix(&scope.arn("ecs", ""))?;
        let (kind, rest) = path.split_once('/')?;
        if rest.is_empty() {
            return None;
        }
        let split = |rest: &'a str| match rest.rsplit_once('/') {
            Some((cluster, last)) if !cluster.contains('/') && !last.is_empty() => {
                Some((Some(cluster), last))
            }
            Some(_) => None,
            None => Some((None, rest)),
        };
        Some(match kind {
            "cluster" if !rest.contains('/') => EcsResource::Cluster(rest),
            "task" => {
                let (cluster, id) = split(rest)?;
                EcsResource::Task { cluster, id }
            }
            "container-instance" => {
                let (cluster, id) = split(rest)?;
                EcsResource::ContainerInstance { cluster, id }
            }
            "service" => {
                let (cluster, name) = split(rest)?;
                EcsResource::Service { cluster, name }
            }
            "task-definition" => match rest.split_once(':') {
                Some((family, "")) => EcsResource::TaskDefinition {
                    family,
                    revision: None,
                },
                Some((family, revision)) => EcsResource::TaskDefinition {
                    family,
                    revision: Some(revision),
                },
                None => EcsResource::TaskDefinition {
                    family: rest,
                    revision: None,
                },
            },
            "container" => {
                let mut parts = rest.splitn(3, '/');
                let (cluster, task, id) = (parts.next()?, parts.next()?, parts.next()?);
                EcsResource::Container { cluster, task, id }
            }
            "service-deployment" | "service-revision" => {
                let mut parts = rest.splitn(3, '/');
                let (cluster, service, last) = (parts.next()?, parts.next()?, parts.next()?);
                if kind == "service-deployment" {
                    EcsResource::ServiceDeployment {
                        cluster,
                        service,
                        id: last,
                    }
                } else {
                    EcsResource::ServiceRevision {
                        cluster,
                        service,
                        revision: last,
                    }
                }
            }
            "task-set" => {
                // The id (`ecs-svc/N`) has a slash of its own.
                let mut parts = rest.splitn(3, '/');
                let (cluster, service, id) = (parts.next()?, parts.next()?, parts.next()?);
                EcsResource::TaskSet {
                    cluster,
                    service,
                    id,
                }
            }
            "attachment" => EcsResource::Attachment(rest),
            "capacity-provider" => EcsResource::CapacityProvider(rest),
            _ => return None,
        })
    }
}

impl fmt::Display for EcsArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<EcsArn> for String {
    fn from(arn: EcsArn) -> String {
        arn.0
    }
}

impl AsRef<str> for EcsArn {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_builds_as_ecs_writes_it_and_reads_back() {
        let s = Scope::default_installation();
        let cases = [
            (EcsArn::cluster(&s, "prod"), "cluster/prod"),
            (EcsArn::task(&s, "prod", "abc"), "task/prod/abc"),
            (
                EcsArn::container_instance(&s, "prod", "i1"),
                "container-instance/prod/i1",
            ),
            (EcsArn::service(&s, "prod", "web"), "service/prod/web"),
            (
                EcsArn::task_definition(&s, "web", 3),
                "task-definition/web:3",
            ),
            (
                EcsArn::task_definition_named(&s, "web"),
                "task-definition/web",
            ),
            (
                EcsArn::task_definition_named(&s, "web:2"),
                "task-definition/web:2",
            ),
            (
                EcsArn::container(&s, "prod", "abc", "c1"),
                "container/prod/abc/c1",
            ),
            (EcsArn::attachment(&s, "e1"), "attachment/e1"),
            (
                EcsArn::capacity_provider(&s, "FARGATE"),
                "capacity-provider/FARGATE",
            ),
            (
                EcsArn::service_deployment(&s, "prod", "web", "r9i43YFjvgF"),
                "service-deployment/prod/web/r9i43YFjvgF",
            ),
            (
                EcsArn::service_revision(&s, "prod", "web", 4),
                "service-revision/prod/web/4",
            ),
        ];
        for (arn, path) in cases {
            assert_eq!(
                arn.as_str(),
                format!("arn:aws:ecs:us-east-1:000000000000:{path}")
            );
            let parsed = EcsArn::parse(&s, arn.as_str()).unwrap();
            assert_eq!(EcsArn::new(&s, parsed), arn, "{path}");
        }
    }

    #[test]
    fn short_formats_and_foreign_arns() {
        let s = Scope::default_installation();
        assert_eq!(
            EcsArn::task_definition_prefix(&s, "web"),
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:"
        );
        assert_eq!(
            EcsArn::parse(&s, "arn:aws:ecs:us-east-1:000000000000:task/abc"),
            Some(EcsResource::Task {
                cluster: None,
                id: "abc"
            })
        );
        assert_eq!(
            EcsArn::parse(&s, "arn:aws:ecs:us-east-1:000000000000:task-definition/web"),
            Some(EcsResource::TaskDefinition {
                family: "web",
                revision: None
            })
        );
        for foreign in [
            "arn:aws:ecs:eu-west-1:000000000000:cluster/prod",
            "arn:aws:ecs:us-east-1:111111111111:cluster/prod",
            "arn:aws:ecr:us-east-1:000000000000:repository/prod",
            "arn:aws:ecs:us-east-1:000000000000:cluster/",
            "arn:aws:ecs:us-east-1:000000000000:task/a/b/c",
            "arn:aws:ecs:us-east-1:000000000000:widget/x",
            "arn:aws:ecs:us-east-1:000000000000:service-deployment/prod/web",
            "prod",
        ] {
            assert_eq!(EcsArn::parse(&s, foreign), None, "{foreign}");
        }
    }
}
