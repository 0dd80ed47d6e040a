//! The requests stage: each `request`'s query file read, scanned for hidden references and
//! rendered like a model (no `this`), its body template parsed, its endpoint resolved.

use crate::diagnostic::{did_you_mean, Finding};
use crate::project::{read_text, Compiled, CompiledRequest, ReadFile};

/// Read, scan and render every request's query; the files, findings and rendered SQL go into
/// `c`.
pub fn render(c: &mut Compiled, read: &ReadFile) {
    let file = c.manifest_file;
    let mut compiled = vec![CompiledRequest::default(); c.manifest.requests.len()];
    let renderer = c.renderer();
    for (i, r) in c.manifest.requests.clone().iter().enumerate() {
        if let Some(ep) = &r.endpoint {
            if !c.names.endpoints.contains_key(&ep.text) {
                let f = c.names.unknown("endpoint", ep, file);
                c.findings.push(f);
            }
        }
        if let Some(body) = &r.body {
            // Bodies see `row`; any column may be named, so only syntax is checked here.
            let env = minijinja::Environment::new();
            if let Err(e) = env.template_from_str(&body.value) {
                c.findings.push(
                    Finding::error("stir::template", file, body.span.clone(), format!("request `{}` body: {e}", r.name.text))
                        .label("invalid template")
                        .help("the body is a Jinja template over `row`, e.g. {\"shortcode\": \"{{ row.shortcode }}\"}"),
                );
            }
        }
        let Some(q) = &r.query else { continue };
        let fid = match read_text(c, &q.value, read) {
            Ok(f) => f,
            Err(u) => {
                c.findings.push(u.finding(
                    file,
                    q.span.clone(),
                    &format!("request `{}`", r.name.text),
                    "query file expected here",
                    || "create the file with the request's SELECT".into(),
                ));
                continue;
            }
        };
        compiled[i].file = Some(fid);
        let source = c.files.text(fid).to_string();
        let names = &c.names;
        let hidden = crate::sqlscan::hidden_refs(&source, &c.manifest.warehouse.database, &|n| {
            names.models.contains_key(n)
        });
        let sees_all = hidden.is_empty();
        for mention in hidden {
            c.findings.push(mention.finding(
                fid,
                mention.span.clone(),
                &format!("request `{}`", r.name.text),
            ));
        }
        match renderer.render(&r.name.text, None, &source, false) {
            Ok((sql, reads)) => {
                compiled[i].sql = Some(sql);
                // What it reads is known only when every model it names goes through `ref`.
                compiled[i].reads = sees_all.then(|| {
                    let mut r: Vec<String> = reads.refs.to_vec();
                    r.sort();
                    r.dedup();
                    r
                });
                for name in reads.refs {
                    if !c.names.models.contains_key(&name) {
                        let span = crate::render::call_spans(&source, "ref")
                            .into_iter()
                            .find(|(a, _)| a.first() == Some(&name))
                            .map_or(0..0, |(_, s)| s);
                        c.findings.push(
                            Finding::error(
                                "stir::unknown_ref",
                                fid,
                                span,
                                format!(
                                    "`ref('{name}')` in request `{}` names no model",
                                    r.name.text
                                ),
                            )
                            .label("unknown model")
                            .help(
                                did_you_mean(&name, c.names.models.keys().map(String::as_str))
                                    .unwrap_or_else(|| "declare the model".into()),
                            ),
                        );
                    }
                }
            }
            Err(e) => c.findings.push(
                Finding::error(
                    "stir::template",
                    fid,
                    e.span,
                    format!("request `{}`: {}", r.name.text, e.message),
                )
                .label("here")
                .help("queries see `ref()`, `source()` and `var()`"),
            ),
        }
    }
    c.requests = compiled;
}
