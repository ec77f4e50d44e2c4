//! The crate's modules depend on each other one way only: the layers
//! ARCHITECTURE.md lists (its "Layers" block, read here, so the document
//! and the check cannot drift apart). A module may use what is in a lower
//! layer or its own, never a higher one — which rules out every cycle.
//!
//! Dependencies are read from the source: every `crate::name` path outside
//! comments, including the names inside `use crate::{a, b::c}`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn every_module_uses_only_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = layers(&std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap());
    let graph = graph(&root.join("src"));
    let placed: BTreeSet<&String> = layers.keys().collect();
    let found: BTreeSet<&String> = graph.keys().collect();
    assert_eq!(placed, found, "ARCHITECTURE.md's layers must name every module of src/ (and only those)");
    let wrong = upward_edges(&graph, &layers);
    assert!(wrong.is_empty(), "these uses go up the layers (ARCHITECTURE.md, Layers): {wrong:#?}");
    assert_eq!(cycle(&graph), None);
}

/// Commands see a session through its methods and its plain state, never
/// the actor loop's part (`Session::driving`: the request queue, the read
/// half, timers): that is `shell/`'s.
#[test]
fn commands_leave_the_actor_loop_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut touching = Vec::new();
    for entry in std::fs::read_dir(root.join("src/cmd")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if names_field(&text, "driving") {
            touching.push(path.display().to_string());
        }
    }
    assert!(touching.is_empty(), "cmd/ files touching Session::driving: {touching:?}");
    assert!(names_field("fn f(s: &mut Session) { s.driving.queue.clear(); }", "driving"), "the check can fail");
}

/// Whether code (outside comments) names `.field`.
fn names_field(text: &str, field: &str) -> bool {
    let needle = format!(".{field}");
    text.lines().map(|l| l.split("//").next().unwrap()).any(|code| {
        code.match_indices(&needle)
            .any(|(at, _)| code[at + needle.len()..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '_')))
    })
}

/// The check fails on a new upward use and finds the cycle it closes: the
/// real graph, doctored with the glob matcher asking the session.
#[test]
fn a_planted_upward_use_is_caught() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let layers = layers(&std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap());
    let mut graph = graph(&root.join("src"));
    assert!(
        graph["session"].contains("broker") && graph["broker"].contains("glob"),
        "the doctoring assumes these uses"
    );
    graph.get_mut("glob").unwrap().insert("session".into());
    assert_eq!(upward_edges(&graph, &layers), vec![("glob".to_string(), "session".to_string())]);
    let cycle = cycle(&graph).expect("glob → session closes a cycle");
    assert!(cycle.contains(&"glob".to_string()) && cycle.contains(&"session".to_string()), "{cycle:?}");
}

#[test]
fn uses_are_read_from_paths_and_use_lists_not_comments() {
    let text = "use crate::{acl::User, broker::{self, Census}, hub};\n\
                // crate::server in a comment\n\
                /// [`crate::shell`] in a doc comment\n\
                fn f() { crate::glob::matches(b\"\", b\"\"); }\n";
    assert_eq!(uses(text), ["acl", "broker", "glob", "hub"].map(String::from).into());
}

/// Module → layer number (0 the lowest), from the fenced block after the
/// line "## Layers": one layer a line, lowest first, module names
/// separated by spaces or commas; text after `#` is a comment.
fn layers(architecture: &str) -> BTreeMap<String, usize> {
    let section = architecture.split("\n## Layers").nth(1).expect("ARCHITECTURE.md has a \"## Layers\" section");
    let block = section.split("```").nth(1).expect("the Layers section has a fenced block");
    let mut layers = BTreeMap::new();
    for (n, line) in block.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let names = line.split('#').next().unwrap();
        for name in names.split([' ', ',']).filter(|s| !s.is_empty()) {
            assert!(layers.insert(name.to_string(), n).is_none(), "{name} is in two layers");
        }
    }
    layers
}

/// Top-level module → the top-level modules its files use (lib.rs and
/// main.rs, the crate's roots, are not modules).
fn graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_str().unwrap();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let used = uses(&std::fs::read_to_string(&path).unwrap());
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(used.into_iter().filter(|m| *m != module));
    }
    graph
}

fn uses(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            // Top-level names of the list: those at brace depth 0.
            let mut depth = 0;
            let mut name = String::new();
            let mut at_start = true;
            for c in list.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_start = true,
                    c if depth == 0 && at_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                    _ if depth == 0 && at_start && !name.is_empty() => {
                        used.insert(std::mem::take(&mut name));
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                used.insert(name);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

fn upward_edges(graph: &Graph, layers: &BTreeMap<String, usize>) -> Vec<(String, String)> {
    let mut wrong = Vec::new();
    for (from, tos) in graph {
        for to in tos {
            let (Some(a), Some(b)) = (layers.get(from), layers.get(to)) else {
                continue; // not a module of src/ (a crate root item): checked by placement
            };
            if b > a {
                wrong.push((from.clone(), to.clone()));
            }
        }
    }
    wrong
}

/// One cycle of the graph, as the modules along it, if there is one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            return Some(path[start..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}
