//! The reproductions of "Money and trust holes", against a real node over
//! HTTP: each failed before the fix and must pass after it.
//!
//! 1. A job paid for more tokens than it used (cumulative checkpoints).
//! 2. A web page driving the node through a visitor's browser (Content-Type,
//!    Host, Origin, admin token).
//! 3. Strict input: repeated keys, JSON errors for the framework's rejections
//!    and for the requests the HTTP server refuses before any route.
//! 5. One node per data directory; bind before touching it.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{result, serve_refused, DataDir, Node};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(60);

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// Status, headers and JSON body of a response.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

fn reply(response: reqwest::blocking::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

fn content_type(reply: &Reply) -> &str {
    reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// An error reply: status, JSON content type, and the code.
fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(
        (reply.status, reply.body["error"]["code"].as_str()),
        (status, Some(code)),
        "{}",
        reply.body
    );
    assert!(
        content_type(reply).starts_with("application/json"),
        "{code}: content-type {:?}",
        content_type(reply)
    );
    assert!(reply.body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

/// Sends raw HTTP/1.1 (for Host headers and paths reqwest would not send).
fn raw(node: &Node, request: &str) -> (u16, String, String) {
    let address = node.startup["listening"].as_str().unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn ledger_total(dir: &DataDir, job: &str) -> i64 {
    dir.count(
        "SELECT COALESCE(SUM(l.tokens_claimed), 0) FROM ledger l
         JOIN checkpoints c ON c.id = l.checkpoint_id WHERE c.job_id = ?1",
        [job],
    )
}

#[test]
fn checkpoints_claim_the_increase_and_never_more_than_tokens_used() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let mut job_result = result(20);
    job_result["tokens_used"] = json!(20);
    let (status, accepted) = node.post("/v1/results", &job_result);
    assert_eq!(status, 202, "{accepted}");
    let job = accepted["job_id"].as_str().unwrap().to_string();
    assert_eq!(node.wait_proved(&job, TIMEOUT)["state"], "proved");

    // The reproduction: 10, then 20, of a 20-token job.
    let checkpoint = |tokens: u64| {
        node.post(
            "/v1/checkpoints",
            &json!({ "job_id": job, "tokens_processed": tokens }),
        )
    };
    let (status, first) = checkpoint(10);
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (&first["tokens_processed"], &first["tokens_claimed"]),
        (&json!(10), &json!(10))
    );
    let (status, second) = checkpoint(20);
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["tokens_claimed"], 10, "{second}");
    // What was signed is the delta: the submission's tokensClaimed word.
    assert_eq!(
        second["payload"]["submission"]["tokens_claimed"],
        format!("0x{:064x}", 10)
    );
    assert_eq!(ledger_total(&dir, &job), 20);

    // A retry is the same checkpoint; nothing more is claimed.
    let (status, again) = checkpoint(20);
    assert_eq!(status, 200);
    assert_eq!(again["id"], second["id"]);
    // Not increasing, beyond tokens_used, zero: refused, nothing signed.
    let before = dir.count("SELECT COUNT(*) FROM checkpoints", []);
    for (tokens, code) in [
        (15, "tokens_not_increasing"),
        (0, "tokens_not_increasing"),
        (21, "tokens_exceed_used"),
        (u64::MAX, "tokens_exceed_used"),
    ] {
        let (status, refused) = checkpoint(tokens);
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (409, Some(code)),
            "{tokens}: {refused}"
        );
    }
    assert_eq!(dir.count("SELECT COUNT(*) FROM checkpoints", []), before);
    assert_eq!(ledger_total(&dir, &job), 20);

    // Settlement pays what the checkpoints left: nothing.
    let (status, settlement) = node.post(&format!("/v1/settlements/{job}"), &json!({}));
    assert_eq!(status, 200, "{settlement}");
    assert_eq!(settlement["outcome"], "settled");
    assert_eq!(
        (&settlement["tokens"], &settlement["checkpoint_tokens"]),
        (&json!(0), &json!(20))
    );

    // Another job: a checkpoint at 5 of 20, the settlement pays 15, and
    // nothing can be claimed afterwards.
    let mut other_result = result(21);
    other_result["tokens_used"] = json!(20);
    let (_, other) = node.post("/v1/results", &other_result);
    let other = other["job_id"].as_str().unwrap().to_string();
    node.wait_proved(&other, TIMEOUT);
    let (status, _) = node.post(
        "/v1/checkpoints",
        &json!({ "job_id": other, "tokens_processed": 5 }),
    );
    assert_eq!(status, 201);
    let (_, settlement) = node.post(&format!("/v1/settlements/{other}"), &json!({}));
    assert_eq!(
        (&settlement["tokens"], &settlement["checkpoint_tokens"]),
        (&json!(15), &json!(5))
    );
    let (status, refused) = node.post(
        "/v1/checkpoints",
        &json!({ "job_id": other, "tokens_processed": 20 }),
    );
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("job_settled"))
    );
    assert_eq!(ledger_total(&dir, &other) + 15, 20);

    // Token counts: the largest stored count round-trips exactly; a larger
    // one is refused, never wrapped.
    let mut big = result(22);
    big["tokens_used"] = json!(i64::MAX as u64);
    let (status, _) = node.post("/v1/results", &big);
    assert_eq!(status, 202);
    let (_, stored) = node.get("/v1/proofs/22");
    assert_eq!(stored["tokens_used"], json!(i64::MAX as u64));
    let mut huge = result(23);
    huge["tokens_used"] = json!(u64::MAX);
    let (status, refused) = node.post("/v1/results", &huge);
    assert_eq!(
        (status, &refused["error"]["code"]),
        (422, &json!("tokens_out_of_range"))
    );
    let (status, _) = node.get("/v1/proofs/23");
    assert_eq!(status, 404, "a refused result is not stored");
}

#[test]
fn a_web_page_cannot_drive_the_node() {
    let dir = DataDir::new();
    let node = Node::start(
        dir.path(),
        &["--mock-proofs", "--allowed-origins", "https://app.example"],
    );
    let http = client();
    let body = serde_json::to_vec(&result(5)).unwrap();

    // A cross-site "simple" request: text/plain needs no CORS preflight.
    let r = reply(
        http.post(node.url("/v1/results"))
            .header("content-type", "text/plain")
            .body(body.clone())
            .send()
            .unwrap(),
    );
    assert_error(&r, 415, "unsupported_media_type");
    // A form post, and no content type at all, likewise; and bodyless routes.
    for content_type in [Some("application/x-www-form-urlencoded"), None] {
        let mut request = http.post(node.url("/v1/results")).body(body.clone());
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        assert_error(
            &reply(request.send().unwrap()),
            415,
            "unsupported_media_type",
        );
    }
    let r = reply(http.post(node.url("/v1/settlements/5")).send().unwrap());
    assert_error(&r, 415, "unsupported_media_type");
    let (status, _) = node.get("/v1/proofs/5");
    assert_eq!(status, 404, "the cross-site posts stored nothing");

    // DNS rebinding: the page's own host name reaches the node.
    let (status, head, body) = raw(
        &node,
        "GET /v1/proofs/5 HTTP/1.1\r\nHost: rebind.attacker.test:8080\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 403, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "forbidden_host"
    );
    for host in ["localhost", "127.0.0.1"] {
        let (status, _, body) = raw(
            &node,
            &format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 200, "{host}: {body}");
    }
    let (status, _, _) = raw(&node, "GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(status, 403, "a request without Host is refused");

    // A foreign Origin: refused, on reads and writes; no CORS headers.
    for request in [
        http.get(node.url("/health")),
        http.post(node.url("/v1/results"))
            .header("content-type", "application/json")
            .body(body.clone()),
    ] {
        let r = reply(
            request
                .header("origin", "https://evil.example")
                .send()
                .unwrap(),
        );
        assert_error(&r, 403, "forbidden_origin");
        assert!(r.headers.get("access-control-allow-origin").is_none());
    }
    // Without an Origin (curl, servers): no CORS headers either.
    let r = reply(http.get(node.url("/health")).send().unwrap());
    assert_eq!(r.status, 200);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    // The configured origin: allowed, with CORS headers and a preflight.
    let r = reply(
        http.get(node.url("/health"))
            .header("origin", "https://app.example")
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let r = reply(
        http.request(reqwest::Method::OPTIONS, node.url("/v1/results"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(r.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("content-type"));

    // Admin: without a token, with a wrong one, with the right one.
    let reload = node.url("/v1/admin/keys/reload");
    let r = reply(http.post(&reload).json(&json!({})).send().unwrap());
    assert_error(&r, 401, "unauthorized");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let token = node.admin_token();
    let wrong = format!("{}x", &token[..token.len() - 1]);
    for bad in [wrong.as_str(), "", &token[..32]] {
        let r = reply(
            http.post(&reload)
                .header("authorization", format!("Bearer {bad}"))
                .json(&json!({}))
                .send()
                .unwrap(),
        );
        assert_error(&r, 401, "unauthorized");
    }
    let r = reply(
        http.post(&reload)
            .header("authorization", format!("Basic {token}"))
            .json(&json!({}))
            .send()
            .unwrap(),
    );
    assert_error(&r, 401, "unauthorized");
    let (status, reloaded) = node.post_with_token("/v1/admin/keys/reload", &json!({}));
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded["vk_id"], node.startup["vk_id"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("admin.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
    }
    assert!(!node.startup.to_string().contains(&token));

    // Outside production, the README's session needs no token.
    let (status, accepted) = node.post("/v1/results", &result(6));
    assert_eq!(status, 202, "{accepted}");
}

#[test]
fn a_token_from_a_file_or_the_environment_replaces_the_created_one() {
    let dir = DataDir::new();
    let file = dir.path().join("my.token");
    std::fs::write(&file, "file-token-0123456789abcdef\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
    let data = dir.path().join("data");
    let node = Node::start(
        &data,
        &[
            "--mock-proofs",
            "--admin-token-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(!data.join("admin.token").exists());
    let post = |token: &str| {
        client()
            .post(node.url("/v1/admin/keys/reload"))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post("file-token-0123456789abcdef"), 200);
    assert_eq!(post("env-token-0123456789abcdef"), 401);
    drop(node);

    let node = Node::try_start(
        &data,
        &["--mock-proofs"],
        &[("FABSTIR_ADMIN_TOKEN", "env-token-0123456789abcdef")],
    )
    .unwrap();
    let r = client()
        .post(node.url("/v1/admin/keys/reload"))
        .bearer_auth("env-token-0123456789abcdef")
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(node);

    // A short token is refused at start-up.
    let refused = serve_refused(&data, &[], &[("FABSTIR_ADMIN_TOKEN", "short")]);
    assert_eq!(refused.code, Some(2), "{}", refused.text());
    assert!(
        refused.text().contains("FABSTIR_ADMIN_TOKEN"),
        "{}",
        refused.text()
    );
}

#[test]
fn input_is_strict_and_every_error_is_json() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &[]);
    let (_, accepted) = node.post("/v1/results", &result(31));
    let job = accepted["job_id"].as_str().unwrap().to_string();
    let proved = node.wait_proved(&job, TIMEOUT);
    let http = client();
    let post_raw = |path: &str, body: &str| {
        reply(
            http.post(node.url(path))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .unwrap(),
        )
    };

    // /v1/verify with `response` twice in `result`: a client keeping the
    // first would believe the honest text was verified.
    let client_result = result(31);
    let honest = serde_json::to_string(&client_result).unwrap();
    let doubled = honest.replacen(
        "\"response\":",
        "\"response\":\"The capital of France is Lyon.\",\"response\":",
        1,
    );
    assert_ne!(doubled, honest);
    let proof = proved["proof"].to_string();
    let r = post_raw(
        "/v1/verify",
        &format!("{{\"result\":{doubled},\"proof\":{proof}}}"),
    );
    assert_error(&r, 400, "invalid_json");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"response\"") && message.contains("$.result"),
        "{message}"
    );
    // The same request without the repeat verifies.
    let r = post_raw(
        "/v1/verify",
        &format!("{{\"result\":{honest},\"proof\":{proof}}}"),
    );
    assert_eq!(r.body["valid"], true, "{}", r.body);
    // A repeat inside the proof envelope, and at the top level.
    let doubled_proof = proof.replacen("\"vk_id\":", "\"vk_id\":\"0x00\",\"vk_id\":", 1);
    let r = post_raw(
        "/v1/verify",
        &format!("{{\"result\":{honest},\"proof\":{doubled_proof}}}"),
    );
    assert_error(&r, 400, "invalid_json");
    let r = post_raw(
        "/v1/checkpoints",
        &format!("{{\"job_id\":\"{job}\",\"tokens_processed\":1,\"tokens_processed\":99}}"),
    );
    assert_error(&r, 400, "invalid_json");
    assert_eq!(dir.count("SELECT COUNT(*) FROM checkpoints", []), 0);
    // A job id of the wrong JSON type names the field and the accepted forms.
    for bad in ["-1", "1.5", "true", "null", "18446744073709551616", "[1]"] {
        let body = serde_json::to_string(&result(32)).unwrap().replacen(
            "\"job_id\":\"32\"",
            &format!("\"job_id\":{bad}"),
            1,
        );
        assert!(body.contains(&format!("\"job_id\":{bad}")), "{body}");
        let r = post_raw("/v1/results", &body);
        assert_error(&r, 400, "invalid_json");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("$.job_id: ")
                && message.contains("decimal digits or 0x-prefixed hex"),
            "{bad}: {message}"
        );
    }
    // A route without a body takes nothing but {}.
    let r = post_raw(&format!("/v1/settlements/{job}"), "{\"force\": true}");
    assert_error(&r, 400, "invalid_json");

    // The framework's own rejections, as JSON with a code.
    let (status, head, body) = raw(
        &node,
        "GET /v1/proofs/%ff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "invalid_job_id"
    );
    let r = reply(http.get(node.url("/no/such/route")).send().unwrap());
    assert_error(&r, 404, "not_found");
    let r = reply(http.delete(node.url("/v1/results")).send().unwrap());
    assert_error(&r, 405, "method_not_allowed");
    assert!(r.headers.get("allow").is_some());
    let r = reply(
        http.post(node.url(&format!("/v1/settlements/{job}")))
            .header("content-type", "application/json")
            .body(vec![b' '; 5 << 20])
            .send()
            .unwrap(),
    );
    assert_error(&r, 413, "body_too_large");
    let (status, _) = node.get(&format!("/v1/settlements/{job}"));
    assert_eq!(status, 404, "the refused requests settled nothing");
}

#[test]
fn one_node_per_data_directory_and_bind_before_touching_it() {
    let dir = DataDir::new();
    let first = Node::start(dir.path(), &["--mock-proofs"]);
    let (_, accepted) = first.post("/v1/results", &result(41));
    let job = accepted["job_id"].as_str().unwrap().to_string();
    first.wait_proved(&job, TIMEOUT);
    let proof_before = dir.count("SELECT COUNT(*) FROM proofs", []);

    // A second node on the same directory (another port) exits 1, naming
    // the first one's PID, and changes nothing.
    let refused = serve_refused(dir.path(), &["--mock-proofs"], &[]);
    assert_eq!(refused.code, Some(1), "{}", refused.text());
    assert!(
        refused.text().contains(&format!("pid {}", first.pid())),
        "{}",
        refused.text()
    );
    assert!(
        refused.stdout.contains("data_dir_locked"),
        "{}",
        refused.stdout
    );
    assert_eq!(dir.count("SELECT COUNT(*) FROM proofs", []), proof_before);
    let (status, _) = first.get(&format!("/v1/proofs/{job}"));
    assert_eq!(status, 200, "the first node still serves");

    // A node that cannot bind its port exits 1 before creating anything.
    let port = first.startup["listening"].as_str().unwrap().to_string();
    let fresh = dir.path().join("never-created");
    let output = std::process::Command::new(common::binary())
        .args(["serve", "--listen", &port, "--data-dir"])
        .arg(&fresh)
        .env("FABSTIR_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"listen\""));
    assert!(!fresh.exists(), "the data directory was created");

    // --data-dir naming a file says so.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let refused = serve_refused(&file, &["--mock-proofs"], &[]);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.text().contains("not a directory"),
        "{}",
        refused.text()
    );

    // Once the first node is gone, the directory is free again.
    first.kill9();
    let again = Node::start(dir.path(), &["--mock-proofs"]);
    let (status, _) = again.get(&format!("/v1/proofs/{job}"));
    assert_eq!(status, 200);
}

/// One response read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// Status line and header lines, lower case.
    head: String,
    body: String,
}

/// Writes `request` on a new connection and reads until the node closes it.
fn exchange(node: &Node, request: &[u8]) -> Vec<u8> {
    let address = node.startup["listening"].as_str().unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    answer
}

/// Splits what a connection received into responses (by `content-length`).
fn responses(mut bytes: &[u8]) -> Vec<RawResponse> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("no content-length: {head}"));
        let body = &bytes[end + 4..end + 4 + length];
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        out.push(RawResponse {
            status,
            head: head.clone(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
        bytes = &bytes[end + 4 + length..];
    }
    out
}

/// A JSON error with `status` and `code`.
fn assert_raw_error(response: &RawResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert!(
        response
            .head
            .contains("\r\ncontent-type: application/json\r\n"),
        "{response:?}"
    );
    let body: Value =
        serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{e}: {response:?}"));
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// The one response a request got, which must be a JSON error.
fn refused(node: &Node, request: &[u8], status: u16, code: &str) -> RawResponse {
    let answer = exchange(node, request);
    let mut all = responses(&answer);
    assert_eq!(
        all.len(),
        1,
        "{:?}: {all:?}",
        String::from_utf8_lossy(&request[..request.len().min(80)])
    );
    let response = all.remove(0);
    assert_raw_error(&response, status, code);
    assert!(
        response.head.contains("\r\nconnection: close"),
        "{response:?}"
    );
    response
}

/// A `GET` for `target` (HTTP/1.1, `Connection: close`) with `fields`
/// header fields in all, `Host` and `Connection` included.
fn get_with(target: &str, fields: usize) -> Vec<u8> {
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for i in 2..fields {
        request.push_str(&format!("X-Field-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

#[test]
fn requests_the_http_server_refuses_get_json_errors() {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &["--mock-proofs"]);
    let long = |len: usize| format!("/{}", "a".repeat(len - 1));

    // A 70 KB path: 414, past the longest target the server reads; the
    // longest it reads reaches the router (404 from the fallback).
    let response = refused(&node, &get_with(&long(70_000), 2), 414, "uri_too_long");
    assert!(response.body.contains("65534 bytes"), "{response:?}");
    refused(&node, &get_with(&long(65_535), 2), 414, "uri_too_long");
    let answer = exchange(&node, &get_with(&long(65_534), 2));
    let all = responses(&answer);
    assert_raw_error(&all[0], 404, "not_found");

    // 200 header fields: 431; 101 too; 100 are read.
    let response = refused(&node, &get_with("/health", 200), 431, "headers_too_large");
    assert!(response.body.contains("100 header fields"), "{response:?}");
    refused(&node, &get_with("/health", 101), 431, "headers_too_large");
    let all = responses(&exchange(&node, &get_with("/health", 100)));
    assert_eq!(all[0].status, 200, "{:?}", all[0]);

    // Not HTTP, or broken HTTP: 400, in the request's HTTP version.
    for request in [
        "GARBAGE\r\n\r\n",
        "GET /health HTTP/1.2\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /he alth HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n",
        "POST /v1/results HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
        "POST /v1/results HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /v1/results HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ] {
        let response = refused(&node, request.as_bytes(), 400, "bad_request");
        assert!(response.head.starts_with("http/1.1 400 "), "{response:?}");
    }
    // After an HTTP/1.0 request the server answers in HTTP/1.0.
    let all = responses(&exchange(
        &node,
        b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\nGARBAGE\r\n\r\n",
    ));
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].head.starts_with("http/1.0 200 "), "{all:?}");
    assert_raw_error(&all[1], 400, "bad_request");
    assert!(all[1].head.starts_with("http/1.0 400 "), "{all:?}");

    // Keep-alive: a normal request, its response read, then a bad one on
    // the same connection: the normal answer, then the JSON error.
    let address = node.startup["listening"].as_str().unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut first = Vec::new();
    let mut buf = [0u8; 4096];
    while responses_complete(&first).is_none() {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&first));
        first.extend_from_slice(&buf[..n]);
    }
    let health = responses(&first);
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].status, 200);
    assert!(!health[0].head.contains("connection: close"), "{health:?}");
    stream.write_all(b"GARBAGE\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let after = responses(&rest);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_raw_error(&after[0], 400, "bad_request");
    assert!(after[0].head.contains("\r\nconnection: close"), "{after:?}");

    // Pipelined: two good requests and a bad one in one write.
    let answer = exchange(
        &node,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
          GET /v1/nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
          GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    );
    let all = responses(&answer);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0].status, 200);
    assert!(all[0].body.contains("\"status\""), "{:?}", all[0]);
    assert_raw_error(&all[1], 404, "not_found");
    assert_raw_error(&all[2], 400, "bad_request");
    assert!(all[2].head.contains("\r\nconnection: close"), "{all:?}");

    // HTTP/2 with prior knowledge: this node speaks HTTP/1 only; the server
    // closes without an answer (an HTTP/1 body would mean nothing to an
    // HTTP/2 client).
    let answer = exchange(&node, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));

    // The node still serves.
    let (status, _) = node.get("/health");
    assert_eq!(status, 200);
}

/// The number of bytes of the complete responses at the start of `bytes`,
/// if there is at least one.
fn responses_complete(bytes: &[u8]) -> Option<usize> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    (bytes.len() >= end + 4 + length).then_some(end + 4 + length)
}
