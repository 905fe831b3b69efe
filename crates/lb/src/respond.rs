//! What an ALB answers by itself: its error pages (502/503/504 and the like), fixed
//! responses, redirects, and the stickiness cookies it sets. Also the one body type every
//! answer carries: a target's streamed body, or bytes the load balancer wrote.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, SERVER};
use hyper::{Response, StatusCode};

use crate::plan::{FixedResponseAction, RedirectAction, RedirectStatus};
use crate::targets::InFlight;

pub(crate) enum ProxyBody {
    /// Holds the target's in-flight count until the body is done: draining waits for it.
    Target {
        inner: Incoming,
        _in_flight: InFlight,
    },
    Full(Option<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Target { inner, .. } => Pin::new(inner).poll_frame(cx),
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Target { inner, .. } => inner.is_end_stream(),
            Self::Full(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Target { inner, .. } => inner.size_hint(),
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let body: Bytes = body.into();
    let mut response = Response::new(ProxyBody::Full((!body.is_empty()).then_some(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("awselb/2.0"));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    response
}

/// An ALB error page: the status line repeated in a small HTML page, `Server: awselb/2.0`.
pub(crate) fn alb_error(status: StatusCode) -> Response<ProxyBody> {
    let line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let page = format!(
        "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    full(status, "text/html", page)
}

pub(crate) fn fixed_response(action: &FixedResponseAction) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(action.status_code).unwrap_or(StatusCode::OK);
    let body = action.message_body.clone().unwrap_or_default();
    full(
        status,
        action
            .content_type
            .as_deref()
            .unwrap_or("text/plain; charset=utf-8"),
        body,
    )
}

/// The original URI's components, as the redirect keywords name them.
pub(crate) struct OriginalUri<'a> {
    /// `http` or `https`.
    pub protocol: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

pub(crate) fn redirect(action: &RedirectAction, uri: &OriginalUri<'_>) -> Response<ProxyBody> {
    let location = redirect_location(action, uri);
    let status = match action.status_code {
        RedirectStatus::Http301 => StatusCode::MOVED_PERMANENTLY,
        RedirectStatus::Http302 => StatusCode::FOUND,
    };
    let mut response = alb_error(status);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

pub(crate) fn redirect_location(action: &RedirectAction, uri: &OriginalUri<'_>) -> String {
    let port = uri.port.to_string();
    let path = uri.path.strip_prefix('/').unwrap_or(uri.path);
    let query = uri.query.unwrap_or("");
    let fill = |template: &str| {
        template
            .replace("#{protocol}", uri.protocol)
            .replace("#{host}", uri.host)
            .replace("#{port}", &port)
            .replace("#{path}", path)
            .replace("#{query}", query)
    };
    let protocol = fill(action.protocol.as_deref().unwrap_or("#{protocol}")).to_ascii_lowercase();
    let host = fill(action.host.as_deref().unwrap_or("#{host}"));
    let port = fill(action.port.as_deref().unwrap_or("#{port}"));
    let path = fill(action.path.as_deref().unwrap_or("/#{path}"));
    let query = fill(action.query.as_deref().unwrap_or("#{query}"));
    let default_port = matches!(
        (protocol.as_str(), port.as_str()),
        ("http", "80") | ("https", "443")
    );
    let mut location = format!("{protocol}://{host}");
    if !default_port {
        location.push(':');
        location.push_str(&port);
    }
    if !path.starts_with('/') {
        location.push('/');
    }
    location.push_str(&path);
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    location
}

/// The value of cookie `name` in the request's Cookie headers.
pub(crate) fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_in(
        headers
            .get_all(hyper::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

/// The value of cookie `name` among Cookie header values.
pub(crate) fn cookie_in<'a>(values: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    values
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn set_cookie(headers: &mut HeaderMap, name: &str, value: &str, life: Duration) {
    if let Ok(v) = HeaderValue::from_str(&set_cookie_value(name, value, life)) {
        headers.append(hyper::header::SET_COOKIE, v);
    }
}

/// A stickiness cookie as the `Set-Cookie` value ALB sends.
pub(crate) fn set_cookie_value(name: &str, value: &str, life: Duration) -> String {
    let expires = httpdate::fmt_http_date(SystemTime::now() + life);
    format!("{name}={value}; Expires={expires}; Path=/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original() -> OriginalUri<'static> {
        OriginalUri {
            protocol: "http",
            host: "example.com",
            port: 80,
            path: "/a/b",
            query: Some("x=1"),
        }
    }

    #[test]
    fn a_redirect_to_https_keeps_what_it_does_not_change() {
        let action = RedirectAction {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            ..RedirectAction::default()
        };
        assert_eq!(
            redirect_location(&action, &original()),
            "https://example.com/a/b?x=1"
        );
    }

    #[test]
    fn redirect_keywords_are_filled_from_the_original_uri() {
        let action = RedirectAction {
            host: Some("new.#{host}".into()),
            port: Some("8080".into()),
            path: Some("/new/#{path}".into()),
            query: Some("#{query}&y=2".into()),
            ..RedirectAction::default()
        };
        assert_eq!(
            redirect_location(&action, &original()),
            "http://new.example.com:8080/new/a/b?x=1&y=2"
        );
    }

    #[test]
    fn a_cookie_is_found_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::COOKIE,
            HeaderValue::from_static("a=1; AWSALB=xyz; b=2"),
        );
        assert_eq!(request_cookie(&h, "AWSALB"), Some("xyz"));
        assert_eq!(request_cookie(&h, "AWSALBTG"), None);
    }
}
