//! The modules of `src/` import one way: each layer may use the layers below it, never one
//! above, and no set of modules imports each other in a circle. The layers are the ones
//! docs/architecture.md draws; a new module must be placed in one here.
//!
//! An import is any `crate::<module>` outside comments (`use` lines and paths alike).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom.
const LAYERS: &[(&str, &[&str])] = &[
    ("entry", &["main"]),
    (
        "commands",
        &[
            "train",
            "bench",
            "inference",
            "convert",
            "algorithms",
            "timeline",
        ],
    ),
    ("files", &["runfile"]),
    ("measurement", &["clock", "record", "provenance"]),
    ("settings", &["settings"]),
    ("command line", &["cli"]),
    ("model and data", &["model", "optim", "data"]),
    ("communication", &["comm"]),
    (
        "leaves",
        &[
            "kinds",
            "real",
            "errors",
            "logging",
            "fault",
            "phase",
            "watchdog",
            "interrupt",
            "blas",
            "h5",
            "partition",
            "vmath",
            "simd",
            "memory",
            "launcher",
            "waiting",
            "exact",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// module -> the modules it imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let from = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = graph.entry(from.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != from && !name.chars().next().unwrap().is_uppercase()
                {
                    uses.insert(name);
                }
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

#[test]
fn every_module_has_a_layer_and_imports_only_downwards() {
    let graph = imports();
    let mut wrong = Vec::new();
    for (from, uses) in &graph {
        let Some(level) = layer_of(from) else {
            wrong.push(format!(
                "{from}: in no layer (add it to LAYERS and docs/architecture.md)"
            ));
            continue;
        };
        for to in uses {
            match layer_of(to) {
                // Macros exported at the crate root (`crate::info_root!`).
                None if graph.contains_key(to) => wrong.push(format!("{to}: in no layer")),
                None => {}
                Some(below) if below < level => wrong.push(format!(
                    "{from} ({}) imports {to} ({}), a layer above it",
                    LAYERS[level].0, LAYERS[below].0
                )),
                Some(_) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let graph = imports();
    // Depth-first search; a back edge closes a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|&n| n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let cycle = visit(module, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap().join(" -> ")
        );
    }
}
