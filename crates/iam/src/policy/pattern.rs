//! The policy language's string patterns, compiled once: `*`/`?` wildcards, policy variables
//! (`${aws:username}`, `${aws:PrincipalTag/team, 'none'}`, the escapes `${*}` `${?}` `${$}`),
//! action names (case-insensitive) and ARNs (six colon-separated parts, each matched alone, the
//! last one taking the rest of the ARN). Matching allocates nothing: variables are looked up in
//! the request and compared in place.

/// Where policy variables get their values: the request's context keys.
pub(crate) trait Vars {
    /// The single value of a context key, by its lowercased name; `None` when the key is absent
    /// or multi-valued (IAM substitutes only single-valued keys).
    fn var(&self, key_lower: &str) -> Option<&str>;
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(Box<[u8]>),
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    One,
    /// `${key}` or `${key, 'default'}`; the key lowercased (context keys are case-insensitive).
    Var {
        key: Box<str>,
        default: Option<Box<[u8]>>,
    },
}

/// The common shapes, decided at compile time so that most matches are one comparison.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// `*`
    Any,
    /// No wildcard, no variable.
    Exact(Box<[u8]>),
    /// A literal then `*` (`ecr:Batch*`, `arn:…:repository/team-*`).
    Prefix(Box<[u8]>),
    General,
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    parts: Box<[Part]>,
    shape: Shape,
    /// Compare ignoring ASCII case (action names, `…IgnoreCase` operators); literals are
    /// lowercased at compile time.
    fold: bool,
}

/// How a pattern is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    pub wildcards: bool,
    /// Policy variables exist only in policies of version 2012-10-17.
    pub variables: bool,
    pub fold: bool,
}

/// A segment of the pattern during one match, its variables resolved.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Bytes(&'a [u8]),
    Star,
    One,
}

const MAX_STACK_PARTS: usize = 16;

impl Template {
    pub fn parse(text: &str, syntax: Syntax) -> Template {
        let mut parts: Vec<Part> = Vec::new();
        let mut lit: Vec<u8> = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        let push_lit = |parts: &mut Vec<Part>, lit: &mut Vec<u8>| {
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(lit).into_boxed_slice()));
            }
        };
        while i < bytes.len() {
            let b = bytes[i];
            if syntax.variables
                && b == b'$'
                && bytes.get(i + 1) == Some(&b'{')
                && let Some((var, end)) = parse_variable(&text[i + 2..])
            {
                match var {
                    Variable::Escape(c) => lit.push(c),
                    Variable::Key { key, default } => {
                        push_lit(&mut parts, &mut lit);
                        parts.push(Part::Var {
                            key: key.to_ascii_lowercase().into_boxed_str(),
                            default: default.map(|d| d.into_bytes().into_boxed_slice()),
                        });
                    }
                }
                i += 2 + end;
                continue;
            }
            if syntax.wildcards && (b == b'*' || b == b'?') {
                push_lit(&mut parts, &mut lit);
                parts.push(if b == b'*' { Part::Star } else { Part::One });
            } else {
                lit.push(if syntax.fold {
                    b.to_ascii_lowercase()
                } else {
                    b
                });
            }
            i += 1;
        }
        push_lit(&mut parts, &mut lit);
        let shape = match parts.as_slice() {
            [Part::Star] => Shape::Any,
            [] => Shape::Exact(Box::new([])),
            [Part::Lit(l)] => Shape::Exact(l.clone()),
            [Part::Lit(l), Part::Star] => Shape::Prefix(l.clone()),
            _ => Shape::General,
        };
        Template {
            parts: parts.into_boxed_slice(),
            shape,
            fold: syntax.fold,
        }
    }

    /// Matches `text`; `None` when a variable without a default has no value in the request
    /// (IAM: the element, or the condition, then cannot match).
    pub fn matches(&self, text: &str, vars: &dyn Vars) -> Option<bool> {
        let text = text.as_bytes();
        match &self.shape {
            Shape::Any => return Some(true),
            Shape::Exact(l) => return Some(eq_bytes(l, text, self.fold)),
            Shape::Prefix(l) => {
                return Some(text.len() >= l.len() && eq_bytes(l, &text[..l.len()], self.fold));
            }
            Shape::General => {}
        }
        if self.parts.len() <= MAX_STACK_PARTS {
            let mut segs = [Seg::Star; MAX_STACK_PARTS];
            for (slot, part) in segs.iter_mut().zip(self.parts.iter()) {
                *slot = resolve(part, vars)?;
            }
            Some(glob(&segs[..self.parts.len()], text, self.fold))
        } else {
            let segs = self
                .parts
                .iter()
                .map(|p| resolve(p, vars))
                .collect::<Option<Vec<_>>>()?;
            Some(glob(&segs, text, self.fold))
        }
    }
}

fn resolve<'a>(part: &'a Part, vars: &'a dyn Vars) -> Option<Seg<'a>> {
    Some(match part {
        Part::Lit(l) => Seg::Bytes(l),
        Part::Star => Seg::Star,
        Part::One => Seg::One,
        Part::Var { key, default } => match vars.var(key) {
            Some(v) => Seg::Bytes(v.as_bytes()),
            None => Seg::Bytes(default.as_deref()?),
        },
    })
}

fn eq_bytes(pattern: &[u8], text: &[u8], fold: bool) -> bool {
    if fold {
        pattern.eq_ignore_ascii_case(text)
    } else {
        pattern == text
    }
}

fn eq_byte(p: u8, t: u8, fold: bool) -> bool {
    if fold {
        p.eq_ignore_ascii_case(&t)
    } else {
        p == t
    }
}

/// Wildcard matching with one backtracking point (the last `*`): linear in practice, no
/// allocation. `?` matches one byte; patterns and values are ASCII in IAM's world (ARNs,
/// action names, tag values mostly), a multi-byte character counts as several.
fn glob(segs: &[Seg], text: &[u8], fold: bool) -> bool {
    let (mut si, mut so, mut t) = (0usize, 0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        while si < segs.len() {
            match segs[si] {
                Seg::Bytes(b) if so >= b.len() => {
                    si += 1;
                    so = 0;
                }
                _ => break,
            }
        }
        if si == segs.len() {
            if t == text.len() {
                return true;
            }
        } else {
            match segs[si] {
                Seg::Star => {
                    si += 1;
                    so = 0;
                    star = Some((si, t));
                    continue;
                }
                Seg::One if t < text.len() => {
                    si += 1;
                    t += 1;
                    continue;
                }
                Seg::Bytes(b) if t < text.len() && eq_byte(b[so], text[t], fold) => {
                    so += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((s, st)) if st < text.len() => {
                star = Some((s, st + 1));
                si = s;
                so = 0;
                t = st + 1;
            }
            _ => return false,
        }
    }
}

enum Variable {
    /// `${*}`, `${?}`, `${$}`: the character itself, never a wildcard.
    Escape(u8),
    Key {
        key: String,
        default: Option<String>,
    },
}

/// Reads a variable after `${`; returns it and the length consumed (through `}`).
fn parse_variable(rest: &str) -> Option<(Variable, usize)> {
    let bytes = rest.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b'}' && matches!(bytes[0], b'*' | b'?' | b'$') {
        return Some((Variable::Escape(bytes[0]), 2));
    }
    // The key runs to `,` or `}`; a default is a single-quoted string where '' is a quote.
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b',' && bytes[i] != b'}' {
        i += 1;
    }
    if i == bytes.len() {
        return None;
    }
    let key = rest[..i].trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    if bytes[i] == b'}' {
        return Some((
            Variable::Key {
                key: key.to_string(),
                default: None,
            },
            i + 1,
        ));
    }
    i += 1;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    if bytes.get(i) != Some(&b'\'') {
        return None;
    }
    i += 1;
    let mut default = String::new();
    loop {
        let c = *bytes.get(i)?;
        if c == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                default.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            break;
        }
        let ch = rest[i..].chars().next()?;
        default.push(ch);
        i += ch.len_utf8();
    }
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    if bytes.get(i) != Some(&b'}') {
        return None;
    }
    Some((
        Variable::Key {
            key: key.to_string(),
            default: Some(default),
        },
        i + 1,
    ))
}

/// An `Action`/`NotAction` entry: `service:Name` with wildcards, case-insensitive.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActionPattern(Template);

impl ActionPattern {
    pub fn parse(text: &str) -> ActionPattern {
        ActionPattern(Template::parse(
            text,
            Syntax {
                wildcards: true,
                variables: false,
                fold: true,
            },
        ))
    }

    pub fn matches(&self, action: &str) -> bool {
        self.0.matches(action, &NoVars).unwrap_or(false)
    }

    /// The service prefix (lowercased) when it has no wildcard: `ecr` for `ecr:Batch*`,
    /// `None` for `*` or `ec?:*`.
    pub fn service(&self) -> Option<&str> {
        let Some(Part::Lit(first)) = self.0.parts.first() else {
            return None;
        };
        let colon = first.iter().position(|&b| b == b':')?;
        std::str::from_utf8(&first[..colon]).ok()
    }
}

struct NoVars;

impl Vars for NoVars {
    fn var(&self, _: &str) -> Option<&str> {
        None
    }
}

/// A `Resource`/`NotResource` entry or an `Arn*` condition value: `*`, or up to six
/// colon-separated parts matched one by one (case-sensitive), the last taking the rest of the
/// ARN, colons included (`arn:aws:logs:*:*:*` covers `…:log-group:g:log-stream:s`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ArnPattern {
    Any,
    Parts(Box<[Template]>),
}

impl ArnPattern {
    pub fn parse(text: &str, variables: bool) -> ArnPattern {
        if text == "*" {
            return ArnPattern::Any;
        }
        let syntax = Syntax {
            wildcards: true,
            variables,
            fold: false,
        };
        ArnPattern::Parts(
            split_arn(text, variables)
                .into_iter()
                .map(|p| Template::parse(p, syntax))
                .collect(),
        )
    }

    pub fn matches(&self, arn: &str, vars: &dyn Vars) -> Option<bool> {
        match self {
            ArnPattern::Any => Some(true),
            ArnPattern::Parts(_) => self.matches_split(arn, &ArnSplit::of(arn), vars),
        }
    }

    /// `matches` with the ARN already split (a request's resources are split once).
    pub fn matches_split(&self, arn: &str, split: &ArnSplit, vars: &dyn Vars) -> Option<bool> {
        let parts = match self {
            ArnPattern::Any => return Some(true),
            ArnPattern::Parts(parts) => parts,
        };
        let n = parts.len();
        if (split.count as usize) < n {
            return Some(false);
        }
        for (i, part) in parts.iter().enumerate() {
            if !part.matches(split.piece(arn, i, n), vars)? {
                return Some(false);
            }
        }
        Some(true)
    }
}

/// Where the parts of an ARN begin: after each of its first five colons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArnSplit {
    starts: [u32; 6],
    count: u8,
}

impl ArnSplit {
    pub fn of(arn: &str) -> ArnSplit {
        let mut split = ArnSplit {
            starts: [0; 6],
            count: 1,
        };
        for (i, b) in arn.bytes().enumerate() {
            if b == b':' {
                split.starts[split.count as usize] = (i + 1) as u32;
                split.count += 1;
                if split.count == 6 {
                    break;
                }
            }
        }
        split
    }

    /// Part `i` of the ARN read as `n` parts (the last one takes the rest).
    fn piece<'a>(&self, arn: &'a str, i: usize, n: usize) -> &'a str {
        let start = self.starts[i] as usize;
        let end = if i + 1 < n && i + 1 < self.count as usize {
            self.starts[i + 1] as usize - 1
        } else {
            arn.len()
        };
        &arn[start..end]
    }

    /// Part `i` of six (`4`: the account), if the ARN has it.
    pub fn part<'a>(&self, arn: &'a str, i: usize) -> Option<&'a str> {
        (i < self.count as usize).then(|| self.piece(arn, i, 6))
    }
}

/// Splits at the first five colons that are not inside a `${…}` variable.
fn split_arn(text: &str, variables: bool) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(6);
    let (mut start, mut depth) = (0, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        if out.len() == 5 {
            break;
        }
        match b {
            b'{' if variables && i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b':' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);
    impl Vars for Map {
        fn var(&self, key: &str) -> Option<&str> {
            self.0.get(key).copied()
        }
    }

    fn vars() -> Map {
        Map(HashMap::from([
            ("aws:username", "bob"),
            ("aws:principaltag/team", "blue"),
        ]))
    }

    fn like(p: &str, t: &str) -> Option<bool> {
        Template::parse(
            p,
            Syntax {
                wildcards: true,
                variables: true,
                fold: false,
            },
        )
        .matches(t, &vars())
    }

    #[test]
    fn wildcards() {
        assert_eq!(like("*", ""), Some(true));
        assert_eq!(like("a*c", "abbbc"), Some(true));
        assert_eq!(like("a*c", "abbbd"), Some(false));
        assert_eq!(like("a?c", "abc"), Some(true));
        assert_eq!(like("a?c", "ac"), Some(false));
        assert_eq!(like("*b*b*", "abxbx"), Some(true));
        assert_eq!(like("*.txt", "x.txt.gz"), Some(false));
        assert_eq!(like("", ""), Some(true));
        assert_eq!(like("ab", "AB"), Some(false));
    }

    #[test]
    fn variables_and_escapes() {
        assert_eq!(like("home/${aws:username}/*", "home/bob/x"), Some(true));
        assert_eq!(like("home/${aws:UserName}/*", "home/alice/x"), Some(false));
        assert_eq!(like("${aws:PrincipalTag/team}", "blue"), Some(true));
        assert_eq!(like("${aws:userid}", "x"), None);
        assert_eq!(like("${aws:userid, 'none'}", "none"), Some(true));
        assert_eq!(like("${aws:username, 'none'}", "bob"), Some(true));
        assert_eq!(like("it''s ${x, 'it''s'}", "it''s it's"), Some(true));
        assert_eq!(like("a${*}b", "a*b"), Some(true));
        assert_eq!(like("a${*}b", "axb"), Some(false));
        assert_eq!(like("${?}${$}", "?$"), Some(true));
        // A variable's value is literal: a `*` in it is no wildcard.
        assert_eq!(like("${aws:username}", "b*"), Some(false));
    }

    #[test]
    fn actions_ignore_case() {
        let p = ActionPattern::parse("ecr:Batch*");
        assert!(p.matches("ecr:BatchGetImage"));
        assert!(p.matches("ECR:batchgetimage"));
        assert!(!p.matches("ecr:GetAuthorizationToken"));
        assert!(ActionPattern::parse("*").matches("ecs:RunTask"));
        assert!(ActionPattern::parse("ecs:*Task*").matches("ecs:DescribeTasks"));
        assert!(ActionPattern::parse("ecs:RunTask").matches("ecs:runtask"));
        assert!(!ActionPattern::parse("ecs:RunTask").matches("ecs:RunTasks"));
        assert!(ActionPattern::parse("ec?:RunTask").matches("ecs:RunTask"));
    }

    #[test]
    fn arns_per_part() {
        let p = |s| ArnPattern::parse(s, true);
        let arn = "arn:aws:ecr:us-east-1:111122223333:repository/team/app";
        assert_eq!(p("*").matches(arn, &vars()), Some(true));
        assert_eq!(
            p("arn:aws:ecr:*:111122223333:repository/*").matches(arn, &vars()),
            Some(true)
        );
        assert_eq!(
            p("arn:aws:ecr:*:*:repository/team/*").matches(arn, &vars()),
            Some(true)
        );
        // A wildcard does not cross a part: `*` in the region part cannot eat the account.
        assert_eq!(
            p("arn:aws:ecr:*:repository/*").matches(arn, &vars()),
            Some(false)
        );
        // Case-sensitive.
        assert_eq!(
            p("arn:aws:ecr:*:*:Repository/*").matches(arn, &vars()),
            Some(false)
        );
        let logs = "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s";
        assert_eq!(p("arn:aws:logs:*:*:*").matches(logs, &vars()), Some(true));
        assert_eq!(
            p("arn:aws:logs:*:*:log-group:g:*").matches(logs, &vars()),
            Some(true)
        );
        assert_eq!(
            p("arn:aws:s3:::bucket/${aws:username}/*")
                .matches("arn:aws:s3:::bucket/bob/f", &vars()),
            Some(true)
        );
        assert_eq!(
            p("arn:aws:s3:::bucket/${aws:userid}/*").matches("arn:aws:s3:::bucket/bob/f", &vars()),
            None
        );
        assert_eq!(p("arn:aws:ecr").matches("arn:aws", &vars()), Some(false));
    }

    #[test]
    fn arn_split() {
        let arn = "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s";
        let s = ArnSplit::of(arn);
        assert_eq!(s.part(arn, 2), Some("logs"));
        assert_eq!(s.part(arn, 4), Some("1"));
        assert_eq!(s.part(arn, 5), Some("log-group:g:log-stream:s"));
        assert_eq!(
            s.piece(arn, 2, 3),
            "logs:us-east-1:1:log-group:g:log-stream:s"
        );
        let short = "arn:aws";
        assert_eq!(ArnSplit::of(short).part(short, 1), Some("aws"));
        assert_eq!(ArnSplit::of(short).part(short, 2), None);
        assert_eq!(ArnSplit::of("*").part("*", 0), Some("*"));
    }

    #[test]
    fn variable_colons_do_not_split() {
        assert_eq!(
            split_arn("arn:aws:s3:::b/${aws:username}/x", true),
            vec!["arn", "aws", "s3", "", "", "b/${aws:username}/x"]
        );
    }
}
