//! Keeps `docs/openapi.yaml` (and the codes in `docs/API.md`) honest:
//!
//! - the documented (method, path) pairs are exactly the router's routes,
//!   and a running node answers each of them (never with the router's
//!   fallback), while undocumented paths get the fallback;
//! - every `example` request body in the file is accepted by the node;
//! - every status the node answers with is documented for its route, and
//!   its JSON body has the documented shape;
//! - every error code and reason code, whether seen in these requests or
//!   found in the source, is documented in both files.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{DataDir, Node};
use serde_json::{json, Value};

const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "options"];

/// The router's answer to a path it does not know.
fn is_fallback(status: u16, body: &Value) -> bool {
    status == 404 && *body == json!({"error": {"code": "not_found", "message": "no such route"}})
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

/// The string literals directly inside each call `call(...)` in `text`
/// (the first one per call; nested calls and `format!` arguments skipped).
fn first_literal_args(text: &str, call: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (start, _) in text.match_indices(call) {
        let mut depth = 1usize;
        let mut chars = text[start + call.len()..].chars();
        let mut literal: Option<String> = None;
        while let Some(c) = chars.next() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                '"' => {
                    let mut s = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '"' => break,
                            c => s.push(c),
                        }
                    }
                    if depth == 1 && literal.is_none() {
                        literal = Some(s);
                    }
                }
                _ => {}
            }
        }
        found.extend(literal);
    }
    found
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

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
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

/// Every `.route(path, method(handler)...)` in `router()` of `src/http.rs`.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = read("crates/fabstir-node/src/http.rs");
    let body = function_body(&source, "pub fn router(");
    let body = &body[..body.find(".fallback(").expect("router has a fallback")];
    let mut routes = BTreeSet::new();
    for chunk in body.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).expect("route path literal");
        for method in METHODS {
            let call = format!("{method}(");
            let calls = chunk.match_indices(&call).any(|(i, _)| {
                i == 0 || {
                    let before = chunk.as_bytes()[i - 1];
                    !(before.is_ascii_alphanumeric() || before == b'_')
                }
            });
            if calls {
                routes.insert((method.to_uppercase(), path.to_string()));
            }
        }
    }
    routes
}

/// Every `src/**/*.rs` file.
fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Checks `value` against a schema of the file: types, `required`,
/// `additionalProperties: false`, `enum`, `nullable`, `items`, `oneOf`,
/// `anyOf`, `allOf` (not patterns or bounds).
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

/// A response, with its raw text.
struct Answer {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    allow: Option<String>,
    text: String,
    body: Value,
}

fn send(node: &Node, method: &str, path: &str, body: Option<Vec<u8>>) -> Answer {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, node.url(path));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().expect("request");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let allow = header("allow");
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        retry_after,
        allow,
        text,
        body,
    }
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialise")
}

/// Requests against one node, checked against the file as they go.
struct Checker<'a> {
    spec: &'a Value,
    api_md: String,
    node: &'a Node,
    /// Error codes seen, with the request that produced them.
    seen_codes: BTreeSet<String>,
}

impl Checker<'_> {
    /// Sends a request to a documented operation (`template` is the
    /// documented path, `path` the concrete one) and checks that the status
    /// is documented for it and the body has the documented shape.
    fn call(&mut self, method: &str, template: &str, path: &str, body: Option<Vec<u8>>) -> Answer {
        let answer = send(self.node, method, path, body);
        let what = format!("{method} {path} -> {} {}", answer.status, answer.text);
        assert!(
            !is_fallback(answer.status, &answer.body),
            "{what}: the router's fallback answered a documented route"
        );
        let op = operation(self.spec, method, template);
        assert!(op.is_object(), "{method} {template} is not documented");
        let response = op["responses"]
            .get(answer.status.to_string())
            .map(|r| resolve(self.spec, r))
            .unwrap_or_else(|| panic!("{what}: status {} is not documented", answer.status));
        if let Some(content) = response["content"].as_object() {
            let (media, media_type) = content.iter().next().expect("a media type");
            assert!(
                answer.content_type.starts_with(media.as_str()),
                "{what}: content-type {} is not the documented {media}",
                answer.content_type
            );
            if media == "application/json" {
                if let Err(e) = check(self.spec, &media_type["schema"], &answer.body, "body") {
                    panic!("{what}: the body does not match the documented schema: {e}");
                }
            }
        }
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            if header["required"] == true {
                let value = if name.eq_ignore_ascii_case("retry-after") {
                    answer.retry_after.clone()
                } else {
                    None
                };
                assert!(value.is_some(), "{what}: documented header {name} missing");
            }
        }
        if let Some(code) = answer.body["error"]["code"].as_str() {
            self.seen_codes.insert(code.to_string());
        }
        answer
    }

    /// Like `call`, and expects an error with this status and code.
    fn expect_error(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Vec<u8>>,
        status: u16,
        code: &str,
    ) {
        let answer = self.call(method, template, path, body);
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {}",
            answer.text
        );
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

#[test]
fn documented_operations_are_exactly_the_routers_routes() {
    let spec = spec();
    let documented = documented(&spec);
    let routes = router_routes();
    assert!(routes.len() >= 12, "router parsed badly: {routes:?}");
    assert_eq!(
        documented,
        routes,
        "docs/openapi.yaml and router() in src/http.rs differ\n  only documented: {:?}\n  only routed: {:?}",
        documented.difference(&routes).collect::<Vec<_>>(),
        routes.difference(&documented).collect::<Vec<_>>()
    );
    let api_md = read("docs/API.md");
    for (method, path) in &documented {
        assert!(
            api_md.contains(&format!("### {method} {path}")),
            "docs/API.md has no section `### {method} {path}`"
        );
    }
    // Queue-full answers carry Retry-After, and the file says so.
    let full = resolve(
        &spec,
        &operation(&spec, "POST", "/v1/results")["responses"]["503"],
    );
    assert_eq!(full["headers"]["Retry-After"]["required"], true);
}

#[test]
fn every_code_in_the_source_is_documented() {
    let spec = spec();
    let api_md = read("docs/API.md");
    let mut files = Vec::new();
    source_files(&repo_root().join("crates/fabstir-node/src"), &mut files);
    let mut codes = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source file");
        let mut calls = vec!["ApiError::new(", "ApiError::bad_request("];
        if file.ends_with("http.rs") {
            calls.push("Self::new(");
        }
        for call in calls {
            codes.extend(
                first_literal_args(&text, call)
                    .into_iter()
                    .filter(|s| is_code(s)),
            );
        }
    }
    assert!(
        codes.contains("not_found") && codes.contains("queue_full") && codes.len() >= 15,
        "error codes parsed badly: {codes:?}"
    );
    let documented = error_codes(&spec);
    assert_eq!(
        codes,
        documented,
        "error codes: only in the source: {:?}; only in docs/openapi.yaml: {:?}",
        codes.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&codes).collect::<Vec<_>>()
    );

    let http = read("crates/fabstir-node/src/http.rs");
    let verify_codes = arm_literals(function_body(&http, "pub fn verify_reason_code("));
    let settlement = read("crates/fabstir-node/src/settlement.rs");
    let reasons = arm_literals(function_body(&settlement, "pub fn code(self)"));
    let schemas = &spec["components"]["schemas"];
    for (found, schema, what) in [
        (
            &verify_codes,
            &schemas["VerifyResponse"]["properties"]["reason_code"],
            "verify reason codes",
        ),
        (
            &reasons,
            &schemas["SettlementReason"],
            "settlement reason codes",
        ),
    ] {
        assert!(found.len() >= 5, "{what} parsed badly: {found:?}");
        assert_eq!(*found, enum_strings(schema), "{what}");
    }
    for code in codes.iter().chain(&verify_codes).chain(&reasons) {
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
    let node = Node::start(dir.path(), &["--mock-proofs"]);
    let mut checker = Checker {
        spec: &spec,
        api_md: read("docs/API.md"),
        node: &node,
        seen_codes: BTreeSet::new(),
    };

    // (b) The result example first: the other routes need a proved job.
    let result = example_body(&spec, "POST", "/v1/results").expect("result example");
    let accepted = checker.call(
        "POST",
        "/v1/results",
        "/v1/results",
        Some(json_bytes(&result)),
    );
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let job = result["job_id"]
        .as_str()
        .expect("string job id")
        .to_string();
    let proved = node.wait_proved(&job, Duration::from_secs(30));
    assert_eq!(proved["state"], "proved", "{proved}");

    // (a) + (b) Every documented operation, with its example body if it has
    // one; POSTs first, so that the GETs find what they create.
    let (posts, others): (Vec<_>, Vec<_>) = documented(&spec)
        .into_iter()
        .partition(|(method, _)| method == "POST");
    for (method, template) in posts.into_iter().chain(others) {
        let path = template.replace("{job_id}", &job);
        let body = example_body(&spec, &method, &template);
        let answer = checker.call(&method, &template, &path, body.as_ref().map(json_bytes));
        assert!(
            answer.status < 400,
            "{method} {path} (example body {body:?}) -> {} {}",
            answer.status,
            answer.text
        );
        if template == "/v1/verify" {
            let example_vk = &body.as_ref().expect("verify example")["proof"]["vk_id"];
            if *example_vk == node.startup["vk_id"] {
                assert_eq!(answer.body["valid"], true, "{}", answer.text);
            }
        }
    }

    // (a) A documented path with a method it does not document: 405 (not the
    // fallback), and `Allow` names exactly the documented methods (HEAD
    // comes with GET).
    let mut by_path: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for (method, path) in documented(&spec) {
        by_path.entry(path).or_default().insert(method);
    }
    for (template, methods) in &by_path {
        let path = template.replace("{job_id}", &job);
        for method in ["GET", "POST", "PUT", "DELETE"] {
            if methods.contains(method) {
                continue;
            }
            let answer = send(&node, method, &path, None);
            assert_eq!(answer.status, 405, "{method} {path}: {}", answer.text);
            let mut expected = methods.clone();
            if methods.contains("GET") {
                expected.insert("HEAD".into());
            }
            let allowed: BTreeSet<String> = answer
                .allow
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            assert_eq!(allowed, expected, "{method} {path}: Allow header");
            if let Some(code) = answer.body["error"]["code"].as_str() {
                checker.seen_codes.insert(code.to_string());
            }
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
            let answer = send(&node, method, path, None);
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
        Some(json_bytes(&body))
    };
    let r = "/v1/results";
    checker.expect_error(
        "POST",
        r,
        r,
        Some(b"{not json".to_vec()),
        400,
        "invalid_json",
    );
    checker.expect_error(
        "POST",
        r,
        r,
        with(&[("surprise", json!(1))]),
        400,
        "invalid_json",
    );
    let mut no_model = result.clone();
    no_model.as_object_mut().expect("object").remove("model");
    checker.expect_error(
        "POST",
        r,
        r,
        Some(json_bytes(&no_model)),
        400,
        "invalid_result",
    );
    checker.expect_error(
        "POST",
        r,
        r,
        with(&[("response", json!("Lyon"))]),
        409,
        "job_conflict",
    );
    // The same job (in its canonical spelling) with the same content.
    let duplicate = checker.call(
        "POST",
        r,
        r,
        with(&[("job_id", accepted.body["job_id"].clone())]),
    );
    assert_eq!(
        (duplicate.status, &duplicate.body["duplicate"]),
        (202, &json!(true)),
        "{}",
        duplicate.text
    );
    let too_large = Some(vec![b' '; 5 << 20]);
    checker.expect_error("POST", r, r, too_large, 413, "body_too_large");

    let p = "/v1/proofs/{job_id}";
    checker.expect_error(
        "GET",
        p,
        "/v1/proofs/forty-two",
        None,
        400,
        "invalid_job_id",
    );
    checker.expect_error("GET", p, "/v1/proofs/999", None, 404, "unknown_job");

    let v = "/v1/verify";
    let verify = example_body(&spec, "POST", v).expect("verify example");
    let mut bad = verify.clone();
    bad["host_id"] = json!("zz");
    checker.expect_error("POST", v, v, Some(json_bytes(&bad)), 400, "invalid_host_id");
    let mut bad = verify.clone();
    bad["proof"] = proved["proof"].clone(); // a mock proof
    checker.expect_error("POST", v, v, Some(json_bytes(&bad)), 400, "malformed_proof");
    let mut bad = verify.clone();
    bad["result"]["tokens_used"] = json!(120);
    checker.expect_error("POST", v, v, Some(json_bytes(&bad)), 400, "invalid_result");
    let mut tampered = verify.clone();
    tampered["result"]["response"] = json!("The capital of France is Lyon.");
    let verdict = checker.call("POST", v, v, Some(json_bytes(&tampered)));
    assert_eq!(verdict.body["valid"], false, "{}", verdict.text);
    let reason_codes =
        enum_strings(&spec["components"]["schemas"]["VerifyResponse"]["properties"]["reason_code"]);
    let reason = verdict.body["reason_code"].as_str().expect("reason_code");
    checker.assert_documented(reason, &reason_codes, "verify reason code");

    let c = "/v1/checkpoints";
    let checkpoint = |job: &str, tokens: u64| {
        Some(json_bytes(
            &json!({"job_id": job, "tokens_processed": tokens}),
        ))
    };
    checker.expect_error("POST", c, c, checkpoint(&job, 0), 422, "invalid_tokens");
    checker.expect_error("POST", c, c, checkpoint("999", 1), 404, "unknown_job");
    checker.expect_error("POST", c, c, checkpoint("x", 1), 400, "invalid_json");
    // A result naming its model by hash needs a model_id.
    let mut hashed = result.clone();
    let hashed_job = "0x7e57";
    hashed["job_id"] = json!(hashed_job);
    hashed.as_object_mut().expect("object").remove("model");
    hashed["model_hash"] = json!(format!("0x{}", "ab".repeat(32)));
    let answer = checker.call("POST", r, r, Some(json_bytes(&hashed)));
    assert_eq!(answer.status, 202, "{}", answer.text);
    node.wait_proved(hashed_job, Duration::from_secs(30));
    checker.expect_error(
        "POST",
        c,
        c,
        checkpoint(hashed_job, 1),
        422,
        "model_id_required",
    );
    let g = "/v1/checkpoints/{job_id}";
    checker.expect_error("GET", g, "/v1/checkpoints/0xg", None, 400, "invalid_job_id");

    let s = "/v1/settlements/{job_id}";
    checker.expect_error("POST", s, "/v1/settlements/999", None, 404, "unknown_job");
    checker.expect_error("GET", s, "/v1/settlements/999", None, 404, "not_settled");
    checker.expect_error("GET", s, "/v1/settlements/-1", None, 400, "invalid_job_id");

    let b = "/v1/settlements/validate";
    let ids = |ids: Value| Some(json_bytes(&json!({ "job_ids": ids })));
    checker.expect_error(
        "POST",
        b,
        b,
        ids(json!(vec!["1"; 10_001])),
        400,
        "batch_too_large",
    );
    checker.expect_error("POST", b, b, ids(json!(["42", "x"])), 400, "invalid_job_id");
    checker.expect_error("POST", b, b, ids(json!([42])), 400, "invalid_json");
    let validated = checker.call("POST", b, b, ids(json!([job, "999"])));
    let settlement_reasons = enum_strings(&spec["components"]["schemas"]["SettlementReason"]);
    for validation in validated.body["validations"]
        .as_array()
        .expect("validations")
    {
        if let Some(reason) = validation["reason"].as_str() {
            checker.assert_documented(reason, &settlement_reasons, "settlement reason");
        }
    }

    // (c) Every error code seen is documented.
    let codes = error_codes(&spec);
    let seen = std::mem::take(&mut checker.seen_codes);
    assert!(seen.len() >= 11, "too few errors exercised: {seen:?}");
    for code in &seen {
        checker.assert_documented(code, &codes, "error code");
    }
}
