//! Bad input never crashes: mutated manifests and model files always give diagnostics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use stir::diagnostic::{render_github, render_human, render_json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A manifest and its model files by relative path.
type Seed = (Vec<u8>, BTreeMap<String, Vec<u8>>);

/// Every case manifest and its model files, as seeds for mutation.
fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(workspace().join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let manifest = std::fs::read(dir.join("stir.kdl")).unwrap();
        let mut models = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(dir.join("models")) {
            for e in entries {
                let p = e.unwrap().path();
                // Cases hold files stir refuses (a directory, a link to /dev/null): not seeds.
                if let Ok(bytes) = stir::load::read_file(&p, stir::load::MAX_SOURCE_BYTES) {
                    models.insert(
                        format!("models/{}", p.file_name().unwrap().to_string_lossy()),
                        bytes,
                    );
                }
            }
        }
        out.push((manifest, models));
    }
    out
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Replace(usize, u8),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Tokens that matter to the parsers, plus raw bytes (including invalid UTF-8).
    let token = prop::sample::select(vec![
        "{",
        "}",
        "\"",
        "=",
        "#true",
        "{{",
        "}}",
        "{%",
        "%}",
        "ref('",
        "')",
        "/",
        "\\",
        "\n",
        "tag:",
        "+",
        "*/7",
        "model x",
        "schedule s cron=\"* * * * *\" timeout=\"1m\" { run x }",
        "#\"",
        "/*",
        "-- ",
        "dbt.",
        "\u{0}",
        "é",
    ])
    .prop_map(|s: &str| s.as_bytes().to_vec());
    prop_oneof![
        (
            any::<usize>(),
            prop_oneof![token, prop::collection::vec(any::<u8>(), 1..4)]
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..20).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let len = bytes.len();
    match e {
        Edit::Insert(i, b) => {
            let at = if len == 0 { 0 } else { i % (len + 1) };
            bytes.splice(at..at, b.iter().copied());
        }
        Edit::Delete(i, n) if len > 0 => {
            let at = i % len;
            let end = (at + n).min(len);
            bytes.drain(at..end);
        }
        Edit::Replace(i, b) if len > 0 => bytes[i % len] = *b,
        Edit::Duplicate(i, n) if len > 0 => {
            let at = i % len;
            let end = (at + n).min(len);
            let chunk = bytes[at..end].to_vec();
            bytes.splice(end..end, chunk);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn any_mutated_manifest_or_model_gives_diagnostics_never_a_panic(
        seed in any::<prop::sample::Index>(),
        manifest_edits in prop::collection::vec(edit(), 0..6),
        model_edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 0..6),
    ) {
        let seeds = seeds();
        let (mut manifest, mut models) = seed.get(&seeds).clone();
        for e in &manifest_edits {
            apply(&mut manifest, e);
        }
        let keys: Vec<String> = models.keys().cloned().collect();
        if !keys.is_empty() {
            for (which, e) in &model_edits {
                let k = which.get(&keys);
                apply(models.get_mut(k).unwrap(), e);
            }
        }
        let read = |p: &Path| -> std::io::Result<Vec<u8>> {
            let rel = p.strip_prefix("case").unwrap_or(p).to_string_lossy().into_owned();
            models.get(&rel).cloned().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        let c = stir::compile_bytes("stir.kdl", &manifest, Path::new("case"), &read);
        // Rendering every finding must not panic either (spans may point anywhere).
        let _ = render_human(&c.findings, &c.files, false, 100);
        let _ = render_json(&c.findings, &c.files);
        let _ = render_github(&c.findings, &c.files);
        if manifest.is_empty() {
            prop_assert!(c.has_errors(), "an empty manifest has no project");
        }
    }

    #[test]
    fn arbitrary_bytes_as_a_manifest_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let read = |_: &Path| -> std::io::Result<Vec<u8>> { Err(std::io::Error::from(std::io::ErrorKind::NotFound)) };
        let c = stir::compile_bytes("stir.kdl", &bytes, Path::new("."), &read);
        let _ = render_human(&c.findings, &c.files, false, 100);
        prop_assert!(c.has_errors(), "random bytes are never a whole valid manifest");
    }
}
