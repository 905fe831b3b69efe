//! The scaling planner, pure: a policy, the alarm's breach and the target's state in, the
//! new desired count (or why there is none) out. Step scaling picks its step from the
//! breach (value − threshold); target tracking scales proportionally (current × value /
//! target, rounded up both ways: out to reach the target, in only as far as the metric
//! stays at or below it). Cooldowns: during a scale-out cooldown, the capacity the last
//! scale-out added counts towards the next (it scales from the capacity before it, and only
//! further out); scale-in waits out its cooldown; scale-out is never held by a scale-in
//! cooldown. No scale-in while the service has a deployment in progress.

use crate::ecs_port::ServiceCapacity;
use crate::policies::DEFAULT_COOLDOWN;
use crate::records::{
    AdjustmentType, NotScaledReason, StepAdjustment, StepScalingConfiguration, SuspendedState,
    TargetTrackingConfiguration,
};

/// The scalable target's state as the planner sees it.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub min: i64,
    pub max: i64,
    pub capacity: ServiceCapacity,
    pub suspended: SuspendedState,
    pub now: f64,
    /// The last scale-out: (when, the desired count it scaled from).
    pub last_scale_out: Option<(f64, i64)>,
    pub last_scale_in: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
pub enum PolicyConfig<'a> {
    Step(&'a StepScalingConfiguration),
    Tracking(&'a TargetTrackingConfiguration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Scale {
        from: i64,
        to: i64,
        direction: Direction,
    },
    NotScaled(NotScaled),
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotScaled {
    /// The alarm gave no datapoint, or no step covers the breach.
    NoAdjustment,
    Suspended(Direction),
    Cooldown(Direction),
    DeploymentInProgress,
    /// Target tracking: scaling in would put the metric above the target; or scale-in is
    /// disabled.
    WithinTarget,
    AlreadyAtMaxCapacity {
        max: i64,
        current: i64,
    },
    AlreadyAtMinCapacity {
        min: i64,
        current: i64,
    },
    AlreadyAtDesiredCapacity {
        current: i64,
    },
}

impl NotScaled {
    /// The reason as AWS shows it on a not-scaled activity, for those it records.
    pub fn reason(&self) -> Option<NotScaledReason> {
        let reason = |code: &str, min, max, current| NotScaledReason {
            code: code.to_string(),
            min_capacity: min,
            max_capacity: max,
            current_capacity: Some(current),
        };
        match *self {
            NotScaled::AlreadyAtMaxCapacity { max, current } => {
                Some(reason("AlreadyAtMaxCapacity", None, Some(max), current))
            }
            NotScaled::AlreadyAtMinCapacity { min, current } => {
                Some(reason("AlreadyAtMinCapacity", Some(min), None, current))
            }
            NotScaled::AlreadyAtDesiredCapacity { current } => {
                Some(reason("AlreadyAtDesiredCapacity", None, None, current))
            }
            _ => None,
        }
    }
}

/// The step whose interval holds `breach`: above the threshold the lower bound is
/// inclusive and the upper exclusive; below it, the other way round (AWS's rule).
pub fn select_step(steps: &[StepAdjustment], breach: f64) -> Option<&StepAdjustment> {
    steps.iter().find(|s| {
        let lower = s.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY);
        let upper = s.metric_interval_upper_bound.unwrap_or(f64::INFINITY);
        if breach >= 0.0 {
            lower <= breach && breach < upper
        } else {
            lower < breach && breach <= upper
        }
    })
}

/// A step's new capacity from `base`.
pub fn adjust(config: &StepScalingConfiguration, step: &StepAdjustment, base: i64) -> i64 {
    let adjustment = step.scaling_adjustment;
    match config
        .adjustment_type
        .unwrap_or(AdjustmentType::ChangeInCapacity)
    {
        AdjustmentType::ChangeInCapacity => base + adjustment,
        AdjustmentType::ExactCapacity => adjustment,
        AdjustmentType::PercentChangeInCapacity => {
            let change = base as f64 * adjustment as f64 / 100.0;
            // Above 1 rounds down, below -1 rounds up; between -1 and 1 is ±1.
            let mut change = if change > 1.0 {
                change.floor() as i64
            } else if change < -1.0 {
                change.ceil() as i64
            } else if change > 0.0 {
                1
            } else if change < 0.0 {
                -1
            } else {
                0
            };
            if let Some(magnitude) = config.min_adjustment_magnitude
                && change != 0
                && change.abs() < magnitude
            {
                change = change.signum() * magnitude;
            }
            base + change
        }
    }
}

/// Plans the policy's answer to its alarm breaching `threshold` with `value`.
pub fn plan(
    input: &PlanInput,
    policy: PolicyConfig<'_>,
    threshold: f64,
    value: Option<f64>,
) -> Plan {
    let Some(value) = value else {
        return Plan::NotScaled(NotScaled::NoAdjustment);
    };
    let current = input.capacity.desired;
    let (out_cooldown, in_cooldown) = match policy {
        PolicyConfig::Step(c) => {
            let cooldown = c.cooldown.unwrap_or(DEFAULT_COOLDOWN);
            (cooldown, cooldown)
        }
        PolicyConfig::Tracking(c) => (
            c.scale_out_cooldown.unwrap_or(DEFAULT_COOLDOWN),
            c.scale_in_cooldown.unwrap_or(DEFAULT_COOLDOWN),
        ),
    };
    // During a scale-out cooldown the next scale-out counts the capacity the last one
    // added: it scales from where that one started.
    let out_base = match input.last_scale_out {
        Some((at, from)) if input.now < at + out_cooldown as f64 => from.min(current),
        _ => current,
    };
    let (direction, wanted) = match policy {
        PolicyConfig::Step(c) => {
            let Some(step) = select_step(&c.step_adjustments, value - threshold) else {
                return Plan::NotScaled(NotScaled::NoAdjustment);
            };
            let to_out = adjust(c, step, out_base);
            let to_in = adjust(c, step, current);
            if to_out > current {
                (Direction::Out, to_out)
            } else if to_in < current {
                (Direction::In, to_in)
            } else if to_in > current || step.scaling_adjustment > 0 {
                (Direction::Out, to_out.max(current))
            } else {
                (Direction::In, to_in.min(current))
            }
        }
        PolicyConfig::Tracking(c) => {
            let ratio = value / c.target_value;
            if value > c.target_value {
                let to = ((out_base.max(1) as f64) * ratio).ceil() as i64;
                (Direction::Out, to.max(current))
            } else {
                if c.disable_scale_in.unwrap_or(false) {
                    return Plan::NotScaled(NotScaled::WithinTarget);
                }
                let to = ((current as f64) * ratio).ceil() as i64;
                if to >= current && current > input.min {
                    return Plan::NotScaled(NotScaled::WithinTarget);
                }
                (Direction::In, to.min(current))
            }
        }
    };
    match direction {
        Direction::Out if input.suspended.dynamic_scaling_out_suspended => {
            return Plan::NotScaled(NotScaled::Suspended(Direction::Out));
        }
        Direction::In if input.suspended.dynamic_scaling_in_suspended => {
            return Plan::NotScaled(NotScaled::Suspended(Direction::In));
        }
        Direction::In if input.capacity.deployment_in_progress => {
            return Plan::NotScaled(NotScaled::DeploymentInProgress);
        }
        Direction::In
            if input
                .last_scale_in
                .is_some_and(|at| input.now < at + in_cooldown as f64) =>
        {
            return Plan::NotScaled(NotScaled::Cooldown(Direction::In));
        }
        _ => {}
    }
    let to = wanted.clamp(input.min, input.max.max(input.min));
    if to == current {
        return Plan::NotScaled(match direction {
            Direction::Out if current >= input.max => NotScaled::AlreadyAtMaxCapacity {
                max: input.max,
                current,
            },
            Direction::In if current <= input.min => NotScaled::AlreadyAtMinCapacity {
                min: input.min,
                current,
            },
            Direction::Out if input.last_scale_out.is_some() && out_base != current => {
                NotScaled::Cooldown(Direction::Out)
            }
            _ => NotScaled::AlreadyAtDesiredCapacity { current },
        });
    }
    Plan::Scale {
        from: current,
        to,
        direction: if to > current {
            Direction::Out
        } else {
            Direction::In
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::PredefinedMetric;

    fn input(desired: i64) -> PlanInput {
        PlanInput {
            min: 1,
            max: 10,
            capacity: ServiceCapacity {
                desired,
                running: desired,
                deployment_in_progress: false,
            },
            suspended: SuspendedState::default(),
            now: 10_000.0,
            last_scale_out: None,
            last_scale_in: None,
        }
    }

    fn step(lower: Option<f64>, upper: Option<f64>, adjustment: i64) -> StepAdjustment {
        StepAdjustment {
            metric_interval_lower_bound: lower,
            metric_interval_upper_bound: upper,
            scaling_adjustment: adjustment,
        }
    }

    fn steps(kind: AdjustmentType) -> StepScalingConfiguration {
        StepScalingConfiguration {
            adjustment_type: Some(kind),
            step_adjustments: vec![
                step(Some(0.0), Some(10.0), 1),
                step(Some(10.0), Some(20.0), 2),
                step(Some(20.0), None, 3),
            ],
            min_adjustment_magnitude: None,
            cooldown: Some(60),
            metric_aggregation_type: None,
        }
    }

    fn tracking(target: f64) -> TargetTrackingConfiguration {
        TargetTrackingConfiguration {
            target_value: target,
            predefined_metric_specification: Some(PredefinedMetric {
                predefined_metric_type: "ECSServiceAverageCPUUtilization".into(),
                resource_label: None,
            }),
            customized_metric_specification: None,
            scale_out_cooldown: None,
            scale_in_cooldown: None,
            disable_scale_in: None,
        }
    }

    fn scale(from: i64, to: i64) -> Plan {
        Plan::Scale {
            from,
            to,
            direction: if to > from {
                Direction::Out
            } else {
                Direction::In
            },
        }
    }

    #[test]
    fn step_selection_follows_the_bounds_on_either_side_of_the_threshold() {
        let up = steps(AdjustmentType::ChangeInCapacity).step_adjustments;
        assert_eq!(select_step(&up, 0.0).unwrap().scaling_adjustment, 1);
        assert_eq!(select_step(&up, 9.99).unwrap().scaling_adjustment, 1);
        assert_eq!(select_step(&up, 10.0).unwrap().scaling_adjustment, 2);
        assert_eq!(select_step(&up, 500.0).unwrap().scaling_adjustment, 3);
        assert!(select_step(&up, -1.0).is_none());
        // Below the threshold: lower exclusive, upper inclusive.
        let down = vec![
            step(None, Some(-10.0), -2),
            step(Some(-10.0), Some(0.0), -1),
        ];
        assert_eq!(select_step(&down, -10.0).unwrap().scaling_adjustment, -2);
        assert_eq!(select_step(&down, -9.0).unwrap().scaling_adjustment, -1);
        assert_eq!(select_step(&down, -0.5).unwrap().scaling_adjustment, -1);
    }

    #[test]
    fn step_adjustment_types() {
        let change = steps(AdjustmentType::ChangeInCapacity);
        let p = PolicyConfig::Step(&change);
        assert_eq!(plan(&input(2), p, 50.0, Some(65.0)), scale(2, 4));
        let exact = steps(AdjustmentType::ExactCapacity);
        assert_eq!(
            plan(&input(2), PolicyConfig::Step(&exact), 50.0, Some(71.0)),
            scale(2, 3)
        );
        let mut percent = steps(AdjustmentType::PercentChangeInCapacity);
        percent.step_adjustments = vec![step(Some(0.0), None, 50)];
        // 50 % of 5 is 2.5: rounded down to 2.
        assert_eq!(
            plan(&input(5), PolicyConfig::Step(&percent), 50.0, Some(60.0)),
            scale(5, 7)
        );
        // 50 % of 1 is 0.5: at least 1.
        assert_eq!(
            plan(&input(1), PolicyConfig::Step(&percent), 50.0, Some(60.0)),
            scale(1, 2)
        );
        percent.min_adjustment_magnitude = Some(4);
        assert_eq!(
            plan(&input(5), PolicyConfig::Step(&percent), 50.0, Some(60.0)),
            scale(5, 9)
        );
        let mut down = steps(AdjustmentType::PercentChangeInCapacity);
        down.step_adjustments = vec![step(None, Some(0.0), -30)];
        // -30 % of 8 is -2.4: rounded up to -2.
        assert_eq!(
            plan(&input(8), PolicyConfig::Step(&down), 30.0, Some(10.0)),
            scale(8, 6)
        );
    }

    #[test]
    fn capacity_stays_within_min_and_max_and_says_why_when_it_cannot_move() {
        let change = steps(AdjustmentType::ChangeInCapacity);
        let p = PolicyConfig::Step(&change);
        assert_eq!(plan(&input(9), p, 50.0, Some(90.0)), scale(9, 10));
        assert_eq!(
            plan(&input(10), p, 50.0, Some(90.0)),
            Plan::NotScaled(NotScaled::AlreadyAtMaxCapacity {
                max: 10,
                current: 10
            })
        );
        let mut down = steps(AdjustmentType::ChangeInCapacity);
        down.step_adjustments = vec![step(None, Some(0.0), -5)];
        assert_eq!(
            plan(&input(3), PolicyConfig::Step(&down), 50.0, Some(10.0)),
            scale(3, 1)
        );
        assert_eq!(
            plan(&input(1), PolicyConfig::Step(&down), 50.0, Some(10.0)),
            Plan::NotScaled(NotScaled::AlreadyAtMinCapacity { min: 1, current: 1 })
        );
    }

    #[test]
    fn target_tracking_scales_proportionally() {
        let t = tracking(50.0);
        let p = PolicyConfig::Tracking(&t);
        // 4 tasks at 75 % for a 50 % target: 6.
        assert_eq!(plan(&input(4), p, 50.0, Some(75.0)), scale(4, 6));
        // 3 at 60 %: 3.6, rounded out to 4.
        assert_eq!(plan(&input(3), p, 50.0, Some(60.0)), scale(3, 4));
        // 8 at 20 %: 3.2 rounds to 4 (3 would put the metric above the target).
        assert_eq!(plan(&input(8), p, 45.0, Some(20.0)), scale(8, 4));
        // 4 at 40 %: 3.2 rounds to 4: no scale-in.
        assert_eq!(
            plan(&input(4), p, 45.0, Some(40.0)),
            Plan::NotScaled(NotScaled::WithinTarget)
        );
        let mut no_in = tracking(50.0);
        no_in.disable_scale_in = Some(true);
        assert_eq!(
            plan(&input(8), PolicyConfig::Tracking(&no_in), 45.0, Some(20.0)),
            Plan::NotScaled(NotScaled::WithinTarget)
        );
    }

    #[test]
    fn cooldowns_suspension_and_deployments() {
        let t = tracking(50.0);
        let p = PolicyConfig::Tracking(&t);
        // In a scale-out cooldown after 2 → 4, 100 % asks for 2 × 2 = 4: nothing more.
        let mut state = input(4);
        state.last_scale_out = Some((state.now - 60.0, 2));
        assert_eq!(
            plan(&state, p, 50.0, Some(100.0)),
            Plan::NotScaled(NotScaled::Cooldown(Direction::Out))
        );
        // 150 % asks for 6: it scales on from 4.
        assert_eq!(plan(&state, p, 50.0, Some(150.0)), scale(4, 6));
        // After the cooldown it scales from the current capacity.
        state.last_scale_out = Some((state.now - 301.0, 2));
        assert_eq!(plan(&state, p, 50.0, Some(100.0)), scale(4, 8));
        // Scale-in waits for its cooldown; scale-out does not.
        let mut state = input(8);
        state.last_scale_in = Some(state.now - 10.0);
        assert_eq!(
            plan(&state, p, 45.0, Some(20.0)),
            Plan::NotScaled(NotScaled::Cooldown(Direction::In))
        );
        assert_eq!(plan(&state, p, 50.0, Some(60.0)), scale(8, 10));
        // No scale-in during a deployment; scale-out goes on.
        let mut state = input(8);
        state.capacity.deployment_in_progress = true;
        assert_eq!(
            plan(&state, p, 45.0, Some(20.0)),
            Plan::NotScaled(NotScaled::DeploymentInProgress)
        );
        assert_eq!(plan(&state, p, 50.0, Some(60.0)), scale(8, 10));
        // Suspended directions.
        let mut state = input(4);
        state.suspended.dynamic_scaling_out_suspended = true;
        assert_eq!(
            plan(&state, p, 50.0, Some(100.0)),
            Plan::NotScaled(NotScaled::Suspended(Direction::Out))
        );
        state.suspended = SuspendedState {
            dynamic_scaling_in_suspended: true,
            ..SuspendedState::default()
        };
        assert_eq!(
            plan(&input(8), p, 45.0, Some(20.0)),
            scale(8, 4),
            "only the suspended target is held"
        );
        let mut held = input(8);
        held.suspended = state.suspended.clone();
        assert_eq!(
            plan(&held, p, 45.0, Some(20.0)),
            Plan::NotScaled(NotScaled::Suspended(Direction::In))
        );
        assert_eq!(
            plan(&input(4), p, 50.0, None),
            Plan::NotScaled(NotScaled::NoAdjustment)
        );
    }
}
