//! ListSecrets (and BatchGetSecretValue's `Filters`): the filters as the Filter reference
//! defines them — prefix matches, `description` and `all` not case-sensitive, a value
//! starting with `!` negated; the values of one filter OR'd, filters AND'd — paged in name
//! order with the store's page token.

use crate::{Result, Secret, SecretScope, Secrets, invalid, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKey {
    Description,
    Name,
    TagKey,
    TagValue,
    PrimaryRegion,
    OwningService,
    All,
}

impl FilterKey {
    pub fn parse(key: &str) -> Result<FilterKey> {
        Ok(match key {
            "description" => FilterKey::Description,
            "name" => FilterKey::Name,
            "tag-key" => FilterKey::TagKey,
            "tag-value" => FilterKey::TagValue,
            "primary-region" => FilterKey::PrimaryRegion,
            "owning-service" => FilterKey::OwningService,
            "all" => FilterKey::All,
            other => {
                return Err(invalid(format!(
                    "1 validation error detected: Value '{other}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [all, name, tag-key, description, tag-value, owning-service, primary-region]"
                )));
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct Filter {
    pub key: FilterKey,
    pub values: Vec<String>,
}

impl Filter {
    fn matches(&self, secret: &Secret) -> bool {
        self.values.iter().any(|value| {
            let (negated, value) = match value.strip_prefix('!') {
                Some(v) => (true, v),
                None => (false, value.as_str()),
            };
            self.matches_one(secret, value) != negated
        })
    }

    fn matches_one(&self, secret: &Secret, value: &str) -> bool {
        let prefix = |text: &str| text.starts_with(value);
        match self.key {
            FilterKey::Name => prefix(&secret.name),
            FilterKey::Description => secret.description.as_deref().is_some_and(|d| {
                let lower = value.to_lowercase();
                words(d).iter().any(|w| w.starts_with(&lower))
                    || d.to_lowercase().starts_with(&lower)
            }),
            FilterKey::TagKey => secret.tags.iter().any(|t| prefix(&t.key)),
            FilterKey::TagValue => secret.tags.iter().any(|t| prefix(&t.value)),
            // Berth has no replicas of secrets: every secret is its region's own primary.
            FilterKey::PrimaryRegion => false,
            // No secret is managed by another service.
            FilterKey::OwningService => false,
            FilterKey::All => {
                let mut hay = words(&secret.name);
                if let Some(d) = &secret.description {
                    hay.extend(words(d));
                }
                for t in &secret.tags {
                    hay.extend(words(&t.key));
                    hay.extend(words(&t.value));
                }
                words(value)
                    .iter()
                    .all(|w| hay.iter().any(|h| h.starts_with(w.as_str())))
            }
        }
    }
}

/// Lower-cased words: split at anything not a letter or digit, and where letters turn to
/// digits or lower case to upper (the user guide's `credsDatabase#892`).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut last: Option<char> = None;
    for c in text.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word).to_lowercase());
            }
            last = None;
            continue;
        }
        if let Some(prev) = last {
            let split = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_alphabetic() != c.is_alphabetic());
            if split && !word.is_empty() {
                out.push(std::mem::take(&mut word).to_lowercase());
            }
        }
        word.push(c);
        last = Some(c);
    }
    if !word.is_empty() {
        out.push(word.to_lowercase());
    }
    out
}

impl Secrets {
    /// ListSecrets: secrets of `scope` in name order matching every filter, those
    /// scheduled for deletion only when `include_planned_deletion`; a page of at most
    /// `limit` and the token of the next.
    pub fn list(
        &self,
        scope: &SecretScope,
        filters: &[Filter],
        include_planned_deletion: bool,
        next_token: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Secret>, Option<String>)> {
        let prefix = scope.secrets_prefix();
        let after = match next_token {
            Some(t) => Some(berth_store::page_token::decode(t).ok_or_else(|| {
                crate::SecretsError::InvalidParameter("Invalid NextToken.".into())
            })?),
            None => None,
        };
        let at = now();
        let mut out: Vec<Secret> = Vec::new();
        let mut more = false;
        berth_store::scan(
            self.store(),
            &prefix,
            after.map(|name| format!("{prefix}{name}")),
            |kv| {
                let secret: Secret = berth_store::decode(kv)?;
                let purged = secret.deletion_date.is_some_and(|d| d <= at);
                if purged
                    || (secret.is_deleted() && !include_planned_deletion)
                    || !filters.iter().all(|f| f.matches(&secret))
                {
                    return Ok::<_, crate::SecretsError>(true);
                }
                if out.len() == limit {
                    more = true;
                    return Ok(false);
                }
                out.push(secret);
                Ok(true)
            },
        )?;
        let token = more
            .then(|| out.last())
            .flatten()
            .map(|s| berth_store::page_token::encode(&s.name));
        Ok((out, token))
    }
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn words_split_as_the_user_guide_says() {
        assert_eq!(words("credsDatabase#892"), ["creds", "database", "892"]);
        assert_eq!(words("My_Secret"), ["my", "secret"]);
    }
}
