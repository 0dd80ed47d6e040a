//! The `macros` folders: every `{% macro %}` in their `.sql` files becomes a function of every
//! template (models, `sql` steps, request queries, sync `enrich`/`delete-where`), with no
//! import, as in dbt. Macros are expanded when templates render, so the plan holds only
//! rendered SQL and needs no macro source at run time.

use std::ops::Range;
use std::path::Path;

use crate::diagnostic::{FileId, Finding};
use crate::project::{read_text, Compiled, ReadFile};
use crate::render::{MacroFile, Macros, BUILTINS};

/// At most this many macro files: a `dir` pointed at `/` should end in a finding, not a crawl.
const MAX_FILES: usize = 10_000;
/// Folders inside a macros folder, at most this deep (a link loop ends here too).
const MAX_DEPTH: usize = 16;
/// Directory entries looked at, files or not: a `dir` pointed at `/` ends quickly.
const MAX_ENTRIES: usize = 100_000;

/// Read every macros folder the manifest names into `c.macros`, with a finding for each
/// missing folder, unreadable file, template syntax error, and macro defined twice.
pub fn load(c: &mut Compiled, read: &ReadFile) {
    let mfile = c.manifest_file;
    let mut files: Vec<MacroFile> = Vec::new();
    // Where each macro was first defined: name -> (path relative to the manifest, file, span).
    // Relative, so the message reads the same on every machine and wraps the same in golden files.
    let mut seen: std::collections::BTreeMap<String, (String, FileId, Range<usize>)> =
        Default::default();
    for dir in c.manifest.macros.clone() {
        if let Some(why) = crate::project::outside(&c.root, &dir.value) {
            c.findings.push(
                Finding::error(
                    "stir::outside_project",
                    mfile,
                    dir.span.clone(),
                    format!("macros folder {why}"),
                )
                .label("a folder of the project expected here")
                .help(crate::project::OUTSIDE_HELP),
            );
            continue;
        }
        let rels = match list_files(&c.root.join(&dir.value), &[".sql"]) {
            Ok(r) => r,
            Err(why) => {
                c.findings.push(
                    Finding::error(
                        "stir::missing_file",
                        mfile,
                        dir.span.clone(),
                        format!("macros folder `{}` {why}", dir.value),
                    )
                    .label("folder expected here")
                    .help(format!(
                        "create the folder `{}` (relative to the manifest) with the macro files, or point `dir=` at it",
                        dir.value
                    )),
                );
                continue;
            }
        };
        for rel in rels {
            let path = if dir.value.is_empty() {
                rel
            } else {
                format!("{}/{rel}", dir.value)
            };
            let fid = match read_text(c, &path, read) {
                Ok(f) => f,
                Err(u) => {
                    c.findings.push(
                        Finding::error(
                            u.code,
                            mfile,
                            dir.span.clone(),
                            format!("macro file {}", u.why),
                        )
                        .label("in this macros folder")
                        .help(u.help.unwrap_or_else(|| "check the file".into())),
                    );
                    continue;
                }
            };
            let source = c.files.text(fid).to_string();
            if let Err(e) = minijinja::Environment::new().template_from_named_str(&path, &source) {
                let span = e.range().filter(|r| r.end <= source.len()).unwrap_or(0..0);
                c.findings.push(
                    Finding::error(
                        "stir::template",
                        fid,
                        span,
                        format!(
                            "macro file: template syntax error: {}",
                            e.detail().unwrap_or("invalid template")
                        ),
                    )
                    .label("here")
                    .help("a macro file holds `{% macro name(args) %} ... {% endmacro %}` blocks"),
                );
                continue;
            }
            let mut macros = Vec::new();
            for (m, span) in definitions(&source) {
                if BUILTINS.contains(&m.as_str()) || m == "this" {
                    c.findings.push(
                        Finding::error(
                            "stir::duplicate",
                            fid,
                            span,
                            format!("macro `{m}` has the name of a built-in"),
                        )
                        .label("shadows the built-in")
                        .help(format!(
                            "rename the macro: every template calls stir's own `{m}`"
                        )),
                    );
                    continue;
                }
                if let Some((first, ffid, fspan)) = seen.get(&m) {
                    let mut f = Finding::error(
                        "stir::duplicate",
                        fid,
                        span,
                        format!("macro `{m}` is defined twice (first in `{first}`)"),
                    )
                    .label("second definition")
                    .help("every macro is global, as in dbt: rename or remove one of them");
                    if *ffid == fid {
                        f = f.note(fspan.clone(), "first definition");
                    }
                    c.findings.push(f);
                    continue;
                }
                seen.insert(m.clone(), (path.clone(), fid, span));
                macros.push(m);
            }
            files.push(MacroFile {
                name: path,
                source,
                macros,
            });
        }
    }
    c.macros = Macros {
        files: std::sync::Arc::new(files),
    };
}

/// The files under `dir` whose names end in one of `exts`, relative to it, sorted (the same on
/// every machine); bounded in depth and count.
pub(crate) fn list_files(dir: &Path, exts: &[&str]) -> Result<Vec<String>, String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err("is not a folder".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("does not exist".into()),
        Err(e) => return Err(format!("cannot be read: {e}")),
    }
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((path, rel, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&path).map_err(|e| format!("cannot be read: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot be read: {e}"))?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(format!(
                    "holds more than {MAX_ENTRIES} files and folders: point it at the macros alone"
                ));
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    return Err(format!("has folders more than {MAX_DEPTH} deep"));
                }
                stack.push((entry.path(), child_rel, depth + 1));
            } else if exts.iter().any(|e| name.ends_with(e)) {
                out.push(child_rel);
                if out.len() > MAX_FILES {
                    return Err(format!(
                        "holds more than {MAX_FILES} {} files",
                        exts.join("/")
                    ));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `{% macro NAME(` tags in a template: each name with its span.
pub fn definitions(source: &str) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = source[i..].find("{%") {
        let mut j = i + pos + 2;
        i = j;
        let rest = source[j..].trim_start_matches(['-', '+', '~']);
        j = source.len() - rest.len();
        let trimmed = rest.trim_start();
        j += rest.len() - trimmed.len();
        let Some(after) = trimmed.strip_prefix("macro") else {
            continue;
        };
        if !after.starts_with(char::is_whitespace) {
            continue;
        }
        let name_rest = after.trim_start();
        let start = j + "macro".len() + (after.len() - name_rest.len());
        let len = name_rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(name_rest.len());
        if len > 0 {
            out.push((name_rest[..len].to_string(), start..start + len));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_definitions_with_spans() {
        let src = "{% macro a(x) %}{{ x }}{% endmacro %}\n{%- macro  b_2() -%}1{%- endmacro %}{% if m %}{% endif %}";
        let d = definitions(src);
        let names: Vec<_> = d.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b_2"]);
        assert_eq!(&src[d[1].1.clone()], "b_2");
    }
}
