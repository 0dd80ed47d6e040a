//! Bounded reading: every file stir or stir-runtime reads (the manifest, model and request
//! SQL, plans, signatures, CA files) goes through [`read_file`]. A file anyone can change in a
//! pull request must end in a clean refusal: no hang on a FIFO, no endless read of `/dev/zero`.

use std::io::Read;
use std::path::Path;

/// The largest manifest, model or request SQL file stir reads (the shipped manifest is 50 KB).
pub const MAX_SOURCE_BYTES: u64 = 16 * 1024 * 1024;
/// The largest plan stir-runtime and `stir plan --diff` read (every model's SQL, twice at most).
pub const MAX_PLAN_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("does not exist")]
    NotFound,
    #[error("is a directory")]
    Directory,
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("is larger than {} MiB", .limit / (1024 * 1024))]
    TooLarge { limit: u64 },
    #[error("cannot be read: {0}")]
    Io(std::io::Error),
}

impl ReadError {
    /// The stable diagnostic code: a missing file is the user's to create; the rest are refused.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::NotFound => "stir::missing_file",
            _ => "stir::unreadable",
        }
    }
}

impl From<std::io::Error> for ReadError {
    /// Keeps a `ReadError` carried inside an `io::Error` (the injectable readers return those).
    fn from(e: std::io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<ReadError>()) {
            if let Some(Ok(inner)) = e.into_inner().map(|b| b.downcast::<ReadError>()) {
                return *inner;
            }
            return ReadError::Io(std::io::Error::other("unreadable"));
        }
        match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound,
            _ => ReadError::Io(e),
        }
    }
}

impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> Self {
        let kind = match &e {
            ReadError::NotFound => std::io::ErrorKind::NotFound,
            ReadError::Io(io) => io.kind(),
            _ => std::io::ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, e)
    }
}

/// Read a whole regular file of at most `limit` bytes. The type is checked before opening (a
/// device is never opened) and again on the open handle (the path may change in between; the
/// open does not block on a FIFO); at most `limit + 1` bytes are read.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path)?;
    regular(&meta)?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    regular(&meta)?;
    // Sized for the file as it is now (one read, no doubling, no spare capacity kept); one
    // byte more so that a file that grew is seen without another allocation.
    let size = meta.len().min(limit).saturating_add(1);
    read_capped_into(Vec::with_capacity(size as usize), file, limit)
}

/// Read at most `limit + 1` bytes: more is an error, and memory stays bounded by the limit.
pub fn read_capped(r: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    read_capped_into(Vec::new(), r, limit)
}

fn read_capped_into(mut bytes: Vec<u8>, r: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    r.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

fn regular(meta: &std::fs::Metadata) -> Result<(), ReadError> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    if t.is_dir() {
        return Err(ReadError::Directory);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Err(ReadError::NotRegular("a FIFO"));
        }
        if t.is_char_device() {
            return Err(ReadError::NotRegular("a character device"));
        }
        if t.is_block_device() {
            return Err(ReadError::NotRegular("a block device"));
        }
        if t.is_socket() {
            return Err(ReadError::NotRegular("a socket"));
        }
    }
    Err(ReadError::NotRegular("a special file"))
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_an_endless_source_stops_after_limit_plus_one_byte() {
        let err = read_capped(std::io::repeat(b'x'), 1000).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 1000 }), "{err}");
        assert_eq!(read_capped(&[b'x'; 1000][..], 1000).unwrap().len(), 1000);
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("stir-plan-file-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The limits docs/manifest.md § Limits promises, as a user reads them in the refusal.
    #[test]
    fn the_limits_are_16_and_64_mib() {
        let shown = |limit| ReadError::TooLarge { limit }.to_string();
        assert_eq!(shown(MAX_SOURCE_BYTES), "is larger than 16 MiB");
        assert_eq!(shown(MAX_PLAN_BYTES), "is larger than 64 MiB");
    }

    /// A file of exactly the limit is read whole; one byte more is refused from its size alone.
    #[test]
    fn a_file_is_read_up_to_its_limit_and_refused_past_it() {
        let dir = scratch("limit");
        let path = dir.join("model.sql");
        std::fs::write(&path, b"select 1\n").unwrap();
        assert_eq!(read_file(&path, 9).unwrap(), b"select 1\n");
        assert_eq!(read_file(&path, 100).unwrap(), b"select 1\n");
        let err = read_file(&path, 8).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 8 }), "{err}");
        assert_eq!(err.code(), "stir::unreadable");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read_file(&path, 0).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Missing is the user's to create (its own code); directories and devices are refused.
    #[test]
    fn missing_directories_and_devices_are_told_apart() {
        let dir = scratch("kinds");
        let err = read_file(&dir.join("absent.sql"), 100).unwrap_err();
        assert!(matches!(err, ReadError::NotFound), "{err}");
        assert_eq!(err.code(), "stir::missing_file");
        assert_eq!(err.to_string(), "does not exist");
        let err = read_file(&dir, 100).unwrap_err();
        assert!(matches!(err, ReadError::Directory), "{err}");
        assert_eq!(err.code(), "stir::unreadable");
        #[cfg(unix)]
        {
            let err = read_file(Path::new("/dev/null"), 100).unwrap_err();
            assert_eq!(err.to_string(), "is a character device, not a regular file");
            let fifo = dir.join("fifo.sql");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a NUL-terminated path; mkfifo only creates the node.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            let err = read_file(&fifo, 100).unwrap_err();
            assert_eq!(err.to_string(), "is a FIFO, not a regular file");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The injectable readers carry a `ReadError` through `io::Error` and back unchanged, and
    /// an `io::Error` keeps its kind.
    #[test]
    fn read_errors_survive_the_trip_through_io_errors() {
        let io: std::io::Error = ReadError::NotFound.into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(matches!(ReadError::from(io), ReadError::NotFound));
        let io: std::io::Error = ReadError::TooLarge { limit: 5 }.into();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
        assert!(matches!(
            ReadError::from(io),
            ReadError::TooLarge { limit: 5 }
        ));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let io: std::io::Error = ReadError::Io(denied).into();
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
        let plain = ReadError::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(matches!(plain, ReadError::NotFound), "{plain}");
        let other = ReadError::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(
            matches!(&other, ReadError::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied),
            "{other}"
        );
    }
}
