//! ECR fixtures for the in-process contract tests: repositories made through the API, the
//! registry password from GetAuthorizationToken, registry clients logged in with it, an
//! image in the Docker schema 2 format `docker push` sends, and the shapes the tests compare
//! (image ids, tag lists).

use base64::Engine;
use serde_json::{Value, json};

use crate::oci::{DOCKER_MANIFEST, ImageParts, make_image, sha256_digest};
use crate::{Endpoint, Registry, TestServer, basic_auth};

/// Docker's image config media type (schema 2).
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's gzipped layer media type (schema 2).
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

impl TestServer {
    /// CreateRepository of `name` with the request fields of `extra` (an object) added;
    /// returns the `repository`.
    #[track_caller]
    pub fn create_repo(&self, name: &str, extra: Value) -> Value {
        let mut request = json!({"repositoryName": name});
        if let Value::Object(fields) = extra {
            request.as_object_mut().unwrap().extend(fields);
        }
        self.ecr("CreateRepository", request).ok()["repository"].clone()
    }

    /// GetAuthorizationToken's first `authorizationData`.
    #[track_caller]
    pub fn authorization_data(&self) -> Value {
        self.ecr("GetAuthorizationToken", json!({})).ok()["authorizationData"][0].clone()
    }

    /// The registry password: GetAuthorizationToken's token decoded, `AWS:` taken off (what
    /// `aws ecr get-login-password` prints).
    #[track_caller]
    pub fn login_password(&self) -> String {
        let data = self.authorization_data();
        password_of_token(data["authorizationToken"].as_str().expect("a token"))
    }

    /// A raw registry client logged in as `AWS`.
    #[track_caller]
    pub fn registry(&self) -> Registry {
        Registry {
            port: self.port(),
            authorization: Some(basic_auth("AWS", &self.login_password())),
        }
    }

    /// A raw registry client without credentials.
    pub fn registry_anonymous(&self) -> Registry {
        Registry {
            port: self.port(),
            authorization: None,
        }
    }
}

/// The password in an ECR authorization token (`base64("AWS:" + password)`).
#[track_caller]
pub fn password_of_token(token: &str) -> String {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("base64 token");
    let decoded = String::from_utf8(decoded).expect("a UTF-8 token");
    decoded
        .strip_prefix("AWS:")
        .expect("token decodes to AWS:<password>")
        .to_owned()
}

/// [`make_image`] in the Docker schema 2 format a classic `docker push` sends: Docker's
/// manifest, config and layer media types around the same config and layer bytes.
pub fn docker_image(arch: &str, payload: &str) -> ImageParts {
    let mut image = make_image(arch, payload);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": image.config_digest,
                   "size": image.config.len()},
        "layers": [{"mediaType": DOCKER_LAYER_GZIP, "digest": image.layer_digest,
                    "size": image.layer.len()}],
    }))
    .unwrap();
    image.manifest_digest = sha256_digest(&manifest);
    image.manifest = manifest;
    image.manifest_media_type = DOCKER_MANIFEST.to_owned();
    image
}

/// The `imageIds` of a ListImages or BatchDeleteImage answer as sorted (tag, digest) pairs.
pub fn image_ids(v: &Value) -> Vec<(Option<String>, String)> {
    let mut ids: Vec<(Option<String>, String)> = v["imageIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["imageTag"].as_str().map(str::to_owned),
                i["imageDigest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    ids.sort();
    ids
}

/// ECR's `tags` (`[{"Key", "Value"}]`) as sorted (key, value) pairs.
pub fn tag_pairs(v: &Value) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().into(),
                t["Value"].as_str().unwrap().into(),
            )
        })
        .collect();
    tags.sort();
    tags
}

/// An AWS timestamp as the JSON protocols send it: seconds since the epoch, a number.
#[track_caller]
pub fn epoch_seconds(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("not a timestamp in epoch seconds: {v}"))
}
