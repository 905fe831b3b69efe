//! Who may call: the root credentials (SigV4 for the AWS APIs) and ECR authorization tokens
//! (HTTP Basic for the registry).
//!
//! A registry password is `base64url(claims) "." base64url(HMAC-SHA256(key, claims))`: it has
//! no `:` (so `AWS:<password>` splits unambiguously), is bound to its account and region, and
//! cannot be forged without the server's key, which lives in the data dir.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use berth_model::{AccountId, Region};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How long a GetDownloadUrlForLayer link works.
pub const DOWNLOAD_TTL_SECONDS: i64 = 15 * 60;

/// The root access key pair every AWS API request is checked against.
#[derive(Clone)]
pub struct RootCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl berth_sigv4::CredentialLookup for RootCredentials {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        (access_key_id == self.access_key_id).then(|| self.secret_access_key.clone())
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// account
    a: String,
    /// region
    r: String,
    /// expiry, unix seconds
    e: i64,
    /// nonce, so two tokens issued in the same second differ
    n: u64,
    /// For a download link: the one blob it grants, `repo@digest`. Such a token is not a
    /// registry password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    /// Who asked for the token, when it is not the account's root: the registry authorizes
    /// each push and pull for them (IAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<berth_iam::Principal>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no basic auth credentials")]
    Missing,
    #[error("Your authorization token is invalid.")]
    Invalid,
    #[error("Your authorization token has expired. Reauthenticate and try again.")]
    Expired,
}

/// Issues and checks registry passwords.
#[derive(Clone)]
pub struct TokenIssuer {
    key: [u8; 32],
    ttl_seconds: i64,
}

/// A checked token: the scope it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub account: AccountId,
    pub region: Region,
    /// Who the token was issued to (`None`: the account's root).
    pub principal: Option<berth_iam::Principal>,
}

impl TokenIssuer {
    pub fn new(key: [u8; 32], ttl_seconds: i64) -> TokenIssuer {
        TokenIssuer { key, ttl_seconds }
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length works");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn sign(&self, claims: &Claims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("serialisable"));
        let sig = URL_SAFE_NO_PAD.encode(self.mac(body.as_bytes()));
        format!("{body}.{sig}")
    }

    /// A new password of the account's root and its expiry (unix seconds).
    pub fn issue(&self, account: &AccountId, region: &Region, now: i64) -> (String, i64) {
        self.issue_for(account, region, None, now)
    }

    /// `x-berth-forwarded-for`'s value: the client address `ip` a replica vouches for when
    /// it passes request `binding` (its `Authorization`, or its path and query) on to the
    /// leader, sealed with the key every replica shares so that no client can claim an
    /// address of its choosing (`aws:SourceIp`).
    pub fn seal_forwarded_for(&self, ip: &str, binding: &str) -> String {
        let seal =
            URL_SAFE_NO_PAD.encode(self.mac(format!("forwarded-for\n{ip}\n{binding}").as_bytes()));
        format!("{ip} {seal}")
    }

    /// The address in a sealed `x-berth-forwarded-for` value for request `binding`, when the
    /// seal is this installation's.
    pub fn open_forwarded_for(&self, value: &str, binding: &str) -> Option<String> {
        let (ip, seal) = value.split_once(' ')?;
        let seal = URL_SAFE_NO_PAD.decode(seal).ok()?;
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length works");
        mac.update(format!("forwarded-for\n{ip}\n{binding}").as_bytes());
        mac.verify_slice(&seal).ok()?;
        Some(ip.to_string())
    }

    /// The id of the credentials of `task_arn`'s role of `role_type` (`TaskApplication`,
    /// `TaskExecution`): the same for the task's whole life on every replica and across
    /// restarts (a container is told its credentials' path once, when it is created), and
    /// unguessable without the installation's key. UUID-shaped, as ECS's are.
    pub fn credentials_id(&self, task_arn: &str, role_type: &str) -> String {
        let mac = self.mac(format!("task-credentials\n{role_type}\n{task_arn}").as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&mac[..16]);
        uuid::Uuid::from_bytes(bytes).to_string()
    }

    /// A new password for `principal` (`None` or root: unrestricted) and its expiry.
    pub fn issue_for(
        &self,
        account: &AccountId,
        region: &Region,
        principal: Option<&berth_iam::Principal>,
        now: i64,
    ) -> (String, i64) {
        let expires = now + self.ttl_seconds;
        let claims = Claims {
            a: account.to_string(),
            r: region.to_string(),
            e: expires,
            n: rand::random(),
            d: None,
            p: principal
                .filter(|p| !matches!(p, berth_iam::Principal::Root { .. }))
                .cloned(),
        };
        (self.sign(&claims), expires)
    }

    /// A token for a GetDownloadUrlForLayer link: one blob of one repository, for
    /// `DOWNLOAD_TTL_SECONDS`, accepted only in that link's query string.
    pub fn issue_download(
        &self,
        account: &AccountId,
        region: &Region,
        blob: &str,
        now: i64,
    ) -> String {
        self.sign(&Claims {
            a: account.to_string(),
            r: region.to_string(),
            e: now + DOWNLOAD_TTL_SECONDS,
            n: rand::random(),
            d: Some(blob.to_string()),
            p: None,
        })
    }

    /// Check a download link's token against the blob (`repo@digest`) it is used for.
    pub fn check_download(
        &self,
        token: &str,
        blob: &str,
        now: i64,
    ) -> Result<TokenGrant, TokenError> {
        let (grant, scope) = self.check_claims(token, now)?;
        if scope.as_deref() != Some(blob) {
            return Err(TokenError::Invalid);
        }
        Ok(grant)
    }

    /// ECR's authorizationToken: base64 of `AWS:<password>`.
    pub fn authorization_token(password: &str) -> String {
        STANDARD.encode(format!("AWS:{password}"))
    }

    /// Check a registry password (not a download token).
    pub fn check(&self, password: &str, now: i64) -> Result<TokenGrant, TokenError> {
        match self.check_claims(password, now)? {
            (grant, None) => Ok(grant),
            (_, Some(_)) => Err(TokenError::Invalid),
        }
    }

    fn check_claims(
        &self,
        password: &str,
        now: i64,
    ) -> Result<(TokenGrant, Option<String>), TokenError> {
        let (body, sig) = password.split_once('.').ok_or(TokenError::Invalid)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Invalid)?;
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length works");
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Invalid)?;
        if now >= claims.e {
            return Err(TokenError::Expired);
        }
        let grant = TokenGrant {
            account: claims.a.parse().map_err(|_| TokenError::Invalid)?,
            region: claims.r.parse().map_err(|_| TokenError::Invalid)?,
            principal: claims.p,
        };
        Ok((grant, claims.d))
    }

    /// Check an HTTP `Authorization: Basic ...` header value.
    pub fn check_basic(&self, header: Option<&str>, now: i64) -> Result<TokenGrant, TokenError> {
        let header = header.ok_or(TokenError::Missing)?;
        let (scheme, value) = header.split_once(' ').ok_or(TokenError::Invalid)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(TokenError::Missing);
        }
        let decoded = STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(TokenError::Invalid)?;
        let (user, password) = decoded.split_once(':').ok_or(TokenError::Invalid)?;
        if user != "AWS" {
            return Err(TokenError::Invalid);
        }
        self.check(password, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new([7; 32], 3600)
    }

    #[test]
    fn a_forwarded_address_is_believed_only_with_this_installations_seal_for_that_request() {
        let sealed = issuer().seal_forwarded_for("192.0.2.7", "AWS4-HMAC-SHA256 Credential=A");
        assert_eq!(
            issuer().open_forwarded_for(&sealed, "AWS4-HMAC-SHA256 Credential=A"),
            Some("192.0.2.7".to_string())
        );
        // Another request, another installation's key, or an address put in by hand: no.
        assert_eq!(issuer().open_forwarded_for(&sealed, "other"), None);
        let other = TokenIssuer::new([8; 32], 3600);
        assert_eq!(
            other.open_forwarded_for(&sealed, "AWS4-HMAC-SHA256 Credential=A"),
            None
        );
        let forged = sealed.replacen("192.0.2.7", "10.0.0.1", 1);
        assert_eq!(
            issuer().open_forwarded_for(&forged, "AWS4-HMAC-SHA256 Credential=A"),
            None
        );
        assert_eq!(issuer().open_forwarded_for("10.0.0.1", "x"), None);
    }

    #[test]
    fn round_trip_and_scope() {
        let account: AccountId = "000000000000".parse().unwrap();
        let region: Region = "eu-west-1".parse().unwrap();
        let (pw, exp) = issuer().issue(&account, &region, 1000);
        assert_eq!(exp, 4600);
        assert!(!pw.contains(':'));
        let grant = issuer().check(&pw, 1001).unwrap();
        assert_eq!(grant.region, region);
        assert_eq!(issuer().check(&pw, 4600), Err(TokenError::Expired));
        let basic = format!("Basic {}", STANDARD.encode(format!("AWS:{pw}")));
        assert!(issuer().check_basic(Some(&basic), 1001).is_ok());
    }

    #[test]
    fn forgeries_fail() {
        let account: AccountId = "000000000000".parse().unwrap();
        let region: Region = "us-east-1".parse().unwrap();
        let (pw, _) = issuer().issue(&account, &region, 1000);
        let other = TokenIssuer::new([8; 32], 3600);
        assert_eq!(other.check(&pw, 1001), Err(TokenError::Invalid));
        // Swap in claims for another account, keeping the signature.
        let (_, sig) = pw.split_once('.').unwrap();
        let forged_claims =
            URL_SAFE_NO_PAD.encode(br#"{"a":"111111111111","r":"us-east-1","e":99999,"n":1}"#);
        assert_eq!(
            issuer().check(&format!("{forged_claims}.{sig}"), 1001),
            Err(TokenError::Invalid)
        );
        assert_eq!(issuer().check("garbage", 1001), Err(TokenError::Invalid));
        assert_eq!(issuer().check_basic(None, 1), Err(TokenError::Missing));
    }

    #[test]
    fn download_tokens_grant_one_blob_only() {
        let account: AccountId = "000000000000".parse().unwrap();
        let region: Region = "us-east-1".parse().unwrap();
        let t = issuer().issue_download(&account, &region, "app@sha256:aa", 1000);
        assert!(issuer().check_download(&t, "app@sha256:aa", 1001).is_ok());
        assert_eq!(
            issuer().check_download(&t, "app@sha256:bb", 1001),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            issuer().check_download(&t, "app@sha256:aa", 1000 + DOWNLOAD_TTL_SECONDS),
            Err(TokenError::Expired)
        );
        // Not a registry password.
        assert_eq!(issuer().check(&t, 1001), Err(TokenError::Invalid));
        let (pw, _) = issuer().issue(&account, &region, 1000);
        assert_eq!(
            issuer().check_download(&pw, "app@sha256:aa", 1001),
            Err(TokenError::Invalid)
        );
    }
}
