//! The small regular-expression language behind the cluster query language's `=~` / `!~`.
//! ECS documents `matches` with patterns such as `t2.*`; we support the common subset
//! (literals, `.`, classes, `* + ?`, `|`, groups, `\d \w \s`) with whole-string matching,
//! as Java's `String.matches` does, and run it as a Pike VM so no pattern can blow up.

use std::fmt;

/// A compiled pattern; `is_match` tests the whole string.
#[derive(Clone)]
pub struct Regex {
    source: String,
    prog: Vec<Inst>,
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regex({:?})", self.source)
    }
}

#[derive(Clone, Debug)]
enum Inst {
    Char(char),
    Any,
    Class(Class),
    Split(usize, usize),
    Jmp(usize),
    Match,
}

#[derive(Clone, Debug)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

#[derive(Debug)]
enum Node {
    Empty,
    Char(char),
    Any,
    Class(Class),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Star(Box<Node>),
    Plus(Box<Node>),
    Quest(Box<Node>),
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexError(pub String);

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Regex {
    /// Compiles `pattern`; unsupported syntax (backreferences, `{m,n}`, lookaround) is an error.
    pub fn new(pattern: &str) -> Result<Regex, RegexError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser {
            chars: &chars,
            pos: 0,
        };
        // Whole-string matching makes leading `^` and trailing `$` redundant.
        if p.peek() == Some('^') {
            p.pos += 1;
        }
        let node = p.alternation()?;
        if p.pos < chars.len() {
            return Err(RegexError(format!(
                "unexpected '{}' at {} in pattern '{pattern}'",
                chars[p.pos], p.pos
            )));
        }
        let mut prog = Vec::new();
        compile(&node, &mut prog);
        prog.push(Inst::Match);
        Ok(Regex {
            source: pattern.to_string(),
            prog,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        let n = self.prog.len();
        let mut clist: Vec<usize> = Vec::with_capacity(n);
        let mut nlist: Vec<usize> = Vec::with_capacity(n);
        let mut seen = vec![usize::MAX; n];
        let mut step = 0usize;
        self.add(&mut clist, &mut seen, step, 0);
        for c in text.chars() {
            if clist.is_empty() {
                return false;
            }
            step += 1;
            nlist.clear();
            for &pc in &clist {
                let ok = match &self.prog[pc] {
                    Inst::Char(x) => *x == c,
                    Inst::Any => true,
                    Inst::Class(cl) => cl.matches(c),
                    _ => false,
                };
                if ok {
                    self.add(&mut nlist, &mut seen, step, pc + 1);
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
        }
        clist.iter().any(|&pc| matches!(self.prog[pc], Inst::Match))
    }

    fn add(&self, list: &mut Vec<usize>, seen: &mut [usize], step: usize, pc: usize) {
        if seen[pc] == step {
            return;
        }
        seen[pc] = step;
        match self.prog[pc] {
            Inst::Jmp(t) => self.add(list, seen, step, t),
            Inst::Split(a, b) => {
                self.add(list, seen, step, a);
                self.add(list, seen, step, b);
            }
            _ => list.push(pc),
        }
    }
}

fn compile(node: &Node, prog: &mut Vec<Inst>) {
    match node {
        Node::Empty => {}
        Node::Char(c) => prog.push(Inst::Char(*c)),
        Node::Any => prog.push(Inst::Any),
        Node::Class(c) => prog.push(Inst::Class(c.clone())),
        Node::Concat(v) => v.iter().for_each(|n| compile(n, prog)),
        Node::Alt(v) => {
            // split L1, next; L1: a; jmp end; next: split ... ; last
            let mut jumps = Vec::new();
            for (i, n) in v.iter().enumerate() {
                if i + 1 < v.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(n, prog);
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    prog[split] = Inst::Split(split + 1, next);
                } else {
                    compile(n, prog);
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Star(n) => {
            let split = prog.len();
            prog.push(Inst::Split(0, 0));
            compile(n, prog);
            prog.push(Inst::Jmp(split));
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
        Node::Plus(n) => {
            let start = prog.len();
            compile(n, prog);
            let end = prog.len() + 1;
            prog.push(Inst::Split(start, end));
        }
        Node::Quest(n) => {
            let split = prog.len();
            prog.push(Inst::Split(0, 0));
            compile(n, prog);
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
    }
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn err<T>(&self, what: &str) -> Result<T, RegexError> {
        Err(RegexError(format!("{what} at {} in pattern", self.pos)))
    }

    fn alternation(&mut self) -> Result<Node, RegexError> {
        let mut alts = vec![self.concat()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.concat()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap()
        } else {
            Node::Alt(alts)
        })
    }

    fn concat(&mut self) -> Result<Node, RegexError> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            if c == '$' && self.pos + 1 == self.chars.len() {
                self.pos += 1;
                break;
            }
            let atom = self.atom()?;
            items.push(self.repeat(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap(),
            _ => Node::Concat(items),
        })
    }

    fn repeat(&mut self, mut atom: Node) -> Result<Node, RegexError> {
        loop {
            atom = match self.peek() {
                Some('*') => Node::Star(Box::new(atom)),
                Some('+') => Node::Plus(Box::new(atom)),
                Some('?') => Node::Quest(Box::new(atom)),
                Some('{') => return self.err("counted repetition {m,n} is not supported"),
                _ => return Ok(atom),
            };
            self.pos += 1;
            // A lazy or possessive suffix does not change whether a whole string matches.
            if matches!(self.peek(), Some('?') | Some('+')) {
                self.pos += 1;
            }
        }
    }

    fn atom(&mut self) -> Result<Node, RegexError> {
        let c = self.peek().unwrap();
        self.pos += 1;
        match c {
            '.' => Ok(Node::Any),
            '(' => {
                if self.peek() == Some('?') {
                    // Only the non-capturing group `(?:...)` is meaningful without captures.
                    if self.chars.get(self.pos + 1) == Some(&':') {
                        self.pos += 2;
                    } else {
                        return self.err("lookaround and inline flags are not supported");
                    }
                }
                let inner = self.alternation()?;
                if self.peek() != Some(')') {
                    return self.err("missing ')'");
                }
                self.pos += 1;
                Ok(inner)
            }
            '[' => self.class(),
            '\\' => self.escape(false).map(|e| match e {
                Escaped::Char(c) => Node::Char(c),
                Escaped::Class(cl) => Node::Class(cl),
            }),
            '*' | '+' | '?' => self.err("nothing to repeat"),
            _ => Ok(Node::Char(c)),
        }
    }

    fn escape(&mut self, in_class: bool) -> Result<Escaped, RegexError> {
        let Some(c) = self.peek() else {
            return self.err("trailing '\\'");
        };
        self.pos += 1;
        let class = |ranges: Vec<(char, char)>, negated| Escaped::Class(Class { ranges, negated });
        Ok(match c {
            'd' => class(vec![('0', '9')], false),
            'D' => class(vec![('0', '9')], true),
            'w' => class(WORD.to_vec(), false),
            'W' => class(WORD.to_vec(), true),
            's' => class(SPACE.to_vec(), false),
            'S' => class(SPACE.to_vec(), true),
            'n' => Escaped::Char('\n'),
            't' => Escaped::Char('\t'),
            c if c.is_ascii_alphanumeric() && !in_class => {
                return self.err("unsupported escape");
            }
            c => Escaped::Char(c),
        })
    }

    fn class(&mut self) -> Result<Node, RegexError> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return self.err("missing ']'");
            };
            if c == ']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            self.pos += 1;
            let lo = if c == '\\' {
                match self.escape(true)? {
                    Escaped::Char(c) => c,
                    Escaped::Class(cl) if !cl.negated => {
                        ranges.extend(cl.ranges);
                        continue;
                    }
                    Escaped::Class(_) => return self.err("negated escape inside a class"),
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let mut hi = self.peek().unwrap();
                self.pos += 1;
                if hi == '\\' {
                    match self.escape(true)? {
                        Escaped::Char(c) => hi = c,
                        Escaped::Class(_) => return self.err("class escape as a range end"),
                    }
                }
                if hi < lo {
                    return self.err("range out of order");
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class(Class { ranges, negated }))
    }
}

enum Escaped {
    Char(char),
    Class(Class),
}

const WORD: [(char, char); 4] = [('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
const SPACE: [(char, char); 2] = [(' ', ' '), ('\t', '\r')];

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Regex::new(p).unwrap().is_match(s)
    }

    #[test]
    fn whole_string_semantics() {
        assert!(m("t2.*", "t2.micro"));
        assert!(!m("t2.*", "xt2.micro"));
        assert!(!m("t2", "t2.micro"));
        assert!(m("^t2\\..*$", "t2.micro"));
        assert!(!m("t2\\..*", "t2xmicro"));
    }

    #[test]
    fn alternation_groups_classes() {
        assert!(m("(m5|c5)\\.(x|2x)?large", "c5.2xlarge"));
        assert!(m("(m5|c5)\\.(x|2x)?large", "m5.large"));
        assert!(!m("(m5|c5)\\.(x|2x)?large", "r5.large"));
        assert!(m("us-east-1[a-c]", "us-east-1b"));
        assert!(!m("us-east-1[^a-c]", "us-east-1b"));
        assert!(m("i-\\w+", "i-0abc12"));
        assert!(m("a+b*c?", "aaab"));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn pathological_pattern_is_linear() {
        let p = "(a*)*(a*)*(a*)*b";
        let s = "a".repeat(5000);
        assert!(!m(p, &s));
    }

    #[test]
    fn errors() {
        assert!(Regex::new("a{2}").is_err());
        assert!(Regex::new("(a").is_err());
        assert!(Regex::new("[a").is_err());
        assert!(Regex::new("*a").is_err());
        assert!(Regex::new("(?=a)").is_err());
    }
}
