//! An installation's identity. Several Berth installations may share one Docker Engine (CI
//! jobs side by side, two checkouts on one laptop, a test suite starting many servers): every
//! Docker object an installation creates carries its id in a label and in its name, so that
//! one installation never takes, adopts, removes or collides with another's. The id is chosen
//! once, when an installation's store is first opened, and kept with its state.

use std::fmt;
use std::str::FromStr;

/// The label every Docker object of an installation carries (containers, networks, volumes).
pub const LABEL_INSTALLATION: &str = "berth.installation";

const LEN: usize = 10;
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Ten lower-case letters and digits, starting with a letter: short enough for Docker names,
/// long enough (36^9 × 26) that two installations never draw the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstallationId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid installation id '{0}' (ten lower-case letters and digits, starting with a letter)"
)]
pub struct InstallationIdError(String);

impl InstallationId {
    /// An id drawn from random bits (the caller's random source: this crate does no I/O).
    pub fn from_random(mut bits: u128) -> InstallationId {
        let mut id = String::with_capacity(LEN);
        // A letter first, so the id never reads as a number.
        id.push(char::from(ALPHABET[10 + (bits % 26) as usize]));
        bits /= 26;
        for _ in 1..LEN {
            id.push(char::from(ALPHABET[(bits % 36) as usize]));
            bits /= 36;
        }
        InstallationId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InstallationId {
    type Err = InstallationIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == LEN
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(InstallationId(s.to_owned()))
        } else {
            Err(InstallationIdError(s.to_owned()))
        }
    }
}

impl serde::Serialize for InstallationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for InstallationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_parse_back_and_differ() {
        let a = InstallationId::from_random(0);
        let b = InstallationId::from_random(u128::MAX);
        let c = InstallationId::from_random(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        for id in [&a, &b, &c] {
            assert_eq!(id.as_str().parse::<InstallationId>().unwrap(), *id);
            assert_eq!(id.as_str().len(), 10);
        }
        assert_eq!(a.as_str(), "a000000000");
        assert_ne!(b, c);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "abc",
            "1bcdefghij",
            "Abcdefghij",
            "abcdefghi-",
            "abcdefghijk",
        ] {
            assert!(bad.parse::<InstallationId>().is_err(), "{bad}");
        }
    }
}
