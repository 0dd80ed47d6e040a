//! The one rule of every golden file (compiler/tests/golden.rs, plan.rs, the console's
//! screenshots): `UPDATE_GOLDEN=1` rewrites them; any other value, or none, compares.
#![allow(dead_code)]

use std::path::Path;

/// Whether this value of `UPDATE_GOLDEN` asks for a rewrite: exactly `1`.
pub fn rewrites(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| v == "1")
}

/// Whether the environment asks for golden files to be rewritten.
pub fn update() -> bool {
    rewrites(std::env::var_os("UPDATE_GOLDEN").as_deref())
}

/// Rewrite `path` with `actual` (under `UPDATE_GOLDEN=1`), or the differences from it: `None`
/// when they are equal, else a message with a unified diff.
pub fn differs(path: &Path, actual: &str) -> Option<String> {
    if update() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let Ok(expected) = std::fs::read_to_string(path) else {
        return Some(format!(
            "missing golden file {}: run with UPDATE_GOLDEN=1 and review it",
            path.display()
        ));
    };
    (expected != actual).then(|| {
        format!(
            "{} differs from the output (UPDATE_GOLDEN=1 rewrites it):\n{}",
            path.display(),
            similar::TextDiff::from_lines(expected.as_str(), actual)
                .unified_diff()
                .header("golden", "actual")
        )
    })
}
