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

/// Root credentials from `BERTH_ROOT_ACCESS_KEY_ID` / `BERTH_ROOT_SECRET_ACCESS_KEY`.
pub fn root_credentials_from_env() -> Option<RootCredentials> {
    match (
        std::env::var("BERTH_ROOT_ACCESS_KEY_ID"),
        std::env::var("BERTH_ROOT_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) => Some(RootCredentials {
            access_key_id: id,
            secret_access_key: secret,
        }),
        _ => None,
    }
}

fn generated_credentials() -> RootCredentials {
    RootCredentials {
        access_key_id: format!(
            "AKIA{}",
            random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        ),
        secret_access_key: random_string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        ),
    }
}

fn write_credentials_file(path: &Path, creds: &RootCredentials) -> Result<(), ServerError> {
    write_private(
        path,
        format!(
            "[berth]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            creds.access_key_id, creds.secret_access_key
        )
        .as_bytes(),
    )
}

/// Where replicas on one store keep what they must share: the root credentials and the
/// key registry tokens are signed with (a token one replica issued is good at every other).
pub const SECRETS_KEY: &str = "berth/secrets";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SharedSecrets {
    access_key_id: String,
    secret_access_key: String,
    token_key: String,
}

/// The installation's root credentials and token key from the shared store, made by the
/// first replica to start (the root credentials from the environment when set, else from
/// its data dir, else generated; the token key from its data dir, else generated). Each replica writes the credentials to DATA_DIR/credentials for its users.
/// Credentials set in this replica's environment are the ones it accepts.
pub fn shared_secrets(
    store: &dyn berth_store::Store,
    data_dir: &Path,
    given: Option<RootCredentials>,
) -> Result<(RootCredentials, [u8; 32]), ServerError> {
    let corrupt = |why: String| ServerError::Config(format!("{SECRETS_KEY} in the store: {why}"));
    let stored = loop {
        if let Some(kv) = store.get(SECRETS_KEY)? {
            break serde_json::from_slice::<SharedSecrets>(&kv.value)
                .map_err(|e| corrupt(e.to_string()))?;
        }
        // The first replica seeds them from its data dir when it has them (an installation
        // that moved from its embedded store keeps its credentials and valid tokens).
        let creds = match &given {
            Some(creds) => creds.clone(),
            None if data_dir.join("credentials").exists() => root_credentials(data_dir)?,
            None => generated_credentials(),
        };
        let key: [u8; 32] = match data_dir.join("token-key").exists() {
            true => token_key(data_dir)?,
            false => rand::random(),
        };
        let fresh = SharedSecrets {
            access_key_id: creds.access_key_id,
            secret_access_key: creds.secret_access_key,
            token_key: hex::encode(key),
        };
        let bytes = serde_json::to_vec(&fresh).expect("secrets serialise");
        if store
            .put_if_revision(SECRETS_KEY, &bytes, 0)?
            .is_committed()
        {
            break fresh;
        }
        // Another replica made them first: read theirs.
    };
    let key: [u8; 32] = hex::decode(&stored.token_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| corrupt("the token key is not 32 hex bytes".into()))?;
    let creds = given.unwrap_or(RootCredentials {
        access_key_id: stored.access_key_id,
        secret_access_key: stored.secret_access_key,
    });
    std::fs::create_dir_all(data_dir)
        .map_err(|e| ServerError::io(format!("creating data dir {}", data_dir.display()), e))?;
    write_credentials_file(&data_dir.join("credentials"), &creds)?;
    Ok((creds, key))
}

/// Root credentials: from `BERTH_ROOT_ACCESS_KEY_ID` / `BERTH_ROOT_SECRET_ACCESS_KEY`, else
/// from DATA_DIR/credentials, else generated and written there.
pub fn root_credentials(data_dir: &Path) -> Result<RootCredentials, ServerError> {
    if let Some(creds) = root_credentials_from_env() {
        return Ok(creds);
    }
    if let Some(creds) = read_credentials_file(data_dir)? {
        return Ok(creds);
    }
    let creds = generated_credentials();
    write_credentials_file(&data_dir.join("credentials"), &creds)?;
    Ok(creds)
}

/// The root credentials a server wrote to DATA_DIR/credentials, if it did.
pub fn read_credentials_file(data_dir: &Path) -> Result<Option<RootCredentials>, ServerError> {
    let path = data_dir.join("credentials");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
    };
    match (value("aws_access_key_id"), value("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Some(RootCredentials {
            access_key_id: id,
            secret_access_key: secret,
        })),
        _ => Err(ServerError::Config(format!(
            "{} exists but has no access key pair",
            path.display()
        ))),
    }
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

/// An opened store; `etcd` is the same store when it is etcd (replicas elect a leader on it).
pub struct OpenedStore {
    pub store: std::sync::Arc<dyn berth_store::Store>,
    pub etcd: Option<std::sync::Arc<berth_store::EtcdStore>>,
}

/// Opens the store at `location` (the embedded one in `data_dir`).
pub fn open_store_at(
    location: &StoreLocation,
    data_dir: &Path,
) -> Result<OpenedStore, ServerError> {
    match location {
        StoreLocation::Embedded => Ok(OpenedStore {
            store: open_store(data_dir)?,
            etcd: None,
        }),
        StoreLocation::Etcd(config) => {
            let store = berth_store::EtcdStore::open(config.clone()).map_err(|e| {
                ServerError::Config(format!(
                    "connecting to etcd at {}: {e}",
                    config.endpoints.join(",")
                ))
            })?;
            let etcd = std::sync::Arc::new(store);
            Ok(OpenedStore {
                store: etcd.clone(),
                etcd: Some(etcd),
            })
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
