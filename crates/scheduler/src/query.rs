//! The ECS cluster query language (`memberOf` expressions, ListContainerInstances filters):
//! a tokenizer, a recursive-descent parser into [`Expr`], and evaluation against one
//! container instance. Parse errors carry a position; the API reports them as
//! `InvalidParameterException`.
//!
//! Grammar (precedence: `not` > `and` > `or`; keywords are case-insensitive):
//! ```text
//! expr    := and_expr (("or" | "||") and_expr)*
//! and_expr:= unary (("and" | "&&") unary)*
//! unary   := ("not" | "!") unary | "(" expr ")" | compare
//! compare := SUBJECT OP [ARGUMENT | LIST]
//! LIST    := ("[" | "(") VALUE ("," VALUE)* ("]" | ")")
//! ```
//! Subjects: `agentConnected`, `agentVersion`, `attribute:NAME`, `ec2InstanceId`,
//! `registeredAt`, `runningTasksCount`, `task:group`. Operators, symbol or word:
//! `==` equals, `!=` not_equals, `in`, `!in` not_in, `=~` matches, `!~` not_matches,
//! `exists`, `!exists` not_exists, `>` greater_than, `>=` greater_than_equal,
//! `<` less_than, `<=` less_than_equal. Values are bare words or quoted ('…' or "…").
//! A `matches` pattern is read raw up to whitespace, so `(m5|c5).*` needs no quotes;
//! closing parentheses it does not open are left to the expression.

use std::fmt;

use crate::instance::InstanceView;
use crate::regex::Regex;

/// What an expression tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    AgentConnected,
    AgentVersion,
    Attribute(String),
    Ec2InstanceId,
    RegisteredAt,
    RunningTasksCount,
    TaskGroup,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Matches,
    NotMatches,
    Exists,
    NotExists,
    Gt,
    Ge,
    Lt,
    Le,
}

/// An argument, parsed for its subject at parse time so evaluation never fails.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    None,
    Text(String),
    List(Vec<String>),
    Regex(Regex),
    Bool(bool),
    Number(u64),
    Version(Vec<u64>),
    Time(i64),
}

/// A parsed cluster query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare { subject: Subject, op: Op, arg: Arg },
}

/// A refused expression: what was wrong and the character offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub message: String,
    pub position: usize,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Invalid cluster query expression: {} (at character {})",
            self.message, self.position
        )
    }
}

impl std::error::Error for QueryError {}

impl QueryError {
    fn at(position: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            message: message.into(),
            position,
        }
    }
}

/// Parses a cluster query expression.
pub fn parse_expression(input: &str) -> Result<Expr, QueryError> {
    let mut p = Parser {
        lex: Lexer {
            chars: input.chars().collect(),
            pos: 0,
        },
        peeked: None,
    };
    if p.peek()?.0 == Tok::End {
        return Err(p.error_at(0, "empty expression"));
    }
    let e = p.or_expr()?;
    let (t, at) = p.next()?;
    if t != Tok::End {
        return Err(p.error_at(at, &format!("unexpected {}", t.describe())));
    }
    Ok(e)
}

impl Expr {
    /// Whether the result can change when tasks are placed (it reads `task:group` or
    /// `runningTasksCount`); such expressions are re-evaluated for every request.
    pub fn depends_on_tasks(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.depends_on_tasks() || b.depends_on_tasks(),
            Expr::Not(a) => a.depends_on_tasks(),
            Expr::Compare { subject, .. } => {
                matches!(subject, Subject::TaskGroup | Subject::RunningTasksCount)
            }
        }
    }

    /// Evaluates against one instance.
    ///
    /// Absent values: `==`, `in`, `=~`, `exists` are false and their negations true, so
    /// `attribute:stack != prod` also selects instances without a `stack` attribute.
    /// An attribute present without a value compares as the empty string.
    /// `task:group` holds when any task of a matching group is on the instance; its
    /// negated forms when none is.
    pub fn matches(&self, inst: &InstanceView) -> bool {
        match self {
            Expr::And(a, b) => a.matches(inst) && b.matches(inst),
            Expr::Or(a, b) => a.matches(inst) || b.matches(inst),
            Expr::Not(a) => !a.matches(inst),
            Expr::Compare { subject, op, arg } => compare(subject, *op, arg, inst),
        }
    }
}

fn compare(subject: &Subject, op: Op, arg: &Arg, inst: &InstanceView) -> bool {
    use std::cmp::Ordering;
    let ordered = |ord: Ordering| match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        _ => false,
    };
    match (subject, arg) {
        (Subject::AgentVersion, Arg::Version(v)) => {
            ordered(parse_version(&inst.agent_version).cmp(v))
        }
        (Subject::RegisteredAt, Arg::Time(t)) => ordered(inst.registered_at.cmp(t)),
        (Subject::RunningTasksCount, Arg::Number(n)) => ordered(inst.running_tasks_count().cmp(n)),
        (Subject::AgentConnected, _) => {
            let v = if inst.agent_connected {
                "true"
            } else {
                "false"
            };
            text_op(op, arg, Some(v))
        }
        (Subject::Ec2InstanceId, _) => text_op(op, arg, Some(&inst.ec2_instance_id)),
        (Subject::Attribute(name), _) => match inst.attribute(name) {
            None => text_op(op, arg, None),
            Some(v) => text_op(op, arg, Some(v.unwrap_or(""))),
        },
        (Subject::TaskGroup, _) => {
            let positive = match op {
                Op::Eq | Op::Ne => Op::Eq,
                Op::In | Op::NotIn => Op::In,
                _ => Op::Matches,
            };
            let any = inst
                .task_groups
                .iter()
                .any(|(g, &n)| n > 0 && text_op(positive, arg, Some(g)));
            if positive == op { any } else { !any }
        }
        _ => false,
    }
}

fn text_op(op: Op, arg: &Arg, value: Option<&str>) -> bool {
    let positive = match (op, arg, value) {
        (Op::Exists | Op::NotExists, _, v) => v.is_some(),
        (_, _, None) => false,
        (Op::Eq | Op::Ne, Arg::Text(t), Some(v)) => v == t,
        (Op::Eq | Op::Ne, Arg::Bool(b), Some(v)) => v == if *b { "true" } else { "false" },
        (Op::In | Op::NotIn, Arg::List(l), Some(v)) => l.iter().any(|t| t == v),
        (Op::Matches | Op::NotMatches, Arg::Regex(r), Some(v)) => r.is_match(v),
        _ => false,
    };
    match op {
        Op::Ne | Op::NotIn | Op::NotMatches | Op::NotExists => !positive,
        _ => positive,
    }
}

/// Dotted version numbers compare numerically (`1.10.0 > 1.9.2`); a leading `v` and
/// non-numeric suffixes are ignored.
fn parse_version(s: &str) -> Vec<u64> {
    s.trim_start_matches('v')
        .split('.')
        .map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or(0)
        })
        .collect()
}

/// `2018-06-18T22:28:28+00:00`, `2018-06-18T22:28:28Z`, `2018-06-18T22:28:28` (UTC) or
/// `2018-06-18` (midnight UTC), the formats ECS documents for `registeredAt`.
fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    if b.len() == 10 {
        return Some(secs);
    }
    if b.len() < 19 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    secs += h * 3600 + mi * 60 + se;
    match &s[19..] {
        "" | "Z" => Some(secs),
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let off = num(20..22)? * 3600 + num(23..25)? * 60;
            Some(if tz.starts_with('+') {
                secs - off
            } else {
                secs + off
            })
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    And,
    Or,
    Not,
    Op(Op),
    /// A bare word (may be a subject or a value).
    Word(String),
    /// A quoted string: always a value, never a keyword.
    Quoted(String),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::And => "'and'".into(),
            Tok::Or => "'or'".into(),
            Tok::Not => "'not'".into(),
            Tok::Op(op) => format!("operator {op:?}"),
            Tok::Word(w) | Tok::Quoted(w) => format!("'{w}'"),
            Tok::End => "end of expression".into(),
        }
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !"()[],'\"=!<>&|".contains(c)
}

impl Lexer {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    /// `!` followed by a word: `!in`, `!exists` are operators only when the word ends there.
    fn bang_word(&self, word: &str) -> bool {
        self.starts_with(word)
            && !self
                .chars
                .get(self.pos + word.len())
                .is_some_and(|&c| is_word_char(c))
    }

    fn token(&mut self) -> Result<(Tok, usize), QueryError> {
        self.skip_ws();
        let at = self.pos;
        let Some(&c) = self.chars.get(self.pos) else {
            return Ok((Tok::End, at));
        };
        let two = |l: &mut Lexer, t: Tok| {
            l.pos += 2;
            Ok((t, at))
        };
        let one = |l: &mut Lexer, t: Tok| {
            l.pos += 1;
            Ok((t, at))
        };
        match c {
            '(' => one(self, Tok::LParen),
            ')' => one(self, Tok::RParen),
            '[' => one(self, Tok::LBracket),
            ']' => one(self, Tok::RBracket),
            ',' => one(self, Tok::Comma),
            '&' if self.starts_with("&&") => two(self, Tok::And),
            '|' if self.starts_with("||") => two(self, Tok::Or),
            '=' if self.starts_with("==") => two(self, Tok::Op(Op::Eq)),
            '=' if self.starts_with("=~") => two(self, Tok::Op(Op::Matches)),
            '>' if self.starts_with(">=") => two(self, Tok::Op(Op::Ge)),
            '>' => one(self, Tok::Op(Op::Gt)),
            '<' if self.starts_with("<=") => two(self, Tok::Op(Op::Le)),
            '<' => one(self, Tok::Op(Op::Lt)),
            '!' => {
                self.pos += 1;
                if self.starts_with("=") {
                    self.pos += 1;
                    Ok((Tok::Op(Op::Ne), at))
                } else if self.starts_with("~") {
                    self.pos += 1;
                    Ok((Tok::Op(Op::NotMatches), at))
                } else if self.bang_word("in") {
                    self.pos += 2;
                    Ok((Tok::Op(Op::NotIn), at))
                } else if self.bang_word("exists") {
                    self.pos += 6;
                    Ok((Tok::Op(Op::NotExists), at))
                } else {
                    Ok((Tok::Not, at))
                }
            }
            '\'' | '"' => self.quoted(c).map(|s| (Tok::Quoted(s), at)),
            c if is_word_char(c) => {
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(|&c| is_word_char(c)) {
                    self.pos += 1;
                }
                let w: String = self.chars[start..self.pos].iter().collect();
                let tok = match w.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "in" => Tok::Op(Op::In),
                    "not_in" => Tok::Op(Op::NotIn),
                    "exists" => Tok::Op(Op::Exists),
                    "not_exists" => Tok::Op(Op::NotExists),
                    "equals" => Tok::Op(Op::Eq),
                    "not_equals" => Tok::Op(Op::Ne),
                    "matches" => Tok::Op(Op::Matches),
                    "not_matches" => Tok::Op(Op::NotMatches),
                    "greater_than" => Tok::Op(Op::Gt),
                    "greater_than_equal" => Tok::Op(Op::Ge),
                    "less_than" => Tok::Op(Op::Lt),
                    "less_than_equal" => Tok::Op(Op::Le),
                    _ => Tok::Word(w),
                };
                Ok((tok, at))
            }
            c => Err(QueryError {
                message: format!("unexpected character '{c}'"),
                position: at,
            }),
        }
    }

    fn quoted(&mut self, quote: char) -> Result<String, QueryError> {
        let at = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.chars.get(self.pos) {
                None => {
                    return Err(QueryError {
                        message: "unterminated quoted string".into(),
                        position: at,
                    });
                }
                Some('\\') if self.chars.get(self.pos + 1) == Some(&quote) => {
                    s.push(quote);
                    self.pos += 2;
                }
                Some(&c) if c == quote => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some(&c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A regex argument: quoted, or raw up to whitespace, keeping only the `)` it opened.
    fn raw_argument(&mut self) -> Result<(String, usize), QueryError> {
        self.skip_ws();
        let at = self.pos;
        match self.chars.get(self.pos) {
            Some(&q) if q == '\'' || q == '"' => return self.quoted(q).map(|s| (s, at)),
            None => {
                return Err(QueryError {
                    message: "missing pattern after matches operator".into(),
                    position: at,
                });
            }
            _ => {}
        }
        let mut depth = 0i64;
        let mut brackets = false;
        while let Some(&c) = self.chars.get(self.pos) {
            if c.is_whitespace() {
                break;
            }
            match c {
                '[' => brackets = true,
                ']' => brackets = false,
                '(' if !brackets => depth += 1,
                ')' if !brackets => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                _ => {}
            }
            self.pos += 1;
        }
        Ok((self.chars[at..self.pos].iter().collect(), at))
    }
}

struct Parser {
    lex: Lexer,
    peeked: Option<(Tok, usize)>,
}

impl Parser {
    fn peek(&mut self) -> Result<&(Tok, usize), QueryError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex.token()?);
        }
        Ok(self.peeked.as_ref().unwrap())
    }

    fn next(&mut self) -> Result<(Tok, usize), QueryError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex.token(),
        }
    }

    fn error_at(&self, position: usize, message: &str) -> QueryError {
        QueryError::at(position, message)
    }

    fn or_expr(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.and_expr()?;
        while self.peek()?.0 == Tok::Or {
            self.next()?;
            e = Expr::Or(Box::new(e), Box::new(self.and_expr()?));
        }
        Ok(e)
    }

    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        let mut e = self.unary()?;
        while self.peek()?.0 == Tok::And {
            self.next()?;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        let (t, at) = self.next()?;
        match t {
            Tok::Not => Ok(Expr::Not(Box::new(self.unary()?))),
            Tok::LParen => {
                let e = self.or_expr()?;
                let (t, at2) = self.next()?;
                if t != Tok::RParen {
                    return Err(
                        self.error_at(at2, &format!("expected ')' but found {}", t.describe()))
                    );
                }
                Ok(e)
            }
            Tok::Word(w) => self.compare(&w, at),
            t => Err(self.error_at(
                at,
                &format!("expected a subject but found {}", t.describe()),
            )),
        }
    }

    fn compare(&mut self, word: &str, at: usize) -> Result<Expr, QueryError> {
        let subject = parse_subject(word).ok_or_else(|| {
            self.error_at(
                at,
                &format!(
                    "unknown subject '{word}' (expected agentConnected, agentVersion, \
                     attribute:NAME, ec2InstanceId, registeredAt, runningTasksCount or task:group)"
                ),
            )
        })?;
        let (t, op_at) = self.next()?;
        let Tok::Op(op) = t else {
            return Err(self.error_at(
                op_at,
                &format!(
                    "expected an operator after '{word}' but found {}",
                    t.describe()
                ),
            ));
        };
        check_operator(&subject, op, op_at)?;
        let arg =
            match op {
                Op::Exists | Op::NotExists => Arg::None,
                Op::Matches | Op::NotMatches => {
                    let (pat, pat_at) = self.lex.raw_argument()?;
                    Arg::Regex(Regex::new(&pat).map_err(|e| {
                        self.error_at(pat_at, &format!("invalid pattern '{pat}': {e}"))
                    })?)
                }
                Op::In | Op::NotIn => Arg::List(self.list()?),
                _ => {
                    let (v, v_at) = self.value()?;
                    typed_arg(&subject, v, v_at)?
                }
            };
        Ok(Expr::Compare { subject, op, arg })
    }

    fn value(&mut self) -> Result<(String, usize), QueryError> {
        match self.next()? {
            (Tok::Word(w) | Tok::Quoted(w), at) => Ok((w, at)),
            (t, at) => {
                Err(self.error_at(at, &format!("expected a value but found {}", t.describe())))
            }
        }
    }

    fn list(&mut self) -> Result<Vec<String>, QueryError> {
        let (open, at) = self.next()?;
        let close = match open {
            Tok::LBracket => Tok::RBracket,
            Tok::LParen => Tok::RParen,
            t => {
                return Err(self.error_at(
                    at,
                    &format!("expected '[' to open a list but found {}", t.describe()),
                ));
            }
        };
        let mut items = vec![self.value()?.0];
        loop {
            let (t, at) = self.next()?;
            if t == close {
                return Ok(items);
            }
            if t != Tok::Comma {
                return Err(self.error_at(
                    at,
                    &format!(
                        "expected ',' or {} but found {}",
                        close.describe(),
                        t.describe()
                    ),
                ));
            }
            items.push(self.value()?.0);
        }
    }
}

fn parse_subject(word: &str) -> Option<Subject> {
    if let Some(name) = word.strip_prefix("attribute:") {
        return (!name.is_empty()).then(|| Subject::Attribute(name.to_string()));
    }
    Some(match word {
        "agentConnected" => Subject::AgentConnected,
        "agentVersion" => Subject::AgentVersion,
        "ec2InstanceId" => Subject::Ec2InstanceId,
        "registeredAt" => Subject::RegisteredAt,
        "runningTasksCount" => Subject::RunningTasksCount,
        "task:group" => Subject::TaskGroup,
        _ => return None,
    })
}

/// The operators ECS lists for each subject.
/// `at`: the operator's position in the expression.
fn check_operator(subject: &Subject, op: Op, at: usize) -> Result<(), QueryError> {
    let ordered = matches!(op, Op::Eq | Op::Ne | Op::Gt | Op::Ge | Op::Lt | Op::Le);
    let textual = matches!(
        op,
        Op::Eq | Op::Ne | Op::In | Op::NotIn | Op::Matches | Op::NotMatches
    );
    let ok = match subject {
        Subject::AgentVersion | Subject::RegisteredAt | Subject::RunningTasksCount => ordered,
        Subject::AgentConnected | Subject::Ec2InstanceId | Subject::TaskGroup => textual,
        Subject::Attribute(_) => textual || matches!(op, Op::Exists | Op::NotExists),
    };
    if ok {
        Ok(())
    } else {
        Err(QueryError::at(
            at,
            format!("operator {op:?} is not valid for subject {subject:?}"),
        ))
    }
}

/// `at`: the value's position in the expression.
fn typed_arg(subject: &Subject, v: String, at: usize) -> Result<Arg, QueryError> {
    let wrong = |message: String| QueryError::at(at, message);
    Ok(match subject {
        Subject::AgentConnected => match v.as_str() {
            "true" => Arg::Bool(true),
            "false" => Arg::Bool(false),
            _ => {
                return Err(wrong(format!(
                    "agentConnected takes true or false, not '{v}'"
                )));
            }
        },
        Subject::RunningTasksCount => Arg::Number(
            v.parse()
                .map_err(|_| wrong(format!("runningTasksCount takes a number, not '{v}'")))?,
        ),
        Subject::AgentVersion => {
            if v.trim_start_matches('v')
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            {
                Arg::Version(parse_version(&v))
            } else {
                return Err(wrong(format!(
                    "agentVersion takes a version such as 1.20.0, not '{v}'"
                )));
            }
        }
        Subject::RegisteredAt => Arg::Time(parse_time(&v).ok_or_else(|| {
            wrong(format!(
                "registeredAt takes a date such as 2018-06-18T22:28:28Z or 2018-06-18, not '{v}'"
            ))
        })?),
        _ => Arg::Text(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst() -> InstanceView {
        let mut i = InstanceView::new("arn:i1", 1024, 2048)
            .with_attribute("ecs.instance-type", "t2.micro")
            .with_attribute("ecs.availability-zone", "us-east-1a")
            .with_attribute("ecs.os-type", "linux");
        i.attributes.insert("flag".into(), None);
        i.ec2_instance_id = "i-0abc".into();
        i.agent_version = "1.20.3".into();
        i.registered_at = parse_time("2018-06-18T22:28:28Z").unwrap();
        i.task_groups.insert("service:web".into(), 2);
        i.task_groups.insert("family:db".into(), 1);
        i
    }

    fn eval(s: &str) -> bool {
        parse_expression(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .matches(&inst())
    }

    #[test]
    fn documented_examples() {
        assert!(eval("attribute:ecs.instance-type == t2.micro"));
        assert!(eval("attribute:ecs.instance-type =~ t2.*"));
        assert!(!eval("attribute:ecs.instance-type =~ g2.*"));
        assert!(eval(
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"
        ));
        assert!(eval(
            "attribute:ecs.availability-zone in (us-east-1a, us-east-1b)"
        ));
        assert!(!eval(
            "attribute:ecs.availability-zone not_in ['us-east-1a']"
        ));
        assert!(!eval("attribute:ecs.availability-zone !in ['us-east-1a']"));
        assert!(eval(
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d"
        ));
        assert!(eval("not(task:group == database)"));
        assert!(eval("task:group == service:web"));
        assert!(eval("task:group =~ family:.*"));
        assert!(eval("ec2InstanceId in ['i-0abc', 'i-wxyz']"));
        assert!(eval("agentConnected == true"));
        assert!(eval("agentVersion >= 1.9.0 && agentVersion < 1.21"));
        assert!(eval("registeredAt < 2018-06-19"));
        assert!(eval("registeredAt == 2018-06-18T23:28:28+01:00"));
        assert!(eval("runningTasksCount greater_than 2"));
        assert!(!eval("runningTasksCount > 3"));
    }

    #[test]
    fn precedence_parentheses_and_negation() {
        // not > and > or
        assert!(eval(
            "attribute:x exists or attribute:ecs.os-type == linux and attribute:ecs.instance-type == t2.micro"
        ));
        assert!(!eval(
            "(attribute:x exists or attribute:ecs.os-type == linux) and attribute:ecs.instance-type == m5"
        ));
        assert!(eval("!attribute:x exists"));
        assert!(eval("attribute:x !exists and attribute:flag exists"));
        assert!(eval("attribute:x not_exists"));
        assert!(eval("attribute:missing != prod"));
        assert!(!eval("attribute:missing == prod"));
        assert!(eval("attribute:flag == ''"));
        assert!(eval("(attribute:ecs.instance-type =~ (t2|m5).*)"));
        assert!(eval(
            "not (attribute:ecs.instance-type !~ [a-z]2\\..+) || attribute:x exists"
        ));
        assert!(eval(
            "ATTRIBUTE:ecs.os-type == linux"
                .replace("ATTRIBUTE", "attribute")
                .as_str()
        ));
        assert!(eval(
            "attribute:ecs.os-type == linux AND attribute:ecs.os-type equals linux"
        ));
    }

    #[test]
    fn errors_have_positions() {
        let e = parse_expression("attribute:a == ").unwrap_err();
        assert_eq!(e.position, 15);
        assert!(parse_expression("").is_err());
        assert!(
            parse_expression("foo == bar")
                .unwrap_err()
                .message
                .contains("unknown subject")
        );
        assert!(parse_expression("attribute:a").is_err());
        assert!(parse_expression("attribute:a == b and").is_err());
        assert!(parse_expression("(attribute:a == b").is_err());
        assert!(parse_expression("attribute:a == b)").is_err());
        assert!(parse_expression("attribute:a in [b, c").is_err());
        assert!(parse_expression("attribute:a =~ a{2}").is_err());
        assert!(parse_expression("runningTasksCount > x").is_err());
        assert!(parse_expression("runningTasksCount =~ 1").is_err());
        assert!(parse_expression("attribute:a > 1").is_err());
        assert!(parse_expression("registeredAt > 2018-13-01").is_err());
        assert!(parse_expression("agentConnected == maybe").is_err());
        assert!(parse_expression("attribute:a == 'unterminated").is_err());
        let e = parse_expression("attribute:a == b c").unwrap_err();
        assert_eq!(e.position, 17);
    }

    #[test]
    fn dependency_on_tasks() {
        assert!(
            parse_expression("not(task:group == x)")
                .unwrap()
                .depends_on_tasks()
        );
        assert!(
            parse_expression("attribute:a == b or runningTasksCount < 3")
                .unwrap()
                .depends_on_tasks()
        );
        assert!(
            !parse_expression("attribute:a == b")
                .unwrap()
                .depends_on_tasks()
        );
    }
}
