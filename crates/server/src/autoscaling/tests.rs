use std::sync::Arc;

use base64::Engine;
use berth_autoscaling::{CreateAutoScalingGroup, LaunchTemplateSpec};
use berth_ec2::{Ec2, Ec2Scope, LaunchTemplateData};
use berth_store::MemStore;

use super::provisioner::Recording;
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_launches_to_the_desired_capacity_and_terminates_the_extra() {
    let store: Arc<dyn berth_store::Store> = Arc::new(MemStore::new());
    let ec2 = Arc::new(Ec2::new(store.clone()));
    let user_data = base64::engine::general_purpose::STANDARD
        .encode("#!/bin/bash\necho ECS_CLUSTER=web >> /etc/ecs/ecs.config\n");
    let template = ec2
        .create_launch_template(
            &Ec2Scope::new("000000000000", "us-east-1"),
            "web",
            None,
            LaunchTemplateData {
                instance_type: Some("t3.micro".into()),
                user_data: Some(user_data),
                ..Default::default()
            },
            Vec::new(),
        )
        .unwrap();
    let autoscaling = AutoScaling::new(
        store.clone(),
        Arc::new(berth_api::autoscaling::Ec2Launches(ec2)),
    );
    let scope = AsgScope::new("000000000000", "us-east-1");
    autoscaling
        .create_auto_scaling_group(
            &scope,
            CreateAutoScalingGroup {
                name: "g".into(),
                launch_template: Some(LaunchTemplateSpec {
                    id: Some(template.id.clone()),
                    ..Default::default()
                }),
                min_size: 0,
                max_size: 2,
                desired_capacity: Some(2),
                availability_zones: vec!["us-east-1a".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let recording = Arc::new(Recording::default());
    let controller = Arc::new(Controller {
        autoscaling: autoscaling.clone(),
        ecs: berth_ecs::Ecs::new(store.clone()),
        provisioner: recording.clone(),
        endpoint: "http://127.0.0.1:1".into(),
    });
    controller.pass().await.unwrap();
    let group = autoscaling.group(&scope, "g").unwrap();
    let ids: Vec<String> = group
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        *recording.calls.lock().unwrap(),
        ids.iter()
            .map(|id| format!("launch {id} web"))
            .collect::<Vec<_>>()
    );
    // No agent registered: still Pending.
    assert!(
        group
            .instances
            .iter()
            .all(|i| i.lifecycle_state == LifecycleState::Pending)
    );

    recording.calls.lock().unwrap().clear();
    autoscaling.set_desired_capacity(&scope, "g", 0).unwrap();
    controller.pass().await.unwrap();
    let calls = recording.calls.lock().unwrap().clone();
    for id in &ids {
        assert!(calls.contains(&format!("terminate {id}")), "{calls:?}");
    }
    assert!(autoscaling.group(&scope, "g").unwrap().instances.is_empty());
}
