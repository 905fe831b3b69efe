//! EC2 Auto Scaling for Berth: Auto Scaling groups whose instances are `berth agent`s.
//! Knows nothing of HTTP, of agents or of how instances are started: a group is a store
//! record holding its instances (`keys.rs`), the API's operations change it
//! (`groups.rs`, `instances.rs`), the planner (`planner.rs`, pure) says which instances
//! to launch and which to terminate, and the applier (`reconcile.rs`) commits that plan
//! under a compare-and-swap with its scaling activities (`activities.rs`). The server's
//! controller acts on what is committed through a provisioner, and reports back here when
//! an instance is in service or terminated. Launch templates and subnets are EC2's,
//! reached through [`Ec2Directory`].

mod activities;
mod errors;
mod groups;
mod instances;
mod keys;
pub mod planner;
mod reconcile;
mod text;
mod types;
pub mod user_data;

use std::sync::Arc;

use berth_store::Store;

pub use activities::ActivityPage;
pub use errors::AutoScalingError;
pub use groups::{CreateAutoScalingGroup, GroupPage, UpdateAutoScalingGroup};
pub use instances::GroupInstance;
pub use keys::AsgScope;
pub use types::{
    Activity, ActivityStatus, AutoScalingGroup, GroupTag, Instance, LaunchTemplateSpec,
    LifecycleState, ResolvedTemplate, SubnetZone,
};

pub type Result<T, E = AutoScalingError> = std::result::Result<T, E>;

/// What EC2 tells Auto Scaling: launch templates and subnets.
pub trait Ec2Directory: Send + Sync {
    /// The version of the template `spec` names (`ValidationError` with EC2 Auto
    /// Scaling's message when there is none).
    fn launch_template(
        &self,
        scope: &AsgScope,
        spec: &LaunchTemplateSpec,
    ) -> Result<ResolvedTemplate>;
    /// The zone of a subnet (`ValidationError` when there is no such subnet).
    fn subnet_zone(&self, scope: &AsgScope, subnet_id: &str) -> Result<String>;
    /// The region's availability zones.
    fn zones(&self, region: &str) -> Vec<String>;
}

/// EC2 Auto Scaling over the store.
#[derive(Clone)]
pub struct AutoScaling {
    store: Arc<dyn Store>,
    ec2: Arc<dyn Ec2Directory>,
}

impl std::fmt::Debug for AutoScaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AutoScaling(..)")
    }
}

impl AutoScaling {
    pub fn new(store: Arc<dyn Store>, ec2: Arc<dyn Ec2Directory>) -> AutoScaling {
        AutoScaling { store, ec2 }
    }

    /// The same over another store (the leader's fenced one).
    pub fn with_store(&self, store: Arc<dyn Store>) -> AutoScaling {
        AutoScaling {
            store,
            ec2: self.ec2.clone(),
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
}
