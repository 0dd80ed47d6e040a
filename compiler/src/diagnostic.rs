//! Findings: what every stage reports instead of failing. Collected, sorted, rendered once.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Index of a file in [`Files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub usize);

#[derive(Debug)]
pub struct SourceFile {
    /// Path as shown to the user (relative to where stir was run when possible).
    pub name: String,
    pub text: Arc<String>,
    /// Where each line starts: a finding's line is a binary search, so thousands of findings
    /// in a big file stay linear, not quadratic (miette alone scans from the file's start).
    /// Built on the first finding that needs it: most files have none.
    lines: OnceLock<Arc<LineIndex>>,
}

/// Byte offset after each `\n` (and 0), with how many line breaks miette counts before it
/// (it also counts a lone `\r`).
#[derive(Debug)]
struct LineIndex {
    starts: Vec<usize>,
    miette_lines: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let b = text.as_bytes();
        let (mut starts, mut miette_lines, mut breaks) = (vec![0], vec![0], 0);
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'\n' => {
                    breaks += 1;
                    starts.push(i + 1);
                    miette_lines.push(breaks);
                }
                b'\r' if b.get(i + 1) != Some(&b'\n') => breaks += 1,
                _ => {}
            }
        }
        LineIndex {
            starts,
            miette_lines,
        }
    }
    /// Index of the `\n`-line holding `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset) - 1
    }
}

/// A file's text as miette reads it, but only the lines around a span: miette's own reader
/// walks from the start of the file for every finding.
#[derive(Debug)]
struct Indexed {
    text: Arc<String>,
    lines: Arc<LineIndex>,
}

impl miette::SourceCode for Indexed {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let text = self.text.as_bytes();
        if span.offset() + span.len() > text.len() {
            return Err(miette::MietteError::OutOfBounds);
        }
        // Whole lines from `before + 1` lines above the span to `after + 1` below it (so the
        // span never starts the window unless it starts the file): miette keeps
        // what it needs of them, exactly as it would from the whole file.
        let first = self.lines.line_of(span.offset()).saturating_sub(before + 1);
        let last = self.lines.line_of(span.offset() + span.len()) + after + 2;
        let start = self.lines.starts[first];
        let end = self.lines.starts.get(last).copied().unwrap_or(text.len());
        let local = miette::SourceSpan::new((span.offset() - start).into(), span.len());
        let c = text[start..end].read_span(&local, before, after)?;
        let shift = self.lines.miette_lines[first];
        Ok(Box::new(miette::MietteSpanContents::new(
            c.data(),
            miette::SourceSpan::new((c.span().offset() + start).into(), c.span().len()),
            c.line() + shift,
            c.column(),
            c.line_count() + shift,
        )))
    }
}

impl SourceFile {
    fn lines(&self) -> &Arc<LineIndex> {
        self.lines
            .get_or_init(|| Arc::new(LineIndex::new(&self.text)))
    }
    /// Bytes in the longest line miette would draw for `span`: its lines and one either side.
    fn longest_line_near(&self, span: &Range<usize>) -> usize {
        let starts = &self.lines().starts;
        let first = self
            .lines()
            .line_of(span.start.min(self.text.len()))
            .saturating_sub(1);
        let last = self.lines().line_of(span.end.min(self.text.len())) + 1;
        (first..=last.min(starts.len() - 1))
            .map(|l| starts.get(l + 1).copied().unwrap_or(self.text.len()) - starts[l])
            .max()
            .unwrap_or(0)
    }
    fn indexed(&self) -> Indexed {
        Indexed {
            text: self.text.clone(),
            lines: self.lines().clone(),
        }
    }
}

/// Every file the compiler read, so that any finding can point into it.
#[derive(Debug, Default)]
pub struct Files {
    files: Vec<SourceFile>,
}

impl Files {
    pub fn add(&mut self, name: String, text: String) -> FileId {
        self.files.push(SourceFile {
            name,
            lines: OnceLock::new(),
            text: Arc::new(text),
        });
        FileId(self.files.len() - 1)
    }
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0]
    }
    pub fn text(&self, id: FileId) -> &str {
        &self.files[id.0].text
    }
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, id: FileId, offset: usize) -> (usize, usize) {
        let file = &self.files[id.0];
        let text = file.text.as_str();
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let lines = file.lines();
        let line = lines.line_of(offset);
        let line_start = lines.starts[line];
        let line = line + 1;
        let col = text[line_start..offset].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One problem found in the user's input, with everything needed to show and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable code, e.g. `stir::tag_conflict`.
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub file: FileId,
    pub span: Range<usize>,
    pub label: String,
    pub help: Option<String>,
    /// More labelled spans in the same file.
    pub notes: Vec<(Range<usize>, String)>,
}

impl Finding {
    pub fn error(
        code: &'static str,
        file: FileId,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            code,
            severity: Severity::Error,
            message: message.into(),
            file,
            span,
            label: String::new(),
            help: None,
            notes: Vec::new(),
        }
    }
    pub fn warning(
        code: &'static str,
        file: FileId,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, file, span, message)
        }
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
    pub fn note(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.notes.push((span, label.into()));
        self
    }
}

/// Sort findings by file name, then position, then code, so output is stable.
pub fn sort(findings: &mut [Finding], files: &Files) {
    findings.sort_by(|a, b| {
        (
            files.get(a.file).name.as_str(),
            a.span.start,
            a.code,
            &a.message,
        )
            .cmp(&(
                files.get(b.file).name.as_str(),
                b.span.start,
                b.code,
                &b.message,
            ))
    });
}

/// A finding joined with its source, in the shape miette renders.
struct Shown<'a> {
    finding: &'a Finding,
    source: NamedSource<Indexed>,
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.finding.fmt(f)
    }
}
impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.finding.message)
    }
}
impl std::error::Error for Shown<'_> {}

impl Diagnostic for Shown<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.finding.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.finding.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.finding
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let len = self.source.inner().text.len();
        let clamp = move |r: &Range<usize>| {
            let start = r.start.min(len);
            let end = r.end.clamp(start, len);
            (start, end - start)
        };
        let primary = {
            let (s, l) = clamp(&self.finding.span);
            let label = (!self.finding.label.is_empty()).then(|| self.finding.label.clone());
            LabeledSpan::new_primary_with_span(label, (s, l))
        };
        let notes = self.finding.notes.iter().map(move |(r, text)| {
            let (s, l) = clamp(r);
            LabeledSpan::new_with_span(Some(text.clone()), (s, l))
        });
        Some(Box::new(std::iter::once(primary).chain(notes)))
    }
}

/// A finding touching a longer line (or next to one) is shown without its source: miette
/// panics underlining past column 65,535 (a format width), and draws the whole line for
/// every finding on it, so 20,000 findings on one line would print gigabytes.
const MAX_SNIPPET_LINE: usize = 10_000;

/// A finding without source code or labels: for lines too long to draw.
struct NoSource<'a>(Shown<'a>);

impl fmt::Debug for NoSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl fmt::Display for NoSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl std::error::Error for NoSource<'_> {}

impl Diagnostic for NoSource<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.0.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.0.severity()
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.0.help()
    }
}

/// Render findings as rustc-like reports: unicode, no colour, fixed width (stable for golden files).
pub fn render_human(findings: &[Finding], files: &Files, color: bool, width: usize) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    for finding in findings {
        let file = files.get(finding.file);
        let mut spans = std::iter::once(&finding.span).chain(finding.notes.iter().map(|(r, _)| r));
        if spans.any(|r| file.longest_line_near(r) > MAX_SNIPPET_LINE) {
            let (line, col) = files.line_col(finding.file, finding.span.start);
            let mut plain = finding.clone();
            plain.message = format!(
                "{} (at {}:{line}:{col}: the line is too long to show)",
                plain.message, file.name
            );
            plain.notes.clear();
            let shown = Shown {
                finding: &plain,
                source: NamedSource::new(file.name.clone(), file.indexed()),
            };
            let _ = handler.render_report(&mut out, &NoSource(shown));
            out.push('\n');
            continue;
        }
        let shown = Shown {
            finding,
            source: NamedSource::new(file.name.clone(), file.indexed()),
        };
        // Rendering into a String cannot fail.
        let _ = handler.render_report(&mut out, &shown);
        out.push('\n');
    }
    out
}

/// A closing line like `error: 2 errors, 1 warning`.
pub fn summary(findings: &[Finding]) -> String {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[derive(Debug, Serialize)]
pub struct JsonFinding<'a> {
    pub code: &'a str,
    pub severity: Severity,
    pub message: &'a str,
    pub file: &'a str,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub help: Option<&'a str>,
}

pub fn render_json(findings: &[Finding], files: &Files) -> String {
    let items: Vec<JsonFinding> = findings
        .iter()
        .map(|f| {
            let (line, column) = files.line_col(f.file, f.span.start);
            let (end_line, end_column) = files.line_col(f.file, f.span.end);
            JsonFinding {
                code: f.code,
                severity: f.severity,
                message: &f.message,
                file: &files.get(f.file).name,
                line,
                column,
                end_line,
                end_column,
                help: f.help.as_deref(),
            }
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

/// GitHub Actions workflow commands, so findings annotate the pull request.
pub fn render_github(findings: &[Finding], files: &Files) -> String {
    let mut out = String::new();
    for f in findings {
        let (line, col) = files.line_col(f.file, f.span.start);
        let (end_line, end_col) = files.line_col(f.file, f.span.end);
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut text = f.message.clone();
        if let Some(h) = &f.help {
            text.push_str("\nhelp: ");
            text.push_str(h);
        }
        out.push_str(&format!(
            "::{level} file={},line={line},col={col},endLine={end_line},endColumn={end_col},title={}::{}\n",
            escape_property(&files.get(f.file).name),
            escape_property(f.code),
            escape_data(&text)
        ));
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

pub use stir_plan::{did_you_mean, suggest};

/// Every code stir reports, with its severity. docs/manifest.md documents each; the golden
/// tests require a case for each.
pub const CODES: &[(&str, Severity)] = &[
    ("stir::syntax", Severity::Error),
    ("stir::unknown_node", Severity::Error),
    ("stir::unknown_property", Severity::Error),
    ("stir::missing_property", Severity::Error),
    ("stir::missing_node", Severity::Error),
    ("stir::invalid_value", Severity::Error),
    ("stir::duplicate", Severity::Error),
    ("stir::missing_file", Severity::Error),
    ("stir::unreadable", Severity::Error),
    ("stir::outside_project", Severity::Error),
    ("stir::template", Severity::Error),
    ("stir::unknown_ref", Severity::Error),
    ("stir::unknown_source", Severity::Error),
    ("stir::unknown_tag", Severity::Error),
    ("stir::unknown_blackout", Severity::Error),
    ("stir::unknown_sync", Severity::Error),
    ("stir::unknown_request", Severity::Error),
    ("stir::unknown_endpoint", Severity::Error),
    ("stir::unknown_target", Severity::Error),
    ("stir::unknown_model", Severity::Error),
    ("stir::unknown_column", Severity::Error),
    ("stir::cycle", Severity::Error),
    ("stir::empty_selection", Severity::Error),
    ("stir::tag_conflict", Severity::Error),
    ("stir::write_conflict", Severity::Error),
    ("stir::disabled_dependency", Severity::Error),
    ("stir::schedule_overlap", Severity::Error),
    ("stir::hidden_ref", Severity::Warning),
    ("stir::unscheduled", Severity::Warning),
    ("stir::blackout_overrun", Severity::Warning),
    ("stir::stale_read", Severity::Warning),
    ("stir::irregular_cron", Severity::Warning),
];

#[cfg(test)]
mod tests {
    use super::*;
    use miette::{SourceCode, SourceSpan};

    #[test]
    fn a_finding_on_a_very_long_line_names_its_place_instead_of_drawing_it() {
        let mut files = Files::default();
        let text = format!("a\n{}b\nc\n", "x".repeat(70_000));
        let f = files.add("m.kdl".into(), text);
        let at = 70_002;
        let found = [Finding::error("stir::syntax", f, at..at + 1, "bad").help("fix it")];
        let out = render_human(&found, &files, false, 100);
        assert!(
            out.contains("bad (at m.kdl:2:70001: the line is too long to show)"),
            "{out}"
        );
        assert!(out.contains("help: fix it"), "{out}");
        assert!(
            out.len() < 1000,
            "the line is not drawn: {} bytes",
            out.len()
        );
    }

    /// The indexed reader gives miette exactly what miette's own reader of the whole file does.
    #[test]
    fn indexed_source_reads_spans_like_miette_does() {
        let texts = [
            "",
            "a",
            "a\nbb\n\nccc\n",
            "one\r\ntwo\r\n\r\nthree",
            "lone\rcr\rlines\nmixed\r\nend\r",
            "\n\n\n",
            "é\nü\r\nx",
        ];
        for text in texts {
            let indexed = Indexed {
                text: Arc::new(text.to_string()),
                lines: Arc::new(LineIndex::new(text)),
            };
            let plain = text.to_string();
            for start in 0..=text.len() {
                for len in 0..=(text.len() - start).min(6) {
                    for (before, after) in [(0, 0), (1, 1), (2, 3)] {
                        let span = SourceSpan::new(start.into(), len);
                        let want = plain.read_span(&span, before, after);
                        let got = indexed.read_span(&span, before, after);
                        match (want, got) {
                            (Ok(w), Ok(g)) => assert_eq!(
                                (w.data(), w.span(), w.line(), w.column(), w.line_count()),
                                (g.data(), g.span(), g.line(), g.column(), g.line_count()),
                                "{text:?} {start}+{len} ({before}, {after})"
                            ),
                            (Err(_), Err(_)) => {}
                            (w, g) => panic!(
                                "{text:?} {start}+{len}: miette {:?}, indexed {:?}",
                                w.is_ok(),
                                g.is_ok()
                            ),
                        }
                    }
                }
            }
        }
    }
}
