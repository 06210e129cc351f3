//! The sans-IO modules stay sans-IO: `http` (parsing and framing),
//! `balance` (selection), `health` (the health rules), `exchange` (one
//! request's state machine), `proxy_protocol` and `dns` (DNS messages)
//! never name monoio or `std::net`, never read the
//! clock (time comes in as arguments), forbid `unsafe`, and import nothing
//! from the IO side of the crate. Their unit tests may do what they like.

use std::fs;
use std::path::{Path, PathBuf};

/// The sans-IO modules, and the crate modules each may import.
const MODULES: &[(&str, &[&str])] = &[
    ("http", &["http"]),
    ("balance", &["balance"]),
    ("health", &["health"]),
    ("exchange", &["exchange", "http", "health"]),
    ("proxy_protocol", &["proxy_protocol"]),
    ("dns", &["dns"]),
];

/// What code in those modules must not say.
const FORBIDDEN: &[&str] = &[
    "monoio",
    "std::net",
    "Instant::now",
    "SystemTime",
    "std::fs",
    "std::thread",
    "libc::",
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The non-test code of a file, without comments: everything before its
/// inline `#[cfg(test)] mod tests { ... }` (which ends the file), minus a
/// `#[cfg(test)] mod tests;` declaration and `//` comment lines. A file
/// that is a test module (`tests.rs`) has none.
fn code(path: &Path) -> Vec<(usize, String)> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    let text = fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut code = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line == "#[cfg(test)]" {
            match lines.get(i + 1).map(|l| l.trim()) {
                Some(next) if next.starts_with("mod ") && next.ends_with(';') => {
                    i += 2;
                    continue;
                }
                _ => break,
            }
        }
        if !line.starts_with("//") {
            code.push((i + 1, lines[i].to_string()));
        }
        i += 1;
    }
    code
}

/// The files of a module: a directory's, or its one file.
fn module_files(module: &str) -> Vec<PathBuf> {
    let dir = src().join(module);
    if dir.is_dir() {
        rust_files(&dir)
    } else {
        vec![dir.with_extension("rs")]
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn sans_io_modules_name_no_io_and_read_no_clock() {
    let mut found = Vec::new();
    for (module, _) in MODULES {
        for file in module_files(module) {
            for (n, line) in code(&file) {
                for word in FORBIDDEN {
                    if line.contains(word) {
                        found.push(format!("{}:{n}: {word}: {}", file.display(), line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "IO in a sans-IO module:\n{}",
        found.join("\n")
    );
}

#[test]
fn sans_io_modules_forbid_unsafe() {
    for (module, _) in MODULES {
        let dir = src().join(module);
        let root = if dir.is_dir() {
            dir.join("mod.rs")
        } else {
            dir.with_extension("rs")
        };
        let text = fs::read_to_string(&root).unwrap();
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{} does not forbid unsafe code",
            root.display()
        );
    }
}

#[test]
fn sans_io_modules_import_only_their_own_layer() {
    let mut found = Vec::new();
    for (module, allowed) in MODULES {
        for file in module_files(module) {
            for (n, line) in code(&file) {
                let mut rest = line.as_str();
                while let Some(at) = rest.find("crate::") {
                    rest = &rest[at + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !allowed.contains(&name.as_str()) {
                        found.push(format!("{}:{n}: crate::{name}", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "a sans-IO module imports from outside its layer:\n{}",
        found.join("\n")
    );
}

/// Every `crate::<module>` a file's code names, by top-level module.
fn imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut graph = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for file in rust_files(&src()) {
        let rel = file.strip_prefix(src()).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if ["main", "lib", "bin"].contains(&module.as_str()) {
            continue;
        }
        for (_, line) in code(&file) {
            let mut names = Vec::new();
            let mut rest = line.as_str();
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    // `use crate::{a::X, b};`
                    let group = group.split('}').next().unwrap_or("");
                    names.extend(group.split(',').map(|p| p.trim().to_string()));
                } else {
                    names.push(rest.to_string());
                }
            }
            for name in names {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    graph.entry(module.clone()).or_default().insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn modules_import_each_other_in_one_direction_only() {
    let graph = imports();
    // Depth-first search for a path back to where it started.
    fn back_to(
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if path.contains(next) {
                continue;
            }
            path.push(next.clone());
            if back_to(graph, start, next, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    for module in graph.keys() {
        let mut path = vec![module.clone()];
        assert!(
            !back_to(&graph, module, module, &mut path),
            "modules import each other in a circle: {}",
            path.join(" -> ")
        );
    }
}
