//! Which installation this agent's Docker objects belong to, and the `installation` file
//! that records it in a data dir (the control plane's and each agent's), so that
//! `berth down --data-dir DIR` knows whose containers and networks to remove.

use std::path::Path;

use berth_model::InstallationId;

use crate::config::AgentConfig;
use crate::state::StateError;

/// The file, in a data dir, holding the installation id (one line).
pub const INSTALLATION_FILE: &str = "installation";

/// The id recorded in `dir`, if any.
pub fn read(dir: &Path) -> Result<Option<InstallationId>, StateError> {
    let path = dir.join(INSTALLATION_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse() {
            Ok(id) => Ok(Some(id)),
            Err(source) => Err(StateError::Installation { path, source }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Read { path, source }),
    }
}

/// Records `id` in `dir` (replacing the file whole, synced).
pub fn write(dir: &Path, id: &InstallationId) -> Result<(), StateError> {
    use std::io::Write;
    let path = dir.join(INSTALLATION_FILE);
    let tmp = dir.join(format!("{INSTALLATION_FILE}.tmp"));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        writeln!(file, "{id}")?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    written.map_err(|source| StateError::Write { path, source })
}

/// The installation the agent works for: as configured (the built-in agents of `berth up`),
/// else as the control plane announced it at registration, else as recorded in the data dir
/// by an earlier run, else a new one (a control plane that announces none is not Berth's).
/// Recorded in the data dir.
pub fn settle(
    config: &AgentConfig,
    announced: Option<InstallationId>,
) -> Result<InstallationId, StateError> {
    let recorded = read(&config.data_dir)?;
    let id = match config.installation.clone().or(announced) {
        Some(id) => id,
        None => match recorded.clone() {
            Some(id) => id,
            None => {
                let id = InstallationId::from_random(rand::random());
                tracing::warn!(installation = %id, "the control plane named no installation; using a new one for this host's Docker objects");
                id
            }
        },
    };
    if recorded.as_ref() != Some(&id) {
        write(&config.data_dir, &id)?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_settled_once_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AgentConfig::defaults("http://127.0.0.1:1", "c", dir.path());
        assert_eq!(read(dir.path()).unwrap(), None);
        // Announced by the control plane: taken and recorded.
        let announced: InstallationId = "announced0".parse().unwrap();
        assert_eq!(settle(&config, Some(announced.clone())).unwrap(), announced);
        assert_eq!(read(dir.path()).unwrap(), Some(announced.clone()));
        // Nothing announced: the recorded one.
        assert_eq!(settle(&config, None).unwrap(), announced);
        // Configured wins over both.
        let configured: InstallationId = "configured".parse().unwrap();
        config.installation = Some(configured.clone());
        assert_eq!(settle(&config, Some(announced)).unwrap(), configured);
        assert_eq!(read(dir.path()).unwrap(), Some(configured));
        std::fs::write(dir.path().join(INSTALLATION_FILE), "not an id\n").unwrap();
        assert!(read(dir.path()).is_err());
    }
}
