//! This host's share of an installation: its identity in the data dir, the Docker networks
//! that are its own, what `berth up` leaves running, and `berth down`, which removes every
//! Docker object of one installation from this host and nothing of another's.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use berth_agent::installation as installation_file;
use berth_agent::translate::LABEL_TASK_ARN;
use berth_model::{InstallationId, LABEL_INSTALLATION};
use berth_runtime::{ContainerRuntime, ContainerState, DockerRuntime, RuntimeError};

use crate::ServerError;

type Result<T, E = ServerError> = std::result::Result<T, E>;

/// How long `berth down` gives a task's containers to stop before they are killed.
const DOWN_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Mirrors the store's installation id into the data dir (for `berth down`).
pub fn record_installation(data_dir: &Path, id: &InstallationId) -> Result<()> {
    if installation_file::read(data_dir)?.as_ref() != Some(id) {
        installation_file::write(data_dir, id)?;
    }
    Ok(())
}

/// Docker, if this host runs it (a control plane without Docker skips what needs it).
pub async fn docker() -> Option<DockerRuntime> {
    let docker = DockerRuntime::connect().await.ok()?;
    docker.ping().await.ok()?;
    Some(docker)
}

/// The interfaces of the installation's own Docker networks on this host: Docker names a
/// bridge network's interface `br-` and the first 12 digits of the network's id.
pub async fn own_interfaces(docker: &DockerRuntime, id: &InstallationId) -> HashSet<String> {
    let label = id.to_string();
    match docker.list_networks(&[(LABEL_INSTALLATION, &label)]).await {
        Ok(networks) => networks
            .iter()
            .map(|n| format!("br-{}", &n.id[..n.id.len().min(12)]))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list this installation's networks");
            HashSet::new()
        }
    }
}

/// The tasks of the installation that have a running container on this host.
pub async fn running_tasks(docker: &dyn ContainerRuntime, id: &InstallationId) -> Result<usize> {
    let label = id.to_string();
    let containers = docker
        .list_containers(&[(LABEL_INSTALLATION, &label)])
        .await?;
    let tasks: BTreeSet<&String> = containers
        .iter()
        .filter(|c| c.state == ContainerState::Running)
        .filter_map(|c| c.labels.get(LABEL_TASK_ARN))
        .collect();
    Ok(tasks.len())
}

/// What `berth down` removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DownReport {
    pub tasks_stopped: usize,
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

/// `berth down`: stops every task of the installation recorded in `data_dir` that runs on
/// this host and removes its containers (infra and warm ones included), volumes and
/// networks; `purge` also deletes the data dir. Refused while a server uses the data dir
/// (its service scheduler would start the tasks again).
pub async fn down(data_dir: &Path, purge: bool) -> Result<DownReport> {
    if !data_dir.exists() {
        println!("nothing to do: {} does not exist", data_dir.display());
        return Ok(DownReport::default());
    }
    let store = data_dir.join("state.redb");
    if store.exists() {
        // redb holds a lock on the file while a server has it open.
        berth_store::RedbStore::open(&store).map_err(|e| {
            ServerError::Config(format!(
                "{} is in use ({e}): stop the Berth server (or `berth up`) running with --data-dir {} first",
                store.display(),
                data_dir.display()
            ))
        })?;
    }
    let report = match installation_file::read(data_dir)? {
        Some(id) => {
            let docker = DockerRuntime::connect().await?;
            remove_objects(&docker, &id).await?
        }
        None => {
            println!(
                "{} records no installation id (never started, or made by an older Berth): no Docker objects to remove",
                data_dir.display()
            );
            DownReport::default()
        }
    };
    if purge {
        std::fs::remove_dir_all(data_dir)
            .map_err(|e| ServerError::io(format!("deleting {}", data_dir.display()), e))?;
    }
    Ok(report)
}

/// Stops and removes the installation's containers, then its volumes and networks.
pub async fn remove_objects(
    docker: &dyn ContainerRuntime,
    id: &InstallationId,
) -> Result<DownReport> {
    let label = id.to_string();
    let filter = [(LABEL_INSTALLATION, label.as_str())];
    let containers = docker.list_containers(&filter).await?;
    let mut report = DownReport {
        tasks_stopped: containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .filter_map(|c| c.labels.get(LABEL_TASK_ARN))
            .collect::<BTreeSet<_>>()
            .len(),
        ..DownReport::default()
    };
    // Stopped in parallel, each given DOWN_STOP_TIMEOUT to exit on SIGTERM.
    let stops = containers
        .iter()
        .filter(|c| c.state == ContainerState::Running)
        .map(|c| docker.stop_container(&c.id, DOWN_STOP_TIMEOUT));
    for (result, c) in futures_util::future::join_all(stops).await.into_iter().zip(
        containers
            .iter()
            .filter(|c| c.state == ContainerState::Running),
    ) {
        if let Err(e) = result
            && !matches!(e, RuntimeError::NotFound(_))
        {
            tracing::warn!(container = %c.name, error = %e, "stopping a container failed; removing it anyway");
        }
    }
    for c in &containers {
        match docker.remove_container(&c.id).await {
            Ok(()) => report.containers += 1,
            Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for volume in docker.list_volumes(&filter).await? {
        match docker.remove_volume(&volume).await {
            Ok(()) => report.volumes += 1,
            Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for network in docker.list_networks(&filter).await? {
        match docker.remove_network(&network.name).await {
            Ok(()) => report.networks += 1,
            Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::{
        ContainerSpec, NetworkMode, NetworkSpec, SimulatedRuntime, SimulationConfig,
    };
    use std::collections::BTreeMap;

    fn labelled(name: &str, installation: &str, task: Option<&str>) -> ContainerSpec {
        let mut labels = BTreeMap::from([(LABEL_INSTALLATION.to_owned(), installation.to_owned())]);
        if let Some(task) = task {
            labels.insert(LABEL_TASK_ARN.to_owned(), task.to_owned());
        }
        ContainerSpec {
            name: Some(name.to_owned()),
            image: "busybox".to_owned(),
            command: vec!["sleep".to_owned(), "1000".to_owned()],
            network_mode: NetworkMode::None,
            labels,
            ..ContainerSpec::default()
        }
    }

    #[tokio::test]
    async fn down_removes_one_installations_objects_and_nothing_else() {
        let docker = SimulatedRuntime::new(SimulationConfig::default());
        let mine: InstallationId = "mine000001".parse().unwrap();
        docker.pull_image("busybox", None).await.unwrap();
        let mut ids = Vec::new();
        for (name, installation, task) in [
            ("a-web", "mine000001", Some("arn:task/1")),
            ("a-side", "mine000001", Some("arn:task/1")),
            ("a-warm", "mine000001", None),
            ("b-web", "other00001", Some("arn:task/2")),
        ] {
            let id = docker
                .create_container(&labelled(name, installation, task))
                .await
                .unwrap();
            docker.start_container(&id).await.unwrap();
            ids.push(id);
        }
        for (n, (name, installation)) in [
            ("berth-mine000001-subnet-default", "mine000001"),
            ("berth-other00001-subnet-default", "other00001"),
        ]
        .into_iter()
        .enumerate()
        {
            docker
                .ensure_network(&NetworkSpec {
                    name: name.to_owned(),
                    subnet: format!("10.{n}.0.0/24"),
                    gateway: format!("10.{n}.0.1"),
                    labels: BTreeMap::from([(
                        LABEL_INSTALLATION.to_owned(),
                        installation.to_owned(),
                    )]),
                })
                .await
                .unwrap();
        }
        assert_eq!(running_tasks(&docker, &mine).await.unwrap(), 1);
        let report = remove_objects(&docker, &mine).await.unwrap();
        assert_eq!(
            report,
            DownReport {
                tasks_stopped: 1,
                containers: 3,
                networks: 1,
                volumes: 0
            }
        );
        let left = docker.list_containers(&[]).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name, "b-web");
        assert_eq!(left[0].state, ContainerState::Running);
        let networks = docker.list_networks(&[]).await.unwrap();
        assert_eq!(networks.len(), 1);
        assert_eq!(networks[0].name, "berth-other00001-subnet-default");
        assert_eq!(running_tasks(&docker, &mine).await.unwrap(), 0);
    }
}
