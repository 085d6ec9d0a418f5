//! Keeps the monitoring configuration honest against a real node:
//!
//! - every metric name used by `configs/prometheus_alerts.yml` (each rule's
//!   `expr`) and by `configs/grafana_dashboard.json` (each panel target's
//!   `expr` and the template variables' queries) is in a real node's
//!   `/metrics`, with `_bucket`/`_sum`/`_count` allowed only on histograms;
//!   every label a selector matches on, and every value it matches (`=`,
//!   `!=`, and each alternative of a `=~`/`!~` alternation), is in the
//!   scrape; every label in a `by`/`without`/`on`/`ignoring`/`group_*`
//!   clause is one the referenced metrics carry (or `instance`/`job`, added
//!   by Prometheus, or `le`);
//! - the dashboard shows every metric the node exports; it is valid JSON
//!   with a Prometheus data-source variable, unique panel ids, a tidy
//!   grid, and at least one target with an `expr` in every panel; its
//!   queries parse (`promtool check rules`: an ignored test here, as it
//!   needs promtool; `.ci/run` installs promtool and runs it);
//! - every alert has a `for`, a severity, a summary, a description and a
//!   `runbook_url` naming a section of `docs/MONITORING.md`, which states
//!   the alert's expression, `for` and severity;
//! - `docs/MONITORING.md` documents every exported metric with its type,
//!   its labels and their values;
//! - the checker itself reports unknown names, labels and values.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::read_repo_file as read;
use common::{result, DataDir, Node};
use serde_json::{json, Value};

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

// ---------------------------------------------------------------------------
// The scrape
// ---------------------------------------------------------------------------

/// What `/metrics` exports: each metric family's type and, per label, the
/// values seen.
#[derive(Debug, Default)]
struct Scrape {
    types: BTreeMap<String, String>,
    labels: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut scrape = Scrape::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                    panic!("bad TYPE line: {line}");
                };
                scrape.types.insert(name.into(), kind.into());
                scrape.labels.entry(name.into()).or_default();
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest
                        .strip_suffix('}')
                        .unwrap_or_else(|| panic!("bad labels: {line}"));
                    let chars: Vec<char> = format!("{body}}}").chars().collect();
                    let (matchers, _) = parse_matchers(&chars, 0)
                        .unwrap_or_else(|e| panic!("bad labels in {line}: {e}"));
                    (name, matchers)
                }
                None => (series, Vec::new()),
            };
            let family = scrape
                .family(name)
                .unwrap_or_else(|| panic!("sample {name} has no TYPE line"));
            let entry = scrape.labels.entry(family).or_default();
            for m in labels {
                entry.entry(m.label).or_default().insert(m.value);
            }
            scrape
                .samples
                .insert(series.to_string(), value.parse().unwrap_or(f64::NAN));
        }
        scrape
    }

    /// The family a series name belongs to: itself, or the histogram it is
    /// the `_bucket`, `_sum` or `_count` of.
    fn family(&self, name: &str) -> Option<String> {
        if self.types.contains_key(name) {
            return Some(name.to_string());
        }
        HISTOGRAM_SUFFIXES.iter().find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            (self.types.get(base).map(String::as_str) == Some("histogram"))
                .then(|| base.to_string())
        })
    }

    fn sample(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} is not in /metrics"))
    }
}

// ---------------------------------------------------------------------------
// A small PromQL scanner: selectors, their matchers and grouping labels
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Matcher {
    label: String,
    op: String,
    value: String,
}

#[derive(Debug)]
struct Selector {
    name: String,
    matchers: Vec<Matcher>,
}

#[derive(Debug, Default)]
struct Refs {
    selectors: Vec<Selector>,
    /// Labels named in `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`.
    grouping: BTreeSet<String>,
}

/// Words that are not metric names when not followed by `(`.
const KEYWORDS: [&str; 31] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "start",
    "end",
    "step",
];

const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn skip_ws(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

fn ident_at(c: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < c.len() && is_ident(c[i]) {
        i += 1;
    }
    (c[start..i].iter().collect(), i)
}

/// A string literal at `i`: its decoded value and the index after it.
fn string_at(c: &[char], i: usize) -> Result<(String, usize), String> {
    let quote = c[i];
    let mut out = String::new();
    let mut j = i + 1;
    while j < c.len() {
        let ch = c[j];
        if ch == quote {
            return Ok((out, j + 1));
        }
        if ch == '\\' && quote != '`' {
            j += 1;
            match c.get(j) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(&other) => out.push(other),
                None => break,
            }
        } else {
            out.push(ch);
        }
        j += 1;
    }
    Err(format!(
        "unterminated string at {i}: {}",
        c.iter().collect::<String>()
    ))
}

/// Label matchers from the `{` at `i` to its `}`; returns the index after it.
fn parse_matchers(c: &[char], i: usize) -> Result<(Vec<Matcher>, usize), String> {
    let mut j = if c.get(i) == Some(&'{') { i + 1 } else { i };
    let mut out = Vec::new();
    loop {
        j = skip_ws(c, j);
        match c.get(j) {
            Some('}') => return Ok((out, j + 1)),
            Some(&ch) if is_ident_start(ch) => {}
            other => return Err(format!("expected a label at {j}, found {other:?}")),
        }
        let (label, next) = ident_at(c, j);
        j = skip_ws(c, next);
        let op: String = match (c.get(j), c.get(j + 1)) {
            (Some('='), Some('~')) | (Some('!'), Some('~')) | (Some('!'), Some('=')) => {
                c[j..j + 2].iter().collect()
            }
            (Some('='), _) => "=".into(),
            other => {
                return Err(format!(
                    "expected a matcher operator at {j}, found {other:?}"
                ))
            }
        };
        j = skip_ws(c, j + op.len());
        if !matches!(c.get(j), Some('"') | Some('\'') | Some('`')) {
            return Err(format!("expected a string after {label}{op}"));
        }
        let (value, next) = string_at(c, j)?;
        out.push(Matcher { label, op, value });
        j = skip_ws(c, next);
        match c.get(j) {
            Some(',') => j += 1,
            Some('}') => return Ok((out, j + 1)),
            other => return Err(format!("expected , or }} at {j}, found {other:?}")),
        }
    }
}

/// Selectors (metric names with their matchers) and grouping labels of a
/// PromQL expression (Grafana's `$variables` allowed).
fn scan_promql(expr: &str) -> Result<Refs, String> {
    let c: Vec<char> = expr.chars().collect();
    let mut refs = Refs::default();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '#' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if matches!(ch, '"' | '\'' | '`') {
            i = string_at(&c, i)?.1;
        } else if ch == '[' {
            // A range or subquery: durations and Grafana variables.
            while i < c.len() && c[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if ch == '$' {
            // A Grafana variable: $name or ${name}.
            i += 1;
            if c.get(i) == Some(&'{') {
                while i < c.len() && c[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                i = ident_at(&c, i).1;
            }
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else if is_ident_start(ch) {
            let (ident, next) = ident_at(&c, i);
            let j = skip_ws(&c, next);
            let lower = ident.to_ascii_lowercase();
            if GROUPING.contains(&lower.as_str()) {
                i = next;
                if c.get(j) == Some(&'(') {
                    let mut k = j + 1;
                    loop {
                        k = skip_ws(&c, k);
                        match c.get(k) {
                            Some(')') => break,
                            Some(',') => k += 1,
                            Some(&x) if is_ident_start(x) => {
                                let (label, after) = ident_at(&c, k);
                                refs.grouping.insert(label);
                                k = after;
                            }
                            other => {
                                return Err(format!("bad label list after {ident}: {other:?}"))
                            }
                        }
                    }
                    i = k + 1;
                }
            } else if c.get(j) == Some(&'(') || KEYWORDS.contains(&lower.as_str()) {
                // A function or a keyword.
                i = next;
            } else {
                let mut selector = Selector {
                    name: ident,
                    matchers: Vec::new(),
                };
                i = next;
                if c.get(j) == Some(&'{') {
                    let (matchers, after) = parse_matchers(&c, j)?;
                    selector.matchers = matchers;
                    i = after;
                }
                refs.selectors.push(selector);
            }
        } else if ch == '{' {
            let (matchers, after) = parse_matchers(&c, i)?;
            refs.selectors.push(Selector {
                name: String::new(),
                matchers,
            });
            i = after;
        } else {
            i += 1;
        }
    }
    Ok(refs)
}

/// The alternatives of a regex that is a plain alternation of literals.
fn alternatives(regex: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = regex.split('|').map(str::to_string).collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(parts)
}

/// Checks one expression against the scrape; returns the metric families
/// it uses, and records what is wrong in `errors`.
fn check_expr(
    what: &str,
    expr: &str,
    scrape: &Scrape,
    errors: &mut Vec<String>,
) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let refs = match scan_promql(expr) {
        Ok(refs) => refs,
        Err(e) => {
            errors.push(format!("{what}: cannot scan `{expr}`: {e}"));
            return used;
        }
    };
    if refs.selectors.is_empty() {
        errors.push(format!("{what}: `{expr}` uses no metric"));
    }
    let mut label_names: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
    for selector in &refs.selectors {
        let name = &selector.name;
        if !name.starts_with("fabstir_") {
            errors.push(format!(
                "{what}: `{name}` is not a metric the node exports (no fabstir_ prefix)"
            ));
            continue;
        }
        let Some(family) = scrape.family(name) else {
            errors.push(format!("{what}: {name} is not exported by /metrics"));
            continue;
        };
        let kind = scrape.types[&family].as_str();
        if kind == "histogram" && *name == family {
            errors.push(format!(
                "{what}: {name} is a histogram: use {name}_bucket, _sum or _count"
            ));
        }
        used.insert(family.clone());
        let exported = &scrape.labels[&family];
        label_names.extend(exported.keys().cloned());
        for m in &selector.matchers {
            if TARGET_LABELS.contains(&m.label.as_str()) {
                continue;
            }
            if m.label == "le" && !name.ends_with("_bucket") {
                errors.push(format!("{what}: {name} has no `le` label"));
                continue;
            }
            let Some(values) = exported.get(&m.label) else {
                errors.push(format!(
                    "{what}: {name} has no label `{}` in /metrics",
                    m.label
                ));
                continue;
            };
            if m.value.contains('$') {
                continue;
            }
            let wanted = if m.op.contains('~') {
                match alternatives(&m.value) {
                    Some(parts) => parts,
                    None => {
                        errors.push(format!(
                            "{what}: cannot check regex {}{}\"{}\" (use an alternation of literals)",
                            m.label, m.op, m.value
                        ));
                        continue;
                    }
                }
            } else {
                vec![m.value.clone()]
            };
            for value in wanted {
                if !values.contains(&value) {
                    errors.push(format!(
                        "{what}: {name}{{{}{}\"{}\"}}: `{value}` is not a value of `{}` in /metrics (values: {values:?})",
                        m.label, m.op, m.value, m.label
                    ));
                }
            }
        }
    }
    for label in &refs.grouping {
        if label != "le" && !label_names.contains(label) {
            errors.push(format!(
                "{what}: groups by `{label}`, which no metric in `{expr}` carries"
            ));
        }
    }
    used
}

// ---------------------------------------------------------------------------
// The configuration files
// ---------------------------------------------------------------------------

fn alert_rules() -> Vec<Value> {
    let yaml: serde_norway::Value = serde_norway::from_str(&read("configs/prometheus_alerts.yml"))
        .expect("configs/prometheus_alerts.yml is YAML");
    let doc = serde_json::to_value(yaml).expect("YAML converts to JSON");
    let groups = doc["groups"].as_array().expect("groups");
    assert!(
        groups.iter().any(|g| g["name"] == "fabstir-node"),
        "no group fabstir-node"
    );
    let rules: Vec<Value> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect();
    assert!(!rules.is_empty(), "no rules");
    rules
}

fn dashboard() -> Value {
    serde_json::from_str(&read("configs/grafana_dashboard.json"))
        .expect("configs/grafana_dashboard.json is valid JSON")
}

/// Every panel, including those inside (collapsed) rows.
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        out.push(panel.clone());
        if let Some(inner) = panel["panels"].as_array() {
            out.extend(inner.iter().cloned());
        }
    }
    out
}

/// `(where, expr)` for every panel target.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            p["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| {
                    let expr = t["expr"].as_str().unwrap_or_default().to_string();
                    (format!("panel \"{title}\" target {}", t["refId"]), expr)
                })
        })
        .collect()
}

/// `(where, selector, label)` of the template variables' `label_values(...)` queries.
fn variable_queries(dashboard: &Value) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"]
            .as_str()
            .or(var["query"].as_str())
            .unwrap_or_default()
            .trim()
            .to_string();
        let what = format!("variable ${}", var["name"].as_str().unwrap_or("?"));
        match query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
        {
            Some(args) => match args.rsplit_once(',') {
                Some((selector, label)) => {
                    out.push((what, selector.trim().into(), Some(label.trim().into())))
                }
                None => out.push((what, args.trim().into(), None)),
            },
            None => out.push((what, query, None)),
        }
    }
    out
}

/// Checks every expression of the rules and the dashboard; returns the
/// families each uses.
fn check_all(scrape: &Scrape, errors: &mut Vec<String>) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut from_rules = BTreeSet::new();
    for rule in alert_rules() {
        let name = rule["alert"]
            .as_str()
            .or(rule["record"].as_str())
            .unwrap_or("?");
        let expr = rule["expr"].as_str().expect("every rule has an expr");
        from_rules.extend(check_expr(&format!("rule {name}"), expr, scrape, errors));
    }
    let dashboard = dashboard();
    let mut from_dashboard = BTreeSet::new();
    for (what, expr) in dashboard_exprs(&dashboard) {
        from_dashboard.extend(check_expr(&what, &expr, scrape, errors));
    }
    for (what, selector, label) in variable_queries(&dashboard) {
        let used = check_expr(&what, &selector, scrape, errors);
        if let Some(label) = label {
            let known = TARGET_LABELS.contains(&label.as_str())
                || used.iter().any(|f| scrape.labels[f].contains_key(&label));
            if !known {
                errors.push(format!("{what}: label `{label}` is not on {selector}"));
            }
        }
        from_dashboard.extend(used);
    }
    (from_rules, from_dashboard)
}

/// GitHub's anchor for a Markdown heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The sections of a Markdown file: anchor -> text up to the next heading
/// of the same or a higher level.
fn sections(markdown: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = BTreeMap::new();
    let mut in_code = false;
    let mut headings = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if level > 0 && line[level..].starts_with(' ') {
            headings.push((n, level, slug(&line[level..])));
        }
    }
    for (k, (start, level, anchor)) in headings.iter().enumerate() {
        let end = headings[k + 1..]
            .iter()
            .find(|(_, l, _)| l <= level)
            .map_or(lines.len(), |(n, _, _)| *n);
        out.insert(anchor.clone(), lines[*start..end].join("\n"));
    }
    out
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// The scrape of a mock-proof node after one result went through proving,
/// a checkpoint and a settlement (one node for all the tests here).
fn live_scrape() -> &'static Scrape {
    static SCRAPE: OnceLock<Scrape> = OnceLock::new();
    SCRAPE.get_or_init(scrape_after_one_job)
}

fn scrape_after_one_job() -> Scrape {
    let dir = DataDir::new();
    let node = Node::start(dir.path(), &["--mock-proofs"]);
    let before = Scrape::parse(&node.metrics_text());
    assert_eq!(before.sample("fabstir_keys_loaded"), 1.0);
    assert_eq!(before.sample("fabstir_results_accepted_total"), 0.0);

    let job = node.submit_and_prove(&result(7));
    node.checkpoint(&job, 50);
    let (status, settlement) = node.post(&format!("/v1/settlements/{job}"), &json!({}));
    assert_eq!(status, 200, "{settlement}");
    assert_eq!(settlement["outcome"], "settled", "{settlement}");
    node.wait_idle(Duration::from_secs(30));

    let scrape = Scrape::parse(&node.metrics_text());
    // The metrics the dashboard and alerts read move as they assume.
    for (series, value) in [
        ("fabstir_results_accepted_total", 1.0),
        ("fabstir_proofs_generated_total", 1.0),
        ("fabstir_proof_cache_misses_total", 1.0),
        ("fabstir_proof_generation_seconds_count", 1.0),
        ("fabstir_checkpoints_submitted_total", 1.0),
        (
            "fabstir_settlement_validations_total{outcome=\"passed\"}",
            1.0,
        ),
        ("fabstir_settlement_validations_all_total", 1.0),
        ("fabstir_settlement_validations_passed_total", 1.0),
        ("fabstir_settlement_validation_seconds_count", 1.0),
        ("fabstir_settlement_success_ratio", 1.0),
        ("fabstir_settlements_paid_total", 1.0),
        ("fabstir_prover_queue_depth", 0.0),
        ("fabstir_keys_loaded", 1.0),
        ("fabstir_key_load_failures_total", 0.0),
        ("fabstir_health_ok{check=\"database\"}", 1.0),
        ("fabstir_health_ok{check=\"keys\"}", 1.0),
        ("fabstir_health_ok{check=\"key_reload\"}", 1.0),
        ("fabstir_health_ok{check=\"prover_queue\"}", 1.0),
    ] {
        assert_eq!(scrape.sample(series), value, "{series}");
    }
    assert!(scrape.sample("fabstir_proof_size_bytes") > 0.0);
    scrape
}

#[test]
fn rules_and_dashboard_use_only_exported_metrics_labels_and_values() {
    let scrape = live_scrape();
    assert!(
        scrape.types.len() >= 20,
        "too few metrics: {:?}",
        scrape.types
    );
    let mut errors = Vec::new();
    let (from_rules, from_dashboard) = check_all(scrape, &mut errors);
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));

    // The alerts cover the seed's and the node's failure modes.
    for family in [
        "fabstir_proof_generation_failures_total",
        "fabstir_proofs_generated_total",
        "fabstir_proof_generation_seconds",
        "fabstir_proof_verifications_total",
        "fabstir_proof_cache_hits_total",
        "fabstir_proof_cache_misses_total",
        "fabstir_key_load_failures_total",
        "fabstir_keys_loaded",
        "fabstir_health_ok",
        "fabstir_prover_queue_depth",
        "fabstir_prover_queue_capacity",
        "fabstir_prover_queue_full_total",
        "fabstir_settlement_validations_total",
        "fabstir_settlement_success_ratio",
    ] {
        assert!(
            from_rules.contains(family),
            "no alert uses {family}: {from_rules:?}"
        );
    }
    // The dashboard shows every metric the node exports.
    let missing: Vec<_> = scrape
        .types
        .keys()
        .filter(|f| f.starts_with("fabstir_") && !from_dashboard.contains(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics not on the dashboard: {missing:?}"
    );
}

#[test]
fn the_checker_reports_unknown_names_labels_and_values() {
    let scrape = Scrape::parse(
        "# TYPE fabstir_a_total counter\n\
         fabstir_a_total{outcome=\"passed\"} 1\n\
         fabstir_a_total{outcome=\"wrong_host\"} 0\n\
         # TYPE fabstir_b gauge\n\
         fabstir_b 3\n\
         # TYPE fabstir_h_seconds histogram\n\
         fabstir_h_seconds_bucket{le=\"0.5\"} 1\n\
         fabstir_h_seconds_bucket{le=\"+Inf\"} 1\n\
         fabstir_h_seconds_sum 0.1\n\
         fabstir_h_seconds_count 1\n",
    );
    let good = [
        r#"sum without (outcome) (rate(fabstir_a_total{outcome!="passed",instance=~"$instance"}[$__rate_interval])) / ignoring (outcome) group_left sum by (instance, job) (fabstir_b)"#,
        r#"histogram_quantile(0.95, sum by (le) (rate(fabstir_h_seconds_bucket[5m]))) > 0.5"#,
        r#"increase(fabstir_a_total{outcome=~"passed|wrong_host"}[10m]) > 0 and fabstir_h_seconds_count >= 10"#,
        r#"absent(fabstir_b) or fabstir_h_seconds_sum / fabstir_h_seconds_count"#,
    ];
    for expr in good {
        let mut errors = Vec::new();
        check_expr("good", expr, &scrape, &mut errors);
        assert!(errors.is_empty(), "{expr}: {errors:?}");
    }
    let bad = [
        ("rate(fabstir_nope_total[5m])", "not exported"),
        ("up == 0", "no fabstir_ prefix"),
        ("fabstir_b_bucket", "not exported"),
        ("fabstir_a_total_count", "not exported"),
        ("fabstir_h_seconds > 1", "is a histogram"),
        (
            r#"fabstir_a_total{outcome="nope"}"#,
            "`nope` is not a value",
        ),
        (
            r#"fabstir_a_total{outcome!="nope"}"#,
            "`nope` is not a value",
        ),
        (
            r#"fabstir_a_total{outcome=~"passed|nope"}"#,
            "`nope` is not a value",
        ),
        (r#"fabstir_a_total{reason="x"}"#, "no label `reason`"),
        (
            r#"fabstir_a_total{outcome=~"pass.*"}"#,
            "cannot check regex",
        ),
        (r#"fabstir_b{le="0.5"}"#, "no `le` label"),
        ("sum by (reason) (fabstir_a_total)", "groups by `reason`"),
        ("fabstir_a_total / on (outcome) fabstir_b", ""),
        ("sum without (nope) (fabstir_b)", "groups by `nope`"),
        ("1 + 1", "uses no metric"),
        (r#"fabstir_b{oops}"#, "cannot scan"),
    ];
    for (expr, expected) in bad {
        let mut errors = Vec::new();
        check_expr("bad", expr, &scrape, &mut errors);
        if expected.is_empty() {
            // `outcome` is on fabstir_a_total: fine.
            assert!(errors.is_empty(), "{expr}: {errors:?}");
        } else {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expr}: expected an error containing {expected:?}, got {errors:?}"
            );
        }
    }
}

#[test]
fn every_alert_has_for_severity_annotations_and_a_runbook_section() {
    let monitoring = read("docs/MONITORING.md");
    let sections = sections(&monitoring);
    let mut names = BTreeSet::new();
    for rule in alert_rules() {
        let Some(name) = rule["alert"].as_str() else {
            continue;
        };
        assert!(names.insert(name.to_string()), "alert {name} twice");
        assert!(
            name.starts_with("Fabstir"),
            "{name}: alerts are named Fabstir*"
        );
        let r#for = rule["for"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no `for`"));
        let severity = rule["labels"]["severity"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no severity label"));
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity}"
        );
        for annotation in ["summary", "description", "runbook_url"] {
            let text = rule["annotations"][annotation].as_str().unwrap_or_default();
            assert!(!text.trim().is_empty(), "{name} has no {annotation}");
        }
        let runbook = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = runbook
            .strip_prefix("docs/MONITORING.md#")
            .unwrap_or_else(|| {
                panic!("{name}: runbook_url {runbook} is not docs/MONITORING.md#...")
            });
        assert_eq!(anchor, slug(name), "{name}: runbook anchor");
        let section = sections
            .get(anchor)
            .unwrap_or_else(|| panic!("{name}: docs/MONITORING.md has no section #{anchor}"));
        let expr = rule["expr"].as_str().unwrap();
        assert!(
            collapse_whitespace(section).contains(&collapse_whitespace(expr)),
            "{name}: docs/MONITORING.md#{anchor} does not state the expression\n{expr}"
        );
        for fact in [
            format!("`for`: {for}", r#for = r#for),
            format!("severity `{severity}`"),
        ] {
            assert!(
                section.contains(&fact),
                "{name}: docs/MONITORING.md#{anchor} does not say {fact}"
            );
        }
        for step in ["/health/ezkl", "/metrics"] {
            assert!(
                section.contains(step),
                "{name}: the runbook does not use {step}"
            );
        }
    }
    assert!(names.len() >= 10, "only {} alerts", names.len());
}

#[test]
fn the_dashboard_is_valid_and_every_panel_has_a_query() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion"
    );
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["uid"].as_str().is_some_and(|t| !t.is_empty()));
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let datasource = variables
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data-source variable");
    assert_eq!(datasource["query"], "prometheus");
    let ds_ref = format!("${{{}}}", datasource["name"].as_str().expect("name"));

    let panels = panels(&dashboard);
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    let mut queries = 0;
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel has no title: {panel}");
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{title}: id"));
        assert!(ids.insert(id), "panel id {id} twice");
        let grid = &panel["gridPos"];
        let (x, y, w, h) = (
            grid["x"].as_u64().unwrap_or(99),
            grid["y"].as_u64().unwrap_or(0),
            grid["w"].as_u64().unwrap_or(0),
            grid["h"].as_u64().unwrap_or(0),
        );
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: gridPos {grid}");
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(cells.insert((cx, cy)), "{title} overlaps another panel");
            }
        }
        if panel["type"] == "row" {
            assert!(panel.get("targets").is_none(), "row {title} has targets");
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], ds_ref,
            "{title}: data source is not the variable"
        );
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title} has no targets"));
        let mut refs = BTreeSet::new();
        let mut with_expr = 0;
        for target in targets {
            let r = target["refId"].as_str().unwrap_or_default();
            assert!(!r.is_empty() && refs.insert(r), "{title}: refId {r:?}");
            assert_eq!(target["datasource"]["uid"], ds_ref, "{title}/{r}");
            if target["expr"]
                .as_str()
                .is_some_and(|e| !e.trim().is_empty())
            {
                with_expr += 1;
            }
        }
        assert!(with_expr > 0, "{title} has no target with an expr");
        queries += with_expr;
    }
    assert!(panels.len() >= 15, "only {} panels", panels.len());
    assert!(queries >= 20, "only {queries} queries");
    // The panels the monitoring plan asks for.
    let titles: Vec<String> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap_or_default().to_lowercase())
        .collect();
    for wanted in [
        "results accepted",
        "proofs generated",
        "latency",
        "proof size",
        "cache hit ratio",
        "queue depth",
        "queue full",
        "verification outcomes",
        "settlement validations by outcome",
        "success ratio",
        "settlement validation latency",
        "settlements paid",
        "checkpoints submitted",
        "keys loaded",
        "key load failures",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel titled *{wanted}*: {titles:?}"
        );
    }
}

/// The dashboard's queries parse as PromQL (with Grafana's variables
/// replaced): checked by `promtool check rules` on a generated rules file.
/// Ignored unless asked for (`-- --ignored`), as it needs promtool; run so,
/// it fails when promtool is missing. `.ci/run` installs promtool and runs it.
#[test]
#[ignore = "needs promtool; .ci/run runs it"]
fn the_dashboard_queries_parse_with_promtool() {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "promtool is not installed (Debian package `prometheus`; .ci/run installs it)"
    );
    let dashboard = dashboard();
    let mut rules = Vec::new();
    for (n, (what, expr)) in dashboard_exprs(&dashboard).into_iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$__interval", "1m")
            .replace("$__range", "1h")
            .replace("$instance", ".*");
        rules.push(json!({ "record": format!("dashboard:query_{n}"), "expr": expr, "labels": { "panel": what } }));
    }
    let file = json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dashboard_rules.yml");
    // JSON is YAML.
    std::fs::write(&path, file.to_string()).expect("write rules");
    let output = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool check rules:\n{text}");
    assert!(
        text.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "{text}"
    );
}

#[test]
fn monitoring_md_documents_every_metric_with_its_type_labels_and_values() {
    let scrape = live_scrape();
    let monitoring = read("docs/MONITORING.md");
    let mut missing = Vec::new();
    for (family, kind) in &scrape.types {
        let row = monitoring
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{family}`")));
        let Some(row) = row else {
            missing.push(format!("{family}: no table row"));
            continue;
        };
        if !row.contains(&format!("| {kind} |")) {
            missing.push(format!("{family}: type {kind} not in its row"));
        }
        for (label, values) in scrape.labels[family].iter().filter(|(l, _)| *l != "le") {
            if !row.contains(&format!("`{label}`")) {
                missing.push(format!("{family}: label `{label}` not in its row"));
            }
            for value in values {
                if !row.contains(&format!("`{value}`")) {
                    missing.push(format!("{family}: {label} value `{value}` not in its row"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/MONITORING.md:\n{}",
        missing.join("\n")
    );
}
