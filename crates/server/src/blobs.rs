//! Where the registry's blob bytes live: the data dir (the default) or an S3-compatible
//! bucket (`--blobs s3://BUCKET[/PREFIX] [--s3-endpoint URL] [--s3-region REGION]`), with
//! credentials from `BERTH_S3_ACCESS_KEY_ID` / `BERTH_S3_SECRET_ACCESS_KEY`, else the
//! standard AWS sources as `berth agent` reads them.

use std::path::Path;
use std::sync::Arc;

use berth_registry::{Registry, S3BlobStore, S3Config};
use berth_store::Store;

use crate::ServerError;

/// Where registry blobs live.
#[derive(Debug, Clone, Default)]
pub enum BlobsConfig {
    /// `DATA_DIR/blobs`.
    #[default]
    DataDir,
    /// Objects of an S3-compatible bucket.
    S3(S3Config),
}

impl BlobsConfig {
    /// From the command line: `location` is `s3://BUCKET[/PREFIX]` (None: the data dir).
    /// The region defaults to `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1; the
    /// endpoint to AWS's `https://s3.REGION.amazonaws.com`; an https endpoint trusts
    /// `AWS_CA_BUNDLE` when set, else the system's CA certificates.
    pub fn from_flags(
        location: Option<&str>,
        endpoint: Option<&str>,
        region: Option<&str>,
    ) -> Result<BlobsConfig, ServerError> {
        let Some(location) = location else {
            return Ok(BlobsConfig::DataDir);
        };
        let (bucket, prefix) =
            berth_registry::parse_s3_location(location).map_err(|e| config_error(&e))?;
        let region = region
            .map(str::to_owned)
            .unwrap_or_else(berth_agent::config::region_from_environment);
        let endpoint = endpoint.map_or_else(
            || format!("https://s3.{region}.amazonaws.com"),
            str::to_owned,
        );
        let (access_key_id, secret_access_key, session_token) = s3_credentials()?;
        Ok(BlobsConfig::S3(S3Config {
            bucket,
            prefix,
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            session_token,
            ca_bundle: std::env::var_os("AWS_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from),
        }))
    }
}

fn config_error(message: &str) -> ServerError {
    ServerError::Config(format!("--blobs: {message}"))
}

/// `BERTH_S3_ACCESS_KEY_ID` / `BERTH_S3_SECRET_ACCESS_KEY` (and `BERTH_S3_SESSION_TOKEN`),
/// else the standard AWS sources (the environment, then the shared credentials file and
/// `AWS_PROFILE`).
fn s3_credentials() -> Result<(String, String, Option<String>), ServerError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) = (
        var("BERTH_S3_ACCESS_KEY_ID"),
        var("BERTH_S3_SECRET_ACCESS_KEY"),
    ) {
        return Ok((id, secret, var("BERTH_S3_SESSION_TOKEN")));
    }
    let found = berth_agent::config::Credentials::from_environment().map_err(|e| {
        config_error(&format!(
            "no S3 credentials in BERTH_S3_ACCESS_KEY_ID / BERTH_S3_SECRET_ACCESS_KEY, and {e}"
        ))
    })?;
    Ok((
        found.access_key_id,
        found.secret_access_key,
        found.session_token,
    ))
}

/// The registry over `store` with its blobs where `blobs` says; a bucket is checked first
/// (one listing), so a wrong name, endpoint or credentials stop the server at start with
/// S3's own words. With S3 blobs and a `shared_store` (etcd, replicas), uploads are
/// staged in the bucket so that any replica continues any upload.
pub async fn open_registry(
    blobs: &BlobsConfig,
    store: Arc<dyn Store>,
    data_dir: &Path,
    shared_store: bool,
) -> Result<Registry, ServerError> {
    match blobs {
        BlobsConfig::DataDir => Ok(Registry::open(store, data_dir)?),
        BlobsConfig::S3(config) => {
            let s3 = S3BlobStore::new(config).map_err(|e| config_error(&e.to_string()))?;
            s3.check().await.map_err(|e| {
                config_error(&format!(
                    "bucket {} at {}: {e}",
                    config.bucket, config.endpoint
                ))
            })?;
            tracing::info!(bucket = %config.bucket, prefix = %config.prefix, endpoint = %config.endpoint, uploads_in_bucket = shared_store, "registry blobs in S3-compatible storage");
            Ok(Registry::with_s3_blobs(store, data_dir, s3, shared_store)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(location: Option<&str>, endpoint: Option<&str>) -> String {
        match BlobsConfig::from_flags(location, endpoint, None) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("accepted: {c:?}"),
        }
    }

    #[test]
    fn flags() {
        assert!(matches!(
            BlobsConfig::from_flags(None, None, None),
            Ok(BlobsConfig::DataDir)
        ));
        assert!(refused(Some("bucket"), Some("http://127.0.0.1:9000")).contains("s3://BUCKET"));
        assert!(
            refused(Some("s3://Bucket"), Some("http://127.0.0.1:9000")).contains("bucket name")
        );
    }
}
