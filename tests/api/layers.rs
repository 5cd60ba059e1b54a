//! The imports of the portal's modules run one way, down the layers below: a module may use
//! modules of lower layers only, never one of its own layer or above. So the domain never
//! depends on the web layer, and no two modules depend on each other (no cycle).
//!
//! A module is a top-level file of `src/` or a top-level directory of it (the files of one
//! directory are one module's parts and may use each other). An import is any `crate::name`
//! path in code (`use` lines, grouped `use crate::{a, b}`, and full paths in expressions);
//! comments are not code. `cargo test --test layers -- --nocapture` prints the graph by layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. Read it as: each line may use the lines above it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "ground: words, settings, time, keys, logging",
        &[
            "vocab",
            "config",
            "clock",
            "keys",
            "metrics",
            "telemetry",
            "assets",
        ],
    ),
    (
        "language, signatures, database, object store",
        &["i18n", "signing", "db", "store"],
    ),
    ("errors", &["error"]),
    ("the access-audit log", &["audit"]),
    ("access policy; the shared state", &["policy", "state"]),
    ("identity and request limits", &["auth", "limits"]),
    ("telling the people of a case", &["notifications"]),
    (
        "domain",
        &[
            "accounts",
            "materials",
            "thumbnails",
            "delivery",
            "render",
            "retention",
        ],
    ),
    ("domain built on domain", &["cases", "bundle", "copies"]),
    (
        "applications made online, built on cases",
        &["applications"],
    ),
    ("web", &["routes"]),
    ("the program", &["startup"]),
    ("demo data; backups", &["demo", "backup"]),
    ("command line", &["cli"]),
];

/// Files outside the layering: the crate root and the binaries' entry points.
const OUTSIDE: &[&str] = &["lib", "main", "bin", "locales"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its comments (line comments, doc comments, block comments);
/// string literals are kept, so `"http://…"` is not taken for a comment.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = next {
                    out.push(n);
                }
                i += 2;
                continue;
            }
            if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match (c, next) {
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            ('"', _) => {
                // A char literal '"' is not the start of a string.
                let is_char = i > 0 && chars[i - 1] == '\'' && chars.get(i + 1) == Some(&'\'');
                in_string = !is_char;
                out.push(c);
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn ident_at(chars: &[char], mut i: usize) -> String {
    let mut s = String::new();
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        s.push(chars[i]);
        i += 1;
    }
    s
}

/// Every top-level module that `code` names after `crate::`.
fn imports_of(code: &str) -> BTreeSet<String> {
    let chars: Vec<char> = code.chars().collect();
    let needle: Vec<char> = "crate::".chars().collect();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i + needle.len() <= chars.len() {
        let preceded_by_ident =
            i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == '$');
        if chars[i..i + needle.len()] == needle[..] && !preceded_by_ident {
            let at = i + needle.len();
            if chars.get(at) == Some(&'{') {
                // `crate::{a::b, c, d::{e, f}}`: the first name of each top-level item.
                let mut depth = 0;
                let mut j = at;
                let mut item_start = true;
                while j < chars.len() {
                    match chars[j] {
                        '{' => {
                            depth += 1;
                            item_start = depth == 1;
                        }
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ',' if depth == 1 => item_start = true,
                        c if item_start && (c.is_alphanumeric() || c == '_') => {
                            found.insert(ident_at(&chars, j));
                            item_start = false;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                i = j;
            } else {
                let name = ident_at(&chars, at);
                if !name.is_empty() {
                    found.insert(name);
                }
                i = at;
            }
        } else {
            i += 1;
        }
    }
    found
}

/// Module → the modules it imports, with one file that does, for the messages.
fn graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(file);
        if OUTSIDE.contains(&from.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read a source file");
        let rel = file
            .strip_prefix(src())
            .expect("under src")
            .display()
            .to_string();
        let entry = graph.entry(from.clone()).or_default();
        for to in imports_of(&code_of(&text)) {
            if to != from && modules.contains(&to) {
                entry.entry(to).or_insert_with(|| rel.clone());
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, members)| members.contains(&module))
}

#[test]
fn imports_run_down_the_layers() {
    let graph = graph();
    let mut problems = Vec::new();
    for module in graph.keys() {
        if layer_of(module).is_none() {
            problems.push(format!(
                "module `{module}` is in no layer: add it to LAYERS in tests/layers.rs"
            ));
        }
    }
    for (from, targets) in &graph {
        let Some(from_layer) = layer_of(from) else {
            continue;
        };
        for (to, file) in targets {
            let Some(to_layer) = layer_of(to) else {
                continue;
            };
            if to_layer >= from_layer {
                let how = if to_layer == from_layer {
                    "its own layer"
                } else {
                    "a higher layer"
                };
                problems.push(format!(
                    "{file}: `{from}` ({}) uses `{to}` ({}), {how}",
                    LAYERS[from_layer].0, LAYERS[to_layer].0
                ));
            }
        }
    }
    for (i, (name, members)) in LAYERS.iter().enumerate().rev() {
        println!("{i:>2} {name}");
        for m in members.iter() {
            let uses: Vec<&str> = graph
                .get(*m)
                .map(|t| t.keys().map(String::as_str).collect())
                .unwrap_or_default();
            println!("     {m:<11} → {}", uses.join(", "));
        }
    }
    assert!(
        problems.is_empty(),
        "imports that do not run down the layers:\n  {}",
        problems.join("\n  ")
    );
}

/// Independent of the layer table: no cycle among the modules at all (Tarjan's components).
#[test]
fn no_module_cycle() {
    let graph = graph();
    let nodes: Vec<&String> = graph.keys().collect();
    let index_of = |n: &str| nodes.iter().position(|m| m.as_str() == n);
    let mut index = vec![usize::MAX; nodes.len()];
    let mut low = vec![0; nodes.len()];
    let mut on_stack = vec![false; nodes.len()];
    let mut stack = Vec::new();
    let mut counter = 0;
    let mut cycles = Vec::new();
    #[allow(clippy::too_many_arguments)]
    fn visit(
        v: usize,
        nodes: &[&String],
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        index_of: &dyn Fn(&str) -> Option<usize>,
        index: &mut Vec<usize>,
        low: &mut Vec<usize>,
        on_stack: &mut Vec<bool>,
        stack: &mut Vec<usize>,
        counter: &mut usize,
        cycles: &mut Vec<Vec<String>>,
    ) {
        index[v] = *counter;
        low[v] = *counter;
        *counter += 1;
        stack.push(v);
        on_stack[v] = true;
        for to in graph[nodes[v]].keys() {
            let Some(w) = index_of(to) else { continue };
            if index[w] == usize::MAX {
                visit(
                    w, nodes, graph, index_of, index, low, on_stack, stack, counter, cycles,
                );
                low[v] = low[v].min(low[w]);
            } else if on_stack[w] {
                low[v] = low[v].min(index[w]);
            }
        }
        if low[v] == index[v] {
            let mut component = Vec::new();
            while let Some(w) = stack.pop() {
                on_stack[w] = false;
                component.push(nodes[w].clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                cycles.push(component);
            }
        }
    }
    for v in 0..nodes.len() {
        if index[v] == usize::MAX {
            visit(
                v,
                &nodes,
                &graph,
                &index_of,
                &mut index,
                &mut low,
                &mut on_stack,
                &mut stack,
                &mut counter,
                &mut cycles,
            );
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that depend on each other (each group is one cycle): {cycles:?}"
    );
}

#[test]
fn the_scanner_finds_imports_and_skips_comments() {
    let code = code_of(
        "use crate::{audit::Event, db};\n// crate::routes in a comment\nlet u = \"http://x\"; crate::store::get();\n/* crate::cli */ let c = '\"'; crate::i18n::t(\"k\");",
    );
    let found = imports_of(&code);
    let expected: BTreeSet<String> = ["audit", "db", "store", "i18n"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(found, expected);
}

/// No file of `src/` a newcomer has to scroll through: 600 lines at most (split along a seam).
#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f)
                .expect("read a source file")
                .lines()
                .count();
            (lines > 600).then(|| format!("{} ({lines})", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over 600 lines: {long:?}");
}

/// The top-level modules that `src/lib.rs` declares (`pub mod name;` or `mod name;`).
fn declared_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("read src/lib.rs");
    code_of(&lib)
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))?;
            let name = rest.strip_suffix(';')?.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

/// The modules that ARCHITECTURE.md's code map has a line for: lines that start with
/// ``- `name` `` (the format that document states for its map).
fn mapped_modules(map: &str) -> BTreeSet<String> {
    map.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("- `")?;
            let (name, _) = rest.split_once('`')?;
            Some(name.to_owned())
        })
        .collect()
}

/// The map for the next person (ARCHITECTURE.md) names every module of `src/` and no other: a
/// module added to `lib.rs` without its line there, or removed with its line left, fails here.
#[test]
fn every_module_has_a_line_in_the_map() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
    let map = std::fs::read_to_string(&path).expect("read ARCHITECTURE.md");
    let declared = declared_modules();
    assert!(
        declared.len() > 10,
        "src/lib.rs declares too few modules to be read right: {declared:?}"
    );
    let mapped = mapped_modules(&map);
    let missing: Vec<&String> = declared.iter().filter(|m| !mapped.contains(*m)).collect();
    let stale: Vec<&String> = mapped.iter().filter(|m| !declared.contains(*m)).collect();
    assert!(
        stale.is_empty(),
        "ARCHITECTURE.md's code map has lines for modules src/lib.rs no longer declares: {stale:?}"
    );
    assert!(
        missing.is_empty(),
        "modules of src/lib.rs with no line in ARCHITECTURE.md's code map (add a line starting \
         with - `name` under its layer): {missing:?}"
    );
}

#[test]
fn the_map_check_reads_lines_and_declarations() {
    let mapped = mapped_modules("- `cli` — commands\n  - `nested` no\n| `table` |\n- `db` — x");
    let expected: BTreeSet<String> = ["cli", "db"].into_iter().map(str::to_owned).collect();
    assert_eq!(mapped, expected);
    assert!(declared_modules().contains(&"vocab".to_owned()));
}
