//! Names as ECR and the OCI distribution spec constrain them: repository names, tags,
//! references (tag or digest), regions and account ids.

use std::fmt;
use std::str::FromStr;

use crate::Digest;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("invalid repository name '{0}'")]
    Repository(String),
    #[error("invalid tag '{0}'")]
    Tag(String),
    #[error("invalid reference '{0}'")]
    Reference(String),
    #[error("invalid region '{0}'")]
    Region(String),
    #[error("invalid account id '{0}'")]
    Account(String),
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An ECR repository name: 2 to 256 characters matching
/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`.
/// The grammar excludes `..`, empty path components and leading `/`, so a name is safe to
/// use as a key component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);
string_newtype!(RepositoryName);

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* (ECR's RepositoryName pattern, the OCI name grammar)
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&ch| ch == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl FromStr for RepositoryName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < 2 || s.len() > 256 || !s.split('/').all(valid_component) {
            return Err(NameError::Repository(s.to_string()));
        }
        Ok(RepositoryName(s.to_string()))
    }
}

/// An image tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` (OCI distribution spec).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageTag(String);
string_newtype!(ImageTag);

impl FromStr for ImageTag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !ok {
            return Err(NameError::Tag(s.to_string()));
        }
        Ok(ImageTag(s.to_string()))
    }
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(ImageTag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse()
                .map(Reference::Digest)
                .map_err(|_| NameError::Reference(s.to_string()))
        } else {
            s.parse()
                .map(Reference::Tag)
                .map_err(|_| NameError::Reference(s.to_string()))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// An AWS region name as it appears in a SigV4 credential scope (`us-east-1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);
string_newtype!(Region);

impl FromStr for Region {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if !ok {
            return Err(NameError::Region(s.to_string()));
        }
        Ok(Region(s.to_string()))
    }
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);
string_newtype!(AccountId);

impl FromStr for AccountId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NameError::Account(s.to_string()));
        }
        Ok(AccountId(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for good in [
            "ab",
            "my-app",
            "team/app",
            "a.b_c-d/e/f",
            "x1/y2",
            "a__b",
            "a---b",
        ] {
            assert!(good.parse::<RepositoryName>().is_ok(), "{good}");
        }
        for bad in [
            "a", "", "App", "a//b", "/ab", "ab/", "../ab", "ab/../cd", "a..b", "a-", "-a", "a b",
            "ab%2f..", "a___b", "a_-b", "a._b",
        ] {
            assert!(bad.parse::<RepositoryName>().is_err(), "{bad}");
        }
        assert!("a".repeat(257).parse::<RepositoryName>().is_err());
    }

    #[test]
    fn tags_and_references() {
        assert!("latest".parse::<ImageTag>().is_ok());
        assert!("v1.2.3_rc-1".parse::<ImageTag>().is_ok());
        assert!(".hidden".parse::<ImageTag>().is_err());
        assert!("a".repeat(129).parse::<ImageTag>().is_err());
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        assert!(matches!(
            format!("sha256:{}", "a".repeat(64)).parse::<Reference>(),
            Ok(Reference::Digest(_))
        ));
        assert!("sha256:zz".parse::<Reference>().is_err());
    }

    #[test]
    fn regions_and_accounts() {
        assert!("us-east-1".parse::<Region>().is_ok());
        assert!("US".parse::<Region>().is_err());
        assert!("000000000000".parse::<AccountId>().is_ok());
        assert!("12345".parse::<AccountId>().is_err());
    }
}
