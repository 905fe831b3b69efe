//! Unstructured patterns: plain, `?`-optional and `-`-excluded terms, quoted phrases and
//! `%regex%` terms. Matching is allocation-free: literal terms are precompiled memmem finders.

use memchr::memmem::Finder;
use regex::Regex;

use super::{Cursor, PatternError};

#[derive(Debug, Clone)]
pub(super) struct Terms {
    /// Every one must occur.
    all: Vec<Matcher>,
    /// If non-empty, at least one must occur.
    any: Vec<Matcher>,
    /// None may occur.
    none: Vec<Matcher>,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// A case-sensitive substring; the empty needle occurs everywhere. Boxed because a finder
    /// is several hundred bytes.
    Literal(Box<Finder<'static>>),
    Regex(Regex),
}

impl Matcher {
    fn is_match(&self, message: &str) -> bool {
        match self {
            Matcher::Literal(f) => f.find(message.as_bytes()).is_some(),
            Matcher::Regex(re) => re.is_match(message),
        }
    }

    fn literal(&self) -> Option<&[u8]> {
        match self {
            Matcher::Literal(f) => Some(f.needle()),
            Matcher::Regex(_) => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    All,
    Any,
    None,
}

pub(super) fn parse(text: &str) -> Result<Terms, PatternError> {
    let mut terms = Terms {
        all: Vec::new(),
        any: Vec::new(),
        none: Vec::new(),
    };
    let mut cur = Cursor::new(text);
    loop {
        cur.skip_ws();
        let Some(first) = cur.peek() else { break };
        let role = match first {
            b'?' => {
                cur.pos += 1;
                Role::Any
            }
            b'-' => {
                cur.pos += 1;
                // An old AWS example writes the exclusion as `"ERROR" - "Exiting"`.
                cur.skip_ws();
                Role::None
            }
            _ => Role::All,
        };
        let matcher = match cur.peek() {
            None => return Err(cur.error("a term must follow '?' or '-'")),
            Some(b'"') => {
                let phrase = cur.parse_quoted()?;
                if cur.peek().is_some_and(|b| !b.is_ascii_whitespace()) {
                    return Err(cur.error("a quoted term must be followed by a blank"));
                }
                // AWS documents `" "` as matching everything, like `""`.
                let needle = if phrase.trim().is_empty() {
                    ""
                } else {
                    phrase.as_str()
                };
                Matcher::Literal(Box::new(Finder::new(needle.as_bytes()).into_owned()))
            }
            Some(b'%') => {
                let re = cur.parse_regex()?;
                if cur.peek().is_some_and(|b| !b.is_ascii_whitespace()) {
                    return Err(cur.error("a %regex% term must be followed by a blank"));
                }
                Matcher::Regex(re)
            }
            Some(_) => {
                let rest = cur.rest();
                let end = rest
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                let word = &rest[..end];
                if word.is_empty() {
                    return Err(cur.error("a term must follow '?'"));
                }
                cur.pos += end;
                if !word.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(PatternError::InvalidTerm {
                        term: word.to_owned(),
                    });
                }
                Matcher::Literal(Box::new(Finder::new(word.as_bytes()).into_owned()))
            }
        };
        match role {
            // An empty required term is always present: drop it.
            Role::All if matcher.literal() == Some(b"") => {}
            Role::All => terms.all.push(matcher),
            Role::Any => terms.any.push(matcher),
            Role::None => terms.none.push(matcher),
        }
    }
    Ok(terms)
}

impl Terms {
    pub(super) fn matches_everything(&self) -> bool {
        self.all.is_empty() && self.any.is_empty() && self.none.is_empty()
    }

    pub(super) fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|m| m.is_match(message))
            && !self.none.iter().any(|m| m.is_match(message))
            && (self.any.is_empty() || self.any.iter().any(|m| m.is_match(message)))
    }

    pub(super) fn required_literals(&self) -> Option<Vec<Vec<u8>>> {
        // One required literal is enough; the longest is likely the rarest.
        if let Some(longest) = self
            .all
            .iter()
            .filter_map(Matcher::literal)
            .max_by_key(|l| l.len())
        {
            return Some(vec![longest.to_vec()]);
        }
        // Otherwise every `?` alternative must be a non-empty literal.
        if self.any.is_empty() {
            return None;
        }
        let mut literals = Vec::with_capacity(self.any.len());
        for m in &self.any {
            match m.literal() {
                Some(l) if !l.is_empty() => literals.push(l.to_vec()),
                _ => return None,
            }
        }
        Some(literals)
    }
}
