//! What a server keeps in its data dir beside the store: the root credentials (AWS
//! shared-credentials format, profile `berth`) and the key registry tokens are signed with.

use std::path::Path;

use berth_api::RootCredentials;

use crate::ServerError;

/// Writes a file readable only by its owner, durably (temporary file, sync, rename).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), ServerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| ServerError::io(format!("writing {}", path.display()), e))
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Root credentials: from `BERTH_ROOT_ACCESS_KEY_ID` / `BERTH_ROOT_SECRET_ACCESS_KEY`, else
/// from DATA_DIR/credentials, else generated and written there.
pub fn root_credentials(data_dir: &Path) -> Result<RootCredentials, ServerError> {
    if let (Ok(id), Ok(secret)) = (
        std::env::var("BERTH_ROOT_ACCESS_KEY_ID"),
        std::env::var("BERTH_ROOT_SECRET_ACCESS_KEY"),
    ) {
        return Ok(RootCredentials {
            access_key_id: id,
            secret_access_key: secret,
        });
    }
    let path = data_dir.join("credentials");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
        };
        return match (value("aws_access_key_id"), value("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Ok(RootCredentials {
                access_key_id: id,
                secret_access_key: secret,
            }),
            _ => Err(ServerError::Config(format!(
                "{} exists but has no access key pair",
                path.display()
            ))),
        };
    }
    let creds = RootCredentials {
        access_key_id: format!(
            "AKIA{}",
            random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        ),
        secret_access_key: random_string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        ),
    };
    write_private(
        &path,
        format!(
            "[berth]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            creds.access_key_id, creds.secret_access_key
        )
        .as_bytes(),
    )?;
    Ok(creds)
}

/// The key registry tokens are signed with; generated once per data dir.
pub fn token_key(data_dir: &Path) -> Result<[u8; 32], ServerError> {
    let path = data_dir.join("token-key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes.try_into().expect("length checked")),
        Ok(_) => Err(ServerError::Config(format!(
            "{} is corrupt (expected 32 bytes)",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            write_private(&path, &key)?;
            Ok(key)
        }
        Err(e) => Err(ServerError::io(format!("reading {}", path.display()), e)),
    }
}

/// Where an installation's state lives (`--store`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreLocation {
    /// The embedded store in DATA_DIR/state.redb (one process at a time).
    #[default]
    Embedded,
    /// An etcd cluster, shared by any number of replicas.
    Etcd(berth_store::EtcdConfig),
}

impl std::str::FromStr for StoreLocation {
    type Err = String;

    /// `embedded`, or `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.
    fn from_str(s: &str) -> Result<StoreLocation, String> {
        if s == "embedded" {
            return Ok(StoreLocation::Embedded);
        }
        if s.starts_with("etcd://") {
            return berth_store::EtcdConfig::parse(s)
                .map(StoreLocation::Etcd)
                .map_err(|e| e.to_string());
        }
        Err(format!(
            "{s:?}: expected `embedded` or etcd://HOST:PORT[,HOST:PORT...][/PREFIX]"
        ))
    }
}

/// Opens the store at `location` (the embedded one in `data_dir`).
pub fn open_store_at(
    location: &StoreLocation,
    data_dir: &Path,
) -> Result<std::sync::Arc<dyn berth_store::Store>, ServerError> {
    match location {
        StoreLocation::Embedded => open_store(data_dir),
        StoreLocation::Etcd(config) => {
            let store = berth_store::EtcdStore::open(config.clone()).map_err(|e| {
                ServerError::Config(format!(
                    "connecting to etcd at {}: {e}",
                    config.endpoints.join(",")
                ))
            })?;
            Ok(std::sync::Arc::new(store))
        }
    }
}

/// The embedded store in DATA_DIR/state.redb (one process at a time).
pub fn open_store(data_dir: &Path) -> Result<std::sync::Arc<dyn berth_store::Store>, ServerError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| ServerError::io(format!("creating data dir {}", data_dir.display()), e))?;
    let path = data_dir.join("state.redb");
    let store = berth_store::RedbStore::open(&path).map_err(|e| {
        ServerError::Config(format!(
            "opening {} (is another berth process using this data dir?): {e}",
            path.display()
        ))
    })?;
    Ok(std::sync::Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_token_key_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = token_key(dir.path()).unwrap();
        assert_eq!(token_key(dir.path()).unwrap(), key);
        std::fs::write(dir.path().join("token-key"), b"short").unwrap();
        assert!(token_key(dir.path()).is_err());
    }
}
