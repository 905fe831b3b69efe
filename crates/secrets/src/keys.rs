//! Secrets Manager's key layout, all of it: `secretsmanager/{account}/{region}/secret/{name}`
//! (the secret) and `secretsmanager/{account}/{region}/version/{NAME-XXXXXX}/{version-id}`
//! (one version's sealed value, keyed by the ARN's unique last part so a name reused after a
//! purge never meets an old version). ARNs are built and parsed here too.

use rand::Rng;

use crate::{MAX_TAGS, Result, Secret, Tag, invalid};

pub(crate) const ROOT: &str = "secretsmanager/";

/// Whose secrets: an account in a region, as the request's signature names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretScope {
    pub account: String,
    pub region: String,
}

impl SecretScope {
    fn prefix(&self) -> String {
        format!("{ROOT}{}/{}/", self.account, self.region)
    }
    pub(crate) fn secrets_prefix(&self) -> String {
        format!("{}secret/", self.prefix())
    }
    pub(crate) fn secret_key(&self, name: &str) -> String {
        format!("{}{name}", self.secrets_prefix())
    }
    pub(crate) fn versions_prefix(&self, secret_id: &str) -> String {
        format!("{}version/{secret_id}/", self.prefix())
    }
    pub(crate) fn version_key(&self, secret_id: &str, version: &str) -> String {
        format!("{}{version}", self.versions_prefix(secret_id))
    }

    /// The scope a secret record's key belongs to.
    pub(crate) fn of_key(key: &str) -> Option<SecretScope> {
        let mut parts = key.strip_prefix(ROOT)?.splitn(3, '/');
        Some(SecretScope {
            account: parts.next()?.to_string(),
            region: parts.next()?.to_string(),
        })
    }

    /// The scope of a secret's ARN.
    pub(crate) fn of_arn(arn: &str) -> Option<SecretScope> {
        let mut parts = arn.split(':');
        Some(SecretScope {
            region: parts.nth(3)?.to_string(),
            account: parts.next()?.to_string(),
        })
    }

    /// A new secret's ARN: `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`, six
    /// random letters and digits, as Secrets Manager makes them.
    pub fn new_arn(&self, name: &str) -> String {
        let suffix: String = rand::thread_rng()
            .sample_iter(rand::distributions::Alphanumeric)
            .take(6)
            .map(char::from)
            .collect();
        format!(
            "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
            self.region, self.account
        )
    }

    /// The names a `SecretId` may mean: a name as given; an ARN of this scope's its
    /// `secret:` part, without the random suffix (a full ARN) or as it is (a partial ARN).
    pub(crate) fn candidate_names(&self, id: &str) -> Result<Vec<String>> {
        if id.is_empty() {
            return Err(invalid(
                "1 validation error detected: Value '' at 'secretId' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let Some(rest) = id.strip_prefix("arn:") else {
            return Ok(vec![id.to_string()]);
        };
        let parts: Vec<&str> = rest.splitn(6, ':').collect();
        let [_, "secretsmanager", region, account, resource] = parts[..5] else {
            return Err(invalid("Invalid ARN"));
        };
        let _ = resource;
        if region != self.region || account != self.account {
            return Ok(Vec::new());
        }
        let Some(name) = id.split_once(":secret:").map(|(_, n)| n) else {
            return Err(invalid("Invalid ARN"));
        };
        let mut names = Vec::with_capacity(2);
        if let Some((base, suffix)) = name.rsplit_once('-')
            && suffix.len() == 6
            && suffix.chars().all(|c| c.is_ascii_alphanumeric())
        {
            names.push(base.to_string());
        }
        names.push(name.to_string());
        Ok(names)
    }

    /// Whether the ARN `id` names `secret`: its full ARN, or its ARN without the suffix.
    pub(crate) fn arn_names(&self, id: &str, secret: &Secret) -> bool {
        id == secret.arn
            || secret
                .arn
                .strip_prefix(id)
                .is_some_and(|rest| rest.len() == 7)
    }
}

pub(crate) fn is_secret_key(key: &str) -> bool {
    key.strip_prefix(ROOT)
        .and_then(|rest| rest.splitn(3, '/').nth(2))
        .is_some_and(|rest| rest.starts_with("secret/"))
}

/// Tags: at most 50; keys 1–128 characters, values up to 256.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "Number of tags exceeds the limit of {MAX_TAGS} tags."
        )));
    }
    for tag in tags {
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(invalid(
                "1 validation error detected: Value at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128",
            ));
        }
        if tag.value.chars().count() > 256 {
            return Err(invalid(
                "1 validation error detected: Value at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256",
            ));
        }
        if tag.key.starts_with("aws:") {
            return Err(invalid(
                "Invalid tag key: tag keys can't start with 'aws:'.",
            ));
        }
    }
    Ok(())
}
