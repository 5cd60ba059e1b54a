//! The imports of the portal's modules run one way, down the layers below: a module may use
//! modules of lower layers only, never one of its own layer or above. So the domain never
//! depends on the web layer, and no two modules depend on each other (no cycle).
//!
//! A module is a top-level file of `src/` or a top-level directory of it (the files of one
//! directory are one module's parts and may use each other). An import is any `crate::name`
//! path in code (`use` lines, grouped `use crate::{a, b}`, and full paths in expressions);
//! comments are not code. `cargo test --test layers -- --nocapture` prints the graph by layer.
//!
//! It also keeps the functions of `src/` short: one over `LONG_FUNCTION` lines (test code aside)
//! fails unless a comment line containing `Long because:` directly above it says why.

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
    (
        "domain built on domain",
        &["cases", "bundle", "copies", "redaction"],
    ),
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

/// A function over this many lines (between its braces) needs a comment saying why.
const LONG_FUNCTION: usize = 80;

/// How a long function says why it is long: a comment line containing this, directly above it
/// (among its doc comment and attributes).
const LONG_BECAUSE: &str = "Long because:";

// TODO(issue 37): split. Long functions allowed for the time being: (file under src/,
// function). Each is split, or given a `Long because:` comment, then removed from here; an
// entry that is no longer long (or gone) is printed by the check, to be removed.
const LONG_FUNCTIONS_TO_SPLIT: &[(&str, &str)] = &[];

/// `text` with every comment and the inside of every string and character literal blanked to
/// spaces (newlines kept), so that positions and line numbers stay those of the file, and
/// braces, `fn` and `#[cfg(test)]` found in it are code. Handles nested block comments, escapes,
/// raw strings (`r#"…"#`) and tells a character literal (`'{'`) from a lifetime (`'a`).
fn blanked(text: &str) -> Vec<char> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(chars.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    // A literal starts after a non-identifier character, or after the prefix `b` or `c` (`b'{'`,
    // `br"…"`) that itself does.
    let starts_literal = |i: usize| match i.checked_sub(1).map(|p| chars[p]) {
        Some('b' | 'c') => !i.checked_sub(2).is_some_and(|p| ident(chars[p])),
        Some(p) => !ident(p),
        None => true,
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len());
            blank(&mut out, i, end);
            i = end;
        } else if c == '/' && next == Some('*') {
            let (mut depth, mut j) = (0, i);
            while j < chars.len() {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c == 'r' && matches!(next, Some('"' | '#')) && starts_literal(i) && {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            chars.get(i + 1 + hashes) == Some(&'"')
        } {
            // A raw string: r"…", r#"…"#, br"…"; no escapes, ends at `"` and as many `#`.
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            let start = i + 2 + hashes;
            let mut j = start;
            while j < chars.len() {
                if chars[j] == '"' && chars[j + 1..].iter().take(hashes).all(|&h| h == '#') {
                    break;
                }
                j += 1;
            }
            blank(&mut out, start, j);
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if c == '\'' && starts_literal(i) {
            // '\n', '\u{7b}', '{': a character literal; 'a (no closing quote next): a lifetime.
            if next == Some('\\') {
                let end = (i + 3..chars.len())
                    .find(|&j| chars[j] == '\'')
                    .unwrap_or(chars.len());
                blank(&mut out, i + 1, end);
                i = end + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                blank(&mut out, i + 1, i + 2);
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The index of the `}` that closes the `{` at `open` in blanked code.
fn closing_brace(code: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, &c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where the item that starts at `from` ends its head: the index of its body's `{`, or of the
/// `;` of an item without one, outside parentheses and brackets (`[u8; 4]`, attributes).
fn item_head_end(code: &[char], from: usize) -> Option<(usize, char)> {
    let mut depth = 0i32;
    for (j, &c) in code.iter().enumerate().skip(from) {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            '{' | ';' if depth == 0 => return Some((j, c)),
            _ => {}
        }
    }
    None
}

fn line_at(code: &[char], at: usize) -> usize {
    code[..at].iter().filter(|&&c| c == '\n').count() + 1
}

/// One file's parts under `#[cfg(test)]`: the character ranges of inline items, and the paths
/// (resolved as rustc does) of the out-of-line modules it declares under it.
fn test_parts(file: &Path, text: &str, code: &[char]) -> (Vec<(usize, usize)>, Vec<PathBuf>) {
    let original: Vec<char> = text.chars().collect();
    let needle: Vec<char> = "#[cfg(test)]".chars().collect();
    let (mut ranges, mut files) = (Vec::new(), Vec::new());
    let dir = file.parent().expect("a directory");
    let stem = file.file_stem().expect("a name").to_string_lossy();
    let own_dir = if ["mod", "lib", "main"].contains(&stem.as_ref()) {
        dir.to_path_buf()
    } else {
        dir.join(stem.as_ref())
    };
    let mut i = 0;
    while i + needle.len() <= code.len() {
        if code[i..i + needle.len()] != needle[..] {
            i += 1;
            continue;
        }
        let after = i + needle.len();
        match item_head_end(code, after) {
            Some((open, '{')) => {
                let close = closing_brace(code, open).unwrap_or(code.len() - 1);
                ranges.push((i, close));
                i = close;
            }
            Some((semi, _)) => {
                let head: String = original[after..semi].iter().collect();
                let path = head
                    .split_once("#[path = \"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(p, _)| dir.join(p));
                let name = head
                    .split_whitespace()
                    .skip_while(|w| *w != "mod")
                    .nth(1)
                    .map(str::to_owned);
                match (path, name) {
                    (Some(path), _) => files.push(path),
                    (None, Some(name)) => {
                        files.push(own_dir.join(format!("{name}.rs")));
                        files.push(own_dir.join(&name).join("mod.rs"));
                    }
                    (None, None) => {}
                }
                i = semi;
            }
            None => break,
        }
    }
    (ranges, files)
}

/// A function of `src/` outside test code, with the lines of its body.
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    /// The line of its `fn`.
    line: usize,
    /// Lines between its braces.
    lines: usize,
    /// Whether a comment directly above it (or its doc comment) says why it is long.
    says_why: bool,
}

/// The functions with a body in one file's text, but those in `test_ranges`.
fn functions_of(text: &str, test_ranges: &[(usize, usize)]) -> Vec<Function> {
    let code = blanked(text);
    let original: Vec<char> = text.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for i in 0..code.len().saturating_sub(3) {
        let is_fn = code[i] == 'f'
            && code[i + 1] == 'n'
            && code[i + 2].is_whitespace()
            && !i.checked_sub(1).is_some_and(|p| ident(code[p]));
        if !is_fn || test_ranges.iter().any(|&(a, b)| a <= i && i <= b) {
            continue;
        }
        let start = (i + 2..code.len())
            .find(|&j| !code[j].is_whitespace())
            .unwrap_or(code.len());
        let name: String = code[start..]
            .iter()
            .skip_while(|&&c| c == 'r' && code.get(start + 1) == Some(&'#'))
            .skip_while(|&&c| c == '#')
            .take_while(|&&c| ident(c))
            .collect();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            continue; // `fn (u8)`, a function pointer type
        }
        let Some((open, '{')) = item_head_end(&code, start) else {
            continue; // a declaration without a body (a trait's, an extern's)
        };
        let Some(close) = closing_brace(&code, open) else {
            continue;
        };
        let line = line_at(&code, i);
        // Its head: back to the end of the item before it (`;`, `{`, `}` of code, outside
        // attribute brackets), which takes in its doc comment, attributes and `pub async`.
        let mut head_start = i;
        let mut depth = 0i32;
        while head_start > 0 {
            match code[head_start - 1] {
                ']' | ')' => depth += 1,
                '[' | '(' => depth -= 1,
                ';' | '{' | '}' if depth == 0 => break,
                _ => {}
            }
            head_start -= 1;
        }
        let head: String = original[head_start..i].iter().collect();
        let says_why = head
            .lines()
            .any(|l| l.trim_start().starts_with("//") && l.contains(LONG_BECAUSE));
        found.push(Function {
            name,
            line,
            lines: line_at(&code, close).saturating_sub(line_at(&code, open) + 1),
            says_why,
        });
    }
    found
}

/// Every function of `src/` outside test code: (file under src/, function).
fn functions_of_src() -> Vec<(String, Function)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("read a source file");
            (f, text)
        })
        .collect();
    let mut test_files: BTreeSet<PathBuf> = texts
        .iter()
        .filter(|(f, _)| f.file_name().is_some_and(|n| n == "tests.rs"))
        .map(|(f, _)| f.clone())
        .collect();
    let mut ranges = BTreeMap::new();
    for (file, text) in &texts {
        let (in_file, declared) = test_parts(file, text, &blanked(text));
        ranges.insert(file.clone(), in_file);
        test_files.extend(declared);
    }
    let mut out = Vec::new();
    for (file, text) in &texts {
        if test_files.contains(file) {
            continue;
        }
        let rel = file
            .strip_prefix(src())
            .expect("under src")
            .display()
            .to_string();
        for function in functions_of(text, &ranges[file]) {
            out.push((rel.clone(), function));
        }
    }
    out
}

/// No function of `src/` (test code aside) is over `LONG_FUNCTION` lines unless a comment
/// directly above it says why (`Long because: …`): a function that long usually holds several
/// ideas, each of which deserves a name.
#[test]
fn no_function_is_over_80_lines_without_saying_why() {
    let functions = functions_of_src();
    assert!(
        functions.len() > 500,
        "too few functions found to trust the scan: {}",
        functions.len()
    );
    let long: Vec<&(String, Function)> = functions
        .iter()
        .filter(|(_, f)| f.lines > LONG_FUNCTION && !f.says_why)
        .collect();
    let allowed = |file: &str, name: &str| {
        LONG_FUNCTIONS_TO_SPLIT
            .iter()
            .any(|&(f, n)| f == file && n == name)
    };
    let unexplained: Vec<String> = long
        .iter()
        .filter(|(file, f)| !allowed(file, &f.name))
        .map(|(file, f)| format!("src/{file}:{} fn {} ({} lines)", f.line, f.name, f.lines))
        .collect();
    let stale: Vec<String> = LONG_FUNCTIONS_TO_SPLIT
        .iter()
        .filter(|&&(file, name)| !long.iter().any(|(f, g)| f == file && g.name == name))
        .map(|(file, name)| format!("{file}: {name}"))
        .collect();
    for (file, f) in &long {
        println!(
            "long: src/{file}:{} fn {} ({} lines)",
            f.line, f.name, f.lines
        );
    }
    assert!(
        unexplained.is_empty(),
        "functions over {LONG_FUNCTION} lines: split each along its ideas, or say why it is long \
         in a comment line containing `{LONG_BECAUSE}` directly above it:\n  {}",
        unexplained.join("\n  ")
    );
    // Printed, not failed, while other work that lengthens or splits these is in flight: a
    // function split by its owner must not turn the tree red before this list is edited.
    for entry in &stale {
        println!("no longer long (or gone), remove from LONG_FUNCTIONS_TO_SPLIT: {entry}");
    }
}

#[test]
fn the_long_function_scanner_reads_rust() {
    let body = |n: usize| "    x();\n".repeat(n);
    let text = format!(
        "//! fn not_me() {{\n\
         /// Short.\n\
         pub(crate) async fn short<'a>(s: &'a str, b: [u8; 4]) -> impl Fn(u8) -> u8 {{\n\
         {short}}}\n\
         // Long because: a table.\n\
         #[allow(clippy::x)]\n\
         fn explained() {{\n{long}}}\n\
         fn tricky() {{\n    let a = \"}}\"; let b = '{{'; let c = r#\"\"}}\"#;\n\
         let d = '\\u{{7b}}'; let e: &'static str = \"\\\"{{\"; let f = b'{{'; let g = '\\'';\n    /* }} /* }} */ */\n\
         {long}}}\n\
         trait T {{ fn declared(&self); }}\n\
         #[cfg(test)]\nmod tests {{\n    fn in_tests() {{\n{long}    }}\n}}\n\
         fn outer() {{\n    fn inner() {{\n{long}    }}\n}}\n",
        short = body(3),
        long = body(90),
    );
    let code = blanked(&text);
    assert_eq!(code.len(), text.chars().count());
    let (ranges, declared) = test_parts(Path::new("src/x/mod.rs"), &text, &code);
    assert!(declared.is_empty());
    let found: Vec<(String, usize, bool)> = functions_of(&text, &ranges)
        .into_iter()
        .map(|f| (f.name, f.lines, f.says_why))
        .collect();
    let expected: Vec<(String, usize, bool)> = [
        ("short", 3, false),
        ("explained", 90, true),
        ("tricky", 93, false),
        ("outer", 92, false),
        ("inner", 90, false),
    ]
    .into_iter()
    .map(|(n, l, w)| (n.to_owned(), l, w))
    .collect();
    assert_eq!(found, expected);
    let (_, declared) = test_parts(
        Path::new("src/audit/read.rs"),
        "#[cfg(test)]\n#[path = \"read_tests.rs\"]\nmod tests;\n#[cfg(test)]\nmod more;",
        &blanked("#[cfg(test)]\n#[path = \"read_tests.rs\"]\nmod tests;\n#[cfg(test)]\nmod more;"),
    );
    assert_eq!(
        declared,
        [
            PathBuf::from("src/audit/read_tests.rs"),
            PathBuf::from("src/audit/read/more.rs"),
            PathBuf::from("src/audit/read/more/mod.rs"),
        ]
    );
}
