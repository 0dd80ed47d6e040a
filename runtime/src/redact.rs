//! Secrets out of every message: passwords in URLs and in libpq key=value strings, wherever
//! they stand in a text.

use crate::conninfo::key_value_items;

/// A connection string as it may be shown: the password of a URL (`scheme://user:pw@host`,
/// however its characters are written, `/`, `#`, `@` and all), and every query or key=value
/// parameter that is not known to be harmless (`password`, `sslpassword`, an endpoint's
/// `token`...), become `***`. When the form is unclear, more is hidden, never less.
pub fn redact_url(url: &str) -> String {
    // A `://` counts only after a scheme: a key=value string whose password holds `://` is
    // still key=value.
    let is_scheme = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    };
    match url.find("://").filter(|&i| is_scheme(&url[..i])) {
        Some(scheme_end) => redact_uri(url, scheme_end),
        None if url.contains('=') => redact_key_values(url),
        // Neither a URL nor key=value: a host name or the like, nothing to hide.
        None => url.to_string(),
    }
}

/// An error message as it may be shown: every URL in it through [`redact_url`], and the value
/// after any `password`/`sslpassword` key (`=` with or without spaces) hidden to the end of
/// its word, or of its quotes.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find("://") {
        // The URL starts at its scheme and ends at whitespace or a closing delimiter.
        let start = rest[..p]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
        let token_end = |from: usize| {
            rest[from..]
                .find(|c: char| c.is_whitespace() || "\"`<>)]".contains(c))
                .map_or(rest.len(), |i| from + i)
        };
        // A password typed without encoding may hold quotes or brackets: when a `user:` follows
        // the scheme and an `@` comes later in the word, all up to it is the userinfo. (A
        // URL cannot hold a space: no client would parse it, so none would print it.)
        let word_end = rest[p..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |i| p + i);
        let userinfo_end = rest[p + 3..word_end]
            .rfind('@')
            .filter(|&at| rest[p + 3..p + 3 + at].contains(':'))
            .map(|at| p + 3 + at);
        let end = token_end(userinfo_end.unwrap_or(p));
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    hide_password_values(&out)
}

/// `password=x`, `password = 'x y'`, `sslpassword: x` in free text -> `password=***`.
fn hide_password_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(k) = lower[i..].find("password") {
        let key_end = i + k + "password".len();
        let bytes = text.as_bytes();
        let mut j = key_end;
        while j < text.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < text.len() && (bytes[j] == b'=' || bytes[j] == b':') {
            j += 1;
            while j < text.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let value_end = if j < text.len() && bytes[j] == b'\'' {
                let mut e = j + 1;
                while e < text.len() && bytes[e] != b'\'' {
                    e += if bytes[e] == b'\\' { 2 } else { 1 };
                }
                (e + 1).min(text.len())
            } else {
                let mut e = j;
                while e < text.len() && !bytes[e].is_ascii_whitespace() {
                    e += if bytes[e] == b'\\' { 2 } else { 1 };
                }
                e.min(text.len())
            };
            out.push_str(&text[i..key_end]);
            out.push_str("=***");
            i = value_end;
            // A value may have been cut in a multi-byte character; move to a boundary.
            while i < text.len() && !text.is_char_boundary(i) {
                i += 1;
            }
        } else {
            out.push_str(&text[i..key_end]);
            i = key_end;
        }
    }
    out.push_str(&text[i..]);
    out
}

/// Query and key=value parameters shown as they are; every other value is hidden.
const SHOWN_PARAMS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "target_session_attrs",
    "channel_binding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "load_balance_hosts",
    "database",
    "default_format",
    "compress",
];

fn shown_param(key: &str) -> bool {
    SHOWN_PARAMS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

fn redact_uri(url: &str, scheme_end: usize) -> String {
    let head = &url[..scheme_end + 3];
    let rest = &url[scheme_end + 3..];
    // The userinfo ends at the last `@`: a password typed without percent-encoding may hold
    // `/`, `?`, `#` or `@` itself. An `@` later in the URL only hides more.
    let userinfo_at = rest.rfind('@').filter(|&at| {
        // Without a `:` it is a user name only if it looks like one; an `@` in the path or
        // the query (`?password=a@b`) is not the end of a userinfo.
        let u = &rest[..at];
        u.contains(':') || !u.contains(['/', '?', '#', '&', '='])
    });
    let (shown_user, after) = match userinfo_at {
        Some(at) => {
            let userinfo = &rest[..at];
            let shown = match userinfo.find(':') {
                // A user name with URL syntax in it means the `@` was not where the userinfo
                // ends: nothing of it is shown.
                Some(colon) if userinfo[..colon].contains(['/', '?', '#', '&', '=']) => {
                    "***@".to_string()
                }
                Some(colon) => format!("{}:***@", &userinfo[..colon]),
                None => format!("{userinfo}@"),
            };
            (shown, &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let (path, query) = match after.find('?') {
        Some(q) => (&after[..q], Some(&after[q + 1..])),
        None => (after, None),
    };
    let mut out = format!("{head}{shown_user}{path}");
    if let Some(query) = query {
        let (query, fragment) = match query.find('#') {
            Some(h) => (&query[..h], true),
            None => (query, false),
        };
        out.push('?');
        let mut hide_rest = false;
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| {
                let key = kv.split('=').next().unwrap_or("");
                if hide_rest || !kv.contains('=') {
                    // A bare word after a hidden value may be the rest of that value.
                    if hide_rest || !shown_param(key) {
                        return "***".to_string();
                    }
                }
                if shown_param(key) {
                    kv.to_string()
                } else {
                    // A hidden value may itself hold `&`: hide what follows too.
                    hide_rest = true;
                    format!("{key}=***")
                }
            })
            .collect();
        out.push_str(&parts.join("&"));
        if fragment {
            out.push_str("#***");
        }
    }
    out
}

/// libpq's `key = value` form. Hidden values are skipped by its quoting rules, so a quoted
/// password with spaces is hidden whole.
fn redact_key_values(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    for item in key_value_items(&chars) {
        out.extend(&chars[at..item.start]);
        let shown = shown_param(&item.key);
        match item.value {
            // A word of its own, shown only if harmless.
            None => out.push_str(if shown { &item.key } else { "***" }),
            Some((vs, ve)) if shown => {
                out.push_str(&item.key);
                out.push('=');
                out.extend(&chars[vs..ve]);
            }
            Some(_) => {
                out.push_str(&item.key);
                out.push_str("=***");
            }
        }
        at = item.end;
    }
    out.extend(&chars[at..]);
    out
}
