//! Space-delimited patterns `[ip, user, ..., status = 4* && status != 403, bytes > 1000]`.
//!
//! Each field's conditions only look at that one field, so a field is a predicate on one token
//! and `...` is a star over tokens. The usual shapes (no `...`, or one) are checked by position;
//! several `...` use the classic greedy wildcard walk. Tokens go in a stack buffer, so common
//! messages are matched without allocating.

use super::{Condition, Cursor, PatternError, best_conjunct, union_disjuncts};

#[derive(Debug, Clone)]
pub(super) struct Delimited {
    slots: Vec<Slot>,
    /// Each slot's field name (`None` for `...` and unnamed fields), for `extractedValues`.
    names: Vec<Option<String>>,
    shape: Shape,
}

/// Where the ellipses are, decided once at parse time.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// No `...`: exactly one field per slot.
    Exact,
    /// One `...` with `head` slots before it and `tail` after it.
    OneEllipsis { head: usize, tail: usize },
    /// Several `...`, with this many single-field slots in all.
    General { fields: usize },
}

#[derive(Debug, Clone)]
enum Slot {
    /// `...`: any number of fields, including none.
    Ellipsis,
    /// Exactly one field, optionally with conditions on it.
    Field(Option<FieldExpr>),
}

#[derive(Debug, Clone)]
enum FieldExpr {
    Or(Vec<FieldExpr>),
    And(Vec<FieldExpr>),
    Cond(Condition),
}

pub(super) fn parse(text: &str) -> Result<Delimited, PatternError> {
    let mut cur = Cursor::new(text);
    if !cur.eat("[") {
        return Err(cur.error("expected '['"));
    }
    let mut slots: Vec<Slot> = Vec::new();
    let mut names: Vec<Option<String>> = Vec::new();
    cur.skip_ws();
    if cur.eat("]") {
        // `[]` names no field: the API reference's TestMetricFilter example matches every
        // message with it and reports each field by position, as `[...]` does.
        slots.push(Slot::Ellipsis);
        names.push(None);
    } else {
        loop {
            let (slot, name) = parse_slot(&mut cur)?;
            // Consecutive ellipses mean the same as one.
            if !(matches!(slot, Slot::Ellipsis) && matches!(slots.last(), Some(Slot::Ellipsis))) {
                slots.push(slot);
                names.push(name);
            }
            cur.skip_ws();
            if cur.eat(",") {
                continue;
            }
            if cur.eat("]") {
                break;
            }
            return Err(cur.error("expected ',' or ']'"));
        }
    }
    cur.skip_ws();
    if !cur.at_end() {
        return Err(cur.error("unexpected text after ']'"));
    }
    let ellipses: Vec<usize> = (0..slots.len())
        .filter(|&i| matches!(slots[i], Slot::Ellipsis))
        .collect();
    let shape = match ellipses.as_slice() {
        [] => Shape::Exact,
        [at] => Shape::OneEllipsis {
            head: *at,
            tail: slots.len() - at - 1,
        },
        many => Shape::General {
            fields: slots.len() - many.len(),
        },
    };
    Ok(Delimited {
        slots,
        names,
        shape,
    })
}

/// A slot and the name of its field, if it has one.
fn parse_slot(cur: &mut Cursor) -> Result<(Slot, Option<String>), PatternError> {
    cur.skip_ws();
    match cur.peek() {
        None => return Err(cur.error("expected ']'")),
        // An empty field (as in `[..., status,]`) stands for one unnamed field.
        Some(b',' | b']') => return Ok((Slot::Field(None), None)),
        _ => {}
    }
    if cur.eat("...") {
        return Ok((Slot::Ellipsis, None));
    }
    // A bare name: the field is captured but unconstrained.
    let save = cur.pos;
    if let Some(name) = parse_name(cur) {
        cur.skip_ws();
        if matches!(cur.peek(), Some(b',' | b']')) {
            return Ok((Slot::Field(None), Some(name.to_owned())));
        }
    }
    cur.pos = save;
    let mut name = None;
    let expr = parse_or(cur, &mut name)?;
    Ok((Slot::Field(Some(expr)), name.map(str::to_owned)))
}

fn parse_name<'a>(cur: &mut Cursor<'a>) -> Option<&'a str> {
    let rest = cur.rest();
    let len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if len == 0 {
        return None;
    }
    cur.pos += len;
    Some(&rest[..len])
}

fn parse_or<'a>(
    cur: &mut Cursor<'a>,
    name: &mut Option<&'a str>,
) -> Result<FieldExpr, PatternError> {
    let mut items = vec![parse_and(cur, name)?];
    loop {
        cur.skip_ws();
        if !cur.eat("||") {
            break;
        }
        items.push(parse_and(cur, name)?);
    }
    Ok(if items.len() == 1 {
        items.pop().expect("one item")
    } else {
        FieldExpr::Or(items)
    })
}

fn parse_and<'a>(
    cur: &mut Cursor<'a>,
    name: &mut Option<&'a str>,
) -> Result<FieldExpr, PatternError> {
    let mut items = vec![parse_primary(cur, name)?];
    loop {
        cur.skip_ws();
        if !cur.eat("&&") {
            break;
        }
        items.push(parse_primary(cur, name)?);
    }
    Ok(if items.len() == 1 {
        items.pop().expect("one item")
    } else {
        FieldExpr::And(items)
    })
}

fn parse_primary<'a>(
    cur: &mut Cursor<'a>,
    name: &mut Option<&'a str>,
) -> Result<FieldExpr, PatternError> {
    cur.skip_ws();
    if cur.eat("(") {
        let inner = parse_or(cur, name)?;
        cur.skip_ws();
        if !cur.eat(")") {
            return Err(cur.error("expected ')'"));
        }
        return Ok(inner);
    }
    let Some(this) = parse_name(cur) else {
        return Err(cur.error("expected a field name"));
    };
    match name {
        None => *name = Some(this),
        Some(first) if *first == this => {}
        Some(first) => {
            return Err(PatternError::syntax(format!(
                "field '{first}' has a condition on '{this}'; conditions may only refer to their own field"
            )));
        }
    }
    cur.skip_ws();
    let Some(op) = cur.parse_op() else {
        return Err(cur.error("expected an operator"));
    };
    let value = cur.parse_value(op, |b| matches!(b, b',' | b']' | b'(' | b')'))?;
    Ok(FieldExpr::Cond(Condition { op, value }))
}

/// The next field at or after byte `pos`, and the offset just past it. A `"…"` or `[…]` run is
/// one field, given without its delimiters; an unterminated one runs to the end.
fn next_field(message: &str, pos: usize) -> Option<(&str, usize)> {
    let bytes = message.as_bytes();
    let start = pos
        + bytes
            .get(pos..)?
            .iter()
            .position(|b| !b.is_ascii_whitespace())?;
    let close = match bytes[start] {
        b'"' => Some(b'"'),
        b'[' => Some(b']'),
        _ => None,
    };
    Some(match close {
        Some(close) => match memchr::memchr(close, &bytes[start + 1..]) {
            Some(i) => (&message[start + 1..start + 1 + i], start + i + 2),
            None => (&message[start + 1..], bytes.len()),
        },
        None => {
            let end = bytes[start..]
                .iter()
                .position(u8::is_ascii_whitespace)
                .map_or(bytes.len(), |i| start + i);
            (&message[start..end], end)
        }
    })
}

/// Fields held on the stack before spilling to the heap; typical log lines have far fewer.
const INLINE_FIELDS: usize = 32;

impl Delimited {
    pub(super) fn matches(&self, message: &str) -> bool {
        // Without `...`, a message with more fields than slots can stop being read early.
        let limit = match self.shape {
            Shape::Exact => self.slots.len() + 1,
            Shape::OneEllipsis { .. } | Shape::General { .. } => usize::MAX,
        };
        let mut inline = [""; INLINE_FIELDS];
        let mut spilled: Vec<&str> = Vec::new();
        let mut count = 0;
        let mut pos = 0;
        while count < limit {
            let Some((field, after)) = next_field(message, pos) else {
                break;
            };
            pos = after;
            if count < INLINE_FIELDS {
                inline[count] = field;
            } else {
                if spilled.is_empty() {
                    spilled.extend_from_slice(&inline);
                }
                spilled.push(field);
            }
            count += 1;
        }
        let fields = if spilled.is_empty() {
            &inline[..count]
        } else {
            &spilled[..]
        };
        self.matches_fields(fields)
    }

    /// The fields of a message this pattern matches, as metric filters name them: `$name` for
    /// a named field, `$N` (from 1, by position) for the others — the keys of
    /// TestMetricFilter's `extractedValues` in the API reference's examples. `None` when the
    /// message does not match.
    pub(super) fn extract(&self, message: &str) -> Option<Vec<(String, String)>> {
        let mut fields = Vec::new();
        let mut pos = 0;
        while let Some((field, after)) = next_field(message, pos) {
            fields.push(field);
            pos = after;
        }
        let accepts = |slot: &Slot, field: &str| match slot {
            Slot::Ellipsis => true,
            Slot::Field(expr) => expr.as_ref().is_none_or(|e| e.eval(field)),
        };
        let mut assigned: Vec<Option<usize>> = Vec::with_capacity(fields.len());
        match self.shape {
            Shape::Exact => {
                if !self.matches_fields(&fields) {
                    return None;
                }
                assigned.extend((0..fields.len()).map(Some));
            }
            Shape::OneEllipsis { head, tail } => {
                if !self.matches_fields(&fields) {
                    return None;
                }
                let n = fields.len();
                assigned.extend((0..n).map(|i| {
                    if i < head {
                        Some(i)
                    } else if i >= n - tail {
                        Some(head + 1 + (i - (n - tail)))
                    } else {
                        None
                    }
                }));
            }
            Shape::General { fields: needed } => {
                if fields.len() < needed || !self.walk(&fields, &accepts, Some(&mut assigned)) {
                    return None;
                }
            }
        }
        Some(
            fields
                .iter()
                .zip(assigned)
                .enumerate()
                .map(|(i, (field, slot))| {
                    let key = match slot.and_then(|s| self.names[s].as_deref()) {
                        Some(name) => format!("${name}"),
                        None => format!("${}", i + 1),
                    };
                    (key, (*field).to_owned())
                })
                .collect(),
        )
    }

    fn matches_fields(&self, fields: &[&str]) -> bool {
        let accepts = |slot: &Slot, field: &str| match slot {
            Slot::Ellipsis => true,
            Slot::Field(expr) => expr.as_ref().is_none_or(|e| e.eval(field)),
        };
        match self.shape {
            Shape::Exact => {
                fields.len() == self.slots.len()
                    && self.slots.iter().zip(fields).all(|(s, f)| accepts(s, f))
            }
            Shape::OneEllipsis { head, tail } => {
                fields.len() >= head + tail
                    && self.slots[..head]
                        .iter()
                        .zip(fields)
                        .all(|(s, f)| accepts(s, f))
                    && self.slots[head + 1..]
                        .iter()
                        .zip(&fields[fields.len() - tail..])
                        .all(|(s, f)| accepts(s, f))
            }
            Shape::General { fields: needed } => {
                fields.len() >= needed && self.walk(fields, &accepts, None)
            }
        }
    }

    /// Greedy wildcard matching: on failure, let the last `...` swallow one more field and
    /// retry the slots after it. Linear in practice, quadratic at worst.
    /// With `assigned`, records which slot took each field (`None`: a `...` swallowed it).
    fn walk(
        &self,
        fields: &[&str],
        accepts: &dyn Fn(&Slot, &str) -> bool,
        mut assigned: Option<&mut Vec<Option<usize>>>,
    ) -> bool {
        let slots = &self.slots;
        let (mut slot, mut field) = (0, 0);
        // The slot after the last `...` and the first field it has not swallowed.
        let mut resume: Option<(usize, usize)> = None;
        while field < fields.len() {
            match slots.get(slot) {
                Some(Slot::Ellipsis) => {
                    slot += 1;
                    resume = Some((slot, field));
                    continue;
                }
                Some(s) if accepts(s, fields[field]) => {
                    if let Some(a) = assigned.as_deref_mut() {
                        a.truncate(field);
                        a.push(Some(slot));
                    }
                    slot += 1;
                    field += 1;
                    continue;
                }
                _ => {}
            }
            let Some((after_star, swallowed)) = resume else {
                return false;
            };
            resume = Some((after_star, swallowed + 1));
            if let Some(a) = assigned.as_deref_mut() {
                a.truncate(swallowed);
                a.push(None);
            }
            slot = after_star;
            field = swallowed + 1;
        }
        slots[slot..].iter().all(|s| matches!(s, Slot::Ellipsis))
    }

    pub(super) fn regex_count(&self) -> usize {
        self.slots
            .iter()
            .map(|s| match s {
                Slot::Field(Some(e)) => e.regex_count(),
                _ => 0,
            })
            .sum()
    }

    pub(super) fn required_literals(&self) -> Option<Vec<Vec<u8>>> {
        best_conjunct(self.slots.iter().map(|s| match s {
            Slot::Field(Some(e)) => e.required_literals(),
            _ => None,
        }))
    }
}

impl FieldExpr {
    fn eval(&self, field: &str) -> bool {
        match self {
            FieldExpr::Or(items) => items.iter().any(|e| e.eval(field)),
            FieldExpr::And(items) => items.iter().all(|e| e.eval(field)),
            FieldExpr::Cond(c) => c.eval_text(field),
        }
    }

    fn regex_count(&self) -> usize {
        match self {
            FieldExpr::Or(items) | FieldExpr::And(items) => {
                items.iter().map(FieldExpr::regex_count).sum()
            }
            FieldExpr::Cond(c) => usize::from(c.is_regex()),
        }
    }

    /// A field is a verbatim slice of the message, so a literal it must contain is one the
    /// message must contain.
    fn required_literals(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            FieldExpr::Or(items) => union_disjuncts(items.iter().map(FieldExpr::required_literals)),
            FieldExpr::And(items) => best_conjunct(items.iter().map(FieldExpr::required_literals)),
            FieldExpr::Cond(c) => c.literal().map(|l| vec![l.as_bytes().to_vec()]),
        }
    }
}
