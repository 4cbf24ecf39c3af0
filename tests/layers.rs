//! The crate's layers point one way:
//! `tree <- forest <- format <- store <- guard <- serve <- py`.
//!
//! A lower layer never names a higher one, so each layer can be read, tested and reused
//! without the ones above it (the tree without the forest's hyperparameters, the file format
//! without the store, the store without Python). The shared modules at the crate root
//! (`error`, `rng`, `value`, `fingerprint`) sit below every layer and name none.
//!
//! This test reads the source of each layer and fails on any `crate::<higher layer>` path in
//! code (comments are skipped): `use crate::forest::X`, `use crate::{forest::X, ...}`, or a
//! path written inline. See docs/ARCHITECTURE.md for what each layer holds.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may name only modules of its own rank or lower.
const LAYERS: [&str; 7] = ["tree", "forest", "format", "store", "guard", "serve", "py"];

/// Root modules below every layer.
const SHARED: [&str; 5] = ["error", "rng", "value", "fingerprint", "Result"];

/// Rank of a root module: shared modules -1, layers by position, anything else unknown.
fn rank(module: &str) -> Option<i32> {
    if SHARED.contains(&module) {
        return Some(-1);
    }
    LAYERS.iter().position(|l| *l == module).map(|p| p as i32)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir` (or `dir.rs` itself), sorted.
fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            rust_files(&e, out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The source with `//` comments (doc comments included) and `/* */` comments blanked.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let (mut i, mut in_str) = (0, false);
    while i < bytes.len() {
        let c = bytes[i];
        if in_str {
            out.push(c as char);
            if c == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1] as char);
                i += 2;
                continue;
            }
            in_str = c != b'"';
            i += 1;
        } else if c == b'"' {
            in_str = true;
            out.push('"');
            i += 1;
        } else if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            let end = text[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |e| i + 2 + e + 2);
            i = end;
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

fn ident_at(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The root modules a source file names through `crate::`, with the line of each.
fn crate_refs(code: &str) -> Vec<(usize, String)> {
    let mut refs = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        // `$crate::` in macros and identifiers ending in "crate" are not the crate root.
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c, d::{e, f}}`: the first identifier of each top-level item.
            let (mut depth, mut item_start) = (0usize, 0usize);
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        refs.push((line, ident_at(&group[item_start..k])));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        refs.push((line, ident_at(&group[item_start..k])));
                        item_start = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            refs.push((line, ident_at(rest)));
        }
    }
    refs.retain(|(_, m)| !m.is_empty() && m != "self");
    refs
}

/// Every reference from a module of rank `own` to a higher-ranked root module.
fn violations(own: i32, files: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let code = strip_comments(&fs::read_to_string(file).unwrap());
        for (line, module) in crate_refs(&code) {
            match rank(&module) {
                Some(r) if r <= own => {}
                Some(_) => found.push(format!(
                    "{}:{line}: names crate::{module}, a higher layer",
                    file.strip_prefix(src()).unwrap_or(file).display()
                )),
                // Crate-root re-exports (`crate::Forest`) hide which layer they come from.
                None => found.push(format!(
                    "{}:{line}: names crate::{module}, which is no layer: name the module it \
                     lives in",
                    file.strip_prefix(src()).unwrap_or(file).display()
                )),
            }
        }
    }
    found
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let mut problems = Vec::new();
    let mut checked = BTreeSet::new();
    for (own, layer) in LAYERS.iter().enumerate() {
        let mut files = Vec::new();
        rust_files(&src().join(layer), &mut files);
        rust_files(&src().join(format!("{layer}.rs")), &mut files);
        assert!(!files.is_empty(), "layer {layer} has no source under src/");
        checked.insert(*layer);
        problems.extend(violations(own as i32, &files));
    }
    for shared in SHARED.iter().filter(|m| **m != "Result") {
        let file = src().join(format!("{shared}.rs"));
        assert!(file.exists(), "shared module {shared} is missing");
        problems.extend(violations(-1, &[file]));
    }
    assert_eq!(checked.len(), LAYERS.len());
    assert!(
        problems.is_empty(),
        "the layers must point one way (tree <- forest <- format <- store <- guard <- serve <- py):\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_root_module_is_a_layer_or_shared() {
    // A new root module must be placed in the order above, or the check would not see it.
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    for line in lib.lines() {
        let line = line.trim();
        let decl = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "));
        if let Some(name) = decl {
            let name = name.trim_end_matches(';');
            assert!(
                rank(name).is_some(),
                "src/lib.rs declares module {name}, which tests/layers.rs does not place"
            );
        }
    }
}

#[test]
fn the_reader_sees_every_form_of_path() {
    let code = strip_comments(
        "use crate::forest::Forest;\n// use crate::store::x;\nuse crate::{error::Result, \
         format::{decode, encode}};\nlet x = crate::py::f();\nlet s = \"crate::store\";\n\
         $crate::tree::x;\n",
    );
    let refs: Vec<String> = crate_refs(&code).into_iter().map(|(_, m)| m).collect();
    assert_eq!(refs, ["forest", "error", "format", "py", "store"]);
}
