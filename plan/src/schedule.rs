//! Exact schedule analysis: overlaps between heavy schedules, blackout overruns, stale reads.
//!
//! # Model
//! A schedule fires at every minute its cron matches (project local time) whose time of day is
//! not inside one of its `skip` windows. A run fired at t occupies [t, t + timeout). The
//! analysis is worst case: every fire happens and every run lasts its whole timeout. The
//! project starts at 2026-01-01T00:00 project local time: fires from then on count, and a
//! result is the first instant at which both runs are active (the earlier run may have fired
//! hours before that instant).
//!
//! # Why it is exact without sampling
//! A cron's times of day are the same on every day it matches, so a schedule is
//! (set of matching days) x (sorted minutes of day). Whether a run of X fired on day D at
//! minute tx meets a run of Y fired on day D+delta depends on the times of day and delta only,
//! never on the date; the day condition is periodic with the 400-year Gregorian cycle
//! (146 097 days, a whole number of weeks). So for each small delta (bounded by the timeout)
//! the analysis computes the earliest feasible time of day once, then scans one full cycle of
//! days as bitsets, 64 days per machine word. Pairs whose times of day can never meet are
//! rejected before any day is looked at.
//!
//! # Time zones (the DST rule)
//! UTC and fixed offsets are analysed in wall time, which is exact. For an IANA zone with
//! daylight saving time:
//! - a fire whose local time does not exist (spring forward gap) happens at the first instant
//!   after the gap (02:30 on a New York spring-forward day fires at 03:00 EDT); fires that fall
//!   in one gap therefore happen once;
//! - a fire whose local time is ambiguous (fall back) happens once, at the first occurrence;
//! - a run lasts its timeout in real (elapsed) time.
//!
//! The check reports the earlier of (1) the exact wall-time analysis above, and (2) an exact
//! enumeration, in real UTC time, of every fire of both schedules within timeout + 1 day of
//! every DST transition the zone database knows from 2026 up to 2426 (chrono-tz carries
//! explicit transitions only up to a fixed year; beyond it the runtime, which uses the same
//! database, applies a constant offset, so wall time is exact there). Between two transitions
//! real and wall time differ by a constant, so (1) is exact for runs that do not straddle a
//! transition and (2) is exact for those that do: no overlap is missed. On a transition day
//! (1) may report an overlap that exists in wall time only (one hour too close after fall
//! back); that errs on the side of caution. Blackout overruns are computed in wall time
//! (blackouts are wall-clock windows).
//!
//! The enumeration (2) is cheap: near a transition only the offsets on its two sides apply,
//! so fires map to UTC by integer arithmetic (chrono-tz is asked only where that does not
//! hold: neighbouring transitions within reach, odd offsets); a transition where either
//! schedule has no fire within reach costs a few day lookups; and the sweep stops at the first
//! transition whose window starts after the wall-time result, which it can no longer beat.
//! The original per-fire chrono-tz sweep is kept as the test reference
//! ([`first_overlap_reference`] and friends), and the answers are identical.

use crate::cron::{at_minute, Cron};
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Days in the Gregorian cycle; a multiple of 7, so weekdays repeat too.
const CYCLE: i64 = 146_097;
const DAY: i64 = 1440;
/// Start of the analysis, project local time.
pub const ANALYSIS_START: (i32, u32, u32) = (2026, 1, 1);
/// Last year whose DST transitions are enumerated in real time.
const DST_HORIZON_END_YEAR: i32 = 2426;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// Offset in minutes east of UTC.
    Fixed(i32),
    Iana(chrono_tz::Tz),
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Fixed(0) => f.write_str("UTC"),
            Zone::Fixed(m) => {
                let sign = if *m < 0 { '-' } else { '+' };
                write!(f, "{}{:02}:{:02}", sign, m.abs() / 60, m.abs() % 60)
            }
            Zone::Iana(tz) => f.write_str(tz.name()),
        }
    }
}

/// A daily window of minutes of day [from, to); `to < from` wraps past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DailyWindow {
    pub from: u16,
    pub to: u16,
}

impl DailyWindow {
    pub fn contains(&self, minute_of_day: u16) -> bool {
        if self.from <= self.to {
            self.from <= minute_of_day && minute_of_day < self.to
        } else {
            minute_of_day >= self.from || minute_of_day < self.to
        }
    }

    /// Length in minutes (0 when from == to).
    pub fn len(&self) -> i64 {
        (self.to as i64 - self.from as i64).rem_euclid(DAY)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    pub cron: Cron,
    pub timeout_min: u32,
    pub heavy: bool,
    pub skip: Vec<DailyWindow>,
}

impl Tier {
    /// A schedule as the analysis sees it: `stir check`, `stir timeline` and the console all
    /// build it here, so a timeout counts as whole minutes, rounded up, everywhere.
    pub fn new(
        name: &str,
        cron: Cron,
        timeout_secs: u64,
        heavy: bool,
        skip: Vec<DailyWindow>,
    ) -> Tier {
        Tier {
            name: name.to_string(),
            cron,
            timeout_min: timeout_secs.div_ceil(60).min(u32::MAX as u64) as u32,
            heavy,
            skip,
        }
    }

    /// Times of day at which the tier really fires (skip windows removed).
    pub fn fire_times(&self) -> Vec<u16> {
        self.cron
            .times_of_day()
            .into_iter()
            .filter(|m| !self.skip.iter().any(|w| w.contains(*m)))
            .collect()
    }
}

/// Two runs active at one instant (project local time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub instant: NaiveDateTime,
    pub a_fire: NaiveDateTime,
    pub a_end: NaiveDateTime,
    pub b_fire: NaiveDateTime,
    pub b_end: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overrun {
    pub fire: NaiveDateTime,
    pub end: NaiveDateTime,
    pub blackout_start: NaiveDateTime,
}

fn start_date() -> NaiveDate {
    let (y, m, d) = ANALYSIS_START;
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn start_dt() -> NaiveDateTime {
    start_date().and_time(chrono::NaiveTime::MIN)
}

/// Minutes since the analysis start -> local wall time.
fn wall(abs_min: i64) -> NaiveDateTime {
    start_dt() + Duration::minutes(abs_min)
}

// ---------------------------------------------------------------- day bitsets

/// A schedule prepared for analysis: fire times of day, duration, and its matching days as a
/// bitset over days [0, EXT_BITS) from the analysis start. Nothing fires before the
/// start (the project begins then), so days < 0 read as 0; later days repeat every cycle.
#[derive(Debug, Clone)]
struct Prepared {
    times: Vec<u16>,
    dur: i64,
    /// bit j <=> day j matches
    ext: Arc<Vec<u64>>,
    ever: bool,
}

const EXT_BITS: i64 = 2 * CYCLE + 192;

/// The day bits of each day pattern already made: `stir check` asks for the same few
/// patterns for every pair of schedules it compares. Bounded, so a fuzz run of random crons
/// does not keep them all (each is 36 KiB).
static DAY_BITS: std::sync::Mutex<BTreeMap<[String; 3], Arc<Vec<u64>>>> =
    std::sync::Mutex::new(BTreeMap::new());
const DAY_BITS_KEPT: usize = 256;

/// Bit j <=> day j after [`start_date`] matches `cron`'s day fields, for j < [`EXT_BITS`]:
/// one 400-year cycle built a month at a time (no date arithmetic), then the same days again.
fn day_bits(cron: &Cron) -> Arc<Vec<u64>> {
    let words = (EXT_BITS as usize).div_ceil(64);
    if cron.every_day() {
        // One shared copy: every pair check of an every-day schedule asks for it.
        static EVERY_DAY: std::sync::OnceLock<Arc<Vec<u64>>> = std::sync::OnceLock::new();
        return EVERY_DAY
            .get_or_init(|| Arc::new(vec![u64::MAX; (EXT_BITS as usize).div_ceil(64)]))
            .clone();
    }
    let key = cron.day_fields().map(str::to_string);
    if let Some(bits) = DAY_BITS.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return bits.clone();
    }
    // A month's matching days depend only on (month, weekday of its 1st, its length): ask the
    // cron once for each of those 336 cases, then lay the cycle's 4,800 months down as masks.
    let case = |m: u32, wd1: u32, len: u32| (((m - 1) * 7 + wd1) * 4 + (len - 28)) as usize;
    let mut masks = vec![0u32; 12 * 7 * 4];
    for m in 1..=12 {
        for wd1 in 0..7 {
            for len in 28..=31 {
                masks[case(m, wd1, len)] = (1..=len)
                    .filter(|&d| cron.matches_ymd(m, d, (wd1 + d - 1) % 7, len))
                    .fold(0, |acc, d| acc | 1 << (d - 1));
            }
        }
    }
    let mut ext = vec![0u64; words];
    let d0 = start_date();
    let (mut y, mut m) = (d0.year(), d0.month());
    // The cycle starts on the 1st: a start inside a month would need that month cut.
    debug_assert_eq!(d0.day(), 1);
    let mut wd1 = d0.weekday().num_days_from_sunday();
    let mut p: i64 = 0;
    while p < CYCLE {
        let len = crate::cron::month_len(y, m);
        let mask = u64::from(masks[case(m, wd1, len)]);
        let (w, s) = ((p / 64) as usize, (p % 64) as u32);
        ext[w] |= mask << s;
        if s > 0 && s + len > 64 {
            ext[w + 1] |= mask >> (64 - s);
        }
        p += i64::from(len);
        wd1 = (wd1 + len) % 7;
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    // Later cycles repeat the first: bit j = bit j - CYCLE, read from words already final.
    for w in (CYCLE / 64) as usize..words {
        ext[w] |= get64(&ext, w as i64 * 64 - CYCLE);
    }
    if EXT_BITS % 64 != 0 {
        ext[words - 1] &= (1 << (EXT_BITS % 64)) - 1;
    }
    let ext = Arc::new(ext);
    let mut kept = DAY_BITS.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() < DAY_BITS_KEPT {
        kept.insert(key, ext.clone());
    }
    ext
}

impl Prepared {
    fn new(t: &Tier) -> Prepared {
        let times = t.fire_times();
        let ever = !times.is_empty() && t.cron.fires_ever();
        let ext = if ever {
            day_bits(&t.cron)
        } else {
            Arc::new(vec![0u64; (EXT_BITS as usize).div_ceil(64)])
        };
        Prepared {
            times,
            dur: t.timeout_min as i64,
            ext,
            ever,
        }
    }

    fn day(&self, d: i64) -> bool {
        if d < 0 {
            return false;
        }
        let j = d.rem_euclid(CYCLE) as usize;
        self.ext[j / 64] & (1 << (j % 64)) != 0
    }

    /// First matching day at or after the start.
    fn first_day_from_start(&self) -> Option<i64> {
        if !self.ever {
            return None;
        }
        (0..CYCLE).find(|d| self.day(*d))
    }
}

/// 64 bits of `bits` starting at bit `start` (bits beyond the end read as 0).
#[inline]
fn get64(bits: &[u64], start: i64) -> u64 {
    if start < 0 {
        // days before the start never match
        return if start <= -64 {
            0
        } else {
            get64(bits, 0) << (-start)
        };
    }
    let w = (start / 64) as usize;
    let s = (start % 64) as u32;
    let lo = bits.get(w).copied().unwrap_or(0);
    if s == 0 {
        return lo;
    }
    let hi = bits.get(w + 1).copied().unwrap_or(0);
    (lo >> s) | (hi << (64 - s))
}

/// out[j] = bits[j - n] (shift toward higher indices), same length.
fn shift_up(bits: &[u64], n: i64) -> Vec<u64> {
    (0..bits.len())
        .map(|w| get64(bits, w as i64 * 64 - n))
        .collect()
}

/// out[j] = OR of bits[j - k] for k in 1..=w.
fn dilate(bits: &[u64], w: i64) -> Vec<u64> {
    let mut cur = shift_up(bits, 1); // covers k in 1..=1
    let mut n = 1;
    while 2 * n <= w {
        let s = shift_up(&cur, n);
        cur.iter_mut().zip(s).for_each(|(a, b)| *a |= b);
        n *= 2;
    }
    if n < w {
        let s = shift_up(&cur, w - n);
        cur.iter_mut().zip(s).for_each(|(a, b)| *a |= b);
    }
    cur
}

/// One family of day offsets (other fire day = anchor day + delta) with the earliest anchor
/// time of day that works for it.
struct Group {
    /// earliest feasible anchor time of day
    m: u16,
    /// other's time of day paired with it
    ty: u16,
    /// Single delta, or a full range of deltas `lo..=-1` where every pair of times works.
    delta: i64,
    full_width: i64,
    /// other's day bits aligned so that bit (j) answers "other fires on a day of this group"
    bits: Option<Vec<u64>>,
}

/// The first fire L >= 0 of `x` at which a run of `y` is active (y fired at O <= L < O + y.dur).
/// Returns (L, O) in minutes since the analysis start.
fn first_anchor(x: &Prepared, y: &Prepared) -> Option<(i64, i64)> {
    if !x.ever || !y.ever || y.dur <= 0 {
        return None;
    }
    let (tx0, txl) = (x.times[0] as i64, *x.times.last()? as i64);
    let (ty0, tyl) = (y.times[0] as i64, *y.times.last()? as i64);
    // Deltas <= -1 from `df` on are "full": every pair of times meets.
    let df = (txl - ty0 - y.dur).div_euclid(DAY) + 1;
    let mut groups: Vec<Group> = Vec::new();
    let partial = |delta: i64, groups: &mut Vec<Group>| {
        for &tx in &x.times {
            let lim = tx as i64 - DAY * delta;
            let i = y.times.partition_point(|&t| (t as i64) <= lim);
            if i == 0 {
                continue;
            }
            let ty = y.times[i - 1];
            if ty as i64 + DAY * delta + y.dur > tx as i64 {
                groups.push(Group {
                    m: tx,
                    ty,
                    delta,
                    full_width: 0,
                    bits: None,
                });
                return;
            }
        }
    };
    partial(0, &mut groups);
    // partial deltas below the full range (or below 0 when there is no full range)
    let mut delta = df.min(0) - 1;
    while DAY * delta + tyl + y.dur > tx0 && delta >= -CYCLE {
        partial(delta, &mut groups);
        delta -= 1;
    }
    if df <= -1 {
        let width = (-df).min(CYCLE);
        groups.push(Group {
            m: x.times[0],
            ty: y.times[y.times.len() - 1],
            delta: -1,
            full_width: width,
            bits: Some(dilate(&y.ext, width)),
        });
    }
    if groups.is_empty() {
        return None;
    }
    // Other's days before the start are empty, so the pattern is periodic only once anchor
    // days are past the longest look-back: scan one cycle plus that margin.
    let back = groups
        .iter()
        .map(|g| g.full_width.max(-g.delta))
        .max()
        .unwrap_or(0);
    let words = ((CYCLE + back) as usize).div_ceil(64) + 1;
    let mut masks = vec![0u64; groups.len()];
    for wi in 0..words {
        let d = wi as i64 * 64;
        let xw = get64(&x.ext, d);
        if xw == 0 {
            continue;
        }
        let mut any = 0u64;
        for (g, mask) in groups.iter().zip(masks.iter_mut()) {
            let yw = match &g.bits {
                Some(b) => get64(b, d),
                None => get64(&y.ext, d + g.delta),
            };
            *mask = xw & yw;
            any |= *mask;
        }
        if any == 0 {
            continue;
        }
        let bit = any.trailing_zeros() as i64;
        let day = d + bit;
        // the earliest time among groups active that day; ties go to the latest other fire
        let mut best: Option<(i64, i64)> = None;
        for (g, mask) in groups.iter().zip(masks.iter()) {
            if mask & (1 << bit) == 0 {
                continue;
            }
            let other_day = if g.full_width > 0 {
                (1..=g.full_width)
                    .map(|k| day - k)
                    .find(|od| y.day(*od))
                    .unwrap_or(day - 1)
            } else {
                day + g.delta
            };
            let cand = (day * DAY + g.m as i64, other_day * DAY + g.ty as i64);
            best = match best {
                Some(b) if (b.0, -b.1) <= (cand.0, -cand.1) => Some(b),
                _ => Some(cand),
            };
        }
        return best;
    }
    None
}

/// Wall-time first overlap: (instant, a_fire, b_fire) in minutes since the start.
fn first_overlap_wall(a: &Prepared, b: &Prepared) -> Option<(i64, i64, i64)> {
    if a.dur <= 0 || b.dur <= 0 {
        return None;
    }
    let r1 = first_anchor(a, b).map(|(l, o)| (l, l, o));
    let r2 = first_anchor(b, a).map(|(l, o)| (l, o, l));
    match (r1, r2) {
        (Some(x), Some(y)) => Some(if y.0 < x.0 { y } else { x }),
        (x, y) => x.or(y),
    }
}

// ---------------------------------------------------------------- zones and DST

impl Zone {
    /// "UTC", "Z", "+05:30", "-0800", or an IANA name such as "Asia/Kolkata".
    pub fn parse(s: &str) -> Option<Zone> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("etc/utc") {
            return Some(Zone::Fixed(0));
        }
        if let Some(rest) = t
            .strip_prefix('+')
            .map(|r| (1, r))
            .or_else(|| t.strip_prefix('-').map(|r| (-1, r)))
        {
            let (sign, r) = rest;
            let digits: String = r.chars().filter(|c| *c != ':').collect();
            if !(digits.len() == 4 || digits.len() == 2)
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let h: i32 = digits.get(0..2)?.parse().ok()?;
            let m: i32 = if digits.len() == 4 {
                digits.get(2..4)?.parse().ok()?
            } else {
                0
            };
            if h > 18 || m > 59 || (r.contains(':') && r.len() != 5) {
                return None;
            }
            return Some(Zone::Fixed(sign * (h * 60 + m)));
        }
        t.parse::<chrono_tz::Tz>().ok().map(Zone::Iana)
    }

    /// Local wall time -> UTC instant under the DST rule (gap: first instant after it;
    /// ambiguous: first occurrence).
    pub fn to_utc(&self, w: NaiveDateTime) -> DateTime<Utc> {
        match self {
            Zone::Fixed(off) => Utc.from_utc_datetime(&(w - Duration::minutes(*off as i64))),
            Zone::Iana(tz) => match tz.from_local_datetime(&w) {
                chrono::LocalResult::Single(x) => x.with_timezone(&Utc),
                chrono::LocalResult::Ambiguous(x, y) => {
                    x.with_timezone(&Utc).min(y.with_timezone(&Utc))
                }
                chrono::LocalResult::None => {
                    // the first existing wall minute after the gap is the transition instant
                    for k in 1..=24 * 60 {
                        if let Some(x) = tz
                            .from_local_datetime(&(w + Duration::minutes(k)))
                            .earliest()
                        {
                            return x.with_timezone(&Utc);
                        }
                    }
                    Utc.from_utc_datetime(&w)
                }
            },
        }
    }

    /// UTC instant -> local wall time.
    pub fn to_local(&self, u: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Fixed(off) => u.naive_utc() + Duration::minutes(*off as i64),
            Zone::Iana(tz) => u.with_timezone(tz).naive_local(),
        }
    }

    /// The next fire strictly after `after`, skip windows and the DST rule applied.
    pub fn next_fire_utc(
        &self,
        cron: &Cron,
        skip: &[DailyWindow],
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let times: Vec<u16> = cron
            .times_of_day()
            .into_iter()
            .filter(|m| !skip.iter().any(|w| w.contains(*m)))
            .collect();
        let local = self.to_local(after);
        // start a little earlier: a fire in a gap or a first occurrence maps forward/back
        let slack = match self {
            Zone::Fixed(_) => Duration::zero(),
            Zone::Iana(_) => Duration::hours(26),
        };
        let mut w = local - slack - Duration::minutes(1);
        // bound the walk: at most two cycles of distinct wall fires are needed in practice
        for _ in 0..100_000 {
            let c = cron.next_after_in(w, &times)?;
            let u = self.to_utc(c);
            if u > after {
                return Some(u);
            }
            w = c;
        }
        None
    }

    /// DST transitions (UTC) from 2025-12 until the horizon end; empty for fixed zones.
    fn transitions(&self) -> Vec<DateTime<Utc>> {
        self.transition_info()
            .iter()
            .map(|t| utc_min(t.at))
            .collect()
    }

    /// DST transitions with the offsets around them; empty for fixed zones.
    /// Cached per thread: scanning 400 years takes a few milliseconds.
    fn transition_info(&self) -> std::rc::Rc<Vec<Trans>> {
        thread_local! {
            static CACHE: std::cell::RefCell<Vec<(chrono_tz::Tz, std::rc::Rc<Vec<Trans>>)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let Zone::Iana(tz) = self else {
            return std::rc::Rc::new(Vec::new());
        };
        if let Some(v) = CACHE.with(|c| {
            c.borrow()
                .iter()
                .find(|(z, _)| z == tz)
                .map(|(_, v)| v.clone())
        }) {
            return v;
        }
        let v = std::rc::Rc::new(self.scan_transitions());
        CACHE.with(|c| c.borrow_mut().push((*tz, v.clone())));
        v
    }

    fn scan_transitions(&self) -> Vec<Trans> {
        let Zone::Iana(tz) = self else {
            return Vec::new();
        };
        let mut out: Vec<Trans> = Vec::new();
        let Some(begin) = NaiveDate::from_ymd_opt(ANALYSIS_START.0 - 1, 12, 1) else {
            return out;
        };
        let Some(end) = NaiveDate::from_ymd_opt(DST_HORIZON_END_YEAR + 1, 1, 1) else {
            return out;
        };
        let off_s = |sec: i64| {
            let t = DateTime::<Utc>::from_timestamp(sec, 0)
                .unwrap_or_default()
                .naive_utc();
            tz.offset_from_utc_datetime(&t).fix().local_minus_utc() as i64
        };
        let off = |m: i64| off_s(m * 60);
        let mut prev_t = begin.and_time(chrono::NaiveTime::MIN).and_utc().timestamp() / 60;
        let begin_t = prev_t;
        let end_t = end.and_time(chrono::NaiveTime::MIN).and_utc().timestamp() / 60;
        let mut prev = off(prev_t);
        // daily probes, then bisection to the minute
        while prev_t < end_t {
            let t = prev_t + DAY;
            let o = off(t);
            if o != prev {
                let (mut lo, mut hi) = (prev_t, t);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if off(mid) == prev {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                let after = off(hi);
                // the integer mapping is exact only for whole-minute offsets that change
                // exactly at `hi` (not a second earlier) by less than a day
                let exact = prev % 60 == 0
                    && after % 60 == 0
                    && after == o
                    && off_s(hi * 60 - 1) == prev
                    && (after - prev).abs() < DAY * 60;
                out.push(Trans {
                    at: hi,
                    before: prev / 60,
                    after: after / 60,
                    prev: out.last().map_or(begin_t, |p| p.at),
                    next: end_t,
                    exact,
                });
                if let Some(n) = out.len().checked_sub(2).and_then(|i| out.get_mut(i)) {
                    n.next = hi;
                }
                prev = o;
            }
            prev_t = t;
        }
        out
    }
}

/// One DST transition, with what the integer local <-> UTC mapping near it needs.
#[derive(Debug, Clone, Copy)]
struct Trans {
    /// UTC minutes since the epoch of the first instant with the new offset.
    at: i64,
    /// Offsets (minutes east of UTC) before `at` and from `at` on.
    before: i64,
    after: i64,
    /// The neighbouring transitions (or the ends of the scanned span), UTC minutes.
    prev: i64,
    next: i64,
    /// Whole-minute offsets changing exactly at `at`, by less than a day.
    exact: bool,
}

impl Trans {
    /// Whether [lo, hi] (UTC minutes) is far enough from the neighbouring transitions that
    /// only `before` and `after` apply to every fire looked at (days are enumerated one day
    /// beyond the local dates of lo and hi; offsets stay within a day).
    fn simple_around(&self, lo: i64, hi: i64) -> bool {
        self.exact && self.prev < lo - 5 * DAY && self.next > hi + 5 * DAY
    }

    /// UTC minute -> local wall minute (both since the epoch), valid near the transition.
    fn local(&self, u: i64) -> i64 {
        u + if u < self.at { self.before } else { self.after }
    }

    /// Local wall minute -> UTC minute under the DST rule, valid near the transition:
    /// ambiguous -> the first occurrence, gap -> the transition instant. Same as
    /// `Zone::to_utc` there (whole-minute offsets, one change of less than a day).
    fn utc(&self, wl: i64) -> i64 {
        let c1 = wl - self.before;
        let c2 = wl - self.after;
        match (c1 < self.at, c2 >= self.at) {
            (true, true) => c1.min(c2),
            (true, false) => c1,
            (false, true) => c2,
            (false, false) => self.at,
        }
    }
}

/// Real-time windows (UTC minutes since epoch) of a tier's fires whose UTC fire lies in [lo, hi].
fn real_windows(
    t: &Tier,
    times: &[u16],
    zone: &Zone,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Vec<(i64, i64, NaiveDateTime)> {
    let mut out: Vec<(i64, i64, NaiveDateTime)> = Vec::new();
    let from = zone.to_local(lo).date() - Duration::days(1);
    let to = zone.to_local(hi).date() + Duration::days(1);
    let mut d = from;
    while d <= to {
        if t.cron.matches_day(d) {
            for &m in times {
                let w = at_minute(d, m);
                let u = zone.to_utc(w);
                if u >= lo && u <= hi {
                    let s = u.timestamp() / 60;
                    // fires mapped onto one instant (a gap) happen once
                    if out.last().map(|x| x.0) != Some(s) {
                        out.push((s, s + t.timeout_min as i64, w));
                    }
                }
            }
        }
        let Some(n) = d.succ_opt() else { break };
        d = n;
    }
    out.sort();
    out.dedup_by_key(|x| x.0);
    out
}

/// Real-time sweep around DST transitions. With `anchor_only`, only fires of `a` are tested
/// against active runs of `b` (stale read); otherwise both ways. Returns (instant, a_fire, b_fire)
/// as UTC minutes since the epoch, plus the wall times of both fires.
///
/// The reference implementation (every fire through chrono-tz, per pair and transition); the
/// analyses use [`Ctx::dst_first`], which must give the same answer.
fn dst_first_reference(
    a: &Tier,
    b: &Tier,
    zone: &Zone,
    transitions: &[DateTime<Utc>],
    anchor_only: bool,
) -> Option<(i64, NaiveDateTime, NaiveDateTime)> {
    if transitions.is_empty() || b.timeout_min == 0 || (!anchor_only && a.timeout_min == 0) {
        return None;
    }
    let (ta, tb) = (a.fire_times(), b.fire_times());
    if ta.is_empty() || tb.is_empty() {
        return None;
    }
    let start_u = zone.to_utc(start_dt()).timestamp() / 60;
    let margin = Duration::minutes(a.timeout_min.max(b.timeout_min) as i64) + Duration::days(1);
    for tr in transitions {
        let (lo, hi) = ((*tr - margin).max(utc_min(start_u)), *tr + margin);
        if hi < lo {
            continue;
        }
        let wa = real_windows(a, &ta, zone, lo, hi);
        let wb = real_windows(b, &tb, zone, lo, hi);
        // merge by fire time; track the run of each side that ends last
        let (mut i, mut j) = (0, 0);
        let mut a_best: Option<(i64, NaiveDateTime)> = None; // (end, fire wall)
        let mut b_best: Option<(i64, NaiveDateTime)> = None;
        while i < wa.len() || j < wb.len() {
            let take_a = j >= wb.len() || (i < wa.len() && wa[i].0 <= wb[j].0);
            if take_a {
                let (s, e, w) = wa[i];
                i += 1;
                // an `a` fire tie with a `b` fire: register b first so the tie is seen
                while j < wb.len() && wb[j].0 == s {
                    if b_best.is_none_or(|x| wb[j].1 > x.0) {
                        b_best = Some((wb[j].1, wb[j].2));
                    }
                    j += 1;
                }
                if let Some((be, bw)) = b_best {
                    let inst = s.max(start_u);
                    if be > inst && (anchor_only || e > inst) && (s >= start_u || !anchor_only) {
                        return Some((inst, w, bw));
                    }
                }
                if a_best.is_none_or(|x| e > x.0) {
                    a_best = Some((e, w));
                }
            } else {
                let (s, e, w) = wb[j];
                j += 1;
                if !anchor_only {
                    if let Some((ae, aw)) = a_best {
                        let inst = s.max(start_u);
                        if ae > inst && e > inst {
                            return Some((inst, aw, w));
                        }
                    }
                }
                if b_best.is_none_or(|x| e > x.0) {
                    b_best = Some((e, w));
                }
            }
        }
    }
    None
}

/// A fire in real time: (UTC minute since the epoch, local wall minute since the epoch).
type Fire = (i64, i64);

/// Local wall minute since the epoch -> local wall time.
fn wall_of_epoch_min(wl: i64) -> NaiveDateTime {
    utc_min(wl).naive_utc()
}

/// Fires of `t` whose UTC instant lies in [lo, hi], sorted, one per UTC minute (the earliest
/// wall fire mapped onto it): the same list as [`real_windows`], into `out`.
#[allow(clippy::too_many_arguments)]
fn fill_fires(
    out: &mut Vec<Fire>,
    t: &Tier,
    p: &Prepared,
    zone: &Zone,
    tr: &Trans,
    start_day: i64,
    lo: i64,
    hi: i64,
) {
    out.clear();
    if !tr.simple_around(lo, hi) {
        let w = real_windows(t, &p.times, zone, utc_min(lo), utc_min(hi));
        out.extend(
            w.into_iter()
                .map(|(s, _, w)| (s, w.and_utc().timestamp() / 60)),
        );
        return;
    }
    // Local -> UTC is non-decreasing in wall time, so fires come out sorted; a gap maps
    // several wall fires onto one instant, of which the first (earliest wall) is kept.
    let d0 = tr.local(lo).div_euclid(DAY) - 1;
    let d1 = tr.local(hi).div_euclid(DAY) + 1;
    for d in d0..=d1 {
        let di = d - start_day;
        let matches = if di >= 0 {
            p.day(di)
        } else {
            // before the analysis start the bitset reads 0; ask the cron itself
            t.cron.matches_day(wall_of_epoch_min(d * DAY).date())
        };
        if !matches {
            continue;
        }
        for &m in &p.times {
            let wl = d * DAY + m as i64;
            let s = tr.utc(wl);
            if s < lo {
                continue;
            }
            if s > hi {
                return;
            }
            if out.last().map(|x| x.0) != Some(s) {
                out.push((s, wl));
            }
        }
    }
}

/// The first hit of the real-time sweep over two sorted fire lists (durations `da`, `db`):
/// the merge of [`dst_first_reference`]. Returns (instant, a_fire, b_fire) as epoch minutes
/// (fires as local wall minutes).
fn merge_first(
    wa: &[Fire],
    da: i64,
    wb: &[Fire],
    db: i64,
    start_u: i64,
    anchor_only: bool,
) -> Option<(i64, i64, i64)> {
    let (mut i, mut j) = (0, 0);
    let mut a_best: Option<(i64, i64)> = None; // (end, fire wall)
    let mut b_best: Option<(i64, i64)> = None;
    while i < wa.len() || j < wb.len() {
        let take_a = j >= wb.len() || (i < wa.len() && wa[i].0 <= wb[j].0);
        if take_a {
            let (s, w) = wa[i];
            let e = s + da;
            i += 1;
            // an `a` fire tie with a `b` fire: register b first so the tie is seen
            while j < wb.len() && wb[j].0 == s {
                let be = wb[j].0 + db;
                if b_best.is_none_or(|x| be > x.0) {
                    b_best = Some((be, wb[j].1));
                }
                j += 1;
            }
            if let Some((be, bw)) = b_best {
                let inst = s.max(start_u);
                if be > inst && (anchor_only || e > inst) && (s >= start_u || !anchor_only) {
                    return Some((inst, w, bw));
                }
            }
            if a_best.is_none_or(|x| e > x.0) {
                a_best = Some((e, w));
            }
        } else {
            let (s, w) = wb[j];
            let e = s + db;
            j += 1;
            if !anchor_only {
                if let Some((ae, aw)) = a_best {
                    let inst = s.max(start_u);
                    if ae > inst && e > inst {
                        return Some((inst, aw, w));
                    }
                }
            }
            if b_best.is_none_or(|x| e > x.0) {
                b_best = Some((e, w));
            }
        }
    }
    None
}

fn utc_min(m: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(m * 60, 0).unwrap_or_default()
}

/// End of a run fired at wall time `fire`, as local wall time (real-time duration).
fn end_of(zone: &Zone, fire: NaiveDateTime, timeout: u32) -> NaiveDateTime {
    match zone {
        Zone::Fixed(_) => fire + Duration::minutes(timeout as i64),
        Zone::Iana(_) => zone.to_local(zone.to_utc(fire) + Duration::minutes(timeout as i64)),
    }
}

// ---------------------------------------------------------------- public analyses

/// Shared precomputation for many pairs in one zone.
struct Ctx {
    zone: Zone,
    /// DST transitions with their offsets (empty for fixed zones).
    trans: std::rc::Rc<Vec<Trans>>,
    /// The analysis start in UTC minutes since the epoch.
    start_u: i64,
    /// The analysis start date in days since the epoch.
    start_day: i64,
    /// Use the uncached reference sweep ([`dst_first_reference`]).
    reference: bool,
}

/// A DST hit can be reported up to a day and two hours (the largest offset change) earlier
/// than its UTC instant, once mapped to local time and back; two days bound that.
const DST_SLACK: i64 = 2 * DAY;

impl Ctx {
    fn new(zone: &Zone) -> Ctx {
        Ctx {
            zone: zone.clone(),
            trans: zone.transition_info(),
            start_u: zone.to_utc(start_dt()).timestamp() / 60,
            start_day: start_date()
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp()
                / 60
                / DAY,
            reference: false,
        }
    }

    #[cfg(feature = "reference")]
    fn reference(zone: &Zone) -> Ctx {
        Ctx {
            reference: true,
            ..Ctx::new(zone)
        }
    }

    /// The real-time sweep around DST transitions: the same answer as
    /// [`dst_first_reference`] whenever that answer is at or before `limit` + [`DST_SLACK`]
    /// (UTC minutes), else possibly None. Fires are computed with integer offsets near each
    /// transition, transitions where either tier has no fire within reach are skipped, and
    /// the sweep stops at the first transition whose window starts past the limit.
    fn dst_first(
        &self,
        a: &Tier,
        pa: &Prepared,
        b: &Tier,
        pb: &Prepared,
        anchor_only: bool,
        limit: Option<i64>,
    ) -> Option<(i64, NaiveDateTime, NaiveDateTime)> {
        if self.reference {
            let transitions = self.zone.transitions();
            return dst_first_reference(a, b, &self.zone, &transitions, anchor_only);
        }
        if self.trans.is_empty()
            || b.timeout_min == 0
            || (!anchor_only && a.timeout_min == 0)
            || pa.times.is_empty()
            || pb.times.is_empty()
        {
            return None;
        }
        let (da, db) = (a.timeout_min as i64, b.timeout_min as i64);
        let margin = da.max(db) + DAY;
        let (mut fa, mut fb): (Vec<Fire>, Vec<Fire>) = (Vec::new(), Vec::new());
        for tr in self.trans.iter() {
            let (lo, hi) = ((tr.at - margin).max(self.start_u), tr.at + margin);
            if limit.is_some_and(|l| lo > l + DST_SLACK) {
                // every later window starts later still: no hit there can be the earliest
                break;
            }
            if hi < lo {
                continue;
            }
            fill_fires(&mut fa, a, pa, &self.zone, tr, self.start_day, lo, hi);
            if fa.is_empty() {
                continue;
            }
            fill_fires(&mut fb, b, pb, &self.zone, tr, self.start_day, lo, hi);
            if fb.is_empty() {
                continue;
            }
            if let Some((i, wa, wb)) = merge_first(&fa, da, &fb, db, self.start_u, anchor_only) {
                return Some((i, wall_of_epoch_min(wa), wall_of_epoch_min(wb)));
            }
        }
        None
    }

    fn overlap(&self, a: &Tier, pa: &Prepared, b: &Tier, pb: &Prepared) -> Option<Overlap> {
        let z = &self.zone;
        let w = first_overlap_wall(pa, pb).map(|(i, fa, fb)| (wall(i), wall(fa), wall(fb)));
        let limit = w.map(|x| z.to_utc(x.0).timestamp() / 60);
        let r = self
            .dst_first(a, pa, b, pb, false, limit)
            .map(|(i, fa, fb)| (z.to_local(utc_min(i)), fa, fb));
        let pick = match (w, r) {
            (Some(x), Some(y)) => {
                if z.to_utc(y.0) < z.to_utc(x.0) {
                    Some(y)
                } else {
                    Some(x)
                }
            }
            (x, y) => x.or(y),
        };
        pick.map(|(instant, af, bf)| Overlap {
            instant,
            a_fire: af,
            a_end: end_of(z, af, a.timeout_min),
            b_fire: bf,
            b_end: end_of(z, bf, b.timeout_min),
        })
    }

    fn stale(&self, owner: &Tier, po: &Prepared, reader: &Tier, pr: &Prepared) -> Option<Overlap> {
        let z = &self.zone;
        let w = first_anchor(pr, po).map(|(l, o)| (wall(l), wall(o), wall(l)));
        let limit = w.map(|x| z.to_utc(x.0).timestamp() / 60);
        let r = self
            .dst_first(reader, pr, owner, po, true, limit)
            .map(|(i, fr, fo)| (z.to_local(utc_min(i)), fo, fr));
        let pick = match (w, r) {
            (Some(x), Some(y)) => Some(if z.to_utc(y.0) < z.to_utc(x.0) { y } else { x }),
            (x, y) => x.or(y),
        };
        pick.map(|(instant, of, rf)| Overlap {
            instant,
            a_fire: of,
            a_end: end_of(z, of, owner.timeout_min),
            b_fire: rf,
            b_end: end_of(z, rf, reader.timeout_min),
        })
    }

    fn heavy_overlaps(&self, tiers: &[Tier]) -> Vec<(usize, usize, Overlap)> {
        let heavy: Vec<(usize, Prepared)> = tiers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.heavy)
            .map(|(i, t)| (i, Prepared::new(t)))
            .collect();
        let mut out = Vec::new();
        for (x, (i, pi)) in heavy.iter().enumerate() {
            for (j, pj) in heavy.iter().skip(x + 1) {
                if let Some(o) = self.overlap(&tiers[*i], pi, &tiers[*j], pj) {
                    out.push((*i, *j, o));
                }
            }
        }
        out
    }
}

/// The first instant >= 2026-01-01T00:00 (local) at which runs of `a` and `b` can both be
/// active, worst case. None when they never can.
pub fn first_overlap(a: &Tier, b: &Tier, zone: &Zone) -> Option<Overlap> {
    let ctx = Ctx::new(zone);
    ctx.overlap(a, &Prepared::new(a), b, &Prepared::new(b))
}

/// Every pair (i < j) of heavy tiers that can overlap, with the first overlap, sorted by (i, j).
pub fn heavy_overlaps(tiers: &[Tier], zone: &Zone) -> Vec<(usize, usize, Overlap)> {
    Ctx::new(zone).heavy_overlaps(tiers)
}

#[cfg(feature = "reference")]
/// [`first_overlap`] with the original, uncached DST sweep (every fire through chrono-tz, per
/// pair and transition). For tests and benchmarks only: slow in zones with DST.
#[doc(hidden)]
pub fn first_overlap_reference(a: &Tier, b: &Tier, zone: &Zone) -> Option<Overlap> {
    let ctx = Ctx::reference(zone);
    ctx.overlap(a, &Prepared::new(a), b, &Prepared::new(b))
}

#[cfg(feature = "reference")]
/// [`heavy_overlaps`] with the original, uncached DST sweep. For tests and benchmarks only.
#[doc(hidden)]
pub fn heavy_overlaps_reference(tiers: &[Tier], zone: &Zone) -> Vec<(usize, usize, Overlap)> {
    Ctx::reference(zone).heavy_overlaps(tiers)
}

#[cfg(feature = "reference")]
/// The real-time DST sweep alone: the first hit around the transitions as (instant in UTC,
/// a_fire, b_fire), with no wall-time analysis and no early stop; `anchor_only` tests only
/// fires of `a` against runs of `b` (stale read). `reference` selects the original uncached
/// sweep. For tests only.
#[doc(hidden)]
pub fn dst_sweep(
    a: &Tier,
    b: &Tier,
    zone: &Zone,
    anchor_only: bool,
    reference: bool,
) -> Option<(DateTime<Utc>, NaiveDateTime, NaiveDateTime)> {
    let ctx = if reference {
        Ctx::reference(zone)
    } else {
        Ctx::new(zone)
    };
    ctx.dst_first(
        a,
        &Prepared::new(a),
        b,
        &Prepared::new(b),
        anchor_only,
        None,
    )
    .map(|(i, fa, fb)| (utc_min(i), fa, fb))
}

#[cfg(feature = "reference")]
/// [`may_run_during_fire`] with the original, uncached DST sweep. For tests only.
#[doc(hidden)]
pub fn may_run_during_fire_reference(owner: &Tier, reader: &Tier, zone: &Zone) -> Option<Overlap> {
    let ctx = Ctx::reference(zone);
    ctx.stale(owner, &Prepared::new(owner), reader, &Prepared::new(reader))
}

/// The first fire (>= the analysis start) that lies outside blackout `w` but whose window
/// reaches into it. Wall-time (blackouts are wall-clock windows). Skip windows of `t` apply.
pub fn blackout_overrun(t: &Tier, w: &DailyWindow, zone: &Zone) -> Option<Overrun> {
    let len = w.len();
    if len == 0 || t.timeout_min == 0 {
        return None;
    }
    let dur = t.timeout_min as i64;
    // Pure time-of-day condition: the same on every matching day.
    let bad = t.fire_times().into_iter().find_map(|m| {
        if w.contains(m) {
            return None;
        }
        let next_start = if (w.from as i64) > m as i64 {
            w.from as i64
        } else {
            w.from as i64 + DAY
        };
        (m as i64 + dur > next_start).then_some((m, next_start))
    })?;
    let p = Prepared::new(t);
    let day = p.first_day_from_start()?;
    let fire = wall(day * DAY + bad.0 as i64);
    Some(Overrun {
        fire,
        end: end_of(zone, fire, t.timeout_min),
        blackout_start: wall(day * DAY + bad.1),
    })
}

/// stale_read: the first fire of `reader` (>= start) at which a run of `owner` is active
/// (owner fired at or before it and is still running). `a_*` = owner, `b_*` = reader,
/// `instant` = the reader's fire.
pub fn may_run_during_fire(owner: &Tier, reader: &Tier, zone: &Zone) -> Option<Overlap> {
    let ctx = Ctx::new(zone);
    ctx.stale(owner, &Prepared::new(owner), reader, &Prepared::new(reader))
}

fn hm(m: i64) -> String {
    let m = m.rem_euclid(DAY);
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// One concrete sentence that removes the overlap, verified by re-running the analysis
/// where it is cheap.
pub fn suggest_fix(a: &Tier, b: &Tier, o: &Overlap) -> String {
    let zone = Zone::Fixed(0);
    // the tier that fired first gets a skip window covering the other's run
    let (first, second, f_fire, s_fire, s_end) = if o.a_fire <= o.b_fire {
        (a, b, o.a_fire, o.b_fire, o.b_end)
    } else {
        (b, a, o.b_fire, o.a_fire, o.a_end)
    };
    let s_tod = (s_fire.hour() * 60 + s_fire.minute()) as i64;
    let run = (s_end - s_fire).num_minutes().min(DAY - 1);
    let from = (s_tod - first.timeout_min as i64 + 1).rem_euclid(DAY);
    let to = (s_tod + run).rem_euclid(DAY);
    if (first.timeout_min as i64) + run < DAY {
        let mut fixed = first.clone();
        fixed.skip.push(DailyWindow {
            from: from as u16,
            to: to as u16,
        });
        if first_overlap(&fixed, second, &zone).is_none() {
            return format!(
                "add `blackout {}-window from=\"{}\" to=\"{}\"` and `skip` it on `{}`, so `{}` does not fire into `{}` (fired {}); checked: no overlap remains",
                second.name,
                hm(from),
                hm(to),
                first.name,
                first.name,
                second.name,
                s_fire.format("%H:%M")
            );
        }
    }
    // shift the later tier by whole hours when its hour field is a single value
    // a preset's own fields (`@daily` is `0 0 * * *`)
    let src = second.cron.fields();
    let parts: Vec<&str> = src.split_whitespace().collect();
    if parts.len() == 5 {
        if let Ok(h) = parts[1].parse::<u32>() {
            for s in 1..24 {
                let nh = (h + s) % 24;
                let expr = format!("{} {} {} {} {}", parts[0], nh, parts[2], parts[3], parts[4]);
                if let Ok(c) = Cron::parse(&expr) {
                    let moved = Tier {
                        cron: c,
                        ..second.clone()
                    };
                    if first_overlap(first, &moved, &zone).is_none() {
                        return format!(
                            "move `{}` to cron=\"{}\"; checked: no overlap with `{}` remains",
                            second.name, expr, first.name
                        );
                    }
                }
            }
        }
    }
    let gap = (s_fire - f_fire).num_minutes();
    if gap > 0 {
        format!(
            "`{}` fires {} min after `{}`: cut `{}` timeout to at most {}m, or skip `{}` on a window around {}",
            second.name,
            gap,
            first.name,
            first.name,
            gap,
            first.name,
            s_fire.format("%H:%M")
        )
    } else {
        format!(
            "`{}` and `{}` fire together at {}: move one of them or skip one on a window around it",
            a.name,
            b.name,
            s_fire.format("%H:%M")
        )
    }
}

/// Worst-case windows (fire, end) of `t` that intersect [from, to), local wall time, in order.
pub fn windows(
    t: &Tier,
    zone: &Zone,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Vec<(NaiveDateTime, NaiveDateTime)> {
    let mut out = Vec::new();
    if to <= from {
        return out;
    }
    let times = t.fire_times();
    let back = (t.timeout_min as i64).div_euclid(DAY) + 2;
    let mut d = from.date() - Duration::days(back);
    let last = to.date();
    while d <= last {
        if t.cron.matches_day(d) {
            for &m in &times {
                let f = at_minute(d, m);
                let e = end_of(zone, f, t.timeout_min);
                if f < to && e > from && e > f {
                    out.push((f, e));
                }
            }
        }
        let Some(n) = d.succ_opt() else { break };
        d = n;
    }
    out
}

/// Examples with answers worked out by hand, so the plan crate's own tests hold the analysis
/// (the compiler's property tests compare it with independent references at length).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_bits_are_the_days_the_cron_matches_over_two_cycles_and_nothing_past_them() {
        for expr in [
            "0 0 L * *",
            "0 0 * * 5#3",
            "0 0 29 2 *",
            "0 0 1,15 * 1",
            "0 0 31 * *",
            "0 0 * * 1-5",
            "0 0 1 1 *",
            "0 0 15-L * 2",
            "0 0 */10 */2 *",
            "0 0 * * L0",
        ] {
            let cron = Cron::parse(expr).expect(expr);
            let bits = day_bits(&cron);
            assert_eq!(bits.len(), (EXT_BITS as usize).div_ceil(64), "{expr}");
            let mut day = start_date();
            for j in 0..bits.len() as i64 * 64 {
                let set = bits[(j / 64) as usize] & (1 << (j % 64)) != 0;
                let want = j < EXT_BITS && cron.matches_day(day);
                assert_eq!(set, want, "{expr}: day {j} ({day})");
                day = day.succ_opt().expect("a date in range");
            }
        }
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test time")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        at(s).and_utc()
    }

    fn tier(name: &str, cron: &str, timeout_min: u32) -> Tier {
        Tier {
            name: name.into(),
            cron: Cron::parse(cron).expect(cron),
            timeout_min,
            heavy: true,
            skip: vec![],
        }
    }

    /// The instant, the first run's fire and end, the second's fire and end, on 2026-01-01.
    fn assert_times(o: &Overlap, want: &str) {
        let got = [o.instant, o.a_fire, o.a_end, o.b_fire, o.b_end];
        let want: Vec<NaiveDateTime> = want
            .split(' ')
            .map(|t| at(&format!("2026-01-01 {t}")))
            .collect();
        assert_eq!(got.to_vec(), want, "{o:?}");
    }

    fn new_york() -> Zone {
        Zone::parse("America/New_York").expect("a zone")
    }

    #[test]
    fn zones_are_read_and_shown_as_written() {
        for (text, zone, shown) in [
            ("UTC", Some(Zone::Fixed(0)), "UTC"),
            (" etc/utc ", Some(Zone::Fixed(0)), "UTC"),
            ("Z", Some(Zone::Fixed(0)), "UTC"),
            ("+05:30", Some(Zone::Fixed(330)), "+05:30"),
            ("-0800", Some(Zone::Fixed(-480)), "-08:00"),
            ("+05", Some(Zone::Fixed(300)), "+05:00"),
            ("+18:00", Some(Zone::Fixed(1080)), "+18:00"),
            ("-05:59", Some(Zone::Fixed(-359)), "-05:59"),
            ("+5:30", None, ""),
            ("+05:3:0", None, ""),
            ("+19:00", None, ""),
            ("+05:60", None, ""),
            ("+053", None, ""),
            ("+05a0", None, ""),
            ("Mars/Base", None, ""),
        ] {
            assert_eq!(Zone::parse(text), zone, "{text:?}");
            if let Some(z) = zone {
                assert_eq!(z.to_string(), shown);
            }
        }
        assert_eq!(new_york().to_string(), "America/New_York");
    }

    /// Fixed offsets are east of UTC; in a DST zone a wall time in the spring gap is the first
    /// instant after it and an ambiguous one its first occurrence (the module's DST rule).
    #[test]
    fn wall_times_map_to_instants_by_the_dst_rule() {
        let plus_one = Zone::Fixed(60);
        assert_eq!(
            plus_one.to_utc(at("2026-01-01 12:00")),
            utc("2026-01-01 11:00")
        );
        assert_eq!(
            plus_one.to_local(utc("2026-01-01 11:00")),
            at("2026-01-01 12:00")
        );
        let ny = new_york();
        assert_eq!(ny.to_utc(at("2026-03-08 02:30")), utc("2026-03-08 07:00"));
        assert_eq!(ny.to_utc(at("2026-11-01 01:30")), utc("2026-11-01 05:30"));
        assert_eq!(ny.to_local(utc("2026-11-01 06:30")), at("2026-11-01 01:30"));
        let c = Cron::parse("30 2 * * *").unwrap();
        assert_eq!(
            ny.next_fire_utc(&c, &[], utc("2026-03-08 06:00")),
            Some(utc("2026-03-08 07:00"))
        );
        let c = Cron::parse("30 1 * * *").unwrap();
        let first = ny.next_fire_utc(&c, &[], utc("2026-11-01 04:00"));
        assert_eq!(first, Some(utc("2026-11-01 05:30")));
        assert_eq!(
            ny.next_fire_utc(&c, &[], first.unwrap()),
            Some(utc("2026-11-02 06:30"))
        );
        // Antarctica/Troll moves from UTC+0 to UTC+2: a two-hour gap, 01:00 to 03:00 local
        let troll = Zone::parse("Antarctica/Troll").expect("a zone");
        assert_eq!(
            troll.to_utc(at("2026-03-29 01:30")),
            utc("2026-03-29 01:00")
        );
        let every = Cron::parse("* * * * *").unwrap();
        assert_eq!(
            Zone::Fixed(0).next_fire_utc(&every, &[], utc("2026-01-01 10:00")),
            Some(utc("2026-01-01 10:01"))
        );
        let skip = [DailyWindow { from: 60, to: 120 }];
        let c = Cron::parse("30 1,3 * * *").unwrap();
        assert_eq!(
            Zone::Fixed(0).next_fire_utc(&c, &skip, utc("2026-01-01 00:00")),
            Some(utc("2026-01-01 03:30"))
        );
    }

    #[test]
    fn daily_windows_are_half_open_and_may_wrap() {
        let w = |from, to| DailyWindow { from, to };
        let day = w(60, 120);
        assert!(day.contains(60) && day.contains(119));
        assert!(!day.contains(59) && !day.contains(120));
        let night = w(1380, 60);
        assert!(night.contains(1380) && night.contains(0) && night.contains(59));
        assert!(!night.contains(60) && !night.contains(1379));
        assert!((0..1440).all(|m| !w(300, 300).contains(m)));
        assert!(w(300, 300).is_empty() && !day.is_empty());
    }

    /// Runs occupy [fire, fire + timeout): back to back is no overlap, a minute more is.
    #[test]
    fn overlaps_are_found_at_their_first_instant() {
        let z = Zone::Fixed(0);
        let b = tier("b", "0 2 * * *", 30);
        let o = first_overlap(&tier("a", "0 1 * * *", 90), &b, &z).expect("they meet");
        assert_times(&o, "02:00 01:00 02:30 02:00 02:30");
        assert_eq!(first_overlap(&tier("a", "0 1 * * *", 60), &b, &z), None);
        // a run from Monday 23:00 meets Tuesday's 00:30 fire
        let o = first_overlap(
            &tier("a", "0 23 * * 1", 120),
            &tier("b", "30 0 * * 2", 10),
            &z,
        )
        .expect("they meet");
        assert_eq!(
            (o.instant, o.a_fire, o.b_fire),
            (
                at("2026-01-06 00:30"),
                at("2026-01-05 23:00"),
                at("2026-01-06 00:30")
            )
        );
        // in New York the two meet only when 02:30 does not exist and fires at 03:00
        let (a, b) = (tier("a", "0 1 * * *", 61), tier("b", "30 2 * * *", 30));
        assert_eq!(first_overlap(&a, &b, &z), None);
        let o = first_overlap(&a, &b, &new_york()).expect("on the spring-forward day");
        assert_eq!(
            (o.instant, o.a_fire, o.a_end),
            (
                at("2026-03-08 03:00"),
                at("2026-03-08 01:00"),
                at("2026-03-08 03:01")
            )
        );
        // the same pair in Berlin, after New York on this thread: Berlin's own transitions
        // (the last Sunday of March), not New York's
        let berlin = Zone::parse("Europe/Berlin").expect("a zone");
        let o = first_overlap(&a, &b, &berlin).expect("on Berlin's spring-forward day");
        assert_eq!(o.instant, at("2026-03-29 03:00"));
        // a Monday 01:00 fire meets Sunday's daily run, and Monday's 02:00 daily fire meets
        // the Monday run: whichever way round they are asked, the earlier is the first
        let (daily, monday) = (tier("d", "0 2 * * *", 24 * 60), tier("m", "0 1 * * 1", 90));
        let o = first_overlap(&daily, &monday, &z).expect("they meet");
        assert_eq!(
            (o.instant, o.a_fire, o.b_fire),
            (
                at("2026-01-05 01:00"),
                at("2026-01-04 02:00"),
                at("2026-01-05 01:00")
            )
        );
        let o = first_overlap(&monday, &daily, &z).expect("they meet");
        assert_eq!(
            (o.instant, o.a_fire, o.b_fire),
            (
                at("2026-01-05 01:00"),
                at("2026-01-05 01:00"),
                at("2026-01-04 02:00")
            )
        );
        let light = Tier {
            heavy: false,
            ..tier("c", "0 2 * * *", 600)
        };
        let found = heavy_overlaps(
            &[
                tier("a", "0 1 * * *", 90),
                light,
                tier("d", "0 12 * * *", 10),
                tier("b", "0 2 * * *", 30),
            ],
            &z,
        );
        let pairs: Vec<(usize, usize)> = found.iter().map(|(i, j, _)| (*i, *j)).collect();
        assert_eq!(pairs, vec![(0, 3)]);
    }

    /// New York's transitions as the zone database gives them (the US rule: 2 a.m. local on
    /// the second Sunday of March and the first Sunday of November), to the minute: whole-hour
    /// changes at a minute boundary, so the integer mapping applies to each. chrono-tz lists
    /// transitions through 2099 and none after (its tables stop there), so the scan to 2426
    /// finds two a year from 2026 to 2099.
    #[test]
    fn transitions_are_found_to_the_minute_as_the_zone_database_lists_them() {
        let t = new_york().transition_info();
        let got = |tr: &Trans| (utc_min(tr.at), tr.before, tr.after, tr.exact);
        assert_eq!(got(&t[0]), (utc("2026-03-08 07:00"), -300, -240, true));
        assert_eq!(got(&t[1]), (utc("2026-11-01 06:00"), -240, -300, true));
        let last = t.last().expect("transitions");
        assert_eq!(got(last), (utc("2099-11-01 06:00"), -240, -300, true));
        assert_eq!(t.len(), 2 * 74, "two a year, 2026 to 2099");
    }

    /// A timeout of 240 days reaches the next transition (1 November), so the DST sweep maps
    /// each fire through the zone database (not the integer offsets): 02:30 does not exist on
    /// 8 March 2026 in New York, so b fires at 03:00 EDT, inside a's run (01:00 EST + 61 min =
    /// 03:01 EDT); in wall time they would meet only the next day, at a's 01:00 fire.
    #[test]
    fn a_dst_only_overlap_of_a_long_run_names_both_fires_by_their_wall_times() {
        let (a, b) = (
            tier("a", "0 1 * * *", 61),
            tier("b", "30 2 8 3 *", 240 * DAY as u32),
        );
        assert_eq!(
            first_overlap(&a, &b, &Zone::Fixed(-300)).map(|o| o.instant),
            Some(at("2026-03-09 01:00"))
        );
        let o = first_overlap(&a, &b, &new_york()).expect("on the spring-forward day");
        assert_eq!(
            [o.instant, o.a_fire, o.a_end, o.b_fire, o.b_end],
            [
                at("2026-03-08 03:00"),
                at("2026-03-08 01:00"),
                at("2026-03-08 03:01"),
                at("2026-03-08 02:30"),
                at("2026-11-03 02:00")
            ]
        );
    }

    /// When two runs of `b` are both still active at `a`'s fire, the overlap names the later
    /// one; runs back to back in real time do not meet, and a run of zero minutes meets nothing.
    #[test]
    fn an_overlap_names_the_latest_run_still_active_and_touching_or_empty_runs_meet_nothing() {
        let z = Zone::Fixed(0);
        // b fires at 00:30 every day and runs 25 h, so at a's first fire (Tuesday 6 January,
        // 01:00; the 1st is a Thursday) both Monday's and Tuesday's runs of b are active.
        let o = first_overlap(
            &tier("a", "0 1 * * 2", 10),
            &tier("b", "30 0 * * *", 25 * 60),
            &z,
        )
        .expect("they meet");
        assert_eq!(
            [o.instant, o.a_fire, o.a_end, o.b_fire, o.b_end],
            [
                at("2026-01-06 01:00"),
                at("2026-01-06 01:00"),
                at("2026-01-06 01:10"),
                at("2026-01-06 00:30"),
                at("2026-01-07 01:30")
            ]
        );
        // New York, 8 March 2026: b's 01:00 EST run of an hour ends at 03:00 EDT, the instant a
        // fires: back to back in real time, so no overlap
        assert_eq!(
            first_overlap(
                &tier("a", "0 3 * * *", 10),
                &tier("b", "0 1 * * *", 60),
                &new_york()
            ),
            None
        );
        // a's 01:00 fire lies inside b's 00:00-02:00 run, but a zero-minute run is empty
        let b = tier("b", "0 0 * * *", 120);
        assert_eq!(first_overlap(&tier("a", "0 1 * * *", 0), &b, &z), None);
        assert_eq!(first_overlap(&b, &tier("a", "0 1 * * *", 0), &z), None);
    }

    /// A reader's fire while the owner's run is active: the owner fired at or before it.
    #[test]
    fn stale_reads_are_the_readers_fires_inside_an_owners_run() {
        let z = Zone::Fixed(0);
        let reader = tier("r", "0 2 * * *", 10);
        let o = may_run_during_fire(&tier("o", "0 1 * * *", 90), &reader, &z).expect("stale");
        assert_times(&o, "02:00 01:00 02:30 02:00 02:10");
        assert_eq!(
            may_run_during_fire(&tier("o", "0 1 * * *", 60), &reader, &z),
            None
        );
        let same = may_run_during_fire(&tier("o", "0 2 * * 3", 1), &reader, &z).expect("same");
        assert_eq!(
            (same.instant, same.a_fire),
            (at("2026-01-07 02:00"), at("2026-01-07 02:00"))
        );
    }

    /// A run fired on the 1st at 12:00: for 7 days it ends on the 8th at 12:00, before a fire
    /// on the 9th; for 7.5 days it is still active at a fire on the 8th. Runs of days meet
    /// fires up to exactly as many days later (the day offsets are dilated, not rounded up to
    /// a power of two, nor cut short).
    #[test]
    fn a_run_of_a_week_meets_fires_up_to_a_week_later_and_no_further() {
        let z = Zone::Fixed(0);
        let week = tier("w", "0 12 1 * *", 7 * 24 * 60);
        assert_eq!(first_overlap(&tier("x", "0 0 9 * *", 10), &week, &z), None);
        let longer = tier("w", "0 12 1 * *", 7 * 24 * 60 + 720);
        let o = first_overlap(&tier("x", "0 0 8 * *", 10), &longer, &z).expect("overlap");
        assert_eq!(
            (o.instant, o.a_fire, o.b_fire, o.b_end),
            (
                at("2026-01-08 00:00"),
                at("2026-01-08 00:00"),
                at("2026-01-01 12:00"),
                at("2026-01-09 00:00")
            )
        );
    }

    /// Runs of 7 days 18 hours from the 1st at 12:00 end on the 9th at 06:00: a fire on the
    /// 9th at 00:00 is inside, one at 12:00 is not (eight days on, only some times of day
    /// meet). With a run from the 7th too, the overlap names that later run. Fires on the
    /// 29th of February first meet in 2028.
    #[test]
    fn runs_reach_fires_days_later_at_only_some_times_of_day() {
        let z = Zone::Fixed(0);
        let x = tier("x", "0 0,12 9 * *", 10);
        let run = 7 * 24 * 60 + 18 * 60;
        let o = first_overlap(&x, &tier("y", "0 12 1 * *", run), &z).expect("overlap");
        assert_eq!(
            (o.instant, o.a_fire, o.b_fire, o.b_end),
            (
                at("2026-01-09 00:00"),
                at("2026-01-09 00:00"),
                at("2026-01-01 12:00"),
                at("2026-01-09 06:00")
            )
        );
        let o = first_overlap(&x, &tier("y", "0 12 1,7 * *", run), &z).expect("overlap");
        assert_eq!(
            (o.instant, o.b_fire),
            (at("2026-01-09 00:00"), at("2026-01-07 12:00"))
        );
        let leap = first_overlap(
            &tier("x", "0 0 29 2 *", 10),
            &tier("y", "30 23 28 2 *", 60),
            &z,
        )
        .expect("overlap");
        assert_eq!(
            (leap.instant, leap.b_fire),
            (at("2028-02-29 00:00"), at("2028-02-28 23:30"))
        );
    }

    /// A run from Monday 20:00 meets the daily 21:00 fire that Monday, not the 01:00 fire
    /// after it (that fire's earlier time of day does not make it first). With runs from
    /// Monday and Tuesday 20:00 and fires only on Tuesdays, the first is Tuesday 01:00.
    #[test]
    fn the_first_overlap_is_the_earliest_time_among_the_day_offsets_that_meet() {
        let z = Zone::Fixed(0);
        let o = first_overlap(
            &tier("x", "0 1,21 * * *", 10),
            &tier("y", "0 20 * * 1", 360),
            &z,
        )
        .expect("overlap");
        assert_eq!(
            (o.instant, o.b_fire),
            (at("2026-01-05 21:00"), at("2026-01-05 20:00"))
        );
        let o = first_overlap(
            &tier("x", "0 1,21 * * 2", 10),
            &tier("y", "0 20 * * 1,2", 30 * 60),
            &z,
        )
        .expect("overlap");
        assert_eq!(
            (o.instant, o.b_fire),
            (at("2026-01-06 01:00"), at("2026-01-05 20:00"))
        );
    }

    /// Wherever the sweep maps fires with a transition's two offsets instead of the zone
    /// database, it gets the same fires: windows from a day to a year either side of the
    /// first transitions of New York (an hour), Lord Howe (half an hour), Troll (two hours)
    /// and Auckland (UTC+13 in summer), their start moved up to three days either way (to 45
    /// minutes after the previous transition too), fires in the gaps and folds.
    #[test]
    fn integer_offsets_map_fires_as_the_zone_database_does_wherever_they_are_used() {
        let (mut integer, mut database) = (0, 0);
        let zones = [
            "America/New_York",
            "Australia/Lord_Howe",
            "Antarctica/Troll",
            "Pacific/Auckland",
        ];
        for name in zones {
            let zone = Zone::parse(name).expect("a zone");
            let ctx = Ctx::new(&zone);
            for cron in ["30 1 * * *", "0,15 2 * * *", "0 10 * * 1", "0 10 1,15 * *"] {
                let t = tier("t", cron, 10);
                let p = Prepared::new(&t);
                for tr in ctx.trans.iter().take(4) {
                    for margin in [1, 3, 6, 120, 127, 130, 133, 136, 200, 232, 238, 240, 370] {
                        for shift in [-3 * DAY, -DAY - 30, -45, 0, 45, 2 * DAY + 7] {
                            let lo = (tr.at - margin * DAY + shift).max(ctx.start_u);
                            // 75 minutes early, Auckland's window ends at 12:45 UTC, 01:45 the
                            // next day local
                            let hi = tr.at + margin * DAY - (shift == 0) as i64 * 75;
                            let want: Vec<Fire> =
                                real_windows(&t, &p.times, &zone, utc_min(lo), utc_min(hi))
                                    .into_iter()
                                    .map(|(s, _, w)| (s, w.and_utc().timestamp() / 60))
                                    .collect();
                            let mut got = Vec::new();
                            fill_fires(&mut got, &t, &p, &zone, tr, ctx.start_day, lo, hi);
                            assert_eq!(got, want, "{name} {cron} around {:?}", utc_min(tr.at));
                            if tr.simple_around(lo, hi) {
                                integer += 1;
                            } else {
                                database += 1;
                            }
                        }
                    }
                }
            }
        }
        // both ways were taken, so the comparison above tested the integer offsets
        assert!(integer > 100 && database > 100, "{integer} {database}");
    }

    /// The DST sweep's merge against every pair of runs, over random fire lists: the first
    /// instant at or after the start at which a run of each side is active (for a stale read,
    /// the first fire of `a` inside a run of `b`), and runs that are active then.
    #[test]
    fn the_sweeps_merge_finds_the_first_instant_a_run_of_each_side_is_active() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: i64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as i64
        };
        let (mut found, mut none) = (0, 0);
        for _ in 0..4000 {
            let mut fires = |k: i64| {
                let mut v: Vec<Fire> = (0..next(k))
                    .map(|_| next(2000))
                    .map(|s| (s, s + 7))
                    .collect();
                v.sort();
                v.dedup();
                v
            };
            let (wa, wb) = (fires(12), fires(12));
            let (da, db, start) = (1 + next(300), 1 + next(300), next(600));
            let active = |w: &[Fire], d: i64, wall: i64, t: i64| {
                w.iter().any(|&(s, x)| x == wall && s <= t && t < s + d)
            };
            for anchor_only in [false, true] {
                let want = if anchor_only {
                    wa.iter()
                        .map(|a| a.0)
                        .filter(|&s| s >= start && wb.iter().any(|b| b.0 <= s && s < b.0 + db))
                        .min()
                } else {
                    wa.iter()
                        .flat_map(|a| wb.iter().map(move |b| (a, b)))
                        .filter_map(|(a, b)| {
                            let t = a.0.max(b.0).max(start);
                            (t < (a.0 + da).min(b.0 + db)).then_some(t)
                        })
                        .min()
                };
                let got = merge_first(&wa, da, &wb, db, start, anchor_only);
                assert_eq!(
                    got.map(|g| g.0),
                    want,
                    "{wa:?} {da} {wb:?} {db} {start} {anchor_only}"
                );
                if let Some((t, a, b)) = got {
                    found += 1;
                    let a_ok = if anchor_only {
                        wa.contains(&(t, a))
                    } else {
                        active(&wa, da, a, t)
                    };
                    assert!(a_ok && active(&wb, db, b, t), "{wa:?} {wb:?} {got:?}");
                } else {
                    none += 1;
                }
            }
        }
        assert!(found > 1000 && none > 1000, "{found} {none}");
    }

    /// New York, 8 March 2026: 02:30 does not exist, so a reader set for 02:30 fires at 03:00
    /// EDT, inside the owner's run from 01:10 EST (61 minutes, to 03:11 EDT): a stale read
    /// that wall time does not see, before the 03:30 one (in the run from 03:10) it does. A reader's own timeout
    /// plays no part, even zero.
    #[test]
    fn a_stale_read_only_real_time_sees_comes_before_a_later_one_wall_time_sees() {
        let z = new_york();
        let owner = tier("o", "10 1,3 8 3 *", 61);
        let o = may_run_during_fire(&owner, &tier("r", "30 2,3 8 3 *", 10), &z).expect("stale");
        assert_eq!(
            (o.instant, o.a_fire, o.b_fire),
            (
                at("2026-03-08 03:00"),
                at("2026-03-08 01:10"),
                at("2026-03-08 02:30")
            )
        );
        let quick = tier("r", "30 2 * * *", 0);
        let o = may_run_during_fire(&tier("o", "0 1 * * *", 61), &quick, &z).expect("stale");
        assert_eq!(o.instant, at("2026-03-08 03:00"));
    }

    /// New York: an owner fired on 1 March at 10:00 EST (15:00 UTC) runs 254 days less 30
    /// minutes, to 10 November 14:30 UTC; the reader fires on 10 November at 10:00 EST, 15:00
    /// UTC: never inside the run (summer time starts on 8 March at the earliest and ends on 7
    /// November at the latest, so both dates are in winter time every year). Half an hour
    /// longer, it is. The DST sweep's window around March's transition
    /// reaches past November's, where fires must take the winter offset again.
    #[test]
    fn a_fire_past_the_next_transition_takes_that_transitions_offset() {
        let z = new_york();
        let reader = tier("r", "0 10 10 11 *", 10);
        let day = 24 * 60;
        let short = tier("o", "0 10 1 3 *", 254 * day - 30);
        assert_eq!(may_run_during_fire(&short, &reader, &z), None);
        let long = tier("o", "0 10 1 3 *", 254 * day + 30);
        let o = may_run_during_fire(&long, &reader, &z).expect("stale");
        assert_eq!(
            (o.instant, o.a_fire, o.b_fire),
            (
                at("2026-11-10 10:00"),
                at("2026-03-01 10:00"),
                at("2026-11-10 10:00")
            )
        );
    }

    /// The first fire that runs into a blackout, from the first day the cron matches; the
    /// blackout may start the next day.
    #[test]
    fn blackout_overruns_name_the_fire_and_the_blackout_it_reaches() {
        let z = Zone::Fixed(0);
        let w = |from, to| DailyWindow { from, to };
        let o = blackout_overrun(&tier("t", "0 21 * * 1", 120), &w(1320, 360), &z).unwrap();
        assert_eq!(
            (o.fire, o.end, o.blackout_start),
            (
                at("2026-01-05 21:00"),
                at("2026-01-05 23:00"),
                at("2026-01-05 22:00")
            )
        );
        let o = blackout_overrun(&tier("t", "0 23 * * *", 200), &w(60, 180), &z).unwrap();
        assert_eq!(
            (o.fire, o.blackout_start),
            (at("2026-01-01 23:00"), at("2026-01-02 01:00"))
        );
        assert_eq!(
            blackout_overrun(&tier("t", "0 21 * * *", 60), &w(1320, 360), &z),
            None
        );
        assert_eq!(
            blackout_overrun(&tier("t", "0 21 * * *", 120), &w(300, 300), &z),
            None
        );
        // an empty blackout (from = to) is never reached, even by a run across its minute
        assert_eq!(
            blackout_overrun(&tier("t", "0 21 * * *", 120), &w(1320, 1320), &z),
            None
        );
    }

    /// Each kind of fix, tried in order: a skip window on the first, moving the second by whole
    /// hours, then the gap.
    #[test]
    fn fixes_are_checked_sentences() {
        let z = Zone::Fixed(0);
        let fix = |a: &Tier, b: &Tier| {
            let o = first_overlap(a, b, &z).expect("they meet");
            suggest_fix(a, b, &o)
        };
        assert_eq!(
            fix(&tier("a", "0 1 * * *", 90), &tier("b", "0 2 * * *", 30)),
            "add `blackout b-window from=\"00:31\" to=\"02:30\"` and `skip` it on `a`, so `a` \
             does not fire into `b` (fired 02:00); checked: no overlap remains"
        );
        assert_eq!(
            fix(&tier("a", "0 1 * * *", 90), &tier("b", "15 2 * * *", 30)),
            "add `blackout b-window from=\"00:46\" to=\"02:45\"` and `skip` it on `a`, so `a` \
             does not fire into `b` (fired 02:15); checked: no overlap remains"
        );
        assert_eq!(
            fix(&tier("a", "0 1 * * *", 120), &tier("b", "0 2 * * *", 1320)),
            "move `b` to cron=\"0 3 * * *\"; checked: no overlap with `a` remains"
        );
        assert_eq!(
            fix(&tier("a", "0 1 * * *", 120), &tier("b", "0 2 * * *", 1380)),
            "`b` fires 60 min after `a`: cut `a` timeout to at most 60m, or skip `a` on a \
             window around 02:00"
        );
        assert_eq!(
            fix(&tier("a", "0 1 * * *", 1000), &tier("b", "0 1 * * *", 1000)),
            "`a` and `b` fire together at 01:00: move one of them or skip one on a window \
             around it"
        );
    }

    /// The worst-case windows that reach into a period, one from the day before.
    #[test]
    fn windows_are_those_that_reach_into_the_period() {
        let t = tier("t", "0 23 * * *", 120);
        assert_eq!(
            windows(
                &t,
                &Zone::Fixed(0),
                at("2026-01-02 00:00"),
                at("2026-01-03 00:00")
            ),
            vec![
                (at("2026-01-01 23:00"), at("2026-01-02 01:00")),
                (at("2026-01-02 23:00"), at("2026-01-03 01:00"))
            ]
        );
        let (from, to) = (at("2026-01-02 00:00"), at("2026-01-02 00:00"));
        assert_eq!(windows(&t, &Zone::Fixed(0), from, to), vec![]);
        // half-open both ways: a run ending at the period's start and one starting at its end
        // do not reach into it, nor does a run of no length
        let (from, to) = (at("2026-01-02 01:00"), at("2026-01-02 23:00"));
        assert_eq!(windows(&t, &Zone::Fixed(0), from, to), vec![]);
        let none = tier("n", "0 12 * * *", 0);
        let (from, to) = (at("2026-01-02 00:00"), at("2026-01-03 00:00"));
        assert_eq!(windows(&none, &Zone::Fixed(0), from, to), vec![]);
    }
}
