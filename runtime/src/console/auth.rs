//! Who may write through the console. Reading needs nothing; a write ("Run now") needs the
//! operator's token (`STIR_CONSOLE_TOKEN`), given once on the login page (then an HttpOnly,
//! SameSite=Strict cookie holding a digest of it, never the token) or as
//! `Authorization: Bearer` (scripts). Cross-site requests are refused three ways: the cookie is
//! not sent cross-site, a foreign `Origin`/`Sec-Fetch-Site` is refused, and every form carries
//! a CSRF field the page got from this server. No token set: the console is read-only.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

/// Wrong tokens (login form or `Bearer`) taken within [`GUESS_WINDOW`]; the next attempt, right
/// or wrong, is refused until the oldest of them leaves the window, so nobody can try more
/// than this many tokens a minute. Counted for the whole console, not per address: behind a
/// proxy every client has the proxy's. (A sliding lockout, not a rate: the refusal must come
/// before the token is compared, which a token-bucket crate's consuming check cannot give.)
pub const WRONG_GUESSES: usize = 10;
pub const GUESS_WINDOW: Duration = Duration::from_secs(60);

/// The cookie that says "this browser gave the token".
pub const COOKIE: &str = "stir_console";

/// The token's derived values; the token itself is not kept.
#[derive(Clone)]
pub struct Token {
    session: [u8; 32],
    csrf: String,
    bearer: [u8; 32],
    /// When the last wrong tokens came, oldest first (at most [`WRONG_GUESSES`]).
    wrong: Arc<Mutex<VecDeque<Instant>>>,
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
            wrong: Arc::default(),
        }
    }

    /// Whether `given` is the token (the login form, a script's `Bearer`): refused unread
    /// while too many wrong ones came lately (429), and a wrong one counts (401).
    pub fn check(&self, given: &str) -> Result<(), Refusal> {
        self.check_at(given, Instant::now())
    }

    fn check_at(&self, given: &str, now: Instant) -> Result<(), Refusal> {
        let mut wrong = self.wrong.lock().unwrap_or_else(|e| e.into_inner());
        while wrong
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= GUESS_WINDOW)
        {
            wrong.pop_front();
        }
        if wrong.len() >= WRONG_GUESSES {
            let wait = wrong.front().map_or(GUESS_WINDOW, |&t| {
                GUESS_WINDOW - now.saturating_duration_since(t)
            });
            return Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "{WRONG_GUESSES} wrong tokens within a minute: the console takes no token for the next {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        if same(&digest("bearer", given.trim()), &self.bearer) {
            return Ok(());
        }
        wrong.push_back(now);
        Err(Refusal::new(StatusCode::UNAUTHORIZED, "wrong token"))
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
}

/// A script's `Authorization: Bearer` token, if the request has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
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
    // A script's token decides alone: right, wrong (counted), or refused while locked out.
    if let Some(given) = bearer(headers) {
        return token.check(given);
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

    #[test]
    fn ten_wrong_tokens_a_minute_lock_every_token_out_until_the_oldest_is_a_minute_old() {
        let t = Token::new(T);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Nine wrong ones over 45 s: each is only wrong; the right one still opens.
        for i in 0..9 {
            assert_eq!(t.check_at("guess", at(i * 5)).unwrap_err().status, 401);
        }
        assert_eq!(t.check_at(T, at(45)), Ok(()));
        // The tenth wrong one (at 50 s) locks: the right token too is refused, unread.
        assert_eq!(t.check_at("guess", at(50)).unwrap_err().status, 401);
        let locked = t.check_at(T, at(51)).unwrap_err();
        assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(locked.message.contains("for the next 9 s"), "{locked:?}");
        assert_eq!(t.check_at("guess", at(59)).unwrap_err().status, 429);
        // At 60 s the first wrong one (at 0 s) has left the window: one more try.
        assert_eq!(t.check_at(T, at(60)), Ok(()));
        // Refusals while locked are not counted: at 61 s nine are in the window.
        assert_eq!(t.check_at("guess", at(61)).unwrap_err().status, 401);
        assert_eq!(t.check_at(T, at(62)).unwrap_err().status, 429);
        // A script's Bearer token goes through the same count.
        let bearer = format!("Bearer {T}");
        let script = headers(&[("authorization", &bearer)]);
        assert_eq!(may_write(Some(&t), &script, "").unwrap_err().status, 429);
        // A minute after the last wrong one, nothing is left of them.
        assert_eq!(t.check_at(T, at(121)), Ok(()));
    }
}
