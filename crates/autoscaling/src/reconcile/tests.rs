use std::sync::Arc;

use berth_store::MemStore;

use crate::*;

struct FakeEc2;

impl Ec2Directory for FakeEc2 {
    fn launch_template(&self, _: &AsgScope, spec: &LaunchTemplateSpec) -> Result<ResolvedTemplate> {
        match spec.id.as_deref() {
            Some("lt-1") => Ok(ResolvedTemplate {
                id: "lt-1".into(),
                name: "web".into(),
                version: "1".into(),
                instance_type: Some("t3.micro".into()),
                user_data: Some("ECS_CLUSTER=web".into()),
            }),
            _ => Err(AutoScalingError::Validation("no template".into())),
        }
    }
    fn subnet_zone(&self, _: &AsgScope, subnet: &str) -> Result<String> {
        Ok(format!("us-east-1{}", &subnet[subnet.len() - 1..]))
    }
    fn zones(&self, _: &str) -> Vec<String> {
        vec!["us-east-1a".into(), "us-east-1b".into()]
    }
}

fn setup() -> (AutoScaling, AsgScope) {
    let asg = AutoScaling::new(Arc::new(MemStore::new()), Arc::new(FakeEc2));
    let scope = AsgScope::new("000000000000", "us-east-1");
    asg.create_auto_scaling_group(
        &scope,
        CreateAutoScalingGroup {
            name: "g".into(),
            launch_template: Some(LaunchTemplateSpec {
                id: Some("lt-1".into()),
                ..Default::default()
            }),
            min_size: 0,
            max_size: 3,
            desired_capacity: Some(2),
            vpc_zone_identifier: Some("subnet-a,subnet-b".into()),
            ..Default::default()
        },
    )
    .unwrap();
    (asg, scope)
}

#[test]
fn a_group_launches_to_its_desired_capacity_and_scales_in_to_zero() {
    let (asg, scope) = setup();
    let g = asg.reconcile(&scope, "g").unwrap().unwrap();
    assert_eq!(g.instances.len(), 2);
    assert!(
        g.instances
            .iter()
            .all(|i| i.lifecycle_state == LifecycleState::Pending
                && i.cluster == "web"
                && i.instance_type.as_deref() == Some("t3.micro"))
    );
    let zones: Vec<&str> = g
        .instances
        .iter()
        .map(|i| i.availability_zone.as_str())
        .collect();
    assert_eq!(zones, ["us-east-1a", "us-east-1b"]);
    // A second pass has nothing to do.
    assert_eq!(
        asg.reconcile(&scope, "g").unwrap().unwrap().instances,
        g.instances
    );
    for i in &g.instances {
        asg.mark_in_service(&scope, "g", &i.instance_id).unwrap();
    }
    let page = asg
        .describe_scaling_activities(&scope, Some("g"), &[], None, None)
        .unwrap();
    assert_eq!(page.activities.len(), 2);
    assert!(page.activities.iter().all(|a| a.status_code == ActivityStatus::Successful
        && a.description.starts_with("Launching a new EC2 instance: i-")
        && a.cause.contains("a user request created an AutoScalingGroup changing the desired capacity from 0 to 2.")));

    asg.set_desired_capacity(&scope, "g", 0).unwrap();
    let g = asg.reconcile(&scope, "g").unwrap().unwrap();
    assert!(
        g.instances
            .iter()
            .all(|i| i.lifecycle_state == LifecycleState::Terminating)
    );
    assert!(matches!(
        asg.delete_auto_scaling_group(&scope, "g", false),
        Err(AutoScalingError::ScalingActivityInProgress(_))
    ));
    for i in &g.instances {
        asg.mark_terminated(&scope, "g", &i.instance_id).unwrap();
    }
    let page = asg
        .describe_scaling_activities(&scope, Some("g"), &[], None, None)
        .unwrap();
    assert_eq!(page.activities.len(), 4);
    let newest = &page.activities[0];
    assert!(
        newest
            .description
            .starts_with("Terminating EC2 instance: i-")
    );
    assert!(newest.cause.contains("a user request explicitly set group desired capacity changing the desired capacity from 2 to 0."));
    assert_eq!(newest.status_code, ActivityStatus::Successful);
    asg.delete_auto_scaling_group(&scope, "g", false).unwrap();
    assert!(asg.all_groups().unwrap().is_empty());
}

#[test]
fn force_delete_terminates_every_instance_then_removes_the_group() {
    let (asg, scope) = setup();
    let g = asg.reconcile(&scope, "g").unwrap().unwrap();
    asg.set_instance_protection(&scope, "g", &[g.instances[0].instance_id.clone()], true)
        .unwrap();
    assert!(matches!(
        asg.delete_auto_scaling_group(&scope, "g", false),
        Err(AutoScalingError::ResourceInUse(_))
    ));
    asg.delete_auto_scaling_group(&scope, "g", true).unwrap();
    let g = asg.reconcile(&scope, "g").unwrap().unwrap();
    assert!(g.deleting);
    assert!(
        g.instances
            .iter()
            .all(|i| i.lifecycle_state == LifecycleState::Terminating)
    );
    for i in &g.instances {
        asg.mark_terminated(&scope, "g", &i.instance_id).unwrap();
    }
    assert_eq!(asg.reconcile(&scope, "g").unwrap(), None);
    assert!(asg.group(&scope, "g").is_err());
}

#[test]
fn ended_activities_are_kept_six_weeks() {
    let (asg, scope) = setup();
    let g = asg.reconcile(&scope, "g").unwrap().unwrap();
    // One launch ends (Successful), the other is still in progress.
    asg.mark_in_service(&scope, "g", &g.instances[0].instance_id)
        .unwrap();
    let now = berth_store::now_epoch();
    assert_eq!(asg.expire_activities(now + 41.0 * 86_400.0).unwrap(), 0);
    assert_eq!(asg.expire_activities(now + 43.0 * 86_400.0).unwrap(), 1);
    let page = asg
        .describe_scaling_activities(&scope, Some("g"), &[], None, None)
        .unwrap();
    assert_eq!(page.activities.len(), 1);
    assert_eq!(page.activities[0].status_code, ActivityStatus::InProgress);
}
