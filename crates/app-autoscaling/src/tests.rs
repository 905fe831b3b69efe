//! The use cases over a memory store, fake alarms and a fake ECS.

use std::sync::Arc;

use berth_store::MemStore;

use super::*;

const SERVICE: &str = "service/default/web";

struct World {
    scaling: AppAutoScaling,
    alarms: Arc<FakeAlarms>,
    ecs: Arc<FakeEcs>,
    scope: Scope,
}

fn world(desired: i64) -> World {
    let alarms = Arc::new(FakeAlarms::default());
    let ecs = Arc::new(FakeEcs::default().with_service(
        "default",
        "web",
        ServiceCapacity {
            desired,
            running: desired,
            deployment_in_progress: false,
        },
    ));
    World {
        scaling: AppAutoScaling::new(Arc::new(MemStore::new()), alarms.clone(), ecs.clone()),
        alarms,
        ecs,
        scope: Scope::new(
            "000000000000".parse().unwrap(),
            "us-east-1".parse().unwrap(),
        ),
    }
}

fn register(w: &World, min: i64, max: i64) -> ScalableTarget {
    w.scaling
        .register_scalable_target(
            &w.scope,
            RegisterScalableTarget {
                resource_id: SERVICE.into(),
                min_capacity: Some(min),
                max_capacity: Some(max),
                ..RegisterScalableTarget::default()
            },
        )
        .unwrap()
}

/// The service's activities (newest first) as "description | cause".
fn activity_texts(w: &World) -> Vec<String> {
    let filter = ActivityFilter {
        resource_id: Some(SERVICE.into()),
        ..ActivityFilter::default()
    };
    let (activities, _) = w
        .scaling
        .describe_scaling_activities(&w.scope, &filter)
        .unwrap();
    activities
        .into_iter()
        .map(|a| format!("{} | {}", a.description, a.cause))
        .collect()
}

fn cpu_policy(w: &World, target: f64) -> ScalingPolicy {
    w.scaling
        .put_scaling_policy(
            &w.scope,
            PutScalingPolicy {
                policy_name: "cpu".into(),
                resource_id: SERVICE.into(),
                policy_type: PolicyType::TargetTrackingScaling,
                step: None,
                target_tracking: Some(TargetTrackingConfiguration {
                    target_value: target,
                    predefined_metric_specification: Some(PredefinedMetric {
                        predefined_metric_type: "ECSServiceAverageCPUUtilization".into(),
                        resource_label: None,
                    }),
                    customized_metric_specification: None,
                    scale_out_cooldown: Some(0),
                    scale_in_cooldown: None,
                    disable_scale_in: None,
                }),
            },
        )
        .unwrap()
}

fn trigger(alarm: &str, threshold: f64, value: f64) -> AlarmTrigger {
    AlarmTrigger {
        alarm_name: alarm.into(),
        alarm_arn: format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{alarm}"),
        state: AlarmState::Alarm,
        threshold,
        value: Some(value),
        at: berth_store::now_epoch(),
    }
}

#[test]
fn registering_defaults_the_role_updates_in_place_and_clamps_the_service() {
    let w = world(1);
    let t = register(&w, 2, 5);
    assert!(t.role_arn.ends_with(
        "role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
    ));
    assert!(
        t.arn
            .starts_with("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    );
    // Desired 1 is below the new minimum: raised to 2, as an activity says.
    assert_eq!(w.ecs.desired("default", "web"), Some(2));
    let again = w
        .scaling
        .register_scalable_target(
            &w.scope,
            RegisterScalableTarget {
                resource_id: SERVICE.into(),
                max_capacity: Some(8),
                ..RegisterScalableTarget::default()
            },
        )
        .unwrap();
    assert_eq!((again.min_capacity, again.max_capacity), (2, 8));
    assert_eq!(again.arn, t.arn);
    let (activities, _) = w
        .scaling
        .describe_scaling_activities(&w.scope, &ActivityFilter::default())
        .unwrap();
    assert_eq!(activities[0].description, "Setting desired count to 2.");
    assert_eq!(activities[0].status_code, StatusCode::Successful);
    // A service that does not exist, a range upside down.
    let missing = w.scaling.register_scalable_target(
        &w.scope,
        RegisterScalableTarget {
            resource_id: "service/default/nope".into(),
            min_capacity: Some(1),
            max_capacity: Some(2),
            ..RegisterScalableTarget::default()
        },
    );
    assert!(
        matches!(missing, Err(AutoScalingError::Validation(m)) if m == "ECS service doesn't exist: service/default/nope")
    );
    let upside_down = w.scaling.register_scalable_target(
        &w.scope,
        RegisterScalableTarget {
            resource_id: SERVICE.into(),
            min_capacity: Some(9),
            ..RegisterScalableTarget::default()
        },
    );
    assert!(matches!(upside_down, Err(AutoScalingError::Validation(_))));
}

#[test]
fn target_tracking_owns_its_alarms_and_deregistering_deletes_everything() {
    let w = world(2);
    register(&w, 1, 10);
    let policy = cpu_policy(&w, 50.0);
    assert_eq!(policy.alarms.len(), 2);
    let high = w.alarms.get(&policy.alarms[0].alarm_name).unwrap();
    assert!(
        high.alarm_name
            .starts_with("TargetTracking-service/default/web-AlarmHigh-")
    );
    assert_eq!(
        (
            high.namespace.as_deref(),
            high.metric_name.as_deref(),
            high.statistic.as_deref()
        ),
        (Some("AWS/ECS"), Some("CPUUtilization"), Some("Average"))
    );
    assert_eq!(
        high.dimensions,
        vec![
            ("ClusterName".to_string(), "default".to_string()),
            ("ServiceName".to_string(), "web".to_string())
        ]
    );
    assert_eq!(
        (
            high.evaluation_periods,
            high.datapoints_to_alarm,
            high.period
        ),
        (3, 3, Some(60))
    );
    assert_eq!(
        (high.threshold, high.comparison_operator.as_str()),
        (50.0, "GreaterThanThreshold")
    );
    assert_eq!(high.alarm_actions, vec![policy.policy_arn.clone()]);
    let low = w.alarms.get(&policy.alarms[1].alarm_name).unwrap();
    assert!(low.alarm_name.contains("-AlarmLow-"));
    assert_eq!(
        (
            low.evaluation_periods,
            low.threshold,
            low.comparison_operator.as_str()
        ),
        (15, 45.0, "LessThanThreshold")
    );
    // A re-put keeps the ARN and the alarms' names.
    let again = cpu_policy(&w, 60.0);
    assert_eq!(again.policy_arn, policy.policy_arn);
    assert_eq!(again.alarms, policy.alarms);
    assert_eq!(
        w.alarms
            .get(&policy.alarms[0].alarm_name)
            .unwrap()
            .threshold,
        60.0
    );
    w.scaling
        .put_scheduled_action(
            &w.scope,
            PutScheduledAction {
                name: "nightly".into(),
                resource_id: SERVICE.into(),
                schedule: Some("cron(0 22 * * ? *)".into()),
                ..PutScheduledAction::default()
            },
        )
        .unwrap();
    w.scaling
        .deregister_scalable_target(&w.scope, SERVICE)
        .unwrap();
    assert!(w.alarms.names().is_empty());
    let (policies, _) = w
        .scaling
        .describe_scaling_policies(&w.scope, None, &[], None, None)
        .unwrap();
    assert!(policies.is_empty());
    let (actions, _) = w
        .scaling
        .describe_scheduled_actions(&w.scope, None, &[], None, None)
        .unwrap();
    assert!(actions.is_empty());
    assert!(matches!(
        w.scaling.deregister_scalable_target(&w.scope, SERVICE),
        Err(AutoScalingError::ObjectNotFound(m)) if m == "No scalable target registered for service namespace: ecs, resource ID: service/default/web, scalable dimension: ecs:service:DesiredCount"
    ));
}

#[test]
fn an_alarm_runs_its_policy_on_the_service() {
    let w = world(2);
    register(&w, 1, 10);
    let policy = cpu_policy(&w, 50.0);
    let high = policy.alarms[0].alarm_name.clone();
    let activity = w
        .scaling
        .alarm_fired(&w.scope, &policy.policy_arn, &trigger(&high, 50.0, 100.0))
        .unwrap()
        .unwrap();
    assert_eq!(w.ecs.desired("default", "web"), Some(4));
    assert_eq!(activity.description, "Setting desired count to 4.");
    assert_eq!(
        activity.cause,
        format!("monitor alarm {high} in state ALARM triggered policy cpu")
    );
    assert_eq!(activity.status_code, StatusCode::Successful);
    assert_eq!(
        activity.status_message.as_deref(),
        Some("Successfully set desired count to 4. Change successfully fulfilled by ecs.")
    );
    // OK and INSUFFICIENT_DATA do nothing.
    let mut ok = trigger(&high, 50.0, 100.0);
    ok.state = AlarmState::Ok;
    assert!(
        w.scaling
            .alarm_fired(&w.scope, &policy.policy_arn, &ok)
            .unwrap()
            .is_none()
    );
    // No scale-in while a deployment rolls.
    w.ecs.set(
        "default",
        "web",
        ServiceCapacity {
            desired: 4,
            running: 4,
            deployment_in_progress: true,
        },
    );
    let low = policy.alarms[1].alarm_name.clone();
    assert!(
        w.scaling
            .alarm_fired(&w.scope, &policy.policy_arn, &trigger(&low, 45.0, 10.0))
            .unwrap()
            .is_none()
    );
    assert_eq!(w.ecs.desired("default", "web"), Some(4));
    w.ecs.set(
        "default",
        "web",
        ServiceCapacity {
            desired: 4,
            running: 4,
            deployment_in_progress: false,
        },
    );
    let scaled_in = w
        .scaling
        .alarm_fired(&w.scope, &policy.policy_arn, &trigger(&low, 45.0, 10.0))
        .unwrap()
        .unwrap();
    assert_eq!(scaled_in.description, "Setting desired count to 1.");
    // Scale-in now waits out its cooldown (300 s by default).
    w.ecs.set(
        "default",
        "web",
        ServiceCapacity {
            desired: 3,
            running: 3,
            deployment_in_progress: false,
        },
    );
    assert!(
        w.scaling
            .alarm_fired(&w.scope, &policy.policy_arn, &trigger(&low, 45.0, 10.0))
            .unwrap()
            .is_none()
    );
    // At the maximum: a not-scaled activity, shown only when asked for.
    w.ecs.set(
        "default",
        "web",
        ServiceCapacity {
            desired: 10,
            running: 10,
            deployment_in_progress: false,
        },
    );
    let held = w
        .scaling
        .alarm_fired(&w.scope, &policy.policy_arn, &trigger(&high, 50.0, 100.0))
        .unwrap()
        .unwrap();
    assert_eq!(held.not_scaled_reasons[0].code, "AlreadyAtMaxCapacity");
    let filter = ActivityFilter {
        resource_id: Some(SERVICE.into()),
        ..ActivityFilter::default()
    };
    let (shown, _) = w
        .scaling
        .describe_scaling_activities(&w.scope, &filter)
        .unwrap();
    assert!(shown.iter().all(|a| a.not_scaled_reasons.is_empty()));
    assert_eq!(
        shown[0].description, "Setting desired count to 1.",
        "newest first"
    );
    let all = ActivityFilter {
        include_not_scaled: true,
        ..filter
    };
    let (with_held, _) = w
        .scaling
        .describe_scaling_activities(&w.scope, &all)
        .unwrap();
    assert_eq!(with_held[0].activity_id, held.activity_id);
    // A policy that is gone does nothing.
    w.scaling
        .delete_scaling_policy(&w.scope, SERVICE, "cpu")
        .unwrap();
    assert!(w.alarms.names().is_empty());
    assert!(
        w.scaling
            .alarm_fired(&w.scope, &policy.policy_arn, &trigger(&high, 50.0, 100.0))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_due_scheduled_action_sets_the_range_and_the_desired_count() {
    let w = world(1);
    register(&w, 1, 2);
    let now = berth_store::now_epoch();
    let at = schedule::civil_from_days((now as i64 + 5).div_euclid(86_400));
    let secs = (now as i64 + 5).rem_euclid(86_400);
    let when = format!(
        "at({:04}-{:02}-{:02}T{:02}:{:02}:{:02})",
        at.0,
        at.1,
        at.2,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    let action = w
        .scaling
        .put_scheduled_action(
            &w.scope,
            PutScheduledAction {
                name: "morning".into(),
                resource_id: SERVICE.into(),
                schedule: Some(when),
                action: Some(ScalableTargetAction {
                    min_capacity: Some(3),
                    max_capacity: Some(6),
                }),
                ..PutScheduledAction::default()
            },
        )
        .unwrap();
    let due = action.next_run.unwrap();
    assert_eq!(w.scaling.run_scheduled_actions(due - 1.0).unwrap(), 0);
    assert_eq!(w.scaling.run_scheduled_actions(due).unwrap(), 1);
    // Once only.
    assert_eq!(w.scaling.run_scheduled_actions(due + 60.0).unwrap(), 0);
    let t = w.scaling.scalable_target(&w.scope, SERVICE).unwrap();
    assert_eq!((t.min_capacity, t.max_capacity), (3, 6));
    assert_eq!(w.ecs.desired("default", "web"), Some(3));
    let texts = activity_texts(&w);
    assert!(
        texts.contains(
            &"Setting min capacity to 3 and max capacity to 6 | scheduled action name morning was triggered"
                .to_string()
        ),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"Setting desired count to 3. | minimum capacity was set to 3".to_string()),
        "{texts:?}"
    );
    w.scaling
        .delete_scheduled_action(&w.scope, SERVICE, "morning")
        .unwrap();
    assert!(matches!(
        w.scaling
            .delete_scheduled_action(&w.scope, SERVICE, "morning"),
        Err(AutoScalingError::ObjectNotFound(_))
    ));
}

#[test]
fn a_new_range_names_the_bound_that_moved_the_count() {
    let w = world(5);
    register(&w, 1, 10);
    register(&w, 1, 3);
    assert_eq!(w.ecs.desired("default", "web"), Some(3));
    register(&w, 4, 6);
    assert_eq!(w.ecs.desired("default", "web"), Some(4));
    let texts = activity_texts(&w);
    assert_eq!(
        texts,
        [
            "Setting desired count to 4. | minimum capacity was set to 4",
            "Setting desired count to 3. | maximum capacity was set to 3",
        ]
    );
}

#[test]
fn a_step_policy_picks_its_step_from_the_breach() {
    let w = world(2);
    register(&w, 1, 10);
    let policy = w
        .scaling
        .put_scaling_policy(
            &w.scope,
            PutScalingPolicy {
                policy_name: "steps".into(),
                resource_id: SERVICE.into(),
                policy_type: PolicyType::StepScaling,
                step: Some(StepScalingConfiguration {
                    adjustment_type: Some(AdjustmentType::ChangeInCapacity),
                    step_adjustments: vec![
                        StepAdjustment {
                            metric_interval_lower_bound: Some(0.0),
                            metric_interval_upper_bound: Some(20.0),
                            scaling_adjustment: 1,
                        },
                        StepAdjustment {
                            metric_interval_lower_bound: Some(20.0),
                            metric_interval_upper_bound: None,
                            scaling_adjustment: 3,
                        },
                    ],
                    min_adjustment_magnitude: None,
                    cooldown: Some(0),
                    metric_aggregation_type: Some("Average".into()),
                }),
                target_tracking: None,
            },
        )
        .unwrap();
    assert!(policy.alarms.is_empty(), "step policies own no alarms");
    let fired = |value| {
        w.scaling
            .alarm_fired(
                &w.scope,
                &policy.policy_arn,
                &trigger("my-alarm", 70.0, value),
            )
            .unwrap()
    };
    // 75 is 5 above the threshold: +1.
    assert_eq!(
        fired(75.0).unwrap().description,
        "Setting desired count to 3."
    );
    // 95 is 25 above: +3.
    let a = fired(95.0).unwrap();
    assert_eq!(a.description, "Setting desired count to 6.");
    assert_eq!(
        a.cause,
        "monitor alarm my-alarm in state ALARM triggered policy steps"
    );
    assert_eq!(w.ecs.desired("default", "web"), Some(6));
    // An ARN of a policy that never existed does nothing.
    let other = policy
        .policy_arn
        .replace("policyName/steps", "policyName/other");
    assert!(
        w.scaling
            .alarm_fired(&w.scope, &other, &trigger("my-alarm", 70.0, 95.0))
            .unwrap()
            .is_none()
    );
}

#[test]
fn activities_older_than_six_weeks_are_forgotten() {
    let w = world(1);
    register(&w, 2, 5);
    let filter = ActivityFilter::default();
    assert_eq!(
        w.scaling
            .describe_scaling_activities(&w.scope, &filter)
            .unwrap()
            .0
            .len(),
        1
    );
    let now = berth_store::now_epoch();
    assert_eq!(
        w.scaling.expire_activities(now + 41.0 * 86_400.0).unwrap(),
        0
    );
    assert_eq!(
        w.scaling.expire_activities(now + 43.0 * 86_400.0).unwrap(),
        1
    );
    assert!(
        w.scaling
            .describe_scaling_activities(&w.scope, &filter)
            .unwrap()
            .0
            .is_empty()
    );
    // The target itself stays.
    assert!(w.scaling.scalable_target(&w.scope, SERVICE).is_ok());
}

#[test]
fn high_resolution_request_count_alarms_read_their_counts_per_minute() {
    // Berth's own metrics every 2 s: predefined metrics' alarms evaluate 10-s periods.
    let w = world(2);
    let scaling = w.scaling.with_metrics_period(2);
    register(&w, 2, 10);
    let label = "app/web/0123456789abcdef/targetgroup/web/fedcba9876543210";
    let policy = scaling
        .put_scaling_policy(
            &w.scope,
            PutScalingPolicy {
                policy_name: "requests".into(),
                resource_id: SERVICE.into(),
                policy_type: PolicyType::TargetTrackingScaling,
                step: None,
                target_tracking: Some(TargetTrackingConfiguration {
                    target_value: 600.0,
                    predefined_metric_specification: Some(PredefinedMetric {
                        predefined_metric_type: "ALBRequestCountPerTarget".into(),
                        resource_label: Some(label.into()),
                    }),
                    customized_metric_specification: None,
                    scale_out_cooldown: Some(0),
                    scale_in_cooldown: Some(0),
                    disable_scale_in: None,
                }),
            },
        )
        .unwrap();
    let high = w.alarms.get(&policy.alarms[0].alarm_name).unwrap();
    let low = w.alarms.get(&policy.alarms[1].alarm_name).unwrap();
    // 600 a minute is 100 in 10 s; AlarmLow at 90 % of that; AWS's datapoint counts.
    assert_eq!(
        (high.period, high.threshold, high.evaluation_periods),
        (Some(10), 100.0, 3)
    );
    assert_eq!(
        (low.period, low.threshold, low.evaluation_periods),
        (Some(10), 90.0, 15)
    );
    assert_eq!(high.statistic.as_deref(), Some("Sum"));
    assert_eq!(
        high.dimensions,
        vec![(
            "TargetGroup".to_string(),
            "targetgroup/web/fedcba9876543210".to_string()
        )]
    );
    // 300 requests per target in 10 s is 1,800 a minute: three times the target, 2 → 6.
    scaling
        .alarm_fired(
            &w.scope,
            &policy.policy_arn,
            &trigger(&high.alarm_name, 100.0, 300.0),
        )
        .unwrap()
        .unwrap();
    assert_eq!(w.ecs.desired("default", "web"), Some(6));
    // 10 in 10 s is 60 a minute, a tenth of the target: 6 → 1, held at the minimum 2.
    scaling
        .alarm_fired(
            &w.scope,
            &policy.policy_arn,
            &trigger(&low.alarm_name, 90.0, 10.0),
        )
        .unwrap()
        .unwrap();
    assert_eq!(w.ecs.desired("default", "web"), Some(2));
    // CPU is an average: the same period, the target as it is.
    let cpu = scaling
        .put_scaling_policy(
            &w.scope,
            PutScalingPolicy {
                policy_name: "cpu".into(),
                resource_id: SERVICE.into(),
                policy_type: PolicyType::TargetTrackingScaling,
                step: None,
                target_tracking: Some(TargetTrackingConfiguration {
                    target_value: 50.0,
                    predefined_metric_specification: Some(PredefinedMetric {
                        predefined_metric_type: "ECSServiceAverageCPUUtilization".into(),
                        resource_label: None,
                    }),
                    customized_metric_specification: None,
                    scale_out_cooldown: None,
                    scale_in_cooldown: None,
                    disable_scale_in: Some(true),
                }),
            },
        )
        .unwrap();
    let cpu_high = w.alarms.get(&cpu.alarms[0].alarm_name).unwrap();
    assert_eq!((cpu_high.period, cpu_high.threshold), (Some(10), 50.0));
    // Metrics every 60 s (the default) keep AWS's minute; every 3 s, 30-s periods.
    assert_eq!(policies::alarm_period_for(60), 60);
    assert_eq!(policies::alarm_period_for(3), 30);
    assert_eq!(policies::alarm_period_for(1), 10);
}
