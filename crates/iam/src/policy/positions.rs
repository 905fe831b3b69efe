//! Where a policy document's statements are in its text, and which context keys it names:
//! what the policy simulator reports (MatchedStatements' StartPosition/EndPosition,
//! MissingContextValues, GetContextKeysFor*Policy). Compiled policies forget their text, so
//! these read the document again; only the simulator calls them, never a decision.

/// A place in a document's text: line and column, both counted from 1 (columns in
/// characters). IAM's own example (`aws iam simulate-principal-policy`, a statement from
/// line 3 column 19 to line 9 column 10 of a four-space-indented document) puts a
/// statement's start just after the `[` (or `,`) before it and its end just after its `}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// The start (just after the `[`, `,` or `:` before it) and end (just after its `}`) of each statement of a
/// JSON policy document, in document order: `Statement` as an array of objects or as one
/// object. Empty when the text is not such a document.
pub fn statement_positions(text: &str) -> Vec<(Position, Position)> {
    let mut scanner = Scanner::new(text);
    scanner.statements().unwrap_or_default()
}

/// The context keys each statement names, in document order: the keys of its `Condition`
/// (as written) and, in a 2012-10-17 document, the policy variables of its `Resource`,
/// `NotResource` and condition values (`${aws:username}` → `aws:username`). Empty when the
/// text is not a policy document.
pub fn statement_context_keys(text: &str) -> Vec<Vec<String>> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let variables = doc.get("Version").and_then(|v| v.as_str()) == Some("2012-10-17");
    let statements = match doc.get("Statement") {
        Some(serde_json::Value::Array(items)) => items.iter().collect::<Vec<_>>(),
        Some(one @ serde_json::Value::Object(_)) => vec![one],
        _ => return Vec::new(),
    };
    statements
        .into_iter()
        .map(|s| {
            let mut keys: Vec<String> = Vec::new();
            let mut add = |k: &str| {
                if !keys.iter().any(|have| have.eq_ignore_ascii_case(k)) {
                    keys.push(k.to_string());
                }
            };
            if let Some(ops) = s.get("Condition").and_then(|c| c.as_object()) {
                for entries in ops.values() {
                    let Some(entries) = entries.as_object() else {
                        continue;
                    };
                    for (key, value) in entries {
                        add(key);
                        if variables {
                            for text in texts(value) {
                                variable_names(text).for_each(&mut add);
                            }
                        }
                    }
                }
            }
            if variables {
                for field in ["Resource", "NotResource"] {
                    if let Some(v) = s.get(field) {
                        for text in texts(v) {
                            variable_names(text).for_each(&mut add);
                        }
                    }
                }
            }
            keys
        })
        .collect()
}

/// The keys of the policy variables in `text`: `${aws:username}` → `aws:username` (a
/// default value, `${aws:username, 'none'}`, is not part of the key). `${*}`, `${?}` and
/// `${$}` are escapes, not variables.
fn variable_names(text: &str) -> impl Iterator<Item = &str> {
    text.split("${").skip(1).filter_map(|rest| {
        let inner = rest.split('}').next()?;
        let key = inner.split(',').next()?.trim();
        (!matches!(key, "*" | "?" | "$") && !key.is_empty()).then_some(key)
    })
}

/// The strings of a value that is a string or an array of them.
fn texts(v: &serde_json::Value) -> Vec<&str> {
    match v {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// Just enough of a JSON reader to find where values start and end.
struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    at: Position,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            chars: text.chars().peekable(),
            at: Position { line: 1, column: 1 },
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.at.line += 1;
            self.at.column = 1;
        } else {
            self.at.column += 1;
        }
        Some(c)
    }

    fn skip_space(&mut self) {
        while self.chars.peek().is_some_and(|c| c.is_whitespace()) {
            self.bump();
        }
    }

    fn expect(&mut self, want: char) -> Option<()> {
        self.skip_space();
        (self.bump()? == want).then_some(())
    }

    /// A string (the opening quote next), its text with escapes kept as written.
    fn string(&mut self) -> Option<String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            match self.bump()? {
                '"' => return Some(out),
                '\\' => {
                    out.push('\\');
                    out.push(self.bump()?);
                }
                c => out.push(c),
            }
        }
    }

    /// Skips one value; returns where it started — just after the token before it (the
    /// `[`, `,` or `:`), whitespace included, as IAM's simulator counts — and where it
    /// ended (just after it).
    fn value(&mut self) -> Option<(Position, Position)> {
        let start = self.at;
        self.skip_space();
        match *self.chars.peek()? {
            '"' => {
                self.string()?;
            }
            open @ ('{' | '[') => {
                let close = if open == '{' { '}' } else { ']' };
                self.bump();
                self.skip_space();
                if self.chars.peek() == Some(&close) {
                    self.bump();
                } else {
                    loop {
                        if open == '{' {
                            self.string()?;
                            self.expect(':')?;
                        }
                        self.value()?;
                        self.skip_space();
                        match self.bump()? {
                            ',' => continue,
                            c if c == close => break,
                            _ => return None,
                        }
                    }
                }
            }
            _ => {
                // A number, true, false or null.
                while self
                    .chars
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | '}' | ']') && !c.is_whitespace())
                {
                    self.bump();
                }
            }
        }
        Some((start, self.at))
    }

    fn statements(&mut self) -> Option<Vec<(Position, Position)>> {
        self.expect('{')?;
        loop {
            let key = self.string()?;
            self.expect(':')?;
            if key == "Statement" {
                let after_colon = self.at;
                self.skip_space();
                if self.chars.peek() != Some(&'[') {
                    let (_, end) = self.value()?;
                    return Some(vec![(after_colon, end)]);
                }
                self.bump();
                let mut out = Vec::new();
                let mut after = self.at;
                self.skip_space();
                if self.chars.peek() == Some(&']') {
                    return Some(out);
                }
                loop {
                    let (_, end) = self.value()?;
                    out.push((after, end));
                    self.skip_space();
                    match self.bump()? {
                        ',' => after = self.at,
                        ']' => return Some(out),
                        _ => return None,
                    }
                }
            }
            self.value()?;
            self.skip_space();
            if self.bump()? != ',' {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, column: u32) -> Position {
        Position { line, column }
    }

    #[test]
    fn statements_are_found_on_one_line_and_on_many() {
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
        assert_eq!(statement_positions(one), vec![(at(1, 37), at(1, 86))]);
        let many = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"a:b\", \"Resource\": [\"x\", \"y\"]},\n    {\n      \"Effect\": \"Deny\",\n      \"Action\": \"a:*\",\n      \"Resource\": \"*\"\n    }\n  ]\n}";
        assert_eq!(
            statement_positions(many),
            vec![(at(3, 17), at(4, 65)), (at(4, 66), at(9, 6))]
        );
        assert!(statement_positions("not json").is_empty());
        // The layout of IAM's own example (`aws iam simulate-principal-policy`): a
        // four-space-indented document whose statement IAM places at 3:19–9:10.
        let example = "{\n    \"Version\": \"2012-10-17\",\n    \"Statement\": [\n        {\n            \"Sid\": \"GrantAccessToCodeCommitListRepo\",\n            \"Effect\": \"Allow\",\n            \"Action\": \"codecommit:ListRepositories\",\n            \"Resource\": \"*\"\n        }\n    ]\n}";
        assert_eq!(statement_positions(example), vec![(at(3, 19), at(9, 10))]);
    }

    #[test]
    fn context_keys_as_written() {
        let doc = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*",
             "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"StringEquals":{"ecs:cluster":"${aws:PrincipalTag/team}"}}},
            {"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
        assert_eq!(
            statement_context_keys(doc),
            vec![
                vec![
                    "aws:SourceIp".to_string(),
                    "ecs:cluster".to_string(),
                    "aws:PrincipalTag/team".to_string(),
                    "aws:username".to_string()
                ],
                vec![]
            ]
        );
    }
}
