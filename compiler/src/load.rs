//! Bounded input: every file stir reads goes through [`read_file`] (`stir_plan::file`, shared
//! with the runtime), and the manifest through [`kdl_limits`] before the KDL parser sees it: a
//! file anyone can change in a pull request must end in findings or a clean refusal, never in
//! a stack overflow in a parser.

use std::fmt;
use std::ops::Range;

pub use stir_plan::file::{read_capped, read_file, ReadError, MAX_PLAN_BYTES, MAX_SOURCE_BYTES};

/// Deepest `{` nesting of a manifest (real ones nest three levels).
pub const MAX_NESTING: usize = 64;
/// Deepest `{` nesting counting braces inside strings too: the net under [`MAX_NESTING`] in
/// case the parser ends a broken string elsewhere than this scan does.
pub const MAX_RAW_NESTING: usize = 1024;
/// Most pieces (`*`, `/`, runs of other text, nested comments) in one `/* */` comment: the KDL
/// parser recurses once per piece.
pub const MAX_COMMENT_PIECES: usize = 2048;
/// Deepest nesting of slashdashed (`/-`) children blocks or slashdashed nodes with children:
/// the kdl crate's parse time doubles with each one (kdl-rs issue 177: 27 of them, 135 bytes,
/// did not finish), valid or not. Real manifests comment out a block or two, not nested.
pub const MAX_SLASHDASH_NESTING: usize = 6;
/// Most misplaced `{`, `}`, `(`, `)`, `=` or `;`: the KDL parser recurses once per error it
/// recovers from at the top level.
pub const MAX_STRAY: usize = 256;
/// The stack the KDL parser runs on: the limits above use a fraction of it even in a debug
/// build (measured: ~30 KiB per `{`, ~3 KiB per comment piece, ~2 KiB per recovery).
pub const PARSE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// How long the KDL parser may take on a manifest of `bytes`: 5 s, and 1 s more per 20 KB (a
/// 1 MB manifest: 55 s; a debug build checks one with slashdashes, all through the kdl crate,
/// in 12 s). Real manifests take milliseconds; the limit is the net under [`kdl_limits`] for
/// input the parser takes exponential time on.
pub fn parse_time_limit(bytes: usize) -> std::time::Duration {
    std::time::Duration::from_secs(5 + bytes as u64 / 20_000)
}

/// A manifest the KDL parser must not see: where, and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub span: Range<usize>,
    pub message: String,
    pub label: &'static str,
    pub help: String,
}

/// What the previous significant token was, to spot misplaced `=`, `;`, `{`, `(` and `)`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start of a line, `{` or `;`: a node may start here.
    NodeStart,
    /// An identifier or string that may be a property key.
    Key,
    /// `=`
    Eq,
    /// A property value, `)` or `}`.
    Value,
    /// `(`
    Paren,
}

/// Scan KDL text, without recursion, for input that would make the parser recurse past its
/// stack or take exponential time: nesting deeper than [`MAX_NESTING`], slashdashed blocks
/// nested deeper than [`MAX_SLASHDASH_NESTING`], a comment of more than
/// [`MAX_COMMENT_PIECES`] pieces, more than [`MAX_STRAY`] misplaced delimiters. Braces inside strings and comments
/// do not count; a single-line string ends at a newline even when unterminated, so a broken
/// string never hides the braces after it.
pub fn kdl_limits(text: &str) -> Option<Refusal> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut raw = 0usize;
    let mut paren = false;
    let mut prev = Prev::NodeStart;
    let mut stray = 0usize;
    let mut first_stray = 0usize;
    // A `/-` in this node that no `{` has taken yet; whether the last token was that `/-`
    // (it reaches over a newline); which open blocks are slashdashed, and how many.
    let mut sd_pending = false;
    let mut sd_just = false;
    let mut sd_open: Vec<bool> = Vec::new();
    let mut sd_depth = 0usize;
    let mut note_stray = |at: usize, stray: &mut usize| {
        if *stray == 0 {
            first_stray = at;
        }
        *stray += 1;
        *stray > MAX_STRAY
    };
    while i < b.len() {
        let next = b.get(i + 1).copied();
        if !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'/') {
            sd_just = false;
        }
        match b[i] {
            b'/' if next == Some(b'/') => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'/' if next == Some(b'*') => {
                match block_comment(b, i) {
                    Ok(Some(end)) => i = end,
                    Ok(None) => return Some(unclosed(i, "comment", "close it with `*/`")),
                    Err(at) => {
                        return Some(Refusal {
                            span: i..at,
                            message: format!(
                                "this comment is too long to parse: more than {MAX_COMMENT_PIECES} `*`, `/` and nested comments"
                            ),
                            label: "too many pieces",
                            help: "comment lines out with `//`, or nodes with `/-`".into(),
                        })
                    }
                }
                continue;
            }
            b'/' if next == Some(b'-') => {
                sd_pending = true;
                sd_just = true;
                i += 2;
                continue;
            }
            b'"' => {
                let Some(end) = quoted(b, i) else {
                    return Some(unclosed(
                        i,
                        "multi-line string",
                        "close it with `\"\"\"` on a line of its own",
                    ));
                };
                if let Some(r) = string_braces(b, i, end, &mut raw) {
                    return Some(r);
                }
                i = end;
                prev = after_token(prev);
                continue;
            }
            b'#' => {
                let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + hashes) == Some(&b'"') {
                    let Some(end) = raw_string(b, i, hashes) else {
                        return Some(unclosed(
                            i,
                            "multi-line raw string",
                            "close it with `\"\"\"` and its `#`s on a line of its own",
                        ));
                    };
                    if let Some(r) = string_braces(b, i, end, &mut raw) {
                        return Some(r);
                    }
                    i = end;
                    prev = after_token(prev);
                    continue;
                }
                i = word(b, i + hashes);
                prev = Prev::Value;
                continue;
            }
            b'{' => {
                if matches!(prev, Prev::Eq | Prev::Paren) && note_stray(i, &mut stray) {
                    break;
                }
                depth += 1;
                raw += 1;
                if depth > MAX_NESTING {
                    return Some(too_deep(
                        i,
                        format!("the manifest nests deeper than {MAX_NESTING} blocks"),
                        format!(
                            "a stir manifest nests a few levels (`models {{ model a {{ ... }} }}`); close the blocks above: stir refuses more than {MAX_NESTING}"
                        ),
                    ));
                }
                sd_open.push(sd_pending);
                if std::mem::take(&mut sd_pending) {
                    sd_depth += 1;
                    if sd_depth > MAX_SLASHDASH_NESTING {
                        return Some(too_deep(
                            i,
                            format!("the manifest nests more than {MAX_SLASHDASH_NESTING} slashdashed (`/-`) blocks"),
                            "delete the commented-out blocks instead of nesting `/-`: the KDL parser's time doubles with each nested one, so stir refuses them".into(),
                        ));
                    }
                }
                prev = Prev::NodeStart;
                paren = false;
            }
            b'}' => {
                sd_pending = false;
                if depth == 0 {
                    if note_stray(i, &mut stray) {
                        break;
                    }
                } else {
                    depth -= 1;
                    if sd_open.pop() == Some(true) {
                        sd_depth -= 1;
                    }
                }
                raw = raw.saturating_sub(1);
                prev = Prev::Value;
                paren = false;
            }
            b'(' => {
                if paren && note_stray(i, &mut stray) {
                    break;
                }
                paren = true;
                prev = Prev::Paren;
            }
            b')' => {
                if !paren && note_stray(i, &mut stray) {
                    break;
                }
                paren = false;
                prev = Prev::Value;
            }
            b'=' => {
                if prev != Prev::Key && note_stray(i, &mut stray) {
                    break;
                }
                prev = Prev::Eq;
            }
            b';' => {
                if matches!(prev, Prev::NodeStart | Prev::Eq) && note_stray(i, &mut stray) {
                    break;
                }
                sd_pending = false;
                prev = Prev::NodeStart;
                paren = false;
            }
            b'\n' | b'\r' => {
                // A node ends here, unless the line ended right after its `/-`.
                sd_pending &= sd_just;
                prev = Prev::NodeStart;
                paren = false;
            }
            b'\\' => {
                // A line continuation: the node goes on after the newline.
                i += 1;
                while i < b.len() && matches!(b[i], b' ' | b'\t') {
                    i += 1;
                }
                if b.get(i) == Some(&b'\r') {
                    i += 1;
                }
                if b.get(i) == Some(&b'\n') {
                    i += 1;
                }
                continue;
            }
            b' ' | b'\t' => {}
            _ => {
                i = word(b, i);
                prev = after_token(prev);
                continue;
            }
        }
        i += 1;
    }
    if stray > MAX_STRAY {
        let end = (first_stray + 1).min(b.len());
        return Some(Refusal {
            span: first_stray..end,
            message: format!(
                "too many misplaced braces, parentheses, `=` or `;` to parse: more than {MAX_STRAY}, the first here"
            ),
            label: "misplaced",
            help: "this does not look like a KDL manifest; check the path, or restore the file from version control".into(),
        });
    }
    None
}

/// A refusal at the byte `at`: a block, or braces, nested too deep.
fn too_deep(at: usize, message: String, help: String) -> Refusal {
    Refusal {
        span: at..at + 1,
        message,
        label: "too deep",
        help,
    }
}

/// Count the braces of the string `b[start..end]` into `raw`; refuse past [`MAX_RAW_NESTING`].
fn string_braces(b: &[u8], start: usize, end: usize, raw: &mut usize) -> Option<Refusal> {
    for (k, &c) in b[start..end].iter().enumerate() {
        match c {
            b'{' => *raw += 1,
            b'}' => *raw = raw.saturating_sub(1),
            _ => continue,
        }
        if *raw > MAX_RAW_NESTING {
            let at = start + k;
            return Some(too_deep(
                at,
                format!(
                    "braces nest deeper than {MAX_RAW_NESTING} here, counting those inside strings"
                ),
                "close the braces inside the string, or split it".into(),
            ));
        }
    }
    None
}

/// After a word or string: a value when it follows `=` (or a type), else a possible key.
fn after_token(prev: Prev) -> Prev {
    match prev {
        Prev::Eq | Prev::Paren => Prev::Value,
        _ => Prev::Key,
    }
}

/// End of a bare word: up to the next delimiter, whitespace or newline.
fn word(b: &[u8], mut i: usize) -> usize {
    while i < b.len()
        && !matches!(
            b[i],
            b'{' | b'}'
                | b'('
                | b')'
                | b'='
                | b';'
                | b'"'
                | b'\\'
                | b'/'
                | b' '
                | b'\t'
                | b'\n'
                | b'\r'
        )
    {
        i += 1;
    }
    // A `/` that starts no comment or slashdash is part of nothing: step over it.
    if i < b.len() && b[i] == b'/' && !matches!(b.get(i + 1), Some(b'/' | b'*' | b'-')) {
        i += 1;
    }
    i
}

fn newline_at(b: &[u8], i: usize) -> bool {
    matches!(b.get(i), Some(b'\n' | b'\r'))
}

/// End of a quoted string starting at `b[i] == '"'`: after its closing quote, or at the
/// newline that ends an unterminated single-line string. `None`: a multi-line string never
/// closed, which the parser reports and then reads past in ways this scan cannot follow.
fn quoted(b: &[u8], i: usize) -> Option<usize> {
    if b[i..].starts_with(b"\"\"\"") && newline_at(b, i + 3) {
        let mut j = i + 3;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                b'"' if b[j..].starts_with(b"\"\"\"") => return Some(j + 3),
                _ => j += 1,
            }
        }
        return None;
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' if !newline_at(b, j + 1) => j += 2,
            b'"' => return Some(j + 1),
            b'\n' | b'\r' => return Some(j),
            _ => j += 1,
        }
    }
    Some(b.len())
}

/// End of a raw string `#"..."#` starting at `b[i]` with `hashes` hashes (`None`: a
/// multi-line one never closed, as in [`quoted`]).
fn raw_string(b: &[u8], i: usize, hashes: usize) -> Option<usize> {
    let open = i + hashes;
    let multi = b[open..].starts_with(b"\"\"\"") && newline_at(b, open + 3);
    let mut close = if multi {
        b"\"\"\"".to_vec()
    } else {
        b"\"".to_vec()
    };
    close.extend(std::iter::repeat_n(b'#', hashes));
    let mut j = open + if multi { 3 } else { 1 };
    while j < b.len() {
        if b[j..].starts_with(&close) {
            return Some(j + close.len());
        }
        if !multi && newline_at(b, j) {
            return Some(j);
        }
        j += 1;
    }
    // A multi-line one never closed: as in [`quoted`].
    (!multi).then_some(b.len())
}

/// End of a `/* */` comment (nested ones included) starting at `b[i]` (`None`: never closed),
/// or the byte where it passes [`MAX_COMMENT_PIECES`]: the parser takes a stack frame per piece, and a nested
/// comment's frames sit on top of the pieces before it.
fn block_comment(b: &[u8], i: usize) -> Result<Option<usize>, usize> {
    // Pieces of each open comment, innermost last; the parser's depth is their sum.
    let mut open: Vec<usize> = vec![0];
    let mut total = 0usize;
    let mut j = i + 2;
    while j < b.len() {
        if b[j..].starts_with(b"*/") {
            total -= open.pop().unwrap_or(0);
            j += 2;
            if open.is_empty() {
                return Ok(Some(j));
            }
            continue;
        }
        let nested = b[j..].starts_with(b"/*");
        if nested {
            j += 2;
        } else if b[j] == b'*' || b[j] == b'/' {
            j += 1;
        } else {
            while j < b.len() && b[j] != b'*' && b[j] != b'/' {
                j += 1;
            }
        }
        if let Some(pieces) = open.last_mut() {
            *pieces += 1;
        }
        total += 1;
        if nested {
            open.push(0);
        }
        if total > MAX_COMMENT_PIECES {
            return Err(j);
        }
    }
    // Never closed: the parser reports it, then reads past it in ways this scan cannot follow.
    Ok(None)
}

/// A refusal of the `what` opened at `at` and never closed: the parser's recovery would read
/// on from there, where this scan cannot vouch for the nesting it meets.
fn unclosed(at: usize, what: &str, fix: &str) -> Refusal {
    Refusal {
        span: at..at + 1,
        message: format!("this {what} is never closed"),
        label: "opened here",
        help: format!("{fix}; stir reads no further, so the findings after it wait until it is"),
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// Every file in the repository whose name ends in `suffix`, sorted (`.git`, `target` and
/// other hidden folders left out): the real inputs unit tests run over.
#[cfg(test)]
pub(crate) fn repository_files(suffix: &str) -> Vec<std::path::PathBuf> {
    use std::path::Path;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let mut dirs = vec![root.to_path_buf()];
    let mut out = Vec::new();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if kind.is_dir() && !name.starts_with('.') && name != "target" {
                dirs.push(e.path());
            } else if kind.is_file() && name.ends_with(suffix) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments_only() {
        let deep = |n: usize| format!("{}{}", "a {".repeat(n), "}".repeat(n));
        assert_eq!(kdl_limits(&deep(MAX_NESTING)), None);
        let r = kdl_limits(&deep(MAX_NESTING + 1)).expect("refused");
        assert_eq!(r.span, (MAX_NESTING * 3 + 2)..(MAX_NESTING * 3 + 3));
        let braces = "{".repeat(500);
        for hidden in [
            format!("a \"{braces}\""),
            format!("a #\"{braces}\"#"),
            format!("a ##\"\"#{braces}\"##"),
            format!("a \"\"\"\n{braces}\n\"\"\""),
            format!("// {braces}\na"),
            format!("/* {braces} */ a"),
            format!("a \"\\\"{braces}\""),
        ] {
            assert_eq!(kdl_limits(&hidden), None, "{hidden}");
        }
        // An unterminated string ends at its line: the braces after it count.
        let broken = format!("a \"oops\n{}", deep(MAX_NESTING + 1));
        assert!(kdl_limits(&broken).is_some());
    }

    /// Nested slashdashed blocks, every spelling of them the parser takes exponential time on,
    /// are refused past the limit; slashdashes that do not nest, in strings or in comments are
    /// not counted.
    #[test]
    fn nested_slashdashed_blocks_are_refused_past_the_limit() {
        let n = MAX_SLASHDASH_NESTING;
        let refused = |t: &str| {
            kdl_limits(t).is_some_and(|r| r.message.contains("slashdashed (`/-`) blocks"))
        };
        for (spelling, close) in [
            ("a /-{", "}"),
            ("/- a {\n b\n", "}"),
            ("a /-\n{", "}"),
            ("/-\n a {\n", "}"),
        ] {
            let open = |k: usize| spelling.repeat(k);
            assert!(!refused(&open(n)), "{spelling:?} x{n}");
            assert!(
                !refused(&format!("{}{}", open(n), close.repeat(n))),
                "{spelling:?}"
            );
            assert!(refused(&open(n + 1)), "{spelling:?} x{}", n + 1);
            assert!(refused(&format!("{}{}", open(n + 1), close.repeat(n + 1))));
        }
        // Side by side, under plain blocks, after a slashdashed argument on an earlier line,
        // or inside strings and comments: not nested slashdashed blocks.
        assert!(!refused(&"a /-{ b }\n".repeat(100)));
        assert!(!refused(&format!("/- a {{\n{}", "b {\n".repeat(40))));
        assert!(!refused(&format!(
            "{}{}",
            "a /-x\n".repeat(20),
            "b {\n".repeat(20)
        )));
        assert!(!refused(&format!("a \"{}\"", "/-{".repeat(20))));
        assert!(!refused(&format!("a {{ // {}\n}}", "/-{".repeat(20))));
        assert!(!refused(&format!("/* {} */", "/-{".repeat(20))));
    }

    /// A comment or multi-line string never closed is refused where it opens: the parser
    /// reports it and then reads on from places this scan cannot follow (the structure-aware
    /// fuzz found it hiding 17 nested slashdashed blocks, and 2,400 nested blocks that
    /// overflowed the parser's 64 MiB stack). One closed later is read as before.
    #[test]
    fn comments_and_multi_line_strings_never_closed_are_refused() {
        let never = |t: &str| kdl_limits(t).is_some_and(|r| r.message.contains("is never closed"));
        let after = "a /-{".repeat(20);
        for open in [
            "/*",
            "/*/*/* */",
            "a \"\"\"\n",
            "a #\"\"\"\n",
            "a ##\"\"\"\nx\n\"\"\"#",
        ] {
            assert!(never(&format!("project p\n{open}\n{after}")), "{open:?}");
        }
        for closed in [
            "/* */",
            "/*/* */*/",
            "a \"\"\"\nx\n\"\"\"",
            "a #\"\"\"\nx\n\"\"\"#",
        ] {
            let t = format!("project p\n{closed}\nb {{ }}\n");
            assert_eq!(kdl_limits(&t), None, "{closed:?}");
        }
        // A single-line string or raw string ends at its line, closed or not.
        assert_eq!(kdl_limits("a \"x\nb #\"y\nc { }\n"), None);
    }

    #[test]
    fn long_comments_and_stray_delimiters_are_refused() {
        assert!(kdl_limits(&format!("/*{}*/", "*".repeat(MAX_COMMENT_PIECES + 5))).is_some());
        assert!(kdl_limits(&format!("/*{}*/", "ab ".repeat(10_000))).is_none());
        let nested = format!(
            "{}{}",
            "/*".repeat(MAX_COMMENT_PIECES + 2),
            "*/".repeat(MAX_COMMENT_PIECES + 2)
        );
        assert!(kdl_limits(&nested).is_some());
        for junk in ["}", ")", "=", ";", "a=a=", " a=", "(("] {
            let text = format!("project p\n{}", junk.repeat(MAX_STRAY + 2));
            let r = kdl_limits(&text).unwrap_or_else(|| panic!("{junk:?} passed"));
            // The span points at the first misplaced delimiter.
            assert!(r.span.start >= 10, "{junk:?}");
            assert!(
                b"})=;(".contains(&text.as_bytes()[r.span.start]),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn the_shipped_manifest_is_within_every_limit() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stir.kdl");
        let text = String::from_utf8(read_file(&path, MAX_SOURCE_BYTES).unwrap()).unwrap();
        assert_eq!(kdl_limits(&text), None);
    }
}
