//! Health that can go red: each test breaks a real node the way production
//! breaks it and checks that `/health`, `/health/ezkl` and the gauges say so,
//! then repairs it and checks that they go back.
//!
//! - a key reload that fails (a secret key file readable by others): the
//!   `key_reload` check, `keys_loaded`, `fabstir_keys_loaded`,
//!   `fabstir_key_load_failures_total`;
//! - a key directory damaged on disk with no reload: the periodic `keys`
//!   check;
//! - a database page overwritten on disk while the node runs: the periodic
//!   `database` check, `/health` 503 `failing`;
//! - results posted faster than they are proved: the `prover_queue` check.
//!
//! The alert tests (ignored by default, as they need promtool; `.ci/run`
//! installs it and runs them with `-- --ignored`) take the node's own
//! `/metrics` before and after such a failure, replay the samples of the
//! series the alerting rules use as a `promtool test rules` unit test against
//! `configs/prometheus_alerts.yml`, and require exactly the expected alerts
//! to fire with their exact labels and annotations (and none before the
//! failure); fed the "before" samples only, the same test must fail.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{post_to, repo_root, result, DataDir, Node};
use serde_json::{json, Value};

/// How long a periodic check may take to notice a change (interval 200 ms,
/// plus the key directory load, on a loaded 2-core machine).
const NOTICE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Replaces the contents of a (read-only) key file, keeping its mode.
fn rewrite_key_file(path: &Path, bytes: &[u8]) {
    let mode = std::fs::metadata(path)
        .expect("key file")
        .permissions()
        .mode()
        & 0o7777;
    chmod(path, 0o600);
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    chmod(path, mode);
}

fn gauge(node: &Node, series: &str) -> f64 {
    node.metric(series)
        .unwrap_or_else(|| panic!("{series} is not in /metrics"))
}

fn health_ok(check: &str) -> String {
    format!("fabstir_health_ok{{check=\"{check}\"}}")
}

/// Polls `GET /health` until `done` holds; returns the HTTP status and body.
fn wait_health(node: &Node, what: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + NOTICE;
    loop {
        let (status, body) = node.get("/health");
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "/health: not {what} after {NOTICE:?}: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `/metrics` until `series` has `value` (the gauges are published
/// just after the check's outcome is stored).
fn wait_gauge(node: &Node, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = gauge(node, series);
        if now == value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {now}, expected {value}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every check passes, in `/health`, `/health/ezkl` and the gauges.
fn assert_all_green(node: &Node) {
    let (status, health) = node.get("/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    for check in ["database", "keys", "key_reload", "prover_queue"] {
        assert_eq!(health["checks"][check]["ok"], true, "{check}: {health}");
        assert!(health["checks"][check]["detail"].is_null(), "{health}");
        assert_eq!(gauge(node, &health_ok(check)), 1.0, "{check}");
    }
    let (status, ezkl) = node.get("/health/ezkl");
    assert_eq!(status, 200, "{ezkl}");
    assert_eq!(ezkl["status"], "ok", "{ezkl}");
    assert_eq!(ezkl["keys_loaded"], true, "{ezkl}");
    assert_eq!(gauge(node, "fabstir_keys_loaded"), 1.0);
}

fn nonempty_detail(check: &Value) -> &str {
    let detail = check["detail"].as_str().unwrap_or_default();
    assert!(
        !detail.trim().is_empty(),
        "a failed check says why: {check}"
    );
    detail
}

// ---------------------------------------------------------------------------
// The scenarios (shared by the health tests and the alert tests)
// ---------------------------------------------------------------------------

/// A node's scrapes around a failure.
struct Scrapes {
    before: String,
    after: String,
}

/// A mock-proof node whose key reload fails: `host.key` made readable by
/// group and others, then `POST /v1/admin/keys/reload` (422). The periodic
/// checks are pushed out of the test's time (10 min), so what turns the
/// health red here is the reload alone.
fn failed_reload(dir: &DataDir) -> (Node, Scrapes) {
    let node = Node::start(
        dir.path(),
        &["--mock-proofs", "--health-interval-ms", "600000"],
    );
    assert_all_green(&node);
    assert_eq!(gauge(&node, "fabstir_key_load_failures_total"), 0.0);
    let before = node.metrics_text();

    chmod(&dir.path().join("keys/host.key"), 0o644);
    let (status, body) = node.post_with_token("/v1/admin/keys/reload", &json!({}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "key_reload_failed", "{body}");
    let after = node.metrics_text();
    (node, Scrapes { before, after })
}

/// One page of `node.db` overwritten on disk, and its original bytes.
struct DamagedPage {
    path: PathBuf,
    offset: u64,
    original: Vec<u8>,
}

impl DamagedPage {
    /// Overwrites the root page of `table`'s b-tree (not page 1, which holds
    /// the file header and the schema) after moving every page out of the
    /// write-ahead log into the file, so that no newer copy of the page in
    /// the WAL hides the damage.
    fn damage(dir: &DataDir, table: &str) -> Self {
        let path = dir.path().join("node.db");
        let conn = dir.db();
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .expect("page_size");
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .unwrap_or_else(|e| panic!("table {table}: {e}"));
        assert!(root > 1, "{table} starts on page {root}");
        let (root, page_size) = (root as u64, page_size as u64);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (busy, log, done): (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .expect("wal_checkpoint");
            let wal = std::fs::metadata(dir.path().join("node.db-wal")).map_or(0, |m| m.len());
            if busy == 0 && log == done && wal == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cannot checkpoint the WAL: busy {busy}, log {log}, done {done}, {wal} bytes"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(conn);

        let offset = (root - 1) * page_size;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open node.db");
        assert!(
            file.metadata().expect("metadata").len() >= offset + page_size,
            "node.db is shorter than page {root}"
        );
        let mut original = vec![0; page_size as usize];
        file.seek(SeekFrom::Start(offset)).expect("seek");
        file.read_exact(&mut original).expect("read page");
        // 0x5a is not a b-tree page type: the page cannot be parsed.
        file.seek(SeekFrom::Start(offset)).expect("seek");
        file.write_all(&vec![0x5a; page_size as usize])
            .expect("damage page");
        file.sync_all().expect("sync");
        let damaged = Self {
            path,
            offset,
            original,
        };
        // The damage is real: SQLite itself, on its own connection, says so.
        let verdict = damaged.quick_check();
        assert_ne!(
            verdict, "ok",
            "overwriting page {root} ({table}) did not fail quick_check"
        );
        damaged
    }

    /// `PRAGMA quick_check` on a fresh read-only connection: "ok", or what
    /// it (or the error) says.
    fn quick_check(&self) -> String {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open node.db read-only");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn.query_row("PRAGMA quick_check", [], |row| row.get::<_, String>(0))
            .unwrap_or_else(|e| e.to_string())
    }

    /// Writes the page's original bytes back.
    fn repair(&self) {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .expect("open node.db");
        file.seek(SeekFrom::Start(self.offset)).expect("seek");
        file.write_all(&self.original).expect("repair page");
        file.sync_all().expect("sync");
        assert_eq!(self.quick_check(), "ok", "the repaired database");
    }
}

/// A mock-proof node with a proved job and a checkpoint (so the `ledger`
/// table holds a row), whose database then gets the `ledger` table's page
/// overwritten on disk. `ledger` because `GET /health` reads counts from the
/// other tables, and fails with 500 instead of reporting its checks when
/// those reads fail.
fn damaged_database(dir: &DataDir) -> (Node, Scrapes, DamagedPage) {
    let node = Node::start(
        dir.path(),
        &["--mock-proofs", "--health-interval-ms", "200"],
    );
    let job = node.submit_and_prove(&result(11));
    node.checkpoint(&job, 50);
    node.wait_idle(Duration::from_secs(30));
    assert!(dir.count("SELECT COUNT(*) FROM ledger", []) >= 1);
    assert_all_green(&node);
    let before = node.metrics_text();

    let page = DamagedPage::damage(dir, "ledger");
    let (status, health) = wait_health(&node, "failing", |status, h| {
        status == 503 && h["status"] == "failing"
    });
    assert_eq!(status, 503);
    assert_eq!(health["checks"]["database"]["ok"], false, "{health}");
    wait_gauge(&node, &health_ok("database"), 0.0);
    let after = node.metrics_text();
    (node, Scrapes { before, after }, page)
}

// ---------------------------------------------------------------------------
// Health tests
// ---------------------------------------------------------------------------

#[test]
fn a_failed_key_reload_turns_the_health_red_until_a_reload_succeeds() {
    let dir = DataDir::new();
    let (node, _) = failed_reload(&dir);

    let (status, health) = node.get("/health");
    assert_eq!(status, 200, "degraded still serves: {health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let reload = &health["checks"]["key_reload"];
    assert_eq!(reload["ok"], false, "{health}");
    assert!(
        nonempty_detail(reload).contains("host.key"),
        "the detail names the file: {reload}"
    );
    assert!(reload["checked_at_ms"].is_i64(), "{reload}");
    // The directory check has not run since (10 min interval): the reload
    // alone turned keys_loaded false.
    assert_eq!(health["checks"]["keys"]["ok"], true, "{health}");
    assert_eq!(health["checks"]["database"]["ok"], true, "{health}");

    let (_, ezkl) = node.get("/health/ezkl");
    assert_eq!(ezkl["keys_loaded"], false, "{ezkl}");
    assert_eq!(ezkl["key_reload"]["ok"], false, "{ezkl}");
    assert_eq!(ezkl["status"], "degraded", "{ezkl}");

    assert_eq!(gauge(&node, "fabstir_keys_loaded"), 0.0);
    assert_eq!(gauge(&node, &health_ok("key_reload")), 0.0);
    assert_eq!(gauge(&node, &health_ok("keys")), 1.0);
    assert_eq!(gauge(&node, "fabstir_key_load_failures_total"), 1.0);

    // Repaired and reloaded: green again; the counter keeps its history.
    chmod(&dir.path().join("keys/host.key"), 0o400);
    let (status, body) = node.post_with_token("/v1/admin/keys/reload", &json!({}));
    assert_eq!(status, 200, "{body}");
    assert_all_green(&node);
    let (_, health) = node.get("/health");
    assert!(health["checks"]["key_reload"]["checked_at_ms"].is_i64());
    assert_eq!(gauge(&node, "fabstir_key_load_failures_total"), 1.0);
}

#[test]
fn a_key_directory_damaged_on_disk_turns_the_keys_check_red_without_a_reload() {
    let dir = DataDir::new();
    let node = Node::start(
        dir.path(),
        &["--mock-proofs", "--health-interval-ms", "200"],
    );
    assert_all_green(&node);

    // Half of the proving key is lost (a bad copy or restore); its mode
    // stays 0400, so what fails is the content.
    let proving_key = dir.path().join("keys/proving.key");
    let original = std::fs::read(&proving_key).expect("proving.key");
    rewrite_key_file(&proving_key, &original[..original.len() / 2]);

    let (status, health) =
        wait_health(&node, "keys red", |_, h| h["checks"]["keys"]["ok"] == false);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let keys = &health["checks"]["keys"];
    assert!(
        nonempty_detail(keys).contains("proving.key"),
        "the detail names the file: {keys}"
    );
    // No reload was asked for.
    assert_eq!(health["checks"]["key_reload"]["ok"], true, "{health}");
    assert!(health["checks"]["key_reload"]["checked_at_ms"].is_null());
    let (_, ezkl) = node.get("/health/ezkl");
    assert_eq!(ezkl["keys_loaded"], false, "{ezkl}");
    assert_eq!(ezkl["keys"]["ok"], false, "{ezkl}");
    wait_gauge(&node, "fabstir_keys_loaded", 0.0);
    assert_eq!(gauge(&node, &health_ok("keys")), 0.0);
    assert_eq!(gauge(&node, &health_ok("key_reload")), 1.0);
    assert!(gauge(&node, "fabstir_key_load_failures_total") >= 1.0);

    // Restored from a good copy: the next check turns it green, no reload.
    rewrite_key_file(&proving_key, &original);
    wait_health(&node, "ok again", |status, h| {
        status == 200 && h["status"] == "ok"
    });
    wait_gauge(&node, "fabstir_keys_loaded", 1.0);
    assert_all_green(&node);
}

#[test]
fn a_database_damaged_while_serving_makes_the_node_failing_until_repaired() {
    let dir = DataDir::new();
    let (node, _, page) = damaged_database(&dir);

    let (status, health) = node.get("/health");
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "failing", "{health}");
    let database = &health["checks"]["database"];
    assert_eq!(database["ok"], false, "{health}");
    nonempty_detail(database);
    assert!(database["checked_at_ms"].is_i64(), "{database}");
    assert_eq!(health["checks"]["keys"]["ok"], true, "{health}");
    let (status, ezkl) = node.get("/health/ezkl");
    assert_eq!(status, 200, "{ezkl}");
    assert_eq!(ezkl["status"], "failing", "{ezkl}");
    assert_eq!(gauge(&node, &health_ok("database")), 0.0);
    assert_eq!(gauge(&node, "fabstir_keys_loaded"), 1.0);

    page.repair();
    wait_health(&node, "ok again", |status, h| {
        status == 200 && h["status"] == "ok"
    });
    wait_gauge(&node, &health_ok("database"), 1.0);
    assert_all_green(&node);
}

#[test]
fn results_posted_faster_than_proved_fill_the_queue_and_the_health_says_so() {
    let dir = DataDir::new();
    // Real proofs (hundreds of ms each here) and one place in the queue.
    let node = Node::start(
        dir.path(),
        &["--queue-capacity", "1", "--prover-threads", "1"],
    );
    assert_all_green(&node);

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (stop, accepted, refused) = (stop.clone(), accepted.clone(), refused.clone());
        let base = node.base.clone();
        std::thread::spawn(move || {
            let mut job = 100;
            while !stop.load(Ordering::SeqCst) {
                job += 1;
                let reply = post_to(&base, "/v1/results", &result(job)).expect("post result");
                match reply.status {
                    202 => accepted.fetch_add(1, Ordering::SeqCst),
                    503 => {
                        assert_eq!(reply.body["error"]["code"], "queue_full", "{:?}", reply);
                        refused.fetch_add(1, Ordering::SeqCst)
                    }
                    other => panic!("POST /v1/results answered {other}: {:?}", reply),
                };
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // Until /health and the gauge have both seen the queue full, and a
    // result was refused for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut full_health = None;
    let mut full_gauge = false;
    while full_health.is_none() || !full_gauge || refused.load(Ordering::SeqCst) == 0 {
        if flood.is_finished() {
            // It only stops on a panic: report that one.
            flood.join().expect("flood thread");
            panic!("the flood thread stopped");
        }
        assert!(
            Instant::now() < deadline,
            "the queue was never seen full: health {full_health:?}, gauge {full_gauge}, {} accepted, {} refused",
            accepted.load(Ordering::SeqCst),
            refused.load(Ordering::SeqCst)
        );
        if full_health.is_none() {
            let (status, health) = node.get("/health");
            if health["checks"]["prover_queue"]["ok"] == false {
                full_health = Some((status, health));
            }
        }
        if !full_gauge {
            full_gauge = gauge(&node, &health_ok("prover_queue")) == 0.0;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    flood.join().expect("flood thread");

    let (status, health) = full_health.expect("seen");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let queue = &health["checks"]["prover_queue"];
    assert!(nonempty_detail(queue).contains("full (1 of 1)"), "{queue}");
    for check in ["database", "keys", "key_reload"] {
        assert_eq!(health["checks"][check]["ok"], true, "{check}: {health}");
    }
    assert!(gauge(&node, "fabstir_prover_queue_full_total") >= 1.0);

    // Drained: green again, and every accepted result was proved.
    let idle = node.wait_idle(Duration::from_secs(120));
    assert_eq!(
        idle["stats"]["proved"],
        accepted.load(Ordering::SeqCst) as u64,
        "{idle}"
    );
    assert_all_green(&node);
}

// ---------------------------------------------------------------------------
// Alert tests: the node's own scrapes replayed through promtool
// ---------------------------------------------------------------------------

/// Scrape interval of the replay, and its timeline: the "before" samples
/// from 0 to 4m45s, the "after" samples from 5m on.
const INTERVAL_S: u64 = 15;
const BEFORE_SAMPLES: u64 = 20;
const AFTER_SAMPLES: u64 = 40;
/// Time of the last "before" sample: nothing may fire then.
const QUIET_AT_S: u64 = (BEFORE_SAMPLES - 1) * INTERVAL_S;
/// Two minutes after the failure: the expected alerts fire then.
const FIRING_AT_S: u64 = BEFORE_SAMPLES * INTERVAL_S + 120;

fn duration(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        (m, 0) => format!("{m}m"),
        (0, s) => format!("{s}s"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// Seconds of a rule's `for` (`0m`, `1m`, `30s`, `1h`).
fn seconds(text: &str) -> u64 {
    let (number, unit) = text.split_at(text.len() - 1);
    let n: u64 = number.parse().unwrap_or_else(|_| panic!("duration {text}"));
    match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => panic!("duration {text}"),
    }
}

/// The alerting rules, as JSON.
fn alert_rules() -> Vec<Value> {
    let path = repo_root().join("configs/prometheus_alerts.yml");
    let text = std::fs::read_to_string(&path).expect("configs/prometheus_alerts.yml");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("rules are YAML");
    let doc = serde_json::to_value(yaml).expect("YAML converts to JSON");
    doc["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .filter(|r| r["alert"].is_string())
        .collect()
}

/// Metric names (`fabstir_…`) the rules' expressions use.
fn names_in_rules(rules: &[Value]) -> BTreeSet<String> {
    rules
        .iter()
        .flat_map(|rule| {
            rule["expr"]
                .as_str()
                .expect("expr")
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|word| word.starts_with("fabstir_"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `series -> value` of a scrape (series as exported, with its labels).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {line}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line}"));
            (series.to_string(), value)
        })
        .collect()
}

/// `series` with the `instance` and `job` labels Prometheus adds.
fn with_target(series: &str, instance: &str) -> String {
    let target = format!("instance=\"{instance}\",job=\"fabstir-node\"");
    match series.split_once('{') {
        Some((name, labels)) => format!("{name}{{{target},{labels}"),
        None => format!("{series}{{{target}}}"),
    }
}

/// A sample value in promtool's series notation (`_`: no sample).
fn repeated(value: Option<f64>, count: u64) -> String {
    match value {
        None => format!("_x{}", count - 1),
        Some(v) => {
            assert!(v.is_finite(), "cannot replay the value {v}");
            format!("{v}x{}", count - 1)
        }
    }
}

/// Renders the alert annotation templates the rules use: `$labels.X`,
/// `$value` and `$value | printf "%.0f"`.
fn render(template: &str, labels: &BTreeMap<String, String>, value: f64) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = start
            + rest[start..]
                .find("}}")
                .unwrap_or_else(|| panic!("unclosed {{{{ in {template:?}"));
        let action = rest[start + 2..end].trim();
        let text = if let Some(label) = action.strip_prefix("$labels.") {
            labels
                .get(label)
                .unwrap_or_else(|| panic!("{template:?}: the alert has no label {label}"))
                .clone()
        } else if action == "$value" {
            format!("{value}")
        } else if action == r#"$value | printf "%.0f""# {
            format!("{value:.0}")
        } else {
            panic!("{template:?}: this test cannot render {{{{ {action} }}}}; extend render()")
        };
        out.push_str(&text);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// An alert the failure must fire.
struct Expected {
    alert: &'static str,
    /// Its labels besides `instance` and `job`, exactly.
    labels: &'static [(&'static str, &'static str)],
    /// Its value at the firing time (for the annotations).
    value: f64,
}

/// The promtool unit test replaying `before` then `after` (scrapes of the
/// node at `instance`): every alert quiet at the last "before" sample, and at
/// two minutes after the failure exactly the `expected` ones firing.
fn alert_unit_test(instance: &str, scrapes: &Scrapes, expected: &[Expected]) -> Value {
    let rules = alert_rules();
    let used = names_in_rules(&rules);
    let (before, after) = (samples(&scrapes.before), samples(&scrapes.after));
    let series: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut input_series = Vec::new();
    for s in series {
        let name = s.split('{').next().unwrap_or_default();
        if !used.contains(name) {
            continue;
        }
        input_series.push(json!({
            "series": with_target(s, instance),
            "values": format!(
                "{} {}",
                repeated(before.get(s).copied(), BEFORE_SAMPLES),
                repeated(after.get(s).copied(), AFTER_SAMPLES)
            ),
        }));
    }
    assert!(
        !input_series.is_empty(),
        "no scraped series is used by the rules"
    );
    for e in expected {
        assert!(
            rules.iter().any(|r| r["alert"] == e.alert),
            "no alert {} in the rules",
            e.alert
        );
    }
    let mut tests = Vec::new();
    for rule in &rules {
        let name = rule["alert"].as_str().expect("alert");
        tests.push(json!({
            "eval_time": duration(QUIET_AT_S),
            "alertname": name,
            "exp_alerts": [],
        }));
        let exp_alerts: Vec<Value> = match expected.iter().find(|e| e.alert == name) {
            None => Vec::new(),
            Some(e) => {
                let r#for = seconds(rule["for"].as_str().unwrap_or("0m"));
                assert!(
                    r#for + INTERVAL_S <= FIRING_AT_S - BEFORE_SAMPLES * INTERVAL_S,
                    "{name}: `for` {for}s is too long for this replay; raise FIRING_AT_S"
                );
                let mut labels: BTreeMap<String, String> = e
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                labels.insert("instance".into(), instance.into());
                labels.insert("job".into(), "fabstir-node".into());
                let annotations: BTreeMap<String, String> = rule["annotations"]
                    .as_object()
                    .expect("annotations")
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            render(v.as_str().expect("annotation"), &labels, e.value),
                        )
                    })
                    .collect();
                vec![json!({ "exp_labels": labels, "exp_annotations": annotations })]
            }
        };
        tests.push(json!({
            "eval_time": duration(FIRING_AT_S),
            "alertname": name,
            "exp_alerts": exp_alerts,
        }));
    }
    let rules_file = repo_root().join("configs/prometheus_alerts.yml");
    json!({
        "rule_files": [rules_file.display().to_string()],
        "evaluation_interval": duration(INTERVAL_S),
        "tests": [{
            "name": "a real node's scrapes before and after a failure",
            "interval": duration(INTERVAL_S),
            "input_series": input_series,
            "alert_rule_test": tests,
        }],
    })
}

/// Runs `promtool test rules` on `test`: `Ok(output)` when it passes.
fn promtool_test_rules(test: &Value) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("replay_test.yml");
    // JSON is YAML.
    std::fs::write(&path, serde_json::to_string_pretty(test).expect("json")).expect("write test");
    let output = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install it (Debian package `prometheus`; .ci/run does)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Replays the scrapes: the expected alerts must fire (and nothing else),
/// and the same test fed the "before" samples only must fail.
fn assert_replay_fires(instance: &str, scrapes: &Scrapes, expected: &[Expected]) {
    let test = alert_unit_test(instance, scrapes, expected);
    if let Err(output) = promtool_test_rules(&test) {
        panic!(
            "promtool test rules failed on the replay:\n{output}\n{}",
            serde_json::to_string_pretty(&test).unwrap_or_default()
        );
    }
    let unchanged = Scrapes {
        before: scrapes.before.clone(),
        after: scrapes.before.clone(),
    };
    match promtool_test_rules(&alert_unit_test(instance, &unchanged, expected)) {
        Ok(output) => {
            panic!("the replay passes without the failure, so it proves nothing:\n{output}")
        }
        Err(output) => {
            for e in expected {
                assert!(
                    output.contains(e.alert),
                    "without the failure, promtool should miss {}:\n{output}",
                    e.alert
                );
            }
        }
    }
}

fn instance(node: &Node) -> String {
    node.base.trim_start_matches("http://").to_string()
}

#[test]
#[ignore = "needs promtool; .ci/run runs it"]
fn a_failed_key_reload_fires_the_key_alerts_in_promtool() {
    let dir = DataDir::new();
    let (node, scrapes) = failed_reload(&dir);
    let failures = |text: &str| samples(text)["fabstir_key_load_failures_total"];
    // From 0, `increase` over the replay is exactly the difference.
    assert_eq!(failures(&scrapes.before), 0.0);
    let new_failures = failures(&scrapes.after);
    assert!(new_failures >= 1.0);
    assert_replay_fires(
        &instance(&node),
        &scrapes,
        &[
            Expected {
                alert: "FabstirKeysNotLoaded",
                labels: &[("severity", "critical")],
                value: 0.0,
            },
            Expected {
                alert: "FabstirKeyLoadFailure",
                labels: &[("severity", "warning")],
                value: new_failures,
            },
        ],
    );
}

#[test]
#[ignore = "needs promtool; .ci/run runs it"]
fn a_damaged_database_fires_the_database_alert_in_promtool() {
    let dir = DataDir::new();
    let (node, scrapes, _page) = damaged_database(&dir);
    assert_replay_fires(
        &instance(&node),
        &scrapes,
        &[Expected {
            alert: "FabstirDatabaseCheckFailing",
            labels: &[("check", "database"), ("severity", "critical")],
            value: 0.0,
        }],
    );
}
