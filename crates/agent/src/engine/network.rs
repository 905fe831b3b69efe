//! awsvpc networking: each task's infra container holds its network namespace on its
//! subnet's Docker network (made once per subnet), taken warm from the pool when one is ready;
//! the infra image; subnet networks no container uses any more are removed at shutdown.

use std::sync::Arc;
use std::time::Duration;

use berth_model::LABEL_INSTALLATION;
use berth_runtime::{ContainerId, ContainerState, NetworkMode, RuntimeError};

use super::errors::NetworkError;
use super::supervisor::Supervisor;
use super::{Engine, Inner, lock};
use crate::translate::TaskEni;
use crate::warm::{self, Warm};
use crate::{firewall, infra};

impl Engine {
    /// Removes the warm infra containers no task took (on shutdown: a stopped agent holds
    /// none; the next start makes new ones).
    pub async fn remove_warm(&self) {
        for warm in self.inner.warm.drain() {
            match self.inner.runtime.remove_container(&warm.id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(container = %warm.id, error = %e, "removing a warm infra container failed")
                }
            }
        }
    }

    /// Removes this installation's subnet networks that no running container uses any more
    /// (as the agent stops: the networks of tasks still running stay, and another agent of
    /// the installation on this host makes a network again when it needs it).
    pub async fn remove_idle_networks(&self) {
        let installation = self.inner.config.installation.to_string();
        let filter = [(LABEL_INSTALLATION, installation.as_str())];
        let networks = match self.inner.runtime.list_networks(&filter).await {
            Ok(networks) => networks,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list this installation's networks; none removed");
                return;
            }
        };
        for network in networks
            .iter()
            .filter(|n| n.labels.contains_key(infra::LABEL_SUBNET))
        {
            match self.inner.runtime.remove_network(&network.name).await {
                Ok(()) => {
                    tracing::info!(network = %network.name, "removed an idle subnet network")
                }
                Err(RuntimeError::Conflict(_) | RuntimeError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(network = %network.name, error = %e, "removing an idle subnet network failed")
                }
            }
        }
    }
}

impl Inner {
    /// Starts filling the warm infra pool in the background unless it is full, off, or
    /// being filled.
    pub(super) fn fill_warm(self: &Arc<Self>) {
        if !self.warm.start_filling() {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let mut failed = false;
            while inner.warm.wants_more() && !*inner.shutdown.borrow() {
                match inner.make_warm().await {
                    Ok(warm) => inner.warm.put(warm),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot make a warm infra container; awsvpc tasks create their own");
                        failed = true;
                        break;
                    }
                }
            }
            inner.warm.done();
            // A container taken between the last check and `done` is made up for now; after
            // a failure, the next task that takes one tries again.
            if !failed && !*inner.shutdown.borrow() {
                inner.fill_warm();
            }
        });
    }

    /// Creates and starts a warm infra container and takes it off Docker's `none` network,
    /// ready to be connected to a subnet's network.
    async fn make_warm(&self) -> Result<Warm, NetworkError> {
        self.ensure_pause_image().await?;
        let name = warm::warm_name(&self.config.installation);
        let spec = warm::warm_spec(
            &name,
            &self.config.cluster,
            &self.config.instance_arn,
            &self.config.installation,
        );
        let id = self
            .runtime
            .create_container(&spec)
            .await
            .map_err(NetworkError::Warm)?;
        let started = async {
            self.runtime.start_container(&id).await?;
            self.runtime.disconnect_network(&id, "none").await
        };
        if let Err(e) = started.await {
            let _ = self.runtime.remove_container(&id).await;
            return Err(NetworkError::Warm(e));
        }
        Ok(Warm { id, name })
    }

    /// Makes sure the subnet's network exists (once per network and agent run).
    async fn ensure_network(&self, eni: &TaskEni) -> Result<String, NetworkError> {
        let network = infra::network_spec(&self.config.installation, eni);
        let mut known = self.networks.lock().await;
        if known.contains(&network.name) {
            return Ok(network.name);
        }
        if let Err(source) = self.runtime.ensure_network(&network).await {
            return Err(NetworkError::SubnetNetwork {
                network: network.name,
                subnet: eni.subnet_id.clone(),
                source,
            });
        }
        known.insert(network.name.clone());
        Ok(network.name)
    }

    /// Forgets that a network exists (it was found missing).
    async fn forget_network(&self, name: &str) {
        self.networks.lock().await.remove(name);
    }

    /// The awsvpc infra image, built from the context `infra` writes unless present.
    async fn ensure_pause_image(&self) -> Result<(), NetworkError> {
        let mut ready = self.pause_image.lock().await;
        if *ready {
            return Ok(());
        }
        if !self
            .runtime
            .image_present(infra::PAUSE_IMAGE)
            .await
            .map_err(NetworkError::InfraImage)?
        {
            let host = self
                .runtime
                .info()
                .await
                .map_err(NetworkError::InfraImage)?;
            let context = infra::build_context(&host.architecture)
                .ok_or(NetworkError::Architecture(host.architecture))?;
            self.runtime
                .build_image(infra::PAUSE_IMAGE, context)
                .await
                .map_err(NetworkError::InfraImage)?;
            tracing::info!(image = infra::PAUSE_IMAGE, "built the awsvpc infra image");
        }
        *ready = true;
        Ok(())
    }
}

impl Supervisor {
    /// awsvpc: makes sure the infra container runs on the subnet's network with the task's
    /// address (creating the network as needed), so the task's containers can join its
    /// namespace: a warm one connected to the network if one is ready, else one made here.
    pub(super) async fn ensure_infra(&mut self) -> Result<(), NetworkError> {
        let Some(eni) = self.eni.clone() else {
            return Ok(());
        };
        self.engine.warm.activate();
        let runtime = self.engine.runtime.clone();
        if let Some(id) = self.infra.id.clone() {
            match runtime.inspect_container(&id).await {
                // A warm container taken but not connected yet has no address.
                Ok(status)
                    if status.state == ContainerState::Running && status.ip_address.is_none() =>
                {
                    return self.connect_warm(&eni, id).await;
                }
                Ok(status) if status.state == ContainerState::Running => {
                    return self.infra_up(&eni, id).await;
                }
                Ok(status) if status.state == ContainerState::Created => {}
                Ok(_) | Err(RuntimeError::NotFound(_)) => {
                    if self.members.values().any(|m| m.started) {
                        return Err(NetworkError::NamespaceGone);
                    }
                    // Never used: start over with a new one.
                    let _ = runtime.remove_container(&id).await;
                    lock(&self.engine.routes).remove(&id);
                    self.infra.id = None;
                }
                Err(e) => return Err(NetworkError::StartInfra(e)),
            }
        }
        if self.infra.id.is_none() {
            self.engine.ensure_network(&eni).await?;
            if let Some(warm) = self.engine.warm.take() {
                // Recorded before it is connected: a restarted agent finds it by the record.
                lock(&self.engine.routes).insert(warm.id.clone(), self.arn.clone());
                self.infra.id = Some(warm.id.clone());
                self.save();
                let name = self.infra.docker_name.clone();
                let (connected, renamed) = tokio::join!(
                    self.connect_warm(&eni, warm.id.clone()),
                    runtime.rename_container(&warm.id, &name)
                );
                if let Err(e) = renamed {
                    tracing::debug!(task = %self.arn, error = %e, "renaming the warm infra container failed; it keeps its name");
                    self.infra.docker_name = warm.name;
                    self.save();
                }
                return connected;
            }
            self.engine.ensure_pause_image().await?;
            let spec = infra::infra_spec(
                &self.task,
                &eni,
                &self.infra.docker_name,
                &self.engine.config.cluster,
                &self.engine.config.instance_arn,
                &self.engine.config.installation,
            );
            let mut created = runtime.create_container(&spec).await;
            if let Err(RuntimeError::NotFound(_)) = &created {
                // The network went away since it was made (another agent of this
                // installation on this host removed it, idle, as it stopped): make it again,
                // once.
                let network = infra::network_name(&self.engine.config.installation, &eni.subnet_id);
                self.engine.forget_network(&network).await;
                self.engine.ensure_network(&eni).await?;
                created = runtime.create_container(&spec).await;
            }
            let id = created.map_err(NetworkError::CreateInfra)?;
            lock(&self.engine.routes).insert(id.clone(), self.arn.clone());
            self.infra.id = Some(id);
            self.save();
        }
        let id = self.infra.id.clone().expect("created");
        runtime
            .start_container(&id)
            .await
            .map_err(NetworkError::StartInfra)?;
        self.infra_up(&eni, id).await
    }

    /// Connects the task's (warm, running) infra container to the subnet's network with the
    /// task's address and MAC.
    async fn connect_warm(&mut self, eni: &TaskEni, id: ContainerId) -> Result<(), NetworkError> {
        let network = infra::network_name(&self.engine.config.installation, &eni.subnet_id);
        let mac = Some(eni.mac_address.as_str()).filter(|m| !m.is_empty());
        let runtime = self.engine.runtime.clone();
        let mut connected = runtime
            .connect_network(&id, &network, &eni.ipv4_address, mac)
            .await;
        if let Err(RuntimeError::NotFound(_)) = &connected {
            // The network went away since it was made (the container is there: it was just
            // inspected or taken): make it again, once.
            self.engine.forget_network(&network).await;
            self.engine.ensure_network(eni).await?;
            connected = runtime
                .connect_network(&id, &network, &eni.ipv4_address, mac)
                .await;
        }
        if let Err(source) = connected {
            return Err(NetworkError::Connect {
                network,
                address: eni.ipv4_address.clone(),
                source,
            });
        }
        self.infra_up(eni, id).await
    }

    /// The infra container runs with the task's address and its security groups enforced:
    /// the task's containers may join it.
    async fn infra_up(&mut self, eni: &TaskEni, id: ContainerId) -> Result<(), NetworkError> {
        tracing::info!(task = %self.arn, address = %eni.ipv4_address, subnet = %eni.subnet_id, "task network namespace up");
        self.metadata_on_gateway(eni).await;
        self.load_firewall(&id).await?;
        self.infra.ready = true;
        self.network_mode = Ok(NetworkMode::Container(id.to_string()));
        Ok(())
    }

    /// Loads the task's security group rules into the infra container's namespace (one
    /// nftables transaction replacing the last ones; `crate::firewall`). The metadata
    /// endpoint on the gateway stays reachable whatever the egress rules say, as ECS's
    /// endpoints are.
    async fn load_firewall(&self, infra: &ContainerId) -> Result<(), NetworkError> {
        let Some(firewall) = &self.firewall else {
            return Ok(()); // a control plane that sends no rules
        };
        let mut firewall = firewall.clone();
        if let (Some(host), Some(endpoint)) = (&self.metadata_host, &self.engine.config.metadata) {
            firewall.egress.get_or_insert_with(Vec::new).insert(
                0,
                berth_agent_protocol::acs::FirewallRule {
                    ip_protocol: Some("tcp".to_owned()),
                    from_port: Some(i64::from(endpoint.port)),
                    to_port: Some(i64::from(endpoint.port)),
                    cidrs: Some(vec![host.clone()]),
                },
            );
        }
        let script =
            firewall::render(&firewall).map_err(|e| NetworkError::Firewall(e.to_string()))?;
        let pid = self
            .engine
            .runtime
            .inspect_container(infra)
            .await
            .map_err(NetworkError::StartInfra)?
            .pid
            .filter(|pid| *pid > 0)
            .ok_or_else(|| NetworkError::Firewall("the infra container has no process".into()))?;
        firewall::load(pid, &script)
            .await
            .map_err(|e| NetworkError::Firewall(e.to_string()))?;
        tracing::debug!(task = %self.arn, "security group rules loaded");
        Ok(())
    }

    /// New rules for the task's security groups: kept (in its record too, so a restarted
    /// agent starts from them) and loaded at once if its namespace is up; a failure there
    /// leaves the last rules in force.
    pub(super) async fn take_firewall(&mut self, firewall: berth_agent_protocol::acs::Firewall) {
        if self.firewall.as_ref() == Some(&firewall) {
            return;
        }
        self.firewall = Some(firewall.clone());
        self.engine.state.update_task(&self.arn, |record| {
            if let Some(eni) = record
                .task
                .elastic_network_interfaces
                .as_mut()
                .and_then(|enis| enis.first_mut())
            {
                eni.berth_firewall = Some(firewall);
            }
        });
        if let (true, Some(id)) = (self.infra.ready, self.infra.id.clone()) {
            if let Err(e) = self.load_firewall(&id).await {
                tracing::warn!(task = %self.arn, error = %e, "new security group rules not loaded; the last ones stay");
            } else {
                tracing::info!(task = %self.arn, "security group rules updated");
            }
        }
    }

    /// awsvpc: has the task metadata endpoint listen on the subnet's gateway too (the host's
    /// address on the subnet's network, which the task's namespace reaches), so the task's
    /// containers get an endpoint; without it they get none.
    async fn metadata_on_gateway(&mut self, eni: &TaskEni) {
        self.metadata_host = None;
        let (Some(requests), Ok(gateway)) = (
            self.engine.config.metadata_listen.as_ref(),
            eni.gateway.parse::<std::net::IpAddr>(),
        ) else {
            return;
        };
        if requests.listen(gateway).await {
            self.metadata_host = Some(eni.gateway.clone());
        }
    }

    /// Stops the infra container once the task's containers are stopped, which gives the
    /// address back to the subnet's network before STOPPED is reported (the control plane
    /// may hand the address to another task then).
    pub(super) async fn stop_infra(&mut self) {
        let Some(id) = self.infra.id.clone() else {
            return;
        };
        match self
            .engine
            .runtime
            .stop_container(&id, Duration::ZERO)
            .await
        {
            Ok(()) | Err(RuntimeError::NotFound(_)) => self.infra.ready = false,
            Err(e) => {
                tracing::warn!(task = %self.arn, container = %id, error = %e, "stopping the infra container failed")
            }
        }
    }
}
