//! Who may write through the console. Reading needs nothing; a write ("Run now") needs the
//! operator's token (`STIR_CONSOLE_TOKEN`), given once on the login page (then an HttpOnly,
//! SameSite=Strict cookie holding a digest of it, never the token) or as
//! `Authorization: Bearer` (scripts). Cross-site requests are refused three ways: the cookie is
//! not sent cross-site, a foreign `Origin`/`Sec-Fetch-Site` is refused, and every form carries
//! a CSRF field the page got from this server. No token set: the console is read-only.

use axum::http::{header, HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

/// The cookie that says "this browser gave the token".
pub const COOKIE: &str = "stir_console";

/// The token's derived values; the token itself is not kept.
#[derive(Clone)]
pub struct Token {
    session: [u8; 32],
    csrf: String,
    bearer: [u8; 32],
}

fn digest(purpose: &str, value: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"stir-console\0");
    h.update(purpose.as_bytes());
    h.update(b"\0");
    h.update(value.as_bytes());
    h.finalize().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Equal in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a write is refused, as the page says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: &str) -> Refusal {
        Refusal {
            status,
            message: message.to_string(),
        }
    }
}

impl Token {
    pub fn new(token: &str) -> Token {
        let token = token.trim();
        Token {
            session: digest("session", token),
            csrf: hex(&digest("csrf", token)),
            bearer: digest("bearer", token),
        }
    }

    /// Whether `given` is the token (the login form).
    pub fn matches(&self, given: &str) -> bool {
        same(&digest("bearer", given.trim()), &self.bearer)
    }

    /// The cookie value after a good login.
    pub fn session_cookie(&self, secure: bool) -> String {
        format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{}",
            hex(&self.session),
            if secure { "; Secure" } else { "" }
        )
    }

    /// The CSRF field every write form carries (only shown to a logged-in browser).
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether the request comes from a browser that logged in.
    pub fn logged_in(&self, headers: &HeaderMap) -> bool {
        cookie(headers, COOKIE).is_some_and(|v| same(v.as_bytes(), hex(&self.session).as_bytes()))
    }

    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| self.matches(t))
    }
}

/// A cookie's value.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// Refuse a request another site's page made: `Sec-Fetch-Site: cross-site`, or an `Origin`
/// whose host is not the one the request was sent to.
pub fn same_site(headers: &HeaderMap) -> Result<(), Refusal> {
    let refused = || {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the console takes writes only from its own pages",
        )
    };
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if get(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return Err(refused());
    }
    if let Some(origin) = get(header::ORIGIN) {
        // Behind a proxy the Host it forwards must be the public one (docs/operations.md).
        let host = get(header::HeaderName::from_static("x-forwarded-host"))
            .or_else(|| get(header::HOST))
            .unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
        if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
            return Err(refused());
        }
    }
    Ok(())
}

/// May this request write? `csrf` is the form's field.
pub fn may_write(token: Option<&Token>, headers: &HeaderMap, csrf: &str) -> Result<(), Refusal> {
    let Some(token) = token else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "the console is read-only: no STIR_CONSOLE_TOKEN is set on this runtime",
        ));
    };
    same_site(headers)?;
    if token.bearer_ok(headers) {
        return Ok(());
    }
    if !token.logged_in(headers) {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "not logged in: give the console token on the login page first",
        ));
    }
    if !same(csrf.as_bytes(), token.csrf().as_bytes()) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "the form is not from this console (CSRF field missing or wrong): reload the page and try again",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef-token";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn logged_in_cookie(t: &Token) -> String {
        t.session_cookie(false)
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn writes_need_the_token_the_cookie_and_the_csrf_field() {
        let t = Token::new(T);
        let c = logged_in_cookie(&t);
        assert!(!c.contains(T), "the cookie never holds the token");
        let ok = headers(&[("cookie", &c), ("host", "h:1"), ("origin", "http://h:1")]);
        assert_eq!(may_write(Some(&t), &ok, t.csrf()), Ok(()));
        // No token on the runtime: read-only.
        assert_eq!(may_write(None, &ok, t.csrf()).unwrap_err().status, 403);
        // No cookie.
        let anon = headers(&[("host", "h:1")]);
        assert_eq!(
            may_write(Some(&t), &anon, t.csrf()).unwrap_err().status,
            401
        );
        // Cookie but no CSRF field.
        assert_eq!(may_write(Some(&t), &ok, "").unwrap_err().status, 403);
        // Another site's page posting with the browser's cookie.
        let evil = headers(&[
            ("cookie", &c),
            ("host", "h:1"),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(
            may_write(Some(&t), &evil, t.csrf()).unwrap_err().status,
            403
        );
        let fetch = headers(&[("cookie", &c), ("sec-fetch-site", "cross-site")]);
        assert_eq!(
            may_write(Some(&t), &fetch, t.csrf()).unwrap_err().status,
            403
        );
        // A script with the bearer token needs no cookie or field; a wrong one is refused.
        let bearer = format!("Bearer {T}");
        let script = headers(&[("authorization", &bearer)]);
        assert_eq!(may_write(Some(&t), &script, ""), Ok(()));
        let wrong = headers(&[("authorization", "Bearer 0123456789abcdef-wrong")]);
        assert_eq!(may_write(Some(&t), &wrong, "").unwrap_err().status, 401);
    }
}
