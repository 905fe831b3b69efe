//! Content digests as the OCI image spec defines them: `algorithm:hex`.
//! Only the registered algorithms sha256 and sha512 are accepted.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest format: {0}")]
    Format(String),
    #[error("unsupported digest algorithm: {0}")]
    Algorithm(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }
}

/// A validated digest. The hex part is always lower case, so it is safe to use as a file
/// name (no path traversal can come through it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// sha256 of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        let mut h = Hasher::new(DigestAlgorithm::Sha256);
        h.update(data);
        h.finish()
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_string()))?;
        let algorithm = match alg {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            other => {
                // The grammar allows other algorithms; we refuse them as unsupported rather
                // than as malformed, as the distribution spec asks.
                if !other.is_empty()
                    && other.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                    })
                {
                    return Err(DigestError::Algorithm(other.to_string()));
                }
                return Err(DigestError::Format(s.to_string()));
            }
        };
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Format(s.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental hasher for either algorithm, used while streaming uploads.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: DigestAlgorithm) -> Hasher {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The running state, to continue the hash in another process (a registry upload
    /// appended to by several replicas): sha2's serialisable state — the chaining value,
    /// the block count and the buffered partial block — as hex (about 200 characters).
    pub fn state_hex(&self) -> String {
        use sha2::digest::common::hazmat::SerializableState;
        match self {
            Hasher::Sha256(h) => hex::encode(h.serialize()),
            Hasher::Sha512(h) => hex::encode(h.serialize()),
        }
    }

    /// A hasher continued from [`Hasher::state_hex`]; None when `state` is not one.
    pub fn from_state_hex(algorithm: DigestAlgorithm, state: &str) -> Option<Hasher> {
        use sha2::digest::common::hazmat::{SerializableState, SerializedState};
        let bytes = hex::decode(state).ok()?;
        match algorithm {
            DigestAlgorithm::Sha256 => {
                let state = SerializedState::<sha2::Sha256>::try_from(bytes.as_slice()).ok()?;
                sha2::Sha256::deserialize(&state).ok().map(Hasher::Sha256)
            }
            DigestAlgorithm::Sha512 => {
                let state = SerializedState::<sha2::Sha512>::try_from(bytes.as_slice()).ok()?;
                sha2::Sha512::deserialize(&state).ok().map(Hasher::Sha512)
            }
        }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        match self {
            Hasher::Sha256(_) => DigestAlgorithm::Sha256,
            Hasher::Sha512(_) => DigestAlgorithm::Sha512,
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (DigestAlgorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (DigestAlgorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sha256() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    /// A hash saved mid-block and continued from its saved state (as another replica
    /// continues an upload) ends where an uninterrupted one does.
    #[test]
    fn hashes_continue_from_a_saved_state() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            for cut in [0, 1, 63, 64, 65, 127, 128, 4097, 10_000] {
                let mut h = Hasher::new(algorithm);
                h.update(&data[..cut]);
                let state = h.state_hex();
                let mut resumed = Hasher::from_state_hex(algorithm, &state).unwrap();
                assert_eq!(resumed.algorithm(), algorithm);
                resumed.update(&data[cut..]);
                let mut whole = Hasher::new(algorithm);
                whole.update(&data);
                assert_eq!(
                    resumed.finish(),
                    whole.finish(),
                    "{algorithm:?} cut at {cut}"
                );
            }
        }
        // Small enough for a store record: sha256's is 40 bytes of core state (chaining
        // value, block count) and a 64-byte block buffer.
        assert_eq!(Hasher::new(DigestAlgorithm::Sha256).state_hex().len(), 208);
        assert!(Hasher::from_state_hex(DigestAlgorithm::Sha256, "00").is_none());
        assert!(Hasher::from_state_hex(DigestAlgorithm::Sha256, "not hex").is_none());
    }

    #[test]
    fn sha512_is_supported() {
        let mut h = Hasher::new(DigestAlgorithm::Sha512);
        h.update(b"abc");
        let d = h.finish();
        assert!(d.to_string().starts_with("sha512:ddaf35a1"));
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn refuses_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:abc",
            "sha256:../../etc/passwd",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} should be refused");
        }
        assert!(matches!(
            "md5:d41d8cd98f00b204e9800998ecf8427e".parse::<Digest>(),
            Err(DigestError::Algorithm(_))
        ));
    }
}
