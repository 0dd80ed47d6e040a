//! Stage 2: model SQL templates through minijinja (strict undefined).
//!
//! `ref()` and `source()` record what a model reads; the names are checked by `resolve`, so an
//! unknown ref still renders and every unknown name in a file is reported, not just the first.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

/// What one render of a template read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Models named with `ref()`, in order of first use.
    pub refs: Vec<String>,
    /// `(database, table)` pairs named with `source()`.
    pub sources: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    reads: Reads,
    incremental: bool,
}

/// One template environment for the whole project, built once.
pub struct Renderer {
    env: Environment<'static>,
    state: Arc<Mutex<State>>,
    database: String,
}

/// What one render gives: the text and what it read, or where and why it failed.
pub type Rendered = Result<(String, Reads), TemplateError>;

/// A template error at a byte range of the template source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub span: Range<usize>,
}

impl Renderer {
    pub fn new(database: &str, vars: BTreeMap<String, serde_json::Value>) -> Renderer {
        let state = Arc::new(Mutex::new(State::default()));
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        let db = database.to_string();
        let s = state.clone();
        env.add_function("ref", move |name: String| -> Result<Value, Error> {
            let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
            if !st.reads.refs.contains(&name) {
                st.reads.refs.push(name.clone());
            }
            Ok(Value::from_safe_string(format!("{db}.{name}")))
        });
        let s = state.clone();
        env.add_function(
            "source",
            move |db: String, table: String| -> Result<Value, Error> {
                let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
                let pair = (db.clone(), table.clone());
                if !st.reads.sources.contains(&pair) {
                    st.reads.sources.push(pair);
                }
                Ok(Value::from_safe_string(format!("{db}.{table}")))
            },
        );
        let s = state.clone();
        env.add_function("is_incremental", move || -> bool {
            s.lock().unwrap_or_else(|e| e.into_inner()).incremental
        });
        env.add_function("var", move |name: String| -> Result<Value, Error> {
            match vars.get(&name) {
                Some(v) => Ok(Value::from_serialize(v)),
                None => {
                    let hint = crate::diagnostic::did_you_mean(&name, vars.keys().map(String::as_str))
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default();
                    Err(Error::new(
                        ErrorKind::UndefinedError,
                        format!("var `{name}` is not declared in the manifest (add `var {name} VALUE`){hint}"),
                    ))
                }
            }
        });
        Renderer {
            env,
            state,
            database: database.to_string(),
        }
    }

    /// Render `source` as model `this` (its own table name, unqualified).
    pub fn render(
        &self,
        name: &str,
        this: Option<&str>,
        source: &str,
        incremental: bool,
    ) -> Rendered {
        // `this` exists only where there is a model (not in `sql` steps), so strict undefined
        // reports it elsewhere.
        let ctx = match this {
            Some(t) => {
                minijinja::context! { this => Value::from_safe_string(format!("{}.{}", self.database, t)) }
            }
            None => minijinja::context! {},
        };
        self.tracked(source, incremental, || {
            self.env
                .template_from_named_str(name, source)
                .and_then(|t| t.render(ctx))
        })
    }

    /// Render a template that is not a file (a sync's `enrich` or `delete-where`) with extra
    /// context; what it read comes back as for a model.
    pub fn render_str(&self, source: &str, ctx: Value) -> Rendered {
        self.tracked(source, false, || self.env.render_str(source, ctx))
    }

    /// Run one render with fresh read tracking.
    fn tracked(
        &self,
        source: &str,
        incremental: bool,
        render: impl FnOnce() -> Result<String, Error>,
    ) -> Rendered {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.reads = Reads::default();
            st.incremental = incremental;
        }
        let result = render();
        let reads = std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).reads);
        match result {
            Ok(sql) => Ok((sql, reads)),
            Err(e) => Err(template_error(&e, source)),
        }
    }
}

fn template_error(e: &Error, source: &str) -> TemplateError {
    let span = match (e.range(), e.line()) {
        (Some(r), _) if r.end <= source.len() => r,
        (_, Some(line)) => line_span(source, line),
        _ => 0..0,
    };
    let mut message = match e.kind() {
        ErrorKind::UndefinedError => "undefined value".to_string(),
        ErrorKind::SyntaxError => "template syntax error".to_string(),
        ErrorKind::UnknownFunction => "unknown function".to_string(),
        ErrorKind::UnknownFilter => "unknown filter".to_string(),
        ErrorKind::UnknownTest => "unknown test".to_string(),
        _ => "template error".to_string(),
    };
    if let Some(d) = e.detail() {
        message = format!("{message}: {d}");
    }
    TemplateError { message, span }
}

fn line_span(source: &str, line: usize) -> Range<usize> {
    let mut start = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return start..start + l.trim_end().len();
        }
        start += l.len();
    }
    0..0
}

/// Where `ref('name')` / `source('db', 'table')` stand in a template, for labels.
/// Returns the span of the quoted first argument (or, for source, the table argument).
pub fn call_spans(source: &str, func: &str) -> Vec<(Vec<String>, Range<usize>)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = source[i..].find(func) {
        let start = i + pos;
        i = start + func.len();
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !before_ok {
            continue;
        }
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'(' {
            continue;
        }
        j += 1;
        let mut parts = Vec::new();
        let mut last_span = start..start;
        loop {
            while j < bytes.len() && (bytes[j].is_ascii_whitespace() || bytes[j] == b',') {
                j += 1;
            }
            if j >= bytes.len() || (bytes[j] != b'\'' && bytes[j] != b'"') {
                break;
            }
            let q = bytes[j];
            let Some(end) = source[j + 1..].find(q as char) else {
                break;
            };
            parts.push(source[j + 1..j + 1 + end].to_string());
            last_span = j + 1..j + 1 + end;
            j = j + 2 + end;
        }
        if !parts.is_empty() {
            out.push((parts, last_span));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_sources_and_loops() {
        let mut vars = BTreeMap::new();
        vars.insert("min_followers".into(), serde_json::json!(1000));
        let r = Renderer::new("dbt", vars);
        let src = "{% set ms = ['a', 'b'] %}select {% for m in ms %}{{ m }}_x, {% endfor %}1 from {{ ref('m1') }} join {{ source('beat', 't') }} where f > {{ var('min_followers') }} {% if is_incremental() %}and d > (select max(d) from {{ this }}){% endif %}";
        let (sql, reads) = r.render("m2", Some("m2"), src, false).unwrap();
        assert_eq!(
            sql,
            "select a_x, b_x, 1 from dbt.m1 join beat.t where f > 1000 "
        );
        assert_eq!(reads.refs, vec!["m1".to_string()]);
        assert_eq!(reads.sources, vec![("beat".to_string(), "t".to_string())]);
        let (sql, _) = r.render("m2", Some("m2"), src, true).unwrap();
        assert!(sql.ends_with("and d > (select max(d) from dbt.m2)"));
    }

    #[test]
    fn undefined_is_an_error_with_a_span() {
        let r = Renderer::new("dbt", BTreeMap::new());
        let src = "select 1\nfrom {{ nope }}";
        let e = r.render("m", Some("m"), src, false).unwrap_err();
        assert!(e.message.starts_with("undefined value"), "{}", e.message);
        assert_eq!(&src[e.span.clone()], "nope");
    }

    #[test]
    fn finds_call_spans() {
        let src = "from {{ ref('a') }} join {{ source(\"db\", 't') }}";
        let refs = call_spans(src, "ref");
        assert_eq!(refs.len(), 1);
        assert_eq!(&src[refs[0].1.clone()], "a");
        let s = call_spans(src, "source");
        assert_eq!(s[0].0, vec!["db".to_string(), "t".to_string()]);
    }
}
