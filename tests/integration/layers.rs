//! The host's top-level modules form layers: no module reaches, through
//! `crate::` paths in its non-test code, one that reaches it back. The
//! cycles not yet broken are listed here, so that none is added and the
//! list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles still to break, each as its sorted modules.
const KNOWN_CYCLES: &[&[&str]] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `pub mod` lines of lib.rs.
fn top_level_modules() -> Vec<String> {
    std::fs::read_to_string(src().join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

/// The files of a module: `m.rs` and everything under `m/`, but not its
/// test files.
fn files_of(module: &str) -> Vec<PathBuf> {
    let mut files = vec![src().join(format!("{module}.rs"))];
    let mut dirs = vec![src().join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_stem().is_some_and(|s| s != "tests")
            {
                files.push(path);
            }
        }
    }
    files.into_iter().filter(|f| f.exists()).collect()
}

/// Top-level modules named by `crate::<module>` in the non-test code of a
/// file (everything before its `#[cfg(test)]` module).
fn reached(text: &str, modules: &BTreeSet<&str>) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    code.match_indices("crate::")
        .filter_map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            modules.contains(name.as_str()).then_some(name)
        })
        .collect()
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: BTreeSet<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let at = self.index.len();
            self.index.insert(v, at);
            self.low.insert(v, at);
            self.stack.push(v);
            for w in &self.graph[v] {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.insert(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: BTreeSet::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn top_level_modules_form_no_new_import_cycle() {
    let modules = top_level_modules();
    assert!(modules.len() > 10, "lib.rs lists the modules: {modules:?}");
    let names: BTreeSet<&str> = modules.iter().map(String::as_str).collect();
    let graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| {
            let mut uses = BTreeSet::new();
            for file in files_of(m) {
                uses.extend(reached(&std::fs::read_to_string(&file).unwrap(), &names));
            }
            uses.remove(m);
            (m.clone(), uses)
        })
        .collect();
    let found = cycles(&graph);
    let known: BTreeSet<Vec<String>> = KNOWN_CYCLES
        .iter()
        .map(|c| c.iter().map(|m| m.to_string()).collect())
        .collect();
    let added: Vec<_> = found.difference(&known).collect();
    let broken: Vec<_> = known.difference(&found).collect();
    assert!(
        added.is_empty(),
        "new import cycles between top-level modules: {added:?}; a lower layer must not name a higher one (pass what it needs in, or move the shared type down)"
    );
    assert!(
        broken.is_empty(),
        "these cycles are broken now: {broken:?}; remove them from KNOWN_CYCLES"
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_nothing_else() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, uses)| (m.to_string(), uses.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        cycles(&graph),
        BTreeSet::from([vec!["a".to_string(), "b".into(), "c".into()]])
    );
    let names = BTreeSet::from(["store", "flow"]);
    assert_eq!(
        reached(
            "use crate::store::X;\nfn f() { crate::flow::y(); crate::other::z() }\n#[cfg(test)]\nmod tests { use crate::cli; }",
            &names
        ),
        BTreeSet::from(["flow".to_string(), "store".to_string()])
    );
}
