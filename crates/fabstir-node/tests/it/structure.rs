//! The node's module graph has no cycles: a newcomer can read the modules
//! bottom-up (store, then the domain modules, then the HTTP layer and the
//! commands) without jumping back and forth.
//!
//! Every `crate::<module>` path in `src/<module>.rs` or `src/<module>/**`
//! is an edge from that top-level module to the one it names.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::repo_root;

/// Every `*.rs` file under `dir`, with its text.
fn rust_files(dir: &Path, out: &mut Vec<(std::path::PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).expect("src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source file");
            out.push((path, text));
        }
    }
}

/// Top-level module -> the top-level modules it uses.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_root().join("crates/fabstir-node/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let relative = path.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .expect("a component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if first == "lib" || first == "main" {
            continue;
        }
        let uses = graph.entry(first.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != first {
                uses.insert(name);
            }
        }
    }
    graph
}

/// A cycle of the graph, if it has one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_module_graph_has_no_cycles() {
    let graph = module_graph();
    for module in ["api", "store", "checkpoint", "settlement", "prover", "cli"] {
        assert!(graph.contains_key(module), "{module} not found: {graph:?}");
    }
    assert!(
        graph["api"].contains("checkpoint"),
        "edges parsed badly: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    // Domain modules know nothing of HTTP, and nothing but the commands
    // knows the commands.
    for (module, uses) in &graph {
        if module != "cli" {
            assert!(!uses.contains("cli"), "{module} uses cli");
            if module != "api" {
                assert!(!uses.contains("api"), "{module} uses the HTTP layer");
            }
        }
    }
    // The leaf modules depend on no other module of the node. (`chain`, the
    // one home of everything between a checkpoint and money, uses the
    // store, the metrics and the health checks; the cycle check above keeps
    // it below `checkpoint`.)
    for leaf in ["reasons", "datadir", "store"] {
        assert!(
            graph[leaf].is_empty(),
            "{leaf} should be a leaf but uses {:?}",
            graph[leaf]
        );
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let cycle = find_cycle(&graph).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    let acyclic: BTreeMap<String, BTreeSet<String>> = [("a", vec!["b"]), ("b", vec![])]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(find_cycle(&acyclic), None);
}
