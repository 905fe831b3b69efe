//! A listener's routing table: rules in priority order with their target groups resolved,
//! built once per plan and swapped in whole, so a request sees one plan from start to end.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio_rustls::TlsAcceptor;

use crate::plan::{
    Action, Condition, FixedResponseAction, ListenerPlan, ListenerProtocol, LoadBalancerPlan,
    RedirectAction, TargetGroupId,
};
use crate::targets::Group;

pub(crate) struct Routes {
    pub rules: Vec<Rule>,
    pub default: Option<Route>,
    pub tls: Option<TlsAcceptor>,
    pub protocol: ListenerProtocol,
    pub idle_timeout: Duration,
}

pub(crate) struct Rule {
    pub conditions: Vec<Condition>,
    pub route: Route,
}

pub(crate) enum Route {
    Forward(Forward),
    Redirect(RedirectAction),
    Fixed(FixedResponseAction),
}

pub(crate) struct Forward {
    pub groups: Vec<ForwardGroup>,
    total_weight: u32,
    /// Target-group stickiness of a weighted forward (`AWSALBTG`).
    pub stickiness: Option<Duration>,
}

pub(crate) struct ForwardGroup {
    /// None when the plan names a group it does not define: requests get a 503.
    pub group: Option<Arc<Group>>,
    pub weight: u32,
    /// The `AWSALBTG` value naming this group.
    pub cookie: String,
}

impl Forward {
    /// The group for this request: the one its `AWSALBTG` cookie names when group
    /// stickiness is on, else one drawn by weight.
    pub fn choose(&self, sticky: Option<&str>) -> Option<&ForwardGroup> {
        if self.stickiness.is_some()
            && let Some(v) = sticky
            && let Some(g) = self.groups.iter().find(|g| g.cookie == v && g.weight > 0)
        {
            return Some(g);
        }
        match self.groups.len() {
            0 => None,
            1 => self.groups.first(),
            _ if self.total_weight == 0 => self.groups.first(),
            _ => {
                let mut r = rand::thread_rng().gen_range(0..self.total_weight);
                self.groups.iter().find(|g| {
                    if r < g.weight {
                        true
                    } else {
                        r -= g.weight;
                        false
                    }
                })
            }
        }
    }
}

impl Routes {
    pub fn compile(
        lb: &LoadBalancerPlan,
        listener: &ListenerPlan,
        groups: &HashMap<TargetGroupId, Arc<Group>>,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        let mut rules: Vec<_> = listener.rules.iter().collect();
        rules.sort_by_key(|r| r.priority);
        Self {
            rules: rules
                .into_iter()
                .filter_map(|r| {
                    Some(Rule {
                        conditions: r.conditions.clone(),
                        route: route(&r.actions, groups)?,
                    })
                })
                .collect(),
            default: route(&listener.default_actions, groups),
            tls,
            protocol: listener.protocol,
            idle_timeout: lb.idle_timeout,
        }
    }
}

/// The terminal action of a rule is its last (authenticate actions, which Berth does not
/// serve, come before it).
fn route(actions: &[Action], groups: &HashMap<TargetGroupId, Arc<Group>>) -> Option<Route> {
    Some(match actions.last()? {
        Action::Forward(f) => Route::Forward(Forward {
            groups: f
                .target_groups
                .iter()
                .map(|w| ForwardGroup {
                    group: groups.get(&w.id).cloned(),
                    weight: w.weight,
                    cookie: group_cookie(&w.id),
                })
                .collect(),
            total_weight: f.target_groups.iter().map(|w| w.weight).sum(),
            stickiness: f.stickiness,
        }),
        Action::Redirect(r) => Route::Redirect(r.clone()),
        Action::FixedResponse(f) => Route::Fixed(f.clone()),
    })
}

fn group_cookie(id: &TargetGroupId) -> String {
    let mut h = DefaultHasher::new();
    ("AWSALBTG", id).hash(&mut h);
    format!("{:016x}", h.finish())
}
