//! The service scheduler's decisions for a service with the EXTERNAL deployment controller,
//! pure: its task sets and tasks as stored, in; what to start and stop, and each task set's
//! counts and stability, out. The external controller decides the rollout (it creates task
//! sets, scales them and picks the PRIMARY one); the scheduler only keeps each task set at
//! its computed desired count, `ceil(service desiredCount × scale / 100)`, as ECS does.
//!
//! - a task belongs to the task set whose id is its `startedBy`; tasks of no task set (a
//!   task set deleted and gone) are stopped;
//! - a task set with fewer live tasks than its computed count starts the difference; one
//!   with more stops the excess (pending ones first, then spread, never a protected one);
//! - a deleted (DRAINING) task set stops all its tasks and is *drained* once none is left;
//! - a task set is STEADY_STATE when its computed count of tasks is RUNNING and nothing of
//!   it is pending or being started or stopped, STABILIZING otherwise.

use super::{REASON_SCALED_IN, TaskPhase, TaskView, not_stopped, pick_victims};

/// ECS's stop reason for the tasks of a deleted task set.
pub const REASON_TASK_SET_DELETED: &str = "Task set is being deleted";

/// A task set as the planner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSetView {
    pub id: String,
    /// Its `scale.value`, a percentage of the service's desired count.
    pub scale_percent: f64,
    /// Deleted (DRAINING): its tasks are to go.
    pub draining: bool,
}

/// A task set's state after the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSetStatus {
    pub id: String,
    pub computed_desired_count: u32,
    pub running: u32,
    pub pending: u32,
    pub steady: bool,
    /// DRAINING and without tasks not yet stopped: to be removed from the service.
    pub drained: bool,
}

/// What the reconciler should do now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskSetPlan {
    /// (task set id, tasks to start for it).
    pub start: Vec<(String, u32)>,
    /// (task id, stop reason).
    pub stop: Vec<(String, String)>,
    /// The task sets, in the order given.
    pub task_sets: Vec<TaskSetStatus>,
}

/// `ceil(desired × scale / 100)`: ECS rounds a task set's computed desired count up.
pub fn computed_desired_count(desired: u32, scale_percent: f64) -> u32 {
    let exact = f64::from(desired) * scale_percent.clamp(0.0, 100.0) / 100.0;
    // A product like 3 × 33.3333 / 100 lands a hair above a whole number only through
    // rounding: a millionth of slack keeps it from asking for one task more.
    (exact - 1e-6).ceil().max(0.0) as u32
}

/// Plans one round for an EXTERNAL service.
pub fn plan_task_sets(desired: u32, sets: &[TaskSetView], tasks: &[TaskView]) -> TaskSetPlan {
    let mut plan = TaskSetPlan::default();
    let live =
        |t: &&TaskView| matches!(t.phase, TaskPhase::Pending | TaskPhase::Running) && !t.lost;
    // Tasks of no task set.
    for t in tasks.iter().filter(live) {
        if !sets.iter().any(|s| s.id == t.deployment) {
            plan.stop
                .push((t.id.clone(), REASON_TASK_SET_DELETED.to_owned()));
        }
    }
    for set in sets {
        let mine: Vec<&TaskView> = tasks.iter().filter(|t| t.deployment == set.id).collect();
        let live_tasks: Vec<&TaskView> = mine.iter().copied().filter(live).collect();
        let computed = if set.draining {
            0
        } else {
            computed_desired_count(desired, set.scale_percent)
        };
        let mut stopping: Vec<String> = Vec::new();
        let mut starting = 0;
        if set.draining {
            for t in &live_tasks {
                stopping.push(t.id.clone());
                plan.stop
                    .push((t.id.clone(), REASON_TASK_SET_DELETED.to_owned()));
            }
        } else if live_tasks.len() > computed as usize {
            let unprotected: Vec<&TaskView> = live_tasks
                .iter()
                .copied()
                .filter(|t| !t.protected)
                .collect();
            let reason = REASON_SCALED_IN.replace("{}", &set.id);
            for id in pick_victims(&unprotected, live_tasks.len() - computed as usize) {
                stopping.push(id.clone());
                plan.stop.push((id, reason.clone()));
            }
        } else if live_tasks.len() < computed as usize {
            starting = computed - live_tasks.len() as u32;
            plan.start.push((set.id.clone(), starting));
        }
        let (mut running, mut pending) = (0, 0);
        for t in live_tasks.iter().filter(|t| !stopping.contains(&t.id)) {
            match t.phase {
                TaskPhase::Running => running += 1,
                _ => pending += 1,
            }
        }
        let any_stopping = mine
            .iter()
            .any(|t| not_stopped(t) && t.phase == TaskPhase::Stopping);
        plan.task_sets.push(TaskSetStatus {
            id: set.id.clone(),
            computed_desired_count: computed,
            running,
            pending,
            steady: running == computed
                && pending == 0
                && starting == 0
                && stopping.is_empty()
                && !any_stopping,
            drained: set.draining && !mine.iter().any(not_stopped),
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::TaskHealth;

    fn task(id: &str, set: &str, phase: TaskPhase) -> TaskView {
        TaskView {
            id: id.into(),
            deployment: set.into(),
            phase,
            health: TaskHealth::None,
            started_at: Some(1.0),
            stopped_at: None,
            created_at: 0.0,
            failed: false,
            unhealthy_stop: false,
            draining: false,
            lost: false,
            instance: "i-a".into(),
            protected: false,
        }
    }

    fn set(id: &str, scale: f64) -> TaskSetView {
        TaskSetView {
            id: id.into(),
            scale_percent: scale,
            draining: false,
        }
    }

    #[test]
    fn computed_counts_round_up() {
        assert_eq!(computed_desired_count(3, 50.0), 2);
        assert_eq!(computed_desired_count(5, 12.0), 1);
        assert_eq!(computed_desired_count(4, 100.0), 4);
        assert_eq!(computed_desired_count(3, 100.0 / 3.0), 1);
        assert_eq!(computed_desired_count(4, 0.0), 0);
        assert_eq!(computed_desired_count(0, 100.0), 0);
    }

    #[test]
    fn each_task_set_is_kept_at_its_computed_count() {
        let tasks = vec![
            task("a1", "blue", TaskPhase::Running),
            task("a2", "blue", TaskPhase::Running),
            task("a3", "blue", TaskPhase::Running),
            task("b1", "green", TaskPhase::Pending),
            task("x1", "gone", TaskPhase::Running),
        ];
        // desired 4: blue at 50% wants 2 (one too many), green at 100% wants 4 (3 more).
        let plan = plan_task_sets(4, &[set("blue", 50.0), set("green", 100.0)], &tasks);
        assert_eq!(plan.start, vec![("green".to_string(), 3)]);
        let stopped: Vec<&str> = plan.stop.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(stopped.len(), 2, "{plan:?}");
        assert!(stopped.contains(&"x1"));
        assert_eq!(plan.task_sets[0].computed_desired_count, 2);
        assert_eq!(plan.task_sets[0].running, 2);
        assert!(!plan.task_sets[0].steady);
        assert_eq!(plan.task_sets[1].pending, 1);

        // Steady once the counts are met.
        let tasks = vec![
            task("a1", "blue", TaskPhase::Running),
            task("a2", "blue", TaskPhase::Running),
        ];
        let plan = plan_task_sets(4, &[set("blue", 50.0)], &tasks);
        assert!(plan.stop.is_empty() && plan.start.is_empty());
        assert!(plan.task_sets[0].steady);
    }

    #[test]
    fn a_deleted_task_set_stops_its_tasks_then_is_drained() {
        let mut draining = set("blue", 100.0);
        draining.draining = true;
        let tasks = vec![task("a1", "blue", TaskPhase::Running)];
        let plan = plan_task_sets(2, std::slice::from_ref(&draining), &tasks);
        assert_eq!(
            plan.stop,
            vec![("a1".to_string(), REASON_TASK_SET_DELETED.to_string())]
        );
        assert!(!plan.task_sets[0].drained);
        let tasks = vec![task("a1", "blue", TaskPhase::Stopped)];
        let plan = plan_task_sets(2, &[draining], &tasks);
        assert!(plan.task_sets[0].drained && plan.stop.is_empty());
    }
}
