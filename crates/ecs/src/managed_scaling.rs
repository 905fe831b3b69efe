//! Managed scaling of an Auto Scaling group capacity provider, pure: the provider's
//! instances and tasks in, ECS's `CapacityProviderReservation` and the group's next desired
//! capacity out. As the ECS developer guide describes it: M is the number of instances the
//! provider's tasks need (those running tasks, plus a binpack estimate for the tasks waiting
//! in PROVISIONING), N the group's running instances, and the reservation M / N × 100
//! (200 when M > 0 and N = 0, 100 when both are 0). ECS tracks `targetCapacity` with a
//! target tracking policy on the group; Berth sets the desired capacity directly: out at
//! once (by at least `minimumScalingStepSize`, at most `maximumScalingStepSize` instances),
//! in only after the reservation stayed below the target for a while
//! (docs/capacity-providers.md).

/// CPU units and MiB of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
}

/// One of the provider's container instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLoad {
    pub registered: Resources,
    /// It runs (or has been given) at least one of the provider's tasks.
    pub busy: bool,
}

/// What the planner reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScalingInput {
    pub instances: Vec<InstanceLoad>,
    /// The needs of the tasks waiting in PROVISIONING.
    pub waiting: Vec<Resources>,
    /// N: the group's running instances (Pending and InService).
    pub running_instances: i64,
    pub desired_capacity: i64,
    pub min_size: i64,
    pub max_size: i64,
    pub target_capacity: i64,
    pub minimum_scaling_step_size: i64,
    pub maximum_scaling_step_size: i64,
    /// The group spans more than one instance type or Availability Zone: ECS then scales
    /// out by exactly `minimumScalingStepSize`, ignoring the maximum step and the demand
    /// (the API reference's ManagedScaling).
    pub exact_minimum_step: bool,
    /// Since when (epoch seconds) the reservation has been below the target, if it is.
    pub below_target_since: Option<f64>,
    pub now: f64,
    /// How long the reservation must stay below the target before scaling in.
    pub scale_in_after: f64,
}

/// What the planner decides.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingDecision {
    /// M.
    pub instances_needed: i64,
    /// CapacityProviderReservation, in percent.
    pub reservation: f64,
    /// The group's new desired capacity, when it changes.
    pub desired_capacity: Option<i64>,
    /// Since when the reservation has been below the target (to carry to the next pass).
    pub below_target_since: Option<f64>,
}

/// ECS's CapacityProviderReservation for M instances needed and N running.
pub fn reservation(needed: i64, running: i64) -> f64 {
    match (needed, running) {
        (0, 0) => 100.0,
        (_, 0) => 200.0,
        (m, n) => m as f64 / n as f64 * 100.0,
    }
}

/// How many fresh instances of `shape` the waiting tasks need, first fit by decreasing
/// memory; with no instance to take the shape from (the group has none yet), one.
pub fn instances_for_waiting(waiting: &[Resources], shape: Option<Resources>) -> i64 {
    if waiting.is_empty() {
        return 0;
    }
    let Some(shape) = shape else {
        return 1;
    };
    let mut tasks: Vec<Resources> = waiting.to_vec();
    tasks.sort_by_key(|t| std::cmp::Reverse((t.memory, t.cpu)));
    let mut free: Vec<Resources> = Vec::new();
    for t in tasks {
        match free
            .iter_mut()
            .find(|f| f.cpu >= t.cpu && f.memory >= t.memory)
        {
            Some(f) => {
                f.cpu -= t.cpu;
                f.memory -= t.memory;
            }
            // A task bigger than an instance still takes one (it never fits; it times out).
            None => free.push(Resources {
                cpu: (shape.cpu - t.cpu).max(0),
                memory: (shape.memory - t.memory).max(0),
            }),
        }
    }
    free.len() as i64
}

/// One pass of managed scaling.
pub fn plan(input: &ScalingInput) -> ScalingDecision {
    let shape = input
        .instances
        .iter()
        .map(|i| i.registered)
        .max_by_key(|r| (r.memory, r.cpu));
    let busy = input.instances.iter().filter(|i| i.busy).count() as i64;
    let needed = busy + instances_for_waiting(&input.waiting, shape);
    let reservation = reservation(needed, input.running_instances);
    let target = input.target_capacity.clamp(1, 100);
    // The instances that put the reservation at the target: ceil(M × 100 / target).
    let wanted = (needed * 100 + target - 1) / target;
    let current = input.desired_capacity;
    let below = reservation < target as f64;
    let below_target_since = below.then(|| input.below_target_since.unwrap_or(input.now));
    let desired = if wanted > current && reservation > target as f64 {
        let minimum = input.minimum_scaling_step_size.max(1);
        let step = if input.exact_minimum_step {
            minimum
        } else {
            (wanted - current).clamp(minimum, input.maximum_scaling_step_size.max(minimum))
        };
        Some((current + step).min(input.max_size))
    } else if wanted < current
        && below
        && below_target_since.is_some_and(|since| input.now - since >= input.scale_in_after)
    {
        Some(wanted.max(input.min_size))
    } else {
        None
    };
    ScalingDecision {
        instances_needed: needed,
        reservation,
        desired_capacity: desired.filter(|d| *d != current),
        below_target_since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Resources = Resources {
        cpu: 1024,
        memory: 2048,
    };

    fn input() -> ScalingInput {
        ScalingInput {
            min_size: 0,
            max_size: 10,
            target_capacity: 100,
            minimum_scaling_step_size: 1,
            maximum_scaling_step_size: 10_000,
            now: 1_000.0,
            scale_in_after: 900.0,
            ..ScalingInput::default()
        }
    }

    fn instance(busy: bool) -> InstanceLoad {
        InstanceLoad {
            registered: SHAPE,
            busy,
        }
    }

    #[test]
    fn reservation_follows_the_developer_guide() {
        // "N = 0 and M = 0": 100; "N = 0 and M > 0": 200.
        assert_eq!(reservation(0, 0), 100.0);
        assert_eq!(reservation(3, 0), 200.0);
        // Two instances needed, four running: 50 %; four needed, two running: 200 %.
        assert_eq!(reservation(2, 4), 50.0);
        assert_eq!(reservation(4, 2), 200.0);
        assert_eq!(reservation(3, 3), 100.0);
    }

    #[test]
    fn scales_out_from_zero_by_the_minimum_step() {
        let mut i = input();
        i.waiting = vec![Resources {
            cpu: 256,
            memory: 512,
        }];
        let d = plan(&i);
        assert_eq!(d.instances_needed, 1);
        assert_eq!(d.reservation, 200.0);
        assert_eq!(d.desired_capacity, Some(1));
        i.minimum_scaling_step_size = 2;
        assert_eq!(plan(&i).desired_capacity, Some(2));
    }

    #[test]
    fn waiting_tasks_are_binpacked_on_the_instances_shape() {
        let small = Resources {
            cpu: 256,
            memory: 512,
        };
        // Four 512 MiB tasks fill one 2048 MiB instance; a fifth needs another.
        assert_eq!(instances_for_waiting(&[small; 4], Some(SHAPE)), 1);
        assert_eq!(instances_for_waiting(&[small; 5], Some(SHAPE)), 2);
        assert_eq!(instances_for_waiting(&[small; 5], None), 1);
        let mut i = input();
        i.instances = vec![instance(true), instance(true)];
        i.running_instances = 2;
        i.desired_capacity = 2;
        i.waiting = vec![small; 5];
        let d = plan(&i);
        assert_eq!(d.instances_needed, 4);
        assert_eq!(d.reservation, 200.0);
        assert_eq!(d.desired_capacity, Some(4));
    }

    #[test]
    fn step_sizes_bound_a_scale_out() {
        let mut i = input();
        i.instances = vec![instance(true)];
        i.running_instances = 1;
        i.desired_capacity = 1;
        i.waiting = vec![SHAPE; 6];
        i.maximum_scaling_step_size = 2;
        assert_eq!(plan(&i).desired_capacity, Some(3));
        // Never above the group's max.
        i.maximum_scaling_step_size = 100;
        i.max_size = 4;
        assert_eq!(plan(&i).desired_capacity, Some(4));
        // A group over several zones: exactly the minimum step, whatever the demand.
        i.max_size = 10;
        i.exact_minimum_step = true;
        i.minimum_scaling_step_size = 2;
        assert_eq!(plan(&i).desired_capacity, Some(3));
    }

    #[test]
    fn a_target_below_100_keeps_spare_instances() {
        let mut i = input();
        i.instances = vec![instance(true); 4];
        i.running_instances = 4;
        i.desired_capacity = 4;
        i.target_capacity = 80;
        let d = plan(&i);
        // 4 / 4 = 100 % > 80 %: ceil(4 × 100 / 80) = 5.
        assert_eq!(d.reservation, 100.0);
        assert_eq!(d.desired_capacity, Some(5));
    }

    #[test]
    fn scales_in_only_after_the_reservation_stayed_low() {
        let mut i = input();
        i.instances = vec![instance(true), instance(false), instance(false)];
        i.running_instances = 3;
        i.desired_capacity = 3;
        let first = plan(&i);
        assert!((first.reservation - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(first.desired_capacity, None);
        assert_eq!(first.below_target_since, Some(1_000.0));
        i.below_target_since = first.below_target_since;
        i.now = 1_899.0;
        assert_eq!(plan(&i).desired_capacity, None);
        i.now = 1_900.0;
        assert_eq!(plan(&i).desired_capacity, Some(1));
    }

    #[test]
    fn back_to_zero_when_nothing_runs_and_min_is_zero() {
        let mut i = input();
        i.instances = vec![instance(false)];
        i.running_instances = 1;
        i.desired_capacity = 1;
        i.below_target_since = Some(0.0);
        let d = plan(&i);
        assert_eq!(d.reservation, 0.0);
        assert_eq!(d.desired_capacity, Some(0));
        // Not below the group's min.
        i.min_size = 1;
        assert_eq!(plan(&i).desired_capacity, None);
        // Nothing needed and nothing running: 100 %, nothing to do.
        let empty = input();
        let d = plan(&empty);
        assert_eq!((d.reservation, d.desired_capacity), (100.0, None));
    }
}
