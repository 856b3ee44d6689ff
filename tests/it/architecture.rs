//! The shape of the source tree, checked: imports between top-level modules flow one way
//! (down the layers below), no module's files import each other in a cycle, and no source
//! file grows past 600 lines unless `ARCHITECTURE.md` names it and says why.
//!
//! An import is any `crate::<module>` path, `super::<file>` path or `use super::{..}` group
//! outside a file's `#[cfg(test)]` section and outside comments; tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::repo;

/// The layers, bottom first. A module may import modules of lower layers only; modules of one
/// layer do not import each other. The front ends are on top: `cli` (the binary) uses the
/// library by its crate name, `python` (the Python module, `--features python`) from inside.
const LAYERS: &[&[&str]] = &[
    &["sparse"],
    &["text", "cluster", "label"],
    &["io"],
    &["output"],
    &["model"],
    &["eval", "report"],
    &["job"],
    &["cli", "python"],
];

/// Files longer than this must be named in `ARCHITECTURE.md`.
const MAX_LINES: usize = 600;

fn source_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs_err::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text of `file` without its `#[cfg(test)]` section and without comment lines.
fn code(file: &Path) -> String {
    let text = fs_err::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers that follow each occurrence of `prefix` (`crate::`, `super::`), including
/// each name of a `prefix{a, b::c}` group.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find(';').unwrap_or(group.len());
            for part in group[..end].split([',', '{', '}']) {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                // Only the first segment of each path in the group is a sibling's name.
                if !name.is_empty() && !part.trim_start().starts_with("self") {
                    names.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names
}

/// The top-level module of a file under `src/`, if it is in one.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(name) => Some(name.to_owned()),
        None => Some(first.into_owned()),
    }
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer of tests/it/architecture.rs"))
}

/// Edges between top-level modules, from `crate::` paths.
fn top_level_edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = source_files(src)
        .iter()
        .filter_map(|f| top_module(src, f))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in source_files(src) {
        let Some(from) = top_module(src, &file) else {
            continue;
        };
        let entry = edges.entry(from.clone()).or_default();
        for to in names_after(&code(&file), "crate::") {
            if to != from && modules.contains(&to) {
                entry.insert(to);
            }
        }
    }
    edges
}

#[test]
fn imports_between_top_level_modules_point_down_the_layers() {
    let src = repo().join("src");
    let edges = top_level_edges(&src);
    let mut upward = Vec::new();
    for (from, tos) in &edges {
        for to in tos {
            if layer_of(to) >= layer_of(from) {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not point down the layers: {upward:?}\nall edges: {edges:#?}"
    );
    // The graph is not empty: the check sees imports at all.
    assert!(edges["job"].contains("output") && edges["output"].contains("io"));
}

/// The files of one directory module as nodes (`mod.rs` is the module itself), with an edge
/// for each `super::<sibling>` path or `crate::<top>::<sibling>` path.
fn sibling_edges(dir: &Path, top: &str) -> BTreeMap<String, BTreeSet<String>> {
    let name_of = |p: &Path| -> String {
        let relative = p.strip_prefix(dir).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        first.to_string_lossy().trim_end_matches(".rs").to_owned()
    };
    let files = source_files(dir);
    let nodes: BTreeSet<String> = files.iter().map(|f| name_of(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = name_of(file);
        let code = code(file);
        // `super::` in a direct child names a sibling; deeper files' `super::` stays inside
        // their own directory module, which is checked on its own.
        let direct = file.parent() == Some(dir);
        let mut names = if direct && from != "mod" {
            names_after(&code, "super::")
        } else {
            Vec::new()
        };
        names.extend(names_after(&code, &format!("crate::{top}::")));
        let entry = edges.entry(from.clone()).or_default();
        for to in names {
            if to != from && nodes.contains(&to) && to != "mod" {
                entry.insert(to);
            }
        }
    }
    edges
}

fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Depth-first search for back edges; reports each cycle found by its path.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(i) = path.iter().position(|n| n == node) {
            found.push(path[i..].to_vec());
            return;
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, found);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let (mut done, mut found) = (BTreeSet::new(), Vec::new());
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn no_files_of_a_module_import_each_other_in_a_cycle() {
    let src = repo().join("src");
    let mut dirs = vec![src.clone()];
    let mut all = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in fs_err::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        if dir == src {
            continue;
        }
        let top = top_module(&src, &dir.join("x.rs")).unwrap();
        for cycle in cycles(&sibling_edges(&dir, &top)) {
            all.push(format!("{}: {}", dir.display(), cycle.join(" -> ")));
        }
    }
    assert!(all.is_empty(), "import cycles between files: {all:#?}");
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c"]]);
    assert_eq!(
        names_after("use super::{a, b::C, self};\nx = super::d::f();", "super::"),
        ["a", "b", "d"]
    );
}

#[test]
fn long_files_are_named_in_architecture_md() {
    let architecture = fs_err::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let src = repo().join("src");
    let mut unexplained = Vec::new();
    for file in source_files(&src) {
        let lines = fs_err::read_to_string(&file).unwrap().lines().count();
        let relative = file.strip_prefix(repo()).unwrap().display().to_string();
        if lines > MAX_LINES && !architecture.contains(&format!("`{relative}`")) {
            unexplained.push(format!("{relative}: {lines} lines"));
        }
    }
    assert!(
        unexplained.is_empty(),
        "files over {MAX_LINES} lines that ARCHITECTURE.md does not name: {unexplained:#?}"
    );
}
