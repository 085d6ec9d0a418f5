//! Keeps `docs/openapi.yaml` (and the codes in `docs/API.md`) honest:
//!
//! - the documented (method, path) pairs are exactly the routes of
//!   `router()` in `src/api/mod.rs`; the routes it wraps in the bearer-token
//!   layers document the `adminToken` security scheme and 401 (always, or
//!   only with `--production`); every operation documents 403
//!   (`forbidden_host`, `forbidden_origin`), every POST 415; a handler that
//!   takes no body documents an optional empty body, one that parses JSON a
//!   required body;
//! - the error codes are exactly `fabstir_node::api::ErrorCode::ALL`, and
//!   wherever the file (or `docs/API.md`'s error table) gives a code a
//!   status, it is the code's `status()`; the verification and settlement
//!   reason codes are those of `fabstir_node::reasons`;
//! - a running node answers every documented route (never with the router's
//!   fallback) and accepts every `example` request body, while undocumented
//!   paths get the fallback; every status it answers with is documented for
//!   its route, its JSON body has the documented shape, an error's code is
//!   named in the documented response, and every error answer is JSON;
//! - the guards (Host, Origin, Content-Type, bearer token), strict JSON and
//!   the cumulative checkpoint rules answer as documented;
//! - `/health` turns `degraded` when the key directory stops loading, as
//!   documented, and recovers after a successful reload.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::read_repo_file as read;
use common::{DataDir, Node};
use fabstir_node::api::ErrorCode;
use fabstir_node::reasons::{Reason, VERIFY_REASON_CODES};
use serde_json::{json, Value};

const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "options"];

/// A web origin the test node allows (`--allowed-origins`).
const ALLOWED_ORIGIN: &str = "https://app.example.test";

/// The router's answer to a path it does not know.
fn is_fallback(status: u16, body: &Value) -> bool {
    status == 404 && *body == json!({"error": {"code": "not_found", "message": "no such route"}})
}

/// `docs/openapi.yaml` as JSON (map keys such as status codes become strings).
fn spec() -> Value {
    let yaml: serde_norway::Value =
        serde_norway::from_str(&read("docs/openapi.yaml")).expect("docs/openapi.yaml is YAML");
    let spec = serde_json::to_value(yaml).expect("docs/openapi.yaml converts to JSON");
    assert_eq!(spec["openapi"], "3.0.3");
    spec
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {reference}"));
            let target = spec
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
            resolve(spec, target)
        }
        None => node,
    }
}

/// Every (METHOD, path) the file documents.
fn documented(spec: &Value) -> BTreeSet<(String, String)> {
    let paths = spec["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item");
            item.keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> &'a Value {
    &spec["paths"][path][method.to_lowercase()]
}

/// The documented response of an operation for `status`, resolved.
fn response<'a>(spec: &'a Value, method: &str, path: &str, status: u16) -> Option<&'a Value> {
    operation(spec, method, path)["responses"]
        .get(status.to_string())
        .map(|r| resolve(spec, r))
}

/// The `example` of an operation's JSON request body schema, if it has a body.
fn example_body(spec: &Value, method: &str, path: &str) -> Option<Value> {
    let body = operation(spec, method, path).get("requestBody")?;
    let schema = resolve(
        spec,
        &resolve(spec, body)["content"]["application/json"]["schema"],
    );
    let example = schema.get("example").cloned();
    assert!(
        example.is_some(),
        "{method} {path}: the request body schema has no example"
    );
    example
}

/// The body of the function whose signature starts with `signature`.
fn function_body<'a>(text: &'a str, signature: &str) -> &'a str {
    let start = text
        .find(signature)
        .unwrap_or_else(|| panic!("`{signature}` not found in the source"));
    let rest = &text[start..];
    let end = rest.find("\n}\n").unwrap_or(rest.len());
    &rest[..end]
}

/// String literals right after `=>` (the arms of a `match` returning codes).
fn arm_literals(body: &str) -> BTreeSet<String> {
    body.split("=>")
        .skip(1)
        .filter_map(|arm| {
            let arm = arm.trim_start();
            let rest = arm.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

/// The string values of an `enum` (nulls left out).
fn enum_strings(schema: &Value) -> BTreeSet<String> {
    schema["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn error_codes(spec: &Value) -> BTreeSet<String> {
    enum_strings(
        &spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"],
    )
}

/// Every code of the library, with its status.
fn library_codes() -> BTreeMap<&'static str, u16> {
    let codes: BTreeMap<&'static str, u16> = ErrorCode::ALL
        .iter()
        .map(|code| (code.as_str(), code.status().as_u16()))
        .collect();
    assert_eq!(codes.len(), ErrorCode::ALL.len(), "a code appears twice");
    codes
}

/// The words written in backticks in `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

// ---------------------------------------------------------------------------
// The router, read from src/api/mod.rs

/// The bearer-token layer a route is wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Guard {
    /// No token needed.
    Open,
    /// `guard::require_token_in_production`: a token only with `--production`.
    TokenInProduction,
    /// `guard::require_token`: always a token.
    Token,
}

/// One routed method: its handler (`module::function`) and token guard.
#[derive(Debug, Clone)]
struct Route {
    handler: String,
    guard: Guard,
}

/// The calls `name(args)` in `text`, in order: (name, args).
fn calls(text: &str) -> Vec<(String, String)> {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            // Skip string literals (route paths).
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            if bytes.get(i) == Some(&b'(') {
                let mut depth = 0usize;
                let mut end = bytes.len();
                for (j, &b) in bytes.iter().enumerate().skip(i) {
                    match b {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                found.push((text[start..i].to_string(), text[i + 1..end].to_string()));
            }
            continue;
        }
        i += 1;
    }
    found
}

/// Every route of `router()` in `src/api/mod.rs`: (METHOD, path) with its
/// handler and the token layer wrapped around it (`route_layer` wraps the
/// methods added before it, as in axum).
fn router_routes() -> BTreeMap<(String, String), Route> {
    let source = read("crates/fabstir-node/src/api/mod.rs");
    let body = function_body(&source, "pub fn router(");
    let (routes_text, after) =
        body.split_at(body.find(".fallback(").expect("router has a fallback"));
    // The layers every request passes: the Host/Origin/Content-Type checks
    // and the JSON error bodies (what the 403/415 of every operation and
    // the JSON error checks rely on).
    for layer in ["guard::check_request", "guard::json_errors"] {
        assert!(
            after.contains(layer),
            "router() no longer layers {layer} over every route"
        );
    }
    // The Content-Type check runs after routing, on every route: a
    // router-level `.route_layer(...)` after the last `.route(...)`.
    let last_route = routes_text.rfind(".route(").expect("a route");
    let tail = &routes_text[last_route..];
    let tail = &tail[balanced_end(tail, ".route(".len())..];
    assert!(
        tail.contains(".route_layer(from_fn(guard::require_json))"),
        "router() no longer checks the Content-Type of every route's POSTs"
    );
    // `let NAME = from_fn_with_state(…, guard::require_token…);`
    let mut layers: BTreeMap<String, Guard> = BTreeMap::new();
    for statement in routes_text.split(';') {
        let Some(rest) = statement.trim().strip_prefix("let ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let guard = if statement.contains("guard::require_token_in_production") {
            Guard::TokenInProduction
        } else if statement.contains("guard::require_token") {
            Guard::Token
        } else {
            continue;
        };
        layers.insert(name, guard);
    }
    assert_eq!(
        layers.values().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([Guard::Token, Guard::TokenInProduction]),
        "router()'s token layers parsed badly: {layers:?}"
    );
    let mut routes = BTreeMap::new();
    for chunk in routes_text.split(".route(").skip(1) {
        // Only the arguments of this `.route(...)`: router-level layers that
        // follow the last route belong to no single route.
        let chunk = &chunk[..balanced_end(chunk, 0)];
        let path = chunk.split('"').nth(1).expect("route path literal");
        let mut methods: Vec<(String, Route)> = Vec::new();
        for (name, args) in calls(chunk) {
            if name == "any" || name == "on" || name == "layer" {
                panic!("{path}: router() uses `{name}(`, which this test cannot read");
            }
            if METHODS.contains(&name.as_str()) {
                methods.push((
                    name.to_uppercase(),
                    Route {
                        handler: args.trim().to_string(),
                        guard: Guard::Open,
                    },
                ));
            } else if name == "route_layer" {
                let layer: String = args
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let guard = *layers
                    .get(&layer)
                    .unwrap_or_else(|| panic!("{path}: unknown route layer `{args}`"));
                for (_, route) in &mut methods {
                    route.guard = route.guard.max(guard);
                }
            }
        }
        assert!(!methods.is_empty(), "{path}: no method parsed");
        for (method, route) in methods {
            let previous = routes.insert((method.clone(), path.to_string()), route);
            assert!(previous.is_none(), "{method} {path} routed twice");
        }
    }
    routes
}

/// The index just past the `)` closing a parenthesis opened before
/// `text[start..]` (string literals skipped).
fn balanced_end(text: &str, start: usize) -> usize {
    let mut depth = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return start + i + 1;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in router()")
}

/// What a handler (`module::function` in `src/api/`) reads as its body.
fn handler_body_kind(handler: &str) -> &'static str {
    let (module, function) = handler
        .split_once("::")
        .unwrap_or_else(|| panic!("handler `{handler}` is not module::function"));
    let source = read(&format!("crates/fabstir-node/src/api/{module}.rs"));
    let signature = format!("pub async fn {function}(");
    let start = source
        .find(&signature)
        .unwrap_or_else(|| panic!("src/api/{module}.rs has no `{signature}`"));
    let rest = &source[start..];
    let parameters = &rest[..rest.find("->").expect("a return type")];
    match (
        parameters.contains("JsonBody<"),
        parameters.contains("NoBody"),
    ) {
        (true, false) => "json",
        (false, true) => "none",
        (false, false) => "nothing read",
        (true, true) => panic!("{handler} reads two bodies"),
    }
}

// ---------------------------------------------------------------------------
// Error codes and their statuses as documented

/// For each error code, the statuses the file gives it and where: every
/// response (under its status) whose description names the code, and every
/// `NNN `code`` in any description.
fn documented_statuses(spec: &Value) -> BTreeMap<String, BTreeSet<(u16, String)>> {
    let codes = error_codes(spec);
    let mut found: BTreeMap<String, BTreeSet<(u16, String)>> = BTreeMap::new();
    for (method, path) in documented(spec) {
        let responses = operation(spec, &method, &path)["responses"]
            .as_object()
            .expect("responses");
        for (status, response) in responses {
            let status: u16 = status
                .parse()
                .unwrap_or_else(|_| panic!("{method} {path}: response key {status}"));
            let description = resolve(spec, response)["description"]
                .as_str()
                .unwrap_or_default();
            for code in backticked(description) {
                if codes.contains(code) {
                    found
                        .entry(code.to_string())
                        .or_default()
                        .insert((status, format!("{method} {path} response {status}")));
                }
            }
        }
    }
    statuses_in_prose(spec, "", &codes, &mut found);
    found
}

/// Adds every `NNN `code`` written in a `description` under `node`.
fn statuses_in_prose(
    node: &Value,
    at: &str,
    codes: &BTreeSet<String>,
    found: &mut BTreeMap<String, BTreeSet<(u16, String)>>,
) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "description" {
                    let pieces: Vec<&str> = value.as_str().unwrap_or_default().split('`').collect();
                    for k in (1..pieces.len()).step_by(2) {
                        if let (Some(status), true) =
                            (status_before(pieces[k - 1]), codes.contains(pieces[k]))
                        {
                            found
                                .entry(pieces[k].to_string())
                                .or_default()
                                .insert((status, format!("{at}.description")));
                        }
                    }
                } else {
                    statuses_in_prose(value, &format!("{at}.{key}"), codes, found);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                statuses_in_prose(item, &format!("{at}[{i}]"), codes, found);
            }
        }
        _ => {}
    }
}

/// The status a piece of prose ends with (`… answers 409`), if any.
fn status_before(text: &str) -> Option<u16> {
    let text = text.trim_end();
    let digits = text.get(text.len().checked_sub(3)?..)?;
    let before = text[..text.len() - 3].chars().next_back();
    let status: u16 = digits.parse().ok()?;
    let standalone = before.is_none_or(|c| !c.is_alphanumeric() && c != '.');
    (standalone && (100..600).contains(&status)).then_some(status)
}

/// The rows `| `code` | NNN | …` of `docs/API.md`: code -> statuses.
fn api_md_error_rows(api_md: &str) -> BTreeMap<String, Vec<u16>> {
    let mut rows: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for line in api_md.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() < 3 {
            continue;
        }
        let Some(code) = cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        if cells[1].len() == 3 {
            if let Ok(status) = cells[1].parse::<u16>() {
                rows.entry(code.to_string()).or_default().push(status);
            }
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// Checking JSON against the file's schemas

/// Checks `value` against a schema of the file: types, `required`,
/// `additionalProperties: false`, `maxProperties`, `enum`, `nullable`,
/// `items`, `oneOf`, `anyOf`, `allOf` (not patterns or bounds).
fn check(spec: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    if value.is_null() {
        let allowed = schema["nullable"] == true
            || schema["enum"]
                .as_array()
                .is_some_and(|e| e.contains(&Value::Null));
        return if allowed {
            Ok(())
        } else {
            Err(format!("{at}: null is not allowed"))
        };
    }
    if let Some(values) = schema["enum"].as_array() {
        if !values.contains(value) {
            return Err(format!("{at}: {value} is not one of {values:?}"));
        }
    }
    let type_ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        return Err(format!("{at}: {value} is not of type {}", schema["type"]));
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: required field `{name}` is missing"));
            }
        }
        if let Some(max) = schema["maxProperties"].as_u64() {
            if object.len() as u64 > max {
                return Err(format!("{at}: more than {max} fields"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => check(spec, sub, field, &format!("{at}.{name}"))?,
                None if schema["additionalProperties"] == false => {
                    return Err(format!("{at}: field `{name}` is not documented"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(spec, items, item, &format!("{at}[{i}]"))?;
        }
    }
    let branches = |key: &str| -> Vec<Result<(), String>> {
        schema[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| check(spec, s, value, at))
            .collect()
    };
    if let Some(errors) = Some(branches("allOf")).filter(|b| !b.is_empty()) {
        errors.into_iter().collect::<Result<(), String>>()?;
    }
    let any = branches("anyOf");
    if !any.is_empty() && !any.iter().any(Result::is_ok) {
        return Err(format!("{at}: matches no anyOf branch: {any:?}"));
    }
    let one = branches("oneOf");
    if !one.is_empty() && one.iter().filter(|r| r.is_ok()).count() != 1 {
        return Err(format!(
            "{at}: does not match exactly one oneOf branch: {one:?}"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Talking to a node

/// Which `Authorization` a request carries.
#[derive(Clone, Debug)]
enum Auth {
    /// The node's admin token where the file says the route always needs
    /// it (in `Checker::call`), none otherwise.
    AsDocumented,
    /// None.
    Without,
    /// `Bearer <this>`.
    Bearer(String),
}

/// A request to the node.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    body: Option<Vec<u8>>,
    /// Every POST says `application/json` unless told otherwise.
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    auth: Auth,
}

impl Request {
    fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            body: None,
            content_type: (method == "POST").then(|| "application/json".to_string()),
            headers: Vec::new(),
            auth: Auth::AsDocumented,
        }
    }

    fn body(mut self, body: Option<Vec<u8>>) -> Self {
        self.body = body;
        self
    }

    fn json(self, value: &Value) -> Self {
        self.body(Some(json_bytes(value)))
    }

    fn content_type(mut self, content_type: Option<&str>) -> Self {
        self.content_type = content_type.map(str::to_string);
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
}

/// A response, with its raw text.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }
}

/// Sends a request. Every error answer must be JSON: an error body with a
/// code and a message (or, for `/health`, the health report).
fn send(node: &Node, request: &Request) -> Answer {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("method");
    let mut builder = client.request(method, node.url(&request.path));
    if let Some(content_type) = &request.content_type {
        builder = builder.header("content-type", content_type);
    }
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Auth::Bearer(token) = &request.auth {
        builder = builder.bearer_auth(token);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let response = builder.send().expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    let answer = Answer {
        status,
        headers,
        text,
        body,
    };
    if status >= 400 {
        let what = format!(
            "{} {} -> {status} {}",
            request.method, request.path, answer.text
        );
        assert!(
            answer.content_type().starts_with("application/json"),
            "{what}: an error answered with content-type {:?}",
            answer.content_type()
        );
        let error_body = answer.body["error"]["code"].is_string()
            && answer.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty());
        let health_report = status == 503 && request.path == "/health";
        assert!(
            error_body || health_report,
            "{what}: not an error body with a code and a message"
        );
    }
    answer
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialise")
}

/// Requests against one node, checked against the file as they go.
struct Checker<'a> {
    spec: &'a Value,
    api_md: String,
    node: &'a Node,
    /// Error codes seen.
    seen_codes: BTreeSet<String>,
}

impl Checker<'_> {
    /// Sends a request to a documented operation (`template` is the
    /// documented path, `request.path` the concrete one) and checks that the
    /// status is documented for it, the body has the documented shape, the
    /// documented headers are there, and an error's code is named in the
    /// documented response.
    fn call(&mut self, template: &str, mut request: Request) -> Answer {
        let method = request.method.clone();
        let op = operation(self.spec, &method, template);
        assert!(op.is_object(), "{method} {template} is not documented");
        if let Auth::AsDocumented = request.auth {
            request.auth = if always_needs_token(op) {
                Auth::Bearer(self.node.admin_token())
            } else {
                Auth::Without
            };
        }
        let answer = send(self.node, &request);
        let what = format!(
            "{method} {} -> {} {}",
            request.path, answer.status, answer.text
        );
        assert!(
            !is_fallback(answer.status, &answer.body),
            "{what}: the router's fallback answered a documented route"
        );
        let documented = response(self.spec, &method, template, answer.status)
            .unwrap_or_else(|| panic!("{what}: status {} is not documented", answer.status));
        if let Some(content) = documented["content"].as_object() {
            let (media, media_type) = content.iter().next().expect("a media type");
            assert!(
                answer.content_type().starts_with(media.as_str()),
                "{what}: content-type {} is not the documented {media}",
                answer.content_type()
            );
            if media == "application/json" {
                if let Err(e) = check(self.spec, &media_type["schema"], &answer.body, "body") {
                    panic!("{what}: the body does not match the documented schema: {e}");
                }
            }
        }
        for (name, header) in documented["headers"].as_object().into_iter().flatten() {
            if header["required"] == true {
                assert!(
                    answer.header(name).is_some(),
                    "{what}: documented header {name} missing"
                );
            }
        }
        if let Some(code) = answer.body["error"]["code"].as_str() {
            let description = documented["description"].as_str().unwrap_or_default();
            assert!(
                backticked(description).contains(&code),
                "{what}: the documented {} response does not name `{code}`",
                answer.status
            );
            self.seen_codes.insert(code.to_string());
        }
        answer
    }

    /// Like `call`, and expects an error with this status and code.
    fn expect_error(
        &mut self,
        template: &str,
        request: Request,
        status: u16,
        code: &str,
    ) -> Answer {
        let what = format!("{} {}", request.method, request.path);
        let answer = self.call(template, request);
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {}",
            answer.text
        );
        answer
    }

    /// A code must be in the file's enum and, as `code`, in docs/API.md.
    fn assert_documented(&self, code: &str, enumeration: &BTreeSet<String>, what: &str) {
        assert!(
            enumeration.contains(code),
            "{what} `{code}` is not in docs/openapi.yaml"
        );
        assert!(
            self.api_md.contains(&format!("`{code}`")),
            "{what} `{code}` is not in docs/API.md"
        );
    }
}

/// Whether an operation's `security` requires the admin token (no `{}`
/// alternative).
fn always_needs_token(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|alternatives| {
        !alternatives.is_empty()
            && alternatives
                .iter()
                .all(|a| a.as_object().is_some_and(|a| a.contains_key("adminToken")))
    })
}

// ---------------------------------------------------------------------------
// The tests

#[test]
fn documented_operations_are_exactly_the_routers_routes() {
    let spec = spec();
    let documented = documented(&spec);
    let routes = router_routes();
    let routed: BTreeSet<(String, String)> = routes.keys().cloned().collect();
    assert!(routed.len() >= 12, "router parsed badly: {routes:?}");
    assert_eq!(
        documented,
        routed,
        "docs/openapi.yaml and router() in src/api/mod.rs differ\n  only documented: {:?}\n  only routed: {:?}",
        documented.difference(&routed).collect::<Vec<_>>(),
        routed.difference(&documented).collect::<Vec<_>>()
    );
    let api_md = read("docs/API.md");
    for (method, path) in &documented {
        assert!(
            api_md.contains(&format!("### {method} {path}")),
            "docs/API.md has no section `### {method} {path}`"
        );
    }
    // Queue-full answers carry Retry-After, and the file says so.
    let full = response(&spec, "POST", "/v1/results", 503).expect("503 of POST /v1/results");
    assert_eq!(full["headers"]["Retry-After"]["required"], true);
}

#[test]
fn every_operation_documents_the_guards_and_bodies_of_its_route() {
    let spec = spec();
    let scheme = &spec["components"]["securitySchemes"]["adminToken"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer")),
        "the adminToken security scheme is not HTTP bearer: {scheme}"
    );
    let names = |status: u16, method: &str, path: &str| -> Vec<String> {
        response(&spec, method, path, status)
            .and_then(|r| r["description"].as_str())
            .map(|d| backticked(d).into_iter().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut guarded = BTreeSet::new();
    for ((method, path), route) in router_routes() {
        let what = format!("{method} {path}");
        let op = operation(&spec, &method, &path);
        // Host and Origin are checked on every request.
        for code in ["forbidden_host", "forbidden_origin"] {
            assert!(
                names(403, &method, &path).iter().any(|c| c == code),
                "{what}: no documented 403 naming `{code}`"
            );
        }
        // Content-Type on every POST (and only there).
        let media = names(415, &method, &path);
        assert_eq!(
            media.iter().any(|c| c == "unsupported_media_type"),
            method == "POST",
            "{what}: 415 `unsupported_media_type` is documented for exactly the POSTs"
        );
        // The token.
        let security = op.get("security");
        let unauthorized = response(&spec, &method, &path, 401);
        match route.guard {
            Guard::Open => {
                assert!(security.is_none(), "{what} needs no token: {security:?}");
                assert!(unauthorized.is_none(), "{what} never answers 401");
            }
            Guard::Token | Guard::TokenInProduction => {
                guarded.insert(route.guard);
                let alternatives = security
                    .and_then(Value::as_array)
                    .unwrap_or_else(|| panic!("{what}: no `security`"));
                assert!(
                    alternatives.iter().any(|a| a == &json!({"adminToken": []})),
                    "{what}: `security` does not name adminToken: {alternatives:?}"
                );
                assert_eq!(
                    alternatives.contains(&json!({})),
                    route.guard == Guard::TokenInProduction,
                    "{what}: the token is optional ({{}} in `security`) exactly when only --production needs it"
                );
                assert_eq!(
                    alternatives.len(),
                    1 + usize::from(route.guard == Guard::TokenInProduction)
                );
                let unauthorized =
                    unauthorized.unwrap_or_else(|| panic!("{what}: no documented 401"));
                let description = unauthorized["description"].as_str().unwrap_or_default();
                assert!(
                    backticked(description).contains(&"unauthorized"),
                    "{what}: the 401 does not name `unauthorized`"
                );
                assert_eq!(
                    description.contains("--production"),
                    route.guard == Guard::TokenInProduction,
                    "{what}: the 401 says whether only --production needs the token"
                );
                assert_eq!(
                    unauthorized["headers"]["WWW-Authenticate"]["required"], true,
                    "{what}: 401 answers carry WWW-Authenticate"
                );
            }
        }
        // The body the handler reads.
        let body = op.get("requestBody").map(|b| resolve(&spec, b));
        match handler_body_kind(&route.handler) {
            "json" => {
                let body = body.unwrap_or_else(|| panic!("{what} reads a JSON body"));
                assert_eq!(body["required"], true, "{what}: its body is required");
                assert!(names(400, &method, &path)
                    .iter()
                    .any(|c| c == "invalid_json"));
                assert!(names(413, &method, &path)
                    .iter()
                    .any(|c| c == "body_too_large"));
            }
            "none" => {
                let body = body.unwrap_or_else(|| {
                    panic!("{what} takes an empty body or {{}}: document it as optional EmptyBody")
                });
                assert_ne!(body["required"], true, "{what}: its body is optional");
                let schema = resolve(&spec, &body["content"]["application/json"]["schema"]);
                assert_eq!(
                    schema["maxProperties"], 0,
                    "{what}: the body takes no field"
                );
                assert!(names(400, &method, &path)
                    .iter()
                    .any(|c| c == "invalid_json"));
                assert!(names(413, &method, &path)
                    .iter()
                    .any(|c| c == "body_too_large"));
            }
            _ => assert!(body.is_none(), "{what} reads no body: {body:?}"),
        }
    }
    assert_eq!(
        guarded,
        BTreeSet::from([Guard::Token, Guard::TokenInProduction]),
        "the token layers wrap no route"
    );
}

#[test]
fn error_codes_and_their_statuses_are_the_librarys() {
    let spec = spec();
    let library = library_codes();
    let lib_codes: BTreeSet<String> = library.keys().map(|c| c.to_string()).collect();
    let documented = error_codes(&spec);
    assert_eq!(
        lib_codes,
        documented,
        "error codes: only in ErrorCode::ALL: {:?}; only in docs/openapi.yaml: {:?}",
        lib_codes.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&lib_codes).collect::<Vec<_>>()
    );
    let statuses = documented_statuses(&spec);
    for (code, status) in &library {
        let found = statuses
            .get(*code)
            .unwrap_or_else(|| panic!("docs/openapi.yaml gives `{code}` no status (name it in a response or as `{status} `{code}``)"));
        let wrong: Vec<&(u16, String)> = found.iter().filter(|(s, _)| s != status).collect();
        assert!(
            wrong.is_empty(),
            "`{code}` has status {status}, but docs/openapi.yaml gives it {wrong:?}"
        );
    }

    // docs/API.md: one row `| `code` | status | …` per code, with its status,
    // and no row for a code that does not exist.
    let api_md = read("docs/API.md");
    let rows = api_md_error_rows(&api_md);
    for (code, status) in &library {
        assert_eq!(
            rows.get(*code),
            Some(&vec![*status]),
            "docs/API.md: `{code}` needs one error table row with status {status}"
        );
    }
    let stale: Vec<&String> = rows
        .keys()
        .filter(|c| !library.contains_key(c.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/API.md has error table rows for codes that do not exist: {stale:?}"
    );
}

#[test]
fn reason_codes_are_the_librarys() {
    let spec = spec();
    let api_md = read("docs/API.md");
    let schemas = &spec["components"]["schemas"];

    // Verification: the constant lists exactly what verify_reason_code returns.
    let verify: BTreeSet<String> = VERIFY_REASON_CODES.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        verify.len(),
        VERIFY_REASON_CODES.len(),
        "a verify reason code twice"
    );
    let reasons_rs = read("crates/fabstir-node/src/reasons.rs");
    let returned = arm_literals(function_body(&reasons_rs, "pub fn verify_reason_code("));
    assert!(
        returned.len() >= 5,
        "verify_reason_code parsed badly: {returned:?}"
    );
    assert_eq!(
        returned, verify,
        "VERIFY_REASON_CODES is not what verify_reason_code returns"
    );
    assert_eq!(
        enum_strings(&schemas["VerifyResponse"]["properties"]["reason_code"]),
        verify,
        "verify reason codes in docs/openapi.yaml"
    );

    // Settlement: Reason::ALL, as its code and as it serialises in responses.
    let mut settlement = BTreeSet::new();
    for reason in Reason::ALL {
        let code = reason.code();
        assert_eq!(
            serde_json::to_value(reason).expect("serialise"),
            json!(code),
            "{reason:?} serialises differently from its code"
        );
        assert!(settlement.insert(code.to_string()), "`{code}` twice");
    }
    assert_eq!(
        enum_strings(&schemas["SettlementReason"]),
        settlement,
        "settlement reason codes in docs/openapi.yaml"
    );
    for code in verify.iter().chain(&settlement) {
        assert!(
            api_md.contains(&format!("`{code}`")),
            "`{code}` is not in docs/API.md"
        );
    }
}

#[test]
fn the_node_answers_every_documented_route_and_accepts_the_examples() {
    let spec = spec();
    let dir = DataDir::new();
    let node = Node::start(
        dir.path(),
        &["--mock-proofs", "--allowed-origins", ALLOWED_ORIGIN],
    );
    let mut checker = Checker {
        spec: &spec,
        api_md: read("docs/API.md"),
        node: &node,
        seen_codes: BTreeSet::new(),
    };

    // (b) The result example first: the other routes need a proved job.
    let result = example_body(&spec, "POST", "/v1/results").expect("result example");
    let r = "/v1/results";
    let accepted = checker.call(r, Request::new("POST", r).json(&result));
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let job = result["job_id"]
        .as_str()
        .expect("string job id")
        .to_string();
    let tokens_used = result["tokens_used"].as_u64().expect("tokens_used");
    let proved = node.wait_proved(&job, Duration::from_secs(30));
    assert_eq!(proved["state"], "proved", "{proved}");

    // (a) + (b) Every documented operation, with its example body if it has
    // one; POSTs first, so that the GETs find what they create. The POSTs
    // run in path order: the example checkpoint comes before the example
    // settlement, which pays what the checkpoint did not claim.
    let (posts, others): (Vec<_>, Vec<_>) = documented(&spec)
        .into_iter()
        .partition(|(method, _)| method == "POST");
    // The example checkpoint: (tokens it claimed, its id).
    let mut claimed: Option<(u64, Value)> = None;
    for (method, template) in posts.into_iter().chain(others) {
        let path = template.replace("{job_id}", &job);
        let body = example_body(&spec, &method, &template);
        let mut request = Request::new(&method, &path);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let answer = checker.call(&template, request);
        assert!(
            answer.status < 400,
            "{method} {path} (example body {body:?}) -> {} {}",
            answer.status,
            answer.text
        );
        match (method.as_str(), template.as_str()) {
            ("POST", "/v1/verify") => {
                // The example is a circuit version 1 proof under the
                // development SRS: the node derives that key next to its own.
                let example_vk = &body.as_ref().expect("verify example")["proof"]["vk_id"];
                let v1_vk = common::read_repo_file("crates/fabstir-zk/tests/data/vk_id_v1.txt");
                if *example_vk == node.startup["vk_id"] || *example_vk == v1_vk.trim() {
                    assert_eq!(answer.body["valid"], true, "{}", answer.text);
                }
            }
            ("POST", "/v1/checkpoints") => {
                // The job's first checkpoint claims its whole cumulative count.
                let processed = body.as_ref().expect("checkpoint example")["tokens_processed"]
                    .as_u64()
                    .expect("tokens_processed");
                assert_eq!(answer.status, 201, "{}", answer.text);
                assert_eq!(answer.body["tokens_claimed"], processed, "{}", answer.text);
                claimed = Some((processed, answer.body["id"].clone()));
            }
            ("POST", "/v1/settlements/{job_id}") => {
                let (claimed, _) = claimed
                    .clone()
                    .expect("the example checkpoint ran before the settlement");
                assert_eq!(answer.body["outcome"], "settled", "{}", answer.text);
                assert_eq!(
                    (&answer.body["checkpoint_tokens"], &answer.body["tokens"]),
                    (&json!(claimed), &json!(tokens_used - claimed)),
                    "the settlement pays what the checkpoint did not claim: {}",
                    answer.text
                );
            }
            ("POST", "/v1/admin/keys/reload") => {
                assert_eq!(
                    answer.body["vk_id"], node.startup["vk_id"],
                    "{}",
                    answer.text
                );
            }
            ("GET", "/health") => {
                assert_eq!(answer.body["status"], "ok", "{}", answer.text);
            }
            _ => {}
        }
    }

    // (a) A documented path with a method it does not document: 405 (not the
    // fallback), and `Allow` names exactly the documented methods (HEAD
    // comes with GET).
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (method, path) in documented(&spec) {
        by_path.entry(path).or_default().insert(method);
    }
    for (template, methods) in &by_path {
        let path = template.replace("{job_id}", &job);
        for method in ["GET", "POST", "PUT", "DELETE"] {
            if methods.contains(method) {
                continue;
            }
            let answer = send(&node, &Request::new(method, &path));
            assert_eq!(
                (answer.status, answer.body["error"]["code"].as_str()),
                (405, Some("method_not_allowed")),
                "{method} {path}: {}",
                answer.text
            );
            let mut expected = methods.clone();
            if methods.contains("GET") {
                expected.insert("HEAD".into());
            }
            let allowed: BTreeSet<String> = answer
                .header("allow")
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            assert_eq!(allowed, expected, "{method} {path}: Allow header");
            checker.seen_codes.insert("method_not_allowed".into());
        }
    }
    // (a) Undocumented paths: the fallback.
    let documented_paths: BTreeSet<String> =
        documented(&spec).into_iter().map(|(_, p)| p).collect();
    for path in [
        "/",
        "/v1",
        "/v1/result",
        "/v1/proofs",
        "/v1/proofs/42/extra",
        "/v1/settlements",
        "/v1/admin/keys",
        "/v1/admin/keys/reload/now",
        "/v2/results",
        "/healthz",
        "/metrics/extra",
    ] {
        assert!(!documented_paths.contains(path));
        for method in ["GET", "POST"] {
            let answer = send(&node, &Request::new(method, path));
            assert!(
                is_fallback(answer.status, &answer.body),
                "{method} {path}: {} {}",
                answer.status,
                answer.text
            );
        }
    }
    checker.seen_codes.insert("not_found".into());

    // (c) Errors, each from the route that documents it.
    let with = |patch: &[(&str, Value)]| {
        let mut body = result.clone();
        for (k, v) in patch {
            body[*k] = v.clone();
        }
        body
    };
    let post = |path: &str| Request::new("POST", path);
    let get = |path: &str| Request::new("GET", path);
    checker.expect_error(
        r,
        post(r).body(Some(b"{not json".to_vec())),
        400,
        "invalid_json",
    );
    checker.expect_error(
        r,
        post(r).json(&with(&[("surprise", json!(1))])),
        400,
        "invalid_json",
    );
    // A repeated key is refused, naming it, before anything is stored.
    let text = json_bytes(&result);
    let mut repeated = br#"{"response": "The capital of France is Lyon.", "#.to_vec();
    repeated.extend_from_slice(&text[1..]);
    let answer = checker.expect_error(r, post(r).body(Some(repeated)), 400, "invalid_json");
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("response"),
        "the message names the key: {message}"
    );
    let mut no_model = result.clone();
    no_model.as_object_mut().expect("object").remove("model");
    checker.expect_error(r, post(r).json(&no_model), 400, "invalid_result");
    checker.expect_error(
        r,
        post(r).json(&with(&[("response", json!("Lyon"))])),
        409,
        "job_conflict",
    );
    // The same job (in its canonical spelling) with the same content.
    let duplicate = checker.call(
        r,
        post(r).json(&with(&[("job_id", accepted.body["job_id"].clone())])),
    );
    assert_eq!(
        (duplicate.status, &duplicate.body["duplicate"]),
        (202, &json!(true)),
        "{}",
        duplicate.text
    );
    checker.expect_error(
        r,
        post(r).body(Some(vec![b' '; 5 << 20])),
        413,
        "body_too_large",
    );
    let too_many = with(&[
        ("job_id", json!("0x70c")),
        ("tokens_used", json!(1u64 << 63)),
    ]);
    checker.expect_error(r, post(r).json(&too_many), 422, "tokens_out_of_range");
    // Content-Type: a form a web page could send without a preflight.
    checker.expect_error(
        r,
        post(r).json(&too_many).content_type(Some("text/plain")),
        415,
        "unsupported_media_type",
    );

    let p = "/v1/proofs/{job_id}";
    checker.expect_error(p, get("/v1/proofs/forty-two"), 400, "invalid_job_id");
    checker.expect_error(p, get("/v1/proofs/%ff"), 400, "invalid_job_id");
    checker.expect_error(p, get("/v1/proofs/999"), 404, "unknown_job");

    let v = "/v1/verify";
    let verify = example_body(&spec, "POST", v).expect("verify example");
    let mut bad = verify.clone();
    bad["host_id"] = json!("zz");
    checker.expect_error(v, post(v).json(&bad), 400, "invalid_host_id");
    let mut bad = verify.clone();
    bad["proof"] = proved["proof"].clone(); // a mock proof
    checker.expect_error(v, post(v).json(&bad), 400, "malformed_proof");
    let mut bad = verify.clone();
    bad["result"].as_object_mut().unwrap().remove("tokens_used");
    checker.expect_error(v, post(v).json(&bad), 400, "invalid_result");
    let mut tampered = verify.clone();
    tampered["result"]["response"] = json!("The capital of France is Lyon.");
    let verdict = checker.call(v, post(v).json(&tampered));
    assert_eq!(verdict.body["valid"], false, "{}", verdict.text);
    let reason_codes =
        enum_strings(&spec["components"]["schemas"]["VerifyResponse"]["properties"]["reason_code"]);
    let reason = verdict.body["reason_code"].as_str().expect("reason_code");
    checker.assert_documented(reason, &reason_codes, "verify reason code");

    // Checkpoints: cumulative counts, each claiming the increase.
    let c = "/v1/checkpoints";
    let checkpoint =
        |job: &str, tokens: u64| post(c).json(&json!({"job_id": job, "tokens_processed": tokens}));
    // The example job is settled (in the loop above): nothing more to claim,
    // but its existing checkpoint is still returned as stored.
    checker.expect_error(c, checkpoint(&job, tokens_used), 409, "job_settled");
    let (example_tokens, example_id) = claimed.expect("the example checkpoint ran");
    let again = checker.call(c, checkpoint(&job, example_tokens));
    assert_eq!(
        (again.status, &again.body["id"]),
        (200, &example_id),
        "{}",
        again.text
    );
    checker.expect_error(c, checkpoint("999", 1), 404, "unknown_job");
    checker.expect_error(
        c,
        post(c).json(&json!({"job_id": "x", "tokens_processed": 1})),
        400,
        "invalid_json",
    );
    let second = "0x2b";
    let answer = checker.call(r, post(r).json(&with(&[("job_id", json!(second))])));
    assert_eq!(answer.status, 202, "{}", answer.text);
    node.wait_proved(second, Duration::from_secs(30));
    checker.expect_error(c, checkpoint(second, 0), 409, "tokens_not_increasing");
    checker.expect_error(
        c,
        checkpoint(second, tokens_used + 1),
        409,
        "tokens_exceed_used",
    );
    let first = checker.call(c, checkpoint(second, 30));
    assert_eq!(
        (first.status, &first.body["tokens_claimed"]),
        (201, &json!(30)),
        "{}",
        first.text
    );
    checker.expect_error(c, checkpoint(second, 20), 409, "tokens_not_increasing");
    let repeat = checker.call(c, checkpoint(second, 30));
    assert_eq!(
        (repeat.status, &repeat.body["id"]),
        (200, &first.body["id"]),
        "{}",
        repeat.text
    );
    let later = checker.call(c, checkpoint(second, 100));
    assert_eq!(
        (later.status, &later.body["tokens_claimed"]),
        (201, &json!(70)),
        "{}",
        later.text
    );
    assert_ne!(
        later.body["proof_hash"], first.body["proof_hash"],
        "each checkpoint has its own proofHash"
    );
    let s = "/v1/settlements/{job_id}";
    let settled = checker.call(s, post(&format!("/v1/settlements/{second}")));
    assert_eq!(
        (&settled.body["tokens"], &settled.body["checkpoint_tokens"]),
        (&json!(tokens_used - 100), &json!(100)),
        "{}",
        settled.text
    );
    checker.expect_error(c, checkpoint(second, 110), 409, "job_settled");
    // A result naming its model by hash needs a model_id.
    let mut hashed = result.clone();
    let hashed_job = "0x7e57";
    hashed["job_id"] = json!(hashed_job);
    hashed.as_object_mut().expect("object").remove("model");
    hashed["model_hash"] = json!(format!("0x{}", "ab".repeat(32)));
    let answer = checker.call(r, post(r).json(&hashed));
    assert_eq!(answer.status, 202, "{}", answer.text);
    node.wait_proved(hashed_job, Duration::from_secs(30));
    checker.expect_error(c, checkpoint(hashed_job, 1), 422, "model_id_required");
    let g = "/v1/checkpoints/{job_id}";
    checker.expect_error(g, get("/v1/checkpoints/0xg"), 400, "invalid_job_id");

    checker.expect_error(s, post("/v1/settlements/999"), 404, "unknown_job");
    checker.expect_error(s, get("/v1/settlements/999"), 404, "not_settled");
    checker.expect_error(s, get("/v1/settlements/-1"), 400, "invalid_job_id");
    // No body, or {}; a field is refused, and so is a body without JSON's content type.
    let own = format!("/v1/settlements/{job}");
    checker.expect_error(
        s,
        post(&own).json(&json!({"force": true})),
        400,
        "invalid_json",
    );
    checker.expect_error(
        s,
        post(&own).content_type(None),
        415,
        "unsupported_media_type",
    );

    let b = "/v1/settlements/validate";
    let ids = |ids: Value| post(b).json(&json!({ "job_ids": ids }));
    checker.expect_error(b, ids(json!(vec!["1"; 10_001])), 400, "batch_too_large");
    checker.expect_error(b, ids(json!(["42", "x"])), 400, "invalid_job_id");
    checker.expect_error(b, ids(json!([42])), 400, "invalid_json");
    let validated = checker.call(b, ids(json!([job, "999"])));
    let settlement_reasons = enum_strings(&spec["components"]["schemas"]["SettlementReason"]);
    for validation in validated.body["validations"]
        .as_array()
        .expect("validations")
    {
        if let Some(reason) = validation["reason"].as_str() {
            checker.assert_documented(reason, &settlement_reasons, "settlement reason");
        }
    }

    // The admin route: the token, always; Content-Type even without a body.
    let a = "/v1/admin/keys/reload";
    for auth in [Auth::Without, Auth::Bearer("0".repeat(64))] {
        let answer = checker.expect_error(a, post(a).auth(auth), 401, "unauthorized");
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "WWW-Authenticate: {challenge:?}"
        );
    }
    checker.expect_error(a, post(a).content_type(None), 415, "unsupported_media_type");
    checker.expect_error(a, post(a).json(&json!({"now": true})), 400, "invalid_json");
    let reloaded = checker.call(a, post(a).json(&json!({})));
    assert_eq!(reloaded.status, 200, "{}", reloaded.text);

    // Host: a DNS-rebound name is refused on every route, before anything
    // runs; the listen address and localhost are this node.
    let rebound = "rebind.attacker.test";
    checker.expect_error(
        "/health",
        get("/health").header("host", rebound),
        403,
        "forbidden_host",
    );
    checker.expect_error(
        r,
        post(r).json(&too_many).header("host", rebound),
        403,
        "forbidden_host",
    );
    let port = node.base.rsplit(':').next().expect("port").to_string();
    let local = checker.call(
        "/health",
        get("/health").header("host", &format!("localhost:{port}")),
    );
    assert_eq!(local.status, 200, "{}", local.text);
    // Origin: only the configured one, which gets CORS headers.
    let proof_path = format!("/v1/proofs/{job}");
    checker.expect_error(
        p,
        get(&proof_path).header("origin", "https://evil.example.test"),
        403,
        "forbidden_origin",
    );
    checker.expect_error(
        c,
        checkpoint(second, 120).header("origin", "null"),
        403,
        "forbidden_origin",
    );
    let allowed = checker.call(p, get(&proof_path).header("origin", ALLOWED_ORIGIN));
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some(ALLOWED_ORIGIN)
    );

    // (c) Every error code seen is documented; the new ones were all seen.
    let codes = error_codes(&spec);
    let seen = std::mem::take(&mut checker.seen_codes);
    for code in &seen {
        checker.assert_documented(code, &codes, "error code");
    }
    let expected: BTreeSet<String> = [
        "invalid_json",
        "invalid_job_id",
        "invalid_result",
        "malformed_proof",
        "invalid_host_id",
        "batch_too_large",
        "unauthorized",
        "forbidden_host",
        "forbidden_origin",
        "not_found",
        "unknown_job",
        "not_settled",
        "method_not_allowed",
        "job_conflict",
        "tokens_not_increasing",
        "tokens_exceed_used",
        "job_settled",
        "body_too_large",
        "unsupported_media_type",
        "tokens_out_of_range",
        "model_id_required",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    let missed: Vec<&String> = expected.difference(&seen).collect();
    assert!(missed.is_empty(), "errors not exercised: {missed:?}");
}

/// Polls `/health` until `done` holds for its body.
fn wait_health(node: &Node, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, health) = node.get("/health");
        if done(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "{what}: {health}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

#[cfg(unix)]
#[test]
fn health_turns_degraded_when_the_key_directory_stops_loading() {
    let spec = spec();
    let dir = DataDir::new();
    let node = Node::start(
        dir.path(),
        &["--mock-proofs", "--health-interval-ms", "100"],
    );
    let mut checker = Checker {
        spec: &spec,
        api_md: read("docs/API.md"),
        node: &node,
        seen_codes: BTreeSet::new(),
    };
    let h = "/health";
    let e = "/health/ezkl";
    let a = "/v1/admin/keys/reload";
    let keys_ok = "fabstir_health_ok{check=\"keys\"}";
    let healthy = checker.call(h, Request::new("GET", h));
    assert_eq!(
        (healthy.status, &healthy.body["status"]),
        (200, &json!("ok")),
        "{}",
        healthy.text
    );
    assert_eq!(node.metric(keys_ok), Some(1.0));

    // A secret key file readable by others: a restart would fail.
    let proving_key = dir.path().join("keys").join("proving.key");
    chmod(&proving_key, 0o644);
    wait_health(&node, "keys never failed", |h| {
        h["checks"]["keys"]["ok"] == false
    });
    let degraded = checker.call(h, Request::new("GET", h));
    assert_eq!(
        (degraded.status, &degraded.body["status"]),
        (200, &json!("degraded")),
        "{}",
        degraded.text
    );
    let detail = degraded.body["checks"]["keys"]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(
        detail.contains("proving.key"),
        "the detail names the file: {detail}"
    );
    assert_eq!(degraded.body["checks"]["database"]["ok"], true);
    let ezkl = checker.call(e, Request::new("GET", e));
    assert_eq!(
        (
            &ezkl.body["status"],
            &ezkl.body["keys_loaded"],
            &ezkl.body["keys"]["ok"]
        ),
        (&json!("degraded"), &json!(false), &json!(false)),
        "{}",
        ezkl.text
    );
    assert_eq!(node.metric(keys_ok), Some(0.0));
    // A reload fails too, and is recorded; the old keys stay in use.
    checker.expect_error(a, Request::new("POST", a), 422, "key_reload_failed");
    let health = wait_health(&node, "the reload failure is not reported", |h| {
        h["checks"]["key_reload"]["ok"] == false
    });
    assert!(
        health["checks"]["key_reload"]["checked_at_ms"].is_i64(),
        "{health}"
    );

    // Fixed: the directory loads again, but the failed reload still needs a
    // successful one before the node is `ok`.
    chmod(&proving_key, 0o400);
    let health = wait_health(&node, "keys never recovered", |h| {
        h["checks"]["keys"]["ok"] == true
    });
    assert_eq!(health["status"], "degraded", "{health}");
    let reloaded = checker.call(a, Request::new("POST", a));
    assert_eq!(reloaded.status, 200, "{}", reloaded.text);
    let recovered = checker.call(h, Request::new("GET", h));
    assert_eq!(
        (recovered.status, &recovered.body["status"]),
        (200, &json!("ok")),
        "{}",
        recovered.text
    );
    assert_eq!(node.metric(keys_ok), Some(1.0));
    let ezkl = checker.call(e, Request::new("GET", e));
    assert_eq!(ezkl.body["keys_loaded"], true, "{}", ezkl.text);
}
