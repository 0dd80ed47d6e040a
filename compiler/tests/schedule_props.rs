//! The exact schedule analysis against a brute-force minute-grid reference.
//!
//! The reference never parses cron text and never calls `Cron`'s matcher: random crons are
//! generated as structures, rendered to text for `Cron::parse`, and expanded to value sets
//! here. Fires are then enumerated minute by minute over 2026..2034 (eight years, two leap
//! days), and overlaps are found by a sweep over those fires.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use proptest::prelude::*;
use stir::cron::Cron;
use stir::schedule::{
    blackout_overrun, dst_sweep, first_overlap, first_overlap_reference, heavy_overlaps,
    heavy_overlaps_reference, may_run_during_fire, may_run_during_fire_reference, DailyWindow,
    Tier, Zone,
};

// ------------------------------------------------------------------ reference

#[derive(Debug, Clone)]
enum Term {
    Star,
    Val(u32, bool),
    Range(u32, u32),
    /// `*/n`, `a/n` or `a-b/n`
    Step(Option<(u32, Option<u32>)>, u32),
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
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn set(&self, lo: u32, hi: u32) -> Vec<bool> {
        let mut s = vec![false; 64];
        for t in &self.0 {
            let (a, b, n) = match t {
                Term::Star => (lo, hi, 1),
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

    fn bare_star(&self) -> bool {
        self.0.len() == 1 && matches!(self.0[0], Term::Star)
    }
}

#[derive(Debug, Clone)]
struct RefCron {
    fields: [Field; 5],
}

struct Sets {
    min: Vec<bool>,
    hour: Vec<bool>,
    dom: Vec<bool>,
    mon: Vec<bool>,
    dow: Vec<bool>,
    or_days: bool,
}

impl RefCron {
    fn text(&self) -> String {
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
        Sets {
            min: self.fields[0].set(0, 59),
            hour: self.fields[1].set(0, 23),
            dom: self.fields[2].set(1, 31),
            mon: self.fields[3].set(1, 12),
            dow,
            or_days: !self.fields[2].bare_star() && !self.fields[4].bare_star(),
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
        let a = self.dom[d.day() as usize];
        let b = self.dow[d.weekday().num_days_from_sunday() as usize];
        if self.or_days {
            a || b
        } else {
            a && b
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
    let s = c.sets();
    let mut out = Vec::new();
    let mut t = start();
    let end = horizon_end();
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

fn term(lo: u32, hi: u32, max_step: u32) -> impl Strategy<Value = Term> {
    prop_oneof![
        3 => (lo..=hi, any::<bool>()).prop_map(|(v, n)| Term::Val(v, n)),
        1 => (lo..=hi, lo..=hi).prop_map(|(a, b)| Term::Range(a.min(b), a.max(b))),
        1 => (2..=max_step).prop_map(|n| Term::Step(None, n)),
        1 => (lo..=hi, 2..=max_step).prop_map(|(a, n)| Term::Step(Some((a, None)), n)),
        1 => (lo..=hi, lo..=hi, 2..=max_step).prop_map(|(a, b, n)| Term::Step(Some((a.min(b), Some(a.max(b)))), n)),
    ]
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
    let dom = prop_oneof![
        4 => Just(Field(vec![Term::Star])),
        2 => prop::collection::vec(term(1, 31, 10), 1..=2).prop_map(Field),
        1 => prop::collection::vec((27u32..=31).prop_map(|v| Term::Val(v, false)), 1..=2).prop_map(Field),
    ];
    let month = prop_oneof![
        4 => Just(Field(vec![Term::Star])),
        1 => Just(Field(vec![Term::Val(2, true)])),
        2 => prop::collection::vec(term(1, 12, 5), 1..=2).prop_map(Field),
    ];
    (minute, field(0, 23, 8, 1), dom, month, field(0, 7, 3, 4)).prop_map(|(a, b, c, d, e)| {
        RefCron {
            fields: [a, b, c, d, e],
        }
    })
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
    fn cron_parse_never_panics(s in "[0-9a-zA-Z*/,\\- é]{0,24}", t in "([0-9*/,-]{1,6} ){4}[0-9a-z*/,-]{1,6}") {
        for e in [&s, &t] {
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

proptest! {
    #![proptest_config(cases(12))]

    #[test]
    fn no_two_heavy_tiers_accepted_by_check_can_overlap(
        crons in prop::collection::vec((cron_strategy(), timeout(), skip_strategy()), 2..=4),
    ) {
        let tiers: Vec<Tier> = crons.iter().enumerate().map(|(i, (c, d, s))| tier_of(&format!("t{i}"), c, *d, *s)).collect();
        let fires: Vec<Vec<i64>> = crons.iter().map(|(c, _, s)| ref_fires(c, *s)).collect();
        let found = heavy_overlaps(&tiers, &utc());
        for i in 0..tiers.len() {
            for j in i + 1..tiers.len() {
                let expect = ref_first_overlap(&fires[i], tiers[i].timeout_min as i64, &fires[j], tiers[j].timeout_min as i64);
                let got = found.iter().find(|(x, y, _)| (*x, *y) == (i, j)).map(|(_, _, o)| mins(o.instant));
                match (got, expect) {
                    (Some(g), None) => prop_assert!(g >= mins(horizon_end())),
                    (g, e) => prop_assert_eq!(g, e, "{} / {}", crons[i].0.text(), crons[j].0.text()),
                }
            }
        }
        let mut sorted = found.iter().map(|(i, j, _)| (*i, *j)).collect::<Vec<_>>();
        sorted.sort();
        prop_assert_eq!(sorted, found.iter().map(|(i, j, _)| (*i, *j)).collect::<Vec<_>>());
    }
}

/// Zones with DST in both hemispheres, a half-hour DST (Lord Howe), Dublin's negative DST,
/// and one without DST.
const DST_ZONES: [&str; 6] = [
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
    let dom = prop_oneof![
        4 => Just(Field(vec![Term::Star])),
        1 => prop::collection::vec(term(1, 31, 10), 1..=2).prop_map(Field),
    ];
    let month = prop_oneof![
        2 => Just(Field(vec![Term::Star])),
        2 => prop::collection::vec((prop::sample::select(vec![3u32, 4, 10, 11]), any::<bool>()).prop_map(|(v, n)| Term::Val(v, n)), 1..=2).prop_map(Field),
        1 => prop::collection::vec(term(1, 12, 5), 1..=2).prop_map(Field),
    ];
    (minute, hour, dom, month, field(0, 7, 3, 4)).prop_map(|(a, b, c, d, e)| RefCron {
        fields: [a, b, c, d, e],
    })
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

/// Hand-picked pairs that meet only across a transition, in several zones: the fast sweep
/// and the reference agree, and the overlap is on a transition day.
#[test]
fn dst_transition_pairs_agree_with_reference() {
    let pairs = [
        ("30 1 * * *", 60, "0 3 * * *", 10),
        ("0 1 * * *", 60, "30 1 * * *", 10),
        ("45 1 * * 0", 30, "15 2 * * 0", 5),
        ("0 0 * 3,4,10,11 *", 150, "0 3 * * *", 1),
        ("30 2 * * *", 1, "0 3 * * *", 1),
        ("0 23 * * *", 240, "0 3 * * *", 20),
        ("0 2 1-7 * 0", 45, "30 2 * * *", 45),
    ];
    for z in DST_ZONES {
        let zone = Zone::parse(z).expect("zone");
        for (ca, da, cb, db) in pairs {
            let (a, b) = (tier("a", ca, da), tier("b", cb, db));
            for (x, y) in [(&a, &b), (&b, &a)] {
                for anchor_only in [false, true] {
                    assert_eq!(
                        dst_sweep(x, y, &zone, anchor_only, false),
                        dst_sweep(x, y, &zone, anchor_only, true),
                        "{} / {} in {z}, {anchor_only}",
                        x.cron.source(),
                        y.cron.source()
                    );
                }
            }
            assert_eq!(
                first_overlap(&a, &b, &zone),
                first_overlap_reference(&a, &b, &zone),
                "{ca} / {cb} in {z}"
            );
            assert_eq!(
                may_run_during_fire(&a, &b, &zone),
                may_run_during_fire_reference(&a, &b, &zone),
                "{ca} / {cb} in {z}"
            );
            assert_eq!(
                may_run_during_fire(&b, &a, &zone),
                may_run_during_fire_reference(&b, &a, &zone),
                "{cb} / {ca} in {z}"
            );
        }
    }
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

#[test]
fn never_overlapping_pair_is_fast() {
    let a = tier("a", "0 1 * * *", 60);
    let b = tier("b", "0 3 * * 1", 60);
    let t = std::time::Instant::now();
    assert_eq!(first_overlap(&a, &b, &utc()), None);
    assert!(t.elapsed() < std::time::Duration::from_millis(500));
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
