//! PostgreSQL column types as stir understands them, shared by `stir check` (what a sync may
//! declare) and the runtime (what the live table and ClickHouse's types must agree with).

pub const PG_TYPE_NAMES: &[&str] = &[
    "text",
    "varchar",
    "char",
    "int2",
    "int4",
    "int8",
    "smallint",
    "integer",
    "int",
    "bigint",
    "float4",
    "float8",
    "real",
    "double precision",
    "numeric",
    "decimal",
    "boolean",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
    "jsonb",
    "json",
    "uuid",
    "bytea",
];

/// A PostgreSQL type in canonical form (`bigint` -> `int8`), or None when unknown.
pub fn normalize_pg_type(t: &str) -> Option<String> {
    let lower = t.trim().to_ascii_lowercase();
    let lower = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(inner) = lower.strip_suffix("[]") {
        return normalize_pg_type(inner)
            .filter(|i| !i.ends_with("[]"))
            .map(|i| format!("{i}[]"));
    }
    let (base, args) = match lower.split_once('(') {
        Some((b, rest)) => (
            b.trim().to_string(),
            Some(rest.strip_suffix(')')?.to_string()),
        ),
        None => (lower.clone(), None),
    };
    let canonical = match base.as_str() {
        "text" => "text",
        "varchar" | "character varying" => "varchar",
        "char" | "character" => "char",
        "int2" | "smallint" => "int2",
        "int4" | "integer" | "int" => "int4",
        "int8" | "bigint" => "int8",
        "float4" | "real" => "float4",
        "float8" | "double precision" | "float" => "float8",
        "numeric" | "decimal" => "numeric",
        "boolean" | "bool" => "boolean",
        "date" => "date",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "jsonb" => "jsonb",
        "json" => "json",
        "uuid" => "uuid",
        "bytea" => "bytea",
        _ => return None,
    };
    match args {
        None => Some(canonical.to_string()),
        Some(a) => {
            let parts: Vec<&str> = a.split(',').map(str::trim).collect();
            let nums_ok = parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()));
            let arity_ok = match canonical {
                "varchar" | "char" => parts.len() == 1,
                "numeric" => parts.len() == 1 || parts.len() == 2,
                _ => false,
            };
            (nums_ok && arity_ok).then(|| format!("{canonical}({})", parts.join(",")))
        }
    }
}

/// What a PostgreSQL column accepts from ClickHouse, as `ExportColumn.clickhouse_types`
/// entries (empty: any type): a family (`Int` matches `Int64`), an exact name (`Int32`),
/// `Decimal(p,s)` (a Decimal with at most s decimals) or `Decimal(p)` (at most p digits in
/// all). Nothing that would be rounded silently is listed: a float8 holds integers up to 2^53,
/// so Int64 is not listed, and `numeric(12,2)` takes no Decimal(18,6). A value too large for
/// its column is another matter: COPY refuses it, loudly (an integer out of range, a numeric
/// field overflow), so narrower integer and numeric columns take every integer and every
/// Decimal of their scale; the fix a user would reach for in ClickHouse (`toInt32`) wraps
/// around silently. docs/manifest.md
/// has the table.
pub fn clickhouse_types(pg_type: &str) -> Vec<String> {
    let base = pg_type.split('(').next().unwrap_or(pg_type);
    let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if pg_type.ends_with("[]") {
        return list(&["Array"]);
    }
    match base {
        // Bool is converted to 0/1 by the runtime (TabSeparated writes `true`).
        "int2" | "int4" | "int8" => list(&["Int", "UInt", "Bool"]),
        "float4" => list(&["Float32", "Int8", "Int16", "UInt8", "UInt16", "Decimal(6)"]),
        "float8" => list(&[
            "Float",
            "Int8",
            "Int16",
            "Int32",
            "UInt8",
            "UInt16",
            "UInt32",
            "Decimal(15)",
        ]),
        "numeric" => match numeric_typmod(pg_type) {
            // Unconstrained numeric stores the decimal text as written, floats included.
            None => list(&["Float", "Int", "UInt", "Decimal"]),
            // Too many integer digits fail the load loudly (`numeric field overflow`), as an
            // integer out of range does; only more decimals than `s` would be rounded.
            Some((p, s)) => vec!["Int".into(), "UInt".into(), format!("Decimal({p},{s})")],
        },
        "boolean" => list(&["Bool", "UInt"]),
        "date" => list(&["Date", "DateTime"]),
        "timestamp" | "timestamptz" => list(&["DateTime", "Date"]),
        // Exported through toJSONString: Maps, Arrays and Tuples become JSON values.
        "jsonb" | "json" => list(&["Map", "Array", "Tuple", "JSON", "Object"]),
        "uuid" => list(&["UUID", "String", "FixedString"]),
        "bytea" => list(&["String", "FixedString"]),
        _ => Vec::new(),
    }
}

/// `numeric(p,s)` -> (p, s); `numeric(p)` -> (p, 0); `numeric` -> None.
fn numeric_typmod(pg_type: &str) -> Option<(u32, u32)> {
    let args = pg_type.strip_prefix("numeric(")?.strip_suffix(')')?;
    let mut it = args.split(',').map(|a| a.trim().parse::<u32>());
    let p = it.next()?.ok()?;
    let s = match it.next() {
        Some(s) => s.ok()?,
        None => 0,
    };
    Some((p, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling PostgreSQL accepts for a type stir knows becomes its one canonical name;
    /// typmods are kept only where they mean something, arrays only one level deep.
    #[test]
    fn every_alias_has_one_canonical_name() {
        let cases = [
            ("text", "text"),
            ("varchar", "varchar"),
            ("character varying", "varchar"),
            ("char", "char"),
            ("character", "char"),
            ("int2", "int2"),
            ("smallint", "int2"),
            ("int4", "int4"),
            ("integer", "int4"),
            ("int", "int4"),
            ("int8", "int8"),
            ("BigInt", "int8"),
            ("float4", "float4"),
            ("real", "float4"),
            ("float8", "float8"),
            ("double   precision", "float8"),
            ("float", "float8"),
            ("numeric", "numeric"),
            ("decimal", "numeric"),
            ("boolean", "boolean"),
            ("bool", "boolean"),
            ("date", "date"),
            ("timestamp", "timestamp"),
            ("timestamp without time zone", "timestamp"),
            ("timestamptz", "timestamptz"),
            ("timestamp with time zone", "timestamptz"),
            ("jsonb", "jsonb"),
            ("json", "json"),
            ("uuid", "uuid"),
            ("bytea", "bytea"),
            (" numeric(12, 2) ", "numeric(12,2)"),
            ("numeric(9)", "numeric(9)"),
            ("varchar(64)", "varchar(64)"),
            ("char(3)", "char(3)"),
            ("int8[]", "int8[]"),
            ("varchar(8)[]", "varchar(8)[]"),
        ];
        for (written, canonical) in cases {
            assert_eq!(
                normalize_pg_type(written).as_deref(),
                Some(canonical),
                "{written}"
            );
        }
        for bad in [
            "strng",
            "int8(3)",
            "numeric(a)",
            "numeric(1,2,3)",
            "numeric(12345)",
            "numeric()",
            "text[][]",
            "varchar(1,2)",
            "",
        ] {
            assert_eq!(normalize_pg_type(bad), None, "{bad}");
        }
    }

    /// What each column type takes from ClickHouse (docs/manifest.md's table).
    #[test]
    fn each_type_takes_what_it_holds_without_rounding() {
        let takes = |t: &str| clickhouse_types(t).join(" ");
        assert_eq!(takes("int8"), "Int UInt Bool");
        assert_eq!(
            takes("float4"),
            "Float32 Int8 Int16 UInt8 UInt16 Decimal(6)"
        );
        assert_eq!(
            takes("float8"),
            "Float Int8 Int16 Int32 UInt8 UInt16 UInt32 Decimal(15)"
        );
        assert_eq!(takes("numeric"), "Float Int UInt Decimal");
        assert_eq!(takes("numeric(12,2)"), "Int UInt Decimal(12,2)");
        assert_eq!(takes("numeric(9)"), "Int UInt Decimal(9,0)");
        assert_eq!(takes("boolean"), "Bool UInt");
        assert_eq!(takes("date"), "Date DateTime");
        assert_eq!(takes("timestamptz"), "DateTime Date");
        assert_eq!(takes("jsonb"), "Map Array Tuple JSON Object");
        assert_eq!(takes("uuid"), "UUID String FixedString");
        assert_eq!(takes("bytea"), "String FixedString");
        assert_eq!(takes("int4[]"), "Array");
        assert_eq!(takes("text"), "", "text takes any type");
    }
}
