//! Embeds the demo of `acta serve --demo`: the real samples of `testdata/` (with their licence
//! files) and the Sigma rules of `rules/`, so the binary alone can show a live dashboard.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Directories embedded, relative to the repository, and what is left out of them.
const EMBEDDED: [(&str, &[&str]); 3] = [
    // `expected/` is the golden output of the tests, not data.
    ("testdata", &["testdata/expected"]),
    ("rules/sigma", &[]),
    ("rules/sigma-correlation", &[]),
];

fn walk(dir: &Path, skip: &[PathBuf], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if skip.iter().any(|s| path.starts_with(s)) {
            continue;
        }
        if path.is_dir() {
            walk(&path, skip, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let repo = manifest.join("../..");
    let mut files = Vec::new();
    for (dir, skip) in EMBEDDED {
        let skip: Vec<PathBuf> = skip.iter().map(|s| repo.join(s)).collect();
        println!("cargo:rerun-if-changed={}", repo.join(dir).display());
        walk(&repo.join(dir), &skip, &mut files);
    }
    files.sort();
    let mut code = String::from(
        "/// The demo's files: path in the repository, bytes.\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        let Ok(rel) = f.strip_prefix(&repo) else {
            continue;
        };
        let abs = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        let _ = writeln!(
            code,
            "    ({:?}, include_bytes!({:?})),",
            rel.to_string_lossy(),
            abs.to_string_lossy()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("demo_files.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
    }
}
