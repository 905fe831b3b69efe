//! GetRandomPassword: every option of the API reference. The default set is upper and
//! lower case letters, digits and the punctuation below; `RequireEachIncludedType` (default
//! true) puts at least one of every included type in.

use rand::Rng;
use rand::seq::SliceRandom;

use crate::{Result, SecretsError, invalid};

pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

#[derive(Debug, Clone, Default)]
pub struct PasswordOptions {
    pub length: Option<i64>,
    pub exclude_characters: Option<String>,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    pub require_each_included_type: Option<bool>,
}

pub fn random_password(options: &PasswordOptions) -> Result<String> {
    let length = options.length.unwrap_or(32);
    if !(1..=4096).contains(&length) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{length}' at 'passwordLength' failed to satisfy constraint: Member must have value {}",
            if length < 1 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 4096"
            }
        )));
    }
    let excluded = options.exclude_characters.as_deref().unwrap_or("");
    let mut classes: Vec<Vec<char>> = Vec::new();
    let mut add = |skip: bool, set: &str| {
        if !skip {
            let chars: Vec<char> = set.chars().filter(|c| !excluded.contains(*c)).collect();
            if !chars.is_empty() {
                classes.push(chars);
            }
        }
    };
    add(options.exclude_uppercase, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    add(options.exclude_lowercase, "abcdefghijklmnopqrstuvwxyz");
    add(options.exclude_numbers, "0123456789");
    add(options.exclude_punctuation, PUNCTUATION);
    add(!options.include_space, " ");
    if classes.is_empty() {
        return Err(SecretsError::InvalidParameter(
            "The password can't be generated because all the character types are excluded.".into(),
        ));
    }
    let require = options.require_each_included_type.unwrap_or(true);
    let length = length as usize;
    if require && classes.len() > length {
        return Err(invalid(
            "The password length is too short to include a character of every required type.",
        ));
    }
    let all: Vec<char> = classes.concat();
    let mut rng = rand::thread_rng();
    let mut password: Vec<char> = Vec::with_capacity(length);
    if require {
        for class in &classes {
            password.push(*class.choose(&mut rng).expect("classes are not empty"));
        }
    }
    while password.len() < length {
        password.push(all[rng.gen_range(0..all.len())]);
    }
    password.shuffle(&mut rng);
    Ok(password.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_shape_the_password() {
        let p = random_password(&PasswordOptions::default()).unwrap();
        assert_eq!(p.chars().count(), 32);
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(!p.contains(' '));
        let p = random_password(&PasswordOptions {
            length: Some(200),
            exclude_punctuation: true,
            exclude_characters: Some("abc".into()),
            include_space: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.len(), 200);
        assert!(p.contains(' '));
        assert!(
            !p.chars()
                .any(|c| PUNCTUATION.contains(c) || "abc".contains(c))
        );
        assert!(
            random_password(&PasswordOptions {
                length: Some(0),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            random_password(&PasswordOptions {
                length: Some(2),
                ..Default::default()
            })
            .is_err()
        );
    }
}
