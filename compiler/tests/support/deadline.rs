//! Run a binary under test with a deadline, so a hang fails the test instead of stalling it.
//! Shared by compiler/tests/hostile.rs and runtime/tests/hostile.rs.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a loaded CI machine; a FIFO or /dev/zero read would never end.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Run `cmd` with stdout and stderr in files under `dir` (a full pipe can never stall it):
/// (status, stdout, stderr). Panics when it is still running after [`DEADLINE`].
pub fn run(cmd: &mut Command, dir: &Path) -> (ExitStatus, String, String) {
    let (out_path, err_path) = (dir.join("stdout.txt"), dir.join("stderr.txt"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("the binary runs");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    (status, read(&out_path), read(&err_path))
}
