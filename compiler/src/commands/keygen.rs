//! `stir keygen -o FILE`: a key pair for signing plans.

use std::io::Write;
use std::path::Path;

use super::{Exit, Failure};

/// The secret key goes only into a file that did not exist, readable by its owner alone; the
/// terminal (and a CI log) sees the public key.
pub fn run(output: &Path) -> Result<Exit, Failure> {
    let key = crate::signature::SecretKey::generate()
        .map_err(|e| Failure::Message(format!("error: cannot make a key: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let cannot = |e: std::io::Error| {
        let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
            "it exists; a key is never overwritten (remove it first, or pick another name)"
                .to_string()
        } else {
            e.to_string()
        };
        Failure::Message(format!("error: cannot write `{}`: {why}", output.display()))
    };
    let mut file = options.open(output).map_err(cannot)?;
    file.write_all(format!("{}\n", key.to_text()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(cannot)?;
    writeln!(std::io::stdout().lock(), "{}", key.public())?;
    eprintln!(
        "wrote the secret key to {}: give its content to `stir plan --sign` as {} where plans \
         are signed; give the public key above to every stir-runtime as {}",
        output.display(),
        crate::signature::SECRET_VAR,
        crate::signature::PUBLIC_VAR
    );
    Ok(Exit::Success)
}
