//! JSON patterns `{ SELECTOR OP VALUE && ( … || … ) }`.
//!
//! Reading the message is the expensive part, so `matches` first rejects anything that does not
//! start like JSON (and `FilterPattern` first checks the required literals). Then, rather than
//! building a `serde_json::Value`, one validating serde pass walks the message guided by a trie
//! of the pattern's selectors: it records only the nodes the pattern names and skips the rest
//! without allocating, which is several times faster on typical log lines.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Condition, Cursor, Number, PatternError, Value, best_conjunct, union_disjuncts};

/// A parsed JSON pattern: the expression and the trie of the selectors it uses.
#[derive(Debug, Clone)]
pub(super) struct JsonPattern {
    expr: JsonExpr,
    trie: Trie,
}

#[derive(Debug, Clone)]
pub(super) enum JsonExpr {
    Or(Vec<JsonExpr>),
    And(Vec<JsonExpr>),
    /// `node` is the selector's node in the trie, filled in once parsing is done.
    Test {
        path: Vec<Step>,
        node: usize,
        test: Test,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
pub(super) enum Test {
    Compare(Condition),
    IsTrue,
    IsFalse,
    IsNull,
    NotExists,
}

pub(super) fn parse(text: &str) -> Result<JsonPattern, PatternError> {
    let mut cur = Cursor::new(text);
    if !cur.eat("{") {
        return Err(cur.error("expected '{'"));
    }
    let expr = parse_or(&mut cur)?;
    cur.skip_ws();
    if !cur.eat("}") {
        return Err(cur.error("expected '}', '&&' or '||'"));
    }
    cur.skip_ws();
    if !cur.at_end() {
        return Err(cur.error("unexpected text after '}'"));
    }
    let mut expr = expr;
    let mut builder = TrieBuilder::default();
    expr.visit_tests(&mut |path, _| builder.insert(path));
    let trie = builder.flatten();
    expr.visit_tests(&mut |path, node| *node = trie.find(path));
    Ok(JsonPattern { expr, trie })
}

fn parse_or(cur: &mut Cursor) -> Result<JsonExpr, PatternError> {
    let mut items = vec![parse_and(cur)?];
    loop {
        cur.skip_ws();
        if !cur.eat("||") {
            break;
        }
        items.push(parse_and(cur)?);
    }
    Ok(if items.len() == 1 {
        items.pop().expect("one item")
    } else {
        JsonExpr::Or(items)
    })
}

fn parse_and(cur: &mut Cursor) -> Result<JsonExpr, PatternError> {
    let mut items = vec![parse_primary(cur)?];
    loop {
        cur.skip_ws();
        if !cur.eat("&&") {
            break;
        }
        items.push(parse_primary(cur)?);
    }
    Ok(if items.len() == 1 {
        items.pop().expect("one item")
    } else {
        JsonExpr::And(items)
    })
}

fn parse_primary(cur: &mut Cursor) -> Result<JsonExpr, PatternError> {
    cur.skip_ws();
    if cur.eat("(") {
        let inner = parse_or(cur)?;
        cur.skip_ws();
        if !cur.eat(")") {
            return Err(cur.error("expected ')'"));
        }
        return Ok(inner);
    }
    let path = parse_selector(cur)?;
    cur.skip_ws();
    let test = if cur.eat_keyword("IS") {
        cur.skip_ws();
        if cur.eat_keyword("TRUE") {
            Test::IsTrue
        } else if cur.eat_keyword("FALSE") {
            Test::IsFalse
        } else if cur.eat_keyword("NULL") {
            Test::IsNull
        } else {
            return Err(cur.error("expected TRUE, FALSE or NULL after IS"));
        }
    } else if cur.eat_keyword("NOT") {
        cur.skip_ws();
        if !cur.eat_keyword("EXISTS") {
            return Err(cur.error("expected EXISTS after NOT"));
        }
        Test::NotExists
    } else {
        let Some(op) = cur.parse_op() else {
            return Err(cur.error("expected an operator, IS or NOT EXISTS"));
        };
        let value = cur.parse_value(op, |b| matches!(b, b'(' | b')' | b'}'))?;
        Test::Compare(Condition { op, value })
    };
    Ok(JsonExpr::Test {
        path,
        node: 0,
        test,
    })
}

/// `$.key.other[0][1]`: keys of letters, digits, `_`, `-` (and `@`, common in log schemas).
fn parse_selector(cur: &mut Cursor) -> Result<Vec<Step>, PatternError> {
    if !cur.eat("$") {
        return Err(cur.error("expected a selector starting with '$'"));
    }
    let mut path = Vec::new();
    loop {
        if cur.eat(".") {
            let rest = cur.rest();
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@'))
                .count();
            if len == 0 {
                return Err(cur.error("expected a property name after '.'"));
            }
            path.push(Step::Key(rest[..len].to_owned()));
            cur.pos += len;
        } else if cur.eat("[") {
            let rest = cur.rest();
            let len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let index = rest[..len]
                .parse::<usize>()
                .map_err(|_| cur.error("expected an array index"))?;
            cur.pos += len;
            if !cur.eat("]") {
                return Err(cur.error("expected ']'"));
            }
            path.push(Step::Index(index));
        } else {
            break;
        }
    }
    if path.is_empty() {
        return Err(cur.error("a selector needs at least one property or index"));
    }
    Ok(path)
}

impl JsonPattern {
    pub(super) fn matches(&self, message: &str) -> bool {
        // Cheap rejection before paying for a parse.
        if !matches!(message.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
            return false;
        }
        const INLINE: usize = 8;
        let mut inline: [Seen; INLINE] = Default::default();
        let mut heap = Vec::new();
        let seen: &mut [Seen] = if self.trie.nodes.len() <= INLINE {
            &mut inline[..self.trie.nodes.len()]
        } else {
            heap.resize(self.trie.nodes.len(), Seen::Missing);
            &mut heap
        };
        let mut de = serde_json::Deserializer::from_str(message);
        let walked = NodeSeed {
            trie: &self.trie,
            node: 0,
            seen: &mut *seen,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        walked.is_ok() && self.expr.eval(seen)
    }

    pub(super) fn regex_count(&self) -> usize {
        self.expr.regex_count()
    }

    pub(super) fn required_literals(&self) -> Option<Vec<Vec<u8>>> {
        self.expr.required_literals()
    }
}

impl JsonExpr {
    fn visit_tests(&mut self, f: &mut dyn FnMut(&[Step], &mut usize)) {
        match self {
            JsonExpr::Or(items) | JsonExpr::And(items) => {
                items.iter_mut().for_each(|e| e.visit_tests(f));
            }
            JsonExpr::Test { path, node, .. } => f(path, node),
        }
    }

    fn eval(&self, seen: &[Seen]) -> bool {
        match self {
            JsonExpr::Or(items) => items.iter().any(|e| e.eval(seen)),
            JsonExpr::And(items) => items.iter().all(|e| e.eval(seen)),
            JsonExpr::Test { node, test, .. } => {
                let seen = &seen[*node];
                match test {
                    Test::IsTrue => matches!(seen, Seen::Bool(true)),
                    Test::IsFalse => matches!(seen, Seen::Bool(false)),
                    Test::IsNull => matches!(seen, Seen::Null),
                    Test::NotExists => matches!(seen, Seen::Missing),
                    Test::Compare(cond) => compare(cond, seen),
                }
            }
        }
    }

    pub(super) fn regex_count(&self) -> usize {
        match self {
            JsonExpr::Or(items) | JsonExpr::And(items) => {
                items.iter().map(JsonExpr::regex_count).sum()
            }
            JsonExpr::Test {
                test: Test::Compare(c),
                ..
            } => usize::from(c.is_regex()),
            JsonExpr::Test { .. } => 0,
        }
    }

    pub(super) fn required_literals(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            JsonExpr::Or(items) => union_disjuncts(items.iter().map(JsonExpr::required_literals)),
            JsonExpr::And(items) => best_conjunct(items.iter().map(JsonExpr::required_literals)),
            JsonExpr::Test { test, .. } => match test {
                // JSON spells these keywords one way only.
                Test::IsTrue => Some(vec![b"true".to_vec()]),
                Test::IsFalse => Some(vec![b"false".to_vec()]),
                Test::IsNull => Some(vec![b"null".to_vec()]),
                Test::NotExists => None,
                Test::Compare(c) => json_literals(c.literal()?),
            },
        }
    }
}

/// Only scalars (strings, numbers, booleans) are compared; objects, arrays, null and missing
/// fields match neither `=` nor `!=`.
fn compare(cond: &Condition, seen: &Seen) -> bool {
    match (seen, &cond.value) {
        (Seen::Str(s), _) => cond.eval_text(s),
        (Seen::Number(n), Value::Number(_)) => cond.eval_number(Some(Number::from_json(n))),
        (Seen::Number(n), Value::Text(_) | Value::Regex(_)) => cond.eval_text(&n.to_string()),
        (Seen::Bool(_), Value::Number(_)) => cond.eval_number(None),
        (Seen::Bool(b), _) => cond.eval_text(if *b { "true" } else { "false" }),
        (Seen::Missing | Seen::Null | Seen::Container, _) => false,
    }
}

/// What a raw JSON message must contain if a scalar's decoded text contains `core`.
///
/// A string may spell any character as `\uXXXX` (and `/` as `\/`), so the escape sequences are
/// alternatives; a core that itself needs escaping (`"`, `\`, control characters) gives no
/// guarantee, nor does one made only of number characters, since a number's printed form may
/// differ from how the message wrote it (`1E2` versus `100.0`).
fn json_literals(core: &str) -> Option<Vec<Vec<u8>>> {
    if core.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    if core
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let mut literals = vec![core.as_bytes().to_vec(), b"\\u".to_vec()];
    if core.contains('/') {
        literals.push(b"\\/".to_vec());
    }
    Some(literals)
}

/// The pattern's selectors merged into a tree, numbered in preorder so that a node's subtree is
/// the id range `id..nodes[id].end`. Node 0 is the root `$`.
#[derive(Debug, Clone)]
struct Trie {
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Clone)]
struct TrieNode {
    keys: Vec<(String, usize)>,
    indexes: Vec<(usize, usize)>,
    end: usize,
}

#[derive(Default)]
struct TrieBuilder {
    keys: Vec<(String, TrieBuilder)>,
    indexes: Vec<(usize, TrieBuilder)>,
}

impl TrieBuilder {
    fn insert(&mut self, path: &[Step]) {
        let Some((step, rest)) = path.split_first() else {
            return;
        };
        let child = match step {
            Step::Key(k) => match self.keys.iter().position(|(key, _)| key == k) {
                Some(i) => &mut self.keys[i].1,
                None => {
                    self.keys.push((k.clone(), TrieBuilder::default()));
                    &mut self.keys.last_mut().expect("just pushed").1
                }
            },
            Step::Index(n) => match self.indexes.iter().position(|(index, _)| index == n) {
                Some(i) => &mut self.indexes[i].1,
                None => {
                    self.indexes.push((*n, TrieBuilder::default()));
                    &mut self.indexes.last_mut().expect("just pushed").1
                }
            },
        };
        child.insert(rest);
    }

    fn flatten(self) -> Trie {
        let mut nodes = Vec::new();
        self.push_into(&mut nodes);
        Trie { nodes }
    }

    fn push_into(self, nodes: &mut Vec<TrieNode>) -> usize {
        let id = nodes.len();
        nodes.push(TrieNode {
            keys: Vec::new(),
            indexes: Vec::new(),
            end: 0,
        });
        let keys = self
            .keys
            .into_iter()
            .map(|(k, child)| (k, child.push_into(nodes)))
            .collect();
        let indexes = self
            .indexes
            .into_iter()
            .map(|(n, child)| (n, child.push_into(nodes)))
            .collect();
        let end = nodes.len();
        nodes[id] = TrieNode { keys, indexes, end };
        id
    }
}

impl Trie {
    fn find(&self, path: &[Step]) -> usize {
        path.iter().fold(0, |node, step| {
            let node = &self.nodes[node];
            match step {
                Step::Key(k) => node.keys.iter().find(|(key, _)| key == k).map(|c| c.1),
                Step::Index(n) => node.indexes.iter().find(|(i, _)| i == n).map(|c| c.1),
            }
            .expect("every selector was inserted")
        })
    }
}

/// What the walk found at a trie node.
#[derive(Debug, Clone, Default)]
enum Seen<'a> {
    #[default]
    Missing,
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'a, str>),
    /// An object or array: matches no comparison.
    Container,
}

/// Deserializes the value at one trie node, recording it and descending only into children
/// the pattern names.
struct NodeSeed<'t, 's, 'de> {
    trie: &'t Trie,
    node: usize,
    seen: &'s mut [Seen<'de>],
}

impl<'de> NodeSeed<'_, '_, 'de> {
    /// With duplicate keys the last one wins (as in `serde_json::Map`), so a node's whole
    /// subtree is cleared before it is recorded again.
    fn record(&mut self, value: Seen<'de>) {
        let end = self.trie.nodes[self.node].end;
        self.seen[self.node + 1..end].fill(Seen::Missing);
        self.seen[self.node] = value;
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(mut self, v: bool) -> Result<(), E> {
        self.record(Seen::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        self.record(Seen::Number(v.into()));
        Ok(())
    }

    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.record(Seen::Number(v.into()));
        Ok(())
    }

    fn visit_f64<E>(mut self, v: f64) -> Result<(), E> {
        // JSON cannot spell NaN or infinity, so this always succeeds.
        self.record(serde_json::Number::from_f64(v).map_or(Seen::Null, Seen::Number));
        Ok(())
    }

    fn visit_borrowed_str<E>(mut self, v: &'de str) -> Result<(), E> {
        self.record(Seen::Str(Cow::Borrowed(v)));
        Ok(())
    }

    /// Strings with escapes arrive decoded in a scratch buffer.
    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        self.record(Seen::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }

    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.record(Seen::Null);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.record(Seen::Container);
        let node = &self.trie.nodes[self.node];
        while let Some(child) = map.next_key_seed(KeyLookup(&node.keys))? {
            match child {
                Some(child) => map.next_value_seed(NodeSeed {
                    trie: self.trie,
                    node: child,
                    seen: &mut *self.seen,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.record(Seen::Container);
        let node = &self.trie.nodes[self.node];
        let mut index = 0;
        loop {
            let child = node.indexes.iter().find(|(i, _)| *i == index).map(|c| c.1);
            let more = match child {
                Some(child) => seq
                    .next_element_seed(NodeSeed {
                        trie: self.trie,
                        node: child,
                        seen: &mut *self.seen,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// Reads an object key and looks it up among a node's children without allocating.
struct KeyLookup<'t>(&'t [(String, usize)]);

impl<'de> DeserializeSeed<'de> for KeyLookup<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyLookup<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().find(|(key, _)| key == v).map(|c| c.1))
    }
}
