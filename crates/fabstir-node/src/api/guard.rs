//! Who may talk to the node: protections against web pages that try to
//! drive it through a visitor's browser, and the bearer token.
//!
//! A page on any site can send a "simple" cross-site request (a `POST` with
//! `text/plain`, no preflight) to `127.0.0.1:8080`, and with DNS rebinding
//! read the answers under its own host name. So, for every request:
//! - the `Host` must name the listen address (`localhost` too on loopback)
//!   or a configured name (`allowed_hosts`), else 403 `forbidden_host`;
//! - an `Origin`, when present, must be in `allowed_origins`, else 403
//!   `forbidden_origin`; only allowed origins get CORS headers (none by default);
//! - every `POST` to a route must say `Content-Type: application/json`, else
//!   415 ([`require_json`], after routing);
//! - routes wrapped in [`require_token`] need `Authorization: Bearer <token>`.
//!
//! [`json_errors`] turns any error response the framework produced itself
//! into our JSON error body.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorCode};
use crate::datadir::AdminToken;

/// The access rules of one running node.
#[derive(Debug)]
pub struct Access {
    listen: SocketAddr,
    /// Extra host names (lower case, no port).
    allowed_hosts: Vec<String>,
    /// Web origins allowed to call the node (lower case, exact).
    allowed_origins: Vec<String>,
    token: AdminToken,
    /// Whether every state-changing route needs the token too.
    pub production: bool,
}

impl Access {
    /// Rules for a node bound to `listen`.
    pub fn new(
        listen: SocketAddr,
        allowed_hosts: &[String],
        allowed_origins: &[String],
        token: AdminToken,
        production: bool,
    ) -> Self {
        Self {
            listen,
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            token,
            production,
        }
    }

    /// Whether a request naming `host` (a `Host` header value) is for us.
    pub fn host_allowed(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        let ip = self.listen.ip();
        if let Ok(requested) = name.parse::<IpAddr>() {
            return ip.is_unspecified()
                || requested == ip
                || (requested.is_loopback() && ip.is_loopback());
        }
        if name == "localhost" && (ip.is_loopback() || ip.is_unspecified()) {
            return true;
        }
        self.allowed_hosts.contains(&name)
    }

    /// Whether a web page from `origin` may call the node.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        self.allowed_origins.contains(&origin)
    }
}

/// The host name of a `Host` value, lower case, without port or brackets;
/// `None` when it is not a plausible host.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()));
        if !port_ok {
            return None;
        }
        inside
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return None,
            None => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Whether a `Content-Type` value is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The checks every request passes (see the module documentation).
pub async fn check_request(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match &host {
        Some(host) if access.host_allowed(host) => {}
        Some(host) => {
            return ApiError::new(
                ErrorCode::ForbiddenHost,
                format!(
                    "Host {host:?} is not this node's address; a proxy or DNS name must be listed in allowed_hosts"
                ),
            )
            .into_response()
        }
        None => {
            return ApiError::new(ErrorCode::ForbiddenHost, "the request has no Host header")
                .into_response()
        }
    }
    let origin = match headers.get(header::ORIGIN) {
        None => None,
        Some(value) => match value.to_str() {
            Ok(origin) if access.origin_allowed(origin) => Some(value.clone()),
            _ => {
                return ApiError::new(
                    ErrorCode::ForbiddenOrigin,
                    format!(
                        "web origin {:?} may not call this node; list it in allowed_origins to allow it",
                        String::from_utf8_lossy(value.as_bytes())
                    ),
                )
                .into_response()
            }
        },
    };
    if let (Some(origin), &Method::OPTIONS) = (&origin, request.method()) {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        add_cors(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(origin) = &origin {
        add_cors(response.headers_mut(), origin);
    }
    response
}

fn add_cors(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Refuses a `POST` to a route unless it says `Content-Type: application/json`
/// (a cross-site form or `text/plain` post needs no CORS preflight). Runs
/// after routing, so an unknown path is still 404 and a wrong method 405.
pub async fn require_json(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !is_json(request.headers()) {
        return ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "POST bodies must be sent with Content-Type: application/json",
        )
        .into_response();
    }
    next.run(request).await
}

/// Requires `Authorization: Bearer <admin token>` (see [`AdminToken`]).
pub async fn require_token(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    match given {
        None => ApiError::new(
            ErrorCode::Unauthorized,
            format!(
                "this route needs Authorization: Bearer <token>; the token is in {}",
                access.token.source
            ),
        )
        .into_response(),
        Some(token) if !access.token.matches(&token) => ApiError::new(
            ErrorCode::Unauthorized,
            format!(
                "the bearer token is not this node's; the token is in {}",
                access.token.source
            ),
        )
        .into_response(),
        Some(_) => next.run(request).await,
    }
}

/// Requires the token only in production mode (state-changing routes).
pub async fn require_token_in_production(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    if access.production {
        require_token(State(access), request, next).await
    } else {
        next.run(request).await
    }
}

/// Largest framework error body turned into a message.
const MAX_ERROR_TEXT: usize = 4096;

/// Gives every error response a JSON body with a code: responses the
/// framework produced itself (plain text or empty) are rewritten, keeping
/// their status and headers such as `Allow`.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json_body {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let mut rewritten = ApiError::from_status(status, text).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::VARY] {
        if let Some(value) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
    ] {
        if let Some(value) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(listen: &str) -> Access {
        Access::new(
            listen.parse().unwrap(),
            &["Node.Example.org".to_string()],
            &["https://App.example.com/".to_string()],
            AdminToken::new("0123456789abcdef", "test"),
            false,
        )
    }

    #[test]
    fn host_names_are_parsed() {
        assert_eq!(host_name("127.0.0.1:8080").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_name("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(host_name("[::1]").as_deref(), Some("::1"));
        assert_eq!(host_name("LocalHost.").as_deref(), Some("localhost"));
        assert_eq!(host_name("evil.com:x"), None);
        assert_eq!(host_name("[::1]x"), None);
        assert_eq!(host_name("[::1]é"), None);
        assert_eq!(host_name(""), None);
    }

    #[test]
    fn loopback_listener_takes_its_address_and_localhost_only() {
        let a = access("127.0.0.1:8080");
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "node.example.org",
            "node.example.org.:443",
        ] {
            assert!(a.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.com:8080",
            "localhost.evil.com",
            "10.0.0.1:8080",
            "127.0.0.1.evil.com",
            "example.org",
        ] {
            assert!(!a.host_allowed(refused), "{refused}");
        }
    }

    #[test]
    fn unspecified_listener_takes_any_ip_literal_but_no_foreign_name() {
        let a = access("0.0.0.0:8080");
        assert!(a.host_allowed("10.1.2.3:8080"));
        assert!(a.host_allowed("localhost"));
        assert!(!a.host_allowed("rebind.attacker.test:8080"));
        let b = access("10.0.0.5:8080");
        assert!(b.host_allowed("10.0.0.5:8080"));
        assert!(!b.host_allowed("10.0.0.6:8080"));
        assert!(!b.host_allowed("localhost:8080"));
    }

    #[test]
    fn origins_match_exactly() {
        let a = access("127.0.0.1:8080");
        assert!(a.origin_allowed("https://app.example.com"));
        assert!(a.origin_allowed("HTTPS://APP.EXAMPLE.COM"));
        assert!(!a.origin_allowed("https://app.example.com.evil.test"));
        assert!(!a.origin_allowed("http://app.example.com"));
        assert!(!a.origin_allowed("null"));
    }

    #[test]
    fn json_content_type_with_parameters() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, expected) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("multipart/form-data; boundary=x", false),
            ("application/jsonp", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), expected, "{value}");
        }
    }
}
