//! The declared columns against ClickHouse's: types, computed expressions, jsonb wrapping.

use super::*;

impl Job<'_> {
    /// Check the declared columns against ClickHouse; answer the SELECT to export (the plan's,
    /// wrapped when a jsonb column must be converted with `toJSONString`).
    pub(super) async fn check_columns(&self) -> Result<String, Fail> {
        let table = self.source_table();
        let qid = self.next_qid();
        let described = ch_text(&self.ch, self.ctx, &format!("DESCRIBE TABLE {table}"), &qid)
            .await
            .map_err(|e| ch_err(&format!("cannot describe `{table}`"), e))?;
        let table_cols = parse_describe(&described);
        let cols = &self.sync.clickhouse.columns;
        let mut types: Vec<Option<String>> = Vec::with_capacity(cols.len());
        let mut computed = Vec::new();
        for c in cols {
            if is_plain_column(&c.expr, &c.name) {
                match table_cols.iter().find(|(n, _)| *n == c.name) {
                    Some((_, t)) => types.push(Some(t.clone())),
                    None => {
                        let names: Vec<&str> = table_cols.iter().map(|(n, _)| n.as_str()).collect();
                        return Err(other(format!(
                            "column `{}` is not in ClickHouse table `{table}` (it has: {}); refusing before touching PostgreSQL",
                            c.name,
                            names.join(", ")
                        )));
                    }
                }
            } else {
                types.push(None);
                computed.push(c);
            }
        }
        if !computed.is_empty() {
            let list: Vec<String> = computed
                .iter()
                .map(|c| format!("{} AS {}", c.expr, quote_ident(&c.name)))
                .collect();
            let sql = format!("DESCRIBE TABLE (SELECT {} FROM {table})", list.join(", "));
            let qid = self.next_qid();
            let text = ch_text(&self.ch, self.ctx, &sql, &qid).await.map_err(|e| {
                let names: Vec<String> = computed.iter().map(|c| format!("`{}`", c.name)).collect();
                ch_err(
                    &format!("cannot evaluate the expressions of {}", names.join(", ")),
                    e,
                )
            })?;
            let got = parse_describe(&text);
            for (i, c) in cols.iter().enumerate() {
                if types[i].is_none() {
                    types[i] = got
                        .iter()
                        .find(|(n, _)| *n == c.name)
                        .map(|(_, t)| t.clone());
                }
            }
        }
        let mut wrap = Vec::new();
        for (c, t) in cols.iter().zip(&types) {
            let Some(t) = t else {
                return Err(other(format!(
                    "cannot find the ClickHouse type of column `{}`",
                    c.name
                )));
            };
            match compatible(c, t) {
                Compat::Yes => wrap.push(false),
                Compat::AsJson => wrap.push(true),
                Compat::No => {
                    return Err(other(format!(
                        "column `{}` is declared {} in PostgreSQL but is {t} in ClickHouse (`{}`); accepted ClickHouse types: {}; refusing before touching PostgreSQL",
                        c.name,
                        c.pg_type,
                        c.expr,
                        c.clickhouse_types.join(", ")
                    )));
                }
            }
        }
        let select = &self.sync.clickhouse.select;
        if !wrap.contains(&true) {
            return Ok(select.clone());
        }
        let list: Vec<String> = cols
            .iter()
            .zip(&wrap)
            .map(|(c, w)| {
                let q = quote_ident(&c.name);
                if *w {
                    format!("toJSONString({q}) AS {q}")
                } else {
                    q
                }
            })
            .collect();
        Ok(format!("SELECT {} FROM (\n{select}\n)", list.join(", ")))
    }
}

/// `name\ttype\t…` lines of a DESCRIBE answer.
fn parse_describe(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((unescape_tsv(f.next()?), unescape_tsv(f.next()?)))
        })
        .collect()
}

fn unescape_tsv(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The column is exported as itself (not a computed expression).
fn is_plain_column(expr: &str, name: &str) -> bool {
    let e = expr.trim();
    e == name || e == quote_ident(name) || e == format!("`{name}`")
}

#[derive(Debug, PartialEq, Eq)]
enum Compat {
    Yes,
    /// A structured ClickHouse value (Array, Map, Tuple, JSON) into json/jsonb: exported
    /// through `toJSONString`.
    AsJson,
    No,
}

/// `Nullable(LowCardinality(String))` -> `String`.
fn unwrap_type(t: &str) -> &str {
    let mut t = t.trim();
    loop {
        let mut changed = false;
        for w in ["Nullable(", "LowCardinality("] {
            if let Some(inner) = t.strip_prefix(w).and_then(|x| x.strip_suffix(')')) {
                t = inner.trim();
                changed = true;
            }
        }
        if !changed {
            return t;
        }
    }
}

/// Whether `family` (e.g. `Int`) names the type `t` (e.g. `Int64`, `Decimal(10,2)`).
fn family_matches(family: &str, t: &str) -> bool {
    let name = t.split('(').next().unwrap_or(t).trim();
    name.strip_prefix(family)
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
}

fn compatible(c: &ExportColumn, ch_type: &str) -> Compat {
    let t = unwrap_type(ch_type);
    if c.clickhouse_types.is_empty() || c.clickhouse_types.iter().any(|f| family_matches(f, t)) {
        // Accepted as the plan exports it (a plan that lists Array/Map for jsonb converts
        // them itself).
        return Compat::Yes;
    }
    let pg = c.pg_type.to_ascii_lowercase();
    if (pg == "jsonb" || pg == "json")
        && ["Array", "Map", "Tuple", "JSON", "Object", "Nested"]
            .iter()
            .any(|f| family_matches(f, t))
    {
        return Compat::AsJson;
    }
    Compat::No
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(pg: &str, families: &[&str]) -> ExportColumn {
        ExportColumn {
            name: "c".into(),
            expr: "c".into(),
            pg_type: pg.into(),
            clickhouse_types: families.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn type_families() {
        assert!(family_matches("Int", "Int64"));
        assert!(!family_matches("Int", "UInt64"));
        assert!(family_matches("DateTime", "DateTime64(3, 'UTC')"));
        assert!(family_matches("Decimal", "Decimal(12, 2)"));
        assert!(!family_matches("String", "FixedString(3)"));
        assert_eq!(unwrap_type("Nullable(LowCardinality(String))"), "String");
        assert_eq!(unwrap_type("LowCardinality(Nullable(String))"), "String");
        let int8 = col("int8", &["Int", "UInt", "Bool"]);
        assert_eq!(compatible(&int8, "Nullable(UInt64)"), Compat::Yes);
        assert_eq!(compatible(&int8, "String"), Compat::No);
        let j = col("jsonb", &["String", "FixedString"]);
        assert_eq!(compatible(&j, "Map(String, UInt64)"), Compat::AsJson);
        let j2 = col("jsonb", &["Map", "Array"]);
        assert_eq!(compatible(&j2, "Map(String, UInt64)"), Compat::Yes);
        assert_eq!(compatible(&j, "Array(String)"), Compat::AsJson);
        assert_eq!(compatible(&j, "String"), Compat::Yes);
        assert_eq!(compatible(&col("text", &[]), "Array(String)"), Compat::Yes);
        let tz = col("timestamptz", &["DateTime", "Date"]);
        assert_eq!(compatible(&tz, "DateTime('Asia/Kolkata')"), Compat::Yes);
        assert_eq!(compatible(&tz, "Nullable(Date32)"), Compat::Yes);
        assert_eq!(compatible(&tz, "String"), Compat::No);
    }
}
