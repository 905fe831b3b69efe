//! CloudWatch Logs filter patterns, as used by FilterLogEvents, StartLiveTail's
//! `logEventFilterPattern` and metric/subscription filters: parse a pattern once, then test many
//! messages against it cheaply. Pure: no I/O, no async.
//!
//! # Supported syntax
//!
//! A pattern is one of three kinds, chosen by its first non-blank character:
//!
//! * **Unstructured terms** (anything else). Terms are separated by blanks and all must occur in
//!   the message as case-sensitive substrings. `"a phrase"` is one term; inside quotes `\"` and
//!   `\\` are escapes. `?term` terms form a group of which at least one must occur; `-term`
//!   (also `- term`) must not occur. `%regex%` is a regular-expression term (searched anywhere in
//!   the message) and takes the same prefixes. Unquoted terms may only hold letters, digits and
//!   `_`, otherwise the pattern is rejected with `Invalid character(s) in term '…'`. The empty or
//!   blank pattern, `""` and `" "` match every message.
//! * **JSON** `{ SELECTOR OP VALUE }`. Selectors are `$.key`, `$.a.b`, `$.list[0]`, `$.m[0][1]`
//!   (keys made of letters, digits, `_`, `-`, and `@` as an extension). Operators: `=` and `!=`
//!   with strings (quoted or bare, `*` as a wildcard at the start and/or end; a `*` inside is
//!   literal, as AWS documents), numbers (`<`, `<=`, `>`, `>=`, `=`, `!=`; signs, decimals and
//!   exponents; numeric strings in the message compare as numbers) or `%regex%`; `IS TRUE`,
//!   `IS FALSE`, `IS NULL`, `NOT EXISTS`; combined with `&&`, `||` and parentheses (`&&` binds
//!   tighter). A selector that resolves to an object, array, null or nothing matches neither
//!   `=` nor `!=`. Messages that are not valid JSON never match; with duplicate keys the last
//!   one wins. `{ $.x = * }` matches any string, number or boolean.
//! * **Space-delimited** `[ip, user, ..., status=4* || status=5*, bytes > 1000, ]`. The message
//!   is split on blanks; a `"…"` or `[…]` run is one field (without its quotes or brackets).
//!   A field is a name, a name with conditions (`=`, `!=` with strings, wildcards or regex;
//!   numeric comparisons; `&&`, `||`, parentheses), `...` for any number of fields, or empty
//!   (one unnamed field). Without `...` the field count must match exactly. A field's
//!   conditions may only mention that field's own name. `[]` matches every message (as
//!   `[...]`; the API reference's TestMetricFilter example). [`FilterPattern::extract`]
//!   gives a match's fields as metric filters name them: `$name`, else `$N` by position.
//!
//! Regexes follow the documented subset: ASCII letters and digits, the symbols
//! `_ # = @ / ; , - :` and blank, and the operators `^ $ ? [ ] { } | \ * + .`; parentheses and
//! other characters are rejected, as are more than two regexes in a JSON or space-delimited
//! pattern. Matching uses the `regex` crate.
//!
//! # Not supported
//!
//! Array wildcards (`$.a[*]`, `$.*`) and quoted keys in JSON selectors; conditions comparing one
//! space-delimited field with another; field extraction for metric values; the `=!VALUE`
//! spelling of `!=` found in an old example. Where AWS's exact behaviour is undocumented
//! (for instance how `?` terms combine with plain terms: here plain AND at-least-one `?`),
//! the choice is the plainest reading of the documentation.

use std::cmp::Ordering;

use memchr::memmem::Finder;
use regex::Regex;

mod delimited;
mod json;
mod terms;

#[cfg(test)]
mod tests;

/// A parsed filter pattern, ready to test messages.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    kind: Kind,
    /// Computed once at parse time; see [`FilterPattern::required_literals`].
    literals: Option<Vec<Vec<u8>>>,
    /// Finders for `literals`, used to reject JSON and space-delimited messages before parsing
    /// them. Unstructured patterns do not need it: their own terms are already finders.
    prefilter: Option<Vec<Finder<'static>>>,
}

#[derive(Debug, Clone)]
enum Kind {
    Everything,
    Terms(terms::Terms),
    Json(json::JsonPattern),
    Delimited(delimited::Delimited),
}

/// Why a filter pattern was rejected. `Display` is the message AWS returns with
/// `InvalidParameterException`; [`PatternError::detail`] says more, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// An unquoted term holds something other than letters, digits and `_`.
    #[error("Invalid character(s) in term '{term}'")]
    InvalidTerm { term: String },
    /// Anything else wrong with the pattern's shape.
    #[error("Invalid filter pattern")]
    Syntax { detail: String },
    /// A `%regex%` outside the supported subset, or one the engine cannot compile.
    #[error("Invalid filter pattern")]
    Regex { regex: String, detail: String },
}

impl PatternError {
    /// A human explanation beyond the AWS message.
    pub fn detail(&self) -> String {
        match self {
            PatternError::InvalidTerm { term } => format!("term '{term}' must be quoted"),
            PatternError::Syntax { detail } => detail.clone(),
            PatternError::Regex { regex, detail } => format!("regex %{regex}%: {detail}"),
        }
    }

    fn syntax(detail: impl Into<String>) -> Self {
        PatternError::Syntax {
            detail: detail.into(),
        }
    }
}

/// AWS allows at most this many regexes in one JSON or space-delimited pattern.
const MAX_STRUCTURED_REGEXES: usize = 2;

impl FilterPattern {
    pub fn parse(text: &str) -> Result<FilterPattern, PatternError> {
        let trimmed = text.trim();
        let kind = match trimmed.as_bytes().first() {
            None => Kind::Everything,
            Some(b'{') => Kind::Json(json::parse(trimmed)?),
            Some(b'[') => Kind::Delimited(delimited::parse(trimmed)?),
            Some(_) => {
                let terms = terms::parse(trimmed)?;
                if terms.matches_everything() {
                    Kind::Everything
                } else {
                    Kind::Terms(terms)
                }
            }
        };
        let regexes = match &kind {
            Kind::Json(expr) => expr.regex_count(),
            Kind::Delimited(d) => d.regex_count(),
            Kind::Everything | Kind::Terms(_) => 0,
        };
        if regexes > MAX_STRUCTURED_REGEXES {
            return Err(PatternError::syntax(format!(
                "{regexes} regexes; at most {MAX_STRUCTURED_REGEXES} are allowed in a JSON or space-delimited pattern"
            )));
        }
        let literals = match &kind {
            Kind::Everything => None,
            Kind::Terms(t) => t.required_literals(),
            Kind::Json(expr) => expr.required_literals(),
            Kind::Delimited(d) => d.required_literals(),
        };
        let prefilter = match &kind {
            Kind::Json(_) | Kind::Delimited(_) => literals.as_ref().map(|lits| {
                lits.iter()
                    .map(|l| Finder::new(l.as_slice()).into_owned())
                    .collect()
            }),
            Kind::Everything | Kind::Terms(_) => None,
        };
        Ok(FilterPattern {
            kind,
            literals,
            prefilter,
        })
    }

    pub fn matches(&self, message: &str) -> bool {
        if let Some(finders) = &self.prefilter {
            let hay = message.as_bytes();
            if !finders.iter().any(|f| f.find(hay).is_some()) {
                return false;
            }
        }
        match &self.kind {
            Kind::Everything => true,
            Kind::Terms(t) => t.matches(message),
            Kind::Json(j) => j.matches(message),
            Kind::Delimited(d) => d.matches(message),
        }
    }

    /// Tests `message` as a metric filter does: `None` when it does not match, otherwise the
    /// values it extracts (TestMetricFilter's `extractedValues`): a space-delimited pattern's
    /// fields by name (`$name`) or position (`$1`, `$2`, …); nothing for other patterns.
    pub fn extract(&self, message: &str) -> Option<std::collections::BTreeMap<String, String>> {
        match &self.kind {
            Kind::Delimited(d) => d.extract(message).map(|v| v.into_iter().collect()),
            _ => self.matches(message).then(Default::default),
        }
    }

    /// True for a space-delimited pattern (`[…]`), whose fields metric values can name.
    pub fn is_delimited(&self) -> bool {
        matches!(self.kind, Kind::Delimited(_))
    }

    /// A cheap pre-check on a block of raw bytes holding many messages: `Some(literals)` means
    /// every message this pattern matches contains at least one of `literals` as a byte
    /// substring (so a block containing none of them can be skipped unseen). `None` means no such
    /// guarantee (e.g. empty pattern, pure exclusions, numeric comparisons, IS NULL...).
    pub fn required_literals(&self) -> Option<Vec<Vec<u8>>> {
        self.literals.clone()
    }

    /// True for the empty or blank pattern (and `""`, `" "`), which every message matches.
    pub fn matches_everything(&self) -> bool {
        matches!(self.kind, Kind::Everything)
    }
}

/// Picks the most selective of several alternative literal sets, any one of which is implied by
/// a conjunction: fewer alternatives first, then longer shortest literal.
fn best_conjunct(sets: impl IntoIterator<Item = Option<Vec<Vec<u8>>>>) -> Option<Vec<Vec<u8>>> {
    sets.into_iter().flatten().max_by_key(|set| {
        let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
        (std::cmp::Reverse(set.len()), shortest)
    })
}

/// The union of literal sets for a disjunction: every branch must guarantee something.
fn union_disjuncts(sets: impl IntoIterator<Item = Option<Vec<Vec<u8>>>>) -> Option<Vec<Vec<u8>>> {
    let mut all: Vec<Vec<u8>> = Vec::new();
    for set in sets {
        for lit in set? {
            if !all.contains(&lit) {
                all.push(lit);
            }
        }
    }
    (!all.is_empty()).then_some(all)
}

/// A comparison operator in JSON and space-delimited conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    }
}

/// The right-hand side of a condition.
#[derive(Debug, Clone)]
enum Value {
    Text(Glob),
    Number(Number),
    Regex(Regex),
}

/// `OP VALUE` applied to a field's text (space-delimited) or a JSON scalar's text.
#[derive(Debug, Clone)]
struct Condition {
    op: Op,
    value: Value,
}

impl Condition {
    /// Equality of a scalar given as text. Numbers compare numerically when the text is a
    /// number, so `200` equals `200.0`.
    fn equals_text(&self, text: &str) -> bool {
        match &self.value {
            Value::Text(glob) => glob.matches(text),
            Value::Number(n) => Number::parse(text).is_some_and(|t| t.cmp(n) == Ordering::Equal),
            Value::Regex(re) => re.is_match(text),
        }
    }

    /// Evaluates against a scalar given as text (space-delimited fields, JSON strings).
    fn eval_text(&self, text: &str) -> bool {
        match self.value {
            Value::Number(_) => self.eval_number(Number::parse(text)),
            Value::Text(_) | Value::Regex(_) => (self.op == Op::Eq) == self.equals_text(text),
        }
    }

    /// Evaluates a numeric condition against a scalar's numeric value, if it has one.
    fn eval_number(&self, number: Option<Number>) -> bool {
        let Value::Number(n) = &self.value else {
            return false;
        };
        match number {
            Some(t) => self.op.holds(t.cmp(n)),
            // Not a number: unequal to any number, and unordered.
            None => self.op == Op::Ne,
        }
    }

    /// Literals that must appear in the raw message for this condition to hold, assuming the
    /// compared text appears verbatim in it (true of space-delimited fields; JSON adds its own
    /// escape caveats).
    fn literal(&self) -> Option<&str> {
        match (&self.op, &self.value) {
            (Op::Eq, Value::Text(glob)) if !glob.core.is_empty() => Some(&glob.core),
            _ => None,
        }
    }

    fn is_regex(&self) -> bool {
        matches!(self.value, Value::Regex(_))
    }
}

/// A string value with optional `*` wildcards at its start and end. AWS treats a `*` inside a
/// value as a literal star ("Ev*ent only matches Ev*ent").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    core: String,
    any_prefix: bool,
    any_suffix: bool,
}

impl Glob {
    fn new(text: &str) -> Glob {
        let after_prefix = text.trim_start_matches('*');
        let any_prefix = after_prefix.len() != text.len();
        let core = after_prefix.trim_end_matches('*');
        let any_suffix = core.len() != after_prefix.len();
        Glob {
            core: core.to_owned(),
            any_prefix,
            any_suffix,
        }
    }

    fn matches(&self, text: &str) -> bool {
        match (self.any_prefix, self.any_suffix) {
            (false, false) => text == self.core,
            (true, false) => text.ends_with(&self.core),
            (false, true) => text.starts_with(&self.core),
            (true, true) => {
                self.core.is_empty()
                    || memchr::memmem::find(text.as_bytes(), self.core.as_bytes()).is_some()
            }
        }
    }
}

/// A number from a pattern or a message: exact for integers, `f64` otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Number {
    float: f64,
    int: Option<i128>,
}

impl Number {
    /// Parses AWS's number grammar: optional sign, integer or decimal, optional exponent.
    fn parse(text: &str) -> Option<Number> {
        let b = text.as_bytes();
        let mut i = 0;
        if matches!(b.first(), Some(b'+' | b'-')) {
            i += 1;
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut digits = i - int_start;
        let mut integral = true;
        if i < b.len() && b[i] == b'.' {
            integral = false;
            i += 1;
            let frac_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            digits += i - frac_start;
        }
        if digits == 0 {
            return None;
        }
        if i < b.len() && matches!(b[i], b'e' | b'E') {
            integral = false;
            i += 1;
            if i < b.len() && matches!(b[i], b'+' | b'-') {
                i += 1;
            }
            let exp_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == exp_start {
                return None;
            }
        }
        if i != b.len() {
            return None;
        }
        let float: f64 = text.parse().ok()?;
        let int = if integral {
            text.parse::<i128>().ok()
        } else {
            None
        };
        Some(Number { float, int })
    }

    fn from_json(n: &serde_json::Number) -> Number {
        let int = n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from));
        Number {
            float: n.as_f64().unwrap_or(f64::NAN),
            int,
        }
    }

    fn cmp(&self, other: &Number) -> Ordering {
        match (self.int, other.int) {
            (Some(a), Some(b)) => a.cmp(&b),
            // NaN cannot come from the grammar; treat it as unequal to everything.
            _ => self
                .float
                .partial_cmp(&other.float)
                .unwrap_or(Ordering::Less),
        }
    }
}

/// Compiles the text between `%…%`, after checking it stays within AWS's documented subset.
fn compile_regex(source: &str) -> Result<Regex, PatternError> {
    let reject = |detail: String| PatternError::Regex {
        regex: source.to_owned(),
        detail,
    };
    if source.is_empty() {
        return Err(reject("empty regex".into()));
    }
    if let Some(c) = source.chars().find(|&c| !regex_char_allowed(c)) {
        return Err(reject(format!("character '{c}' is not supported")));
    }
    regex::RegexBuilder::new(source)
        // Keep a hostile pattern from building a huge automaton; real ones are far smaller.
        .size_limit(1 << 20)
        .build()
        .map_err(|e| reject(e.to_string()))
}

fn regex_char_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '_' | '#'
                | '='
                | '@'
                | '/'
                | ';'
                | ','
                | '-'
                | ':'
                | ' '
                | '^'
                | '$'
                | '?'
                | '['
                | ']'
                | '{'
                | '}'
                | '|'
                | '\\'
                | '*'
                | '+'
                | '.'
        )
}

/// A byte cursor over pattern text, shared by the JSON and space-delimited parsers. All the
/// bytes it stops at are ASCII, so slicing at its positions is always on char boundaries.
struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a str) -> Self {
        Cursor { src, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Eats a keyword (ASCII, case-insensitive) that is not followed by more word characters.
    fn eat_keyword(&mut self, word: &str) -> bool {
        let rest = self.rest().as_bytes();
        if rest.len() >= word.len()
            && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes())
            && !rest
                .get(word.len())
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn error(&self, what: &str) -> PatternError {
        PatternError::syntax(format!("{what} at offset {}", self.pos))
    }

    fn parse_op(&mut self) -> Option<Op> {
        // Longest operators first.
        for (token, op) in [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(token) {
                return Some(op);
            }
        }
        None
    }

    /// Parses `"quoted"` (with `\"` and `\\` escapes; other backslashes are kept as written).
    /// The cursor is on the opening quote.
    fn parse_quoted(&mut self) -> Result<String, PatternError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = self.rest();
            let Some(i) = rest.find(['"', '\\']) else {
                self.pos = start;
                return Err(self.error("unterminated quoted string"));
            };
            out.push_str(&rest[..i]);
            self.pos += i;
            if self.peek() == Some(b'"') {
                self.pos += 1;
                return Ok(out);
            }
            // A backslash: keep the next char, dropping the backslash only before `"` or `\`.
            let next = self.rest()[1..].chars().next();
            match next {
                Some(c @ ('"' | '\\')) => {
                    out.push(c);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                    self.pos += 1 + c.len_utf8();
                }
                None => {
                    self.pos = start;
                    return Err(self.error("unterminated quoted string"));
                }
            }
        }
    }

    /// Parses `%regex%`; the cursor is on the opening `%`.
    fn parse_regex(&mut self) -> Result<Regex, PatternError> {
        let start = self.pos;
        let Some(len) = self.rest()[1..].find('%') else {
            return Err(self.error("unterminated %regex%"));
        };
        let source = &self.src[start + 1..start + 1 + len];
        self.pos = start + len + 2;
        compile_regex(source)
    }

    /// Parses the value after an operator: a quoted string, a `%regex%`, or a bare word that
    /// ends at a blank, at `&&`/`||`, or at a byte for which `stop` holds.
    fn parse_value(&mut self, op: Op, stop: fn(u8) -> bool) -> Result<Value, PatternError> {
        self.skip_ws();
        let value = match self.peek() {
            None => return Err(self.error("missing value")),
            Some(b'"') => Value::Text(Glob::new(&self.parse_quoted()?)),
            Some(b'%') => Value::Regex(self.parse_regex()?),
            Some(_) => {
                let rest = self.rest();
                let bytes = rest.as_bytes();
                let mut end = 0;
                while end < bytes.len() {
                    let b = bytes[end];
                    if b.is_ascii_whitespace()
                        || stop(b)
                        || rest[end..].starts_with("&&")
                        || rest[end..].starts_with("||")
                    {
                        break;
                    }
                    end += 1;
                }
                if end == 0 {
                    return Err(self.error("missing value"));
                }
                let word = &rest[..end];
                self.pos += end;
                match Number::parse(word) {
                    Some(n) => Value::Number(n),
                    None => Value::Text(Glob::new(word)),
                }
            }
        };
        match (&value, op) {
            (Value::Number(_), _) | (_, Op::Eq | Op::Ne) => Ok(value),
            _ => Err(self.error("ordering comparison needs a number")),
        }
    }
}
