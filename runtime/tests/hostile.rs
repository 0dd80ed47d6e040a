//! Hostile plans through the real `stir-runtime` binary: refused with exit 2 and a message,
//! never an abort, a hang or an endless read. No server is needed: the plan is read first.

#[path = "../../compiler/tests/support/deadline.rs"]
mod deadline;

use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stir-rt-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `stir-runtime PLAN --dry-run` with a deadline: (exit code, stderr).
/// Its output files go to `out`.
fn runtime(plan: &Path, out: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stir-runtime"));
    cmd.arg(plan).arg("--dry-run").env_clear();
    let (status, _, stderr) = deadline::run(&mut cmd, out);
    (status.code(), stderr)
}

#[test]
fn a_plan_nested_10000_deep_is_refused_with_exit_2() {
    let d = dir("deep");
    let n = 10_000;
    for (name, text) in [
        ("arrays.json", format!("{}{}", "[".repeat(n), "]".repeat(n))),
        (
            "objects.json",
            format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)),
        ),
    ] {
        let plan = d.join(name);
        std::fs::write(&plan, text).unwrap();
        let (code, err) = runtime(&plan, &d);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("not a stir plan") && err.contains("recursion limit exceeded"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_plan_over_64_mib_or_not_a_regular_file_is_refused_with_exit_2() {
    let d = dir("big");
    let plan = d.join("plan.json");
    // Sparse: over the limit without writing 64 MiB.
    std::fs::File::create(&plan)
        .unwrap()
        .set_len(stir::load::MAX_PLAN_BYTES + 1)
        .unwrap();
    let (code, err) = runtime(&plan, &d);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cannot read plan") && err.contains("larger than 64 MiB"),
        "{err}"
    );
    #[cfg(unix)]
    {
        let (code, err) = runtime(Path::new("/dev/zero"), &d);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("is a character device"), "{err}");
        let fifo = d.join("fifo.json");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let (code, err) = runtime(&fifo, &d);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("is a FIFO"), "{err}");
    }
    let _ = std::fs::remove_dir_all(d);
}
