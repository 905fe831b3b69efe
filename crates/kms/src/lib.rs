//! Encryption at rest for the values AWS keeps under KMS keys: Secrets Manager's secret
//! values and SSM's `SecureString` parameters.
//!
//! Berth has no KMS. Each installation has one data key, derived (HKDF-SHA256) from the
//! installation's 32-byte key — the key its registry tokens are signed with, kept in the
//! data dir (`token-key`) or, for replicas, in the shared store — so every replica can read
//! what any other wrote. Values are sealed with AES-256-GCM under a fresh random nonce, the
//! record they belong to bound in as associated data (a sealed value copied into another
//! record does not open). The `KmsKeyId` a request names is kept and shown as given; it
//! selects nothing (docs/secrets.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::{SecureRandom, SystemRandom};

/// The AWS managed key Secrets Manager encrypts with when a request names none.
pub const SECRETS_MANAGER_DEFAULT_KEY: &str = "alias/aws/secretsmanager";
/// The AWS managed key SSM encrypts `SecureString` parameters with when a request names none.
pub const SSM_DEFAULT_KEY: &str = "alias/aws/ssm";

/// What went wrong opening a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("the sealed value is not valid base64 or too short")]
    Malformed,
    #[error("the sealed value does not open with this installation's key (wrong key or record)")]
    Unopenable,
    #[error("no random bytes: {0}")]
    Random(String),
}

/// The installation's data key.
pub struct DataKey {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

struct KeyLen;

impl ring::hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        32
    }
}

impl DataKey {
    /// The data key derived from the installation's key.
    pub fn derive(installation_key: &[u8; 32]) -> DataKey {
        let prk = Salt::new(HKDF_SHA256, b"berth-kms-salt-v1").extract(installation_key);
        let mut bytes = [0u8; 32];
        prk.expand(&[b"berth values at rest v1"], KeyLen)
            .and_then(|okm| okm.fill(&mut bytes))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let key = UnboundKey::new(&AES_256_GCM, &bytes).expect("32 bytes is an AES-256 key");
        DataKey {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
        }
    }

    /// `plaintext` sealed for the record `binding` names: base64 of nonce, ciphertext, tag.
    pub fn seal(&self, binding: &str, plaintext: &[u8]) -> Result<String, KmsError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|e| KmsError::Random(e.to_string()))?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| KmsError::Unopenable)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// The plaintext of a value [`DataKey::seal`] made for the same `binding`.
    pub fn open(&self, binding: &str, sealed: &str) -> Result<Vec<u8>, KmsError> {
        let mut bytes = STANDARD.decode(sealed).map_err(|_| KmsError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(KmsError::Malformed);
        }
        let mut body = bytes.split_off(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = bytes.try_into().map_err(|_| KmsError::Malformed)?;
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(binding.as_bytes()),
                &mut body,
            )
            .map_err(|_| KmsError::Unopenable)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_binding() {
        let key = DataKey::derive(&[7; 32]);
        let sealed = key.seal("secret/a/v1", b"hunter2").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key.open("secret/a/v1", &sealed).unwrap(), b"hunter2");
        // Another record, another installation, a changed byte: refused.
        assert!(matches!(
            key.open("secret/b/v1", &sealed),
            Err(KmsError::Unopenable)
        ));
        let other = DataKey::derive(&[8; 32]);
        assert!(matches!(
            other.open("secret/a/v1", &sealed),
            Err(KmsError::Unopenable)
        ));
        let mut raw = STANDARD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(key.open("secret/a/v1", &STANDARD.encode(raw)).is_err());
        assert!(matches!(key.open("x", "AAAA"), Err(KmsError::Malformed)));
    }

    #[test]
    fn every_seal_takes_a_fresh_nonce() {
        let key = DataKey::derive(&[1; 32]);
        let a = key.seal("r", b"same").unwrap();
        let b = key.seal("r", b"same").unwrap();
        assert_ne!(a, b);
        assert_eq!(key.derive_check(), DataKey::derive(&[1; 32]).derive_check());
    }

    impl DataKey {
        /// Two derivations from one installation key open each other's values.
        fn derive_check(&self) -> Vec<u8> {
            let sealed = self.seal("probe", b"probe").unwrap();
            DataKey::derive(&[1; 32]).open("probe", &sealed).unwrap()
        }
    }
}
