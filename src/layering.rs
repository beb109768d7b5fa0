//! The module layering, checked: every `crate::` path in a module's files names
//! a module of a lower layer (or its own). A module that needs one above it
//! gets an interface from below instead (as `platform` gives its calls to
//! `policy` through a closure, and `state` hands tokens to `platform` through
//! the `Store` trait).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

/// The layers, lowest first; modules of one layer may not use each other.
const LAYERS: &[&[&str]] = &[
    &["proto", "metrics"],
    &["upstream", "net", "telemetry"],
    &["config", "errors"],
    &["plan", "state", "auth", "policy"],
    &["limits"],
    &["platform"],
    &["core"],
    &["api", "admin"],
    &["app"],
    // The fuzz targets' entry points (the `fuzzing` feature): above everything.
    &["fuzzing"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules that the `crate::` paths of `source` name.
fn used_modules(source: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        // `gamegate_sandbox::...` or `$crate::` are not ours.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first identifier of each item at depth 0.
            let mut depth = 0;
            let mut item_start = true;
            for (index, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[index..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphabetic() || c == '_') => {
                        let ident: String = group[index..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        used.insert(ident);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            used.insert(ident);
        }
    }
    used
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_parser_finds_every_form_of_crate_path() {
    let used = used_modules(
        "use crate::{errors::{self, GatewayError}, plan::{Route}, proto};\n\
         let x = crate::upstream::Error::new(); use gamegate_sandbox::crate_like;\n\
         macro_rules! m { () => { $crate::core::x } }",
    );
    let expected: BTreeSet<String> = ["errors", "plan", "proto", "upstream"]
        .map(String::from)
        .into();
    assert_eq!(used, expected);
}

#[test]
fn no_module_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "lib" | "main" | "layering") {
            continue;
        }
        let layer = layer_of(&module)
            .unwrap_or_else(|| panic!("src/{module} is in no layer of LAYERS: place it"));
        let source = fs::read_to_string(&file).unwrap();
        for used in used_modules(&source) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(used_layer) if used_layer < layer => {}
                _ => wrong.push(format!(
                    "src/{} ({module}) uses crate::{used}",
                    relative.display()
                )),
            }
        }
        checked += 1;
    }
    assert!(checked > 30, "only {checked} files checked");
    assert!(
        wrong.is_empty(),
        "upward or sideways uses:\n{}",
        wrong.join("\n")
    );
}
