//! IAM's identifiers: unique ids with a prefix per kind (`AIDA` users, `AROA` roles, …)
//! and access key ids (`AKIA` long-term, `ASIA` temporary), from the base32 alphabet AWS
//! uses for them.

use rand::Rng;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `prefix` and random characters up to `len`.
fn id(prefix: &str, len: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(len);
    s.push_str(prefix);
    while s.len() < len {
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

/// A user's unique id (21 characters, `AIDA…`).
pub(crate) fn user_id() -> String {
    id("AIDA", 21)
}

/// A long-term access key id (20 characters, `AKIA…`).
pub(crate) fn access_key_id() -> String {
    id("AKIA", 20)
}

/// A secret access key: 40 characters of base64's alphabet.
pub(crate) fn secret() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// A managed policy's unique id (21 characters, `ANPA…`).
pub(crate) fn policy_id() -> String {
    id("ANPA", 21)
}

/// A role's unique id (21 characters, `AROA…`).
pub(crate) fn role_id() -> String {
    id("AROA", 21)
}

/// A group's unique id (21 characters, `AGPA…`).
pub(crate) fn group_id() -> String {
    id("AGPA", 21)
}

/// An instance profile's unique id (21 characters, `AIPA…`).
pub(crate) fn instance_profile_id() -> String {
    id("AIPA", 21)
}

/// A temporary access key id (20 characters, `ASIA…`).
pub(crate) fn session_key_id() -> String {
    id("ASIA", 20)
}

/// A session token: 160 characters of base64's alphabet (AWS's are of that order).
pub(crate) fn session_token() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    (0..160)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}
