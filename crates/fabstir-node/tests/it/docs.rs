//! Keeps the operator documentation honest: each test fails when a document
//! drifts from the code it describes.
//!
//! - `docs/TROUBLESHOOTING.md` names every HTTP error code (one row each in
//!   its table with a Status column, giving `ErrorCode::status()`, and no
//!   row for a code that does not exist), verification and settlement reason
//!   code (`fabstir_node::reasons`), proof failure code, CLI failure code
//!   (with its exit code), every error message of the node and the proof
//!   library, and every warning or error log event; the messages it quotes
//!   exist in the code.
//! - Every `fabstir-node <command> --flag` in the README and the operator
//!   documents names a real command and flag (asked of the binary with
//!   `--help`); every environment variable they name is read by the code
//!   (or is documented as no longer read); every HTTP path is one of
//!   `docs/openapi.yaml` (which the node answers exactly: `openapi`); the
//!   checks they list for `keys verify` are those it reports.
//! - The figures of `docs/CIRCUIT_SPEC.md` equal the code's and the pinned
//!   files'; its hex values are test vectors; its Mermaid diagram is the
//!   README's.
//! - Every test `docs/SECURITY.md` cites exists in the file it names.
//! - The systemd unit of `docs/DEPLOYMENT.md` runs a real command, and the
//!   node survives the SIGHUP it reloads with.
//!
//! What only the source knows (error messages, log events, CLI failure
//! codes) is read from syntax trees (`syn`); everything else is asked of the
//! binary or the library (`ErrorCode::ALL`, `fabstir_node::reasons`,
//! `GenerateError::CODES`).
//!
//! Conventions the documents follow (so that these checks can read them):
//! codes are written in backticks; message excerpts are code spans in a table
//! column titled "Message", with `…` for the variable parts; CLI failure codes
//! are the first cell of a table with an "Exit" column; the circuit figures
//! are a table whose first column is "Figure"; cited tests are written
//! `` `crates/<crate>/<path>.rs::<test name>` ``; a variable the code does not
//! read appears only on lines saying "no longer read" or "not read".

use crate::common;

use common::{read_repo_file as read, repo_root};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use proc_macro2::{TokenStream, TokenTree};

use fabstir_node::api::ErrorCode;
use fabstir_node::prover::GenerateError;
use fabstir_node::reasons::{Reason, VERIFY_REASON_CODES};
use fabstir_zk::circuit::layout;
use fabstir_zk::{poseidon, ProofLayout};

/// The operator documents, and the README (whose commands are checked too).
const DOCS: [&str; 6] = [
    "README.md",
    "docs/DEPLOYMENT.md",
    "docs/MIGRATION.md",
    "docs/TROUBLESHOOTING.md",
    "docs/SECURITY.md",
    "docs/CIRCUIT_SPEC.md",
];

/// Every `*.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (path, text) of every source file of both crates (`src/` only, or with
/// `tests/` too).
fn sources(with_tests: bool) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for krate in ["fabstir-zk", "fabstir-node"] {
        rust_files(
            &repo_root().join("crates").join(krate).join("src"),
            &mut files,
        );
        if with_tests {
            rust_files(
                &repo_root().join("crates").join(krate).join("tests"),
                &mut files,
            );
        }
    }
    assert!(files.len() > 20, "source files not found: {files:?}");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("source file");
            (path, text)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reading Rust source: what only the source knows (error messages, log
// events, CLI failure codes), from syntax trees parsed with `syn`

/// A file's syntax tree.
fn syntax(path: &Path, text: &str) -> syn::File {
    syn::parse_file(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The string literals directly in `tokens` (not in nested groups), in order.
fn string_literals(tokens: &TokenStream) -> Vec<String> {
    tokens
        .clone()
        .into_iter()
        .filter_map(|token| match token {
            TokenTree::Literal(literal) => {
                syn::parse2::<syn::LitStr>(TokenTree::Literal(literal).into())
                    .ok()
                    .map(|s| s.value())
            }
            _ => None,
        })
        .collect()
}

/// The value of a string literal expression.
fn string_value(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// A single-identifier path expression's name.
fn variable(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.to_string()),
        _ => None,
    }
}

fn path_names(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every HTTP error code the node can answer with, and its status (the
/// library's one mapping, `ErrorCode::status()`).
fn http_error_codes() -> BTreeMap<String, u16> {
    let codes: BTreeMap<String, u16> = ErrorCode::ALL
        .iter()
        .map(|code| (code.as_str().to_string(), code.status().as_u16()))
        .collect();
    assert_eq!(codes.len(), ErrorCode::ALL.len(), "an error code twice");
    codes
}

/// The failures one file of the CLI builds.
#[derive(Default)]
struct Failures {
    /// (code, exit) of `Failure::input`/`other` (exit 2/1) with a literal code.
    literal: Vec<(String, u8)>,
    /// (variable, exit) of those whose code is a variable.
    variables: Vec<(String, u8)>,
    /// Codes passed some other way (an expression this test cannot read).
    unreadable: Vec<String>,
    /// Closure -> its parameters (`let fail = |code| …`).
    closures: BTreeMap<String, Vec<String>>,
    /// Variable -> the string literals its `match` arms give
    /// (`let code = match … { … => "code", … }`).
    matches: BTreeMap<String, BTreeSet<String>>,
    /// Function or closure -> the first argument of its calls, where a
    /// string literal.
    first_literals: BTreeMap<String, Vec<String>>,
    /// `Failure { … }` struct literals outside `impl Failure`.
    struct_literals: usize,
    in_impl_failure: bool,
}

impl<'ast> syn::visit::Visit<'ast> for Failures {
    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        let outer = self.in_impl_failure;
        self.in_impl_failure =
            matches!(&*item.self_ty, syn::Type::Path(t) if t.path.is_ident("Failure"));
        syn::visit::visit_item_impl(self, item);
        self.in_impl_failure = outer;
    }

    fn visit_expr_struct(&mut self, expr: &'ast syn::ExprStruct) {
        if !self.in_impl_failure
            && path_names(&expr.path)
                .last()
                .is_some_and(|n| n == "Failure")
        {
            self.struct_literals += 1;
        }
        syn::visit::visit_expr_struct(self, expr);
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        let name = match &local.pat {
            syn::Pat::Ident(p) => Some(p.ident.to_string()),
            _ => None,
        };
        if let (Some(name), Some(init)) = (name, &local.init) {
            match &*init.expr {
                syn::Expr::Closure(closure) => {
                    let parameters = closure
                        .inputs
                        .iter()
                        .filter_map(|input| match input {
                            syn::Pat::Ident(p) => Some(p.ident.to_string()),
                            syn::Pat::Type(t) => match &*t.pat {
                                syn::Pat::Ident(p) => Some(p.ident.to_string()),
                                _ => None,
                            },
                            _ => None,
                        })
                        .collect();
                    self.closures.insert(name, parameters);
                }
                syn::Expr::Match(m) => {
                    let codes = m.arms.iter().filter_map(|arm| string_value(&arm.body));
                    self.matches.entry(name).or_default().extend(codes);
                }
                _ => {}
            }
        }
        syn::visit::visit_local(self, local);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(function) = &*call.func {
            let names = path_names(&function.path);
            let first = call.args.first();
            match names.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["Failure" | "Self", kind @ ("input" | "other")] => {
                    let exit = if kind == "input" { 2 } else { 1 };
                    let first = first.expect("a failure has a code");
                    if let Some(code) = string_value(first) {
                        self.literal.push((code, exit));
                    } else if let Some(name) = variable(first) {
                        self.variables.push((name, exit));
                    } else {
                        self.unreadable.push(quote::quote!(#first).to_string());
                    }
                }
                [name] => {
                    if let Some(literal) = first.and_then(string_value) {
                        self.first_literals
                            .entry(name.to_string())
                            .or_default()
                            .push(literal);
                    }
                }
                _ => {}
            }
        }
        syn::visit::visit_expr_call(self, call);
    }
}

/// Every CLI failure code with the exit codes it comes with: literal codes of
/// `Failure::input`/`Failure::other` (exit 2/1), and codes passed through a
/// closure (`let fail = |code| Failure::other(code, …)`, then `fail("…")`) or
/// chosen by a `match` (`let code = match … { … => "…" }`).
fn cli_failure_codes() -> BTreeMap<String, BTreeSet<u8>> {
    let mut files = Vec::new();
    rust_files(&repo_root().join("crates/fabstir-node/src/cli"), &mut files);
    let mut codes: BTreeMap<String, BTreeSet<u8>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source file");
        let mut found = Failures::default();
        syn::visit::Visit::visit_file(&mut found, &syntax(file, &text));
        // Failures are built with `input`/`other` only (a struct literal
        // would hide its code from this test).
        assert_eq!(
            found.struct_literals,
            0,
            "{}: a Failure built as a struct literal",
            file.display()
        );
        assert!(
            found.unreadable.is_empty(),
            "{}: failure codes this test cannot read: {:?}",
            file.display(),
            found.unreadable
        );
        let mut all = found.literal.clone();
        for (name, exit) in &found.variables {
            let through_closure = found
                .closures
                .iter()
                .filter(|(_, parameters)| parameters.contains(name))
                .flat_map(|(closure, _)| found.first_literals.get(closure).into_iter().flatten());
            let held: BTreeSet<String> = through_closure
                .chain(found.matches.get(name).into_iter().flatten())
                .cloned()
                .collect();
            assert!(
                !held.is_empty(),
                "{}: which codes does `{name}` hold in a failure? Teach cli_failure_codes()",
                file.display()
            );
            all.extend(held.into_iter().map(|code| (code, *exit)));
        }
        for (code, exit) in all {
            assert!(
                is_code(&code),
                "{}: odd failure code {code:?}",
                file.display()
            );
            codes.entry(code).or_default().insert(exit);
        }
    }
    assert!(
        codes.contains_key("keys") && codes.contains_key("config") && codes.len() >= 15,
        "CLI failure codes read badly: {codes:?}"
    );
    codes
}

/// Reads the `#[error("…")]` messages and the `tracing::warn!`/`error!`
/// events of a file.
#[derive(Default)]
struct Messages {
    errors: Vec<String>,
    logs: Vec<String>,
}

impl<'ast> syn::visit::Visit<'ast> for Messages {
    fn visit_attribute(&mut self, attribute: &'ast syn::Attribute) {
        if attribute.path().is_ident("error") {
            if let syn::Meta::List(list) = &attribute.meta {
                // `#[error("…", …)]`; not `#[error(transparent)]`.
                if let Some(TokenTree::Literal(_)) = list.tokens.clone().into_iter().next() {
                    self.errors
                        .extend(string_literals(&list.tokens).into_iter().next());
                }
            }
        }
        syn::visit::visit_attribute(self, attribute);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let names = path_names(&mac.path);
        if names == ["tracing", "warn"] || names == ["tracing", "error"] {
            // The message is the last literal (after any fields).
            let message = string_literals(&mac.tokens)
                .pop()
                .unwrap_or_else(|| panic!("`{}!` without a message", names.join("::")));
            self.logs.push(message);
        }
        syn::visit::visit_macro(self, mac);
    }
}

/// The messages of the sources (`src/` of both crates): (file, message).
fn messages() -> Vec<(PathBuf, Messages)> {
    sources(false)
        .into_iter()
        .map(|(path, text)| {
            let mut found = Messages::default();
            syn::visit::Visit::visit_file(&mut found, &syntax(&path, &text));
            (path, found)
        })
        .collect()
}

/// The message of every `#[error("…")]` in the source (not `transparent`).
fn error_messages() -> Vec<(PathBuf, String)> {
    let out: Vec<(PathBuf, String)> = messages()
        .into_iter()
        .flat_map(|(path, found)| found.errors.into_iter().map(move |m| (path.clone(), m)))
        .collect();
    assert!(out.len() > 50, "error messages read badly: {out:?}");
    out
}

/// The fixed pieces of a format string (between `{…}` placeholders).
fn fixed_pieces(format: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut depth = 0;
    for c in format.chars() {
        match c {
            '{' => {
                depth += 1;
                pieces.push(String::new());
            }
            '}' => depth -= 1,
            c if depth == 0 => pieces.last_mut().expect("piece").push(c),
            _ => {}
        }
    }
    pieces
}

/// Text as compared: no backticks, whitespace collapsed.
fn normalize(text: &str) -> String {
    text.replace('`', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The message of every `tracing::warn!`/`tracing::error!` of the node.
fn warning_and_error_logs() -> BTreeSet<String> {
    let messages: BTreeSet<String> = messages()
        .into_iter()
        .filter(|(path, _)| path.starts_with(repo_root().join("crates/fabstir-node")))
        .flat_map(|(_, found)| found.logs)
        .collect();
    assert!(messages.len() >= 8, "log messages read badly: {messages:?}");
    messages
}

// ---------------------------------------------------------------------------
// Reading Markdown

/// Fenced code blocks: (info string, body).
fn fenced_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed.starts_with("```") => {
                current = Some((trimmed[3..].trim().to_string(), String::new()));
            }
            None => {}
            Some(_) if trimmed.starts_with("```") => blocks.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    assert!(current.is_none(), "unterminated code block");
    blocks
}

/// The Markdown outside fenced code blocks.
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Inline code spans (single or double backticks) of a piece of prose.
fn code_spans(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let fence = "`".repeat(ticks);
        let after = &rest[start + ticks..];
        match after.find(&fence) {
            Some(end) => {
                spans.push(after[..end].trim().to_string());
                rest = &after[end + ticks..];
            }
            None => break,
        }
    }
    spans
}

/// A Markdown table: header cells and rows of cells.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

fn tables(markdown: &str) -> Vec<Table> {
    let text = prose(markdown);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        let separator = lines[i + 1].trim();
        if lines[i].trim().starts_with('|')
            && separator.starts_with('|')
            && separator
                .chars()
                .all(|c| matches!(c, '|' | '-' | ':' | ' '))
        {
            let header = cells(lines[i]);
            let mut rows = Vec::new();
            i += 2;
            while i < lines.len() && lines[i].trim().starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
            out.push(Table { header, rows });
        } else {
            i += 1;
        }
    }
    out
}

/// A cell without surrounding backticks.
fn bare(cell: &str) -> String {
    cell.trim().trim_matches('`').trim().to_string()
}

// ---------------------------------------------------------------------------
// (a) TROUBLESHOOTING.md

fn troubleshooting() -> String {
    read("docs/TROUBLESHOOTING.md")
}

fn assert_codes_named(doc: &str, codes: &BTreeSet<String>, what: &str) {
    let missing: Vec<&String> = codes
        .iter()
        .filter(|code| !doc.contains(&format!("`{code}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "{what} missing from docs/TROUBLESHOOTING.md (as `code`): {missing:?}"
    );
}

#[test]
fn troubleshooting_names_every_http_error_and_reason_code() {
    let doc = troubleshooting();
    let http = http_error_codes();
    assert_codes_named(&doc, &http.keys().cloned().collect(), "HTTP error codes");
    // The table of HTTP error codes gives each code its status, once.
    let mut documented: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for table in tables(&doc) {
        if table.header.first().map(String::as_str) != Some("Code") {
            continue;
        }
        let Some(status) = table.header.iter().position(|h| h == "Status") else {
            continue;
        };
        for row in &table.rows {
            documented
                .entry(bare(&row[0]))
                .or_default()
                .push(row.get(status).cloned().unwrap_or_default());
        }
    }
    for (code, status) in &http {
        assert_eq!(
            documented.get(code),
            Some(&vec![status.to_string()]),
            "docs/TROUBLESHOOTING.md: `{code}` needs one row in the table with a Status column, giving {status}"
        );
    }
    let stale: Vec<&String> = documented
        .keys()
        .filter(|c| !http.contains_key(*c))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/TROUBLESHOOTING.md lists HTTP error codes that do not exist: {stale:?}"
    );

    let verify: BTreeSet<String> = VERIFY_REASON_CODES.iter().map(|c| c.to_string()).collect();
    assert!(
        verify.contains("wrong_host") && verify.len() >= 6,
        "{verify:?}"
    );
    assert_codes_named(&doc, &verify, "verification reason codes");

    let reasons: BTreeSet<String> = Reason::ALL.iter().map(|r| r.code().to_string()).collect();
    assert!(
        reasons.contains("replayed_proof") && reasons.len() >= 10,
        "{reasons:?}"
    );
    assert_codes_named(&doc, &reasons, "settlement reason codes");

    let failures: BTreeSet<String> = GenerateError::CODES.iter().map(|c| c.to_string()).collect();
    assert!(
        failures.contains("timeout") && failures.len() >= 3,
        "{failures:?}"
    );
    assert_codes_named(&doc, &failures, "proof generation failure codes");
}

#[test]
fn troubleshooting_gives_every_cli_failure_code_with_its_exit_codes() {
    let doc = troubleshooting();
    let codes = cli_failure_codes();
    let mut documented: BTreeMap<String, BTreeSet<u8>> = BTreeMap::new();
    for table in tables(&doc) {
        let Some(exit) = table.header.iter().position(|h| h == "Exit") else {
            continue;
        };
        for row in &table.rows {
            let exits = row
                .get(exit)
                .map(|cell| {
                    cell.split(|c: char| !c.is_ascii_digit())
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            documented.insert(bare(&row[0]), exits);
        }
    }
    for (code, exits) in &codes {
        match documented.get(code) {
            None => panic!(
                "CLI failure code `{code}` (exit {exits:?}) is not in a table with an Exit column \
                 in docs/TROUBLESHOOTING.md"
            ),
            Some(found) => assert_eq!(
                found, exits,
                "CLI failure code `{code}`: docs/TROUBLESHOOTING.md gives exit {found:?}, the code {exits:?}"
            ),
        }
    }
}

#[test]
fn troubleshooting_covers_every_error_message() {
    let doc = normalize(&troubleshooting());
    let mut missing = Vec::new();
    for (path, message) in error_messages() {
        // Checkpoint payload checks for tooling, never reported by the node.
        if path.ends_with("chain/proof_of_work.rs") {
            continue;
        }
        let longest = fixed_pieces(&message)
            .into_iter()
            .map(|p| normalize(&p))
            .max_by_key(|p| p.len())
            .unwrap_or_default();
        if longest.len() >= 8 && !doc.contains(&longest) {
            missing.push(format!("{}: {longest:?}", path.display()));
        }
    }
    assert!(
        missing.is_empty(),
        "error messages missing from docs/TROUBLESHOOTING.md:\n{}",
        missing.join("\n")
    );
}

#[test]
fn troubleshooting_quotes_only_messages_that_exist() {
    let source = normalize(
        &sources(false)
            .into_iter()
            .map(|(_, text)| text.replace("\\\"", "\""))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let mut quoted = 0;
    for table in tables(&troubleshooting()) {
        let Some(column) = table.header.iter().position(|h| h == "Message") else {
            continue;
        };
        for row in &table.rows {
            for span in code_spans(row.get(column).map(String::as_str).unwrap_or("")) {
                for piece in span.split('…') {
                    let piece = normalize(piece);
                    if piece.len() >= 4 {
                        quoted += 1;
                        assert!(
                            source.contains(&piece),
                            "docs/TROUBLESHOOTING.md quotes {piece:?} (in {span:?}), which no source file contains"
                        );
                    }
                }
            }
        }
    }
    assert!(quoted >= 50, "only {quoted} quoted messages found");
}

#[test]
fn troubleshooting_names_every_warning_and_error_log_event() {
    let doc = normalize(&troubleshooting());
    let missing: Vec<String> = warning_and_error_logs()
        .into_iter()
        .filter(|m| !doc.contains(&normalize(m)))
        .collect();
    assert!(
        missing.is_empty(),
        "log events missing from docs/TROUBLESHOOTING.md: {missing:?}"
    );
}

// ---------------------------------------------------------------------------
// (b) commands, flags, environment variables, paths

/// A `fabstir-node` invocation in a document: subcommand words and flags.
#[derive(Debug, Clone)]
struct Invocation {
    doc: &'static str,
    words: Vec<String>,
    flags: Vec<String>,
}

/// Splits a command line after `fabstir-node ` into subcommand words and
/// flags, up to the end of the command (a shell operator or a comment).
fn parse_invocation(doc: &'static str, rest: &str) -> Option<Invocation> {
    let mut tokens = rest.split_whitespace().peekable();
    if tokens.peek() == Some(&"--") {
        tokens.next(); // `cargo run -p fabstir-node -- serve`
    }
    let mut words = Vec::new();
    let mut flags = Vec::new();
    let mut in_words = true;
    for token in tokens {
        if token.starts_with('#')
            || matches!(token, "|" | "||" | "&&" | ";" | ">" | "2>" | "<" | "&")
            || token.starts_with('>')
            || token.starts_with("$(")
        {
            break;
        }
        let token = token.trim_matches(|c| matches!(c, '[' | ']' | '`' | '(' | ')' | ',' | ';'));
        if let Some(flag) = token.strip_prefix("--") {
            let flag = flag.split('=').next().unwrap_or_default();
            if !flag.is_empty() {
                flags.push(format!("--{flag}"));
            }
            in_words = false;
        } else if in_words
            && !token.is_empty()
            && token.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            && !token.starts_with('-')
        {
            words.push(token.to_string());
        } else {
            in_words = false; // a value: the subcommand words are over
        }
    }
    // `cargo build -p fabstir-node`, `cargo test -p fabstir-node --test it -- docs::`:
    // cargo's flags, not the node's.
    if words.is_empty() {
        return None;
    }
    Some(Invocation { doc, words, flags })
}

/// Every invocation in the code blocks and code spans of `doc`.
fn invocations(doc: &'static str) -> Vec<Invocation> {
    let text = read(doc);
    let mut lines: Vec<String> = Vec::new();
    for (_, body) in fenced_blocks(&text) {
        let body = body.replace("\\\n", " ").replace("<br/>", "\n");
        lines.extend(body.lines().map(str::to_string));
    }
    lines.extend(code_spans(&prose(&text)));
    let mut found = Vec::new();
    for line in lines {
        for (at, _) in line.match_indices("fabstir-node ") {
            let before = line[..at].chars().last();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                continue;
            }
            found.extend(parse_invocation(doc, &line[at + "fabstir-node ".len()..]));
        }
    }
    found
}

/// The flags `fabstir-node <words> --help` lists; `None` if it is no command.
fn help_flags(words: &[String]) -> Option<BTreeSet<String>> {
    let output = Command::new(env!("CARGO_BIN_EXE_fabstir-node"))
        .args(words)
        .arg("--help")
        .output()
        .expect("run fabstir-node --help");
    if !output.status.success() {
        return None;
    }
    let help = String::from_utf8_lossy(&output.stdout);
    Some(
        help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
            .filter_map(|t| t.strip_prefix("--"))
            .map(|t| {
                let name: String = t
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                format!("--{name}")
            })
            .collect(),
    )
}

fn check_invocations(invocations: &[Invocation]) {
    let mut help: BTreeMap<Vec<String>, Option<BTreeSet<String>>> = BTreeMap::new();
    for invocation in invocations {
        let flags = help
            .entry(invocation.words.clone())
            .or_insert_with(|| help_flags(&invocation.words));
        let Some(flags) = flags else {
            panic!(
                "{}: `fabstir-node {}` is not a command",
                invocation.doc,
                invocation.words.join(" ")
            );
        };
        for flag in &invocation.flags {
            assert!(
                flags.contains(flag),
                "{}: `fabstir-node {}` has no flag {flag} (it has {flags:?})",
                invocation.doc,
                invocation.words.join(" ")
            );
        }
    }
}

fn all_invocations() -> Vec<Invocation> {
    DOCS.iter().flat_map(|doc| invocations(doc)).collect()
}

#[test]
fn documented_commands_and_flags_exist() {
    let all = all_invocations();
    let others: Vec<Invocation> = all
        .iter()
        .filter(|i| i.words[0] != "keys")
        .cloned()
        .collect();
    for (doc, at_least) in [
        ("README.md", 5),
        ("docs/DEPLOYMENT.md", 10),
        ("docs/MIGRATION.md", 4),
    ] {
        let n = all.iter().filter(|i| i.doc == doc).count();
        assert!(n >= at_least, "{doc}: only {n} invocations found");
    }
    check_invocations(&others);
    // The parser itself: a wrong flag or command is caught.
    let wrong = parse_invocation("test", "serve --no-such-flag").expect("parsed");
    let caught = std::panic::catch_unwind(|| check_invocations(&[wrong]));
    assert!(caught.is_err(), "an unknown flag was not caught");
}

#[test]
fn documented_keys_commands_and_checks_exist() {
    let keys: Vec<Invocation> = all_invocations()
        .into_iter()
        .filter(|i| i.words[0] == "keys")
        .collect();
    let subcommands: BTreeSet<&str> = keys
        .iter()
        .filter_map(|i| i.words.get(1).map(String::as_str))
        .collect();
    for expected in ["verify", "backup", "restore", "rotate"] {
        assert!(
            subcommands.contains(expected),
            "docs/DEPLOYMENT.md does not show `fabstir-node keys {expected}`"
        );
    }
    check_invocations(&keys);

    // The check names `keys verify` reports, as DEPLOYMENT.md lists them.
    let deployment = read("docs/DEPLOYMENT.md");
    let start = deployment
        .find("The checks:")
        .expect("docs/DEPLOYMENT.md lists the checks of keys verify (\"The checks: …\")");
    let paragraph = &deployment[start..];
    let paragraph = &paragraph[..paragraph.find("\n\n").unwrap_or(paragraph.len())];
    let listed: BTreeSet<String> = code_spans(paragraph).into_iter().collect();
    // The checks `keys verify` reports on a sound key directory (where none
    // fails, so every check runs).
    let dir = tempfile::tempdir().expect("temporary directory");
    let keys_dir = dir.path().join("keys");
    let keys_dir = keys_dir.to_str().expect("utf-8 path");
    let keygen = common::cli(&["keygen", "--keys-dir", keys_dir]);
    assert!(
        keygen.status.success(),
        "{}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let verify = common::cli(&["keys", "verify", "--keys-dir", keys_dir]);
    let report: serde_json::Value =
        serde_json::from_slice(&verify.stdout).expect("keys verify prints JSON");
    assert_eq!(report["ok"], true, "{report}");
    let reported: BTreeSet<String> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|check| check["name"].as_str().expect("a check's name").to_string())
        .collect();
    assert!(reported.len() >= 5, "{report}");
    assert_eq!(
        listed, reported,
        "the checks docs/DEPLOYMENT.md lists are not those `keys verify` reports"
    );
}

/// Environment variable names (`NAME_WITH_UNDERSCORES`) a document names:
/// whole code spans (`NAME` or `NAME=value`), and `NAME=` or `$NAME` in code
/// blocks. Returns (name, line) pairs.
fn environment_variables(markdown: &str) -> Vec<(String, String)> {
    fn is_name(s: &str) -> bool {
        s.len() >= 5
            && s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.contains('_')
            && !s.ends_with('_')
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }
    let mut found = Vec::new();
    for line in prose(markdown).lines() {
        for span in code_spans(line) {
            let name = span.split('=').next().unwrap_or_default();
            if is_name(name) {
                found.push((name.to_string(), line.to_string()));
            }
        }
    }
    for (_, body) in fenced_blocks(markdown) {
        for line in body.lines() {
            let chars: Vec<char> = line.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                let boundary =
                    i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_');
                if boundary && chars[i].is_ascii_uppercase() {
                    let end = (i..chars.len())
                        .find(|&j| {
                            !(chars[j].is_ascii_uppercase()
                                || chars[j].is_ascii_digit()
                                || chars[j] == '_')
                        })
                        .unwrap_or(chars.len());
                    let name: String = chars[i..end].iter().collect();
                    let assigned = chars.get(end) == Some(&'=');
                    let expanded = i > 0 && chars[i - 1] == '$';
                    if is_name(&name) && (assigned || expanded) {
                        found.push((name, line.to_string()));
                    }
                    i = end;
                } else {
                    i += 1;
                }
            }
        }
    }
    found
}

#[test]
fn documented_environment_variables_are_read_by_the_code() {
    let code: String = sources(true)
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n");
    let read_by_code = |name: &str| code.contains(&format!("\"{name}\""));
    // Constants such as `CIRCUIT_VERSION` look like variables but are not.
    let is_constant = |name: &str| code.contains(&format!("const {name}:"));
    let mut named = BTreeSet::new();
    for doc in DOCS {
        for (name, line) in environment_variables(&read(doc)) {
            if is_constant(&name) {
                continue;
            }
            named.insert(name.clone());
            if !read_by_code(&name) {
                assert!(
                    line.contains("no longer read") || line.contains("not read"),
                    "{doc}: {name} is not read by the code (say so on its line, or drop it): {line}"
                );
            }
        }
    }
    for expected in [
        "ENABLE_REAL_EZKL",
        "EZKL_PROVING_KEY_PATH",
        "EZKL_VERIFYING_KEY_PATH",
        "EZKL_MAX_PROOF_SIZE",
        "PROOF_CACHE_SIZE",
        "HOST_PRIVATE_KEY",
        "FABSTIR_LOG",
    ] {
        assert!(named.contains(expected), "no document names {expected}");
        assert!(
            read_by_code(expected),
            "{expected} is no longer read by the code"
        );
    }
}

/// The node's routes, as path segment lists (`{…}` matches any segment):
/// the paths of `docs/openapi.yaml`, which the node answers exactly
/// (`openapi::the_node_answers_every_documented_route_and_accepts_the_examples`).
fn routes() -> Vec<Vec<String>> {
    let yaml: serde_norway::Value =
        serde_norway::from_str(&read("docs/openapi.yaml")).expect("docs/openapi.yaml is YAML");
    let spec = serde_json::to_value(yaml).expect("docs/openapi.yaml converts to JSON");
    let routes: Vec<Vec<String>> = spec["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(|path| path.split('/').map(str::to_string).collect())
        .collect();
    assert!(routes.len() >= 10, "routes read badly: {routes:?}");
    routes
}

#[test]
fn documented_http_paths_are_routes() {
    let routes = routes();
    let matches = |path: &str| {
        let segments: Vec<&str> = path.split('/').collect();
        routes.iter().any(|route| {
            route.len() == segments.len()
                && route
                    .iter()
                    .zip(&segments)
                    .all(|(r, s)| r == s || (r.starts_with('{') && !s.is_empty()))
        })
    };
    let mut checked = 0;
    for doc in DOCS {
        let text = read(doc);
        for prefix in ["/v1/", "/health", "/metrics"] {
            for (at, _) in text.match_indices(prefix) {
                let path: String = text[at..]
                    .chars()
                    .take_while(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '{' | '}' | '-')
                    })
                    .collect();
                checked += 1;
                if path.ends_with('/') {
                    // A prefix, such as `/v1/admin/`.
                    assert!(
                        routes.iter().any(|r| r.join("/").starts_with(&path)),
                        "{doc}: no route starts with {path}"
                    );
                } else {
                    assert!(matches(&path), "{doc}: {path} is not a route of the node");
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} paths found");
}

// ---------------------------------------------------------------------------
// (c) CIRCUIT_SPEC.md

/// `name value` pairs of the pinned verifying key description.
fn vk_description() -> String {
    read("crates/fabstir-zk/tests/data/vk_description.txt")
}

/// The number after `label` in `text` (e.g. `fixed ` in `fixed 11`).
fn number_after(text: &str, label: &str) -> usize {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} not found"));
    text[at + label.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?}"))
}

#[test]
fn circuit_spec_figures_match_the_code() {
    let spec = read("docs/CIRCUIT_SPEC.md");
    let description = vk_description();
    let layout_of_proof = ProofLayout::get();
    assert_eq!(number_after(&description, "\nk "), layout::K as usize);
    assert_eq!(number_after(&description, "degree "), layout::DEGREE);
    assert_eq!(
        number_after(&description, "advice "),
        layout::ADVICE_COLUMNS
    );
    let host = poseidon::host_id_params();
    let commitment = poseidon::commitment_params();
    assert_eq!((host.width, commitment.width), (2, 12));
    let vk_id = read("crates/fabstir-zk/tests/data/vk_id.txt");

    let expected: BTreeMap<&str, String> = [
        ("k", layout::K.to_string()),
        ("rows", (1usize << layout::K).to_string()),
        ("rows used", layout::USED_ROWS.to_string()),
        ("degree", layout::DEGREE.to_string()),
        ("advice columns", layout::ADVICE_COLUMNS.to_string()),
        (
            "fixed columns",
            number_after(&description, "fixed ").to_string(),
        ),
        (
            "instance columns",
            number_after(&description, "instance ").to_string(),
        ),
        ("public inputs", layout::instance::COUNT.to_string()),
        ("R_F", poseidon::FULL_ROUNDS.to_string()),
        ("R_P, width 2", host.partial_rounds.to_string()),
        ("R_P, width 12", commitment.partial_rounds.to_string()),
        (
            "proof points",
            (layout_of_proof.leading_points + layout_of_proof.trailing_points).to_string(),
        ),
        ("proof scalars", layout_of_proof.scalars.to_string()),
        ("proof bytes", layout_of_proof.proof_len().to_string()),
        ("envelope bytes", layout_of_proof.envelope_len().to_string()),
        ("vk_id, development SRS", vk_id.trim().to_string()),
    ]
    .into_iter()
    .collect();
    let table = tables(&spec)
        .into_iter()
        .find(|t| t.header.first().map(String::as_str) == Some("Figure"))
        .expect("docs/CIRCUIT_SPEC.md has a table whose first column is \"Figure\"");
    let found: BTreeMap<String, String> = table
        .rows
        .iter()
        .map(|row| {
            (
                bare(&row[0]),
                bare(row.get(1).map(String::as_str).unwrap_or("")),
            )
        })
        .collect();
    for (name, value) in &expected {
        assert_eq!(
            found.get(*name),
            Some(value),
            "docs/CIRCUIT_SPEC.md figure {name:?}"
        );
    }
    let extra: Vec<&String> = found
        .keys()
        .filter(|k| !expected.contains_key(k.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "figures this test does not check: {extra:?}"
    );

    // The same figures in the prose.
    for (pattern, value) in [
        ("k = ", layout::K as usize),
        ("2^", layout::K as usize),
        ("R_F = ", poseidon::FULL_ROUNDS),
        ("envelope of ", layout_of_proof.envelope_len()),
    ] {
        for (at, _) in spec.match_indices(pattern) {
            let digits: String = spec[at + pattern.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if pattern == "2^" && !spec[at..].starts_with(&format!("2^{digits} rows")) {
                continue; // 2^64, 2^128, …: ranges, not rows
            }
            if let Ok(n) = digits.parse::<usize>() {
                assert_eq!(n, value, "docs/CIRCUIT_SPEC.md: {pattern}{n}");
            }
        }
    }
    for (width, rounds) in [(2, host.partial_rounds), (12, commitment.partial_rounds)] {
        let claim = format!("{rounds} for `t = {width}`");
        assert!(
            spec.contains(&claim),
            "docs/CIRCUIT_SPEC.md should say {claim:?}"
        );
    }
}

/// Every `0x` + 64 hex digits in `text`.
fn hex_values(text: &str) -> BTreeSet<String> {
    text.match_indices("0x")
        .filter_map(|(at, _)| {
            let digits: String = text[at + 2..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            (digits.len() == 64).then(|| format!("0x{digits}"))
        })
        .collect()
}

#[test]
fn circuit_spec_hex_values_are_pinned_test_vectors() {
    let spec = read("docs/CIRCUIT_SPEC.md");
    let pinned = hex_values(&format!(
        "{}\n{}\n{}",
        read("docs/test-vectors.json"),
        read("crates/fabstir-zk/tests/data/vk_id.txt"),
        read("crates/fabstir-zk/tests/data/vk_id_v1.txt")
    ));
    let values = hex_values(&spec);
    assert!(values.len() >= 4, "too few values: {values:?}");
    for value in values {
        assert!(
            pinned.contains(&value),
            "docs/CIRCUIT_SPEC.md: {value} is neither in docs/test-vectors.json nor vk_id.txt nor vk_id_v1.txt"
        );
    }
}

#[test]
fn proof_flow_diagram_is_in_the_readme_and_the_spec() {
    let diagram = |doc: &str| -> String {
        let blocks: Vec<String> = fenced_blocks(&read(doc))
            .into_iter()
            .filter(|(info, _)| info == "mermaid")
            .map(|(_, body)| body)
            .collect();
        assert_eq!(blocks.len(), 1, "{doc}: one mermaid block expected");
        blocks[0].clone()
    };
    let spec = diagram("docs/CIRCUIT_SPEC.md");
    assert_eq!(
        diagram("README.md"),
        spec,
        "the two proof flow diagrams differ"
    );
    assert!(spec.starts_with("flowchart"), "{spec}");
    let readme = read("README.md");
    assert!(
        readme.contains("\n## Proof flow\n"),
        "README.md: no \"Proof flow\" section"
    );
}

// ---------------------------------------------------------------------------
// (d) SECURITY.md

/// The tests of a file: `#[test]` functions (in any module), and the
/// functions of `proptest!` blocks.
#[derive(Default)]
struct TestNames(BTreeSet<String>);

impl<'ast> syn::visit::Visit<'ast> for TestNames {
    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        let is_test = item
            .attrs
            .iter()
            .any(|a| a.path().segments.last().is_some_and(|s| s.ident == "test"));
        if is_test {
            self.0.insert(item.sig.ident.to_string());
        }
        syn::visit::visit_item_fn(self, item);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if path_names(&mac.path)
            .last()
            .is_some_and(|n| n == "proptest")
        {
            let tokens: Vec<TokenTree> = mac.tokens.clone().into_iter().collect();
            for pair in tokens.windows(2) {
                if let [TokenTree::Ident(keyword), TokenTree::Ident(name)] = pair {
                    if keyword == "fn" {
                        self.0.insert(name.to_string());
                    }
                }
            }
        }
        syn::visit::visit_macro(self, mac);
    }
}

#[test]
fn security_cites_tests_that_exist() {
    let doc = read("docs/SECURITY.md");
    let mut cited = 0;
    let mut tests: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for span in code_spans(&prose(&doc)) {
        let Some((file, test)) = span.split_once("::") else {
            continue;
        };
        if !(file.starts_with("crates/") && file.ends_with(".rs")) {
            continue;
        }
        let path = repo_root().join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("docs/SECURITY.md cites {file}: {e}"));
        let tests = tests.entry(path.clone()).or_insert_with(|| {
            let mut found = TestNames::default();
            syn::visit::Visit::visit_file(&mut found, &syntax(&path, &text));
            found.0
        });
        assert!(
            tests.contains(test),
            "docs/SECURITY.md cites {span}, which is not a test of {file}"
        );
        cited += 1;
    }
    assert!(cited >= 25, "docs/SECURITY.md cites only {cited} tests");
}

// ---------------------------------------------------------------------------
// (e) the systemd unit of DEPLOYMENT.md

#[test]
fn systemd_unit_runs_a_real_command() {
    let blocks: Vec<String> = fenced_blocks(&read("docs/DEPLOYMENT.md"))
        .into_iter()
        .filter(|(info, _)| info == "ini")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        blocks.len(),
        1,
        "docs/DEPLOYMENT.md: one ```ini block expected"
    );
    let unit = blocks[0].replace("\\\n", " ");
    let directive = |name: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.trim().strip_prefix(&format!("{name}=")))
            .map(str::to_string)
            .collect()
    };
    let exec = directive("ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart expected: {exec:?}");
    let (binary, rest) = exec[0].split_once(' ').expect("ExecStart has arguments");
    assert!(binary.ends_with("/fabstir-node"), "ExecStart runs {binary}");
    let invocation = parse_invocation("docs/DEPLOYMENT.md", rest).expect("a subcommand");
    assert_eq!(invocation.words, ["serve"]);
    for flag in ["--production", "--data-dir", "--keys-dir", "--listen"] {
        assert!(
            invocation.flags.iter().any(|f| f == flag),
            "ExecStart lacks {flag}"
        );
    }
    check_invocations(&[invocation]);

    for name in ["User", "WorkingDirectory", "EnvironmentFile", "ExecReload"] {
        assert_eq!(directive(name).len(), 1, "the unit needs one {name}=");
    }
    assert_eq!(directive("Restart"), ["on-failure"]);
    assert!(
        directive("ExecReload")[0].contains("-HUP"),
        "ExecReload must send SIGHUP"
    );
    // `serve` reloads its keys on SIGHUP: the node lives on (the signal's
    // default action would end it) and still answers.
    let dir = common::DataDir::new();
    let node = common::Node::start(dir.path(), &["--mock-proofs"]);
    for _ in 0..2 {
        assert!(common::send_signal(node.pid(), libc::SIGHUP), "SIGHUP");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            common::send_signal(node.pid(), 0),
            "the node did not survive SIGHUP"
        );
        let (status, health) = node.get("/health");
        assert_eq!(status, 200, "the node did not survive SIGHUP: {health}");
    }
    for hardening in [
        "NoNewPrivileges",
        "ProtectSystem",
        "PrivateTmp",
        "ProtectHome",
    ] {
        assert_eq!(directive(hardening).len(), 1, "the unit lacks {hardening}=");
    }
}
