//! Error text as operators read it: every cause of an error on one line, PostgreSQL's code
//! and message.

use crate::redact::redact_text;

/// An error and its causes, each once (`dispatch failure: … Connection refused`), URL-free.
pub fn error_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut m = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !m.contains(&t) {
            m.push_str(&format!(": {t}"));
        }
        src = s.source();
    }
    redact_text(&m)
}

/// A PostgreSQL error with its server message (the Display of tokio_postgres hides it).
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}
