//! The structure of both crates (`fabstir-zk`, `fabstir-node`):
//!
//! - no import cycles, between files or between top-level modules: a
//!   newcomer can read each crate bottom-up (in the node: store, then the
//!   domain modules, then the HTTP layer and the commands) without jumping
//!   back and forth;
//! - the README's "## Layout" section names every top-level module of each
//!   crate, and every module it names exists.
//!
//! The sources are parsed with `syn`, starting at `src/lib.rs` and following
//! the `mod` declarations. An edge is a path starting with `crate::` or
//! `super::` (in a `use`, in code, or in a macro's tokens), from the file it
//! is written in to the file defining the module it names (its longest
//! prefix that is a module; an item a module re-exports with `use` counts as
//! an item of the module it comes from). A top-level module is the first
//! segment of a module's path; the crate root (`lib.rs`) is a node of its
//! own. Test code (`#[cfg(test)]` modules and items) is left out: it uses
//! what it tests.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{read_repo_file as read, repo_root};
use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// A module's path from its crate's root (`[]` is the root).
type ModPath = Vec<String>;

/// The two crates, as (name, `src/` relative to the repository root).
const CRATES: [(&str, &str); 2] = [
    ("fabstir-zk", "crates/fabstir-zk/src"),
    ("fabstir-node", "crates/fabstir-node/src"),
];

/// One crate's modules and the paths each file names.
struct Crate {
    /// Module -> the file defining it (relative to the repository root).
    files: BTreeMap<ModPath, String>,
    /// Module (inline modules included) -> the names it imports with `use`
    /// (`name` -> the absolute path it stands for), to follow re-exports.
    imports: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
    /// File -> the absolute paths (after `crate`/`super` are resolved) it
    /// names, each with the text it was written as.
    uses: BTreeMap<String, Vec<(ModPath, String)>>,
}

impl Crate {
    /// Reads the crate whose sources are in `src` (absolute), naming files
    /// relative to `base`.
    fn read(src: &Path, base: &Path) -> Self {
        let mut krate = Crate {
            files: BTreeMap::new(),
            imports: BTreeMap::new(),
            uses: BTreeMap::new(),
        };
        krate.read_module(src, base, Vec::new(), &src.join("lib.rs"));
        krate
    }

    fn read_module(&mut self, src: &Path, base: &Path, module: ModPath, file: &Path) {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let syntax = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file
            .strip_prefix(base)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        self.files.insert(module.clone(), name.clone());
        let mut visitor = Visitor {
            module: module.clone(),
            paths: Vec::new(),
            imports: BTreeMap::new(),
            children: Vec::new(),
        };
        visitor.visit_file(&syntax);
        self.uses.insert(name, visitor.paths);
        for (inline, names) in visitor.imports {
            self.imports.entry(inline).or_default().extend(names);
        }
        for child in visitor.children {
            let dir = child[..child.len() - 1]
                .iter()
                .fold(src.to_path_buf(), |dir, segment| dir.join(segment));
            let last = child.last().expect("a child has a name");
            let flat = dir.join(format!("{last}.rs"));
            let nested = dir.join(last).join("mod.rs");
            let path = if flat.is_file() { flat } else { nested };
            assert!(
                path.is_file(),
                "module {} has no file ({})",
                child.join("::"),
                path.display()
            );
            self.read_module(src, base, child, &path);
        }
    }

    /// The module an absolute path lands in: its longest prefix that is a
    /// module, following re-exports (`None`: outside the crate, e.g. a
    /// re-exported dependency).
    fn module_of(&self, path: &[String]) -> Option<ModPath> {
        self.module_of_at(path, 0)
    }

    fn module_of_at(&self, path: &[String], depth: usize) -> Option<ModPath> {
        assert!(depth < 16, "re-exports loop at {}", path.join("::"));
        let mut module: ModPath = Vec::new();
        for segment in path {
            let mut next = module.clone();
            next.push(segment.clone());
            if self.files.contains_key(&next) {
                module = next;
                continue;
            }
            // An item this module imports: where it comes from.
            if let Some(target) = self.imports.get(&module).and_then(|i| i.get(segment)) {
                return self.module_of_at(target, depth + 1);
            }
            return Some(module);
        }
        Some(module)
    }

    /// File -> the files it names, each with one path that names it.
    fn file_graph(&self) -> Graph {
        let mut graph = Graph::new();
        for (file, paths) in &self.uses {
            let edges = graph.entry(file.clone()).or_default();
            for (path, text) in paths {
                let Some(module) = self.module_of(path) else {
                    continue;
                };
                let target = &self.files[&module];
                if target != file {
                    edges.entry(target.clone()).or_insert_with(|| text.clone());
                }
            }
        }
        graph
    }

    /// Top-level module -> the top-level modules it names.
    fn module_graph(&self) -> Graph {
        let top = |module: &ModPath| {
            module
                .first()
                .cloned()
                .unwrap_or_else(|| "(crate root)".to_string())
        };
        let module_of_file: BTreeMap<&String, &ModPath> =
            self.files.iter().map(|(m, f)| (f, m)).collect();
        let mut graph = Graph::new();
        for (file, paths) in &self.uses {
            let from = top(module_of_file[file]);
            let edges = graph.entry(from.clone()).or_default();
            for (path, text) in paths {
                let Some(module) = self.module_of(path) else {
                    continue;
                };
                let to = top(&module);
                if to != from {
                    edges
                        .entry(to)
                        .or_insert_with(|| format!("{text} in {file}"));
                }
            }
        }
        graph
    }

    /// The top-level modules (`mod` in `lib.rs`).
    fn top_level_modules(&self) -> BTreeSet<String> {
        self.files
            .keys()
            .filter(|m| m.len() == 1)
            .map(|m| m[0].clone())
            .collect()
    }
}

/// Node -> (node it uses -> the path that makes the edge, for messages).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// Collects a file's paths, its `use` imports and its `mod` declarations.
struct Visitor {
    /// The module being read (inline modules included).
    module: ModPath,
    paths: Vec<(ModPath, String)>,
    imports: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
    /// Modules declared with `mod name;` (in their own file).
    children: Vec<ModPath>,
}

impl Visitor {
    /// The absolute path `segments` stands for in the current module, if it
    /// starts with `crate` or `super` (`self` only after them: `super::self`
    /// is not Rust, so `self` alone is left out, as is every other relative
    /// path).
    fn absolute(&self, segments: &[String]) -> Option<ModPath> {
        let first = segments.first()?;
        let (mut base, mut rest) = match first.as_str() {
            "crate" => (Vec::new(), &segments[1..]),
            "super" => {
                let mut base = self.module.clone();
                base.pop()?;
                (base, &segments[1..])
            }
            _ => return None,
        };
        while rest.first().is_some_and(|s| s == "super") {
            base.pop()?;
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn record(&mut self, segments: &[String]) {
        if let Some(path) = self.absolute(segments) {
            self.paths.push((path, segments.join("::")));
        }
    }

    /// The paths of a `use` tree: (path, the name it binds, if any).
    fn use_paths(
        tree: &syn::UseTree,
        prefix: &mut Vec<String>,
        out: &mut Vec<(Vec<String>, Option<String>)>,
    ) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                Self::use_paths(&p.tree, prefix, out);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                if name == "self" {
                    let bound = prefix.last().cloned();
                    out.push((prefix.clone(), bound));
                } else {
                    let mut path = prefix.clone();
                    path.push(name.clone());
                    out.push((path, Some(name)));
                }
            }
            syn::UseTree::Rename(r) => {
                let mut path = prefix.clone();
                let name = r.ident.to_string();
                if name != "self" {
                    path.push(name);
                }
                out.push((path, Some(r.rename.to_string())));
            }
            syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    Self::use_paths(tree, prefix, out);
                }
            }
        }
    }

    /// `crate :: a :: b` / `super :: …` sequences in a macro's tokens.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(group) => self.scan_tokens(group.stream()),
                TokenTree::Ident(ident) if ident == "crate" || ident == "super" => {
                    let mut segments = vec![ident.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.record(&segments);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Visitor {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        // Test code (`#[cfg(test)]` modules and items) uses what it tests:
        // not the crate's structure.
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            _ => &[],
        };
        let is_test = attrs.iter().any(|a| {
            a.path().is_ident("cfg")
                && a.meta
                    .require_list()
                    .is_ok_and(|l| l.tokens.to_string() == "test")
        });
        if !is_test {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        self.module.push(item.ident.to_string());
        if item.content.is_none() {
            self.children.push(self.module.clone());
        }
        syn::visit::visit_item_mod(self, item);
        self.module.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut found = Vec::new();
        Self::use_paths(&item.tree, &mut Vec::new(), &mut found);
        for (path, bound) in found {
            self.record(&path);
            // Imports relative to this module (`use child::Item`) are
            // followed too when resolving re-exports; those of other crates
            // resolve to nothing.
            let absolute = self.absolute(&path).unwrap_or_else(|| {
                let mut absolute = self.module.clone();
                absolute.extend(path.iter().cloned());
                absolute
            });
            if let Some(name) = bound {
                self.imports
                    .entry(self.module.clone())
                    .or_default()
                    .insert(name, absolute);
            }
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.record(&segments);
        }
        syn::visit::visit_path(self, path);
    }

    /// `pub(crate)`, `pub(super)`: a visibility, not an import.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.scan_tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// A cycle of the graph, if it has one: its nodes, the first repeated last.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
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
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
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

/// A cycle, each edge with the path that makes it.
fn describe(cycle: &[String], graph: &Graph) -> String {
    let mut out = cycle.join(" -> ");
    for pair in cycle.windows(2) {
        out.push_str(&format!(
            "\n  {} -> {}: `{}`",
            pair[0], pair[1], graph[&pair[0]][&pair[1]]
        ));
    }
    out
}

/// Every cycle-free check of one crate: the failures, as messages.
fn cycles(name: &str, krate: &Crate) -> Vec<String> {
    let mut failures = Vec::new();
    for (level, graph) in [
        ("file-level", krate.file_graph()),
        ("module-level", krate.module_graph()),
    ] {
        if let Some(cycle) = find_cycle(&graph) {
            failures.push(format!(
                "{name}: {level} import cycle: {}",
                describe(&cycle, &graph)
            ));
        }
    }
    failures
}

fn read_crate(src: &str) -> Crate {
    Crate::read(&repo_root().join(src), &repo_root())
}

#[test]
fn neither_crate_has_import_cycles_between_files_or_modules() {
    let mut failures = Vec::new();
    for (name, src) in CRATES {
        let krate = read_crate(src);
        assert!(
            krate.files.len() > 15 && krate.uses.values().map(Vec::len).sum::<usize>() > 100,
            "{name}: sources read badly: {:?}",
            krate.files
        );
        failures.extend(cycles(name, &krate));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_node_reads_bottom_up() {
    let graph = read_crate("crates/fabstir-node/src").module_graph();
    for module in ["api", "store", "checkpoint", "settlement", "prover", "cli"] {
        assert!(graph.contains_key(module), "{module} not found: {graph:?}");
    }
    assert!(
        graph["api"].contains_key("checkpoint"),
        "edges parsed badly: {graph:?}"
    );
    // Domain modules know nothing of HTTP, and nothing but the commands
    // knows the commands.
    for (module, uses) in &graph {
        if module != "cli" {
            assert!(!uses.contains_key("cli"), "{module} uses cli: {uses:?}");
            if module != "api" {
                assert!(
                    !uses.contains_key("api"),
                    "{module} uses the HTTP layer: {uses:?}"
                );
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
fn the_library_error_module_needs_nothing_of_the_circuit() {
    let graph = read_crate("crates/fabstir-zk/src").module_graph();
    assert!(
        graph["circuit"].contains_key("error"),
        "edges parsed badly: {graph:?}"
    );
    assert!(
        !graph["error"].contains_key("circuit"),
        "error uses circuit: {:?}",
        graph["error"]
    );
}

/// Writes a small crate (`lib.rs` and the given files) to a temporary
/// directory and reads it.
fn sample_crate(files: &[(&str, &str)]) -> Crate {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
    Crate::read(dir.path(), dir.path())
}

#[test]
fn the_checker_finds_cycles_through_uses_code_macros_and_re_exports() {
    let sample = |b: &str| {
        sample_crate(&[
            (
                "lib.rs",
                "pub mod a;\npub mod b;\npub mod c;\npub use c::Thing;\nfn f() { let _ = 1; }\n",
            ),
            ("a/mod.rs", "pub mod inner;\npub struct A;\n"),
            (
                "a/inner.rs",
                "use super::A;\npub fn g() -> A { crate::b::h(); A }\n#[cfg(test)]\nmod tests { use crate::b::*; }\n#[cfg(test)]\nfn t() { crate::b::h(); }\n",
            ),
            ("b.rs", b),
            ("c.rs", "pub struct Thing;\n"),
        ])
    };
    // No cycle: a::inner -> a, a::inner -> b, b -> c.
    let acyclic = sample("pub fn h() { let _ = crate::Thing; }\n");
    assert_eq!(cycles("sample", &acyclic), Vec::<String>::new());
    let graph = acyclic.file_graph();
    assert_eq!(
        graph["a/inner.rs"].keys().collect::<Vec<_>>(),
        ["a/mod.rs", "b.rs"]
    );
    assert!(
        graph["b.rs"].contains_key("c.rs"),
        "a root re-export is followed: {graph:?}"
    );
    // b uses a::inner: a cycle between files and between modules, whether
    // written in code, in a `use`, in a macro or through a re-export.
    for b in [
        "pub fn h() { crate::a::inner::g(); }\n",
        "use crate::a::inner::g;\npub fn h() { g(); }\n",
        "pub fn h() { println!(\"{:?}\", crate::a::inner::g as usize); }\n",
        "pub fn h() {}\nmod m { use super::super::a::inner as i; }\n",
    ] {
        let failures = cycles("sample", &sample(b));
        assert_eq!(failures.len(), 2, "{b}: {failures:?}");
        assert!(
            failures[0].contains("file-level import cycle")
                && failures[0].contains("a/inner.rs")
                && failures[0].contains("b.rs"),
            "{failures:?}"
        );
        assert!(
            failures[1].contains("module-level import cycle: a -> b -> a"),
            "{failures:?}"
        );
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &[&str])]| -> Graph {
        edges
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.iter().map(|t| (t.to_string(), String::new())).collect(),
                )
            })
            .collect()
    };
    let cyclic = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
    let cycle = find_cycle(&cyclic).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    assert_eq!(find_cycle(&graph(&[("a", &["b"]), ("b", &[])])), None);
}

// ---------------------------------------------------------------------------
// The README's layout

/// The bullets of the README's "## Layout" section, each as one line.
fn layout_bullets(readme: &str) -> Vec<String> {
    let Some(start) = readme.find("\n## Layout\n") else {
        return Vec::new();
    };
    let section = &readme[start + "\n## Layout\n".len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut bullets: Vec<String> = Vec::new();
    for line in section.lines() {
        if let Some(item) = line.strip_prefix("- ") {
            bullets.push(item.to_string());
        } else if line.starts_with(' ') {
            if let Some(last) = bullets.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        }
    }
    bullets
}

/// The module paths a bullet names: its backticked spans that are module
/// names (`name`, `name/` or `a::b`), after the first span (the crate).
fn named_modules(bullet: &str) -> BTreeSet<ModPath> {
    let is_name = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    bullet
        .split('`')
        .skip(1)
        .step_by(2)
        .skip(1)
        .filter_map(|span| {
            let span = span.strip_suffix('/').unwrap_or(span);
            let path: Vec<&str> = span.split("::").collect();
            path.iter()
                .all(|s| is_name(s))
                .then(|| path.iter().map(|s| s.to_string()).collect())
        })
        .collect()
}

/// What is wrong with the layout's bullet for one crate.
fn layout_errors(readme: &str, name: &str, krate: &Crate) -> Vec<String> {
    let bullets = layout_bullets(readme);
    let opening = format!("`crates/{name}`");
    let Some(bullet) = bullets.iter().find(|b| b.starts_with(&opening)) else {
        return vec![format!(
            "README.md's Layout has no bullet starting with {opening}"
        )];
    };
    let named = named_modules(bullet);
    let mut errors = Vec::new();
    for module in &named {
        if !krate.files.contains_key(module) {
            errors.push(format!(
                "README.md's Layout names `{}` for {name}, which has no such module",
                module.join("::")
            ));
        }
    }
    let named_top: BTreeSet<&String> = named.iter().filter_map(|m| m.first()).collect();
    for module in krate.top_level_modules() {
        if !named_top.contains(&module) {
            errors.push(format!(
                "README.md's Layout does not name {name}'s module `{module}`"
            ));
        }
    }
    errors
}

#[test]
fn the_readme_layout_names_exactly_the_crates_modules() {
    let readme = read("README.md");
    let mut errors = Vec::new();
    for (name, src) in CRATES {
        let krate = read_crate(src);
        assert!(
            krate.top_level_modules().len() >= 10,
            "{name}: modules read badly"
        );
        errors.extend(layout_errors(&readme, name, &krate));
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_layout_check_catches_a_missing_or_unknown_module() {
    let krate = sample_crate(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "pub mod inner;\n"),
        ("a/inner.rs", ""),
        ("b.rs", ""),
    ]);
    let readme = |bullet: &str| {
        format!("# X\n\n## Layout\n\n- `crates/x`: {bullet}\n- `docs/`: `zzz`.\n\n## Next\n`c`\n")
    };
    assert_eq!(
        layout_errors(&readme("`a` (with `a::inner`),\n  and `b/`."), "x", &krate),
        Vec::<String>::new()
    );
    let errors = layout_errors(&readme("`a`, `c` and `a::other`."), "x", &krate);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("`c`")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("`a::other`")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("module `b`")),
        "{errors:?}"
    );
    assert_eq!(layout_errors("no layout", "x", &krate).len(), 1);
}
