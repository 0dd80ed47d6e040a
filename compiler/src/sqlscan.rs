//! Hidden references: model tables named in SQL without `ref()`.
//!
//! The template source is scanned the way sqlparser's ClickHouse tokenizer reads it (Jinja
//! blanked out, so offsets still point into the file), but without building tokens: only
//! words, `.` and `(` are told apart, and a word's value is a slice of the file. A match is
//! `<database>.<model>` anywhere, or a bare `<model>` right after FROM, JOIN or IN; column
//! aliases, strings and comments never match, and a CTE named like a model shadows it.
//!
//! The scanner agrees with the tokenizer (sqlparser 0.59, `ClickHouseDialect`) on every input
//! it is tested on, down to the inputs the tokenizer refuses (an unterminated string, quoted
//! identifier, comment or dollar string, `._` after anything but a word): those give no
//! mentions, as they always did. `tests::same_mentions_as_the_sqlparser_tokenizer` holds it
//! to that on generated SQL.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Range;

use crate::diagnostic::{FileId, Finding};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub model: String,
    pub span: Range<usize>,
    /// Written as `<database>.<model>` (otherwise a bare table name).
    pub qualified: bool,
}

impl Mention {
    /// The `stir::hidden_ref` warning for this mention, at `span` of `file`; `reader` names
    /// what reads it ("model `m`", "request `r`", "a `sql` step of schedule `s`").
    pub fn finding(&self, file: FileId, span: Range<usize>, reader: &str) -> Finding {
        Finding::warning(
            "stir::hidden_ref",
            file,
            span,
            format!("{reader} reads `{}` without `ref()`", self.model),
        )
        .label("direct table reference")
        .help(format!(
            "write `{{{{ ref('{}') }}}}` so the dependency is declared and the table name follows the warehouse",
            self.model
        ))
    }
}

/// Replace Jinja tags with spaces, keeping every byte offset and newline.
pub fn blank_jinja(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    // From `{` to `{` (a fast search): tags are a small part of a template.
    while let Some(at) = source.get(i..).and_then(|rest| rest.find('{')) {
        i += at;
        if i + 1 >= bytes.len() {
            break;
        }
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

/// Find direct mentions of model tables in a template's source. `is_model` is asked only
/// about SQL identifiers (`[A-Za-z_][A-Za-z0-9_]*`, what model and database names are).
pub fn hidden_refs(source: &str, database: &str, is_model: &dyn Fn(&str) -> bool) -> Vec<Mention> {
    let sql = blank_jinja(source);
    scan(&sql, database, is_model).unwrap_or_default()
}

/// The keywords the rules look at (unquoted, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    None,
    As,
    From,
    In,
    Join,
}

/// A token as the rules see it; everything else is `Other`. Small (a word is its place), so
/// the stream of them costs no allocation and little copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Word {
        start: usize,
        end: usize,
        /// The quote of a quoted identifier (`"` or `` ` ``).
        quote: Option<u8>,
        /// A quoted identifier holding a doubled quote (its value is not a slice).
        doubled: bool,
        keyword: Keyword,
    },
    Period,
    LParen,
    Other,
}

impl Tok {
    fn keyword(&self) -> Keyword {
        match self {
            Tok::Word { keyword, .. } => *keyword,
            _ => Keyword::None,
        }
    }

    /// A word's value: its text, without the quotes, a doubled quote read as one.
    fn value<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        let Tok::Word {
            start,
            end,
            quote,
            doubled,
            ..
        } = *self
        else {
            return Cow::Borrowed("");
        };
        let Some(q) = quote else {
            return Cow::Borrowed(&sql[start..end]);
        };
        let inner = &sql[start + 1..end - 1];
        if doubled {
            let q = char::from(q).to_string();
            Cow::Owned(inner.replace(&q.repeat(2), &q))
        } else {
            Cow::Borrowed(inner)
        }
    }
}

/// The tokenizer refused the input (it is ClickHouse's to report at run time).
struct Refused;

/// The rules over the token stream, through a window of the previous token and the next
/// three: no token list is kept. CTE names are known only at the end, so bare mentions wait.
fn scan(
    sql: &str,
    database: &str,
    is_model: &dyn Fn(&str) -> bool,
) -> Result<Vec<Mention>, Refused> {
    let mut lexer = Lexer {
        sql,
        b: sql.as_bytes(),
        i: 0,
        last_word: false,
    };
    // A ring of five: the previous token, the current one and the next three.
    let mut ring: [Option<Tok>; 5] = [None; 5];
    for slot in ring.iter_mut().skip(1) {
        *slot = lexer.next()?;
    }
    let mut head = 0;
    let mut ctes: BTreeSet<Cow<str>> = BTreeSet::new();
    let mut found: Vec<(Mention, Option<Cow<str>>)> = Vec::new();
    while let Some(cur) = ring[(head + 1) % 5] {
        let at = |k: usize| ring[(head + k) % 5];
        let (prev, n1, n2, n3) = (at(0), at(2), at(3), at(4));
        if let Tok::Word {
            start, end, quote, ..
        } = cur
        {
            let next_is_dot = n1 == Some(Tok::Period);
            let prev_is_dot = prev == Some(Tok::Period);
            let cte = n1.map(|t| t.keyword()) == Some(Keyword::As) && n2 == Some(Tok::LParen);
            let after_table_keyword = matches!(
                prev.map(|t| t.keyword()),
                Some(Keyword::From | Keyword::Join | Keyword::In)
            );
            // Most words are none of these: their value is never looked at.
            let value = match cte || next_is_dot || after_table_keyword {
                true => cur.value(sql),
                false => Cow::Borrowed(""),
            };
            if cte {
                ctes.insert(value.clone());
            }
            if value == database && next_is_dot && !prev_is_dot {
                if let Some(m @ Tok::Word { end: m_end, .. }) = n2 {
                    let model = m.value(sql);
                    if is_model(&model) && n3 != Some(Tok::Period) {
                        let mention = Mention {
                            model: model.into_owned(),
                            span: start..m_end,
                            qualified: true,
                        };
                        found.push((mention, None));
                    }
                }
            } else if !(prev_is_dot || next_is_dot || quote.is_some_and(|q| q != b'`'))
                && after_table_keyword
                && is_model(&value)
            {
                let mention = Mention {
                    model: value.to_string(),
                    span: start..end,
                    qualified: false,
                };
                found.push((mention, Some(value)));
            }
        }
        ring[head] = lexer.next()?;
        head = (head + 1) % 5;
    }
    // CTE names shadow models: `with mart_x as (...) select ... from mart_x` is not a hidden ref.
    Ok(found
        .into_iter()
        .filter(|(_, bare)| bare.as_ref().is_none_or(|name| !ctes.contains(name)))
        .map(|(m, _)| m)
        .collect())
}

/// sqlparser's `Tokenizer::next_token` for the ClickHouse dialect, consuming exactly what it
/// consumes and failing where it fails, but keeping only words, `.` and `(`.
struct Lexer<'a> {
    sql: &'a str,
    b: &'a [u8],
    i: usize,
    /// The previous token (whitespace and comments included) was a word: `._` is then a `.`.
    last_word: bool,
}

/// `[A-Za-z0-9_]`, by table: the scan asks this of nearly every byte of a model.
const IDENT_PART: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_';
        c += 1;
    }
    t
};

#[inline(always)]
fn ident_part(c: u8) -> bool {
    IDENT_PART[usize::from(c)]
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    /// Consume `c` if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.sql.get(i..).and_then(|s| s.chars().next())
    }

    /// Consume characters while `keep` holds.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) {
        while let Some(c) = self.char_at(self.i) {
            if !keep(c) {
                break;
            }
            self.i += c.len_utf8();
        }
    }

    /// Digits, and `_` between them (ClickHouse's `1_000`): `_` counts when a hex digit follows.
    fn take_digits(&mut self, digit: fn(&u8) -> bool) {
        while let Some(c) = self.peek() {
            let separator = c == b'_' && self.peek_at(1).is_some_and(|n| n.is_ascii_hexdigit());
            if !(digit(&c) || separator) {
                break;
            }
            self.i += 1;
        }
    }

    /// The next token that is not whitespace or a comment; `None` at the end.
    #[inline(always)]
    fn next(&mut self) -> Result<Option<Tok>, Refused> {
        while let Some(&b) = self.b.get(self.i) {
            // Runs of blanks (most of a blanked template) without a token each.
            if matches!(b, b' ' | b'\t' | b'\n') {
                self.i += 1;
                self.last_word = false;
                continue;
            }
            // Words (most tokens) right here; `N'..'` and `X'..'` are strings, in `token`.
            if (b.is_ascii_alphabetic() || b == b'_')
                && !(matches!(b, b'N' | b'n' | b'X' | b'x') && self.peek_at(1) == Some(b'\''))
            {
                return Ok(Some(self.word()));
            }
            let tok = self.token(b)?;
            self.last_word = matches!(tok, Some(Tok::Word { .. }));
            if tok.is_some() {
                return Ok(tok);
            }
        }
        Ok(None)
    }

    /// One token starting with the byte `ascii`; `None` for whitespace and comments.
    fn token(&mut self, ascii: u8) -> Result<Option<Tok>, Refused> {
        let start = self.i;
        if !ascii.is_ascii() {
            let c = self.char_at(self.i).ok_or(Refused)?;
            self.i += c.len_utf8();
            return Ok(if c.is_whitespace() {
                None
            } else {
                Some(Tok::Other)
            });
        }
        self.i += 1;
        let tok = match ascii {
            b'N' | b'n' | b'X' | b'x' if self.peek() == Some(b'\'') => {
                self.string(b'\'')?;
                Tok::Other
            }
            b'\'' => {
                self.i = start;
                self.string(b'\'')?;
                Tok::Other
            }
            b'"' | b'`' => return self.quoted_ident(start, ascii).map(Some),
            b'0'..=b'9' | b'.' => {
                self.i = start;
                return self.number().map(Some);
            }
            b'(' => Tok::LParen,
            b'-' => match self.peek() {
                Some(b'-') => {
                    // To the end of the line, the `\n` included.
                    self.i = self.b[self.i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(self.b.len(), |p| self.i + p + 1);
                    return Ok(None);
                }
                Some(b'>') => {
                    self.i += 1;
                    self.eat(b'>');
                    Tok::Other
                }
                _ => Tok::Other,
            },
            b'/' => {
                if !self.eat(b'*') {
                    return Ok(Some(Tok::Other));
                }
                // Not nested in this dialect; unterminated is an error.
                let end = self.sql[self.i..].find("*/").ok_or(Refused)?;
                self.i += end + 2;
                return Ok(None);
            }
            b'|' => {
                if !self.eat(b'/') && self.eat(b'|') {
                    self.eat(b'/');
                }
                Tok::Other
            }
            b'=' => {
                let _ = self.eat(b'>') || self.eat(b'=');
                Tok::Other
            }
            b'!' => {
                if !(self.eat(b'=') || self.eat(b'!'))
                    && self.eat(b'~')
                    && !self.eat(b'*')
                    && self.eat(b'~')
                {
                    self.eat(b'*');
                }
                Tok::Other
            }
            b'<' => {
                if self.eat(b'=') {
                    self.eat(b'>');
                } else {
                    let _ = self.eat(b'>') || self.eat(b'<') || self.eat(b'@');
                }
                Tok::Other
            }
            b'>' => {
                let _ = self.eat(b'=') || self.eat(b'>');
                Tok::Other
            }
            b':' => {
                let _ = self.eat(b':') || self.eat(b'=');
                Tok::Other
            }
            b'&' => {
                self.eat(b'&');
                Tok::Other
            }
            b'^' => {
                self.eat(b'@');
                Tok::Other
            }
            b'~' => {
                if !self.eat(b'*') && self.eat(b'~') {
                    self.eat(b'*');
                }
                Tok::Other
            }
            b'#' => {
                if !self.eat(b'-') && self.eat(b'>') {
                    self.eat(b'>');
                }
                Tok::Other
            }
            b'@' => {
                let _ = self.eat(b'>') || self.eat(b'?') || self.eat(b'@');
                Tok::Other
            }
            b'?' => {
                self.take_while(char::is_numeric);
                Tok::Other
            }
            b'$' => {
                self.dollar()?;
                Tok::Other
            }
            c if c.is_ascii_whitespace() || c == b'\x0b' => {
                if c == b'\r' {
                    self.eat(b'\n');
                }
                return Ok(None);
            }
            _ => Tok::Other,
        };
        Ok(Some(tok))
    }

    /// A word: a letter or `_`, then letters, digits and `_`.
    #[inline(always)]
    fn word(&mut self) -> Tok {
        let start = self.i;
        self.i += 1 + self.b[self.i + 1..]
            .iter()
            .position(|&c| !ident_part(c))
            .unwrap_or(self.b.len() - self.i - 1);
        self.last_word = true;
        Tok::Word {
            start,
            end: self.i,
            quote: None,
            doubled: false,
            keyword: keyword(&self.b[start..self.i]),
        }
    }

    /// A string in `quote`s from its opening quote: `\` escapes the next character, a doubled
    /// quote is one quote.
    fn string(&mut self, quote: u8) -> Result<(), Refused> {
        self.i += 1;
        loop {
            let Some(c) = self.peek() else {
                return Err(Refused);
            };
            self.i += 1;
            if c == b'\\' {
                if let Some(next) = self.char_at(self.i) {
                    self.i += next.len_utf8();
                }
            } else if c == quote && !self.eat(quote) {
                return Ok(());
            }
        }
    }

    /// `"name"` or `` `name` ``: a doubled quote is one quote; no backslash escapes.
    fn quoted_ident(&mut self, start: usize, quote: u8) -> Result<Tok, Refused> {
        let mut doubled = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(Refused);
            };
            self.i += 1;
            if c == quote {
                if !self.eat(quote) {
                    break;
                }
                doubled = true;
            }
        }
        Ok(Tok::Word {
            start,
            end: self.i,
            quote: Some(quote),
            doubled,
            keyword: Keyword::None,
        })
    }

    /// A number, or `.`; sqlparser's rules with no numeric-prefix identifiers.
    fn number(&mut self) -> Result<Tok, Refused> {
        let start = self.i;
        if self.peek() == Some(b'.') && self.peek_at(1) == Some(b'_') {
            // `t._col`: a `.` after a word; anywhere else the tokenizer gives up.
            if !self.last_word {
                return Err(Refused);
            }
            self.i += 1;
            return Ok(Tok::Period);
        }
        self.take_digits(u8::is_ascii_digit);
        if &self.b[start..self.i] == b"0" && self.eat(b'x') {
            self.take_digits(u8::is_ascii_hexdigit);
            return Ok(Tok::Other);
        }
        let period = self.eat(b'.');
        let fraction = self.i;
        self.take_digits(u8::is_ascii_digit);
        if period && fraction == start + 1 && self.i == fraction {
            return Ok(Tok::Period);
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let mut k = 1;
            if matches!(self.peek_at(k), Some(b'+' | b'-')) {
                k += 1;
            }
            if self.peek_at(k).is_some_and(|c| c.is_ascii_digit()) {
                self.i += k;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
        }
        self.eat(b'L');
        Ok(Tok::Other)
    }

    /// After `$`: `$$...$$`, `$tag$...$tag$` (unterminated is an error), or a placeholder.
    fn dollar(&mut self) -> Result<(), Refused> {
        if self.eat(b'$') {
            let end = self.sql[self.i..].find("$$").ok_or(Refused)?;
            self.i += end + 2;
            return Ok(());
        }
        let tag_start = self.i;
        self.take_while(|c| c.is_alphanumeric() || c == '_');
        if self.eat(b'$') {
            let close = format!("${}$", &self.sql[tag_start..self.i - 1]);
            let end = self.sql[self.i..].find(&close).ok_or(Refused)?;
            self.i += end + close.len();
        }
        Ok(())
    }
}

fn keyword(word: &[u8]) -> Keyword {
    let is = |k: &[u8]| word.eq_ignore_ascii_case(k);
    match word.len() {
        2 if is(b"as") => Keyword::As,
        2 if is(b"in") => Keyword::In,
        4 if is(b"from") => Keyword::From,
        4 if is(b"join") => Keyword::Join,
        _ => Keyword::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        // Declared after the use, it still shadows (the whole file is one query).
        let src = "select * from mart_a, mart_a as (select 1)";
        assert!(hidden_refs(src, "dbt", &models).is_empty());
    }

    #[test]
    fn what_the_tokenizer_refuses_names_nothing() {
        for tail in [
            "'open", "\"open", "`open", "/* open", "$$ open", "$t$ open", " ._x",
        ] {
            let src = format!("select * from dbt.mart_a {tail}");
            assert_eq!(hidden_refs(&src, "dbt", &models), vec![], "{src}");
            assert_eq!(
                reference::hidden_refs(&src, "dbt", &models),
                vec![],
                "{src}"
            );
        }
        // `._` right after a word is a `.`.
        let src = "select t._x from dbt.mart_a t";
        assert_eq!(hidden_refs(src, "dbt", &models).len(), 1);
    }

    #[test]
    fn blanking_keeps_offsets() {
        let src = "a {{ ref('é') }} b";
        let b = blank_jinja(src);
        assert_eq!(b.len(), src.len());
        assert!(b.starts_with("a ") && b.ends_with(" b"));
    }

    /// Pieces of SQL that matter to a tokenizer: every quote, comment and number form, the
    /// operators that swallow the next character, Jinja remnants, Unicode spaces and letters.
    const PIECES: &[&str] = &[
        "from",
        "FROM",
        "From",
        "join",
        "JOIN",
        "in",
        "IN",
        "as",
        "AS",
        "with",
        "select",
        "dbt",
        "DBT",
        "\"dbt\"",
        "`dbt`",
        "mart_a",
        "mart_b",
        "stg_c",
        "x",
        "N",
        "n",
        "X",
        "\"mart_a\"",
        "`mart_a`",
        "`mart_b`",
        "\"a\"\"b\"",
        "`x``y`",
        "\"\"",
        "``",
        "other",
        "_x",
        "x1",
        ".",
        ".",
        "(",
        "(",
        ")",
        ",",
        ";",
        "*",
        "'mart_a'",
        "'it''s'",
        "'a\\'b'",
        "'\\\\'",
        "'\\",
        "N'x'",
        "n'",
        "X'ff'",
        "x'",
        "-- mart_a\n",
        "-- x",
        "--",
        "/* mart_a */",
        "/*",
        "*/",
        "/**/",
        "/*/",
        "$$",
        "$$ from mart_a $$",
        "$$$",
        "$t$ x $t$",
        "$t$",
        "$1",
        "$",
        "$é1",
        "?",
        "?12",
        "?1.5",
        "@",
        "@@",
        "@?",
        "@>",
        "#",
        "#-",
        "#--",
        "#>>",
        "# ",
        "->",
        "->>",
        "-",
        "=",
        "==",
        "=>",
        "!",
        "!=",
        "!~*",
        "!~~",
        "<=>",
        "<>",
        "<<",
        "<@",
        "<",
        ">",
        ">=",
        "::",
        ":=",
        ":",
        "|",
        "||",
        "||/",
        "|/",
        "&",
        "&&",
        "^@",
        "^",
        "~",
        "~*",
        "~~*",
        "%",
        "+",
        "/",
        "\\",
        "[",
        "]",
        "{",
        "}",
        "12mart_a",
        "1.5",
        ".5",
        "1.",
        "1.e5",
        "1e5",
        "1e+",
        "1E-3x",
        "0x",
        "0xff",
        "0xmart_a",
        "00x1",
        "12_abc",
        "12_mart_a",
        "1_000",
        "1__0",
        "1L",
        "._x",
        "._",
        "1._a",
        "..",
        "{{ ref('mart_a') }}",
        "{% if x %}",
        "{# c #}",
        "{{",
        "}}",
        "{%",
        "é",
        "日本",
        "\u{a0}",
        "\u{2028}",
        "\u{b}",
        "\u{c}",
        "\u{0}",
        "\u{7f}",
        "\u{85}",
        "\u{b2}",
        "\r",
        "\r\n",
        "\t",
        "\n",
        " ",
        "  ",
        "\"",
        "`",
        "'",
    ];

    fn sql() -> impl Strategy<Value = String> {
        // Whole mentions (and near misses) often enough that many inputs have some.
        let mention = prop::sample::select(vec![
            "from mart_a",
            "FROM `mart_b`",
            "join stg_c",
            "in mart_b",
            "dbt.mart_a",
            "`dbt`.mart_b",
            "\"dbt\".\"stg_c\"",
            "dbt.mart_a.col",
            "x.dbt.mart_a",
            "from \"mart_a\"",
            "mart_a as (",
            "from x.mart_a",
            "from\tmart_a",
            "from/* c */mart_b",
            "from -- c\nstg_c",
        ]);
        let piece = prop_oneof![
            3 => mention.prop_map(String::from),
            8 => prop::sample::select(PIECES).prop_map(String::from),
            1 => "[a-z_.()'\"`$ \\-]{1,5}",
        ];
        let sep = prop::sample::select(vec!["", "", " ", "\n"]);
        prop::collection::vec((piece, sep), 0..30)
            .prop_map(|parts| parts.into_iter().map(|(p, s)| p + s).collect())
    }

    /// The lean scanner finds exactly the mentions of the sqlparser tokenizer it replaced,
    /// and the generator is not vacuous: many inputs have mentions, many are refused.
    #[test]
    fn same_mentions_as_the_sqlparser_tokenizer() {
        use proptest::test_runner::{Config, TestRunner};
        use std::cell::Cell;
        let (with_mentions, refused) = (Cell::new(0u32), Cell::new(0u32));
        let cases = 20_000;
        let mut runner = TestRunner::new(Config {
            cases,
            ..Config::default()
        });
        let models_x = |n: &str| models(n) || matches!(n, "x" | "N" | "from" | "in" | "other");
        runner
            .run(&sql(), |sql| {
                for (db, is_model) in [("dbt", &models as &dyn Fn(&str) -> bool), ("x", &models_x)]
                {
                    let lean = hidden_refs(&sql, db, is_model);
                    let old = reference::hidden_refs(&sql, db, is_model);
                    prop_assert_eq!(&lean, &old, "{:?} (database {})", sql, db);
                    if db == "dbt" {
                        with_mentions.set(with_mentions.get() + u32::from(!lean.is_empty()));
                        refused.set(refused.get() + u32::from(reference::refused(&sql)));
                    }
                }
                Ok(())
            })
            .unwrap();
        assert!(
            with_mentions.get() > cases / 10,
            "{} of {cases} with mentions",
            with_mentions.get()
        );
        assert!(
            refused.get() > cases / 10,
            "{} of {cases} refused",
            refused.get()
        );
        assert!(
            refused.get() < cases / 10 * 9,
            "{} of {cases} refused",
            refused.get()
        );
    }

    /// Every SQL file in the repository (the shipped models, today's port, the cases), with
    /// every model name of the shipped manifest.
    #[test]
    fn same_mentions_as_the_sqlparser_tokenizer_on_the_repositorys_sql() {
        let files = crate::load::repository_files(".sql");
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        let is_model = |n: &str| names.iter().any(|m| m == n);
        let mut with_mentions = 0;
        for f in &files {
            let Ok(text) = std::fs::read_to_string(f) else {
                continue;
            };
            let lean = hidden_refs(&text, "dbt", &is_model);
            assert_eq!(
                lean,
                reference::hidden_refs(&text, "dbt", &is_model),
                "{}",
                f.display()
            );
            with_mentions += usize::from(!lean.is_empty());
        }
        assert!(
            files.len() > 150 && with_mentions > 0,
            "{} files, {with_mentions} with mentions",
            files.len()
        );
    }
}

/// The scan as it was, on sqlparser's tokenizer: the reference the lean scanner is held to.
#[cfg(test)]
mod reference {
    use std::collections::BTreeSet;

    use sqlparser::dialect::ClickHouseDialect;
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::{Token, Tokenizer};

    use super::{blank_jinja, Mention};

    pub fn refused(source: &str) -> bool {
        let sql = blank_jinja(source);
        Tokenizer::new(&ClickHouseDialect {}, &sql)
            .tokenize()
            .is_err()
    }

    pub fn hidden_refs(
        source: &str,
        database: &str,
        is_model: &dyn Fn(&str) -> bool,
    ) -> Vec<Mention> {
        let sql = blank_jinja(source);
        if !may_name_a_model(&sql, is_model) {
            return Vec::new();
        }
        let dialect = ClickHouseDialect {};
        let Ok(tokens) = Tokenizer::new(&dialect, &sql).tokenize_with_location() else {
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

    /// The cheap pre-filter the tokenizer path had.
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
}
