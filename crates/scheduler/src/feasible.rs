//! Feasibility: can this instance take one more task of this request? A chain of small
//! checks in Nomad's style, cheapest and most decisive first, each returning the ECS
//! reason it fails with. The first failing check is the one a `Failure` reports.

use crate::types::{InstanceStatus, InstanceView, PlacementConstraint, Reason, TaskRequest};

/// Status first: a DRAINING or deregistered instance is out whatever else it has, and
/// saying so is more useful than a resource shortfall.
pub fn check_status(inst: &InstanceView) -> Result<(), Reason> {
    if inst.status == InstanceStatus::Active {
        Ok(())
    } else {
        Err(Reason::Inactive)
    }
}

/// Agent next: an instance without a connected agent cannot start anything (ECS `AGENT`).
pub fn check_agent(inst: &InstanceView) -> Result<(), Reason> {
    if inst.agent_connected {
        Ok(())
    } else {
        Err(Reason::Agent)
    }
}

/// CPU before memory, as ECS reports `RESOURCE:CPU` first when both are short.
pub fn check_cpu(inst: &InstanceView, task: &TaskRequest) -> Result<(), Reason> {
    if inst.remaining_cpu >= task.cpu {
        Ok(())
    } else {
        Err(Reason::Cpu)
    }
}

pub fn check_memory(inst: &InstanceView, task: &TaskRequest) -> Result<(), Reason> {
    if inst.remaining_memory >= task.memory {
        Ok(())
    } else {
        Err(Reason::Memory)
    }
}

/// Ports after the scalar resources: a set lookup per requested port.
pub fn check_tcp_ports(inst: &InstanceView, task: &TaskRequest) -> Result<(), Reason> {
    if task
        .tcp_ports
        .iter()
        .any(|p| inst.used_tcp_ports.contains(p))
    {
        Err(Reason::Ports)
    } else {
        Ok(())
    }
}

pub fn check_udp_ports(inst: &InstanceView, task: &TaskRequest) -> Result<(), Reason> {
    if task
        .udp_ports
        .iter()
        .any(|p| inst.used_udp_ports.contains(p))
    {
        Err(Reason::PortsUdp)
    } else {
        Ok(())
    }
}

/// distinctInstance reads the instance's group counts, which include tasks placed earlier
/// in the same plan (the plan updates its view of the instance as it goes).
pub fn check_distinct_instance(inst: &InstanceView, task: &TaskRequest) -> Result<(), Reason> {
    let distinct = task
        .placement_constraints
        .iter()
        .any(|c| matches!(c, PlacementConstraint::DistinctInstance));
    if distinct && inst.group_count(&task.group) > 0 {
        Err(Reason::DistinctInstance)
    } else {
        Ok(())
    }
}

/// memberOf last: it is the most expensive check (expression evaluation) and the engine
/// evaluates it once per request rather than once per task.
pub fn check_member_of(inst: &InstanceView, task: &TaskRequest) -> Result<(), Reason> {
    let ok = task.placement_constraints.iter().all(|c| match c {
        PlacementConstraint::MemberOf(e) => e.matches(inst),
        PlacementConstraint::DistinctInstance => true,
    });
    if ok { Ok(()) } else { Err(Reason::MemberOf) }
}

/// The per-task part of the chain: what placing a task changes.
pub fn check_resources(inst: &InstanceView, task: &TaskRequest) -> Result<(), Reason> {
    check_cpu(inst, task)?;
    check_memory(inst, task)?;
    check_tcp_ports(inst, task)?;
    check_udp_ports(inst, task)?;
    check_distinct_instance(inst, task)
}

/// The whole chain with the memberOf verdict supplied (the engine evaluates it once per
/// request, against the snapshot as it was when the request started).
pub fn check_chain(inst: &InstanceView, task: &TaskRequest, member_of: bool) -> Result<(), Reason> {
    check_status(inst)?;
    check_agent(inst)?;
    check_resources(inst, task)?;
    if member_of {
        Ok(())
    } else {
        Err(Reason::MemberOf)
    }
}

/// Can `inst`, as it is now, take one task of `task`? The plan applier calls this at
/// commit time against the stored instance, so two concurrent plans cannot over-commit.
pub fn check_fit(inst: &InstanceView, task: &TaskRequest) -> Result<(), Reason> {
    check_chain(inst, task, check_member_of(inst, task).is_ok())
}

/// Commits one task of `task` to `inst` (the caller has checked the fit).
pub fn apply_task(inst: &mut InstanceView, task: &TaskRequest) {
    inst.remaining_cpu -= task.cpu;
    inst.remaining_memory -= task.memory;
    inst.used_tcp_ports.extend(task.tcp_ports.iter().copied());
    inst.used_udp_ports.extend(task.udp_ports.iter().copied());
    *inst.task_groups.entry(task.group.clone()).or_insert(0) += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_placement_constraint;

    fn task() -> TaskRequest {
        TaskRequest {
            cpu: 256,
            memory: 512,
            tcp_ports: vec![80],
            udp_ports: vec![53],
            group: "service:web".into(),
            count: 1,
            placement_constraints: vec![
                PlacementConstraint::DistinctInstance,
                parse_placement_constraint("memberOf", Some("attribute:ecs.os-type == linux"))
                    .unwrap(),
            ],
            placement_strategy: vec![],
        }
    }

    #[test]
    fn chain_order_and_reasons() {
        let t = task();
        let ok = InstanceView::new("a", 256, 512).with_attribute("ecs.os-type", "linux");
        assert_eq!(check_fit(&ok, &t), Ok(()));
        let mut i = ok.clone();
        i.status = InstanceStatus::Draining;
        i.remaining_cpu = 0;
        assert_eq!(check_fit(&i, &t), Err(Reason::Inactive));
        let mut i = ok.clone();
        i.agent_connected = false;
        assert_eq!(check_fit(&i, &t), Err(Reason::Agent));
        let mut i = ok.clone();
        i.remaining_cpu = 255;
        i.remaining_memory = 0;
        assert_eq!(check_fit(&i, &t), Err(Reason::Cpu));
        let mut i = ok.clone();
        i.remaining_memory = 511;
        assert_eq!(
            check_fit(&i, &t).map_err(Reason::as_str),
            Err("RESOURCE:MEMORY")
        );
        let mut i = ok.clone();
        i.used_tcp_ports.insert(80);
        assert_eq!(check_fit(&i, &t), Err(Reason::Ports));
        let mut i = ok.clone();
        i.used_udp_ports.insert(53);
        assert_eq!(
            check_fit(&i, &t).map_err(Reason::as_str),
            Err("RESOURCE:PORTS_UDP")
        );
        let mut i = ok.clone();
        apply_task(
            &mut i,
            &TaskRequest {
                cpu: 0,
                memory: 0,
                group: "service:web".into(),
                ..Default::default()
            },
        );
        assert_eq!(check_fit(&i, &t), Err(Reason::DistinctInstance));
        let i = InstanceView::new("a", 256, 512).with_attribute("ecs.os-type", "windows");
        assert_eq!(check_fit(&i, &t).map_err(Reason::as_str), Err("ATTRIBUTE"));
    }

    #[test]
    fn apply_consumes() {
        let t = task();
        let mut i = InstanceView::new("a", 1000, 1000);
        apply_task(&mut i, &t);
        assert_eq!((i.remaining_cpu, i.remaining_memory), (744, 488));
        assert!(i.used_tcp_ports.contains(&80) && i.used_udp_ports.contains(&53));
        assert_eq!(i.group_count("service:web"), 1);
    }
}
