//! Five-field cron expressions (minute hour day-of-month month day-of-week), read the way
//! Airflow (croniter) reads them. Fields are stored as bitsets so matching is a few ANDs.
//!
//! Day rule: when neither day-of-month nor day-of-week is a bare `*`, a day matches if
//! EITHER matches (`0 6 1,15 * 1` fires on the 1st, the 15th and every Monday); otherwise
//! both must. `*/7` is not a bare `*`.

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
    /// bit m = minute m (0..60)
    minutes: u64,
    /// bit h = hour h (0..24)
    hours: u32,
    /// bit d = day of month d (1..=31)
    dom: u32,
    /// bit m = month m (1..=12)
    months: u16,
    /// bit d = weekday d, 0 = Sunday (7 is folded into 0)
    dow: u8,
    dom_star: bool,
    dow_star: bool,
    /// byte span of each of the five fields
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
    let help = if spec.names.is_empty() {
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

/// Parse one field into a bitset (bit v = value v). Returns (bits, open-ended step if any).
fn parse_field(text: &str, off: usize, spec: &FieldSpec) -> Result<(u64, Option<u32>), CronError> {
    let mut bits = 0u64;
    let mut open_step = None;
    let mut pos = 0usize;
    for term in text.split(',') {
        let toff = off + pos;
        pos += term.len() + 1;
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
        let (lo, hi) = if base == "*" {
            (spec.min, spec.max)
        } else if let Some(i) = base.find('-') {
            let a = parse_value(&base[..i], toff, spec)?;
            let b = parse_value(&base[i + 1..], toff + i + 1, spec)?;
            if a > b {
                return Err(err(
                    format!("reversed range {} in the {} field", base, spec.name),
                    toff..toff + base.len(),
                    Some(&format!(
                        "write the smaller value first: {}-{}",
                        &base[i + 1..],
                        &base[..i]
                    )),
                ));
            }
            (a, b)
        } else {
            let a = parse_value(base, toff, spec)?;
            // `a/n` means a-max/n, as croniter reads it
            if step.is_some() {
                (a, spec.max)
            } else {
                (a, a)
            }
        };
        // day-of-week 7 is Sunday, so a range to 7 is open-ended too
        if step.is_some() && hi == spec.max {
            open_step = Some(step_v);
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1u64 << v;
            v += step_v;
        }
    }
    Ok((bits, open_step))
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

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        // split on ASCII whitespace, keeping byte offsets
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
                Some("minute hour day-of-month month day-of-week, e.g. `0 6 * * 1`"),
            ));
        }
        let mut bits = [0u64; 5];
        let mut open_step = [None; 5];
        let mut spans: [Range<usize>; 5] = Default::default();
        for (k, (off, text)) in fields.iter().enumerate() {
            let (b, o) = parse_field(text, *off, &FIELDS[k])?;
            bits[k] = b;
            open_step[k] = o;
            spans[k] = *off..*off + text.len();
        }
        // fold weekday 7 into 0 (Sunday)
        let mut dow = bits[4];
        if dow & (1 << 7) != 0 {
            dow = (dow & !(1 << 7)) | 1;
        }
        Ok(Cron {
            source: expr.to_string(),
            minutes: bits[0],
            hours: bits[1] as u32,
            dom: bits[2] as u32,
            months: bits[3] as u16,
            dow: dow as u8,
            dom_star: fields[2].1 == "*",
            dow_star: fields[4].1 == "*",
            spans,
            open_step,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the cron fires on a day with this month, day of month and weekday (0 = Sunday).
    #[inline]
    pub fn matches_ymd(&self, month: u32, day: u32, weekday: u32) -> bool {
        if self.months & (1 << month) == 0 {
            return false;
        }
        let d = self.dom & (1 << day) != 0;
        let w = self.dow & (1 << weekday) != 0;
        if self.dom_star || self.dow_star {
            d && w
        } else {
            d || w
        }
    }

    pub fn matches_day(&self, d: NaiveDate) -> bool {
        self.matches_ymd(d.month(), d.day(), d.weekday().num_days_from_sunday())
    }

    /// True when every calendar day matches (lets analyses skip the calendar).
    pub fn every_day(&self) -> bool {
        let all_dom = self.dom == 0xFFFF_FFFE;
        let all_dow = self.dow == 0x7F;
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
    /// that exists in it (Feb 29 exists in leap years); with OR semantics any weekday does.
    pub fn fires_ever(&self) -> bool {
        if !(self.dom_star || self.dow_star) {
            // OR: any selected weekday occurs in every selected month
            return self.months != 0;
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
}
