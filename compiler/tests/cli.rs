//! The real `stir` binary, as a user or CI runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// One small builder for every CLI test (just's `tests/test.rs`).
struct Run {
    args: Vec<String>,
    env: Vec<(String, String)>,
    out: Option<Output>,
}

impl Run {
    fn stir(args: &[&str]) -> Run {
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            out: None,
        }
    }
    fn env(mut self, k: &str, v: &str) -> Run {
        self.env.push((k.into(), v.into()));
        self
    }
    fn run(mut self) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_stir"))
            .args(&self.args)
            .current_dir(workspace())
            .env("NO_COLOR", "1")
            .env_remove("STIR_PLAN_KEY")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("stir runs");
        self.out = Some(out);
        self
    }
    fn code(&self) -> i32 {
        self.out.as_ref().unwrap().status.code().unwrap_or(-1)
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.as_ref().unwrap().stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.as_ref().unwrap().stderr).into_owned()
    }
    fn expect(self, code: i32) -> Run {
        let r = self.run();
        assert_eq!(
            r.code(),
            code,
            "stir {:?}\nstdout:\n{}\nstderr:\n{}",
            r.args,
            r.stdout(),
            r.stderr()
        );
        r
    }
}

#[test]
fn clean_manifest_passes_with_exit_0() {
    let r = Run::stir(&["check", "tests/cases/clean/stir.kdl", "--deny-warnings"]).expect(0);
    assert!(r.stderr().contains("no findings"), "{}", r.stderr());
}

#[test]
fn errors_exit_1_and_are_all_reported() {
    let r = Run::stir(&["check", "tests/cases/unknown_names/stir.kdl"]).expect(1);
    let err = r.stderr();
    for code in [
        "stir::unknown_ref",
        "stir::unknown_source",
        "stir::unknown_tag",
        "stir::unknown_endpoint",
    ] {
        assert!(err.contains(code), "missing {code} in\n{err}");
    }
    assert!(
        err.trim_end().ends_with("error: 12 errors, 0 warnings"),
        "{err}"
    );
}

#[test]
fn warnings_pass_unless_denied() {
    Run::stir(&["check", "tests/cases/hidden_ref/stir.kdl"]).expect(0);
    Run::stir(&[
        "check",
        "tests/cases/hidden_ref/stir.kdl",
        "--deny-warnings",
    ])
    .expect(1);
}

#[test]
fn missing_manifest_directory_and_garbage_path_exit_2() {
    let r = Run::stir(&["check", "tests/cases/nope/stir.kdl"]).expect(2);
    assert!(r.stderr().contains("does not exist"), "{}", r.stderr());
    let r = Run::stir(&["check", "tests/cases/clean"]).expect(2);
    assert!(r.stderr().contains("is a directory"), "{}", r.stderr());
    assert!(
        r.stderr().contains("tests/cases/clean/stir.kdl"),
        "help names the file: {}",
        r.stderr()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn unreadable_manifest_exits_2() {
    // A file that exists but cannot be read, even by root (CI runs as root, so a chmod 000
    // file would be readable): reading /proc/self/mem from offset 0 fails with EIO.
    let r = Run::stir(&["check", "/proc/self/mem"]).expect(2);
    assert!(
        r.stderr().contains("cannot read manifest `/proc/self/mem`"),
        "{}",
        r.stderr()
    );
}

#[test]
fn json_format_is_one_array_of_findings() {
    let r = Run::stir(&[
        "check",
        "tests/cases/tag_conflict/stir.kdl",
        "--format",
        "json",
    ])
    .expect(1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).expect("JSON");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 1);
    assert_eq!(arr[0]["code"], "stir::tag_conflict");
    assert_eq!(arr[0]["severity"], "error");
    assert_eq!(arr[0]["file"], "tests/cases/tag_conflict/stir.kdl");
    assert_eq!(arr[0]["line"], 5);
    assert_eq!(arr[0]["column"], 11);
    assert!(arr[0]["help"].as_str().unwrap().contains("exclude"));
}

#[test]
fn github_format_annotates_the_pull_request() {
    let r = Run::stir(&[
        "check",
        "tests/cases/hidden_ref/stir.kdl",
        "--format",
        "github",
    ])
    .expect(0);
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("::warning file=tests/cases/hidden_ref/models/mart_instagram_account.sql,line=4,col=10,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("title=stir%3A%3Ahidden_ref::"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("%0Ahelp: write"), "{}", lines[0]);
}

#[test]
fn ls_lists_models_in_build_order_like_dbt_ls() {
    let r = Run::stir(&["ls", "-m", "tests/cases/clean/stir.kdl", "+mart_top"]).expect(0);
    assert_eq!(r.stdout(), "stg_account\nmart_account\nmart_top\n");
    let r = Run::stir(&[
        "ls",
        "-m",
        "tests/cases/clean/stir.kdl",
        "tag:daily",
        "--exclude",
        "mart_top",
    ])
    .expect(0);
    assert_eq!(r.stdout(), "mart_account\n");
    let r = Run::stir(&["ls", "-m", "tests/cases/clean/stir.kdl", "stg_account+"]).expect(0);
    assert_eq!(r.stdout(), "stg_account\nmart_account\nmart_top\n");
    let r = Run::stir(&["ls", "-m", "tests/cases/clean/stir.kdl", "path:models"]).expect(0);
    assert_eq!(
        r.stdout().lines().count(),
        3,
        "the disabled model is not listed: {}",
        r.stdout()
    );
}

#[test]
fn ls_owner_names_the_schedule() {
    let r = Run::stir(&[
        "ls",
        "-m",
        "tests/cases/clean/stir.kdl",
        "--owner",
        "mart_top",
    ])
    .expect(0);
    assert_eq!(r.stdout(), "daily\t(cron \"0 19 * * *\", via tag:daily)\n");
    let r = Run::stir(&["ls", "-m", "tests/cases/clean/stir.kdl", "tag:dialy"]).expect(2);
    assert!(
        r.stderr().contains("did you mean `tag:daily`?"),
        "{}",
        r.stderr()
    );
}

#[test]
fn timeline_draws_svg_and_text() {
    let out = std::env::temp_dir().join(format!("stir-week-{}.svg", std::process::id()));
    Run::stir(&[
        "timeline",
        "tests/cases/schedule_overlap/stir.kdl",
        "-o",
        out.to_str().unwrap(),
    ])
    .expect(0);
    let svg = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..80.min(svg.len())]
    );
    for name in ["post_ranker", "dbt_daily", "dbt_weekly", "heavy overlap"] {
        assert!(svg.contains(name), "svg lacks {name}");
    }
    let r = Run::stir(&[
        "timeline",
        "tests/cases/schedule_overlap/stir.kdl",
        "--days",
        "1",
        "--width",
        "48",
    ])
    .expect(0);
    let text = r.stdout();
    let row = text.lines().find(|l| l.starts_with("dbt_daily")).unwrap();
    // dbt_daily fires at 19:00 and overlaps post_ranker's 15:00 run: red from 19:00 on.
    assert!(row.trim_end().ends_with('!'), "{text}");
}

/// A fresh folder under the temp dir for one test's files.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stir-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `stir keygen` makes the key at run time: the secret into a new mode-600 file, the public
/// key on stdout; `stir plan --sign` writes `plan.json.sig` beside byte-identical plan bytes,
/// and the signature verifies with the printed public key. The secret is printed nowhere.
#[test]
fn plan_sign_writes_a_detached_signature_over_the_unchanged_plan() {
    let d = scratch("sign");
    let key_file = d.join("plan-signing.key");
    let k = Run::stir(&["keygen", "-o", key_file.to_str().unwrap()]).expect(0);
    let public = k.stdout().trim().to_string();
    assert!(public.starts_with("stir-pk-ed25519-"), "{public}");
    let secret = std::fs::read_to_string(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = Run::stir(&["keygen", "-o", key_file.to_str().unwrap()]).expect(2);
    assert!(
        again.stderr().contains("never overwritten"),
        "{}",
        again.stderr()
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), secret);

    let plain = d.join("plain.json");
    let signed = d.join("plan.json");
    let manifest = "tests/cases/clean/stir.kdl";
    Run::stir(&["plan", manifest, "-o", plain.to_str().unwrap()]).expect(0);
    let r = Run::stir(&["plan", manifest, "-o", signed.to_str().unwrap(), "--sign"])
        .env("STIR_PLAN_KEY", secret.trim())
        .expect(0);
    let secret_hex = &secret.trim()["stir-sk-ed25519-".len()..];
    for out in [r.stdout(), r.stderr(), k.stdout(), k.stderr()] {
        assert!(
            !out.contains(secret_hex),
            "the secret key is printed: {out}"
        );
    }
    assert!(r
        .stderr()
        .contains(&format!("signed: {}.sig (key {public})", signed.display())));
    let bytes = std::fs::read(&signed).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&plain).unwrap(),
        "signing changes no plan byte"
    );
    let sig_path = stir::signature::signature_path(&signed);
    let sig = std::fs::read(&sig_path).unwrap();
    let trusted = stir::signature::PublicKey::list_from_var(Some(&public)).unwrap();
    assert_eq!(
        stir::signature::verify(&bytes, &sig_path, Some(&sig), &trusted)
            .unwrap()
            .to_string(),
        public
    );
    let mut changed = bytes.clone();
    changed.extend_from_slice(b" ");
    assert!(stir::signature::verify(&changed, &sig_path, Some(&sig), &trusted).is_err());
    let _ = std::fs::remove_dir_all(&d);
}

/// `--sign` with no key, an empty one, a short one, a public key, or no file to put the
/// signature beside: exit 2, a `help:` line, no plan written, and the value never echoed.
#[test]
fn plan_sign_refuses_a_missing_empty_or_malformed_key_and_writes_nothing() {
    let d = scratch("badkey");
    let key_file = d.join("k");
    let public = Run::stir(&["keygen", "-o", key_file.to_str().unwrap()])
        .expect(0)
        .stdout();
    let secret = std::fs::read_to_string(&key_file).unwrap();
    let out = d.join("plan.json");
    let o = out.to_str().unwrap();
    let manifest = "tests/cases/clean/stir.kdl";
    let short = secret.trim()[..40].to_string();
    let cases: [(Option<&str>, &str); 4] = [
        (None, "`STIR_PLAN_KEY` is not set"),
        (Some("  "), "`STIR_PLAN_KEY` is set but empty"),
        (Some(&short), "must be followed by 64 hex digits"),
        (Some(public.trim()), "holds a `stir-pk-ed25519-…` key"),
    ];
    for (value, want) in cases {
        let mut run = Run::stir(&["plan", manifest, "-o", o, "--sign"]);
        if let Some(v) = value {
            run = run.env("STIR_PLAN_KEY", v);
        }
        let r = run.expect(2);
        let err = r.stderr();
        assert!(
            err.contains(want) && err.contains("\nhelp: "),
            "{want}: {err}"
        );
        assert!(err.contains("no plan written"), "{err}");
        assert!(
            !err.contains(&secret.trim()[20..40]),
            "the key is echoed: {err}"
        );
        assert!(!out.exists() && !stir::signature::signature_path(&out).exists());
    }
    for output in [None, Some("-")] {
        let mut args = vec!["plan", manifest, "--sign"];
        args.extend(output.iter().flat_map(|o| ["-o", *o]));
        let r = Run::stir(&args)
            .env("STIR_PLAN_KEY", secret.trim())
            .expect(2);
        assert!(
            r.stderr().contains("--sign needs -o FILE"),
            "{}",
            r.stderr()
        );
        assert!(r.stdout().is_empty(), "no unsigned plan on stdout");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// `ref('x')` and `source('a', 'b')` calls as written in a model file, found without stir's
/// renderer: the graph's edges are compared with what the SQL says.
fn calls(sql: &str, func: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = sql;
    while let Some(i) = rest.find(&format!("{func}(")) {
        rest = &rest[i + func.len() + 1..];
        let end = rest.find(')').unwrap();
        let args: Vec<String> = rest[..end]
            .split(',')
            .map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
            .collect();
        out.insert(args.join("."));
    }
    out
}

#[test]
fn graph_json_has_an_edge_for_every_ref_and_source_the_sql_names() {
    let r = Run::stir(&["graph", "--format", "json", "-m", "stir.kdl"]).expect(0);
    let g: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let edges: Vec<(String, String)> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().into(), e[1].as_str().unwrap().into()))
        .collect();
    let models: Vec<&serde_json::Value> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "model")
        .collect();
    // 112 models less the three with a disabled tag, as `stir ls` lists them.
    let listed = Run::stir(&["ls", "-m", "stir.kdl"]).expect(0).stdout();
    assert_eq!(models.len(), listed.lines().count());
    let mut checked = 0;
    for m in &models {
        let name = m["name"].as_str().unwrap();
        let file = workspace().join(m["file"].as_str().unwrap());
        let sql = std::fs::read_to_string(file).unwrap();
        let into = |prefix: &str| -> std::collections::BTreeSet<String> {
            edges
                .iter()
                .filter(|(_, to)| to == &format!("model:{name}"))
                .filter_map(|(from, _)| from.strip_prefix(prefix).map(String::from))
                .collect()
        };
        assert_eq!(into("model:"), calls(&sql, "ref"), "refs of {name}");
        assert_eq!(into("source:"), calls(&sql, "source"), "sources of {name}");
        checked += 1;
    }
    assert_eq!(checked, 109);
    // Every model carries its owners, as `stir ls --owner` names them.
    let m = models
        .iter()
        .find(|m| m["name"] == "mart_instagram_account")
        .unwrap();
    assert_eq!(m["owners"], serde_json::json!(["dbt_hourly"]));
}

#[test]
fn graph_draws_a_selection_as_svg_and_dot() {
    let r = Run::stir(&[
        "graph",
        "+mart_top",
        "--format",
        "svg",
        "-m",
        "tests/cases/clean/stir.kdl",
    ])
    .expect(0);
    let svg = r.stdout();
    assert!(svg.starts_with("<svg"), "{svg}");
    // Three models and nothing else of the manifest.
    assert_eq!(svg.matches("<g class=\"Model\">").count(), 3, "{svg}");
    for name in ["stg_account", "mart_account", "mart_top", "daily"] {
        assert!(svg.contains(name), "svg lacks {name}");
    }
    let dot = Run::stir(&["graph", "-m", "tests/cases/clean/stir.kdl"])
        .expect(0)
        .stdout();
    assert!(dot.starts_with("digraph lineage {"), "{dot}");
    assert!(
        dot.contains("\"model:mart_account\" -> \"model:mart_top\";"),
        "{dot}"
    );
    // A manifest with errors is refused: its edges would be guesses.
    Run::stir(&["graph", "-m", "tests/cases/cycle/stir.kdl"]).expect(2);
}

#[test]
fn every_manifest_command_takes_the_manifest_as_a_flag_too() {
    for cmd in ["check", "timeline", "plan"] {
        let r = Run::stir(&[cmd, "-m", "tests/cases/clean/stir.kdl"]).expect(0);
        assert!(!r.stderr().contains("error"), "{cmd}: {}", r.stderr());
        // Two different manifests are a mistake, not a silent pick.
        let r = Run::stir(&[cmd, "stir.kdl", "--manifest", "tests/cases/clean/stir.kdl"]).expect(2);
        assert!(r.stderr().contains("two manifests given"), "{}", r.stderr());
    }
}

/// A plan over the size a runtime reads is not written (the runtime would refuse it at deploy
/// time): exit 2 with the size, the largest models and what to do. The same project with
/// smaller models writes its plan.
#[test]
fn plan_refuses_to_write_a_plan_no_runtime_would_read() {
    let d = scratch("bigplan");
    // Four table models of `select '<x * len>' as payload`: each is in the plan three times.
    let write = |payloads: [usize; 4]| {
        std::fs::create_dir_all(d.join("models")).unwrap();
        let names: Vec<String> = (0..4).map(|i| format!("big_{i}")).collect();
        let models: String = names.iter().map(|n| format!("    model {n}\n")).collect();
        std::fs::write(
            d.join("stir.kdl"),
            format!(
                "project big timezone=UTC\nwarehouse clickhouse database=dbt\n\
                 models dir=\"models\" {{\n{models}}}\n\
                 schedule daily cron=\"0 3 * * *\" timeout=\"1h\" {{\n    run {}\n}}\n",
                names.join(" ")
            ),
        )
        .unwrap();
        for (n, len) in names.iter().zip(payloads) {
            std::fs::write(
                d.join("models").join(format!("{n}.sql")),
                format!("select '{}' as payload\n", "x".repeat(len)),
            )
            .unwrap();
        }
    };
    let manifest = d.join("stir.kdl");
    let m = manifest.to_str().unwrap();
    let out = d.join("plan.json");
    let o = out.to_str().unwrap();
    let mib = 1024 * 1024;
    let sql = "select '' as payload".len();

    // 72 MiB of SQL in the plan: `stir check` refuses it, as `stir plan` and the runtime would.
    write([6 * mib, 6 * mib + 1, 6 * mib + 2, 6 * mib + 3]);
    let r = Run::stir(&["check", m]).expect(1);
    let err = r.stderr();
    assert!(err.contains("stir::plan_too_big"), "{err}");
    assert!(
        err.contains("the plan would be at least 72 MiB, over the 64 MiB a runtime reads"),
        "{err}"
    );
    assert!(
        err.contains("`big_3` (18.0 MiB)"),
        "the largest first: {err}"
    );
    let r = Run::stir(&["plan", m, "-o", o]).expect(1);
    assert!(r.stderr().contains("stir::plan_too_big"), "{}", r.stderr());
    assert!(!out.exists(), "no plan file is left behind");

    // The SQL alone 1,000 bytes under the limit: `stir check` warns (names and statements
    // take more than that), and `stir plan` refuses the whole plan it built.
    let each = (stir::load::MAX_PLAN_BYTES as usize - 1000) / 12 - sql;
    let rest = (stir::load::MAX_PLAN_BYTES as usize - 1000) - 12 * (each + sql);
    write([each, each, each, each + rest / 3]);
    let r = Run::stir(&["check", m]).expect(0);
    assert!(
        r.stderr().contains("close to the 64 MiB a runtime reads"),
        "{}",
        r.stderr()
    );
    Run::stir(&["check", "--deny-warnings", m]).expect(1);
    let r = Run::stir(&["plan", m, "-o", o]).expect(2);
    let err = r.stderr();
    assert!(
        err.contains("over the 64 MiB a runtime reads; no plan written"),
        "{err}"
    );
    assert!(err.contains("`big_3` (5.3 MiB of SQL)"), "{err}");
    assert!(!out.exists(), "no plan file is left behind");

    // 12 MiB: no finding, and the plan is written.
    write([mib, mib + 1, mib + 2, mib + 3]);
    let r = Run::stir(&["check", m]).expect(0);
    assert!(!r.stderr().contains("plan_too_big"), "{}", r.stderr());
    Run::stir(&["plan", m, "-o", o]).expect(0);
    let len = std::fs::metadata(&out).unwrap().len();
    assert!(
        len > 12 * 1024 * 1024 && len <= stir::load::MAX_PLAN_BYTES,
        "{len}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
