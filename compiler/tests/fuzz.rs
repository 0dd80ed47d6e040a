//! Bad input never crashes: mutated manifests and model files always give diagnostics that
//! point into the file they name, and a manifest the kdl crate cannot parse always fails.

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
        let _ = render_github(&c.findings, &c.files);
        // A manifest that is not KDL any more (told by the kdl crate itself, not by stir's
        // findings) must fail, with an error that points into the manifest.
        // (Asked only when stir found no error in the manifest: the parse is the slow part.)
        let manifest_error = c.findings.iter().any(|f| {
            f.severity == stir::diagnostic::Severity::Error && c.files.get(f.file).name == "stir.kdl"
        });
        let kdl_broken = !manifest_error
            && std::str::from_utf8(&manifest).map_or(true, |t| !kdl_parses(t));
        let outcome = findings_point_into_files(&c, kdl_broken.then_some("stir.kdl"));
        prop_assert!(outcome.is_ok(), "{}\n{}", outcome.unwrap_err(), String::from_utf8_lossy(&manifest));
    }

    #[test]
    fn arbitrary_bytes_as_a_manifest_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let read = |_: &Path| -> std::io::Result<Vec<u8>> { Err(std::io::Error::from(std::io::ErrorKind::NotFound)) };
        let c = stir::compile_bytes("stir.kdl", &bytes, Path::new("."), &read);
        let _ = render_human(&c.findings, &c.files, false, 100);
        prop_assert!(c.has_errors(), "random bytes are never a whole valid manifest");
    }
}

/// Whether the kdl crate itself parses `text` (on a thread with a large stack: unlike
/// `stir check`, which refuses deep nesting first, the bare parser recurses on it).
fn kdl_parses(text: &str) -> bool {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(s, || kdl::KdlDocument::parse_v2(text).is_ok())
            .unwrap()
            .join()
            .unwrap()
    })
}

/// The seeds, read once: the generator asks for them on every case.
fn cached_seeds() -> &'static [Seed] {
    static SEEDS: std::sync::OnceLock<Vec<Seed>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(seeds)
}

/// Cases per structure-aware property: a few in CI, a fixed budget outside it
/// (`STIR_FUZZ_CASES=20000`, see docs/testing.md).
fn fuzz_cases() -> u32 {
    std::env::var("STIR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// A KDL value as text: well-formed or not, with odd Unicode, NUL, long and huge ones.
fn kdl_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,8}",
        any::<String>().prop_map(|s| format!("{s:?}")),
        // Raw characters between quotes: newlines, quotes and backslashes break the string.
        prop::collection::vec(any::<char>(), 0..40)
            .prop_map(|cs| format!("\"{}\"", cs.into_iter().collect::<String>())),
        (1usize..4, "[^\r\n]{0,30}").prop_map(|(h, s)| {
            let h = "#".repeat(h);
            format!("{h}\"{s}\"{h}")
        }),
        "[{}\"#/*\\\\=;()\u{0}\u{feff}\u{2028}é]{1,20}",
        prop::sample::select(vec![
            "#true", "#false", "#null", "#inf", "#-inf", "#nan", "1e99999", "-0x", "0b2"
        ])
        .prop_map(String::from),
        "-?[0-9]{20,400}(\\.[0-9]{1,50})?",
        (
            1usize..400,
            prop::sample::select(vec!["x{", "}", "{{ ref('a') }}", "\\\"", "é"])
        )
            .prop_map(|(n, piece)| format!("\"{}\"", piece.repeat(n))),
        Just("\"\"\"\nmulti {\n  line }\n\"\"\"".to_string()),
    ]
}

/// One node: a known or unknown name, arguments, properties, maybe children.
fn kdl_node() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "project",
            "model",
            "models",
            "tag",
            "schedule",
            "run",
            "sync",
            "request",
            "source",
            "table",
            "var",
            "blackout",
            "warehouse",
            "serving",
            "staging",
            "endpoint",
            "sql",
        ])
        .prop_map(String::from),
        "[a-z]{1,6}",
        kdl_value(),
    ];
    let entry = prop_oneof![
        kdl_value(),
        (
            prop::sample::select(vec!["tags", "cron", "timeout", "file", "dir", "heavy", "x"]),
            kdl_value()
        )
            .prop_map(|(k, v)| format!("{k}={v}")),
    ];
    let leaf = (name, prop::collection::vec(entry, 0..4))
        .prop_map(|(n, es)| format!("{n} {}", es.join(" ")));
    leaf.prop_recursive(6, 48, 8, |inner| {
        (
            inner.clone(),
            prop::collection::vec(inner, 0..8),
            prop::sample::select(vec!["\n", "\r\n", ";", " ", "\u{2028}"]),
            any::<bool>(),
        )
            .prop_map(|(head, children, sep, slashdash)| {
                let dash = if slashdash { "/-" } else { "" };
                format!("{head} {dash}{{{sep}{}{sep}}}", children.join(sep))
            })
    })
}

/// A whole document: a real manifest or not, generated nodes, deep towers, BOMs, junk.
fn kdl_document() -> impl Strategy<Value = Vec<u8>> {
    let tower = (
        1usize..3000,
        prop::sample::select(vec![
            "a {",
            "a /-{",
            "(t)a {",
            "/*",
            "\"",
            "a=",
            "}",
            ")",
            "a {\"}\"",
            "a #\"{\"# {",
        ]),
    )
        .prop_map(|(n, piece)| piece.repeat(n));
    // One very long string per document at most: the parser's cost is per byte.
    let long = (1usize..50_000).prop_map(|n| format!("a \"{}\"", "x{".repeat(n)));
    (
        any::<bool>(),
        any::<prop::sample::Index>(),
        prop::collection::vec(prop_oneof![8 => kdl_node(), 2 => tower, 1 => long], 0..12),
        prop::sample::select(vec!["\n", "\r\n", "\r", ";"]),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    )
        .prop_map(|(bom, seed, nodes, sep, bytes)| {
            let seeds = cached_seeds();
            let mut out = Vec::new();
            if bom {
                out.extend_from_slice("\u{feff}".as_bytes());
            }
            // Half the documents start from a real case, so the checks after parsing run too.
            let (manifest, _) = seed.get(seeds);
            if seed.index(2) == 0 {
                out.extend_from_slice(manifest);
            }
            out.extend_from_slice(nodes.join(sep).as_bytes());
            // A few raw bytes anywhere: NUL, invalid UTF-8.
            for (at, b) in bytes {
                let i = at.index(out.len() + 1);
                out.insert(i, b);
            }
            out
        })
}

/// What a user can rely on for any input: no panic, and when it fails, findings with a
/// known code and a span inside the file they name.
fn assert_findings_point_into_files(bytes: &[u8], read: &stir::compile::ReadFile) {
    let c = stir::compile_bytes("stir.kdl", bytes, Path::new("case"), read);
    if let Err(e) = findings_point_into_files(&c, None) {
        panic!("{e}");
    }
}

/// Every finding has a known code, a message and a span inside the file it names (rendered,
/// they must not panic); a failed check has at least one error, and with `must_fail` (the
/// input is known bad by other means) one in that file; a passed check builds its plan.
fn findings_point_into_files(
    c: &stir::compile::Compiled,
    must_fail: Option<&str>,
) -> Result<(), String> {
    let _ = render_human(&c.findings, &c.files, false, 100);
    let _ = render_json(&c.findings, &c.files);
    let codes: Vec<&str> = stir::diagnostic::CODES.iter().map(|(c, _)| *c).collect();
    let inside = |f: &stir::diagnostic::Finding| {
        f.span.start <= f.span.end && f.span.end <= c.files.text(f.file).len()
    };
    for f in &c.findings {
        if !codes.contains(&f.code) {
            return Err(format!("unknown code {}", f.code));
        }
        if f.message.trim().is_empty() {
            return Err(format!("{}: a finding without a message", f.code));
        }
        if !inside(f) {
            return Err(format!(
                "{}: span {:?} outside a file of {} bytes",
                f.code,
                f.span,
                c.files.text(f.file).len()
            ));
        }
    }
    let error = |f: &&stir::diagnostic::Finding| f.severity == stir::diagnostic::Severity::Error;
    if let Some(file) = must_fail {
        let named = |f: &&stir::diagnostic::Finding| c.files.get(f.file).name == file;
        if !c.findings.iter().filter(error).any(|f| named(&f)) {
            return Err(format!("a broken {file} passed without an error in it"));
        }
    }
    if !c.has_errors() {
        if let Err(e) = stir::planner::build(c) {
            return Err(format!("check passed, plan refused: {e}"));
        }
    }
    Ok(())
}

/// Model files: missing, a query, refused by type, bytes that are not UTF-8.
fn reader(kind: u8) -> impl Fn(&Path) -> std::io::Result<Vec<u8>> {
    move |_: &Path| match kind % 4 {
        0 => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        1 => Ok(b"select 1 from {{ ref('a') }}".to_vec()),
        2 => Err(stir::load::ReadError::NotRegular("a FIFO").into()),
        _ => Ok(vec![b's', 0, 0xff, b'{', b'{']),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    #[test]
    fn generated_kdl_documents_give_findings_inside_the_file_never_a_crash(
        doc in kdl_document(),
        kind in any::<u8>(),
    ) {
        assert_findings_point_into_files(&doc, &reader(kind));
    }
}

/// Inputs that aborted `stir check` with a stack overflow or took quadratic time, kept so
/// they stay fixed (found by hand and by the probe described in docs/testing.md).
#[test]
fn known_crashers_give_findings() {
    let n = 20_000;
    let crashers = [
        format!("project p\n{}{}", "a {".repeat(2000), "}".repeat(2000)),
        format!("project p\n/*{}*/", "*".repeat(n)),
        format!("project p\n{}", "/*".repeat(n)),
        format!("project p\n{}", "}".repeat(n)),
        format!("project p\n{}", ")".repeat(n)),
        format!("project p\n{}", "=".repeat(n)),
        format!("project p\n{}", "{".repeat(n)),
        format!("project p\n{}", " a=".repeat(n)),
        format!("project p\n{}", "a{".repeat(n)),
        format!("project p\n{}", "/-{".repeat(n)),
        format!("project p\n{}", "a /-{".repeat(n)),
        format!("project p\n{}", ";".repeat(n)),
        format!("project p\n{}", "\"".repeat(n)),
        format!("project p\na \"\\q {}\"", "a {".repeat(3000)),
        // A finding past column 65,535 made miette panic (found by the structure-aware fuzz).
        format!("project p\n{} )", "a ".repeat(40_000)),
        // Nested slashdashed blocks: exponential time in the kdl crate (kdl-rs issue 177;
        // found by the structure-aware fuzz, 27 of them after a node, in a 363-byte input).
        format!("project p\n##\"x\"## timeout=\"y\"\n{}", "a /-{".repeat(27)),
        format!("project p\n{}{}", "a /-{".repeat(27), "}".repeat(27)),
        format!("project p\n{}", "/- a {\n b\n".repeat(27)),
    ];
    for text in &crashers {
        assert_findings_point_into_files(text.as_bytes(), &reader(0));
        let c = stir::compile_bytes("stir.kdl", text.as_bytes(), Path::new("."), &reader(0));
        assert!(c.has_errors(), "{}", &text[..40]);
    }
}
