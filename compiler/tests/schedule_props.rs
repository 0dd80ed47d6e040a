//! The exact schedule analysis against a brute-force minute-grid reference.
//!
//! The reference never parses cron text and never calls `Cron`'s matcher: random crons are
//! generated as structures, rendered to text for `Cron::parse`, and expanded to value sets
//! here. Fires are then enumerated minute by minute over 2026..2034 (eight years, two leap
//! days), and overlaps are found by a sweep over those fires. In DST zones the wall-time fires
//! are put on the real clock straight from the zone database (gap: first instant after it;
//! fold: first occurrence). `stir check` itself is held to a day-by-day reference over the
//! whole 400-year calendar cycle (`no_two_heavy_tiers_accepted_by_check_can_overlap`).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use proptest::prelude::*;
use stir::cron::Cron;
use stir::schedule::{
    blackout_overrun, dst_sweep, first_overlap, first_overlap_reference, heavy_overlaps,
    heavy_overlaps_reference, may_run_during_fire, may_run_during_fire_reference, windows,
    DailyWindow, Tier, Zone,
};

// ------------------------------------------------------------------ reference

#[derive(Debug, Clone)]
enum Term {
    Star,
    Val(u32, bool),
    Range(u32, u32),
    /// `*/n`, `a/n` or `a-b/n`
    Step(Option<(u32, Option<u32>)>, u32),
    /// `L` (day-of-month): the last day of the month
    Last,
    /// `a-L` or `a-L/n` (day-of-month): from a to the end of the month
    ToLast(u32, u32),
    /// `?` (day fields): any day
    Question,
    /// `w#k` (k = 1..=5) or, with k = 0, `Lw` (day-of-week): the k-th or last weekday w
    Nth(u32, u32, bool),
}

#[derive(Debug, Clone)]
struct Field(Vec<Term>);

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Field {
    fn render(&self, kind: usize) -> String {
        self.0
            .iter()
            .map(|t| match t {
                Term::Star => "*".to_string(),
                Term::Val(v, named) if *named && kind == 3 => {
                    MONTHS[*v as usize - 1].to_uppercase()
                }
                Term::Val(v, named) if *named && kind == 4 => DAYS[(*v % 7) as usize].to_string(),
                Term::Val(v, _) => v.to_string(),
                Term::Range(a, b) => format!("{a}-{b}"),
                Term::Step(None, n) => format!("*/{n}"),
                Term::Step(Some((a, None)), n) => format!("{a}/{n}"),
                Term::Step(Some((a, Some(b))), n) => format!("{a}-{b}/{n}"),
                Term::Last => "L".to_string(),
                Term::ToLast(a, 1) => format!("{a}-L"),
                Term::ToLast(a, n) => format!("{a}-l/{n}"),
                Term::Question => "?".to_string(),
                Term::Nth(w, k, named) => {
                    let w = if *named {
                        DAYS[(*w % 7) as usize].to_string()
                    } else {
                        w.to_string()
                    };
                    if *k == 0 {
                        format!("L{w}")
                    } else {
                        format!("{w}#{k}")
                    }
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn set(&self, lo: u32, hi: u32) -> Vec<bool> {
        let mut s = vec![false; 64];
        for t in &self.0 {
            let (a, b, n) = match t {
                Term::Last | Term::Nth(..) => continue,
                Term::Star | Term::Question => (lo, hi, 1),
                Term::ToLast(a, n) => (*a, 31, *n),
                Term::Val(v, _) => (*v, *v, 1),
                Term::Range(a, b) => (*a, *b, 1),
                Term::Step(None, n) => (lo, hi, *n),
                Term::Step(Some((a, None)), n) => (*a, hi, *n),
                Term::Step(Some((a, Some(b))), n) => (*a, *b, *n),
            };
            let mut v = a;
            while v <= b {
                s[v as usize] = true;
                v += n;
            }
        }
        s
    }

    /// A `*` term, or `?`: the field counts as `*`.
    fn star_term(&self) -> bool {
        self.0
            .iter()
            .any(|t| matches!(t, Term::Star | Term::Question))
    }

    /// Whether the field's text has a `*` in it (croniter looks at the text).
    fn text_has_star(&self) -> bool {
        self.0
            .iter()
            .any(|t| matches!(t, Term::Star | Term::Step(None, _)))
    }

    fn has_last(&self) -> bool {
        self.0.iter().any(|t| matches!(t, Term::Last))
    }

    /// (weekday 0..7, k) of the `#` and `L` terms; k = 0 is the last one.
    fn nth(&self) -> Vec<(u32, u32)> {
        self.0
            .iter()
            .filter_map(|t| match t {
                Term::Nth(w, k, _) => Some((*w % 7, *k)),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
struct RefCron {
    fields: [Field; 5],
    /// A preset that stands for `fields`, written in this case.
    preset: Option<String>,
}

/// Airflow's presets as structures (not text): name, minute, hour, day-of-month, month,
/// day-of-week; `None` is `*`.
type PresetDef = (&'static str, [Option<u32>; 5], Option<u32>);
/// (name, fields, month step) — `@quarterly` steps its months.
const PRESET_DEFS: [PresetDef; 8] = [
    ("@hourly", [Some(0), None, None, None, None], None),
    ("@daily", [Some(0), Some(0), None, None, None], None),
    ("@midnight", [Some(0), Some(0), None, None, None], None),
    ("@weekly", [Some(0), Some(0), None, None, Some(0)], None),
    ("@monthly", [Some(0), Some(0), Some(1), None, None], None),
    (
        "@quarterly",
        [Some(0), Some(0), Some(1), None, None],
        Some(3),
    ),
    ("@yearly", [Some(0), Some(0), Some(1), Some(1), None], None),
    (
        "@annually",
        [Some(0), Some(0), Some(1), Some(1), None],
        None,
    ),
];

fn preset_cron(i: usize, upper: bool) -> RefCron {
    let (name, vals, month_step) = PRESET_DEFS[i];
    let fields = std::array::from_fn(|k| match (vals[k], k == 3, month_step) {
        (_, true, Some(n)) => Field(vec![Term::Step(None, n)]),
        (Some(v), _, _) => Field(vec![Term::Val(v, false)]),
        (None, _, _) => Field(vec![Term::Star]),
    });
    RefCron {
        fields,
        preset: Some(if upper {
            name.to_uppercase()
        } else {
            name.to_string()
        }),
    }
}

struct Sets {
    min: Vec<bool>,
    hour: Vec<bool>,
    dom: Vec<bool>,
    mon: Vec<bool>,
    dow: Vec<bool>,
    /// `L` in day-of-month
    last: bool,
    /// `#`/`L` weekday terms
    nth: Vec<(u32, u32)>,
    dom_star: bool,
    dow_star: bool,
}

impl RefCron {
    fn text(&self) -> String {
        if let Some(p) = &self.preset {
            return p.clone();
        }
        (0..5)
            .map(|k| self.fields[k].render(k))
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn sets(&self) -> Sets {
        let mut dow = self.fields[4].set(0, 7);
        if dow[7] {
            dow[0] = true;
        }
        let dom = self.fields[2].set(1, 31);
        let (fd, fw) = (&self.fields[2], &self.fields[4]);
        let nth = fw.nth();
        // croniter's rule: a day field counts as `*` when it has a `*` term or is `?`, or
        // when it holds every value (`L` counting as one more day) and the other day field's
        // text has a `*`
        let dom_count = dom.iter().filter(|x| **x).count() + usize::from(fd.has_last());
        let dow_count = dow[..7].iter().filter(|x| **x).count();
        Sets {
            min: self.fields[0].set(0, 59),
            hour: self.fields[1].set(0, 23),
            mon: self.fields[3].set(1, 12),
            dom_star: fd.star_term() || (dom_count == 31 && fw.text_has_star()),
            dow_star: nth.is_empty() && (fw.star_term() || (dow_count == 7 && fd.text_has_star())),
            dom,
            dow,
            last: fd.has_last(),
            nth,
        }
    }
    fn cron(&self) -> Cron {
        Cron::parse(&self.text()).expect("generated crons are valid")
    }
}

impl Sets {
    fn day_ok(&self, d: NaiveDate) -> bool {
        if !self.mon[d.month() as usize] {
            return false;
        }
        let tomorrow = d + Duration::days(1);
        let a = self.dom_star
            || self.dom[d.day() as usize]
            || (self.last && tomorrow.month() != d.month());
        let wd = d.weekday().num_days_from_sunday();
        let b = self.dow_star
            || if self.nth.is_empty() {
                self.dow[wd as usize]
            } else {
                // which one of its weekday in the month, counted by walking back a week at
                // a time; the last one has no same weekday a week later in the month
                let mut k = 1;
                let mut back = d;
                while let Some(p) = back.checked_sub_days(chrono::Days::new(7)) {
                    if p.month() != d.month() {
                        break;
                    }
                    k += 1;
                    back = p;
                }
                let is_last = (d + Duration::days(7)).month() != d.month();
                self.nth
                    .iter()
                    .any(|&(w, n)| w == wd && (n == k || (n == 0 && is_last)))
            };
        if self.dom_star || self.dow_star {
            a && b
        } else {
            a || b
        }
    }
    fn minute_ok(&self, t: NaiveDateTime) -> bool {
        self.day_ok(t.date()) && self.hour[t.hour() as usize] && self.min[t.minute() as usize]
    }
}

fn start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("time")
}
const HORIZON_YEARS: i32 = 8;
fn horizon_end() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026 + HORIZON_YEARS, 1, 1)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("time")
}

fn in_window(w: (u16, u16), m: u32) -> bool {
    let (f, t) = (w.0 as u32, w.1 as u32);
    if f <= t {
        f <= m && m < t
    } else {
        m >= f || m < t
    }
}

/// Every fire (minutes since start) in the horizon, minute by minute.
fn ref_fires(c: &RefCron, skip: Option<(u16, u16)>) -> Vec<i64> {
    ref_fires_until(c, skip, horizon_end())
}

/// Every fire (minutes since start, local wall time) before `end`, minute by minute.
fn ref_fires_until(c: &RefCron, skip: Option<(u16, u16)>, end: NaiveDateTime) -> Vec<i64> {
    let s = c.sets();
    let mut out = Vec::new();
    let mut t = start();
    let mut i = 0i64;
    let mut day_ok = false;
    while t < end {
        if i % 1440 == 0 {
            day_ok = s.day_ok(t.date());
            if !day_ok {
                t += Duration::days(1);
                i += 1440;
                continue;
            }
        }
        let tod = t.hour() * 60 + t.minute();
        if day_ok
            && s.hour[t.hour() as usize]
            && s.min[t.minute() as usize]
            && !skip.is_some_and(|w| in_window(w, tod))
        {
            out.push(i);
        }
        t += Duration::minutes(1);
        i += 1;
    }
    out
}

/// First instant at which a run of each is active: (instant, a_fire, b_fire).
fn ref_first_overlap(fa: &[i64], da: i64, fb: &[i64], db: i64) -> Option<i64> {
    let (mut i, mut j) = (0, 0);
    let (mut ea, mut eb) = (i64::MIN, i64::MIN);
    while i < fa.len() || j < fb.len() {
        let s = match (fa.get(i), fb.get(j)) {
            (Some(x), Some(y)) => *x.min(y),
            (Some(x), None) => *x,
            (None, Some(y)) => *y,
            (None, None) => break,
        };
        let mut a_here = false;
        let mut b_here = false;
        while fa.get(i) == Some(&s) {
            a_here = true;
            i += 1;
        }
        while fb.get(j) == Some(&s) {
            b_here = true;
            j += 1;
        }
        if a_here {
            ea = ea.max(s + da);
        }
        if b_here {
            eb = eb.max(s + db);
        }
        if (a_here || b_here) && ea > s && eb > s {
            return Some(s);
        }
    }
    None
}

/// First fire of `reader` at which a run of `owner` is active.
fn ref_stale(owner: &[i64], d_owner: i64, reader: &[i64]) -> Option<i64> {
    let mut i = 0;
    let mut end = i64::MIN;
    for &r in reader {
        while i < owner.len() && owner[i] <= r {
            end = end.max(owner[i] + d_owner);
            i += 1;
        }
        if end > r {
            return Some(r);
        }
    }
    None
}

fn mins(t: NaiveDateTime) -> i64 {
    (t - start()).num_minutes()
}

// ------------------------------------------------------------------ generators

/// Ranges have distinct ends: `5-5` is refused (croniter reads it as the whole field).
fn term(lo: u32, hi: u32, max_step: u32) -> impl Strategy<Value = Term> {
    prop_oneof![
        3 => (lo..=hi, any::<bool>()).prop_map(|(v, n)| Term::Val(v, n)),
        1 => (lo..hi, lo..=hi).prop_map(|(a, b)| if a < b { Term::Range(a, b) } else { Term::Range(b, a + 1) }),
        1 => (2..=max_step).prop_map(|n| Term::Step(None, n)),
        1 => (lo..=hi, 2..=max_step).prop_map(|(a, n)| Term::Step(Some((a, None)), n)),
        1 => (lo..=hi, lo..=hi, 2..=max_step).prop_map(|(a, b, n)| if a == b { Term::Step(Some((a, None)), n) } else { Term::Step(Some((a.min(b), Some(a.max(b)))), n) }),
    ]
}

/// Day-of-month: `*`, `?`, plain terms, days near the month's end, and `L` forms.
fn dom_strategy() -> impl Strategy<Value = Field> {
    let special = prop_oneof![
        2 => Just(Term::Last),
        1 => (1u32..=30, prop_oneof![Just(1u32), 2u32..=10]).prop_map(|(a, n)| Term::ToLast(a, n)),
        2 => (1u32..=31).prop_map(|v| Term::Val(v, false)),
    ];
    prop_oneof![
        4 => Just(Field(vec![Term::Star])),
        1 => Just(Field(vec![Term::Question])),
        2 => prop::collection::vec(term(1, 31, 10), 1..=2).prop_map(Field),
        1 => prop::collection::vec((27u32..=31).prop_map(|v| Term::Val(v, false)), 1..=2).prop_map(Field),
        2 => prop::collection::vec(special, 1..=2).prop_map(Field),
        // every day written out: croniter reads it as `*` when the weekdays' text has a `*`
        1 => prop::sample::select(vec![Term::Range(1, 31), Term::Step(None, 1), Term::ToLast(1, 1)]).prop_map(|t| Field(vec![t])),
    ]
}

/// Day-of-week: `*`, `?`, plain terms, or `#`/`L` terms (fifth ones often).
fn dow_strategy() -> impl Strategy<Value = Field> {
    let nth = (
        0u32..=7,
        prop_oneof![1 => 0u32..=4, 1 => Just(5u32)],
        any::<bool>(),
    )
        .prop_map(|(w, k, named)| Term::Nth(w, k, named));
    prop_oneof![
        4 => Just(Field(vec![Term::Star])),
        1 => Just(Field(vec![Term::Question])),
        4 => prop::collection::vec(term(0, 7, 3), 1..=3).prop_map(Field),
        2 => prop::collection::vec(nth, 1..=3).prop_map(Field),
        1 => prop::sample::select(vec![Term::Range(0, 6), Term::Range(1, 7), Term::Step(None, 1), Term::Step(None, 2)]).prop_map(|t| Field(vec![t])),
    ]
}

/// The five fields, or now and then a preset; `#`/`L` weekdays get a day-of-month of `*`
/// or `?` (the only day-of-month croniter reads soundly with them).
fn assemble(
    (a, b, c, d, e): (Field, Field, Field, Field, Field),
    q: bool,
    preset: Option<(usize, bool)>,
) -> RefCron {
    if let Some((i, upper)) = preset {
        return preset_cron(i, upper);
    }
    let c = if e.nth().is_empty() {
        c
    } else {
        Field(vec![if q { Term::Question } else { Term::Star }])
    };
    RefCron {
        fields: [a, b, c, d, e],
        preset: None,
    }
}

fn preset_strategy() -> impl Strategy<Value = Option<(usize, bool)>> {
    prop_oneof![12 => Just(None), 1 => (0..PRESET_DEFS.len(), any::<bool>()).prop_map(Some)]
}

fn field(lo: u32, hi: u32, max_step: u32, star_weight: u32) -> impl Strategy<Value = Field> {
    prop_oneof![
        star_weight => Just(Field(vec![Term::Star])),
        4 => prop::collection::vec(term(lo, hi, max_step), 1..=3).prop_map(Field),
    ]
}

/// One or two minute terms, kept sparse (the reference enumerates every fire).
fn minute_strategy() -> impl Strategy<Value = Field> {
    prop::collection::vec(
        prop_oneof![
            2 => (0u32..=59, Just(false)).prop_map(|(v, n)| Term::Val(v, n)),
            // round minutes make touching windows (end == next fire) common
            2 => (0u32..4).prop_map(|q| Term::Val(q * 15, false)),
            1 => (10u32..=30).prop_map(|n| Term::Step(None, n)),
        ],
        1..=2,
    )
    .prop_map(Field)
}

/// Minutes stay sparse (the reference enumerates every fire); days cover leap days,
/// month ends and the day-of-month / day-of-week OR rule.
fn cron_strategy() -> impl Strategy<Value = RefCron> {
    let minute = minute_strategy();
    let month = prop_oneof![
        4 => Just(Field(vec![Term::Star])),
        1 => Just(Field(vec![Term::Val(2, true)])),
        2 => prop::collection::vec(term(1, 12, 5), 1..=2).prop_map(Field),
    ];
    (
        (
            minute,
            field(0, 23, 8, 1),
            dom_strategy(),
            month,
            dow_strategy(),
        ),
        any::<bool>(),
        preset_strategy(),
    )
        .prop_map(|(f, q, p)| assemble(f, q, p))
}

/// Timeouts in whole quarter hours half the time, so windows touch exactly.
fn timeout() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..3000, (1u32..200).prop_map(|k| k * 15)]
}

fn skip_strategy() -> impl Strategy<Value = Option<(u16, u16)>> {
    prop_oneof![2 => Just(None), 1 => (0u16..1440, 0u16..1440).prop_map(Some)]
}

fn tier_of(name: &str, c: &RefCron, timeout: u32, skip: Option<(u16, u16)>) -> Tier {
    Tier {
        name: name.into(),
        cron: c.cron(),
        timeout_min: timeout,
        heavy: true,
        skip: skip
            .map(|(from, to)| DailyWindow { from, to })
            .into_iter()
            .collect(),
    }
}

fn utc() -> Zone {
    Zone::Fixed(0)
}

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn cron_matches_reference_every_minute(c in cron_strategy(), day in 0i64..3000) {
        let cron = c.cron();
        let s = c.sets();
        // 3 days from a random day in 2026..2034, plus the whole of February 2028
        let t0 = start() + Duration::days(day);
        let feb = NaiveDate::from_ymd_opt(2028, 2, 1).expect("date").and_hms_opt(0, 0, 0).expect("time");
        for (from, n) in [(t0, 3 * 1440), (feb, 29 * 1440)] {
            for k in 0..n {
                let t = from + Duration::minutes(k);
                prop_assert_eq!(cron.matches(t), s.minute_ok(t), "{} at {}", c.text(), t);
            }
        }
        let tod: Vec<u16> = (0..1440u16).filter(|m| s.hour[(*m / 60) as usize] && s.min[(*m % 60) as usize]).collect();
        prop_assert_eq!(cron.times_of_day(), tod);
    }

    #[test]
    fn next_after_agrees_with_scan(c in cron_strategy(), offset in 0i64..(3 * 525_600)) {
        let cron = c.cron();
        let fires = ref_fires(&c, None);
        let t = start() + Duration::minutes(offset);
        let expect = fires.iter().find(|f| **f > offset).map(|f| start() + Duration::minutes(*f));
        match expect {
            Some(e) => prop_assert_eq!(cron.next_after(t), Some(e), "{}", c.text()),
            None => prop_assert!(cron.next_after(t).is_none_or(|n| n >= horizon_end()), "{}", c.text()),
        }
    }

    #[test]
    fn first_instant_matches_minute_grid(
        a in cron_strategy(), b in cron_strategy(),
        da in timeout(), db in timeout(),
        sa in skip_strategy(), sb in skip_strategy(),
    ) {
        let (ta, tb) = (tier_of("a", &a, da, sa), tier_of("b", &b, db, sb));
        let got = first_overlap(&ta, &tb, &utc());
        let expect = ref_first_overlap(&ref_fires(&a, sa), da as i64, &ref_fires(&b, sb), db as i64);
        match (&got, expect) {
            (Some(o), Some(e)) => {
                prop_assert_eq!(mins(o.instant), e, "{} / {}", a.text(), b.text());
                // the reported runs are real fires and both are active at the instant
                prop_assert!(ta.cron.matches(o.a_fire) && tb.cron.matches(o.b_fire));
                prop_assert!(o.a_fire <= o.instant && o.instant < o.a_end);
                prop_assert!(o.b_fire <= o.instant && o.instant < o.b_end);
            }
            (Some(o), None) => prop_assert!(o.instant >= horizon_end(), "{} / {}: {:?}", a.text(), b.text(), o),
            (None, Some(e)) => prop_assert!(false, "{} / {}: missed overlap at {}", a.text(), b.text(), e),
            (None, None) => {}
        }
    }

    #[test]
    fn stale_read_matches_reference(a in cron_strategy(), b in cron_strategy(), da in timeout()) {
        let (owner, reader) = (tier_of("owner", &a, da, None), tier_of("reader", &b, 30, None));
        let got = may_run_during_fire(&owner, &reader, &utc()).map(|o| mins(o.instant));
        let expect = ref_stale(&ref_fires(&a, None), da as i64, &ref_fires(&b, None));
        match (got, expect) {
            (Some(g), None) => prop_assert!(g >= mins(horizon_end())),
            (g, e) => prop_assert_eq!(g, e, "{} / {}", a.text(), b.text()),
        }
    }

    #[test]
    fn blackout_overrun_matches_reference(c in cron_strategy(), d in timeout(), from in 0u16..1440, to in 0u16..1440) {
        prop_assume!(from != to);
        let t = tier_of("t", &c, d, Some((from, to)));
        let w = DailyWindow { from, to };
        let got = blackout_overrun(&t, &w, &utc());
        // reference: walk each fire's window minute by minute
        let expect = ref_fires(&c, Some((from, to))).into_iter().find_map(|f| {
            (1..d as i64).map(|k| f + k).find(|m| in_window((from, to), (m.rem_euclid(1440)) as u32)).map(|b| (f, b))
        });
        match (got, expect) {
            (Some(o), Some((f, b))) => {
                prop_assert_eq!(mins(o.fire), f, "{}", c.text());
                prop_assert_eq!(mins(o.blackout_start), b);
                prop_assert_eq!(mins(o.end), f + d as i64);
            }
            (Some(o), None) => prop_assert!(o.fire >= horizon_end()),
            (None, e) => prop_assert_eq!(None, e, "{}", c.text()),
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// b fires exactly when a's run ends and ends no later than a's next fire: no overlap;
    /// one more minute of timeout for a and they overlap at b's fire.
    #[test]
    fn touching_windows_never_overlap(tod in 0u16..1440, d in 1u32..1439, e in 1u32..1439, dow in prop::option::of(0u32..7)) {
        prop_assume!(d + e <= 1440);
        // with a weekday, keep b on a's day (no wrap past midnight)
        prop_assume!(dow.is_none() || tod as u32 + d < 1440);
        let days = dow.map_or("* * *".to_string(), |w| format!("* * {w}"));
        let at = |m: u32| format!("{} {} {}", m % 60, (m / 60) % 24, days);
        let a = Tier { name: "a".into(), cron: Cron::parse(&at(tod as u32)).expect("cron"), timeout_min: d, heavy: true, skip: vec![] };
        let b_min = (tod as u32 + d) % 1440;
        let b = Tier { name: "b".into(), cron: Cron::parse(&at(b_min)).expect("cron"), timeout_min: e, heavy: true, skip: vec![] };
        let got = first_overlap(&a, &b, &utc());
        prop_assert_eq!(got, None);
        let longer = Tier { timeout_min: d + 1, ..a.clone() };
        let o = first_overlap(&longer, &b, &utc()).expect("overlap");
        prop_assert_eq!(o.b_fire, o.instant);
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any string: an error with a span inside the expression, or a cron; never a panic.
    #[test]
    fn cron_parse_never_panics(
        s in "[0-9a-zA-Z*/,\\-#?@ é]{0,24}",
        t in "([0-9*/,#?lL-]{1,6} ){4}[0-9a-zL*/,#?-]{1,6}",
        p in "@[a-zA-Z]{0,12}( [0-9*]{1,3}){0,2}",
    ) {
        for e in [&s, &t, &p] {
            match Cron::parse(e) {
                Ok(c) => {
                    let _ = c.irregular_steps();
                    let _ = c.next_after(start());
                }
                Err(err) => prop_assert!(err.span.end <= e.len() && err.span.start <= err.span.end, "{:?}", err),
            }
        }
    }
}

// ------------------------------------------------------------------ the check, whole

/// What a calendar day is to a cron: month, day of month, weekday, and whether it is Feb 29's
/// year (the only month whose length varies). Days with one key match the same crons.
type DayKey = (u32, u32, u32, bool);

/// The 400-year Gregorian cycle from 2026-01-01 (after it the calendar repeats), with three
/// days more on each side for runs that cross into the neighbouring days: each day's key, and
/// one date for each key.
struct Cycle {
    keys: Vec<u16>,
    samples: Vec<NaiveDate>,
}

const MARGIN: i64 = 3;
const CYCLE_DAYS: i64 = 146_097;

fn cycle() -> &'static Cycle {
    static CYCLE: std::sync::OnceLock<Cycle> = std::sync::OnceLock::new();
    CYCLE.get_or_init(|| {
        let mut ids: std::collections::BTreeMap<DayKey, u16> = std::collections::BTreeMap::new();
        let (mut keys, mut samples) = (Vec::new(), Vec::new());
        let first = start().date() - Duration::days(MARGIN);
        for i in 0..CYCLE_DAYS + 2 * MARGIN {
            let d = first + Duration::days(i);
            let leap = NaiveDate::from_ymd_opt(d.year(), 2, 29).is_some();
            let key = (
                d.month(),
                d.day(),
                d.weekday().num_days_from_sunday(),
                leap && d.month() == 2,
            );
            let id = *ids.entry(key).or_insert_with(|| {
                samples.push(d);
                (samples.len() - 1) as u16
            });
            keys.push(id);
        }
        Cycle { keys, samples }
    })
}

/// Which days of the cycle (with its margins) the cron fires on, by the reference's day rule.
fn fire_days(c: &RefCron) -> Vec<bool> {
    let sets = c.sets();
    let cy = cycle();
    let by_key: Vec<bool> = cy.samples.iter().map(|d| sets.day_ok(*d)).collect();
    cy.keys.iter().map(|k| by_key[*k as usize]).collect()
}

/// The minutes of day a tier fires at, skip window applied.
fn fire_minutes(c: &RefCron, skip: Option<(u16, u16)>) -> Vec<i64> {
    let s = c.sets();
    (0..1440u32)
        .filter(|m| s.hour[(m / 60) as usize] && s.min[(m % 60) as usize])
        .filter(|m| !skip.is_some_and(|w| in_window(w, *m)))
        .map(i64::from)
        .collect()
}

/// One tier for [`ever_overlap`]: its fire minutes of day and, computed once when first
/// needed, its fire days.
struct Fires<'a> {
    cron: &'a RefCron,
    timeout: i64,
    minutes: Vec<i64>,
    days: std::cell::OnceCell<Vec<bool>>,
}

impl<'a> Fires<'a> {
    fn new(cron: &'a RefCron, timeout: u32, skip: Option<(u16, u16)>) -> Fires<'a> {
        Fires {
            cron,
            timeout: timeout as i64,
            minutes: fire_minutes(cron, skip),
            days: Default::default(),
        }
    }
    fn days(&self) -> &[bool] {
        self.days.get_or_init(|| fire_days(self.cron))
    }
}

/// Whether runs of a and b (UTC, wall time = real time) ever overlap, exactly, for all time:
/// runs last under three days, so a run of a fired on day d can only meet one of b fired on
/// day d + k, |k| <= 3; which k can meet depends on the times of day alone, which days fire
/// on the calendar alone, and the calendar repeats every 400 years. Shares nothing with
/// `stir::schedule`.
fn ever_overlap(a: &Fires, b: &Fires) -> bool {
    let offsets: Vec<i64> = (-MARGIN..=MARGIN)
        .filter(|k| {
            a.minutes.iter().any(|x| {
                b.minutes.iter().any(|y| {
                    let y = y + k * 1440;
                    *x < y + b.timeout && y < x + a.timeout
                })
            })
        })
        .collect();
    if offsets.is_empty() {
        return false;
    }
    let (fa, fb) = (a.days(), b.days());
    for d in MARGIN as usize..(CYCLE_DAYS + MARGIN) as usize {
        if fa[d] {
            for k in &offsets {
                if fb[(d as i64 + k) as usize] {
                    return true;
                }
            }
        }
    }
    false
}

/// A generated heavy tier: cron, timeout in minutes, skip window.
type HeavyTier = (RefCron, u32, Option<(u16, u16)>);

/// Heavy tiers likely to fit together (one or two hours a day, often on some days only, runs
/// of up to four hours), now and then any cron and timeout: about half the sets pass.
fn heavy_set_strategy() -> impl Strategy<Value = Vec<HeavyTier>> {
    let hours =
        prop::collection::vec((0u32..24).prop_map(|v| Term::Val(v, false)), 1..=2).prop_map(Field);
    let hours =
        prop_oneof![3 => (0u32..24).prop_map(|v| Field(vec![Term::Val(v, false)])), 1 => hours];
    let minute = (0u32..60).prop_map(|v| Field(vec![Term::Val(v, false)]));
    let month = prop_oneof![4 => Just(Field(vec![Term::Star])), 1 => prop::collection::vec(term(1, 12, 5), 1..=2).prop_map(Field)];
    let sparse = (
        (minute, hours, dom_strategy(), month, dow_strategy()),
        any::<bool>(),
    )
        .prop_map(|(f, q)| assemble(f, q, None));
    let tier = prop_oneof![
        14 => (sparse, prop_oneof![1u32..=90, (1u32..=6).prop_map(|k| k * 15)], skip_strategy()),
        1 => (cron_strategy(), timeout(), skip_strategy()),
    ];
    prop_oneof![
        3 => prop::collection::vec(tier.clone(), 2..=3),
        1 => prop::collection::vec(tier, 4..=4),
    ]
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// The set as a manifest: one heavy schedule per tier, each with a model of its own.
fn heavy_manifest(set: &[HeavyTier]) -> String {
    let mut m = String::from("project p timezone=UTC\nmodels dir=\"models\" {\n");
    for i in 0..set.len() {
        m.push_str(&format!("    model m{i} tags=t{i}\n"));
    }
    m.push_str("}\n");
    for (i, (c, d, skip)) in set.iter().enumerate() {
        m.push_str(&format!("tag t{i}\n"));
        let skip = match skip {
            Some((f, t)) if f != t => {
                m.push_str(&format!(
                    "blackout b{i} from=\"{}\" to=\"{}\"\n",
                    hhmm(*f),
                    hhmm(*t)
                ));
                format!(" skip=b{i}")
            }
            _ => String::new(),
        };
        m.push_str(&format!(
            "schedule s{i} cron=\"{}\" timeout=\"{d}m\" heavy=#true{skip} {{\n    run tag:t{i}\n}}\n",
            c.text()
        ));
    }
    m
}

/// `stir check` itself on generated sets of heavy schedules: every set it accepts is proved,
/// by the reference above over the whole calendar cycle, to have no two heavy runs that ever
/// meet; every overlap it reports is real. Hundreds of sets of each kind are tried.
#[test]
fn no_two_heavy_tiers_accepted_by_check_can_overlap() {
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::Cell;
    let (accepted, rejected) = (Cell::new(0u32), Cell::new(0u32));
    let cases = 300;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&heavy_set_strategy(), |set| {
            let text = heavy_manifest(&set);
            let read =
                |_: &std::path::Path| -> std::io::Result<Vec<u8>> { Ok(b"select 1".to_vec()) };
            let c = stir::compile_bytes(
                "stir.kdl",
                text.as_bytes(),
                std::path::Path::new("."),
                &read,
            );
            let overlaps: Vec<&stir::diagnostic::Finding> = c
                .findings
                .iter()
                .filter(|f| f.code == "stir::schedule_overlap")
                .collect();
            let others: Vec<String> = c
                .findings
                .iter()
                .filter(|f| {
                    f.severity == stir::diagnostic::Severity::Error
                        && f.code != "stir::schedule_overlap"
                })
                .map(|f| format!("{}: {}", f.code, f.message))
                .collect();
            prop_assert!(others.is_empty(), "{:?}\n{}", others, text);
            let pairs: Vec<(usize, usize)> = (0..set.len())
                .flat_map(|i| (i + 1..set.len()).map(move |j| (i, j)))
                .collect();
            let fires: Vec<Fires> = set
                .iter()
                .map(|(c, d, skip)| Fires::new(c, *d, skip.filter(|(f, t)| f != t)))
                .collect();
            if overlaps.is_empty() {
                accepted.set(accepted.get() + 1);
                for (i, j) in pairs {
                    prop_assert!(
                        !ever_overlap(&fires[i], &fires[j]),
                        "accepted, but s{} and s{} can overlap:\n{}",
                        i,
                        j,
                        text
                    );
                }
            } else {
                rejected.set(rejected.get() + 1);
                for f in overlaps {
                    let named: Vec<usize> = pairs
                        .iter()
                        .flat_map(|p| [p.0, p.1])
                        .filter(|i| f.message.contains(&format!("`s{i}`")))
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    prop_assert_eq!(named.len(), 2, "{}", f.message);
                    prop_assert!(
                        ever_overlap(&fires[named[0]], &fires[named[1]]),
                        "reported, but never happens: {}\n{}",
                        f.message,
                        text
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        accepted.get() >= cases / 2,
        "only {} of {cases} sets accepted",
        accepted.get()
    );
    assert!(
        rejected.get() >= cases / 10,
        "only {} of {cases} sets rejected",
        rejected.get()
    );
}

/// Zones with DST in both hemispheres, a half-hour DST (Lord Howe), Dublin's negative DST,
/// and one without DST.
const DST_ZONES: [&str; 7] = [
    "Europe/Berlin",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "Asia/Kolkata",
];

/// Crons whose fires sit near DST transitions (small hours, transition months and days).
fn dst_cron_strategy() -> impl Strategy<Value = RefCron> {
    let minute = minute_strategy();
    let hour = prop_oneof![
        3 => prop::collection::vec((0u32..=4).prop_map(|v| Term::Val(v, false)), 1..=2).prop_map(Field),
        1 => field(0, 23, 8, 1),
    ];
    let month = prop_oneof![
        2 => Just(Field(vec![Term::Star])),
        2 => prop::collection::vec((prop::sample::select(vec![3u32, 4, 10, 11]), any::<bool>()).prop_map(|(v, n)| Term::Val(v, n)), 1..=2).prop_map(Field),
        1 => prop::collection::vec(term(1, 12, 5), 1..=2).prop_map(Field),
    ];
    // the last Sunday (`L0`, `0#5`) is when Europe changes its clocks
    (
        (minute, hour, dom_strategy(), month, dow_strategy()),
        any::<bool>(),
        preset_strategy(),
    )
        .prop_map(|(f, q, p)| assemble(f, q, p))
}

/// Short runs half the time (they straddle a transition only on its day), up to two days.
fn dst_timeout() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..180, 1u32..3000, (1u32..12).prop_map(|k| k * 30)]
}

proptest! {
    #![proptest_config(cases(128))]

    /// The fast DST sweep (integer offsets, skipped transitions, early stop) gives exactly the
    /// answers of the original uncached one, for overlaps and stale reads both ways.
    #[test]
    fn dst_sweep_agrees_with_uncached_reference(
        a in dst_cron_strategy(),
        b in dst_cron_strategy(),
        da in dst_timeout(),
        db in dst_timeout(),
        sa in skip_strategy(),
        zi in 0usize..DST_ZONES.len(),
    ) {
        let zone = Zone::parse(DST_ZONES[zi]).expect("zone");
        let (ta, tb) = (tier_of("a", &a, da, sa), tier_of("b", &b, db, None));
        let what = format!("{} ({da}m) / {} ({db}m) in {}", a.text(), b.text(), DST_ZONES[zi]);
        // the sweeps themselves (the wall-time analysis usually hides them)
        for anchor_only in [false, true] {
            prop_assert_eq!(dst_sweep(&ta, &tb, &zone, anchor_only, false), dst_sweep(&ta, &tb, &zone, anchor_only, true), "{} {}", what, anchor_only);
        }
        prop_assert_eq!(dst_sweep(&tb, &ta, &zone, true, false), dst_sweep(&tb, &ta, &zone, true, true), "{}", what);
        // and the full analyses
        prop_assert_eq!(first_overlap(&ta, &tb, &zone), first_overlap_reference(&ta, &tb, &zone), "{}", what);
        prop_assert_eq!(may_run_during_fire(&ta, &tb, &zone), may_run_during_fire_reference(&ta, &tb, &zone), "{}", what);
        prop_assert_eq!(may_run_during_fire(&tb, &ta, &zone), may_run_during_fire_reference(&tb, &ta, &zone), "{}", what);
    }
}

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn dst_heavy_overlaps_agree_with_uncached_reference(
        crons in prop::collection::vec((dst_cron_strategy(), dst_timeout(), skip_strategy()), 2..=4),
        zi in 0usize..DST_ZONES.len(),
    ) {
        let zone = Zone::parse(DST_ZONES[zi]).expect("zone");
        let tiers: Vec<Tier> = crons.iter().enumerate().map(|(i, (c, d, s))| tier_of(&format!("t{i}"), c, *d, *s)).collect();
        prop_assert_eq!(heavy_overlaps(&tiers, &zone), heavy_overlaps_reference(&tiers, &zone));
    }
}

/// A cron of one minute and one hour a day, built as a structure (the reference reads no text).
fn daily(minute: u32, hour: u32, dom: Term, months: &[u32], dow: Term) -> RefCron {
    let one = |v: u32| Field(vec![Term::Val(v, false)]);
    let months = if months.is_empty() {
        Field(vec![Term::Star])
    } else {
        Field(months.iter().map(|m| Term::Val(*m, false)).collect())
    };
    RefCron {
        fields: [
            one(minute),
            one(hour),
            Field(vec![dom]),
            months,
            Field(vec![dow]),
        ],
        preset: None,
    }
}

/// Whether the zone's clocks change on the local day `d` (its length is not 24 hours).
fn transition_day(tz: chrono_tz::Tz, d: NaiveDate) -> bool {
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight");
    ref_to_utc(tz, midnight(d + Duration::days(1))) - ref_to_utc(tz, midnight(d)) != 1440
}

/// Hand-picked pairs near the small hours, in several zones: the fast sweep agrees with the
/// uncached one; the analysis with the real-time reference (fires put on the real clock
/// straight from the zone database, no code of the analysis), over 2026; and where a pair
/// never meets in wall time, every overlap found is on one of the zone's transition days
/// (there are none in a zone without DST).
#[test]
fn dst_transition_pairs_agree_with_reference() {
    use Term::{Range, Star, Val};
    let pairs = [
        (
            daily(30, 1, Star, &[], Star),
            60,
            daily(0, 3, Star, &[], Star),
            10,
        ),
        (
            daily(0, 1, Star, &[], Star),
            60,
            daily(30, 1, Star, &[], Star),
            10,
        ),
        (
            daily(45, 1, Star, &[], Val(0, false)),
            30,
            daily(15, 2, Star, &[], Val(0, false)),
            5,
        ),
        (
            daily(0, 0, Star, &[3, 4, 10, 11], Star),
            150,
            daily(0, 3, Star, &[], Star),
            1,
        ),
        (
            daily(30, 2, Star, &[], Star),
            1,
            daily(0, 3, Star, &[], Star),
            1,
        ),
        (
            daily(0, 23, Star, &[], Star),
            240,
            daily(0, 3, Star, &[], Star),
            20,
        ),
        (
            daily(0, 2, Range(1, 7), &[], Val(0, false)),
            45,
            daily(30, 2, Star, &[], Star),
            45,
        ),
    ];
    let year_end = NaiveDate::from_ymd_opt(2027, 1, 1)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("time");
    let mut on_transition_days = 0;
    for (ca, da, cb, db) in &pairs {
        let (wa, wb) = (
            ref_fires_until(ca, None, year_end),
            ref_fires_until(cb, None, year_end),
        );
        let (a, b) = (tier_of("a", ca, *da, None), tier_of("b", cb, *db, None));
        let what = format!("{} ({da}m) / {} ({db}m)", ca.text(), cb.text());
        let wall_apart = ref_first_overlap(&wa, *da as i64, &wb, *db as i64).is_none();
        for z in DST_ZONES {
            let zone = Zone::parse(z).expect("zone");
            let tz: chrono_tz::Tz = z.parse().expect("zone");
            for (x, y) in [(&a, &b), (&b, &a)] {
                for anchor_only in [false, true] {
                    assert_eq!(
                        dst_sweep(x, y, &zone, anchor_only, false),
                        dst_sweep(x, y, &zone, anchor_only, true),
                        "{what} in {z}, {anchor_only}"
                    );
                }
            }
            let (ra, rb) = (ref_real(tz, &wa), ref_real(tz, &wb));
            let to_u = |m: i64| ref_to_utc(tz, start() + Duration::minutes(m));
            let end_u = ref_to_utc(tz, year_end);
            let expect = min_some(
                ref_first_overlap(&wa, *da as i64, &wb, *db as i64).map(to_u),
                ref_first_overlap(&ra, *da as i64, &rb, *db as i64),
            )
            .map(|e| ref_key(tz, e));
            let got = first_overlap(&a, &b, &zone);
            match (expect, &got) {
                (Some(e), Some(o)) => assert_eq!(ref_to_utc(tz, o.instant), e, "{what} in {z}"),
                (None, Some(o)) => {
                    assert!(ref_to_utc(tz, o.instant) >= end_u, "{what} in {z}: {o:?}")
                }
                (e, None) => assert_eq!(e, None, "{what} in {z}: missed"),
            }
            // A pair that never meets in wall time meets only where the clocks change.
            if let (Some(o), true) = (&got, wall_apart) {
                assert!(
                    transition_day(tz, o.instant.date()),
                    "{what} in {z}: overlap at {} is not on a transition day",
                    o.instant
                );
                on_transition_days += 1;
            }
            let expect = min_some(
                ref_stale(&wb, *db as i64, &wa).map(to_u),
                ref_stale(&rb, *db as i64, &ra),
            )
            .map(|e| ref_key(tz, e));
            let got = may_run_during_fire(&b, &a, &zone).map(|o| ref_to_utc(tz, o.instant));
            match expect {
                Some(e) => assert_eq!(got, Some(e), "{what} in {z}: stale read"),
                None => assert!(got.is_none_or(|g| g >= end_u), "{what} in {z}: stale read"),
            }
        }
    }
    assert!(
        on_transition_days >= 20,
        "{on_transition_days} overlaps on transition days"
    );
}

// ------------------------------------------------------------------ the platform's real cases

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test datetime")
}

fn tier(name: &str, cron: &str, timeout: u32) -> Tier {
    Tier {
        name: name.into(),
        cron: Cron::parse(cron).expect("cron"),
        timeout_min: timeout,
        heavy: true,
        skip: vec![],
    }
}

#[test]
fn post_ranker_overlaps_dbt_daily_at_19() {
    let pr = tier("post_ranker", "0 */5 * * *", 300);
    let daily = tier("dbt_daily", "0 19 * * *", 360);
    let o = first_overlap(&pr, &daily, &utc()).expect("overlap");
    assert_eq!(o.instant, dt("2026-01-01 19:00"));
    assert_eq!(o.a_fire, dt("2026-01-01 15:00"));
    assert_eq!(o.a_end, dt("2026-01-01 20:00"));
    assert_eq!(o.b_fire, dt("2026-01-01 19:00"));
    assert_eq!(o.b_end, dt("2026-01-02 01:00"));
    // symmetric
    let o2 = first_overlap(&daily, &pr, &utc()).expect("overlap");
    assert_eq!(o2.instant, o.instant);
    let fix = stir::schedule::suggest_fix(&pr, &daily, &o);
    assert!(!fix.is_empty());
}

#[test]
fn dbt_weekly_overlaps_post_ranker() {
    let weekly = tier("dbt_weekly", "0 6 */7 * *", 360);
    let pr = tier("post_ranker", "0 */5 * * *", 300);
    let o = first_overlap(&weekly, &pr, &utc()).expect("overlap");
    // post_ranker fired 05:00 runs to 10:00; weekly fires 06:00 on the 1st
    assert_eq!(o.instant, dt("2026-01-01 06:00"));
    assert_eq!(o.b_fire, dt("2026-01-01 05:00"));
}

#[test]
fn dbt_hourly_overruns_the_daily_batch_blackout() {
    let w = DailyWindow {
        from: 19 * 60,
        to: 22 * 60,
    };
    let mut hourly = tier("dbt_hourly", "0 1-23/2 * * *", 180);
    hourly.skip = vec![w];
    let o = blackout_overrun(&hourly, &w, &utc()).expect("overrun");
    assert_eq!(o.fire, dt("2026-01-01 17:00"));
    assert_eq!(o.end, dt("2026-01-01 20:00"));
    assert_eq!(o.blackout_start, dt("2026-01-01 19:00"));
}

#[test]
fn weekly_day_of_month_step_is_irregular() {
    let w = Cron::parse("0 6 */7 * *").expect("cron").irregular_steps();
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("1,8,15,22,29"), "{}", w[0].message);
    assert!(w[0].help.contains("`0 6 * * 1`"), "{}", w[0].help);
    assert!(Cron::parse("0 1-23/2 * * *")
        .expect("cron")
        .irregular_steps()
        .is_empty());
}

#[test]
fn touching_windows_do_not_overlap() {
    let a = tier("a", "0 1 * * *", 60);
    let b = tier("b", "0 2 * * *", 60);
    assert_eq!(first_overlap(&a, &b, &utc()), None);
    let b2 = tier("b", "59 1 * * *", 60);
    assert_eq!(
        first_overlap(&a, &b2, &utc()).map(|o| o.instant),
        Some(dt("2026-01-01 01:59"))
    );
}

#[test]
fn windows_across_midnight() {
    let a = tier("a", "0 23 * * *", 120); // to 01:00
    let b = tier("b", "59 0 * * *", 10);
    let o = first_overlap(&a, &b, &utc()).expect("overlap");
    assert_eq!(o.instant, dt("2026-01-02 00:59"));
    assert_eq!(o.a_fire, dt("2026-01-01 23:00"));
    let c = tier("c", "0 1 * * *", 10);
    assert_eq!(first_overlap(&a, &c, &utc()), None);
}

#[test]
fn windows_across_month_ends() {
    // last day of 30-day months only meets the 1st of the next month
    let a = tier("a", "0 22 30 4 *", 180);
    let b = tier("b", "0 0 1 5 *", 30);
    let o = first_overlap(&a, &b, &utc()).expect("overlap");
    assert_eq!(o.instant, dt("2026-05-01 00:00"));
    // 31st runs into the 1st: only months with 31 days, and a Feb-28 run into Mar 1
    let c = tier("c", "0 23 28 2 *", 120);
    let d = tier("d", "30 0 1 3 *", 10);
    let o = first_overlap(&c, &d, &utc()).expect("overlap");
    assert_eq!(o.instant, dt("2026-03-01 00:30"));
}

#[test]
fn feb_29_only_pair_first_overlaps_in_2028() {
    let a = tier("a", "0 0 29 2 *", 60);
    let b = tier("b", "30 0 29 feb *", 60);
    let o = first_overlap(&a, &b, &utc()).expect("overlap");
    assert_eq!(o.instant, dt("2028-02-29 00:30"));
}

#[test]
fn day_of_month_or_day_of_week() {
    let c = Cron::parse("0 6 1,15 * 1").expect("cron");
    assert_eq!(
        c.next_after(dt("2026-01-01 06:00")),
        Some(dt("2026-01-05 06:00"))
    ); // Monday
    assert_eq!(
        c.next_after(dt("2026-01-12 06:00")),
        Some(dt("2026-01-15 06:00"))
    );
    let a = tier("a", "0 6 1,15 * 1", 60);
    let b = tier("b", "30 6 * * 1", 60);
    assert_eq!(
        first_overlap(&a, &b, &utc()).map(|o| o.instant),
        Some(dt("2026-01-05 06:30"))
    );
}

#[test]
fn feb_31_never_fires() {
    let c = Cron::parse("0 0 31 2 *").expect("cron");
    assert_eq!(c.next_after(dt("2026-01-01 00:00")), None);
    let a = tier("a", "0 0 31 2 *", 6000);
    let b = tier("b", "* * * * *", 6000);
    assert_eq!(first_overlap(&a, &b, &utc()), None);
}

/// Timeouts the random pairs do not draw: zero (a stale read's reader needs none) and months
/// long (the windows then reach past other transitions and back before the analysis start,
/// where nothing has fired yet). New York, both ways round, both analyses.
#[test]
fn zero_and_month_long_timeouts_agree_with_the_uncached_reference() {
    let ny = Zone::parse("America/New_York").expect("zone");
    for (a, da, b, db) in [
        ("0 1 * * *", 61, "30 2 * * *", 0),
        ("10 1 1 3 *", 254 * 1440 - 30, "0 10 10 11 *", 10),
        ("10 1 1 3 *", 254 * 1440 + 30, "0 10 10 11 *", 10),
        ("0 10 15 12 *", 100 * 1440, "0 10 * * *", 10),
    ] {
        let (ta, tb) = (tier("a", a, da), tier("b", b, db));
        if db == 0 {
            // the comparisons below would pass if both sweeps found nothing: this one finds
            // the reader's 02:30 fire, at 03:00 EDT, inside the run from 01:00 EST
            let hit = dst_sweep(&tb, &ta, &ny, true, true).map(|x| x.0.to_rfc3339());
            assert_eq!(hit.as_deref(), Some("2026-03-08T07:00:00+00:00"));
        }
        for (x, y) in [(&ta, &tb), (&tb, &ta)] {
            for anchor_only in [false, true] {
                assert_eq!(
                    dst_sweep(x, y, &ny, anchor_only, false),
                    dst_sweep(x, y, &ny, anchor_only, true),
                    "{} / {} {anchor_only}",
                    x.name,
                    y.name
                );
            }
            assert_eq!(first_overlap(x, y, &ny), first_overlap_reference(x, y, &ny));
            assert_eq!(
                may_run_during_fire(x, y, &ny),
                may_run_during_fire_reference(x, y, &ny)
            );
        }
    }
}

#[test]
fn a_daily_and_a_weekly_run_hours_apart_never_meet() {
    // How fast the analysis answers is measured by the benchmark (docs/performance.md), not
    // asserted here: a timed assertion fails on a loaded machine.
    let a = tier("a", "0 1 * * *", 60);
    let b = tier("b", "0 3 * * 1", 60);
    assert_eq!(first_overlap(&a, &b, &utc()), None);
    assert_eq!(first_overlap(&b, &a, &utc()), None);
}

#[test]
fn dst_spring_forward_overlap_only_on_transition_day() {
    // New York springs forward at 2026-03-08 02:00 EST -> 03:00 EDT. A run fired at 01:30
    // EST lasts 60 real minutes, to 03:30 EDT, so it meets the 03:00 fire that day only.
    let ny = Zone::parse("America/New_York").expect("zone");
    let a = tier("a", "30 1 * * *", 60);
    let b = tier("b", "0 3 * * *", 10);
    assert_eq!(first_overlap(&a, &b, &Zone::Fixed(-300)), None);
    let o = first_overlap(&a, &b, &ny).expect("overlap on the transition day");
    assert_eq!(o.instant, dt("2026-03-08 03:00"));
    assert_eq!(o.a_fire, dt("2026-03-08 01:30"));
    assert_eq!(o.a_end, dt("2026-03-08 03:30"));
    assert_eq!(o.b_fire, dt("2026-03-08 03:00"));
    // and the same pair seen as a stale read
    let s = may_run_during_fire(&a, &b, &ny).expect("stale read");
    assert_eq!(s.instant, dt("2026-03-08 03:00"));
}

#[test]
fn dst_fall_back_transition_day() {
    // 2026-11-01: 01:00-02:00 happens twice; fires take the first occurrence (EDT).
    let ny = Zone::parse("America/New_York").expect("zone");
    let a = tier("a", "0 1 1 11 *", 60);
    let b = tier("b", "30 1 1 11 *", 10);
    let o = first_overlap(&a, &b, &ny).expect("overlap");
    assert_eq!(o.instant, dt("2026-11-01 01:30"));
    // next_fire_utc: ambiguous 01:30 fires once, at 05:30Z; the gap 02:30 fires at 03:00 EDT
    let c = Cron::parse("30 1 * * *").expect("cron");
    let after = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .expect("t")
        .to_utc();
    let f = ny.next_fire_utc(&c, &[], after).expect("fire");
    assert_eq!(f.to_rfc3339(), "2026-11-01T05:30:00+00:00");
    let f2 = ny.next_fire_utc(&c, &[], f).expect("fire");
    assert_eq!(f2.to_rfc3339(), "2026-11-02T06:30:00+00:00");
    let g = Cron::parse("30 2 * * *").expect("cron");
    let after = chrono::DateTime::parse_from_rfc3339("2026-03-08T05:00:00Z")
        .expect("t")
        .to_utc();
    let f = ny.next_fire_utc(&g, &[], after).expect("fire");
    assert_eq!(f.to_rfc3339(), "2026-03-08T07:00:00+00:00");
}

#[test]
fn zones_parse() {
    assert_eq!(Zone::parse("UTC"), Some(Zone::Fixed(0)));
    assert_eq!(Zone::parse("+05:30"), Some(Zone::Fixed(330)));
    assert_eq!(Zone::parse("-08:00"), Some(Zone::Fixed(-480)));
    assert!(matches!(Zone::parse("Asia/Kolkata"), Some(Zone::Iana(_))));
    assert_eq!(Zone::parse("Mars/Olympus"), None);
}

// ------------------------------------------------------------------ croniter's own answers

/// What Airflow does with the same text: the first eight fires after 2026-01-01 00:00 of each
/// expression as croniter 7.0.0 computes them (`croniter(expr, datetime(2026, 1, 1))` then
/// `get_next(datetime)` eight times), copied from its output: `expression | fires`. The last rows are croniter's day
/// rule on fields that list every value (`*/1`, `1-31`, `0-6`) or hold a `*` term.
const CRONITER: &str = "
@daily            | 2026-01-02 00:00, 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-05 00:00, 2026-01-06 00:00, 2026-01-07 00:00, 2026-01-08 00:00, 2026-01-09 00:00
@midnight         | 2026-01-02 00:00, 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-05 00:00, 2026-01-06 00:00, 2026-01-07 00:00, 2026-01-08 00:00, 2026-01-09 00:00
@weekly           | 2026-01-04 00:00, 2026-01-11 00:00, 2026-01-18 00:00, 2026-01-25 00:00, 2026-02-01 00:00, 2026-02-08 00:00, 2026-02-15 00:00, 2026-02-22 00:00
@monthly          | 2026-02-01 00:00, 2026-03-01 00:00, 2026-04-01 00:00, 2026-05-01 00:00, 2026-06-01 00:00, 2026-07-01 00:00, 2026-08-01 00:00, 2026-09-01 00:00
@yearly           | 2027-01-01 00:00, 2028-01-01 00:00, 2029-01-01 00:00, 2030-01-01 00:00, 2031-01-01 00:00, 2032-01-01 00:00, 2033-01-01 00:00, 2034-01-01 00:00
@annually         | 2027-01-01 00:00, 2028-01-01 00:00, 2029-01-01 00:00, 2030-01-01 00:00, 2031-01-01 00:00, 2032-01-01 00:00, 2033-01-01 00:00, 2034-01-01 00:00
@hourly           | 2026-01-01 01:00, 2026-01-01 02:00, 2026-01-01 03:00, 2026-01-01 04:00, 2026-01-01 05:00, 2026-01-01 06:00, 2026-01-01 07:00, 2026-01-01 08:00
@DAILY            | 2026-01-02 00:00, 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-05 00:00, 2026-01-06 00:00, 2026-01-07 00:00, 2026-01-08 00:00, 2026-01-09 00:00
0 0 L * *         | 2026-01-31 00:00, 2026-02-28 00:00, 2026-03-31 00:00, 2026-04-30 00:00, 2026-05-31 00:00, 2026-06-30 00:00, 2026-07-31 00:00, 2026-08-31 00:00
0 0 1,L * *       | 2026-01-31 00:00, 2026-02-01 00:00, 2026-02-28 00:00, 2026-03-01 00:00, 2026-03-31 00:00, 2026-04-01 00:00, 2026-04-30 00:00, 2026-05-01 00:00
0 0 L 2 *         | 2026-02-28 00:00, 2027-02-28 00:00, 2028-02-29 00:00, 2029-02-28 00:00, 2030-02-28 00:00, 2031-02-28 00:00, 2032-02-29 00:00, 2033-02-28 00:00
0 6 15-L/5 * *    | 2026-01-15 06:00, 2026-01-20 06:00, 2026-01-25 06:00, 2026-01-30 06:00, 2026-02-15 06:00, 2026-02-20 06:00, 2026-02-25 06:00, 2026-03-15 06:00
0 0 L * 1         | 2026-01-05 00:00, 2026-01-12 00:00, 2026-01-19 00:00, 2026-01-26 00:00, 2026-01-31 00:00, 2026-02-02 00:00, 2026-02-09 00:00, 2026-02-16 00:00
0 0 * * 5#2       | 2026-01-09 00:00, 2026-02-13 00:00, 2026-03-13 00:00, 2026-04-10 00:00, 2026-05-08 00:00, 2026-06-12 00:00, 2026-07-10 00:00, 2026-08-14 00:00
0 0 * * 1#1,5#3   | 2026-01-05 00:00, 2026-01-16 00:00, 2026-02-02 00:00, 2026-02-20 00:00, 2026-03-02 00:00, 2026-03-20 00:00, 2026-04-06 00:00, 2026-04-17 00:00
0 0 * * 5#5       | 2026-01-30 00:00, 2026-05-29 00:00, 2026-07-31 00:00, 2026-10-30 00:00, 2027-01-29 00:00, 2027-04-30 00:00, 2027-07-30 00:00, 2027-10-29 00:00
0 0 * * 0#5       | 2026-03-29 00:00, 2026-05-31 00:00, 2026-08-30 00:00, 2026-11-29 00:00, 2027-01-31 00:00, 2027-05-30 00:00, 2027-08-29 00:00, 2027-10-31 00:00
30 2 * 2 4#5      | 2052-02-29 02:30, 2080-02-29 02:30, 2120-02-29 02:30, 2148-02-29 02:30, 2176-02-29 02:30, 2216-02-29 02:30, 2244-02-29 02:30, 2272-02-29 02:30
0 0 ? * *         | 2026-01-02 00:00, 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-05 00:00, 2026-01-06 00:00, 2026-01-07 00:00, 2026-01-08 00:00, 2026-01-09 00:00
0 0 1 * ?         | 2026-02-01 00:00, 2026-03-01 00:00, 2026-04-01 00:00, 2026-05-01 00:00, 2026-06-01 00:00, 2026-07-01 00:00, 2026-08-01 00:00, 2026-09-01 00:00
0 0 ? * 1         | 2026-01-05 00:00, 2026-01-12 00:00, 2026-01-19 00:00, 2026-01-26 00:00, 2026-02-02 00:00, 2026-02-09 00:00, 2026-02-16 00:00, 2026-02-23 00:00
0 0 * * L5        | 2026-01-30 00:00, 2026-02-27 00:00, 2026-03-27 00:00, 2026-04-24 00:00, 2026-05-29 00:00, 2026-06-26 00:00, 2026-07-31 00:00, 2026-08-28 00:00
0 0 * * fri#2     | 2026-01-09 00:00, 2026-02-13 00:00, 2026-03-13 00:00, 2026-04-10 00:00, 2026-05-08 00:00, 2026-06-12 00:00, 2026-07-10 00:00, 2026-08-14 00:00
0 0 * * 7#1       | 2026-01-04 00:00, 2026-02-01 00:00, 2026-03-01 00:00, 2026-04-05 00:00, 2026-05-03 00:00, 2026-06-07 00:00, 2026-07-05 00:00, 2026-08-02 00:00
0 0 * * mon-fri#2 | 2026-01-08 00:00, 2026-01-09 00:00, 2026-01-12 00:00, 2026-01-13 00:00, 2026-01-14 00:00, 2026-02-09 00:00, 2026-02-10 00:00, 2026-02-11 00:00
0 0 * * 5#2,L5    | 2026-01-09 00:00, 2026-01-30 00:00, 2026-02-13 00:00, 2026-02-27 00:00, 2026-03-13 00:00, 2026-03-27 00:00, 2026-04-10 00:00, 2026-04-24 00:00
0 0 */1 * */2     | 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-06 00:00, 2026-01-08 00:00, 2026-01-10 00:00, 2026-01-11 00:00, 2026-01-13 00:00, 2026-01-15 00:00
0 0 1-31 * */2    | 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-06 00:00, 2026-01-08 00:00, 2026-01-10 00:00, 2026-01-11 00:00, 2026-01-13 00:00, 2026-01-15 00:00
0 0 */2 * 0-6     | 2026-01-03 00:00, 2026-01-05 00:00, 2026-01-07 00:00, 2026-01-09 00:00, 2026-01-11 00:00, 2026-01-13 00:00, 2026-01-15 00:00, 2026-01-17 00:00
0 0 *,5 * 1       | 2026-01-05 00:00, 2026-01-12 00:00, 2026-01-19 00:00, 2026-01-26 00:00, 2026-02-02 00:00, 2026-02-09 00:00, 2026-02-16 00:00, 2026-02-23 00:00
0 0 1-31 * 1      | 2026-01-02 00:00, 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-05 00:00, 2026-01-06 00:00, 2026-01-07 00:00, 2026-01-08 00:00, 2026-01-09 00:00
0 0 1-L * */2     | 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-06 00:00, 2026-01-08 00:00, 2026-01-10 00:00, 2026-01-11 00:00, 2026-01-13 00:00, 2026-01-15 00:00
0 0 L 2 1         | 2026-02-02 00:00, 2026-02-09 00:00, 2026-02-16 00:00, 2026-02-23 00:00, 2026-02-28 00:00, 2027-02-01 00:00, 2027-02-08 00:00, 2027-02-15 00:00
0 0 * * L7        | 2026-01-25 00:00, 2026-02-22 00:00, 2026-03-29 00:00, 2026-04-26 00:00, 2026-05-31 00:00, 2026-06-28 00:00, 2026-07-26 00:00, 2026-08-30 00:00
0 0 1-30,L * */2  | 2026-01-03 00:00, 2026-01-04 00:00, 2026-01-06 00:00, 2026-01-08 00:00, 2026-01-10 00:00, 2026-01-11 00:00, 2026-01-13 00:00, 2026-01-15 00:00
0 0 */7 * 1       | 2026-01-05 00:00, 2026-01-08 00:00, 2026-01-12 00:00, 2026-01-15 00:00, 2026-01-19 00:00, 2026-01-22 00:00, 2026-01-26 00:00, 2026-01-29 00:00
";

#[test]
fn fires_as_croniter_does() {
    for row in CRONITER.lines().filter(|l| !l.is_empty()) {
        let (expr, fires) = row.split_once(" | ").expect("expr | fires");
        let expr = expr.trim_end();
        let c = Cron::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let mut t = start();
        for f in fires.split(", ") {
            let n = c
                .next_after(t)
                .unwrap_or_else(|| panic!("{expr}: no fire after {t}"));
            assert_eq!(n, dt(f), "{expr} after {t}");
            t = n;
        }
    }
}

// ------------------------------------------------------------------ real time in DST zones

/// Local wall time -> UTC minute by the DST rule, straight from the zone database: a time in a
/// spring-forward gap fires at the first instant after the gap, an ambiguous time at its
/// first occurrence.
fn ref_to_utc(tz: chrono_tz::Tz, w: NaiveDateTime) -> i64 {
    use chrono::{LocalResult, TimeZone};
    let first = match tz.from_local_datetime(&w) {
        LocalResult::Single(x) => x.timestamp(),
        LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()),
        LocalResult::None => (1..=1440)
            .find_map(|k| {
                tz.from_local_datetime(&(w + Duration::minutes(k)))
                    .earliest()
            })
            .expect("a gap shorter than a day")
            .timestamp(),
    };
    first / 60
}

/// A UTC minute as the zone's wall time and back: the same instant, except that the second
/// pass through a repeated (fall-back) hour reads as the first.
fn ref_key(tz: chrono_tz::Tz, u: i64) -> i64 {
    use chrono::TimeZone;
    let local = tz
        .timestamp_opt(u * 60, 0)
        .single()
        .expect("an instant")
        .naive_local();
    ref_to_utc(tz, local)
}

/// Wall-time fires (minutes since start) -> real fires (UTC minutes), one per instant.
fn ref_real(tz: chrono_tz::Tz, wall: &[i64]) -> Vec<i64> {
    let mut out: Vec<i64> = wall
        .iter()
        .map(|m| ref_to_utc(tz, start() + Duration::minutes(*m)))
        .collect();
    out.dedup();
    out
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Crons in the new forms, with fires in the small hours where clocks change.
fn dialect_cron_strategy() -> impl Strategy<Value = RefCron> {
    let hour = prop_oneof![
        3 => prop::collection::vec((0u32..=4).prop_map(|v| Term::Val(v, false)), 1..=2).prop_map(Field),
        1 => field(0, 23, 8, 1),
    ];
    let dom = prop_oneof![
        1 => Just(Field(vec![Term::Star])),
        2 => prop::collection::vec(prop_oneof![Just(Term::Last), (1u32..=31).prop_map(|v| Term::Val(v, false))], 1..=2).prop_map(Field),
    ];
    let dow = prop_oneof![
        1 => prop::collection::vec(term(0, 7, 3), 1..=2).prop_map(Field),
        3 => prop::collection::vec((0u32..=7, 0u32..=5, any::<bool>()).prop_map(|(w, k, n)| Term::Nth(w, k, n)), 1..=2).prop_map(Field),
    ];
    let month = prop_oneof![
        1 => Just(Field(vec![Term::Star])),
        1 => prop::collection::vec(prop::sample::select(vec![2u32, 3, 4, 10, 11]).prop_map(|v| Term::Val(v, false)), 1..=2).prop_map(Field),
    ];
    (
        (minute_strategy(), hour, dom, month, dow),
        any::<bool>(),
        preset_strategy(),
    )
        .prop_map(|(f, q, p)| assemble(f, q, p))
}

/// Both hemispheres, a half-hour DST (Lord Howe) and Dublin's negative one.
const REAL_ZONES: [&str; 5] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Europe/Dublin",
];

/// Three years, with the leap day of 2028.
fn real_horizon() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2029, 1, 1)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("time")
}

proptest! {
    #![proptest_config(cases(40))]

    /// In DST zones, against fires computed minute by minute and put on the real clock by the
    /// zone database: the runtime's next fire is exact, and the overlap and stale-read
    /// analyses report the earlier of the first real-time hit and the first wall-time hit
    /// (the documented, cautious rule), never later.
    #[test]
    fn dst_zones_match_the_real_time_reference(
        a in dialect_cron_strategy(), b in dialect_cron_strategy(),
        da in dst_timeout(), db in dst_timeout(),
        zi in 0usize..REAL_ZONES.len(),
        probe in 0i64..(3 * 525_600),
    ) {
        let zone = Zone::parse(REAL_ZONES[zi]).expect("zone");
        let tz: chrono_tz::Tz = REAL_ZONES[zi].parse().expect("zone");
        let what = format!("{} ({da}m) / {} ({db}m) in {}", a.text(), b.text(), REAL_ZONES[zi]);
        let (wa, wb) = (ref_fires_until(&a, None, real_horizon()), ref_fires_until(&b, None, real_horizon()));
        let (ra, rb) = (ref_real(tz, &wa), ref_real(tz, &wb));
        let end_u = ref_to_utc(tz, real_horizon());
        let to_u = |m: i64| ref_to_utc(tz, start() + Duration::minutes(m));

        // the runtime's next fire, from a random instant
        let after = to_u(0) + probe;
        let expect = ra.iter().find(|f| **f > after).copied();
        let got = zone
            .next_fire_utc(&a.cron(), &[], chrono::DateTime::from_timestamp(after * 60, 0).expect("t"))
            .map(|t| t.timestamp() / 60);
        match expect {
            Some(e) => prop_assert_eq!(got, Some(e), "{}", what),
            None => prop_assert!(got.is_none_or(|g| g >= end_u), "{}", what),
        }

        let (ta, tb) = (tier_of("a", &a, da, None), tier_of("b", &b, db, None));
        // overlaps
        let expect = min_some(
            ref_first_overlap(&wa, da as i64, &wb, db as i64).map(to_u),
            ref_first_overlap(&ra, da as i64, &rb, db as i64),
        );
        let got = first_overlap(&ta, &tb, &zone).map(|o| ref_to_utc(tz, o.instant));
        match expect {
            Some(e) => prop_assert_eq!(got, Some(ref_key(tz, e)), "{}", what),
            None => prop_assert!(got.is_none_or(|g| g >= end_u), "{}", what),
        }
        // stale reads: a's fires against b's runs
        let expect = min_some(
            ref_stale(&wb, db as i64, &wa).map(to_u),
            ref_stale(&rb, db as i64, &ra),
        );
        let got = may_run_during_fire(&tb, &ta, &zone).map(|o| ref_to_utc(tz, o.instant));
        match expect {
            Some(e) => prop_assert_eq!(got, Some(ref_key(tz, e)), "{}", what),
            None => prop_assert!(got.is_none_or(|g| g >= end_u), "{}", what),
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// The timeline draws exactly the reference's fires, each with its whole window.
    #[test]
    fn timeline_windows_match_reference(c in cron_strategy(), d in 1u32..3000, day in 0i64..2900) {
        let t = tier_of("t", &c, d, None);
        let from = start() + Duration::days(day);
        let to = from + Duration::days(7);
        let got = windows(&t, &utc(), from, to);
        let expect: Vec<(NaiveDateTime, NaiveDateTime)> = ref_fires(&c, None)
            .into_iter()
            .map(|f| start() + Duration::minutes(f))
            .map(|f| (f, f + Duration::minutes(d as i64)))
            .filter(|(f, e)| *f < to && *e > from)
            .collect();
        prop_assert_eq!(got, expect, "{}", c.text());
    }
}

// ------------------------------------------------------------------ the new forms by hand

/// (cron a, timeout a, cron b, timeout b, first overlap in UTC or None, why).
type Pair = (
    &'static str,
    u32,
    &'static str,
    u32,
    Option<&'static str>,
    &'static str,
);

/// The new forms over the whole calendar, by hand: leap years for `L`, months with and
/// without a fifth weekday for `n#5`, presets and `?` as their fields.
const DIALECT_PAIRS: &[Pair] = &[
    (
        "0 22 L 2 *",
        120,
        "30 23 29 2 *",
        10,
        Some("2028-02-29 23:30"),
        "Feb 29 is the last day only in leap years",
    ),
    (
        "0 22 L * *",
        120,
        "30 23 28 * *",
        10,
        Some("2026-02-28 23:30"),
        "the 28th is the last day in February of common years",
    ),
    (
        "0 22 L 2 *",
        120,
        "30 23 28 2 2",
        10,
        Some("2026-02-28 23:30"),
        "`28 2 2` is the 28th or a Tuesday of February (OR)",
    ),
    (
        "0 6 * * 5#5",
        60,
        "30 6 29-31 * *",
        10,
        Some("2026-01-30 06:30"),
        "Fridays 2, 9, 16, 23, 30 in January 2026",
    ),
    (
        "0 6 * * 5#5",
        60,
        "30 6 * 2 *",
        10,
        Some("2036-02-29 06:30"),
        "five Fridays in February need Feb 29 on a Friday",
    ),
    (
        "0 6 * * 5#4",
        60,
        "30 6 29 * ?",
        10,
        None,
        "the fourth Friday is never the 29th",
    ),
    (
        "0 6 * * L5",
        60,
        "30 6 29-31 * *",
        10,
        Some("2026-01-30 06:30"),
        "the last Friday is the fifth when there is one",
    ),
    (
        "0 6 * * L5",
        60,
        "30 6 1-21 * *",
        10,
        None,
        "the last Friday is never before the 22nd",
    ),
    (
        "@daily",
        60,
        "0 0 ? * *",
        60,
        Some("2026-01-01 00:00"),
        "`@daily` and `?`",
    ),
    (
        "@WEEKLY",
        60,
        "30 0 * * 7",
        10,
        Some("2026-01-04 00:30"),
        "`@weekly` is Sunday midnight",
    ),
    (
        "@quarterly",
        60,
        "30 0 1 2 *",
        10,
        None,
        "`@quarterly` is January, April, July, October",
    ),
    (
        "@yearly",
        60,
        "30 0 1 1 1",
        10,
        Some("2026-01-01 00:30"),
        "`1 1 1`: January 1st or a Monday of January (OR)",
    ),
    (
        "0 0 L * 1",
        60,
        "30 0 * * 6",
        10,
        Some("2026-01-31 00:30"),
        "the last day or Mondays: January 31st 2026 is a Saturday",
    ),
];

#[test]
fn dialect_pairs_over_the_calendar() {
    for (ca, da, cb, db, expect, why) in DIALECT_PAIRS {
        let (a, b) = (tier("a", ca, *da), tier("b", cb, *db));
        for (x, y) in [(&a, &b), (&b, &a)] {
            let got = first_overlap(x, y, &utc()).map(|o| o.instant);
            assert_eq!(got, expect.map(dt), "{ca} / {cb}: {why}");
        }
    }
    // and the runtime fires on Feb 29 in 2028
    let f = Cron::parse("0 0 L 2 *").expect("cron");
    assert_eq!(
        f.next_after(dt("2027-03-01 00:00")),
        Some(dt("2028-02-29 00:00"))
    );
    // the fix for a preset shifts the hour of its fields (no skip window fits: 15h + 10h)
    let (sat, weekly) = (
        tier("sat", "0 22 * * 6", 900),
        tier("weekly", "@weekly", 600),
    );
    let o = first_overlap(&sat, &weekly, &utc()).expect("overlap");
    assert_eq!(o.instant, dt("2026-01-04 00:00"));
    let fix = stir::schedule::suggest_fix(&sat, &weekly, &o);
    assert!(fix.contains("cron=\"0 13 * * 0\"; checked"), "{fix}");
}

#[test]
fn berlin_last_sunday_is_when_the_clocks_change() {
    // Europe/Berlin springs forward on the last Sunday of March (2026-03-29, 02:00 CET ->
    // 03:00 CEST) and falls back on the last Sunday of October (2026-10-25, 03:00 -> 02:00).
    let berlin = Zone::parse("Europe/Berlin").expect("zone");
    for (x, y) in [("0 1 * * L0", "0 3 * * L0"), ("0 1 * * 0#5", "0 3 * 3 0#5")] {
        // 01:00 CET + 90 real minutes is 03:30 CEST on the transition day only
        let (a, b) = (tier("a", x, 90), tier("b", y, 10));
        assert_eq!(first_overlap(&a, &b, &utc()), None, "{x} / {y}");
        let o = first_overlap(&a, &b, &berlin).expect("overlap on the spring-forward day");
        assert_eq!(o.instant, dt("2026-03-29 03:00"), "{x} / {y}");
        assert_eq!(o.a_end, dt("2026-03-29 03:30"));
    }
    // the runtime: 02:30 does not exist that day and fires at 03:00 CEST (01:00Z); in October
    // 02:30 happens twice and fires once, at the first (CEST, 00:30Z)
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("t").to_utc();
    // (cron, after, the fires that follow, in UTC); a last-day-of-month run on Feb 29 too
    let runs = [
        (
            "30 2 * * L0",
            "2026-03-01T00:00:00Z",
            ["2026-03-29T01:00:00Z", "2026-04-26T00:30:00Z"],
        ),
        (
            "30 2 * * L0",
            "2026-10-01T00:00:00Z",
            ["2026-10-25T00:30:00Z", "2026-11-29T01:30:00Z"],
        ),
        (
            "0 23 L 2 *",
            "2027-03-01T00:00:00Z",
            ["2028-02-29T22:00:00Z", "2029-02-28T22:00:00Z"],
        ),
    ];
    for (cron, after, fires) in runs {
        let c = Cron::parse(cron).expect("cron");
        let mut t = at(after);
        for f in fires {
            t = berlin.next_fire_utc(&c, &[], t).expect("fire");
            assert_eq!(t, at(f), "{cron}");
        }
    }
}
