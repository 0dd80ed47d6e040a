//! SQL quoting, in one place for the compiler (which writes the plan's statements) and the
//! runtime (which writes the few statements it builds at run time).

/// A ClickHouse identifier, in backticks unless plain (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn ch_ident(s: &str) -> String {
    if is_plain(s) {
        s.to_string()
    } else {
        format!("`{}`", s.replace('\\', "\\\\").replace('`', "\\`"))
    }
}

fn is_plain(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A `db.table` name as ClickHouse identifiers (`` `db`.`t` `` where either needs quoting).
pub fn ch_qualified(table: &str) -> String {
    match table.split_once('.') {
        Some((db, t)) => format!("{}.{}", ch_ident(db), ch_ident(t)),
        None => ch_ident(table),
    }
}

/// The inside of a single-quoted ClickHouse string literal.
pub fn ch_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// A single-quoted ClickHouse string literal.
pub fn ch_literal(s: &str) -> String {
    format!("'{}'", ch_escape(s))
}

/// A PostgreSQL identifier, always double-quoted.
pub fn pg_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn pg_qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", pg_ident(schema), pg_ident(table))
}

/// A single-quoted PostgreSQL string literal (standard_conforming_strings, on since 9.1).
pub fn pg_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_bare_only_when_plain() {
        assert_eq!(ch_ident("db_1"), "db_1");
        assert_eq!(ch_ident(""), "``");
        assert_eq!(ch_ident("1x"), "`1x`");
        assert_eq!(ch_ident("a`b\\c"), "`a\\`b\\\\c`");
        assert_eq!(ch_literal("it's \\"), "'it\\'s \\\\'");
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(pg_qualified("s", "t"), "\"s\".\"t\"");
        assert_eq!(pg_literal("it's"), "'it''s'");
    }

    /// Each part of a `db.table` name is quoted on its own, and only when it needs it.
    #[test]
    fn qualified_names_quote_each_part() {
        assert_eq!(ch_qualified("dbt.mart_x"), "dbt.mart_x");
        assert_eq!(ch_qualified("raw-db.t`1"), "`raw-db`.`t\\`1`");
        assert_eq!(ch_qualified("events"), "events");
        assert_eq!(ch_qualified("my table"), "`my table`");
    }
}
