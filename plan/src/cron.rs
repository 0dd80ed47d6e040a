//! Five-field cron expressions (minute hour day-of-month month day-of-week), read the way
//! Airflow (croniter) reads them. Fields are stored as bitsets so matching is a few ANDs.
//!
//! Airflow's dialect: presets (`@daily`, `@quarterly`, ...), `L` in day-of-month (the last day
//! of the month), `n#k` (the k-th weekday n of the month) and `Ln` (the last weekday n of the
//! month) in day-of-week, and `?` for `*` in either day field.
//!
//! Day rule: when neither day field counts as `*`, a day matches if EITHER matches
//! (`0 6 1,15 * 1` fires on the 1st, the 15th and every Monday); otherwise both must. A day
//! field counts as `*` as croniter decides: it has a `*` term (or is `?`), or it lists every
//! value of its field while the other day field's text contains a `*` (`0 0 */1 * */2` fires
//! on Sundays, Tuesdays, Thursdays and Saturdays only). `*/7` alone is not a `*`.
//!
//! Whether a day matches depends on its month's length (`L`, `Ln`, `n#5`), so matching takes
//! the length of the month; the analyses in `schedule.rs` only ever ask about whole days.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use std::ops::Range;

/// A cron expression that could not be parsed. `span` is a byte range in the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    pub message: String,
    pub span: Range<usize>,
    pub help: Option<String>,
}

impl std::fmt::Display for CronError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CronError {}

/// A step that does not divide its field's cycle evenly (`irregular_cron` warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Irregular {
    pub field: &'static str,
    pub span: Range<usize>,
    pub message: String,
    pub help: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cron {
    source: String,
    /// The five fields as read (a preset's expansion; `?` kept as written).
    fields: [String; 5],
    /// bit m = minute m (0..60)
    minutes: u64,
    /// bit h = hour h (0..24)
    hours: u32,
    /// bit d = day of month d (1..=31)
    dom: u32,
    /// `L` in day-of-month: the last day of each month
    dom_last: bool,
    /// bit m = month m (1..=12)
    months: u16,
    /// bit d = weekday d, 0 = Sunday (7 is folded into 0); 0 when `nth` is used
    dow: u8,
    /// `n#k` and `Ln` terms: bit 6n + k - 1 for the k-th weekday n of the month (k = 1..=5),
    /// bit 6n + 5 for the last one
    nth: u64,
    dom_star: bool,
    dow_star: bool,
    /// byte span of each of the five fields (the whole preset for a preset)
    spans: [Range<usize>; 5],
    /// whether the field contains a step term that runs to the field's maximum (`*/n`, `a/n`, `a-max/n`)
    open_step: [Option<u32>; 5],
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTH_NAMES: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DOW_NAMES: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Airflow's presets: Airflow's own table (which has `@quarterly`) and croniter's aliases
/// (`@midnight`, `@annually`). Read case-insensitively.
pub const PRESETS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@quarterly", "0 0 1 */3 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    FieldSpec {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        names: MONTH_NAMES,
    },
    FieldSpec {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: DOW_NAMES,
    },
];

const DOM: usize = 2;
const DOW: usize = 4;

fn err(message: String, span: Range<usize>, help: Option<&str>) -> CronError {
    CronError {
        message,
        span,
        help: help.map(str::to_string),
    }
}

/// Parse one value (number or name) of a field; `off` is its byte offset in the expression.
fn parse_value(text: &str, off: usize, spec: &FieldSpec) -> Result<u32, CronError> {
    let span = off..off + text.len();
    if text.is_empty() {
        return Err(err(
            format!("empty value in the {} field", spec.name),
            span,
            Some("write a number, a range a-b, a list a,b or a step */n"),
        ));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than 4 digits is out of range anyway; avoids overflow.
        let v: u32 = if text.len() > 4 {
            u32::MAX
        } else {
            text.parse().unwrap_or(u32::MAX)
        };
        if v < spec.min || v > spec.max {
            return Err(err(
                format!(
                    "{} {} is out of range {}-{}",
                    spec.name, text, spec.min, spec.max
                ),
                span,
                Some(&format!(
                    "the {} field takes values {}-{}",
                    spec.name, spec.min, spec.max
                )),
            ));
        }
        return Ok(v);
    }
    let lower = text.to_ascii_lowercase();
    if let Some(i) = spec.names.iter().position(|n| *n == lower) {
        // months are 1-based, weekdays 0-based
        return Ok(i as u32 + spec.min);
    }
    if lower == "l" {
        return Err(err(
            format!(
                "`L` (the last day of the month) does not go in the {} field",
                spec.name
            ),
            span,
            Some(if spec.name == "day-of-week" {
                "for the last day of the month put `L` in the day-of-month field (`0 0 L * *`); for the last Friday of the month write `L5` here (`0 0 * * L5`)"
            } else {
                "`L` belongs in the day-of-month field: `0 0 L * *` fires at midnight on the last day of every month"
            }),
        ));
    }
    let help = if spec.name == "day-of-week" && lower.len() > 1 && lower.ends_with('l') {
        format!(
            "the last {} of the month is written with `L` first: `L{}`",
            &text[..text.len() - 1],
            &text[..text.len() - 1]
        )
    } else if spec.names.is_empty() {
        format!(
            "the {} field takes numbers {}-{}",
            spec.name, spec.min, spec.max
        )
    } else {
        format!(
            "the {} field takes numbers {}-{} or names {}",
            spec.name,
            spec.min,
            spec.max,
            spec.names.join(",")
        )
    };
    Err(err(
        format!("unknown {} value `{}`", spec.name, text),
        span,
        Some(&help),
    ))
}

/// `a-b` (or a single value `a`) as (a, b). In day-of-month `a-L` runs to the 31st (the end
/// of every month), as croniter reads it. Ranges whose ends are equal or reversed are
/// refused: croniter reads `5-5` as the whole field and `22-2` as wrapping around, and
/// neither is what the text says to most readers.
fn parse_range(base: &str, off: usize, k: usize) -> Result<(u32, u32), CronError> {
    let spec = &FIELDS[k];
    let Some(i) = base.find('-') else {
        let a = parse_value(base, off, spec)?;
        return Ok((a, a));
    };
    let (lo_t, hi_t) = (&base[..i], &base[i + 1..]);
    if k == DOM && lo_t.eq_ignore_ascii_case("l") {
        return Err(err(
            format!("a range cannot start at `L` in the {} field", spec.name),
            off..off + base.len(),
            Some("`L` is the last day of the month: write `L` alone, or a range that ends at it, like `15-L`"),
        ));
    }
    let a = parse_value(lo_t, off, spec)?;
    let b = if k == DOM && hi_t.eq_ignore_ascii_case("l") {
        spec.max
    } else {
        parse_value(hi_t, off + i + 1, spec)?
    };
    let span = off..off + base.len();
    if a == b {
        return Err(err(
            format!(
                "range {} in the {} field has equal ends: Airflow (croniter) reads it as the whole field",
                base, spec.name
            ),
            span,
            Some(&format!(
                "write `{lo_t}` for that one value, or `*` for every value of the field"
            )),
        ));
    }
    if a > b {
        let wrap = format!("{}-{},{}-{}", lo_t, spec.max, spec.min, hi_t);
        return Err(err(
            format!("reversed range {} in the {} field", base, spec.name),
            span,
            Some(&format!(
                "Airflow (croniter) wraps it around the end of the field: write `{wrap}` for that, or `{hi_t}-{lo_t}` for the values in between"
            )),
        ));
    }
    Ok((a, b))
}

/// One field, parsed.
#[derive(Default)]
struct Field {
    /// bit v = value v
    bits: u64,
    /// the step of a term that runs to the field's maximum
    open_step: Option<u32>,
    /// a bare `*` term (or `?`)
    star: bool,
    /// `L` in day-of-month
    last: bool,
    /// `n#k` / `Ln` terms (see `Cron::nth`)
    nth: u64,
    /// span of the first plain term (day-of-week: mixing plain and `#` terms is refused)
    plain: Option<Range<usize>>,
}

/// Parse one field into a bitset (bit v = value v), with the dialect's special terms.
fn parse_field(text: &str, off: usize, k: usize) -> Result<Field, CronError> {
    let spec = &FIELDS[k];
    let fspan = off..off + text.len();
    if text.contains('?') {
        if text != "?" {
            return Err(err(
                format!("`?` stands alone in the {} field", spec.name),
                fspan,
                Some("`?` means the same as `*` (any day): write it alone, or write the values"),
            ));
        }
        if k != DOM && k != DOW {
            return Err(err(
                format!(
                    "`?` only goes in a day field, not in the {} field",
                    spec.name
                ),
                fspan,
                Some(&format!("write `*` for every {}", spec.name)),
            ));
        }
        return parse_field("*", off, k);
    }
    let mut f = Field::default();
    let mut pos = 0usize;
    for term in text.split(',') {
        let toff = off + pos;
        pos += term.len() + 1;
        let tspan = toff..toff + term.len();
        let lower = term.to_ascii_lowercase();
        if k == DOM && lower == "l" {
            f.last = true;
            continue;
        }
        if k == DOM && lower.len() > 1 && lower.ends_with('w') {
            return Err(err(
                format!("stir does not read `W` (the weekday nearest a day) in `{term}`"),
                tspan,
                Some("list the days (e.g. `1,15`), or use a weekday (`0 0 * * 1-5`) or `L`"),
            ));
        }
        if k == DOW && (lower.contains('#') || (lower.starts_with('l') && lower.len() > 1)) {
            f.nth |= parse_nth(term, toff)?;
            continue;
        }
        if f.plain.is_none() {
            f.plain = Some(tspan.clone());
        }
        let (base, step) = match term.find('/') {
            Some(i) => (&term[..i], Some((&term[i + 1..], toff + i + 1))),
            None => (term, None),
        };
        let step_v = match step {
            None => 1,
            Some((s, soff)) => {
                let span = soff..soff + s.len();
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(
                        format!("bad step `{}` in the {} field", s, spec.name),
                        span,
                        Some("a step is a positive number, as in */5"),
                    ));
                }
                let v: u32 = if s.len() > 4 {
                    u32::MAX
                } else {
                    s.parse().unwrap_or(u32::MAX)
                };
                if v == 0 || v > spec.max + 1 {
                    return Err(err(
                        format!("step {} is out of range in the {} field", s, spec.name),
                        span,
                        Some(&format!("use a step between 1 and {}", spec.max)),
                    ));
                }
                v
            }
        };
        if k == DOM && step.is_some() && base.eq_ignore_ascii_case("l") {
            return Err(err(
                format!("`L` cannot take a step in `{term}`"),
                tspan,
                Some("`L` is one day, the last of the month: write `L` alone"),
            ));
        }
        let (lo, hi) = if base == "*" {
            f.star |= step.is_none();
            (spec.min, spec.max)
        } else {
            let (a, b) = parse_range(base, toff, k)?;
            // `a/n` means a-max/n, as croniter reads it
            if step.is_some() && a == b {
                (a, spec.max)
            } else {
                (a, b)
            }
        };
        // day-of-week 7 is Sunday, so a range to 7 is open-ended too
        if step.is_some() && hi == spec.max {
            f.open_step = Some(step_v);
        }
        let mut v = lo;
        while v <= hi {
            f.bits |= 1u64 << v;
            v += step_v;
        }
    }
    Ok(f)
}

/// `n#k` (or `a-b#k`: each of those weekdays) or `Ln`, as `Cron::nth` bits.
fn parse_nth(term: &str, off: usize) -> Result<u64, CronError> {
    let spec = &FIELDS[DOW];
    let span = off..off + term.len();
    if term.contains('/') {
        return Err(err(
            format!("`{term}` mixes a step with `#` or `L`"),
            span,
            Some("list the weekdays instead, e.g. `1#2,3#2`"),
        ));
    }
    let (days, slot) = if let Some(i) = term.find('#') {
        let (base, k) = (&term[..i], &term[i + 1..]);
        let kspan = off + i + 1..off + term.len();
        if base.contains('*') {
            return Err(err(
                format!("`{term}`: `#` follows one weekday, not `*`"),
                span,
                Some("name the weekday, e.g. `5#2` for the second Friday of the month"),
            ));
        }
        let (a, b) = parse_range(base, off, DOW)?;
        let day = WEEKDAYS[(a % 7) as usize];
        if k.is_empty() || !k.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err(
                format!("`{term}`: after `#` comes which {day} of the month, 1 to 5"),
                kspan,
                Some(&format!(
                    "`{base}#1` is the first {day} of the month, `{base}#5` the fifth"
                )),
            ));
        }
        let n: u32 = if k.len() > 2 {
            u32::MAX
        } else {
            k.parse().unwrap_or(u32::MAX)
        };
        if n == 0 {
            return Err(err(
                format!("`{term}`: occurrences count from 1, there is no {day} number 0"),
                kspan,
                Some(&format!(
                    "the first {day} of the month is `{base}#1`; the last one is `L{base}`"
                )),
            ));
        }
        if n > 5 {
            return Err(err(
                format!("`{term}`: a month has at most five of each weekday, so there is no {day} number {k}"),
                kspan,
                Some(&format!(
                    "use `{base}#1` to `{base}#5` (a fifth {day} exists in some months only), or `L{base}` for the last {day} of the month"
                )),
            ));
        }
        ((a, b), n - 1)
    } else {
        // `Ln`: one weekday, as croniter reads it
        let v = parse_value(&term[1..], off + 1, spec)?;
        ((v, v), 5)
    };
    let mut bits = 0u64;
    for v in days.0..=days.1 {
        bits |= 1u64 << ((v % 7) * 6 + slot);
    }
    Ok(bits)
}

/// Days in `month` of `year`.
pub fn month_len(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Split on whitespace, keeping byte offsets.
pub fn split_fields(expr: &str) -> Vec<(usize, &str)> {
    let mut fields: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (i, c) in expr.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                fields.push((s, &expr[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        fields.push((s, &expr[s..]));
    }
    fields
}

/// The preset's five fields, or an error for `@` words Airflow does not know as crons.
fn preset(word: &str, span: Range<usize>) -> Result<&'static str, CronError> {
    let lower = word.to_ascii_lowercase();
    if let Some((_, e)) = PRESETS.iter().find(|(p, _)| *p == lower) {
        return Ok(e);
    }
    let names: Vec<&str> = PRESETS.iter().map(|(p, _)| *p).collect();
    let help = match lower.as_str() {
        "@once" => "a schedule fires on a cron; for a one-off run use `stir-runtime plan.json --once NAME` (and `enabled=#false` on the schedule)".to_string(),
        "@continuous" => "stir has no continuous schedule: fire often instead, e.g. `*/5 * * * *` (a fire that finds the last run still going is skipped)".to_string(),
        "@fortnightly" | "@biweekly" => "cron has no every-other-week: use `@weekly`, or two fixed days of the month (`0 0 1,15 * *`)".to_string(),
        _ => match crate::suggest(&lower, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? The presets are {}", names.join(", ")),
            None => format!("the presets are {}", names.join(", ")),
        },
    };
    Err(err(
        format!("unknown cron preset `{word}`"),
        span,
        Some(&help),
    ))
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let split = split_fields(expr);
        if let Some((off, word)) = split.first().filter(|(_, w)| w.starts_with('@')) {
            let pspan = *off..off + word.len();
            if split.len() > 1 {
                return Err(err(
                    format!("the preset `{word}` is a whole cron on its own"),
                    split[1].0..expr.len(),
                    Some(&format!("write `{word}` alone, or five fields instead")),
                ));
            }
            let fields = preset(word, pspan.clone())?;
            let c = Cron::parse(fields).map_err(|e| err(e.message, pspan.clone(), None))?;
            return Ok(Cron {
                source: expr.to_string(),
                spans: std::array::from_fn(|_| pspan.clone()),
                ..c
            });
        }
        let fields = split;
        if fields.len() != 5 {
            let span = if fields.len() > 5 {
                fields[5].0..expr.len()
            } else {
                0..expr.len()
            };
            return Err(err(
                format!(
                    "a cron expression has 5 fields, this one has {}",
                    fields.len()
                ),
                span,
                Some("minute hour day-of-month month day-of-week, e.g. `0 6 * * 1`, or a preset like `@daily`"),
            ));
        }
        let mut parsed: Vec<Field> = Vec::with_capacity(5);
        let mut spans: [Range<usize>; 5] = Default::default();
        for (k, (off, text)) in fields.iter().enumerate() {
            parsed.push(parse_field(text, *off, k)?);
            spans[k] = *off..*off + text.len();
        }
        let text: [String; 5] = std::array::from_fn(|k| fields[k].1.to_string());
        let (dom, dow) = (&parsed[DOM], &parsed[DOW]);
        if dow.nth != 0 {
            if let Some(p) = &dow.plain {
                return Err(err(
                    format!(
                        "day-of-week `{}` mixes plain weekdays with `#`/`L` terms: Airflow (croniter) refuses this",
                        text[DOW]
                    ),
                    p.clone(),
                    Some("write only `#` and `L` terms (e.g. `1#1,5#3`), and put the plain weekdays in a second schedule"),
                ));
            }
            if !dom.star {
                let nth_only = Cron::fields_with(&text, DOM, "*");
                let dom_only = Cron::fields_with(&text, DOW, "*");
                return Err(err(
                    format!(
                        "day-of-month `{}` with day-of-week `{}`: Airflow (croniter) ignores the day-of-month here, or finds no date at all",
                        text[DOM], text[DOW]
                    ),
                    spans[DOM].clone(),
                    Some(&format!(
                        "for the weekdays alone write `{nth_only}`; for the days of the month too add a second schedule with `{dom_only}`"
                    )),
                ));
            }
        }
        // fold weekday 7 into 0 (Sunday)
        let mut dow_bits = dow.bits;
        if dow_bits & (1 << 7) != 0 {
            dow_bits = (dow_bits & !(1 << 7)) | 1;
        }
        // croniter: a day field listing every value counts as `*` when the other day field's
        // text has a `*` in it (`L` counts as one more day-of-month value, as croniter counts)
        let dom_full = dom.bits.count_ones() + u32::from(dom.last) == 31;
        let dow_full = dow.nth == 0 && dow_bits == 0x7F;
        let dom_star = dom.star || (dom_full && text[DOW].contains('*'));
        let dow_star = dow.nth == 0 && (dow.star || (dow_full && text[DOM].contains('*')));
        Ok(Cron {
            source: expr.to_string(),
            minutes: parsed[0].bits,
            hours: parsed[1].bits as u32,
            dom: dom.bits as u32,
            dom_last: dom.last,
            months: parsed[3].bits as u16,
            dow: dow_bits as u8,
            nth: dow.nth,
            dom_star,
            dow_star,
            spans,
            open_step: std::array::from_fn(|k| parsed[k].open_step),
            fields: text,
        })
    }

    /// The five fields with field `k` replaced.
    fn fields_with(fields: &[String; 5], k: usize, text: &str) -> String {
        let mut f = fields.clone();
        f[k] = text.to_string();
        f.join(" ")
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The five fields (a preset's expansion), e.g. `0 0 * * *` for `@daily`.
    pub fn fields(&self) -> String {
        self.fields.join(" ")
    }

    /// The day-of-month, month and day-of-week fields as read: two crons with the same three
    /// fire on the same days.
    pub fn day_fields(&self) -> [&str; 3] {
        [&self.fields[2], &self.fields[3], &self.fields[4]]
    }

    /// Whether the cron fires on a day with this month, day of month, weekday (0 = Sunday)
    /// and month length.
    #[inline]
    pub fn matches_ymd(&self, month: u32, day: u32, weekday: u32, month_len: u32) -> bool {
        if self.months & (1 << month) == 0 {
            return false;
        }
        let d = self.dom_star || self.dom & (1 << day) != 0 || (self.dom_last && day == month_len);
        let w = self.dow_star
            || if self.nth == 0 {
                self.dow & (1 << weekday) != 0
            } else {
                let base = weekday * 6;
                self.nth & (1 << (base + (day - 1) / 7)) != 0
                    || (day + 7 > month_len && self.nth & (1 << (base + 5)) != 0)
            };
        if self.dom_star || self.dow_star {
            d && w
        } else {
            d || w
        }
    }

    pub fn matches_day(&self, d: NaiveDate) -> bool {
        self.matches_ymd(
            d.month(),
            d.day(),
            d.weekday().num_days_from_sunday(),
            month_len(d.year(), d.month()),
        )
    }

    /// True when every calendar day matches (lets analyses skip the calendar).
    pub fn every_day(&self) -> bool {
        // days 1-30, and the 31st or `L` (the 31st is always a month's last day)
        let all_dom = self.dom_star
            || (self.dom & 0x7FFF_FFFE == 0x7FFF_FFFE
                && (self.dom & (1 << 31) != 0 || self.dom_last));
        let all_dow = self.dow_star
            || if self.nth == 0 {
                self.dow == 0x7F
            } else {
                (0..7).all(|wd| (self.nth >> (wd * 6)) & 0x1F == 0x1F)
            };
        self.months == 0x1FFE
            && if self.dom_star || self.dow_star {
                all_dom && all_dow
            } else {
                all_dom || all_dow
            }
    }

    /// Sorted minutes of day (0..1440) at which the cron fires on a matching day.
    pub fn times_of_day(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for h in 0..24u16 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            for m in 0..60u16 {
                if self.minutes & (1 << m) != 0 {
                    out.push(h * 60 + m);
                }
            }
        }
        out
    }

    pub fn matches(&self, t: NaiveDateTime) -> bool {
        self.minutes & (1 << t.minute()) != 0
            && self.hours & (1 << t.hour()) != 0
            && self.matches_day(t.date())
    }

    /// Whether some calendar day matches: some selected month has a selected day-of-month
    /// that exists in it (Feb 29 exists in leap years) or `L`; with OR semantics any weekday
    /// does. `n#k` and `Ln` (which need day-of-month `*`) always find a day: every month has
    /// four of each weekday and a last one, and a fifth of each weekday in some year (February
    /// in leap years whose Feb 29 falls on it; the 400-year cycle has every weekday).
    pub fn fires_ever(&self) -> bool {
        if self.months == 0 {
            return false;
        }
        // only day-of-month days ANDed with every weekday can miss (`31 2 *`)
        if !self.dow_star || self.dom_star || self.dom_last {
            return true;
        }
        (1..=12u32).any(|m| {
            self.months & (1 << m) != 0
                && (self.dom & ((1u64 << (month_len(2028, m) + 1)) - 2) as u32) != 0
        })
    }

    /// The first fire strictly after `t` (local wall time), or None if the cron never fires.
    pub fn next_after(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        self.next_after_in(t, &self.times_of_day())
    }

    /// `next_after` restricted to the given sorted times of day (e.g. after skip windows).
    pub fn next_after_in(&self, t: NaiveDateTime, times: &[u16]) -> Option<NaiveDateTime> {
        if times.is_empty() || !self.fires_ever() {
            return None;
        }
        let tod = (t.hour() * 60 + t.minute()) as u16;
        let mut day = t.date();
        if self.matches_day(day) {
            if let Some(&m) = times.iter().find(|&&m| m > tod) {
                return Some(at_minute(day, m));
            }
        }
        // The calendar repeats every 400 years, so a match (fires_ever) comes within one cycle.
        for _ in 0..146_097 * 2 {
            day = day.succ_opt()?;
            if self.months & (1 << day.month()) == 0 {
                // jump to the first of the next month
                let (y, m) = if day.month() == 12 {
                    (day.year() + 1, 1)
                } else {
                    (day.year(), day.month() + 1)
                };
                day = NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()?;
                continue;
            }
            if self.matches_day(day) {
                return Some(at_minute(day, times[0]));
            }
        }
        None
    }

    /// Steps whose fires are not evenly spaced around their field's cycle.
    pub fn irregular_steps(&self) -> Vec<Irregular> {
        let mut out = Vec::new();
        let fields: [(usize, u64, u32); 4] = [
            (0, self.minutes, 60),
            (1, self.hours as u64, 24),
            (3, self.months as u64, 12),
            (4, self.dow as u64, 7),
        ];
        for (k, bits, cycle) in fields {
            let Some(step) = self.open_step[k] else {
                continue;
            };
            let vals: Vec<u32> = (0..64).filter(|v| bits & (1u64 << v) != 0).collect();
            if vals.len() < 2 {
                continue;
            }
            let gaps = cyclic_gaps(&vals, cycle);
            let (Some(&lo), Some(&hi)) = (gaps.iter().min(), gaps.iter().max()) else {
                continue;
            };
            if lo == hi {
                continue;
            }
            let last = vals[vals.len() - 1];
            let name = FIELDS[k].name;
            let even = nearest_divisors(step, cycle);
            let alts: Vec<String> = even
                .iter()
                .map(|d| format!("`{}`", self.with_field(k, &format!("*/{d}"))))
                .collect();
            out.push(Irregular {
                field: name,
                span: self.spans[k].clone(),
                message: format!(
                    "{} step /{} fires at {} and then wraps from {} to {} after only {} (the other gaps are {})",
                    name,
                    step,
                    list(&vals),
                    last,
                    vals[0],
                    lo,
                    hi
                ),
                help: format!("use a step that divides {}: {}", cycle, alts.join(" or ")),
            });
        }
        // day-of-month: the cycle is the month length, 28..=31
        if let Some(step) = self.open_step[2] {
            let vals: Vec<u32> = (1..=31).filter(|v| self.dom & (1u32 << v) != 0).collect();
            if vals.len() >= 2 {
                let inner: Vec<u32> = vals.windows(2).map(|w| w[1] - w[0]).collect();
                let mut short = u32::MAX;
                let mut short_len = 0;
                let mut irregular = inner.iter().any(|g| *g != inner[0]);
                for len in 28..=31u32 {
                    let in_month: Vec<u32> = vals.iter().copied().filter(|v| *v <= len).collect();
                    if let (Some(first), Some(last)) = (in_month.first(), in_month.last()) {
                        let wrap = first + len - last;
                        if wrap != inner[0] {
                            irregular = true;
                            if wrap < short {
                                short = wrap;
                                short_len = len;
                            }
                        }
                    }
                }
                if irregular {
                    let h = self.hours.trailing_zeros().min(23);
                    let m = self.minutes.trailing_zeros().min(59);
                    let gap = if short == u32::MAX {
                        String::new()
                    } else {
                        format!(
                            ", and again on day {} only {} later when a month has {} days",
                            vals[0],
                            if short == 1 {
                                "1 day".to_string()
                            } else {
                                format!("{short} days")
                            },
                            short_len
                        )
                    };
                    out.push(Irregular {
                        field: "day-of-month",
                        span: self.spans[2].clone(),
                        message: format!(
                            "day-of-month step /{} fires on days {}{}: months are 28-31 days long",
                            step,
                            list(&vals),
                            gap
                        ),
                        help: if step == 7 {
                            format!("for a weekly run use a day of the week: `{m} {h} * * 1`")
                        } else {
                            format!(
                                "list fixed days instead (e.g. `{m} {h} 1,15 * *`), or use a day of the week (`{m} {h} * * 1`)"
                            )
                        },
                    });
                }
            }
        }
        out
    }

    /// The expression with field `k` replaced.
    fn with_field(&self, k: usize, text: &str) -> String {
        let span = &self.spans[k];
        if self.source.get(span.clone()) != Some(self.fields[k].as_str()) {
            // a preset: no field of its own text to replace
            return Cron::fields_with(&self.fields, k, text);
        }
        format!(
            "{}{}{}",
            &self.source[..span.start],
            text,
            &self.source[span.end..]
        )
    }
}

fn cyclic_gaps(vals: &[u32], cycle: u32) -> Vec<u32> {
    let mut gaps: Vec<u32> = vals.windows(2).map(|w| w[1] - w[0]).collect();
    if let (Some(first), Some(last)) = (vals.first(), vals.last()) {
        gaps.push(first + cycle - last);
    }
    gaps
}

/// The divisors of `cycle` nearest below and above `step`.
fn nearest_divisors(step: u32, cycle: u32) -> Vec<u32> {
    let below = (1..=step).rev().find(|d| cycle.is_multiple_of(*d));
    let above = (step..=cycle).find(|d| cycle.is_multiple_of(*d) && *d < cycle);
    let mut v: Vec<u32> = below.into_iter().chain(above).collect();
    v.dedup();
    v
}

fn list(vals: &[u32]) -> String {
    vals.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn at_minute(day: NaiveDate, minute_of_day: u16) -> NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(minute_of_day as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test datetime")
    }

    #[test]
    fn parses_and_matches() {
        let c = Cron::parse("0 6 1,15 * 1").expect("valid");
        assert!(c.matches(dt("2026-01-01 06:00")));
        assert!(c.matches(dt("2026-01-05 06:00"))); // Monday
        assert!(!c.matches(dt("2026-01-06 06:00")));
        let c = Cron::parse("0 6 */7 * *").expect("valid");
        assert_eq!(
            c.next_after(dt("2026-01-29 06:00")),
            Some(dt("2026-02-01 06:00"))
        );
        assert!(Cron::parse("0 0 31 2 *")
            .expect("valid")
            .next_after(dt("2026-01-01 00:00"))
            .is_none());
        assert_eq!(
            Cron::parse("0 0 29 2 *")
                .expect("valid")
                .next_after(dt("2026-01-01 00:00")),
            Some(dt("2028-02-29 00:00"))
        );
        assert!(Cron::parse("0 0 * JAN-mar sun,7").is_ok());
    }

    #[test]
    fn errors_have_spans() {
        let e = Cron::parse("0 24 * * *").expect_err("hour 24");
        assert_eq!(e.span, 2..4);
        let e = Cron::parse("*/0 * * * *").expect_err("step 0");
        assert_eq!(e.span, 2..3);
        let e = Cron::parse("0 5-3 * * *").expect_err("reversed");
        assert_eq!(e.span, 2..5);
        let e = Cron::parse("0 0 * foo *").expect_err("name");
        assert_eq!(e.span, 6..9);
        assert!(Cron::parse("0 0 * *").is_err());
        assert!(Cron::parse("é 0 * * *").is_err());
        assert!(Cron::parse("99999999999 0 * * *").is_err());
        assert!(Cron::parse("1-/ 0 * * *").is_err());
    }

    #[test]
    fn dialect_errors_point_at_the_term_and_say_the_fix() {
        let e = |s: &str| Cron::parse(s).expect_err(s);
        // `L` in the wrong field
        let x = e("0 L * * *");
        assert_eq!(x.span, 2..3);
        assert!(
            x.help.as_deref().unwrap_or("").contains("0 0 L * *"),
            "{x:?}"
        );
        let x = e("0 0 * * L");
        assert_eq!(x.span, 8..9);
        assert!(x.help.as_deref().unwrap_or("").contains("L5"), "{x:?}");
        assert!(e("0 0 * * 5L").help.unwrap_or_default().contains("`L5`"));
        assert_eq!(e("0 0 L-3 * *").span, 4..7);
        assert_eq!(e("0 0 L/2 * *").span, 4..7);
        // occurrences
        let x = e("0 0 * * 5#6");
        assert_eq!(x.span, 10..11);
        assert!(x.help.as_deref().unwrap_or("").contains("5#5"), "{x:?}");
        let x = e("0 0 * * 5#0");
        assert!(x.help.as_deref().unwrap_or("").contains("5#1"), "{x:?}");
        assert_eq!(e("0 0 * * 9#1").span, 8..9);
        assert_eq!(e("0 0 * * 5#").span, 10..10);
        assert!(Cron::parse("0 0 * * 5#2/2").is_err());
        assert!(Cron::parse("0 0 * * *#2").is_err());
        // what croniter refuses or gets wrong
        let x = e("0 0 * * 1,5#3");
        assert_eq!(x.span, 8..9);
        let x = e("0 0 1 * 5#2");
        assert_eq!(x.span, 4..5);
        assert!(
            x.help.as_deref().unwrap_or("").contains("`0 0 * * 5#2`")
                && x.help.as_deref().unwrap_or("").contains("`0 0 1 * *`"),
            "{x:?}"
        );
        assert!(Cron::parse("0 0 L * L5").is_err());
        let x = e("0 5-5 * * *");
        assert_eq!(x.span, 2..5);
        let x = e("0 22-2 * * *");
        assert!(
            x.help.as_deref().unwrap_or("").contains("`22-23,0-2`"),
            "{x:?}"
        );
        assert!(Cron::parse("0 0 15W * *").is_err());
        // `?`
        assert_eq!(e("? 0 * * *").span, 0..1);
        assert_eq!(e("0 0 ?,1 * *").span, 4..7);
        // presets
        let x = e("@fortnightly");
        assert_eq!(x.span, 0..12);
        assert!(x.help.as_deref().unwrap_or("").contains("@weekly"), "{x:?}");
        assert!(e("@dialy").help.unwrap_or_default().contains("`@daily`"));
        assert!(e("@once").help.unwrap_or_default().contains("--once"));
        assert_eq!(e("@daily 5").span, 7..8);
        assert!(Cron::parse("@quarterly").is_ok() && Cron::parse(" @Daily ").is_ok());
    }

    #[test]
    fn dialect_days() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date");
        let l = Cron::parse("0 0 L * *").expect("valid");
        assert!(l.matches_day(d("2028-02-29")) && !l.matches_day(d("2028-02-28")));
        assert!(l.matches_day(d("2026-02-28")) && l.matches_day(d("2026-04-30")));
        assert!(!l.matches_day(d("2026-03-30")));
        let f = Cron::parse("0 0 * * 5#5").expect("valid");
        assert!(f.matches_day(d("2026-01-30")) && !f.matches_day(d("2026-02-27")));
        let lf = Cron::parse("0 0 * * L5").expect("valid");
        assert!(lf.matches_day(d("2026-02-27")) && !lf.matches_day(d("2026-01-23")));
        // every day, and never
        assert!(Cron::parse("0 0 1-30,L * *").expect("valid").every_day());
        assert!(!Cron::parse("0 0 1-29,L * *").expect("valid").every_day());
        assert!(Cron::parse("0 0 L 2 *").expect("valid").fires_ever());
        assert!(Cron::parse("0 0 * 2 4#5").expect("valid").fires_ever());
        assert_eq!(Cron::parse("@daily").expect("valid").fields(), "0 0 * * *");
    }

    #[test]
    fn irregular() {
        let c = Cron::parse("0 6 */7 * *").expect("valid");
        let w = c.irregular_steps();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].field, "day-of-month");
        assert!(w[0].help.contains("0 6 * * 1"), "{}", w[0].help);
        assert!(Cron::parse("0 1-23/2 * * *")
            .expect("valid")
            .irregular_steps()
            .is_empty());
        assert!(Cron::parse("*/5 * * * *")
            .expect("valid")
            .irregular_steps()
            .is_empty());
        let w = Cron::parse("*/7 * * * *").expect("valid").irregular_steps();
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("56"), "{}", w[0].message);
        assert!(w[0].help.contains("*/6"), "{}", w[0].help);
        assert_eq!(
            Cron::parse("0 */5 * * *")
                .expect("valid")
                .irregular_steps()
                .len(),
            1
        );
    }

    /// Each refusal points at the term that is wrong (also past the first term of a list and
    /// of the expression) and says what is wrong with it; help where the fix is not obvious.
    #[test]
    fn refusals_point_at_the_wrong_term_and_name_it() {
        for (expr, at, message, help) in [
            (
                "0 0 1,32 * *",
                "32",
                "day-of-month 32 is out of range 1-31",
                "values 1-31",
            ),
            ("5 10-25 * * *", "25", "hour 25 is out of range 0-23", ""),
            (
                "5 4 * * mon-sux",
                "sux",
                "unknown day-of-week value `sux`",
                "names sun,mon",
            ),
            (
                "0 0 * xl *",
                "xl",
                "unknown month value `xl`",
                "names jan,feb",
            ),
            (
                "0 0 * * 5x",
                "5x",
                "unknown day-of-week value `5x`",
                "names sun,mon",
            ),
            (
                "0 0 * * 5l",
                "5l",
                "unknown day-of-week value `5l`",
                "written with `L` first: `L5`",
            ),
            (
                "0 0 * * 1#1,5#6",
                "6",
                "no Friday number 6",
                "`5#1` to `5#5`",
            ),
            (
                "0 0 * * 1#1,3#",
                "",
                "after `#` comes which Wednesday",
                "`3#1` is the first",
            ),
            (
                "0 0 * * 1#1,2#0",
                "0",
                "there is no Tuesday number 0",
                "`L2`",
            ),
            (
                "0 0 * * 1#1,5#2/2",
                "5#2/2",
                "mixes a step with `#` or `L`",
                "1#2,3#2",
            ),
            (
                "0 0 * * 1#1,L9",
                "9",
                "day-of-week 9 is out of range 0-7",
                "",
            ),
            ("0 0 15W * *", "15W", "does not read `W`", "`L`"),
            (
                "0 0 W * *",
                "W",
                "unknown day-of-month value `W`",
                "numbers 1-31",
            ),
            (
                "5w 0 * * *",
                "5w",
                "unknown minute value `5w`",
                "numbers 0-59",
            ),
            (
                "*/x * * * *",
                "x",
                "bad step `x` in the minute field",
                "positive number",
            ),
            (
                "1,*/ * * * *",
                "",
                "bad step `` in the minute field",
                "positive number",
            ),
            (
                "*/61 * * * *",
                "61",
                "step 61 is out of range in the minute field",
                "1 and 59",
            ),
            ("*/00005 * * * *", "00005", "step 00005 is out of range", ""),
            (
                "0 0 * * * 5 6",
                "5 6",
                "has 5 fields, this one has 7",
                "a preset like `@daily`",
            ),
        ] {
            let e = Cron::parse(expr).expect_err(expr);
            assert_eq!(&expr[e.span.clone()], at, "{expr}: {e:?}");
            assert!(e.message.contains(message), "{expr}: {e:?}");
            assert_eq!(e.to_string(), e.message);
            assert!(e.help.unwrap_or_default().contains(help), "{expr}");
        }
        let help = |p: &str| Cron::parse(p).expect_err(p).help.unwrap_or_default();
        assert!(help("@continuous").contains("`*/5 * * * *`"));
        assert!(help("@biweekly").contains("`@weekly`"));
        assert!(help("@Fortnightly").contains("`0 0 1,15 * *`"));
    }

    /// What the dialect accepts, read as croniter reads it.
    #[test]
    fn accepted_forms_fire_on_the_days_and_minutes_they_say() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date");
        let c = |s: &str| Cron::parse(s).expect(s);
        // leading zeros, up to four digits, in values, steps and `#`
        assert_eq!(c("0005 0023 * * *").times_of_day(), vec![23 * 60 + 5]);
        assert_eq!(c("*/0015 0 * * *").times_of_day(), vec![0, 15, 30, 45]);
        assert!(c("0 0 * * 5#05").matches_day(d("2026-01-30")));
        // `a/n` runs to the field's end, `a-b/n` stops at b; a step may be the whole cycle
        assert_eq!(c("5/15 0 * * *").times_of_day(), vec![5, 20, 35, 50]);
        assert_eq!(c("0-10/5 0 * * *").times_of_day(), vec![0, 5, 10]);
        assert_eq!(c("*/60 0 * * *").times_of_day(), vec![0]);
        assert_eq!(c("0 */24 * * *").times_of_day(), vec![0]);
        // `?` in either day field; `15-L` runs to each month's end
        assert!(c("0 0 ? * 1").matches_day(d("2026-01-05")));
        assert!(c("0 0 2 * ?").matches_day(d("2026-01-02")));
        let late = c("0 0 15-L * *");
        assert!(late.matches_day(d("2026-01-31")) && late.matches_day(d("2026-01-15")));
        assert!(!late.matches_day(d("2026-01-14")));
        // names: months from 1, weekdays from 0 (Sunday); 7 is Sunday too
        let feb_mondays = c("0 0 * feb mon");
        assert!(feb_mondays.matches_day(d("2026-02-02")));
        assert!(
            !feb_mondays.matches_day(d("2026-02-03")) && !feb_mondays.matches_day(d("2026-01-05"))
        );
        assert!(!c("0 0 1 2 *").matches_day(d("2026-01-01")));
        let sunday = d("2026-01-04");
        for (expr, days) in [
            (
                "0 0 * * 7",
                [true, false, false, false, false, false, false],
            ),
            (
                "0 0 * * 0,7",
                [true, false, false, false, false, false, false],
            ),
            (
                "0 0 * * 1,7",
                [true, true, false, false, false, false, false],
            ),
            (
                "0 0 * * 5-7",
                [true, false, false, false, false, true, true],
            ),
            (
                "0 0 * * 1",
                [false, true, false, false, false, false, false],
            ),
        ] {
            let cron = c(expr);
            let got: Vec<bool> = (0..7)
                .map(|i| cron.matches_day(sunday + Duration::days(i)))
                .collect();
            assert_eq!(got, days, "{expr}");
        }
        assert!(c("0 0 * * 1-7").every_day() && c("0 0 * * 0-6").every_day());
        // croniter's day rule: a day field listing every value counts as `*` when the other
        // one's text has a `*` (`L` counts as a value), so the other field alone decides
        let monday_12th = d("2026-01-12");
        assert!(!c("0 0 1-30,L * */2").matches_day(monday_12th));
        assert!(!c("0 0 */2 * 0-6").matches_day(monday_12th));
        assert!(c("0 0 */2 * 1-5").matches_day(monday_12th));
        // a preset keeps its text; the day fields are the expansion's
        assert_eq!(c("@daily").source(), "@daily");
        assert_eq!(c("0 6 1,15 * 1").day_fields(), ["1,15", "*", "1"]);
        assert_eq!(c("@monthly").day_fields(), ["1", "*", "*"]);
        assert_eq!([2000, 2100].map(|y| month_len(y, 2)), [29, 28]);
    }

    /// Only steps that run to the end of their field wrap around it; a range is not a step.
    #[test]
    fn only_open_ended_steps_can_be_irregular() {
        for regular in ["1-10/3 * * * *", "30-59 * * * *", "0 0-22 * * *"] {
            let c = Cron::parse(regular).expect(regular);
            assert_eq!(c.irregular_steps(), vec![], "{regular}");
        }
    }

    /// `n#k` counts a weekday's occurrences from the 1st; `Ln` is within the month's last
    /// seven days; every_day sees every way of naming all days.
    #[test]
    fn occurrences_and_every_day() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date");
        let c = |s: &str| Cron::parse(s).expect(s);
        assert!(c("0 0 * * 3#1").matches_day(d("2026-01-07")));
        assert!(!c("0 0 * * 3#1").matches_day(d("2026-01-14")));
        let last_saturday = c("0 0 * * L6");
        assert!(last_saturday.matches_day(d("2026-01-31")));
        assert!(!last_saturday.matches_day(d("2026-01-24")));
        for (expr, every) in [
            ("0 0 * * *", true),
            ("0 0 1-30,31 * *", true),
            ("0 0 2-31 * *", false),
            ("0 0 1-31 * 1", true),
            ("0 0 1-30,L * 1", true),
            ("0 0 1-30 * 1", false),
            ("0 0 2-31 * 1", false),
            ("0 0 1 * 0-6", true),
            ("0 0 1 * 1-6", false),
            ("0 0 * * 0-6#1,0-6#2,0-6#3,0-6#4,0-6#5", true),
            ("0 0 * * 0-6#1,0-6#2,0-6#3,0-6#4,1-6#5", false),
            ("0 0 * 1-11 *", false),
        ] {
            assert_eq!(c(expr).every_day(), every, "{expr}");
        }
    }

    /// Whether a cron ever fires (a day field of days no selected month has never does, unless
    /// a weekday is ORed in), the minute and hour a fire is at, and the next fire after a time.
    #[test]
    fn fires_ever_matches_and_next_fires() {
        let c = |s: &str| Cron::parse(s).expect(s);
        for (expr, ever) in [
            ("0 0 31 2 *", false),
            ("0 0 31 4,6 *", false),
            ("0 0 30,31 2 *", false),
            ("0 0 30 4 *", true),
            ("0 0 1 2 *", true),
            ("0 0 29 2 *", true),
            ("0 0 L 2 *", true),
            ("0 0 31 2 1", true),
        ] {
            assert_eq!(c(expr).fires_ever(), ever, "{expr}");
        }
        let monday_six = c("30 6 * * 1");
        assert!(monday_six.matches(dt("2026-01-05 06:30")));
        assert!(!monday_six.matches(dt("2026-01-05 06:31")));
        assert!(!monday_six.matches(dt("2026-01-05 07:30")));
        assert!(!monday_six.matches(dt("2026-01-06 06:30")));
        let twice = c("0,45 6 * * *");
        assert_eq!(
            twice.next_after(dt("2026-01-05 06:30")),
            Some(dt("2026-01-05 06:45"))
        );
        assert_eq!(
            twice.next_after(dt("2026-01-05 06:00")),
            Some(dt("2026-01-05 06:45"))
        );
        assert_eq!(twice.next_after_in(dt("2026-01-05 06:00"), &[]), None);
    }

    /// The irregular-step warnings as a user reads them: where the short gap is, and steps
    /// that divide the cycle (the expression's own spacing kept).
    #[test]
    fn irregular_step_warnings_say_where_the_gap_is() {
        let warn = |s: &str| {
            let w = Cron::parse(s).expect(s).irregular_steps();
            assert_eq!(w.len(), 1, "{s}: {w:?}");
            (w[0].message.clone(), w[0].help.clone())
        };
        assert_eq!(
            warn("0 6 */7 * *"),
            (
                "day-of-month step /7 fires on days 1,8,15,22,29, and again on day 1 only 1 day \
                 later when a month has 29 days: months are 28-31 days long"
                    .to_string(),
                "for a weekly run use a day of the week: `0 6 * * 1`".to_string()
            )
        );
        assert_eq!(
            warn("30 2 */2 * *"),
            (
                "day-of-month step /2 fires on days 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31, \
                 and again on day 1 only 1 day later when a month has 29 days: months are 28-31 \
                 days long"
                    .to_string(),
                "list fixed days instead (e.g. `30 2 1,15 * *`), or use a day of the week \
                 (`30 2 * * 1`)"
                    .to_string()
            )
        );
        assert_eq!(
            warn("*/40 * * * *"),
            (
                "minute step /40 fires at 0,40 and then wraps from 40 to 0 after only 20 (the \
                 other gaps are 40)"
                    .to_string(),
                "use a step that divides 60: `*/30 * * * *`".to_string()
            )
        );
        assert_eq!(
            warn("*/7  0 * * *"),
            (
                "minute step /7 fires at 0,7,14,21,28,35,42,49,56 and then wraps from 56 to 0 \
                 after only 4 (the other gaps are 7)"
                    .to_string(),
                "use a step that divides 60: `*/6  0 * * *` or `*/10  0 * * *`".to_string()
            )
        );
        assert_eq!(
            Cron::parse("0 0 */1 * *").unwrap().irregular_steps(),
            vec![]
        );
    }
}
