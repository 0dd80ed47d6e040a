//! The scheduler over random plans on a simulated clock with random run durations. At every
//! instant: never two heavy runs, never two runs of one schedule, no run past its timeout, no
//! fire inside a skip window.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use proptest::prelude::*;
use stir::cron::Cron;
use stir::schedule::{DailyWindow, Zone};
use stir_runtime::scheduler::Tier;
use support::*;

/// name (`sN|cron`), timeout minutes, heavy, retries, skip window (from, to) in minutes.
type TierSpec = (String, u64, bool, u32, Option<(u16, u16)>);
/// Runs, fires skipped for a running or heavy run, and the tiers.
type Outcome = (Vec<RunSpan>, Vec<(String, DateTime<Utc>)>, Vec<Tier>);

#[derive(Debug, Clone)]
struct Case {
    zone: &'static str,
    start: DateTime<Utc>,
    tiers: Vec<TierSpec>,
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
        prop::collection::vec(tier, 1..=4),
        prop::collection::vec(prop::collection::vec(0u64..=150 * 60, 40), 4),
        prop::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(zone, offset_min, tiers, durations, fail_first)| Case {
            zone,
            start: utc(2026, 1, 1, 0, 0, 0)
                + chrono::Duration::minutes(offset_min)
                + chrono::Duration::seconds(17),
            tiers: tiers
                .into_iter()
                .enumerate()
                .map(|(i, (c, t, h, r, w))| (format!("s{i}|{c}"), t, h, r, w))
                .collect(),
            durations,
            fail_first,
        })
}

struct RunSpan {
    schedule: String,
    heavy: bool,
    fire: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    timeout: Duration,
}

fn simulate(case: &Case) -> Outcome {
    let zone = Zone::parse(case.zone).unwrap();
    let tiers: Vec<Tier> = case
        .tiers
        .iter()
        .map(|(name, timeout, heavy, retries, w)| {
            let cron = name.split_once('|').unwrap().1;
            Tier {
                name: name.clone(),
                cron: Cron::parse(cron).unwrap(),
                skip: w
                    .map(|(from, to)| vec![DailyWindow { from, to }])
                    .unwrap_or_default(),
                timeout: Duration::from_secs(timeout * 60),
                heavy: *heavy,
                retries: *retries,
                enabled: true,
                on_missed: stir::plan::OnMissed::default(),
            }
        })
        .collect();
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
            (
                t.name.clone(),
                case.durations[i]
                    .iter()
                    .map(|s| Duration::from_secs(*s))
                    .collect(),
            )
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
        );
        sim.pass(Duration::from_secs(12 * 3600)).await;
        let sim = sim.stop().await;
        // One run = all its attempts: from the first start to the last end.
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
        let mut skipped = sim.skips("skipped_running");
        skipped.extend(sim.skips("skipped_heavy"));
        (runs.into_values().collect(), skipped, tiers)
    })
}

fn overlaps(a: &RunSpan, b: &RunSpan) -> bool {
    a.start < b.end && b.start < a.end
}

fn in_skip(zone: &Zone, tier: &Tier, fire: DateTime<Utc>) -> bool {
    let local = zone.to_local(fire);
    let minute = (local.hour() * 60 + local.minute()) as u16;
    tier.skip.iter().any(|w| w.contains(minute))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn scheduler_never_overlaps_heavy_or_same_schedule_runs_never_passes_timeouts_never_fires_in_skip_windows(case in case_strategy()) {
        let zone = Zone::parse(case.zone).unwrap();
        let (runs, skipped, tiers) = simulate(&case);
        for (i, a) in runs.iter().enumerate() {
            // no run past its timeout
            let deadline = a.fire + chrono::Duration::from_std(a.timeout).unwrap();
            prop_assert!(a.end <= deadline, "run of {} fired {} ended {} after its deadline {}", a.schedule, a.fire, a.end, deadline);
            prop_assert!(a.start >= a.fire);
            // no fire inside a skip window
            let tier = tiers.iter().find(|t| t.name == a.schedule).unwrap();
            prop_assert!(!in_skip(&zone, tier, a.fire), "{} fired at {} inside its skip window", a.schedule, a.fire);
            for b in &runs[i + 1..] {
                if a.schedule == b.schedule {
                    prop_assert!(!overlaps(a, b), "two runs of {}: fired {} and {}", a.schedule, a.fire, b.fire);
                }
                if a.heavy && b.heavy {
                    prop_assert!(!overlaps(a, b), "two heavy runs: {} fired {} and {} fired {}", a.schedule, a.fire, b.schedule, b.fire);
                }
            }
        }
        for (name, fire) in &skipped {
            let tier = tiers.iter().find(|t| &t.name == name).unwrap();
            prop_assert!(!in_skip(&zone, tier, *fire), "{name} considered a fire at {fire} inside its skip window");
        }
    }
}
