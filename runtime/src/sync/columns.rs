//! The declared columns against ClickHouse's: types, computed expressions, jsonb wrapping.

use std::collections::HashSet;

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
                .map(|c| format!("{} AS {}", c.expr, ch_ident(&c.name)))
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
        // Every column's problem, not only the first, so one run shows all there is to fix.
        let mut wrap = Vec::new();
        let mut problems = Vec::new();
        for (c, t) in cols.iter().zip(&types) {
            let Some(t) = t else {
                return Err(other(format!(
                    "cannot find the ClickHouse type of column `{}`",
                    c.name
                )));
            };
            match compatible(c, t) {
                Compat::Yes => wrap.push(None),
                Compat::AsJson => wrap.push(Some("toJSONString")),
                Compat::AsInt => wrap.push(Some("toUInt8")),
                Compat::Lossy(why, fix) => {
                    wrap.push(None);
                    problems.push(format!(
                        "[stir::lossy_column] column `{}` is {t} in ClickHouse (`{}`) but {} in PostgreSQL: {why}\n  help: {fix}",
                        c.name, c.expr, c.pg_type
                    ));
                }
                Compat::No => {
                    wrap.push(None);
                    problems.push(format!(
                        "[stir::column_type] column `{}` is declared {} in PostgreSQL but is {t} in ClickHouse (`{}`)\n  help: accepted ClickHouse types: {}; convert it in `expr`, or declare the PostgreSQL type that holds {t}",
                        c.name,
                        c.pg_type,
                        c.expr,
                        c.clickhouse_types.join(", ")
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(other(format!(
                "{} would not arrive as ClickHouse has {}; refusing before touching PostgreSQL:\n{}",
                if problems.len() == 1 { "a column".to_string() } else { format!("{} columns", problems.len()) },
                if problems.len() == 1 { "it" } else { "them" },
                problems.join("\n")
            )));
        }
        let (body, settings) = split_settings(&self.sync.clickhouse.select);
        let settings = match settings {
            Some(line) => self.known_settings(line).await?,
            None => String::new(),
        };
        let body = if wrap.iter().all(Option::is_none) {
            body.to_string()
        } else {
            let list: Vec<String> = cols
                .iter()
                .zip(&wrap)
                .map(|(c, w)| {
                    let q = ch_ident(&c.name);
                    match w {
                        Some(f) => format!("{f}({q}) AS {q}"),
                        None => q,
                    }
                })
                .collect();
            format!("SELECT {} FROM (\n{body}\n)", list.join(", "))
        };
        // The settings on the outermost query: a subquery's settings do not reach the answer.
        Ok(if settings.is_empty() {
            body
        } else {
            format!("{body}\nSETTINGS {settings}")
        })
    }

    /// The plan's pinned settings (`a = 1, b = 'x'`) without those this server does not have:
    /// a setting the server does not know cannot be set by its profiles either, and naming it
    /// would fail every export on a server older than the setting.
    async fn known_settings(&self, line: &str) -> Result<String, Fail> {
        let Some(items) = setting_items(line) else {
            return Ok(line.to_string());
        };
        let names: Vec<String> = items.iter().map(|(n, _)| ch_literal(n)).collect();
        // Pinned itself: a cut answer would drop pins silently.
        let sql = format!(
            "SELECT name FROM system.settings WHERE name IN ({}) \
             SETTINGS max_result_rows = 0, max_result_bytes = 0, result_overflow_mode = 'throw', \
             limit = 0, offset = 0, additional_result_filter = ''",
            names.join(", ")
        );
        let qid = self.next_qid();
        let text = ch_text(&self.ch, self.ctx, &sql, &qid)
            .await
            .map_err(|e| ch_err("cannot read system.settings", e))?;
        let known: HashSet<&str> = text.lines().collect();
        let (kept, dropped): (Vec<_>, Vec<_>) =
            items.iter().partition(|(n, _)| known.contains(n.as_str()));
        if !dropped.is_empty() {
            let names: Vec<&str> = dropped.iter().map(|(n, _)| n.as_str()).collect();
            info!(sync = %self.sync.name, settings = %names.join(", "), "not pinned: this ClickHouse server does not have these settings");
        }
        Ok(kept
            .iter()
            .map(|(n, v)| format!("{n} = {v}"))
            .collect::<Vec<_>>()
            .join(", "))
    }
}

/// The SELECT and its last line's settings (`SETTINGS a = 1, ..`), as the planner writes it.
fn split_settings(select: &str) -> (&str, Option<&str>) {
    match select.rfind("\nSETTINGS ") {
        Some(i) if !select[i + 1..].contains('\n') => {
            (&select[..i], Some(&select[i + "\nSETTINGS ".len()..]))
        }
        _ => (select, None),
    }
}

/// `a = 1, b = 'x'` -> [(a, 1), (b, 'x')]; None when a part is not `name = value` with a plain
/// name and a value without commas or quotes inside (the planner writes no other kind).
fn setting_items(line: &str) -> Option<Vec<(String, String)>> {
    line.split(", ")
        .map(|item| {
            let (name, value) = item.split_once(" = ")?;
            let plain =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let inner = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(value);
            (plain && !inner.contains('\'') && !value.contains(','))
                .then(|| (name.to_string(), value.to_string()))
        })
        .collect()
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
    e == name || e == ch_ident(name) || e == format!("`{name}`")
}

#[derive(Debug, PartialEq, Eq)]
enum Compat {
    Yes,
    /// A structured ClickHouse value (Array, Map, Tuple, JSON) into json/jsonb: exported
    /// through `toJSONString`.
    AsJson,
    /// A Bool into an integer column: exported through `toUInt8` (TabSeparated writes
    /// `true`/`false`, which COPY refuses for an integer), so it lands as 0/1, exactly.
    AsInt,
    /// A number that would arrive rounded or cut: why, and the fix.
    Lossy(String, String),
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

/// Precision and scale of `Decimal(P, S)` or `Decimal32(S)` .. `Decimal256(S)`.
fn decimal_ps(t: &str) -> Option<(u32, u32)> {
    let (name, args) = t.split_once('(')?;
    let nums: Vec<u32> = args
        .trim_end_matches(')')
        .split(',')
        .map(|a| a.trim().parse().ok())
        .collect::<Option<_>>()?;
    match (name.trim(), nums.as_slice()) {
        ("Decimal", [p, s]) => Some((*p, *s)),
        ("Decimal", [p]) => Some((*p, 0)),
        ("Decimal32", [s]) => Some((9, *s)),
        ("Decimal64", [s]) => Some((18, *s)),
        ("Decimal128", [s]) => Some((38, *s)),
        ("Decimal256", [s]) => Some((76, *s)),
        _ => None,
    }
}

/// The decimal digits of an integer type's largest value (`Int64` -> 19), or None.
fn int_digits(t: &str) -> Option<u32> {
    Some(match t {
        "Int8" | "UInt8" => 3,
        "Int16" | "UInt16" => 5,
        "Int32" | "UInt32" => 10,
        "Int64" => 19,
        "UInt64" => 20,
        "Int128" | "UInt128" => 39,
        "Int256" => 77,
        "UInt256" => 78,
        _ => return None,
    })
}

/// Whether one `clickhouse_types` entry accepts the (unwrapped) type `t`: `Decimal(p,s)` takes
/// a Decimal with at most s decimals, `Decimal(p)` one of at most p
/// digits; any other entry is a family (see [`family_matches`]).
fn accepts(entry: &str, t: &str) -> bool {
    let Some(args) = entry
        .strip_prefix("Decimal(")
        .and_then(|a| a.strip_suffix(')'))
    else {
        return family_matches(entry, t);
    };
    let Some((tp, ts)) = decimal_ps(t) else {
        return false;
    };
    let nums: Vec<u32> = args
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    match nums.as_slice() {
        // More integer digits than the column's fail the load loudly; more decimals would
        // be rounded silently.
        [_, s] => ts <= *s,
        [p] => tp <= *p,
        _ => false,
    }
}

fn compatible(c: &ExportColumn, ch_type: &str) -> Compat {
    let t = unwrap_type(ch_type);
    let pg = c.pg_type.to_ascii_lowercase();
    if matches!(pg.as_str(), "int2" | "int4" | "int8") && t == "Bool" {
        return Compat::AsInt;
    }
    if c.clickhouse_types.is_empty() || c.clickhouse_types.iter().any(|f| accepts(f, t)) {
        // Accepted as the plan exports it (a plan that lists Array/Map for jsonb converts
        // them itself).
        return Compat::Yes;
    }
    if (pg == "jsonb" || pg == "json")
        && ["Array", "Map", "Tuple", "JSON", "Object", "Nested"]
            .iter()
            .any(|f| family_matches(f, t))
    {
        return Compat::AsJson;
    }
    match lossy(&pg, t, &c.expr) {
        Some((why, fix)) => Compat::Lossy(why, fix),
        None => Compat::No,
    }
}

/// Why a number of type `t` would not arrive whole in the column `pg`, and the fix; None when
/// `t` is not a number that PostgreSQL would take (a plain type mismatch).
fn lossy(pg: &str, t: &str, expr: &str) -> Option<(String, String)> {
    let digits = int_digits(t);
    let decimal = decimal_ps(t);
    let float = family_matches("Float", t);
    if digits.is_none() && decimal.is_none() && !float {
        return None;
    }
    // The column that would hold `t` exactly.
    let mut exact = match (digits, decimal) {
        (Some(d), _) if d <= 19 && t != "UInt64" => "`type=int8`".to_string(),
        (Some(d), _) => format!("`type=\"numeric({d},0)\"`"),
        (_, Some((p, s))) => format!("`type=\"numeric({p},{s})\"`"),
        _ => "`type=float8`".to_string(),
    };
    let base = pg.split('(').next().unwrap_or(pg);
    let (why, cast) = match base {
        "float4" | "float8" => {
            let (bits, sig, fun) = if base == "float4" {
                (24, 6, "toFloat32")
            } else {
                (53, 15, "toFloat64")
            };
            let why = match (digits, decimal) {
                (Some(_), _) => format!("{pg} holds integers exactly only up to 2^{bits}, so larger values would be rounded silently"),
                (_, Some((p, _))) => format!("{pg} keeps {sig} significant digits and {t} has {p}, so values would be rounded silently"),
                _ => format!("{pg} keeps about {sig} significant digits, so values would be rounded silently"),
            };
            (why, format!("expr=\"{fun}({expr})\""))
        }
        "numeric" => {
            let (p, s) = numeric_ps(pg)?;
            let (t_int, t_scale) = match (digits, decimal) {
                (Some(d), _) => (d, 0),
                (_, Some((tp, ts))) => (tp - ts, ts),
                _ => (0, 0),
            };
            let why = if float {
                exact = "`type=numeric` (no precision) or `type=float8`".to_string();
                format!(
                    "{pg} keeps {s} digits after the point, so values would be rounded silently"
                )
            } else {
                // Wide enough for both what the column held and what ClickHouse sends.
                let (int, scale) = (t_int.max(p.saturating_sub(s)), t_scale.max(s));
                exact = format!("`type=\"numeric({},{scale})\"`", int + scale);
                if t_scale > s {
                    format!("{pg} keeps {s} digits after the point and {t} has {t_scale}, so values would be rounded silently")
                } else {
                    format!("{pg} holds {} digits before the point and {t} up to {t_int}, so larger values would fail the load", p.saturating_sub(s))
                }
            };
            (
                why,
                format!("expr=\"CAST(round({expr}, {s}) AS Decimal({p}, {s}))\""),
            )
        }
        _ => return None,
    };
    Some((
        why,
        format!("declare {exact}, or round on purpose in ClickHouse: `{cast}`"),
    ))
}

/// `numeric(p,s)` -> (p, s); `numeric(p)` -> (p, 0).
fn numeric_ps(pg: &str) -> Option<(u32, u32)> {
    let args = pg.strip_prefix("numeric(")?.strip_suffix(')')?;
    let nums: Vec<u32> = args
        .split(',')
        .map(|a| a.trim().parse().ok())
        .collect::<Option<_>>()?;
    match nums.as_slice() {
        [p] => Some((*p, 0)),
        [p, s] => Some((*p, *s)),
        _ => None,
    }
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

    /// The column as the planner writes it for a PostgreSQL type.
    fn planned(pg: &str) -> ExportColumn {
        ExportColumn {
            name: "c".into(),
            expr: "c".into(),
            pg_type: pg.into(),
            clickhouse_types: stir_plan::pgtype::clickhouse_types(pg),
        }
    }

    fn verdict(pg: &str, ch: &str) -> &'static str {
        match compatible(&planned(pg), ch) {
            Compat::Yes => "yes",
            Compat::AsJson => "json",
            Compat::AsInt => "0/1",
            Compat::Lossy(..) => "lossy",
            Compat::No => "no",
        }
    }

    #[test]
    fn acceptance_rules() {
        let table = [
            // Bool into integers is converted, exactly; other integers all pass (COPY
            // refuses an out-of-range value loudly).
            ("int8", "Bool", "0/1"),
            ("int2", "Nullable(Bool)", "0/1"),
            ("int4", "Int64", "yes"),
            ("int8", "UInt64", "yes"),
            ("int8", "Float64", "no"),
            ("boolean", "Bool", "yes"),
            // float8 holds integers exactly up to 2^53, float4 up to 2^24.
            ("float8", "Int32", "yes"),
            ("float8", "UInt32", "yes"),
            ("float8", "Int64", "lossy"),
            ("float8", "Nullable(UInt64)", "lossy"),
            ("float8", "Int128", "lossy"),
            ("float8", "Float32", "yes"),
            ("float8", "Float64", "yes"),
            ("float8", "Decimal(15, 2)", "yes"),
            ("float8", "Decimal(18, 6)", "lossy"),
            ("float4", "Float32", "yes"),
            ("float4", "Float64", "lossy"),
            ("float4", "Int16", "yes"),
            ("float4", "Int32", "lossy"),
            ("float4", "Decimal(6, 2)", "yes"),
            ("float4", "Decimal(9, 2)", "lossy"),
            ("float8", "String", "no"),
            // numeric(p,s): at most p-s digits before the point and s after.
            ("numeric(10,2)", "Decimal(10, 2)", "yes"),
            ("numeric(10,2)", "Decimal(9, 1)", "yes"),
            ("numeric(10,2)", "Decimal(18, 6)", "lossy"),
            ("numeric(10,2)", "Decimal(10, 3)", "lossy"),
            ("numeric(10,2)", "Decimal(11, 2)", "yes"),
            ("numeric(10,2)", "Decimal64(2)", "yes"),
            ("numeric(12,2)", "Decimal32(2)", "yes"),
            ("numeric(10,0)", "Int32", "yes"),
            ("numeric(10,0)", "Int64", "yes"),
            ("numeric(20,0)", "UInt64", "yes"),
            ("numeric(19,0)", "UInt64", "yes"),
            ("numeric(12,2)", "Float64", "lossy"),
            ("numeric(12,2)", "Bool", "no"),
            ("numeric", "Float64", "yes"),
            ("numeric", "Decimal(76, 10)", "yes"),
            ("numeric", "UInt256", "yes"),
        ];
        let mut wrong = Vec::new();
        for (pg, ch, want) in table {
            let got = verdict(pg, ch);
            if got != want {
                wrong.push(format!("{ch} into {pg}: {got}, want {want}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn lossy_columns_say_why_and_the_fix() {
        let Compat::Lossy(why, fix) = compatible(&planned("float8"), "Int64") else {
            panic!("Int64 into float8 is lossy");
        };
        assert!(why.contains("2^53"), "{why}");
        assert!(
            fix.contains("`type=int8`") && fix.contains("toFloat64(c)"),
            "{fix}"
        );
        let Compat::Lossy(_, fix) = compatible(&planned("float8"), "UInt64") else {
            panic!("UInt64 into float8 is lossy");
        };
        assert!(fix.contains("numeric(20,0)"), "{fix}");
        let Compat::Lossy(why, fix) = compatible(&planned("numeric(10,2)"), "Decimal(18, 6)")
        else {
            panic!("Decimal(18, 6) into numeric(10,2) is lossy");
        };
        assert!(why.contains("rounded"), "{why}");
        assert!(
            fix.contains("numeric(18,6)") && fix.contains("CAST(round(c, 2) AS Decimal(10, 2))"),
            "{fix}"
        );
    }

    #[test]
    fn settings_line_is_split_and_parsed() {
        let select = "SELECT\n    a\nFROM db.t\nSETTINGS limit = 0, bool_true_representation = 'true', format_tsv_null_representation = '\\\\N', additional_table_filters = {}";
        let (body, line) = split_settings(select);
        assert_eq!(body, "SELECT\n    a\nFROM db.t");
        let items = setting_items(line.unwrap()).unwrap();
        let names: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "limit",
                "bool_true_representation",
                "format_tsv_null_representation",
                "additional_table_filters"
            ]
        );
        assert_eq!(items[2].1, "'\\\\N'");
        // A SETTINGS word inside the SELECT is not the settings line.
        assert_eq!(split_settings("SELECT 1\nSETTINGS a = 1\nFROM t").1, None);
        assert_eq!(setting_items("a = 'x, y'"), None);
    }
}
