//! dbt model configuration: `{{ config(...) }}` headers, read without running the model, and
//! the precedence dbt applies (header over properties YAML over dbt_project.yml folders).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Value as JValue};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::Value;

/// Where a config value was written: a file and its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A model's configuration, key by key, each value with where it was written.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub values: BTreeMap<String, (Value, At)>,
    /// Tags add up across levels, as in dbt (in order of first appearance).
    pub tags: Vec<(String, At)>,
}

impl Config {
    /// Lay `key = value` over what is there (a later, more specific level wins).
    pub fn set(&mut self, key: &str, value: Value, at: At) {
        if key == "tags" {
            let tags = match &value {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            for t in tags {
                if !self.tags.iter().any(|(x, _)| *x == t) {
                    self.tags.push((t, at.clone()));
                }
            }
            return;
        }
        self.values.insert(key.to_string(), (value, at));
    }
    pub fn get(&self, key: &str) -> Option<&(Value, At)> {
        self.values.get(key)
    }
}

/// One `{{ config(...) }}` of a model file: the bytes to remove (its whole line when it
/// stands alone on it), its line, and the keyword arguments, or why they could not be read.
#[derive(Debug, Clone)]
pub struct Header {
    pub remove: Range<usize>,
    pub line: usize,
    pub args: Result<Vec<(String, Value)>, String>,
}

/// Every `{{ config(...) }}` in a model file, evaluated with dbt's vars (and `var`'s default)
/// and nothing else: no macro, no adapter, no Python runs.
pub fn headers(sql: &str, vars: &BTreeMap<String, Value>) -> Vec<Header> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = sql[from..].find("{{") {
        let open = from + pos;
        from = open + 2;
        let inner_start = open + 2;
        let rest = &sql[inner_start..];
        let body = rest.trim_start_matches(['-', '+']).trim_start();
        let Some(after) = body.strip_prefix("config") else {
            continue;
        };
        if !after.trim_start().starts_with('(') {
            continue;
        }
        let Some(close) = closing_braces(sql, inner_start) else {
            continue;
        };
        let expr = sql[inner_start..close]
            .trim_start_matches(['-', '+'])
            .trim_end_matches(['-', '+'])
            .trim();
        let mut remove = open..close + 2;
        // `{{-` / `-}}` strip the whitespace beside the tag in dbt's Jinja: so does the removal,
        // so the SQL left is what dbt renders.
        let (left, right) = (
            sql[inner_start..].starts_with('-'),
            sql[..close].ends_with('-'),
        );
        if left {
            remove.start = sql[..open].trim_end().len();
        }
        if right {
            remove.end = sql.len() - sql[remove.end..].trim_start().len();
        }
        // A header alone on its line takes the line with it.
        let line_start = sql[..open].rfind('\n').map_or(0, |i| i + 1);
        let line_end = sql[remove.end..]
            .find('\n')
            .map_or(sql.len(), |i| remove.end + i + 1);
        if !left
            && !right
            && sql[line_start..open].trim().is_empty()
            && sql[remove.end..line_end].trim().is_empty()
        {
            remove = line_start..line_end;
        }
        out.push(Header {
            line: sql[..open].matches('\n').count() + 1,
            args: evaluate(expr, vars),
            remove,
        });
        from = close + 2;
    }
    out
}

/// The model file without its config headers.
pub fn strip(sql: &str, headers: &[Header]) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for h in headers {
        out.push_str(&sql[at..h.remove.start]);
        at = h.remove.end;
    }
    out.push_str(&sql[at..]);
    out
}

/// Where the `}}` that ends the expression starting at `from` stands (outside strings and
/// brackets, so `settings={'a': {'b': 1}}` does not end it early).
fn closing_braces(sql: &str, from: usize) -> Option<usize> {
    let b = sql.as_bytes();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut i = from;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' => depth -= 1,
                b'}' if depth == 0 && b.get(i + 1) == Some(&b'}') => return Some(i),
                b'}' => depth -= 1,
                _ => {}
            },
        }
        i += 1;
    }
    None
}

fn evaluate(expr: &str, vars: &BTreeMap<String, Value>) -> Result<Vec<(String, Value)>, String> {
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let mut env = Environment::new();
    let sink = got.clone();
    env.add_function("config", move |kwargs: Kwargs| -> Result<JValue, Error> {
        let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
        for key in kwargs.args() {
            let v: JValue = kwargs.get(key)?;
            let json = serde_json::to_value(&v)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            sink.push((key.to_string(), json));
        }
        Ok(JValue::from(""))
    });
    let vars = vars.clone();
    env.add_function(
        "var",
        move |name: String, default: Option<JValue>| -> Result<JValue, Error> {
            match (vars.get(&name), default) {
                (Some(v), _) => Ok(JValue::from_serialize(v)),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(Error::new(
                    ErrorKind::UndefinedError,
                    format!("var `{name}` is not in dbt_project.yml"),
                )),
            }
        },
    );
    env.compile_expression(expr)
        .and_then(|e| e.eval(minijinja::context! {}))
        .map_err(|e| match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        })?;
    let v = std::mem::take(&mut *got.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_and_removed_with_their_line() {
        let sql = "{{ config(materialized = 'table', tags=[\"a\", 'b'], settings={'x': {'y': 1}}, order_by='id') }}\nwith d as (select 1)\nselect * from d -- {{ this }}\n";
        let h = headers(sql, &BTreeMap::new());
        assert_eq!(h.len(), 1);
        let args: BTreeMap<String, Value> = h[0].args.clone().unwrap().into_iter().collect();
        assert_eq!(args["materialized"], Value::from("table"));
        assert_eq!(args["tags"], serde_json::json!(["a", "b"]));
        assert_eq!(args["settings"], serde_json::json!({"x": {"y": 1}}));
        assert_eq!(
            strip(sql, &h),
            "with d as (select 1)\nselect * from d -- {{ this }}\n"
        );
    }

    #[test]
    fn a_header_inside_a_line_leaves_the_line() {
        let vars = BTreeMap::from([("mat".to_string(), Value::from("view"))]);
        let sql = "select 1 {{- config(materialized=var('mat'), enabled=var('on', true)) -}} as x";
        let h = headers(sql, &vars);
        // As dbt renders it: `{{-`/`-}}` took the spaces.
        assert_eq!(strip(sql, &h), "select 1as x");
        let args: BTreeMap<String, Value> = h[0].args.clone().unwrap().into_iter().collect();
        assert_eq!(args["materialized"], Value::from("view"));
        assert_eq!(args["enabled"], Value::from(true));
    }

    #[test]
    fn a_header_that_calls_a_macro_is_reported_not_run() {
        let h = headers(
            "{{ config(materialized=pick()) }}\nselect 1",
            &BTreeMap::new(),
        );
        assert!(
            h[0].args.as_ref().unwrap_err().contains("pick"),
            "{:?}",
            h[0].args
        );
    }
}
