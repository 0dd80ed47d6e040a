//! Just enough Python to read Airflow DAG files without running them: tokens, and the call
//! expressions, literals and `>>` chains a DAG file is made of. Anything else is kept as
//! `Expr::Other` with its text, so an unknown construct is reported, never guessed at.

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Name(String),
    /// A string literal's value (escapes applied unless raw); `f` for an f-string.
    Str {
        value: String,
        f: bool,
    },
    Num(String),
    Op(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
    /// Indentation of the token's line (for `def` bodies).
    pub indent: usize,
}

/// Tokens of a Python file; comments and line structure dropped (each token keeps its line).
pub fn tokens(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut indent = 0;
    let mut at_line_start = true;
    while i < b.len() {
        let c = b[i];
        if at_line_start {
            let s = i;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            indent = i - s;
            at_line_start = false;
            continue;
        }
        match c {
            b'\n' => {
                line += 1;
                i += 1;
                at_line_start = true;
            }
            b' ' | b'\t' | b'\r' | b'\\' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'0'..=b'9' => {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Num(src[s..i].to_string()),
                    line,
                    indent,
                });
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &src[s..i];
                let is_prefix = word.len() <= 2
                    && word
                        .chars()
                        .all(|ch| matches!(ch.to_ascii_lowercase(), 'r' | 'b' | 'f' | 'u'));
                if is_prefix && i < b.len() && (b[i] == b'\'' || b[i] == b'"') {
                    let lower = word.to_ascii_lowercase();
                    let start_line = line;
                    let (value, next, lines) = string(src, i, lower.contains('r'));
                    line += lines;
                    i = next;
                    out.push(Token {
                        tok: Tok::Str {
                            value,
                            f: lower.contains('f'),
                        },
                        line: start_line,
                        indent,
                    });
                } else {
                    out.push(Token {
                        tok: Tok::Name(word.to_string()),
                        line,
                        indent,
                    });
                }
            }
            b'\'' | b'"' => {
                let start_line = line;
                let (value, next, lines) = string(src, i, false);
                line += lines;
                i = next;
                out.push(Token {
                    tok: Tok::Str { value, f: false },
                    line: start_line,
                    indent,
                });
            }
            _ => {
                let two = src.get(i..i + 2).unwrap_or("");
                let op = if matches!(
                    two,
                    ">>" | "<<" | "<=" | ">=" | "==" | "!=" | "**" | "//" | "->" | ":="
                ) {
                    two.to_string()
                } else {
                    let ch = src[i..].chars().next().unwrap_or(' ');
                    ch.to_string()
                };
                i += op.len();
                out.push(Token {
                    tok: Tok::Op(op),
                    line,
                    indent,
                });
            }
        }
    }
    out
}

/// A string literal at `i` (its opening quote): value, the index after it, newlines inside.
fn string(src: &str, i: usize, raw: bool) -> (String, usize, usize) {
    let b = src.as_bytes();
    let q = b[i];
    let triple = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    let mut value = String::new();
    let mut lines = 0;
    while j < b.len() {
        if triple {
            if b[j] == q && b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q) {
                return (value, j + 3, lines);
            }
        } else if b[j] == q || b[j] == b'\n' {
            return (value, j + 1, lines);
        }
        if b[j] == b'\\' && j + 1 < b.len() {
            let n = b[j + 1];
            if raw {
                value.push('\\');
                value.push(n as char);
            } else {
                match n {
                    b'n' => value.push('\n'),
                    b't' => value.push('\t'),
                    b'\n' => lines += 1,
                    _ => value.push(n as char),
                }
            }
            if n == b'\n' && raw {
                lines += 1;
            }
            j += 2;
            continue;
        }
        let ch = src[j..].chars().next().unwrap_or(' ');
        if ch == '\n' {
            lines += 1;
        }
        value.push(ch);
        j += ch.len_utf8();
    }
    (value, j, lines)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    /// An f-string: its text with the `{...}` placeholders left in.
    FStr(String),
    Num(String),
    /// A name or dotted name (`dt.timedelta`, `True`, `None`).
    Name(String),
    List(Vec<Expr>),
    /// `{key: value, ...}` (keys as expressions).
    Dict(Vec<(Expr, Expr)>),
    Call(Call),
    /// Anything this reader does not model, as source-ish text.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The dotted name called (`DAG`, `dt.timedelta`).
    pub func: String,
    pub args: Vec<Expr>,
    pub kwargs: Vec<(String, Expr)>,
    pub line: usize,
}

impl Call {
    pub fn kw(&self, name: &str) -> Option<&Expr> {
        self.kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl Expr {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Expr::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The last part of a dotted name (`dt.timedelta` -> `timedelta`).
    pub fn short(name: &str) -> &str {
        name.rsplit('.').next().unwrap_or(name)
    }
}

/// Expressions nested deeper than this are skipped whole (read as `Other`), so a hostile DAG
/// file cannot overflow the stack; real DAG files nest a few levels.
pub const MAX_NESTING: usize = 64;

/// An expression parser over tokens; `pos` moves past what it reads.
pub struct Parser<'t> {
    pub toks: &'t [Token],
    pub pos: usize,
    depth: usize,
}

impl<'t> Parser<'t> {
    pub fn new(toks: &'t [Token]) -> Self {
        Parser {
            toks,
            pos: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if o == op)
    }

    /// One expression: an atom with its trailers, then whatever binary or conditional
    /// operators follow up to a `,`, `)`, `]`, `}`, `:` or `>>` at this depth (kept as Other).
    pub fn expr(&mut self) -> Expr {
        if self.depth >= MAX_NESTING {
            // Skip one whole unit without recursing.
            if matches!(self.peek(), Some(Tok::Op(o)) if matches!(o.as_str(), "(" | "[" | "{")) {
                self.skip_group();
            } else {
                self.pos += 1;
            }
            return Expr::Other("(nested too deeply)".into());
        }
        self.depth += 1;
        let e = self.expr_at_depth();
        self.depth -= 1;
        e
    }

    fn expr_at_depth(&mut self) -> Expr {
        let first = self.postfix();
        let mut extra = false;
        while let Some(t) = self.peek() {
            match t {
                Tok::Op(o)
                    if matches!(o.as_str(), "," | ")" | "]" | "}" | ":" | ">>" | "<<" | "=") =>
                {
                    break
                }
                Tok::Op(o) if matches!(o.as_str(), "(" | "[" | "{") => {
                    self.skip_group();
                    extra = true;
                }
                Tok::Name(n) if n == "as" => break,
                _ => {
                    self.pos += 1;
                    extra = true;
                }
            }
        }
        if extra {
            Expr::Other(format!("{first:?}…"))
        } else {
            first
        }
    }

    fn skip_group(&mut self) {
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            if let Tok::Op(o) = t {
                match o.as_str() {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth -= 1,
                    _ => {}
                }
            }
            self.pos += 1;
            if depth <= 0 {
                return;
            }
        }
    }

    /// One atom with its trailers (`.name`, calls, subscripts): a call and nothing after it.
    pub fn postfix(&mut self) -> Expr {
        let line = self.toks.get(self.pos).map_or(0, |t| t.line);
        let mut e = self.atom();
        loop {
            if self.is_op(".") {
                if let Some(Tok::Name(n)) = self.toks.get(self.pos + 1).map(|t| &t.tok) {
                    let n = n.clone();
                    self.pos += 2;
                    e = match e {
                        Expr::Name(base) => Expr::Name(format!("{base}.{n}")),
                        other => Expr::Other(format!("{other:?}.{n}")),
                    };
                    continue;
                }
                break;
            }
            if self.is_op("(") {
                self.pos += 1;
                let (args, kwargs) = self.arguments();
                e = match e {
                    Expr::Name(func) => Expr::Call(Call {
                        func,
                        args,
                        kwargs,
                        line,
                    }),
                    other => Expr::Other(format!("{other:?}(…)")),
                };
                continue;
            }
            if self.is_op("[") {
                self.skip_group();
                e = Expr::Other(format!("{e:?}[…]"));
                continue;
            }
            break;
        }
        e
    }

    fn arguments(&mut self) -> (Vec<Expr>, Vec<(String, Expr)>) {
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some(Tok::Op(o)) if o == ")" => {
                    self.pos += 1;
                    break;
                }
                Some(Tok::Op(o)) if o == "," => {
                    self.pos += 1;
                }
                Some(Tok::Op(o)) if o == "*" || o == "**" => {
                    self.pos += 1;
                    let e = self.expr();
                    args.push(Expr::Other(format!("*{e:?}")));
                }
                Some(Tok::Name(n)) if matches!(self.toks.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Op(o)) if o == "=") =>
                {
                    let n = n.clone();
                    self.pos += 2;
                    kwargs.push((n, self.expr()));
                }
                _ => {
                    let before = self.pos;
                    args.push(self.expr());
                    if self.pos == before {
                        self.pos += 1;
                    }
                }
            }
        }
        (args, kwargs)
    }

    fn atom(&mut self) -> Expr {
        let Some(t) = self.peek().cloned() else {
            return Expr::Other(String::new());
        };
        self.pos += 1;
        match t {
            Tok::Name(n) => Expr::Name(n),
            Tok::Num(n) => Expr::Num(n),
            Tok::Str { value, f } => {
                // Adjacent literals concatenate.
                let mut value = value;
                let mut any_f = f;
                while let Some(Tok::Str { value: v, f }) = self.peek().cloned() {
                    value.push_str(&v);
                    any_f |= f;
                    self.pos += 1;
                }
                if any_f {
                    Expr::FStr(value)
                } else {
                    Expr::Str(value)
                }
            }
            Tok::Op(o) if o == "[" || o == "(" => {
                let close = if o == "[" { "]" } else { ")" };
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        None => break,
                        Some(Tok::Op(c)) if c == close => {
                            self.pos += 1;
                            break;
                        }
                        Some(Tok::Op(c)) if c == "," => self.pos += 1,
                        _ => {
                            let before = self.pos;
                            items.push(self.expr());
                            if self.pos == before {
                                self.pos += 1;
                            }
                        }
                    }
                }
                if o == "(" && items.len() == 1 {
                    items.pop().unwrap_or(Expr::Other(String::new()))
                } else {
                    Expr::List(items)
                }
            }
            Tok::Op(o) if o == "{" => {
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        None => break,
                        Some(Tok::Op(c)) if c == "}" => {
                            self.pos += 1;
                            break;
                        }
                        Some(Tok::Op(c)) if c == "," => self.pos += 1,
                        _ => {
                            let before = self.pos;
                            let k = self.expr();
                            if self.is_op(":") {
                                self.pos += 1;
                                let v = self.expr();
                                items.push((k, v));
                            }
                            if self.pos == before {
                                self.pos += 1;
                            }
                        }
                    }
                }
                Expr::Dict(items)
            }
            Tok::Op(o) => Expr::Other(o),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_skipped_not_recursed() {
        let src = format!(
            "DAG(dag_id='d', tags={}{}, x=1)",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let toks = tokens(&src);
        // A small stack, as a helper thread might have: the parse must not need more.
        let call = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || Parser::new(&toks).postfix())
            .unwrap()
            .join()
            .unwrap();
        let Expr::Call(c) = call else { panic!() };
        assert_eq!(c.kw("dag_id"), Some(&Expr::Str("d".into())));
        assert_eq!(c.kw("x"), Some(&Expr::Num("1".into())));
    }

    #[test]
    fn reads_calls_literals_and_kwargs() {
        let src = "with DAG(\n  dag_id=\"d\", # c\n  schedule_interval='*/5 * * * *',\n  dagrun_timeout=dt.timedelta(minutes=90),\n  tags=['a', \"b\"],\n) as dag:\n    x = BashOperator(task_id='t', bash_command=f\"dbt run -s {sel}\" ' --x')\n";
        let toks = tokens(src);
        let mut p = Parser::new(&toks);
        p.pos = 1;
        let Expr::Call(dag) = p.expr() else { panic!() };
        assert_eq!(dag.func, "DAG");
        assert_eq!(dag.kw("dag_id"), Some(&Expr::Str("d".into())));
        assert_eq!(
            dag.kw("schedule_interval").and_then(Expr::as_str),
            Some("*/5 * * * *")
        );
        let Some(Expr::Call(td)) = dag.kw("dagrun_timeout") else {
            panic!()
        };
        assert_eq!(td.func, "dt.timedelta");
        assert_eq!(td.kw("minutes"), Some(&Expr::Num("90".into())));
        assert_eq!(
            dag.kw("tags"),
            Some(&Expr::List(vec![
                Expr::Str("a".into()),
                Expr::Str("b".into())
            ]))
        );
        let at = toks
            .iter()
            .position(|t| t.tok == Tok::Name("BashOperator".into()))
            .unwrap();
        p.pos = at;
        let Expr::Call(op) = p.expr() else { panic!() };
        assert_eq!(op.line, 7);
        assert_eq!(
            op.kw("bash_command"),
            Some(&Expr::FStr("dbt run -s {sel} --x".into()))
        );
    }
}
