//! EC2 Auto Scaling's texts: the causes and descriptions of activities, with its
//! timestamps (`2026-12-07T13:18:34Z`).

/// An activity cause's timestamp.
pub(crate) fn at(epoch: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub(crate) fn created(now: f64, desired: i64) -> String {
    format!(
        "At {} a user request created an AutoScalingGroup changing the desired capacity from 0 to {desired}.",
        at(now)
    )
}

pub(crate) fn updated(now: f64, min: i64, max: i64, old: i64, desired: i64) -> String {
    format!(
        "At {} a user request update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {desired} changing the desired capacity from {old} to {desired}.",
        at(now)
    )
}

pub(crate) fn set_desired(now: f64, old: i64, desired: i64) -> String {
    format!(
        "At {} a user request explicitly set group desired capacity changing the desired capacity from {old} to {desired}.",
        at(now)
    )
}

/// Berth's cause for a change by an ECS capacity provider's managed scaling (AWS names the
/// target tracking alarm and policy ECS made; Berth has neither, docs/capacity-providers.md).
pub(crate) fn managed_scaling(now: f64, provider: &str, old: i64, desired: i64) -> String {
    format!(
        "At {} the managed scaling of ECS capacity provider {provider} changed the desired capacity from {old} to {desired}.",
        at(now)
    )
}

pub(crate) fn force_deleted(now: f64, old: i64) -> String {
    format!(
        "At {} a user request deleted the AutoScalingGroup changing the desired capacity from {old} to 0.",
        at(now)
    )
}

pub(crate) fn launched(now: f64, from: usize, to: usize) -> String {
    format!(
        "At {} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {from} to {to}.",
        at(now)
    )
}

pub(crate) fn shrunk(now: f64, from: usize, to: usize, id: &str) -> String {
    format!(
        "At {0} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {from} to {to}.  At {0} instance {id} was selected for termination.",
        at(now)
    )
}

pub(crate) fn user_terminated(now: f64, id: &str, shrink: Option<(i64, i64)>) -> String {
    match shrink {
        Some((from, to)) => format!(
            "At {} instance {id} was taken out of service in response to a user request, shrinking the capacity from {from} to {to}.",
            at(now)
        ),
        None => format!(
            "At {} instance {id} was taken out of service in response to a user request.",
            at(now)
        ),
    }
}

pub(crate) fn launching(id: &str) -> String {
    format!("Launching a new EC2 instance: {id}")
}

pub(crate) fn terminating(id: &str) -> String {
    format!("Terminating EC2 instance: {id}")
}

/// A cause: the reason the desired capacity changed (if any), then what followed.
pub(crate) fn cause(first: Option<&str>, then: &str) -> String {
    match first {
        Some(first) => format!("{first}  {then}"),
        None => then.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_read_as_ec2_auto_scaling_writes_them() {
        assert_eq!(at(0.0), "1970-01-01T00:00:00Z");
        let update = updated(60.0, 0, 3, 2, 0);
        assert_eq!(
            update,
            "At 1970-01-01T00:01:00Z a user request update of AutoScalingGroup constraints to min: 0, max: 3, desired: 0 changing the desired capacity from 2 to 0."
        );
        assert_eq!(
            cause(Some(&update), &shrunk(61.0, 2, 1, "i-1")),
            format!(
                "{update}  At 1970-01-01T00:01:01Z an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from 2 to 1.  At 1970-01-01T00:01:01Z instance i-1 was selected for termination."
            )
        );
    }
}
