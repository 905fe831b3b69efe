//! Listener rule conditions as ELBv2 evaluates them, pure: a request's parts in, a match out.
//! Wildcards are `*` (any run, also empty) and `?` (one character).

use std::net::IpAddr;

use hyper::http::request::Parts;

use crate::plan::{Condition, QueryStringPair};

/// What conditions look at, taken from the request once per request.
pub(crate) struct RequestView<'a> {
    pub parts: &'a Parts,
    pub source: IpAddr,
}

impl RequestView<'_> {
    fn host(&self) -> &str {
        let host = self
            .parts
            .headers
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.parts.uri.host())
            .unwrap_or("");
        strip_port(host)
    }
}

pub(crate) fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port keeps its brackets.
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..=h.len()]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

pub(crate) fn matches_all(conditions: &[Condition], req: &RequestView<'_>) -> bool {
    conditions.iter().all(|c| matches(c, req))
}

fn matches(condition: &Condition, req: &RequestView<'_>) -> bool {
    match condition {
        Condition::PathPattern(patterns) => {
            let path = req.parts.uri.path();
            patterns
                .iter()
                .any(|p| wildcard(p.as_bytes(), path.as_bytes(), false))
        }
        Condition::HostHeader(patterns) => {
            let host = req.host();
            patterns
                .iter()
                .any(|p| wildcard(p.as_bytes(), host.as_bytes(), true))
        }
        Condition::HttpHeader { name, values } => req
            .parts
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                values
                    .iter()
                    .any(|p| wildcard(p.as_bytes(), v.as_bytes(), true))
            }),
        Condition::HttpRequestMethod(methods) => {
            methods.iter().any(|m| m == req.parts.method.as_str())
        }
        Condition::QueryString(pairs) => {
            let query = req.parts.uri.query().unwrap_or("");
            query_pairs(query).any(|(k, v)| pairs.iter().any(|p| pair_matches(p, &k, &v)))
        }
        Condition::SourceIp(blocks) => blocks.iter().any(|b| b.contains(req.source)),
    }
}

fn pair_matches(pair: &QueryStringPair, key: &str, value: &str) -> bool {
    let key_ok = pair
        .key
        .as_ref()
        .is_none_or(|k| wildcard(k.as_bytes(), key.as_bytes(), true));
    key_ok && wildcard(pair.value.as_bytes(), value.as_bytes(), true)
}

/// The query's `key=value` pairs, percent-decoded (ELBv2 compares decoded values).
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|s| !s.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Glob match with `*` and `?`, iterative with one backtrack point (linear for one `*`,
/// never exponential).
pub(crate) fn wildcard(pattern: &[u8], text: &[u8], ignore_case: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len()
            && (pattern[p] == b'?' || (pattern[p] != b'*' && eq(pattern[p], text[t])))
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        assert!(wildcard(b"/api/*", b"/api/v1/users", false));
        assert!(wildcard(b"/api/*", b"/api/", false));
        assert!(!wildcard(b"/api/*", b"/apx/", false));
        assert!(wildcard(b"/img/??.png", b"/img/ab.png", false));
        assert!(!wildcard(b"/img/??.png", b"/img/abc.png", false));
        assert!(wildcard(b"*.example.com", b"WWW.Example.COM", true));
        assert!(!wildcard(b"/API/*", b"/api/x", false));
        assert!(wildcard(b"*a*b*", b"xxaxxbxx", false));
        assert!(!wildcard(b"*a*b", b"xxaxxbxxc", false));
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let pairs: Vec<_> = query_pairs("a=b%20c&flag&x=1+2").collect();
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "b c".into()),
                ("flag".into(), "".into()),
                ("x".into(), "1 2".into())
            ]
        );
    }

    #[test]
    fn a_host_loses_its_port_but_not_its_brackets() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }
}
