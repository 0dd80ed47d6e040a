//! The scheduler over random plans on a simulated clock with random run durations (each up to
//! a little past its schedule's timeout, all along the run). Every fire the cron gives (under
//! the documented DST rule, outside the skip windows) happens exactly once: it runs, or it is
//! skipped because its schedule or another heavy one is running then; nothing else fires. At
//! every instant: never two heavy runs, never two runs of one schedule, no run past its
//! timeout. A panic anywhere in the scheduler fails the case. Most windows in a zone with
//! daylight saving straddle one of its transitions.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use proptest::prelude::*;
use stir::cron::Cron;
use stir::schedule::{DailyWindow, Zone};
use stir_runtime::scheduler::Tier;
use support::*;

/// name (`sN|cron`), timeout minutes, heavy, retries, skip window (from, to) in minutes.
type TierSpec = (String, u64, bool, u32, Option<(u16, u16)>);

/// How long the simulation runs. (A fire in a zone with DST costs the shared fire computation
/// a walk over the last 26 hours of wall fires, so a dense cron there is what makes a case
/// slow: eight hours keep the property within seconds.)
const SPAN: chrono::TimeDelta = chrono::TimeDelta::hours(8);

#[derive(Debug, Clone)]
struct Case {
    zone: &'static str,
    start: DateTime<Utc>,
    /// A DST transition of the zone inside the window, when the case was made to straddle one.
    transition: Option<DateTime<Utc>>,
    tiers: Vec<TierSpec>,
    /// Per tier: attempt durations in thousandths of its timeout, used in turn for every
    /// attempt (up to 1.1 timeouts: some runs are killed at their deadline).
    durations: Vec<Vec<u64>>,
    fail_first: Vec<bool>,
}

fn cron_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![1u32, 2, 3, 5, 7, 10, 15, 20, 30])
            .prop_map(|k| format!("*/{k} * * * *")),
        (0u32..60).prop_map(|m| format!("{m} * * * *")),
        (0u32..60, prop::sample::select(vec![1u32, 2, 3, 4, 6]))
            .prop_map(|(m, h)| format!("{m} */{h} * * *")),
        (0u32..60, 0u32..24).prop_map(|(m, h)| format!("{m} {h} * * *")),
        // Airflow's dialect: presets, the last day, the k-th and the last weekday
        prop::sample::select(vec!["@hourly", "@daily", "@midnight"]).prop_map(String::from),
        (0u32..60).prop_map(|m| format!("{m} * L * *")),
        (0u32..60, 0u32..7, 1u32..=5).prop_map(|(m, w, k)| format!("{m} * ? * {w}#{k}")),
        (prop::sample::select(vec![5u32, 10, 30]), 0u32..7)
            .prop_map(|(k, w)| format!("*/{k} * * * L{w}")),
    ]
}

/// The instants of 2026 at which the zone's UTC offset changes (whole hours in these zones),
/// computed once per zone.
fn transitions(name: &'static str) -> Vec<DateTime<Utc>> {
    static CACHE: std::sync::Mutex<BTreeMap<&str, Vec<DateTime<Utc>>>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap();
    let zone = Zone::parse(name).unwrap();
    cache
        .entry(name)
        .or_insert_with(|| scan_transitions(&zone))
        .clone()
}

fn scan_transitions(zone: &Zone) -> Vec<DateTime<Utc>> {
    let offset = |u: DateTime<Utc>| zone.to_local(u) - u.naive_utc();
    let mut out = Vec::new();
    let mut u = utc(2026, 1, 1, 0, 0, 0);
    while u < utc(2027, 1, 1, 0, 0, 0) {
        let next = u + chrono::Duration::hours(1);
        if offset(next) != offset(u) {
            out.push(next);
        }
        u = next;
    }
    out
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let tier = (
        cron_strategy(),
        1u64..=120,
        prop::bool::weighted(0.5),
        0u32..=2,
        prop::option::weighted(
            0.4,
            (0u16..48, 1u16..=8).prop_map(|(f, l)| (f * 30, (f * 30 + l * 30) % 1440)),
        ),
    );
    (
        prop::sample::select(vec![
            "UTC",
            "America/New_York",
            "Asia/Kolkata",
            "Europe/London",
        ]),
        0i64..365 * 24 * 60,
        (
            prop::bool::weighted(0.8),
            any::<prop::sample::Index>(),
            30i64..7 * 60 + 30,
        ),
        prop::collection::vec(tier, 1..=4),
        prop::collection::vec(prop::collection::vec(0u64..=1100, 40), 4),
        prop::collection::vec(any::<bool>(), 4),
    )
        .prop_map(
            |(zone, offset_min, (straddle, which, before_min), tiers, durations, fail_first)| {
                let changes = transitions(zone);
                let transition = (straddle && !changes.is_empty()).then(|| *which.get(&changes));
                let start = match transition {
                    Some(t) => t - chrono::Duration::minutes(before_min),
                    None => utc(2026, 1, 1, 0, 0, 0) + chrono::Duration::minutes(offset_min),
                };
                Case {
                    zone,
                    start: start + chrono::Duration::seconds(17),
                    transition,
                    tiers: tiers
                        .into_iter()
                        .enumerate()
                        .map(|(i, (c, t, h, r, w))| {
                            // Every minute or two only where the fire computation is cheap
                            // (see SPAN).
                            let c = match c.as_str() {
                                "*/1 * * * *" | "*/2 * * * *" if !changes.is_empty() => {
                                    "*/3 * * * *".to_string()
                                }
                                _ => c,
                            };
                            (format!("s{i}|{c}"), t, h, r, w)
                        })
                        .collect(),
                    durations,
                    fail_first,
                }
            },
        )
}

/// One run = all its attempts: from its fire to the end of its last attempt.
#[derive(Debug)]
struct RunSpan {
    schedule: String,
    heavy: bool,
    fire: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    timeout: Duration,
}

struct Outcome {
    runs: Vec<RunSpan>,
    /// (schedule, fire, status) of the fires skipped for a running or heavy run.
    skipped: Vec<(String, DateTime<Utc>, &'static str)>,
    missed: usize,
    tiers: Vec<Tier>,
    panics: usize,
}

/// Panics seen anywhere in the process: a scheduler task's panic is not always joined (a run
/// is a task of its own), so the hook counts it.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

fn tiers_of(case: &Case) -> Vec<Tier> {
    case.tiers
        .iter()
        .map(|(name, timeout, heavy, retries, w)| Tier {
            name: name.clone(),
            cron: Cron::parse(name.split_once('|').unwrap().1).unwrap(),
            skip: w
                .map(|(from, to)| vec![DailyWindow { from, to }])
                .unwrap_or_default(),
            timeout: Duration::from_secs(timeout * 60),
            heavy: *heavy,
            retries: *retries,
            enabled: true,
            on_missed: stir::plan::OnMissed::default(),
        })
        .collect()
}

fn simulate(case: &Case) -> Outcome {
    count_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let zone = Zone::parse(case.zone).unwrap();
    let tiers = tiers_of(case);
    let behaviours: Vec<(String, Behaviour)> = tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let fail = if case.fail_first[i] { vec![1] } else { vec![] };
            (
                t.name.clone(),
                Behaviour {
                    durations: vec![Duration::from_secs(1)],
                    fail_attempts: fail,
                },
            )
        })
        .collect();
    let random: BTreeMap<String, Vec<Duration>> = tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let durations = case.durations[i]
                .iter()
                .map(|permille| t.timeout * *permille as u32 / 1000)
                .collect();
            (t.name.clone(), durations)
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let refs: Vec<(&str, Behaviour)> = behaviours
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect();
        let sim = Sim::start_with(
            case.start,
            zone,
            tiers.clone(),
            &refs,
            Duration::ZERO,
            Duration::from_secs(45),
            random,
            None,
        );
        sim.pass(SPAN.to_std().unwrap()).await;
        let sim = sim.stop().await;
        let mut runs: BTreeMap<(String, DateTime<Utc>), RunSpan> = BTreeMap::new();
        for s in sim.spans() {
            let t = tiers.iter().find(|t| t.name == s.schedule).unwrap();
            let end = s.end.expect("every attempt ended at shutdown");
            let r = runs.entry((s.schedule.clone(), s.fire)).or_insert(RunSpan {
                schedule: s.schedule.clone(),
                heavy: t.heavy,
                fire: s.fire,
                start: s.start,
                end,
                timeout: t.timeout,
            });
            r.start = r.start.min(s.start);
            r.end = r.end.max(end);
        }
        let mut skipped = Vec::new();
        for status in ["skipped_running", "skipped_heavy"] {
            skipped.extend(sim.skips(status).into_iter().map(|(n, f)| (n, f, status)));
        }
        Outcome {
            runs: runs.into_values().collect(),
            skipped,
            missed: sim.skips("missed").len(),
            tiers: tiers.clone(),
            panics: PANICS.load(Ordering::SeqCst) - panics_before,
        }
    })
}

fn minute_of_day(t: NaiveDateTime) -> u16 {
    (t.hour() * 60 + t.minute()) as u16
}

/// The fires of `tier` strictly inside (start, end), straight from the cron and the documented
/// rules, without the scheduler's or the analysis' fire computation: every local wall minute
/// the cron matches outside the skip windows, at the first instant after a spring-forward gap,
/// once (at its first occurrence) in a fall-back fold.
fn expected_fires(
    zone: &Zone,
    tier: &Tier,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> BTreeSet<DateTime<Utc>> {
    let mut out = BTreeSet::new();
    let mut wall = zone.to_local(start).with_second(0).unwrap() - chrono::Duration::hours(3);
    let last = zone.to_local(end) + chrono::Duration::hours(3);
    while wall <= last {
        if tier.cron.matches(wall) && !tier.skip.iter().any(|w| w.contains(minute_of_day(wall))) {
            let at = zone.to_utc(wall);
            if start < at && at < end {
                out.insert(at);
            }
        }
        wall += chrono::Duration::minutes(1);
    }
    out
}

fn overlaps(a: &RunSpan, b: &RunSpan) -> bool {
    a.start < b.end && b.start < a.end
}

/// Whether `r` was active at `t` (its fire to the end of its last attempt, both included: the
/// scheduler's claim lasts that long).
fn active_at(r: &RunSpan, t: DateTime<Utc>) -> bool {
    r.fire <= t && t <= r.end
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn scheduler_runs_every_fire_once_never_overlaps_heavy_or_same_schedule_runs_never_passes_timeouts(case in case_strategy()) {
        let zone = Zone::parse(case.zone).unwrap();
        let end = case.start + SPAN;
        if let Some(t) = case.transition {
            let offset = |u: DateTime<Utc>| zone.to_local(u) - u.naive_utc();
            prop_assert!(case.start < t && t < end);
            prop_assert_ne!(offset(case.start), offset(end), "the window straddles a transition");
        }
        let out = simulate(&case);
        prop_assert_eq!(out.panics, 0, "the scheduler panicked");
        prop_assert_eq!(out.missed, 0, "nothing is late on a simulated clock");
        for tier in &out.tiers {
            let want = expected_fires(&zone, tier, case.start, end);
            let ran: Vec<DateTime<Utc>> = out.runs.iter().filter(|r| r.schedule == tier.name).map(|r| r.fire).collect();
            let skipped: Vec<DateTime<Utc>> = out.skipped.iter().filter(|s| s.0 == tier.name).map(|s| s.1).collect();
            let mut seen: Vec<DateTime<Utc>> = ran.iter().chain(&skipped).copied().collect();
            seen.sort();
            let want_list: Vec<DateTime<Utc>> = want.into_iter().collect();
            prop_assert_eq!(&seen, &want_list, "{}: the fires that ran or were skipped are the cron's, each once", tier.name);
        }
        for (name, fire, status) in &out.skipped {
            let tier = out.tiers.iter().find(|t| &t.name == name).unwrap();
            let busy = out.runs.iter().any(|r| {
                active_at(r, *fire)
                    && match *status {
                        "skipped_running" => r.schedule == *name,
                        _ => r.heavy && tier.heavy && r.schedule != *name,
                    }
            });
            prop_assert!(busy, "{} {} at {} with no run to make way for", name, status, fire);
        }
        for (i, a) in out.runs.iter().enumerate() {
            let deadline = a.fire + chrono::Duration::from_std(a.timeout).unwrap();
            prop_assert!(a.end <= deadline, "run of {} fired {} ended {} after its deadline {}", a.schedule, a.fire, a.end, deadline);
            prop_assert!(a.fire <= a.start && a.start - a.fire <= chrono::Duration::seconds(1), "{} fired {} started {}", a.schedule, a.fire, a.start);
            for b in &out.runs[i + 1..] {
                if a.schedule == b.schedule {
                    prop_assert!(!overlaps(a, b), "two runs of {}: fired {} and {}", a.schedule, a.fire, b.fire);
                }
                if a.heavy && b.heavy {
                    prop_assert!(!overlaps(a, b), "two heavy runs: {} fired {} and {} fired {}", a.schedule, a.fire, b.schedule, b.fire);
                }
            }
        }
    }
}
