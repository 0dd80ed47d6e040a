//! Hidden references: model tables named in SQL without `ref()`.
//!
//! The template source is tokenized with sqlparser's ClickHouse dialect (Jinja blanked out, so
//! offsets still point into the file). A match is `<database>.<model>` anywhere, or a bare
//! `<model>` right after FROM, JOIN or IN; column aliases, strings and comments never match.

use std::collections::BTreeSet;
use std::ops::Range;

use sqlparser::dialect::ClickHouseDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub model: String,
    pub span: Range<usize>,
    /// Written as `<database>.<model>` (otherwise a bare table name).
    pub qualified: bool,
}

/// Replace Jinja tags with spaces, keeping every byte offset and newline.
pub fn blank_jinja(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let close: &[u8] = match (bytes[i], bytes[i + 1]) {
            (b'{', b'{') => b"}}",
            (b'{', b'%') => b"%}",
            (b'{', b'#') => b"#}",
            _ => {
                i += 1;
                continue;
            }
        };
        let end = bytes[i + 2..]
            .windows(2)
            .position(|w| w == close)
            .map_or(bytes.len(), |p| i + 2 + p + 2);
        for b in &mut out[i..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        i = end;
    }
    // Only whole multi-byte characters were replaced (by spaces), so this stays UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Cheap pre-filter for [`hidden_refs`]: false only when no identifier the tokenizer could
/// produce names a model, so skipping the tokenizer then changes nothing.
///
/// Model names are SQL identifiers (ASCII letters, digits, `_`), and every mention is a Word
/// token whose value passes `is_model`. In the ClickHouse dialect an unquoted word is a whole
/// run of `[A-Za-z0-9_]`, or (after a number) a suffix of a run that starts with a digit; a
/// quoted identifier whose value is such a name sits between its quotes as a whole run. So
/// checking every run, and every letter-started suffix of digit-started runs, covers them all.
fn may_name_a_model(sql: &str, is_model: &dyn Fn(&str) -> bool) -> bool {
    let b = sql.as_bytes();
    let part = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if !part(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && part(b[i]) {
            i += 1;
        }
        // Every byte in start..i is ASCII, so both ends are char boundaries.
        if b[start].is_ascii_digit() {
            if (start..i).any(|k| !b[k].is_ascii_digit() && is_model(&sql[k..i])) {
                return true;
            }
        } else if is_model(&sql[start..i]) {
            return true;
        }
    }
    false
}

/// Find direct mentions of model tables in a template's source.
pub fn hidden_refs(source: &str, database: &str, is_model: &dyn Fn(&str) -> bool) -> Vec<Mention> {
    let sql = blank_jinja(source);
    // Most files name no model outside Jinja: skip the tokenizer for them.
    if !may_name_a_model(&sql, is_model) {
        return Vec::new();
    }
    let dialect = ClickHouseDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, &sql).tokenize_with_location() else {
        // An untokenizable file is ClickHouse's problem to report at run time; no guesses here.
        return Vec::new();
    };
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |line: u64, col: u64| -> usize {
        let Some(&start) = line_starts.get((line as usize).saturating_sub(1)) else {
            return sql.len();
        };
        let rest = &sql[start..];
        rest.char_indices()
            .nth((col as usize).saturating_sub(1))
            .map_or(sql.len(), |(i, _)| start + i)
    };
    let toks: Vec<_> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let word = |i: usize| -> Option<&sqlparser::tokenizer::Word> {
        match toks.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) => Some(w),
            _ => None,
        }
    };
    // CTE names shadow models: `with mart_x as (...) select ... from mart_x` is not a hidden ref.
    let mut ctes = BTreeSet::new();
    for i in 0..toks.len() {
        if let (Some(w), Some(Token::Word(as_kw)), Some(Token::LParen)) = (
            word(i),
            toks.get(i + 1).map(|t| &t.token),
            toks.get(i + 2).map(|t| &t.token),
        ) {
            if as_kw.keyword == Keyword::AS {
                ctes.insert(w.value.clone());
            }
        }
    }
    let mut out = Vec::new();
    for i in 0..toks.len() {
        let Some(w) = word(i) else { continue };
        let next_is_dot = matches!(toks.get(i + 1).map(|t| &t.token), Some(Token::Period));
        let prev_is_dot = i > 0 && matches!(toks[i - 1].token, Token::Period);
        if w.value == database && next_is_dot && !prev_is_dot {
            if let Some(m) = word(i + 2) {
                if is_model(&m.value)
                    && !matches!(toks.get(i + 3).map(|t| &t.token), Some(Token::Period))
                {
                    let start = offset(toks[i].span.start.line, toks[i].span.start.column);
                    let end = offset(toks[i + 2].span.end.line, toks[i + 2].span.end.column);
                    out.push(Mention {
                        model: m.value.clone(),
                        span: start..end,
                        qualified: true,
                    });
                }
            }
            continue;
        }
        if prev_is_dot || next_is_dot || w.quote_style.is_some() && w.quote_style != Some('`') {
            continue;
        }
        let after_table_keyword = i > 0
            && matches!(&toks[i - 1].token, Token::Word(k) if matches!(k.keyword, Keyword::FROM | Keyword::JOIN | Keyword::IN));
        if after_table_keyword && is_model(&w.value) && !ctes.contains(&w.value) {
            let start = offset(toks[i].span.start.line, toks[i].span.start.column);
            let end = offset(toks[i].span.end.line, toks[i].span.end.column);
            out.push(Mention {
                model: w.value.clone(),
                span: start..end,
                qualified: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models(n: &str) -> bool {
        matches!(n, "mart_a" | "mart_b" | "stg_c")
    }

    #[test]
    fn finds_qualified_and_bare_tables_only() {
        let src = "with x as (select 1 mart_a from {{ ref('mart_b') }})\n\
                   select mart_a, 'dbt.mart_a' s -- dbt.mart_b\n\
                   from dbt.mart_a join stg_c on 1 where y in mart_b and z = dbt.mart_b.col";
        let found = hidden_refs(src, "dbt", &models);
        let names: Vec<_> = found
            .iter()
            .map(|m| (m.model.as_str(), &src[m.span.clone()], m.qualified))
            .collect();
        assert_eq!(
            names,
            vec![
                ("mart_a", "dbt.mart_a", true),
                ("stg_c", "stg_c", false),
                ("mart_b", "mart_b", false)
            ]
        );
    }

    #[test]
    fn cte_named_like_a_model_is_not_a_ref() {
        let src = "with mart_a as (select 1) select * from mart_a";
        assert!(hidden_refs(src, "dbt", &models).is_empty());
    }

    #[test]
    fn prefilter_keeps_every_mention() {
        let cases = [
            "select * from {{ ref('mart_a') }}",
            "select 1 from dbt.mart_a",
            "select 1 from \"dbt\".\"mart_b\"",
            "select 1 from `stg_c`",
            "select 1 from x where y in mart_b",
            "select 12mart_a from t",
            "select 'mart_a' from t -- mart_b",
        ];
        for src in cases {
            let sql = blank_jinja(src);
            if !hidden_refs_unfiltered(&sql, "dbt", &models).is_empty() {
                assert!(may_name_a_model(&sql, &models), "{src}");
            }
        }
        assert!(!may_name_a_model(&blank_jinja(cases[0]), &models));
    }

    /// The tokenizer path alone, for comparing against the pre-filter.
    fn hidden_refs_unfiltered(
        sql: &str,
        db: &str,
        is_model: &dyn Fn(&str) -> bool,
    ) -> Vec<Mention> {
        // Every word counts as a possible model, so the pre-filter always passes; then the
        // real predicate decides inside.
        let found = hidden_refs(sql, db, &|n: &str| {
            n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || is_model(n)
        });
        found.into_iter().filter(|m| is_model(&m.model)).collect()
    }

    #[test]
    fn blanking_keeps_offsets() {
        let src = "a {{ ref('é') }} b";
        let b = blank_jinja(src);
        assert_eq!(b.len(), src.len());
        assert!(b.starts_with("a ") && b.ends_with(" b"));
    }
}
