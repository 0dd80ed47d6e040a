//! libpq's `key = value` connection strings, read the way libpq reads them: the TLS setup
//! finds `sslmode` and friends in them, the configuration redacts their passwords.

/// One item of libpq's `key = value` form, by char positions: its key and, when an `=`
/// follows, the value as written (`(start, end)`, quotes and escapes included). Values are bare
/// words (a backslash escapes the next character) or single-quoted (`\'` and `\\` inside).
pub struct KvItem {
    pub start: usize,
    pub key: String,
    pub value: Option<(usize, usize)>,
    pub end: usize,
}

/// The items of a key=value string; what lies between them is whitespace.
pub fn key_value_items(chars: &[char]) -> Vec<KvItem> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if j >= chars.len() || chars[j] != '=' {
            // Not `key = value`: a word of its own.
            items.push(KvItem {
                start,
                key,
                value: None,
                end: i,
            });
            continue;
        }
        j += 1;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let value_start = j;
        if j < chars.len() && chars[j] == '\'' {
            j += 1;
            while j < chars.len() && chars[j] != '\'' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            j = (j + 1).min(chars.len());
        } else {
            while j < chars.len() && !chars[j].is_whitespace() {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            j = j.min(chars.len());
        }
        items.push(KvItem {
            start,
            key,
            value: Some((value_start, j)),
            end: j,
        });
        i = j;
    }
    items
}
