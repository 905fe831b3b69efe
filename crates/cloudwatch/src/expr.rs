//! Metric math, the common part: numbers, query ids, `+ - * / ^`, parentheses, arrays
//! `[m1, m2]`, and the functions SUM, AVG, MIN, MAX (across an array: a series; of one
//! series: a number), METRICS() / METRICS('label part'), FILL(series, value | REPEAT) and
//! ABS. Series combine on the timestamps they share; results that are not finite are left
//! out, as CloudWatch leaves them out.

use std::collections::BTreeMap;

/// A time series: timestamp (seconds) → value, with its label and the periods it spans
/// (`grid`: first slot, period, end), which FILL fills.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: BTreeMap<i64, f64>,
    pub grid: Option<(i64, i64, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Series),
    Array(Vec<Series>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Text(String),
    Id(String),
    Neg(Box<Expr>),
    Binary(char, Box<Expr>, Box<Expr>),
    Array(Vec<Expr>),
    Call(String, Vec<Expr>),
}

/// What an expression reads: other queries' results, and every MetricStat query's series.
pub trait Env {
    fn lookup(&mut self, id: &str) -> Result<Value, String>;
    fn metrics(&mut self) -> Result<Vec<Series>, String>;
}

pub fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, at: 0 };
    let e = p.add()?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(format!("Unexpected token {t:?}")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Ident(String),
    Str(String),
    Sym(char),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Token::Num(
                s.parse().map_err(|_| format!("Invalid number {s}"))?,
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or("Unterminated string")?;
            out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if "+-*/^()[],".contains(c) {
            out.push(Token::Sym(c));
            i += 1;
        } else {
            return Err(format!("Unexpected character {c}"));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Token::Sym(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("Expected {c}"))
        }
    }

    fn add(&mut self) -> Result<Expr, String> {
        let mut e = self.mul()?;
        loop {
            let op = match self.peek() {
                Some(Token::Sym(c @ ('+' | '-'))) => *c,
                _ => return Ok(e),
            };
            self.at += 1;
            e = Expr::Binary(op, Box::new(e), Box::new(self.mul()?));
        }
    }

    fn mul(&mut self) -> Result<Expr, String> {
        let mut e = self.pow()?;
        loop {
            let op = match self.peek() {
                Some(Token::Sym(c @ ('*' | '/'))) => *c,
                _ => return Ok(e),
            };
            self.at += 1;
            e = Expr::Binary(op, Box::new(e), Box::new(self.pow()?));
        }
    }

    fn pow(&mut self) -> Result<Expr, String> {
        let base = self.unary()?;
        if self.eat('^') {
            return Ok(Expr::Binary('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat('-') {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Num(n)) => Ok(Expr::Number(n)),
            Some(Token::Str(s)) => Ok(Expr::Text(s)),
            Some(Token::Ident(name)) => {
                if !self.eat('(') {
                    return Ok(Expr::Id(name));
                }
                let mut args = Vec::new();
                if !self.eat(')') {
                    loop {
                        args.push(self.add()?);
                        if self.eat(')') {
                            break;
                        }
                        self.expect(',')?;
                    }
                }
                Ok(Expr::Call(name.to_ascii_uppercase(), args))
            }
            Some(Token::Sym('(')) => {
                let e = self.add()?;
                self.expect(')')?;
                Ok(e)
            }
            Some(Token::Sym('[')) => {
                let mut items = vec![self.add()?];
                while self.eat(',') {
                    items.push(self.add()?);
                }
                self.expect(']')?;
                Ok(Expr::Array(items))
            }
            Some(t) => Err(format!("Unexpected token {t:?}")),
            None => Err("Unexpected end of expression".to_string()),
        }
    }
}

pub fn eval(e: &Expr, env: &mut dyn Env) -> Result<Value, String> {
    match e {
        Expr::Number(n) => Ok(Value::Scalar(*n)),
        Expr::Text(s) => Err(format!("Unexpected string '{s}'")),
        Expr::Id(id) => env.lookup(id),
        Expr::Neg(inner) => binary('*', Value::Scalar(-1.0), eval(inner, env)?),
        Expr::Binary(op, a, b) => binary(*op, eval(a, env)?, eval(b, env)?),
        Expr::Array(items) => {
            let mut all = Vec::new();
            for item in items {
                match eval(item, env)? {
                    Value::Series(s) => all.push(s),
                    Value::Array(mut more) => all.append(&mut more),
                    Value::Scalar(_) => return Err("An array holds time series only".into()),
                }
            }
            Ok(Value::Array(all))
        }
        Expr::Call(name, args) => call(name, args, env),
    }
}

fn apply(op: char, a: f64, b: f64) -> f64 {
    match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        '/' => a / b,
        _ => a.powf(b),
    }
}

fn map(s: &Series, f: impl Fn(f64) -> f64) -> Series {
    Series {
        label: s.label.clone(),
        points: s
            .points
            .iter()
            .map(|(t, v)| (*t, f(*v)))
            .filter(|(_, v)| v.is_finite())
            .collect(),
        grid: s.grid,
    }
}

fn binary(op: char, a: Value, b: Value) -> Result<Value, String> {
    Ok(match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(apply(op, x, y)),
        (Value::Series(s), Value::Scalar(y)) => Value::Series(map(&s, |v| apply(op, v, y))),
        (Value::Scalar(x), Value::Series(s)) => Value::Series(map(&s, |v| apply(op, x, v))),
        (Value::Series(s), Value::Series(t)) => Value::Series(Series {
            label: s.label.clone(),
            points: s
                .points
                .iter()
                .filter_map(|(ts, v)| t.points.get(ts).map(|w| (*ts, apply(op, *v, *w))))
                .filter(|(_, v)| v.is_finite())
                .collect(),
            grid: s.grid.or(t.grid),
        }),
        (Value::Array(all), other) => Value::Array(
            all.into_iter()
                .map(|s| match binary(op, Value::Series(s), other.clone())? {
                    Value::Series(s) => Ok(s),
                    _ => Err("Arrays of arrays are not supported".to_string()),
                })
                .collect::<Result<_, String>>()?,
        ),
        (other, Value::Array(all)) => Value::Array(
            all.into_iter()
                .map(|s| match binary(op, other.clone(), Value::Series(s))? {
                    Value::Series(s) => Ok(s),
                    _ => Err("Arrays of arrays are not supported".to_string()),
                })
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Folds values with `f` (SUM, MIN, MAX), `avg` to divide by the count.
fn reduce(values: impl Iterator<Item = f64>, f: fn(f64, f64) -> f64, avg: bool) -> Option<f64> {
    let mut n = 0.0;
    let mut acc: Option<f64> = None;
    for v in values {
        n += 1.0;
        acc = Some(acc.map_or(v, |a| f(a, v)));
    }
    acc.map(|a| if avg { a / n } else { a })
}

fn call(name: &str, args: &[Expr], env: &mut dyn Env) -> Result<Value, String> {
    let one = |env: &mut dyn Env| -> Result<Value, String> {
        match args {
            [a] => eval(a, env),
            _ => Err(format!("{name} takes one argument")),
        }
    };
    let (f, avg): (fn(f64, f64) -> f64, bool) = match name {
        "SUM" => (|a, b| a + b, false),
        "AVG" => (|a, b| a + b, true),
        "MIN" => (f64::min, false),
        "MAX" => (f64::max, false),
        "ABS" => {
            return Ok(match one(env)? {
                Value::Scalar(x) => Value::Scalar(x.abs()),
                Value::Series(s) => Value::Series(map(&s, f64::abs)),
                Value::Array(all) => Value::Array(all.iter().map(|s| map(s, f64::abs)).collect()),
            });
        }
        "METRICS" => {
            let all = env.metrics()?;
            return match args {
                [] => Ok(Value::Array(all)),
                [Expr::Text(part)] => Ok(Value::Array(
                    all.into_iter()
                        .filter(|s| s.label.contains(part.as_str()))
                        .collect(),
                )),
                _ => Err("METRICS takes no argument or a string".to_string()),
            };
        }
        "FILL" => {
            let [series, with] = args else {
                return Err("FILL takes two arguments".to_string());
            };
            let (repeat, v) = match with {
                Expr::Id(word) if word.eq_ignore_ascii_case("REPEAT") => (true, 0.0),
                other => match eval(other, env)? {
                    Value::Scalar(v) => (false, v),
                    _ => return Err("FILL's value must be a number or REPEAT".to_string()),
                },
            };
            return Ok(match eval(series, env)? {
                Value::Series(s) => Value::Series(fill(s, repeat, v)),
                Value::Array(all) => {
                    Value::Array(all.into_iter().map(|s| fill(s, repeat, v)).collect())
                }
                Value::Scalar(_) => return Err("FILL needs a time series".to_string()),
            });
        }
        other => return Err(format!("Unknown function {other}")),
    };
    Ok(match one(env)? {
        Value::Scalar(x) => Value::Scalar(x),
        Value::Series(s) => match reduce(s.points.values().copied(), f, avg) {
            Some(v) => Value::Scalar(v),
            None => Value::Series(Series {
                points: BTreeMap::new(),
                ..s
            }),
        },
        Value::Array(all) => {
            let mut stamps: Vec<i64> = all.iter().flat_map(|s| s.points.keys().copied()).collect();
            stamps.sort_unstable();
            stamps.dedup();
            Value::Series(Series {
                label: name.to_string(),
                points: stamps
                    .into_iter()
                    .filter_map(|t| {
                        reduce(all.iter().filter_map(|s| s.points.get(&t).copied()), f, avg)
                            .map(|v| (t, v))
                    })
                    .collect(),
                grid: all.iter().find_map(|s| s.grid),
            })
        }
    })
}

/// Every period of the series' span given a value: `v`, or with REPEAT the last one before.
fn fill(mut s: Series, repeat: bool, v: f64) -> Series {
    let Some((first, period, end)) = s.grid else {
        return s;
    };
    let mut last: Option<f64> = None;
    let mut t = first;
    while t < end {
        match s.points.get(&t) {
            Some(seen) => last = Some(*seen),
            None => {
                let value = if repeat { last } else { Some(v) };
                if let Some(value) = value {
                    s.points.insert(t, value);
                }
            }
        }
        t += period;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(BTreeMap<String, Series>);

    impl Env for Fixed {
        fn lookup(&mut self, id: &str) -> Result<Value, String> {
            self.0
                .get(id)
                .cloned()
                .map(Value::Series)
                .ok_or_else(|| format!("Unrecognized identifier {id}"))
        }
        fn metrics(&mut self) -> Result<Vec<Series>, String> {
            Ok(self.0.values().cloned().collect())
        }
    }

    fn series(label: &str, points: &[(i64, f64)]) -> Series {
        Series {
            label: label.into(),
            points: points.iter().copied().collect(),
            grid: Some((0, 60, 300)),
        }
    }

    fn env() -> Fixed {
        Fixed(BTreeMap::from([
            (
                "m1".to_string(),
                series("Requests", &[(0, 10.0), (60, 20.0), (120, 30.0)]),
            ),
            (
                "m2".to_string(),
                series("Errors", &[(0, 1.0), (120, 3.0), (180, 4.0)]),
            ),
        ]))
    }

    fn run(text: &str) -> Value {
        eval(&parse(text).unwrap(), &mut env()).unwrap()
    }

    fn points(v: Value) -> Vec<(i64, f64)> {
        match v {
            Value::Series(s) => s.points.into_iter().collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arithmetic_between_series_uses_shared_timestamps() {
        assert_eq!(points(run("m2 / m1 * 100")), [(0, 10.0), (120, 10.0)]);
        assert_eq!(
            points(run("m1 + 2 * 3")),
            [(0, 16.0), (60, 26.0), (120, 36.0)]
        );
        assert_eq!(
            points(run("-(m1 - 10) ^ 2")),
            [(0, 0.0), (60, 100.0), (120, 400.0)]
        );
        assert_eq!(run("2 ^ 3 + 1"), Value::Scalar(9.0));
    }

    #[test]
    fn functions_across_and_along_series() {
        assert_eq!(
            points(run("SUM([m1, m2])")),
            [(0, 11.0), (60, 20.0), (120, 33.0), (180, 4.0)]
        );
        assert_eq!(points(run("SUM(METRICS())")), points(run("SUM([m1, m2])")));
        assert_eq!(
            points(run("MAX(METRICS('Err'))")),
            [(0, 1.0), (120, 3.0), (180, 4.0)]
        );
        assert_eq!(points(run("AVG([m1, m2])"))[0], (0, 5.5));
        assert_eq!(run("SUM(m1)"), Value::Scalar(60.0));
        assert_eq!(run("AVG(m1)"), Value::Scalar(20.0));
        assert_eq!(run("MIN(m2)"), Value::Scalar(1.0));
        assert_eq!(points(run("ABS(0 - m2)"))[0], (0, 1.0));
    }

    #[test]
    fn fill_gives_every_period_a_value() {
        assert_eq!(
            points(run("FILL(m2, 0)")),
            [(0, 1.0), (60, 0.0), (120, 3.0), (180, 4.0), (240, 0.0)]
        );
        assert_eq!(
            points(run("FILL(m2, REPEAT)")),
            [(0, 1.0), (60, 1.0), (120, 3.0), (180, 4.0), (240, 4.0)]
        );
    }

    #[test]
    fn division_by_zero_leaves_the_point_out_and_errors_are_told() {
        assert_eq!(points(run("m1 / (m2 - 1)")), [(120, 15.0)]);
        for bad in ["m1 +", "FOO(m1)", "(m1", "m1 $ m2"] {
            let r = parse(bad).and_then(|e| eval(&e, &mut env()));
            assert!(r.is_err(), "{bad}");
        }
        let e = eval(&parse("m3 * 2").unwrap(), &mut env()).unwrap_err();
        assert_eq!(e, "Unrecognized identifier m3");
    }
}
