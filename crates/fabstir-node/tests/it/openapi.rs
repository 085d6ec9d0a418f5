//! Keeps `docs/openapi.yaml` (and the codes in `docs/API.md`) honest. It
//! reads no source code: the node is started and called.
//!
//! - a running node answers every documented (method, path) (never with the
//!   router's fallback, never 405) and accepts every `example` request body;
//!   a documented path answers 405 to the methods it does not document, with
//!   `Allow` naming the documented ones, and undocumented paths get the
//!   fallback; every status it answers with is documented for its route, its
//!   JSON body validates (`jsonschema`) against the documented schema, an
//!   error's code is named in the documented response, and every error
//!   answer is JSON;
//! - every operation answers the guards it documents: 403 `forbidden_host`
//!   and `forbidden_origin` everywhere, 415 on every POST, 401 with a Bearer
//!   challenge where its `security` asks for the `adminToken` (always, or
//!   only with `--production`: asked of a development and a production
//!   node); a documented body is read as documented (required JSON, or an
//!   optional empty one: 400 `invalid_json`, 413 `body_too_large`), an
//!   undocumented one is not read;
//! - the error codes are exactly `fabstir_node::api::ErrorCode::ALL`, and
//!   wherever the file (or `docs/API.md`'s error table) gives a code a
//!   status, it is the code's `status()`; the verification and settlement
//!   reason codes are those of `fabstir_node::reasons`;
//! - strict JSON and the cumulative checkpoint rules answer as documented;
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
// Checking JSON against the file's schemas (the `jsonschema` crate)

/// An OpenAPI 3.0 schema (or any part of the file) as JSON Schema 2020-12:
/// `nullable: true` admits null (in `type`, and in `enum` if it has one; a
/// schema without `type` gets a null branch). The rest of the file's schema
/// keywords mean the same in both.
fn json_schema(node: &Value) -> Value {
    match node {
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .filter(|(key, _)| key.as_str() != "nullable")
                .map(|(key, value)| (key.clone(), json_schema(value)))
                .collect();
            if map.get("nullable") == Some(&Value::Bool(true)) {
                let Some(Value::String(kind)) = out.get("type").cloned() else {
                    return json!({"anyOf": [Value::Object(out), {"type": "null"}]});
                };
                out.insert("type".into(), json!([kind, "null"]));
                if let Some(Value::Array(values)) = out.get_mut("enum") {
                    if !values.contains(&Value::Null) {
                        values.push(Value::Null);
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Validates JSON against the file's schemas, `$ref`s to its components
/// resolved.
struct Schemas {
    /// `components`, as JSON Schema.
    components: Value,
}

impl Schemas {
    fn new(spec: &Value) -> Self {
        Self {
            components: json_schema(&spec["components"]),
        }
    }

    /// Every way `value` breaks `schema` (a schema of the file, as written
    /// there), one per line; `Ok` if none.
    fn validate(&self, schema: &Value, value: &Value) -> Result<(), String> {
        let mut root = match json_schema(schema) {
            Value::Object(root) => root,
            other => panic!("a schema that is not an object: {other}"),
        };
        root.insert("components".into(), self.components.clone());
        let validator = jsonschema::draft202012::new(&Value::Object(root))
            .unwrap_or_else(|e| panic!("docs/openapi.yaml: a schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| format!("at `{}`: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }
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
    schemas: Schemas,
    api_md: String,
    node: &'a Node,
    /// Error codes seen.
    seen_codes: BTreeSet<String>,
}

impl<'a> Checker<'a> {
    fn new(spec: &'a Value, node: &'a Node) -> Self {
        Self {
            spec,
            schemas: Schemas::new(spec),
            api_md: read("docs/API.md"),
            node,
            seen_codes: BTreeSet::new(),
        }
    }

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
                if let Err(e) = self.schemas.validate(&media_type["schema"], &answer.body) {
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
fn documented_operations_have_their_sections_and_headers() {
    // That the node answers exactly these operations is checked by calling
    // them (`the_node_answers_every_documented_route_and_accepts_the_examples`).
    let spec = spec();
    let documented = documented(&spec);
    assert!(documented.len() >= 12, "{documented:?}");
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
fn every_schema_of_the_file_compiles_and_refuses_what_it_does_not_allow() {
    let spec = spec();
    let schemas = Schemas::new(&spec);
    for (name, schema) in spec["components"]["schemas"].as_object().expect("schemas") {
        // Compiles (or `validate` panics naming the problem); its example,
        // if it has one, fits it.
        let example = schema.get("example");
        let fits = schemas.validate(schema, example.unwrap_or(&Value::Null));
        if let (Some(example), Err(e)) = (example, fits) {
            panic!("docs/openapi.yaml: the example of {name} does not fit it: {e}\n{example}");
        }
    }
    let error = json!({"$ref": "#/components/schemas/Error"});
    let valid = json!({"error": {"code": "unknown_job", "message": "no such job"}});
    assert_eq!(schemas.validate(&error, &valid), Ok(()));
    for (broken, what) in [
        (
            json!({"error": {"code": "no_such_code", "message": "m"}}),
            "enum",
        ),
        (json!({"error": {"code": "unknown_job"}}), "required"),
        (
            json!({"error": {"code": "unknown_job", "message": 1}}),
            "type",
        ),
        (
            json!({"error": {"code": "unknown_job", "message": "m"}, "x": 1}),
            "additionalProperties",
        ),
        (json!(null), "null"),
    ] {
        assert!(
            schemas.validate(&error, &broken).is_err(),
            "{what}: {broken} passed"
        );
    }
    // nullable: null where the file allows it, and only there.
    let request = json!({"$ref": "#/components/schemas/CheckpointRequest"});
    let base = json!({"job_id": "42", "tokens_processed": 1});
    assert_eq!(schemas.validate(&request, &base), Ok(()));
    let mut nullable = base.clone();
    nullable["model_id"] = Value::Null;
    assert_eq!(schemas.validate(&request, &nullable), Ok(()));
    let mut pattern = base.clone();
    pattern["model_id"] = json!("0x12");
    assert!(schemas.validate(&request, &pattern).is_err(), "pattern");
    let mut not_nullable = base;
    not_nullable["tokens_processed"] = Value::Null;
    assert!(schemas.validate(&request, &not_nullable).is_err(), "null");
    let reason = json!({"$ref": "#/components/schemas/SettlementReason"});
    assert_eq!(schemas.validate(&reason, &Value::Null), Ok(()));
    assert!(schemas.validate(&reason, &json!("no_such_reason")).is_err());
}

/// The bearer-token guard a route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Guard {
    /// No token needed.
    Open,
    /// A token only with `--production`.
    TokenInProduction,
    /// Always a token.
    Token,
}

/// A body larger than the node's default limit (`max_body_bytes`, 4 MiB).
fn too_large() -> Vec<u8> {
    vec![b' '; 5 << 20]
}

/// Whether a call without the token (and one with a wrong token) is refused
/// with 401 `unauthorized` and a Bearer challenge.
fn needs_token(checker: &mut Checker, template: &str, request: &Request) -> bool {
    let without = checker.call(template, request.clone().auth(Auth::Without));
    if without.status != 401 {
        return false;
    }
    let wrong = request.clone().auth(Auth::Bearer("0".repeat(64)));
    for answer in [without, checker.call(template, wrong)] {
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{} {template}: {}",
            request.method,
            answer.text
        );
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "{} {template}: WWW-Authenticate {challenge:?}",
            request.method
        );
    }
    true
}

#[test]
fn every_route_answers_the_guards_and_bodies_its_operation_documents() {
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
    let development_dir = DataDir::new();
    let development = Node::start(development_dir.path(), &["--mock-proofs"]);
    let production_dir = DataDir::new();
    common::ceremony_keygen(production_dir.path());
    let production = common::start_production(production_dir.path());
    let mut on_development = Checker::new(&spec, &development);
    let mut on_production = Checker::new(&spec, &production);
    let mut guarded = BTreeSet::new();
    for (method, template) in documented(&spec) {
        let what = format!("{method} {template}");
        let op = operation(&spec, &method, &template);
        let request = Request::new(&method, &template.replace("{job_id}", "1"));
        let refused = |answer: &Answer, codes: &[&str]| {
            answer
                .body
                .pointer("/error/code")
                .and_then(Value::as_str)
                .is_some_and(|code| codes.contains(&code))
        };

        // Host and Origin are checked on every request.
        for code in ["forbidden_host", "forbidden_origin"] {
            assert!(
                names(403, &method, &template).iter().any(|c| c == code),
                "{what}: no documented 403 naming `{code}`"
            );
        }
        on_development.expect_error(
            &template,
            request.clone().header("host", "rebind.attacker.test"),
            403,
            "forbidden_host",
        );
        on_development.expect_error(
            &template,
            request
                .clone()
                .header("origin", "https://evil.example.test"),
            403,
            "forbidden_origin",
        );

        // Content-Type: JSON's on every POST (and only there).
        let is_post = method == "POST";
        assert_eq!(
            names(415, &method, &template)
                .iter()
                .any(|c| c == "unsupported_media_type"),
            is_post,
            "{what}: 415 `unsupported_media_type` is documented for exactly the POSTs"
        );
        let plain = request
            .clone()
            .json(&json!({}))
            .content_type(Some("text/plain"));
        if is_post {
            on_development.expect_error(&template, plain, 415, "unsupported_media_type");
        } else {
            let answer = on_development.call(&template, plain);
            assert_ne!(answer.status, 415, "{what}: {}", answer.text);
        }

        // The token: asked of a development node and of a production node.
        let guard = match (
            needs_token(&mut on_development, &template, &request),
            needs_token(&mut on_production, &template, &request),
        ) {
            (false, false) => Guard::Open,
            (false, true) => Guard::TokenInProduction,
            (true, true) => Guard::Token,
            (true, false) => panic!("{what} needs a token on a development node only"),
        };
        let security = op.get("security");
        let unauthorized = response(&spec, &method, &template, 401);
        match guard {
            Guard::Open => {
                assert!(security.is_none(), "{what} needs no token: {security:?}");
                assert!(unauthorized.is_none(), "{what} never answers 401");
            }
            Guard::Token | Guard::TokenInProduction => {
                guarded.insert(guard);
                let alternatives = security
                    .and_then(Value::as_array)
                    .unwrap_or_else(|| panic!("{what}: no `security`"));
                assert!(
                    alternatives.iter().any(|a| a == &json!({"adminToken": []})),
                    "{what}: `security` does not name adminToken: {alternatives:?}"
                );
                assert_eq!(
                    alternatives.contains(&json!({})),
                    guard == Guard::TokenInProduction,
                    "{what}: the token is optional ({{}} in `security`) exactly when only --production needs it"
                );
                assert_eq!(
                    alternatives.len(),
                    1 + usize::from(guard == Guard::TokenInProduction)
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
                    guard == Guard::TokenInProduction,
                    "{what}: the 401 says whether only --production needs the token"
                );
                assert_eq!(
                    unauthorized["headers"]["WWW-Authenticate"]["required"], true,
                    "{what}: 401 answers carry WWW-Authenticate"
                );
            }
        }

        // The body, as the development node reads it (with the token where
        // it always needs one).
        let unexpected = request.clone().json(&json!({"unexpected": true}));
        match op.get("requestBody").map(|b| resolve(&spec, b)) {
            None => {
                // No body: one sent is not read.
                let answer = on_development.call(&template, unexpected);
                assert!(
                    !refused(&answer, &["invalid_json"]),
                    "{what} documents no body, but reads one: {}",
                    answer.text
                );
            }
            Some(body) => {
                for (status, code) in [(400, "invalid_json"), (413, "body_too_large")] {
                    assert!(
                        names(status, &method, &template).iter().any(|c| c == code),
                        "{what} reads a body: no documented {status} naming `{code}`"
                    );
                }
                on_development.expect_error(&template, unexpected, 400, "invalid_json");
                let oversized = request.clone().body(Some(too_large()));
                on_development.expect_error(&template, oversized, 413, "body_too_large");
                if body["required"] == true {
                    // A JSON body, required.
                    on_development.expect_error(&template, request.clone(), 400, "invalid_json");
                } else {
                    // No field: nothing, or {}.
                    let schema = resolve(&spec, &body["content"]["application/json"]["schema"]);
                    assert_eq!(
                        schema["maxProperties"], 0,
                        "{what}: an optional body takes no field"
                    );
                    for empty in [request.clone(), request.clone().json(&json!({}))] {
                        let answer = on_development.call(&template, empty);
                        assert!(
                            !refused(&answer, &["invalid_json", "body_too_large"]),
                            "{what}: its optional body refused: {}",
                            answer.text
                        );
                    }
                }
            }
        }
    }
    assert_eq!(
        guarded,
        BTreeSet::from([Guard::Token, Guard::TokenInProduction]),
        "no route needs the token always and another only in production"
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

    // Verification: VERIFY_REASON_CODES (that it lists exactly what
    // `verify_reason_code` returns is a unit test of `reasons`).
    let verify: BTreeSet<String> = VERIFY_REASON_CODES.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        verify.len(),
        VERIFY_REASON_CODES.len(),
        "a verify reason code twice"
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
    let mut checker = Checker::new(&spec, &node);

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
        if template == "/v1/batches/{id}" {
            // A node without a chain has no batches: the documented 404
            // (chain_anvil's batch test reads a real one).
            assert_eq!(answer.status, 404, "{method} {path}");
            continue;
        }
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
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
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
    let mut checker = Checker::new(&spec, &node);
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
