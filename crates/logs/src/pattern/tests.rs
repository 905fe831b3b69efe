use super::{FilterPattern, PatternError};

fn parse(pattern: &str) -> FilterPattern {
    FilterPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e} ({})", e.detail()))
}

fn matches(pattern: &str, message: &str) -> bool {
    parse(pattern).matches(message)
}

fn rejects(pattern: &str) -> PatternError {
    match FilterPattern::parse(pattern) {
        Ok(p) => panic!("{pattern:?} should be rejected, parsed as {p:?}"),
        Err(e) => e,
    }
}

fn lits(pattern: &str) -> Option<Vec<String>> {
    parse(pattern).required_literals().map(|set| {
        set.into_iter()
            .map(|l| String::from_utf8(l).expect("utf-8 literal"))
            .collect()
    })
}

// ---------------------------------------------------------------- unstructured

#[test]
fn empty_and_blank_patterns_match_everything() {
    for pattern in ["", "   ", "\t\n", "\"\"", "\" \"", "  \"\"  \"  \" "] {
        let p = parse(pattern);
        assert!(p.matches_everything(), "{pattern:?}");
        assert!(p.matches(""), "{pattern:?}");
        assert!(p.matches("anything at all"), "{pattern:?}");
        assert_eq!(p.required_literals(), None, "{pattern:?}");
    }
    assert!(!parse("x").matches_everything());
    assert!(!parse("{ $.a = 1 }").matches_everything());
}

#[test]
fn single_term_is_a_case_sensitive_substring() {
    assert!(matches("WARN", "[WARN] disk at 91%"));
    assert!(matches("WARN", "WARNING: low memory"));
    assert!(!matches("WARN", "warn: lowercase"));
    assert!(!matches("WARN", ""));
    assert!(matches("404", "GET /missing 404 12ms"));
    assert!(matches("snake_case", "called snake_case_fn"));
}

#[test]
fn several_terms_must_all_occur_in_any_order() {
    let p = parse("timeout database");
    assert!(p.matches("database call hit a timeout"));
    assert!(p.matches("timeout talking to database"));
    assert!(!p.matches("timeout talking to cache"));
}

#[test]
fn quoted_phrase_is_one_term() {
    let p = parse("\"could not connect\"");
    assert!(p.matches("WARN could not connect to 10.0.0.9"));
    assert!(!p.matches("could not  connect"));
    assert!(!p.matches("connect could not"));
    // Phrases may hold characters that bare terms may not.
    assert!(matches(
        "\"user@example.com\" \"HTTP/1.1\"",
        "login user@example.com via HTTP/1.1"
    ));
    assert!(matches(r#""say \"hi\"""#, r#"she said: say "hi" twice"#));
    assert!(matches(r#""C:\\temp""#, r#"wrote C:\temp\x"#));
    // A backslash before anything else is kept.
    assert!(matches(r#""a\nb""#, r"literal a\nb"));
}

#[test]
fn question_mark_terms_need_at_least_one() {
    let p = parse("?ERROR ?FATAL");
    assert!(p.matches("FATAL boom"));
    assert!(p.matches("ERROR then FATAL"));
    assert!(!p.matches("INFO fine"));
    let p = parse("?\"disk full\" ?oom");
    assert!(p.matches("kernel: oom-killer"));
    assert!(p.matches("write failed: disk full"));
    assert!(!p.matches("disk is full"));
}

#[test]
fn minus_excludes_a_term() {
    let p = parse("ERROR -retrying");
    assert!(p.matches("ERROR upstream closed"));
    assert!(!p.matches("ERROR upstream closed, retrying"));
    assert!(!p.matches("upstream closed"));
    // The old documentation writes the exclusion with a blank after the minus.
    let p = parse("\"ERROR\" - \"Shutting down\"");
    assert!(p.matches("ERROR at boot"));
    assert!(!p.matches("ERROR Shutting down"));
    // Pure exclusion.
    let p = parse("-healthcheck");
    assert!(p.matches("GET /api"));
    assert!(!p.matches("GET /healthcheck"));
    assert!(!p.matches_everything());
}

#[test]
fn mixed_roles_combine() {
    let p = parse("payment ?declined ?refused -test");
    assert!(p.matches("payment declined for order 7"));
    assert!(p.matches("payment refused"));
    assert!(!p.matches("payment accepted"));
    assert!(!p.matches("declined"));
    assert!(!p.matches("test payment declined"));
}

#[test]
fn unquoted_terms_only_hold_word_characters() {
    for (pattern, term) in [
        ("ERROR-404", "ERROR-404"),
        ("ok user@example.com", "user@example.com"),
        ("a.b", "a.b"),
        ("?x:y", "x:y"),
        ("-[ERROR]", "[ERROR]"),
        ("path/to", "path/to"),
    ] {
        let e = rejects(pattern);
        assert_eq!(e, PatternError::InvalidTerm { term: term.into() });
        assert_eq!(
            e.to_string(),
            format!("Invalid character(s) in term '{term}'")
        );
    }
    // Letters beyond ASCII are letters.
    assert!(matches("café", "un café noir"));
}

#[test]
fn malformed_unstructured_patterns_are_rejected() {
    for pattern in [
        "\"open", "ERROR ?", "? ERROR", "?\t-x", "-", "\"a\"b", "%abc", "%ab%c", "ok \"x",
    ] {
        let e = rejects(pattern);
        assert_eq!(e.to_string(), "Invalid filter pattern", "{pattern:?}");
    }
}

#[test]
fn regex_terms() {
    let p = parse("%AUTHORIZED%");
    assert!(p.matches("[ERROR 401] UNAUTHORIZED REQUEST"));
    assert!(p.matches("[OK 200] AUTHORIZED REQUEST"));
    assert!(!p.matches("authorized"));

    let p = parse("%^[hc]at%");
    assert!(p.matches("hat on"));
    assert!(p.matches("cat nap"));
    assert!(!p.matches("a cat"));

    assert!(matches("%colou?r%", "colour"));
    assert!(matches("%colou?r%", "color"));
    assert!(matches("%a{3,5}%", "xaaay"));
    assert!(!matches("%a{3,5}%", "xaay"));
    assert!(matches("%[Ee]rror|[Ff]ail%", "it will fail"));
    assert!(matches(
        r"%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%",
        "from 192.168.0.10 port 22"
    ));
    assert!(!matches(
        r"%\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}%",
        "from 192.168.0 port 22"
    ));
    // Hex escapes are how AWS users spell parentheses.
    assert!(matches(r"%f\x28\x29%", "called f() twice"));

    // Regex terms take the same prefixes as other terms.
    let p = parse("request ?%^GET% ?%^HEAD% -%/health$%");
    assert!(p.matches("GET request /api"));
    assert!(!p.matches("POST request /api"));
    assert!(!p.matches("GET request /health"));
}

#[test]
fn regexes_outside_the_documented_subset_are_rejected() {
    for pattern in [
        "%something!%",
        "%(grouped)%",
        "%a(?i)b%",
        "%naïve%",
        "%%",
        "%a<b%",
        "%[z-a]%",
    ] {
        let e = rejects(pattern);
        assert!(
            matches!(e, PatternError::Regex { .. }),
            "{pattern:?}: {e:?}"
        );
        assert_eq!(e.to_string(), "Invalid filter pattern");
    }
}

// ---------------------------------------------------------------- JSON

const ORDER: &str = r#"{
    "kind": "OrderPlaced",
    "clientIp": "172.16.4.20",
    "tags": ["priority", "gift wrap"],
    "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    "grid": [[1, 2, 3], [4, 5, 6]],
    "coupon": null,
    "paid": true,
    "shipped": false,
    "latencyMs": 742,
    "ratio": 0.25,
    "delta": -3,
    "code": "404",
    "email": "ana.lima@example.org",
    "serial": 12345678901234567890,
    "customer": {"id": 99, "tier": "gold", "address": {"city": "Porto"}}
}"#;

#[test]
fn json_string_equality() {
    assert!(matches(r#"{ $.kind = "OrderPlaced" }"#, ORDER));
    assert!(matches("{ $.kind = OrderPlaced }", ORDER));
    assert!(matches("{$.kind=OrderPlaced}", ORDER));
    assert!(!matches(r#"{ $.kind = "orderplaced" }"#, ORDER));
    assert!(matches(r#"{ $.kind != "OrderCancelled" }"#, ORDER));
    assert!(!matches(r#"{ $.kind != "OrderPlaced" }"#, ORDER));
    assert!(matches(r#"{ $.customer.tier = "gold" }"#, ORDER));
    assert!(matches(r#"{ $.customer.address.city = "Porto" }"#, ORDER));
    assert!(matches(r#"{ $.email = "ana.lima@example.org" }"#, ORDER));
}

#[test]
fn json_wildcards_at_either_end() {
    assert!(matches("{ $.kind = Order* }", ORDER));
    assert!(matches("{ $.kind = *Placed }", ORDER));
    assert!(matches("{ $.kind = *derPla* }", ORDER));
    assert!(matches(r#"{ $.kind = "*Placed" }"#, ORDER));
    assert!(!matches("{ $.kind = *Cancelled }", ORDER));
    assert!(matches("{ $.clientIp != 10.0.* }", ORDER));
    assert!(!matches("{ $.clientIp != 172.16.* }", ORDER));
    // A star inside a value is a literal star.
    assert!(!matches("{ $.kind = Order*Placed }", ORDER));
    assert!(matches("{ $.k = Ev*ent }", r#"{"k": "Ev*ent"}"#));
    // `*` alone matches any scalar, but not null, containers or absence.
    assert!(matches("{ $.latencyMs = * }", ORDER));
    assert!(matches("{ $.kind = * }", ORDER));
    assert!(matches("{ $.paid = * }", ORDER));
    assert!(!matches("{ $.coupon = * }", ORDER));
    assert!(!matches("{ $.tags = * }", ORDER));
    assert!(!matches("{ $.nothing = * }", ORDER));
    // Wildcards also apply to a number's text.
    assert!(matches("{ $.latencyMs = 7* }", ORDER));
}

#[test]
fn json_array_indexes() {
    assert!(matches(r#"{ $.tags[0] = "priority" }"#, ORDER));
    assert!(matches(r#"{ $.tags[1] = "gift wrap" }"#, ORDER));
    assert!(!matches(r#"{ $.tags[2] = "priority" }"#, ORDER));
    assert!(matches(r#"{ $.lines[1].sku = "B-7" }"#, ORDER));
    assert!(matches("{ $.lines[0].qty = 2 }", ORDER));
    assert!(matches("{ $.grid[1][2] = 6 }", ORDER));
    assert!(!matches("{ $.grid[1][2] = 5 }", ORDER));
    // Indexing something that is not an array finds nothing.
    assert!(!matches(r#"{ $.kind[0] = "O" }"#, ORDER));
    assert!(matches("{ $.kind[0] NOT EXISTS }", ORDER));
    // Top-level arrays.
    assert!(matches(r#"{ $[1] = "b" }"#, r#"["a", "b"]"#));
}

#[test]
fn json_numeric_comparisons() {
    assert!(matches("{ $.latencyMs > 500 }", ORDER));
    assert!(matches("{ $.latencyMs >= 742 }", ORDER));
    assert!(!matches("{ $.latencyMs > 742 }", ORDER));
    assert!(matches("{ $.latencyMs <= 742 }", ORDER));
    assert!(matches("{ $.latencyMs < 7.5e2 }", ORDER));
    assert!(matches("{ $.latencyMs > +700 }", ORDER));
    assert!(matches("{ $.latencyMs = 742 }", ORDER));
    assert!(matches("{ $.latencyMs = 742.0 }", ORDER));
    assert!(matches("{ $.latencyMs = 7.42E2 }", ORDER));
    assert!(matches("{ $.latencyMs != 743 }", ORDER));
    assert!(matches("{ $.ratio < 25e-2 }", r#"{"ratio": 0.2}"#));
    assert!(matches("{ $.ratio = 0.25 }", ORDER));
    assert!(matches("{ $.ratio < .3 }", ORDER));
    assert!(matches("{ $.delta < 0 }", ORDER));
    assert!(matches("{ $.delta = -3 }", ORDER));
    assert!(matches("{ $.delta >= -3.5 }", ORDER));
    // Integers beyond f64's precision compare exactly.
    assert!(matches("{ $.serial = 12345678901234567890 }", ORDER));
    assert!(!matches("{ $.serial = 12345678901234567891 }", ORDER));
    assert!(matches("{ $.serial > 12345678901234567889 }", ORDER));
    // Numbers in strings compare as numbers; other strings never order.
    assert!(matches("{ $.code = 404 }", ORDER));
    assert!(matches("{ $.code >= 400 }", ORDER));
    assert!(!matches("{ $.kind > 1 }", ORDER));
    assert!(!matches("{ $.kind = 1 }", ORDER));
    assert!(matches("{ $.kind != 1 }", ORDER));
    // A quoted number is a string, compared with the number's text.
    assert!(matches(r#"{ $.latencyMs = "742" }"#, ORDER));
    assert!(matches(r#"{ $.code = "404" }"#, ORDER));
    // Booleans are not numbers.
    assert!(!matches("{ $.paid > 0 }", ORDER));
}

#[test]
fn json_keyword_tests() {
    assert!(matches("{ $.paid IS TRUE }", ORDER));
    assert!(!matches("{ $.paid IS FALSE }", ORDER));
    assert!(matches("{ $.shipped IS FALSE }", ORDER));
    assert!(!matches("{ $.kind IS TRUE }", ORDER));
    assert!(matches("{ $.coupon IS NULL }", ORDER));
    assert!(!matches("{ $.missing IS NULL }", ORDER));
    assert!(!matches("{ $.kind IS NULL }", ORDER));
    assert!(matches("{ $.missing NOT EXISTS }", ORDER));
    assert!(matches("{ $.customer.phone NOT EXISTS }", ORDER));
    assert!(matches("{ $.lines[5] NOT EXISTS }", ORDER));
    assert!(!matches("{ $.coupon NOT EXISTS }", ORDER));
    assert!(!matches("{ $.customer NOT EXISTS }", ORDER));
    // Keywords are accepted in any case.
    assert!(matches("{ $.paid is true }", ORDER));
    assert!(matches("{ $.missing not   exists }", ORDER));
    // `= true` compares the boolean's text.
    assert!(matches("{ $.paid = true }", ORDER));
    assert!(matches("{ $.paid != false }", ORDER));
}

#[test]
fn json_containers_missing_and_null_match_neither_equality() {
    for op in ["=", "!="] {
        for selector in [
            "$.tags",
            "$.customer",
            "$.coupon",
            "$.missing",
            "$.customer.address",
        ] {
            let pattern = format!("{{ {selector} {op} 1 }}");
            assert!(!matches(&pattern, ORDER), "{pattern}");
            let pattern = format!("{{ {selector} {op} \"x\" }}");
            assert!(!matches(&pattern, ORDER), "{pattern}");
        }
    }
}

#[test]
fn json_compound_conditions() {
    let event = r#"{
        "owner": {"id": 1, "email": "kai@example.net"},
        "members": [{"id": 2, "email": "lu@example.net"}, {"id": 3, "email": "mo@example.net"}],
        "verbs": ["GET", "PUT", "DELETE"],
        "matrix": [[0, 1, 2], [4, 5, 6]]
    }"#;
    assert!(matches(
        r#"{ ($.owner.id = 1) && ($.members[0].email = "lu@example.net") }"#,
        event
    ));
    assert!(!matches(
        r#"{ ($.owner.id = 2 && $.members[0].email = "nope") || $.verbs[2] = "GET" }"#,
        event
    ));
    // && binds tighter than ||.
    assert!(matches(
        r#"{ $.owner.email = "kai@example.net" || $.matrix[0][1] = nope && $.verbs[2] = nope }"#,
        event
    ));
    assert!(!matches(
        r#"{ ($.owner.email = "kai@example.net" || $.matrix[0][1] = nope) && $.verbs[2] = nope }"#,
        event
    ));
    assert!(matches(
        "{ $.verbs[0] = GET && $.verbs[1] = PUT && $.verbs[2] = DELETE }",
        event
    ));
    assert!(matches("{ (($.owner.id = 1)) }", event));
    assert!(matches("{$.owner.id=9||$.owner.id=1}", event));
    assert!(matches("{ $.owner.id = 1&&$.members[1].id = 3 }", event));
}

#[test]
fn json_regex_values() {
    assert!(matches(r"{ $.code = %^4\d\d$% }", ORDER));
    assert!(!matches(r"{ $.code = %^5\d\d$% }", ORDER));
    assert!(matches(r"{ $.code != %^5\d\d$% }", ORDER));
    assert!(matches("{ $.kind = %Placed$% }", ORDER));
    assert!(matches("{ $.latencyMs = %^7% }", ORDER));
    assert!(matches(
        "{ $.kind = %Order% && $.customer.tier = %^g% }",
        ORDER
    ));
    let e = rejects("{ $.a = %x% && $.b = %y% && $.c = %z% }");
    assert_eq!(e.to_string(), "Invalid filter pattern");
    assert!(e.detail().contains("at most 2"));
}

#[test]
fn json_patterns_never_match_other_messages() {
    let p = parse(r#"{ $.kind = "OrderPlaced" }"#);
    assert!(!p.matches("OrderPlaced"));
    assert!(!p.matches("kind=OrderPlaced"));
    assert!(!p.matches(r#"{"kind": "OrderPlaced""#));
    assert!(!p.matches(r#"2024-01-01 {"kind": "OrderPlaced"}"#));
    assert!(!p.matches(""));
    assert!(p.matches(r#"   {"kind": "OrderPlaced"}  "#));
    assert!(!parse("{ $.x NOT EXISTS }").matches("not json"));
}

#[test]
fn json_escapes_in_messages_are_decoded() {
    let p = parse(r#"{ $.kind = "OrderPlaced" }"#);
    assert!(p.matches(r#"{"kind": "\u004frderPlaced"}"#));
    let p = parse(r#"{ $.path = "/v1/items" }"#);
    assert!(p.matches(r#"{"path": "\/v1\/items"}"#));
    let p = parse(r#"{ $.msg = "say \"hi\"" }"#);
    assert!(p.matches(r#"{"msg": "say \"hi\""}"#));
}

#[test]
fn json_duplicate_keys_last_one_wins() {
    assert!(matches("{ $.a = 2 }", r#"{"a": 1, "a": 2}"#));
    assert!(!matches("{ $.a = 1 }", r#"{"a": 1, "a": 2}"#));
    // A later scalar replaces an earlier object, and the object's fields with it.
    let message = r#"{"a": {"b": 1}, "a": 5}"#;
    assert!(matches("{ $.a.b NOT EXISTS }", message));
    assert!(matches("{ $.a = 5 }", message));
    let message = r#"{"a": 5, "a": {"b": 1}}"#;
    assert!(matches("{ $.a.b = 1 }", message));
    assert!(!matches("{ $.a = 5 }", message));
}

#[test]
fn json_selectors_sharing_prefixes() {
    let p = parse("{ $.a NOT EXISTS || $.a.b = 1 && $.a.c[1] = y && $.a.c[0] = x }");
    assert!(p.matches(r#"{"z": 0}"#));
    assert!(p.matches(r#"{"a": {"b": 1, "c": ["x", "y"]}}"#));
    assert!(!p.matches(r#"{"a": {"b": 1, "c": ["y", "x"]}}"#));
    // The same node as an object in one message and an array in another.
    let p = parse("{ $.n.k = v || $.n[0] = v }");
    assert!(p.matches(r#"{"n": {"k": "v"}}"#));
    assert!(p.matches(r#"{"n": ["v"]}"#));
    assert!(!p.matches(r#"{"n": "v"}"#));
    // More selectors than the walk keeps inline.
    let p = parse(
        "{ $.a1 = 1 && $.a2 = 2 && $.a3 = 3 && $.a4 = 4 && $.a5 = 5 && $.n.x.y.z[3] = 9 && $.a6 NOT EXISTS }",
    );
    assert!(p.matches(r#"{"a1":1,"a2":2,"a3":3,"a4":4,"a5":5,"n":{"x":{"y":{"z":[0,0,0,9]}}}}"#));
    assert!(!p.matches(r#"{"a1":1,"a2":2,"a3":3,"a4":4,"a5":5,"n":{"x":{"y":{"z":[0,0,9]}}}}"#));
}

#[test]
fn json_invalid_anywhere_means_no_match() {
    // The walk skips fields the pattern does not name, but still checks them.
    assert!(!matches("{ $.a = 1 }", r#"{"a": 1, "b": [1, 2,]}"#));
    assert!(!matches("{ $.a = 1 }", r#"{"a": 1, "b": tru}"#));
    assert!(!matches("{ $.a = 1 }", r#"{"a": 1} {"a": 1}"#));
    assert!(!matches("{ $.a NOT EXISTS }", r#"{"b": "unterminated}"#));
    assert!(matches("{ $.a = 1 }", "{\"a\": 1}\n"));
}

/// The selector walk must agree with resolving the selector on a fully parsed document.
#[test]
fn json_walk_agrees_with_value_resolution() {
    use serde_json::Value as Json;
    fn resolve<'v>(root: &'v Json, selector: &str) -> Option<&'v Json> {
        let mut node = root;
        for part in selector[1..].split_inclusive(['.', '[']) {
            let part = part.trim_end_matches(['.', '[']);
            if part.is_empty() {
                continue;
            }
            node = match part.strip_suffix(']') {
                Some(index) => node.as_array()?.get(index.parse::<usize>().ok()?)?,
                None => node.as_object()?.get(part)?,
            };
        }
        Some(node)
    }
    let selectors = [
        "$.kind",
        "$.tags[1]",
        "$.tags[9]",
        "$.lines[0].sku",
        "$.lines[1]",
        "$.grid[1][0]",
        "$.coupon",
        "$.paid",
        "$.customer.address",
        "$.customer.address.city",
        "$.kind.x",
        "$.serial",
        "$.ratio",
    ];
    let messages = [
        ORDER,
        r#"{"kind": ["x"], "tags": "no", "lines": [], "grid": [[7]], "paid": null}"#,
        r#"{"kind": {"x": "\u00e9"}, "customer": {"address": null}, "tags": [0, "s"]}"#,
        r#"[1, 2]"#,
        "{}",
    ];
    for message in messages {
        let root: Json = serde_json::from_str(message).unwrap();
        for selector in selectors {
            let node = resolve(&root, selector);
            let check = |pattern: String, expected: bool| {
                assert_eq!(
                    matches(&pattern, message),
                    expected,
                    "{pattern} on {message}"
                );
            };
            check(format!("{{ {selector} NOT EXISTS }}"), node.is_none());
            check(
                format!("{{ {selector} IS NULL }}"),
                node.is_some_and(Json::is_null),
            );
            check(
                format!("{{ {selector} IS TRUE }}"),
                node == Some(&Json::Bool(true)),
            );
            let scalar = node.is_some_and(|n| n.is_string() || n.is_number() || n.is_boolean());
            check(format!("{{ {selector} = * }}"), scalar);
            let text = match node {
                Some(Json::String(s)) => Some(s.clone()),
                Some(n @ (Json::Number(_) | Json::Bool(_))) => Some(n.to_string()),
                _ => None,
            };
            if let Some(text) = text.filter(|t| !t.contains('"') && !t.contains('\\')) {
                check(format!("{{ {selector} = \"{text}\" }}"), true);
                check(format!("{{ {selector} != \"{text}\" }}"), false);
            }
        }
    }
}

#[test]
fn malformed_json_patterns_are_rejected() {
    for pattern in [
        "{",
        "{ }",
        "{ $.a = 1",
        "{ $.a = 1 } trailing",
        "{ $.a 1 }",
        "{ a = 1 }",
        "{ $ = 1 }",
        "{ $. = 1 }",
        "{ $.a[x] = 1 }",
        "{ $.a[*] = 1 }",
        "{ $.a[0 = 1 }",
        "{ $.a = }",
        "{ $.a < abc }",
        "{ $.a >= \"5\" }",
        "{ $.a IS MAYBE }",
        "{ $.a NOT THERE }",
        "{ $.a = 1 && }",
        "{ ($.a = 1 }",
        "{ $.a = 1 ) }",
        "{ $.a = \"open }",
        "{ $.a = %unterminated }",
        "{ $.a = 1 $.b = 2 }",
    ] {
        let e = rejects(pattern);
        assert_eq!(e.to_string(), "Invalid filter pattern", "{pattern:?}");
    }
}

// ---------------------------------------------------------------- space-delimited

const ACCESS: [&str; 4] = [
    r#"10.0.0.1 - maria [02/Mar/2024:08:01:15 +0000] "GET /shop/index.html HTTP/1.1" 200 5120"#,
    r#"10.0.0.2 - - [02/Mar/2024:08:01:16 +0000] "POST /api/cart HTTP/1.1" 404 310"#,
    r#"10.0.0.3 - joao [02/Mar/2024:08:01:17 +0000] "GET /shop/faq.html HTTP/1.1" 403 1999"#,
    r#"10.0.0.4 - - [02/Mar/2024:08:01:18 +0000] "GET /img/logo.png HTTP/1.1" 500 88"#,
];

fn which(pattern: &str) -> Vec<usize> {
    let p = parse(pattern);
    (0..ACCESS.len())
        .filter(|&i| p.matches(ACCESS[i]))
        .collect()
}

#[test]
fn delimited_fields_are_counted_exactly() {
    assert_eq!(
        which("[ip, ident, user, time, request, status, bytes]"),
        [0, 1, 2, 3]
    );
    assert_eq!(
        which("[ip, ident, user, time, request, status]"),
        Vec::<usize>::new()
    );
    assert_eq!(
        which("[ip, ident, user, time, request, status, bytes, more]"),
        Vec::<usize>::new()
    );
}

#[test]
fn delimited_ellipsis() {
    assert_eq!(which("[..., status, bytes]"), [0, 1, 2, 3]);
    assert_eq!(which("[ip, ident, ...]"), [0, 1, 2, 3]);
    assert_eq!(which("[ip, ..., bytes]"), [0, 1, 2, 3]);
    assert_eq!(which("[..., status = 404, ...]"), [1]);
    assert_eq!(which("[..., user = maria, ..., status = 200, ...]"), [0]);
    assert_eq!(which("[..., ..., status = 500, bytes]"), [3]);
    assert_eq!(which("[...]"), [0, 1, 2, 3]);
    // An ellipsis may stand for no fields at all.
    assert!(matches("[a, ..., b]", "x y"));
    assert!(matches("[..., a = x]", "x"));
    assert!(!matches("[a, ..., b]", "x"));
    // The walk backs up when a later field fails.
    assert!(matches("[..., k = a, v = 1]", "a 2 a 1"));
    assert!(!matches("[..., k = a, v = 1]", "a 1 a 2"));
    assert!(matches("[..., a = x, ..., b = y, c]", "x x y q y z"));
    assert!(!matches("[..., a = x, ..., b = y]", "y x"));
}

#[test]
fn delimited_conditions() {
    assert_eq!(
        which("[ip, ident, user, time, request, status = 200, bytes]"),
        [0]
    );
    assert_eq!(
        which("[ip, ident, user, time, request, status != 200, bytes]"),
        [1, 2, 3]
    );
    assert_eq!(
        which("[ip, ident, user, time, request, status = 4*, bytes]"),
        [1, 2]
    );
    assert_eq!(
        which("[ip, ident, user, time, request, status, bytes > 1000]"),
        [0, 2]
    );
    assert_eq!(
        which("[ip, ident, user, time, request, status, bytes <= 310]"),
        [1, 3]
    );
    assert_eq!(
        which("[ip, ident, user, time, request = *html*, status = 4*, bytes]"),
        [2]
    );
    assert_eq!(
        which("[ip, ident, user, time, request = \"GET /shop*\", status, bytes]"),
        [0, 2]
    );
    assert_eq!(which("[ip, ident, user = -, ...]"), [1, 3]);
    assert_eq!(which("[ip = 10.0.0.3, ...]"), [2]);
    assert_eq!(which("[ip = 10.0.0.*, ...]"), [0, 1, 2, 3]);
    assert_eq!(
        which("[ip, ident, user, time, request, status = 4* && status != 403, bytes]"),
        [1]
    );
    assert_eq!(
        which("[ip, ident, user, time, request, status = 200 || status = 500, bytes]"),
        [0, 3]
    );
    assert_eq!(
        which("[..., status >= 400 && (status < 404 || status > 499), bytes]"),
        [2, 3]
    );
    assert_eq!(which(r"[..., request = %\.png %, status, bytes]"), [3]);
    assert_eq!(which(r"[..., status = %^4\d\d$%, bytes]"), [1, 2]);
    assert_eq!(which("[..., status != %^4%, bytes]"), [0, 3]);
    // Numeric equality is numeric; ordering needs a number in the field.
    assert!(matches("[a = 200]", "200.0"));
    assert!(!matches("[a > 1]", "-"));
    assert!(matches("[a != 1]", "-"));
    assert!(matches("[a < -1.5e3]", "-2000"));
}

#[test]
fn delimited_or_on_the_first_word() {
    let lines = ["ERROR WARN message", "ERROR message", "WARN message"];
    let hits = |pattern: &str| -> Vec<usize> {
        let p = parse(pattern);
        (0..lines.len()).filter(|&i| p.matches(lines[i])).collect()
    };
    assert_eq!(hits("[w1 = ERROR, w2]"), [1]);
    assert_eq!(hits("[w1 = ERROR || w1 = WARN, w2]"), [1, 2]);
    assert_eq!(
        hits("[w1 != ERROR && w1 != WARN, ...]"),
        Vec::<usize>::new()
    );
    assert_eq!(hits("[w1, w2 = WARN, w3]"), [0]);
}

#[test]
fn delimited_message_splitting() {
    // Quotes and brackets group a field and are stripped from its value.
    assert!(matches("[a = \"x y\", b]", "\"x y\" z"));
    assert!(matches("[a = \"*x y*\", b]", "[x y] z"));
    assert!(matches("[a, b = \"\"]", "k \"\""));
    // Runs of blanks, tabs and edges do not make empty fields.
    assert!(matches("[a, b, c]", "  one \t two    three  "));
    // An unterminated quote runs to the end of the message.
    assert!(matches("[a, b = \"half open*\"]", "x \"half open quote"));
    // A group may touch the next field.
    assert!(matches("[a = q, b = rest]", "\"q\"rest"));
    // Trailing empty pattern field = one unnamed field.
    assert!(matches("[..., status = 4*,]", "GET /x 404 12"));
    assert!(!matches("[..., status = 4*,]", "GET /x 12 404"));
    assert!(!matches("[a]", ""));
    assert!(matches("[...]", ""));
}

#[test]
fn malformed_delimited_patterns_are_rejected() {
    for pattern in [
        "[",
        "[a, b",
        "[a b]",
        "[a, b] extra",
        "[a =]",
        "[a = 1 &&]",
        "[a > x]",
        "[a ~ 1]",
        "[(a = 1]",
        "[status_code = 4* && bytes > 1000]",
        "[a = %x%, b = %y%, c = %z%]",
        "[a = %(x)%]",
        "[a = \"open]",
    ] {
        let e = rejects(pattern);
        assert_eq!(e.to_string(), "Invalid filter pattern", "{pattern:?}");
    }
}

// ---------------------------------------------------------------- required literals

#[test]
fn required_literals_by_kind() {
    let own = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    assert_eq!(lits("ERROR Exception"), own(&["Exception"]));
    assert_eq!(lits("?ERROR ?WARN"), own(&["ERROR", "WARN"]));
    assert_eq!(lits("ERROR ?WARN -x"), own(&["ERROR"]));
    assert_eq!(lits("\"Failed to\""), own(&["Failed to"]));
    assert_eq!(lits("%boom% ERROR"), own(&["ERROR"]));
    assert_eq!(lits("-ERROR"), None);
    assert_eq!(lits("%boom%"), None);
    assert_eq!(lits("?ERROR ?%boom%"), None);
    assert_eq!(lits("?ERROR ?\"\""), None);

    assert_eq!(lits(r#"{ $.kind = "Order*" }"#), own(&["Order", "\\u"]));
    assert_eq!(
        lits(r#"{ $.path = "/v1/*" }"#),
        own(&["/v1/", "\\u", "\\/"])
    );
    assert_eq!(lits("{ $.a IS TRUE }"), own(&["true"]));
    assert_eq!(lits("{ $.a IS FALSE }"), own(&["false"]));
    assert_eq!(lits("{ $.a IS NULL }"), own(&["null"]));
    assert_eq!(lits("{ $.a NOT EXISTS }"), None);
    assert_eq!(lits("{ $.a > 3 }"), None);
    assert_eq!(lits("{ $.a = 3 }"), None);
    assert_eq!(lits(r#"{ $.a = "3*" }"#), None);
    assert_eq!(lits("{ $.a != x }"), None);
    assert_eq!(lits("{ $.a = * }"), None);
    assert_eq!(lits(r#"{ $.a = "say \"hi\"" }"#), None);
    assert_eq!(lits("{ $.a = %x% }"), None);
    assert_eq!(lits("{ $.a = x && $.b > 1 }"), own(&["x", "\\u"]));
    assert_eq!(lits("{ $.a = xy || $.b = zw }"), own(&["xy", "\\u", "zw"]));
    assert_eq!(lits("{ $.a = xy || $.b > 1 }"), None);

    assert_eq!(lits("[a, b = GET, c]"), own(&["GET"]));
    assert_eq!(lits("[a = x || a = y, ...]"), own(&["x", "y"]));
    assert_eq!(lits("[a = 200, ...]"), None);
    assert_eq!(lits("[a, b > 5]"), None);
    assert_eq!(lits("[a = \"200\", b = 5*]"), own(&["200"]));
}

/// Whenever a pattern matches a message, the message holds one of the pattern's literals.
#[test]
fn required_literals_are_sound() {
    let patterns = [
        "ERROR",
        "ERROR Exception",
        "?ERROR ?WARN",
        "ERROR ?WARN -retry",
        "\"could not connect\" ?db ?cache",
        "%boom% ERROR",
        "-x",
        r#"{ $.kind = "OrderPlaced" }"#,
        "{ $.kind = Order* }",
        "{ $.kind = *Placed || $.customer.tier = gold }",
        "{ $.paid IS TRUE && $.latencyMs > 5 }",
        "{ $.shipped IS FALSE }",
        "{ $.coupon IS NULL }",
        r#"{ $.path = "/v1/*" }"#,
        "{ $.b = *a* }",
        "{ $.b = true }",
        "{ $.k = Ev*ent }",
        "[..., status = 4*, bytes]",
        "[ip, ident, user = maria || user = joao, ...]",
        "[..., request = *html*, status, bytes]",
        "[a = \"x y\", b]",
        "[w1 = ERROR || w1 = WARN, w2]",
    ];
    let messages = [
        "ERROR Exception thrown",
        "ERROR WARN message",
        "WARN retry later",
        "could not connect to db",
        "boom ERROR",
        "nothing here",
        ORDER,
        r#"{"kind": "\u004frderPlaced", "paid": true, "latencyMs": 9}"#,
        r#"{"kind": "Order\u0050laced"}"#,
        r#"{"customer": {"tier": "gold"}}"#,
        r#"{"shipped": false, "coupon": null}"#,
        r#"{"path": "\/v1\/items"}"#,
        r#"{"b": true}"#,
        r#"{"b": "\u0061"}"#,
        r#"{"k": "Ev*ent"}"#,
        ACCESS[0],
        ACCESS[1],
        ACCESS[2],
        ACCESS[3],
        "\"x y\" z",
        "[x y] z",
        "ERROR message",
    ];
    let mut checked = 0;
    for pattern in patterns {
        let p = parse(pattern);
        let Some(literals) = p.required_literals() else {
            continue;
        };
        for message in messages {
            if p.matches(message) {
                checked += 1;
                assert!(
                    literals
                        .iter()
                        .any(|l| memchr::memmem::find(message.as_bytes(), l).is_some()),
                    "{pattern:?} matches {message:?} but it holds none of {literals:?}"
                );
            }
        }
    }
    // Make sure the loop exercised something, including the escaped JSON messages.
    assert!(checked >= 25, "only {checked} matches checked");
    assert!(parse(r#"{ $.kind = "OrderPlaced" }"#).matches(messages[7]));
    assert!(parse(r#"{ $.kind = "OrderPlaced" }"#).matches(messages[8]));
    assert!(parse("{ $.b = *a* }").matches(messages[13]));
}

#[test]
fn patterns_are_reusable_and_cloneable() {
    let p = parse("?ERROR ?WARN");
    let q = p.clone();
    for _ in 0..3 {
        assert!(q.matches("WARN"));
        assert!(!q.matches("INFO"));
    }
    assert!(format!("{p:?}").contains("Terms"));
}

/// The API reference's TestMetricFilter examples (Apache access log lines): named fields as
/// `$name`, the others by position from `$1`, `[]` matching everything.
#[test]
fn delimited_patterns_extract_fields_as_the_api_reference_shows() {
    let line =
        r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#;
    let extract = |p: &str, m: &str| FilterPattern::parse(p).unwrap().extract(m);
    let pairs = |v: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        extract("[..., size]", line).unwrap(),
        pairs(&[
            ("$1", "127.0.0.1"),
            ("$2", "-"),
            ("$3", "frank"),
            ("$4", "10/Oct/2000:13:25:15 -0700"),
            ("$5", "GET /apache_pb.gif HTTP/1.0"),
            ("$6", "200"),
            ("$size", "1534"),
        ])
    );
    assert_eq!(extract("[]", line).unwrap().get("$7").unwrap(), "1534");
    assert_eq!(extract("[ ]", "").unwrap().len(), 0);
    let named = extract(
        "[ip, identity, user_id, timestamp, request, status_code, size]",
        line,
    )
    .unwrap();
    assert_eq!(named.get("$user_id").unwrap(), "frank");
    assert_eq!(named.len(), 7);
    let html =
        r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;
    assert_eq!(
        extract("[..., request=*.html*, status_code=4*,]", html).unwrap(),
        pairs(&[
            ("$1", "127.0.0.1"),
            ("$2", "-"),
            ("$3", "frank"),
            ("$4", "10/Oct/2000:13:25:15 -0700"),
            ("$request", "GET /index.html HTTP/1.0"),
            ("$status_code", "404"),
            ("$7", "1534"),
        ])
    );
    assert!(extract("[..., status_code=200, size]", html).is_none());
    // Several ellipses: the fields they swallow are numbered by position.
    assert_eq!(
        extract("[a, ..., b = x, ...]", "1 2 x 3").unwrap(),
        pairs(&[("$a", "1"), ("$2", "2"), ("$b", "x"), ("$4", "3")])
    );
    // Other patterns extract nothing.
    assert_eq!(extract("ERROR", "an ERROR").unwrap().len(), 0);
    assert!(extract("ERROR", "fine").is_none());
    assert_eq!(extract("{ $.a = 1 }", r#"{"a": 1}"#).unwrap().len(), 0);
}
