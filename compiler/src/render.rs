//! Stage 2: model SQL templates through minijinja (strict undefined).
//!
//! `ref()` and `source()` record what a model reads; the names are checked by `resolve`, so an
//! unknown ref still renders and every unknown name in a file is reported, not just the first.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Object, ObjectRepr, Rest, Value};
use minijinja::{Environment, Error, ErrorKind, State as JinjaState, UndefinedBehavior};

/// What one render of a template read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Models named with `ref()`, in order of first use.
    pub refs: Vec<String>,
    /// `(database, table)` pairs named with `source()`.
    pub sources: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct State {
    reads: Reads,
    incremental: bool,
    /// Macro calls in progress (a macro calling itself without end stops at [`MAX_MACRO_DEPTH`]).
    depth: usize,
}

/// How deep macros may call macros: far more than any real project, far less than the stack.
pub const MAX_MACRO_DEPTH: usize = 64;

/// The functions every template sees besides the project's macros (for did-you-mean).
pub const BUILTINS: &[&str] = &["ref", "source", "var", "is_incremental"];

/// One file of a `macros` folder: its shown path (also its template name) and text, and the
/// names of the macros it defines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroFile {
    pub name: String,
    pub source: String,
    pub macros: Vec<String>,
}

/// The project's macros, shared by every renderer (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Macros {
    pub files: Arc<Vec<MacroFile>>,
}

impl Macros {
    /// Every macro name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .files
            .iter()
            .flat_map(|f| f.macros.iter().map(String::as_str))
            .collect();
        v.sort_unstable();
        v
    }
}

/// `{% call m() %}body{% endcall %}` passes `caller`, a macro of the calling template's state,
/// which cannot be called from the state the macro runs in: the body is rendered here, in the
/// caller's state, and `caller()` gives that text (a call block taking arguments is not
/// supported across files).
fn with_rendered_caller(state: &JinjaState<'_, '_>, args: &[Value]) -> Result<Vec<Value>, Error> {
    let Some(last) = args.last().filter(|v| v.is_kwargs()) else {
        return Ok(args.to_vec());
    };
    let kwargs = Kwargs::try_from(last.clone())?;
    if !kwargs.has("caller") {
        return Ok(args.to_vec());
    }
    let mut rebuilt = Vec::new();
    for key in kwargs.args() {
        let v: Value = kwargs.peek(key)?;
        let v = if key == "caller" {
            let body = v.call(state, &[])?;
            Value::from_function(move |_: Rest<Value>| -> Result<Value, Error> {
                Ok(Value::from_safe_string(body.to_string()))
            })
        } else {
            v
        };
        rebuilt.push((key.to_string(), v));
    }
    let mut out = args[..args.len() - 1].to_vec();
    out.push(Value::from(Kwargs::from_iter(rebuilt)));
    Ok(out)
}

/// What `this`, `ref()` and `source()` give, as in dbt: it renders as `schema.table`, and has
/// dbt's attributes (`schema`, `identifier`, `name`, `table`; `database`, which ClickHouse
/// relations leave empty).
#[derive(Debug)]
struct Relation {
    schema: String,
    identifier: String,
}

impl Relation {
    fn value(schema: &str, identifier: &str) -> Value {
        Value::from_object(Relation {
            schema: schema.to_string(),
            identifier: identifier.to_string(),
        })
    }
}

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "schema" => self.schema.as_str(),
            "identifier" | "name" | "table" => self.identifier.as_str(),
            "database" => "",
            _ => return None,
        }))
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.identifier)
    }
}

/// A project macro as a global function: each call evaluates its file and calls the macro
/// there, with the caller's `this`, so macros need no import (as in dbt).
#[derive(Debug)]
struct MacroCall {
    file: String,
    name: String,
    state: Arc<Mutex<State>>,
}

impl Object for MacroCall {
    fn call(self: &Arc<Self>, state: &JinjaState<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.depth >= MAX_MACRO_DEPTH {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "macro `{}` is called more than {MAX_MACRO_DEPTH} macros deep (a macro that calls itself without end?)",
                        self.name
                    ),
                ));
            }
            st.depth += 1;
        }
        let result = (|| {
            let args = &with_rendered_caller(state, args)?;
            let tmpl = state.env().get_template(&self.file)?;
            let ctx = match state.lookup("this") {
                Some(t) => minijinja::context! { this => t },
                None => minijinja::context! {},
            };
            tmpl.render_captured(ctx)?
                .state()
                .call_macro(&self.name, args)
        })();
        self.state.lock().unwrap_or_else(|e| e.into_inner()).depth -= 1;
        match result {
            Ok(text) => Ok(Value::from_safe_string(text)),
            // Said at the call site (the error has no place of its own now), naming the
            // macro's file and line.
            Err(e) if e.name() == Some(self.file.as_str()) || e.name().is_none() => {
                let at = e.line().map(|l| format!(":{l}")).unwrap_or_default();
                let what = e
                    .detail()
                    .map_or_else(|| e.kind().to_string(), str::to_string);
                Err(Error::new(
                    e.kind(),
                    format!("in macro `{}` ({}{at}): {what}", self.name, self.file),
                ))
            }
            Err(e) => Err(e),
        }
    }
}

/// One template environment for the whole project, built once.
pub struct Renderer {
    env: Environment<'static>,
    state: Arc<Mutex<State>>,
    database: String,
    macros: Macros,
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
    /// `source_databases`: source names whose tables live in another ClickHouse database
    /// (`source beat database=beat_replica`).
    pub fn new(
        database: &str,
        vars: BTreeMap<String, serde_json::Value>,
        macros: &Macros,
        source_databases: BTreeMap<String, String>,
    ) -> Renderer {
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
            Ok(Relation::value(&db, &name))
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
                let db = source_databases.get(&db).unwrap_or(&db);
                Ok(Relation::value(db, &table))
            },
        );
        let s = state.clone();
        env.add_function("is_incremental", move || -> bool {
            s.lock().unwrap_or_else(|e| e.into_inner()).incremental
        });
        // dbt's `var('name', default)`: the default stands in for an undeclared var.
        env.add_function("var", move |name: String, default: Option<Value>| -> Result<Value, Error> {
            match (vars.get(&name), default) {
                (Some(v), _) => Ok(Value::from_serialize(v)),
                (None, Some(d)) => Ok(d),
                (None, None) => {
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
        // Files that do not compile are reported by `macros.rs` and left out here.
        for f in macros.files.iter() {
            if env
                .add_template_owned(f.name.clone(), f.source.clone())
                .is_err()
            {
                continue;
            }
            for m in &f.macros {
                env.add_global(
                    m.clone(),
                    Value::from_object(MacroCall {
                        file: f.name.clone(),
                        name: m.clone(),
                        state: state.clone(),
                    }),
                );
            }
        }
        Renderer {
            env,
            state,
            database: database.to_string(),
            macros: macros.clone(),
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
                minijinja::context! { this => Relation::value(&self.database, t) }
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
            st.depth = 0;
        }
        let result = render();
        let reads = std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).reads);
        match result {
            Ok(sql) => Ok((sql, reads)),
            Err(e) => Err(template_error(&e, source, &self.macros)),
        }
    }
}

fn template_error(e: &Error, source: &str, macros: &Macros) -> TemplateError {
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
    let unknown_call = (e.kind() == ErrorKind::UnknownFunction)
        .then(|| e.detail().and_then(|d| d.strip_suffix(" is unknown")))
        .flatten();
    if let Some(name) = unknown_call {
        // A call of a name that is neither a macro of the `macros` folders nor a built-in.
        message = format!(
            "unknown macro `{name}`: no `{{% macro {name}(...) %}}` in the `macros` folders"
        );
        let known = macros.names().into_iter().chain(BUILTINS.iter().copied());
        if let Some(h) = crate::diagnostic::did_you_mean(name, known) {
            message = format!("{message}; {h}");
        }
    } else if let Some(d) = e.detail() {
        // An error inside a macro already says where and what (see `MacroCall`).
        message = if d.starts_with("in macro `") {
            d.to_string()
        } else {
            format!("{message}: {d}")
        };
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
        let r = Renderer::new("dbt", vars, &Macros::default(), BTreeMap::new());
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
        let r = Renderer::new("dbt", BTreeMap::new(), &Macros::default(), BTreeMap::new());
        let src = "select 1\nfrom {{ nope }}";
        let e = r.render("m", Some("m"), src, false).unwrap_err();
        assert!(e.message.starts_with("undefined value"), "{}", e.message);
        assert_eq!(&src[e.span.clone()], "nope");
    }

    #[test]
    fn var_takes_a_default_as_in_dbt() {
        let mut vars = BTreeMap::new();
        vars.insert("days".into(), serde_json::json!(7));
        let r = Renderer::new("dbt", vars, &Macros::default(), BTreeMap::new());
        let (sql, _) = r
            .render(
                "m",
                Some("m"),
                "{{ var('days', 3) }} {{ var('lim', 'x') }}",
                false,
            )
            .unwrap();
        assert_eq!(sql, "7 x");
        assert!(r.render("m", Some("m"), "{{ var('lim') }}", false).is_err());
    }

    #[test]
    fn this_ref_and_source_have_dbts_relation_attributes() {
        let dbs = BTreeMap::from([("beat".to_string(), "beat_replica".to_string())]);
        let r = Renderer::new("dbt", BTreeMap::new(), &Macros::default(), dbs);
        let src = "{{ this }}|{{ this.schema }}|{{ this.identifier }}|{{ this.name }}|{{ this.database }}|{{ ref('a').identifier }}|{{ source('beat', 't').schema }}|{{ ref('a') ~ '_x' }}";
        let (sql, _) = r.render("m", Some("m"), src, false).unwrap();
        assert_eq!(sql, "dbt.m|dbt|m|m||a|beat_replica|dbt.a_x");
    }

    #[test]
    fn a_call_block_passes_its_body_to_a_macro_of_another_file() {
        let macros = Macros {
            files: Arc::new(vec![MacroFile {
                name: "macros/wrap.sql".into(),
                source: "{% macro wrap(alias) %}select * from ({{ caller() }}) as {{ alias }}{% endmacro %}".into(),
                macros: vec!["wrap".into()],
            }]),
        };
        let r = Renderer::new("dbt", BTreeMap::new(), &macros, BTreeMap::new());
        let src = "{% call wrap('s') %}select 1 from {{ ref('a') }}{% endcall %}";
        let (sql, reads) = r.render("m", Some("m"), src, false).unwrap();
        assert_eq!(sql, "select * from (select 1 from dbt.a) as s");
        assert_eq!(reads.refs, ["a"]);
    }

    #[test]
    fn a_source_may_name_another_database() {
        let dbs = BTreeMap::from([("beat".to_string(), "beat_replica".to_string())]);
        let r = Renderer::new("dbt", BTreeMap::new(), &Macros::default(), dbs);
        let (sql, reads) = r
            .render(
                "m",
                Some("m"),
                "{{ source('beat', 't') }} {{ source('raw', 'u') }}",
                false,
            )
            .unwrap();
        assert_eq!(sql, "beat_replica.t raw.u");
        assert_eq!(reads.sources[0], ("beat".to_string(), "t".to_string()));
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
