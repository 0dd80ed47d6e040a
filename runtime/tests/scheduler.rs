//! Scheduler semantics on tokio's paused clock, with a fake step executor.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use stir::schedule::Zone;
use stir_runtime::alert::{Alert, AlertKind};
use support::*;

fn utc_zone() -> Zone {
    Zone::parse("UTC").unwrap()
}

/// The runs the scheduler started, as (schedule, fire).
fn fired(sim: &Sim) -> Vec<(String, DateTime<Utc>)> {
    sim.spans()
        .iter()
        .map(|s| (s.schedule.clone(), s.fire))
        .collect()
}

fn alerts_of(sim: &Sim, kind: AlertKind) -> Vec<Alert> {
    sim.alerts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.kind == kind)
        .cloned()
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_fire_finding_its_schedule_running_is_skipped_not_queued() {
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 0, 30),
        utc_zone(),
        vec![tier("every_minute", "* * * * *", 10)],
        &[("every_minute", Behaviour::lasting(Duration::from_secs(150)))],
        mins(1),
    );
    sim.pass(Duration::from_secs(6 * 60)).await; // until 00:06:30
    let sim = sim.stop().await;
    let starts: Vec<_> = sim.spans().iter().map(|s| s.fire).collect();
    // 00:01 runs until 00:03:30; 00:02 and 00:03 are skipped; 00:04 runs until 00:06:30
    assert_eq!(
        starts,
        vec![utc(2026, 1, 1, 0, 1, 0), utc(2026, 1, 1, 0, 4, 0)]
    );
    let skipped: Vec<_> = sim
        .skips("skipped_running")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        skipped,
        vec![
            utc(2026, 1, 1, 0, 2, 0),
            utc(2026, 1, 1, 0, 3, 0),
            utc(2026, 1, 1, 0, 5, 0),
            utc(2026, 1, 1, 0, 6, 0)
        ]
    );
    // Each skipped fire is said once, naming the fire: a schedule that keeps overrunning its
    // interval is not silently running at half its rate.
    let alerted: Vec<_> = alerts_of(&sim, AlertKind::SkippedRunning)
        .into_iter()
        .map(|a| (a.fire, a.error.unwrap_or_default()))
        .collect();
    let why = "the previous run is still active".to_string();
    assert_eq!(
        alerted,
        skipped
            .iter()
            .map(|&t| (t, why.clone()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn no_catchup_the_first_fire_is_strictly_after_start() {
    // started at 00:07:30: the 00:00 fire was missed and is never run
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 7, 30),
        utc_zone(),
        vec![tier("hourly", "0 * * * *", 30)],
        &[],
        mins(1),
    );
    sim.pass(mins(50)).await;
    assert!(sim.spans().is_empty(), "{:?}", sim.spans());
    sim.pass(mins(5)).await; // 01:02:30
    let sim = sim.stop().await;
    let fires: Vec<_> = sim.spans().iter().map(|s| s.fire).collect();
    assert_eq!(fires, vec![utc(2026, 1, 1, 1, 0, 0)]);
}

#[tokio::test(start_paused = true)]
async fn no_catchup_when_started_exactly_on_a_fire() {
    let sim = Sim::start(
        utc(2026, 1, 1, 1, 0, 0),
        utc_zone(),
        vec![tier("hourly", "0 * * * *", 30)],
        &[],
        mins(1),
    );
    sim.pass(mins(30)).await;
    let sim = sim.stop().await;
    assert!(sim.spans().is_empty());
}

#[tokio::test(start_paused = true)]
async fn fires_inside_a_skip_blackout_never_happen_and_the_first_is_recorded() {
    let mut t = tier("half_hourly", "*/30 * * * *", 20);
    t.skip = vec![window("01:00", "02:00"), window("03:00", "04:00")];
    let sim = Sim::start(utc(2026, 1, 1, 0, 10, 0), utc_zone(), vec![t], &[], mins(1));
    sim.pass(mins(261)).await; // to 04:31
    let sim = sim.stop().await;
    let fires: Vec<_> = sim.spans().iter().map(|s| s.fire).collect();
    assert_eq!(
        fires,
        vec![
            utc(2026, 1, 1, 0, 30, 0),
            utc(2026, 1, 1, 2, 0, 0),
            utc(2026, 1, 1, 2, 30, 0),
            utc(2026, 1, 1, 4, 0, 0),
            utc(2026, 1, 1, 4, 30, 0)
        ]
    );
    let skipped: Vec<_> = sim
        .skips("skipped_blackout")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    // 01:00, 01:30, 03:00 and 03:30 are skipped; one history row per blackout, the second
    // too, though it comes within a day of the first.
    assert_eq!(
        skipped,
        vec![utc(2026, 1, 1, 1, 0, 0), utc(2026, 1, 1, 3, 0, 0)]
    );
}

/// A schedule whose every fire is in a blackout still shows in the history once a day.
#[tokio::test(start_paused = true)]
async fn a_schedule_always_in_blackout_is_recorded_daily() {
    let mut t = tier("nightly", "0 20 * * *", 20);
    t.skip = vec![window("19:00", "22:00")];
    let sim = Sim::start(utc(2026, 1, 1, 0, 0, 0), utc_zone(), vec![t], &[], mins(1));
    sim.pass(mins(3 * 24 * 60)).await;
    let sim = sim.stop().await;
    assert!(sim.spans().is_empty());
    let skipped: Vec<_> = sim
        .skips("skipped_blackout")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        skipped,
        vec![
            utc(2026, 1, 1, 20, 0, 0),
            utc(2026, 1, 2, 20, 0, 0),
            utc(2026, 1, 3, 20, 0, 0)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn blackouts_are_read_in_the_project_timezone() {
    // 19:00-22:00 in Kolkata (UTC+05:30) is 13:30-16:30 UTC
    let mut t = tier("hourly", "30 * * * *", 20);
    t.skip = vec![window("19:00", "22:00")];
    let sim = Sim::start(
        utc(2026, 1, 1, 12, 0, 0),
        Zone::parse("Asia/Kolkata").unwrap(),
        vec![t],
        &[],
        mins(1),
    );
    sim.pass(mins(5 * 60 + 50)).await; // to 17:50 UTC
    let sim = sim.stop().await;
    let fires: Vec<_> = sim.spans().iter().map(|s| s.fire).collect();
    // local 18:30 (13:00Z) runs, 19:30..21:30 local are skipped, 22:30 local (17:00Z) runs
    assert_eq!(
        fires,
        vec![utc(2026, 1, 1, 13, 0, 0), utc(2026, 1, 1, 17, 0, 0)]
    );
    assert_eq!(
        sim.skips("skipped_blackout"),
        vec![("hourly".to_string(), utc(2026, 1, 1, 14, 0, 0))],
        "the first of the three skipped fires (19:30 local)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_heavy_fire_finding_another_heavy_run_is_skipped_and_alerted() {
    let mut a = tier("heavy_a", "0 * * * *", 120);
    a.heavy = true;
    let mut b = tier("heavy_b", "30 * * * *", 60);
    b.heavy = true;
    let light = tier("light", "30 * * * *", 10); // not heavy: runs alongside
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![a, b, light],
        &[
            ("heavy_a", Behaviour::lasting(mins(45))),
            ("heavy_b", Behaviour::lasting(mins(5))),
        ],
        mins(1),
    );
    sim.pass(mins(62)).await; // to 02:01
    let sim = sim.stop().await;
    let runs = fired(&sim);
    assert_eq!(
        runs,
        vec![
            ("heavy_a".to_string(), utc(2026, 1, 1, 1, 0, 0)),
            ("light".to_string(), utc(2026, 1, 1, 1, 30, 0)),
            ("heavy_a".to_string(), utc(2026, 1, 1, 2, 0, 0)),
        ]
    );
    assert_eq!(
        sim.skips("skipped_heavy"),
        vec![("heavy_b".to_string(), utc(2026, 1, 1, 1, 30, 0))]
    );
    // (the 02:00 run is cancelled by the test's shutdown: one more alert, of another kind)
    let alerts = alerts_of(&sim, AlertKind::SkippedHeavy);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].text().contains("heavy_b") && alerts[0].text().contains("heavy_a"),
        "{}",
        alerts[0].text()
    );
}

/// A `--once` of a schedule (seen in the history) keeps the leader from firing that schedule
/// beside it: the fire is skipped as running, without an alert; later fires run.
#[tokio::test(start_paused = true)]
async fn a_fire_is_skipped_while_a_manual_run_of_its_schedule_is_active() {
    let light = tier("light", "*/30 * * * *", 10);
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![light],
        &[("light", Behaviour::lasting(mins(5)))],
        mins(1),
    );
    sim.running_elsewhere("light", "light-manual");
    sim.pass(mins(2)).await; // 01:01
    sim.recorder.elsewhere.lock().unwrap().clear();
    sim.pass(mins(30)).await; // 01:31
    let sim = sim.stop().await;
    assert_eq!(
        fired(&sim),
        vec![("light".to_string(), utc(2026, 1, 1, 1, 30, 0))]
    );
    assert_eq!(
        sim.skips("skipped_running"),
        vec![("light".to_string(), utc(2026, 1, 1, 1, 0, 0))]
    );
    assert!(alerts_of(&sim, AlertKind::SkippedHeavy).is_empty());
    // The manual run holding it is named in the alert.
    let held = alerts_of(&sim, AlertKind::SkippedRunning);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].fire, utc(2026, 1, 1, 1, 0, 0));
    assert!(
        held[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("(run `light-manual`)")),
        "{held:?}"
    );
}

/// A heavy run of another process that started while a heavy run waited to retry: the retry
/// does not start beside it; the run ends failed and the alert says why.
#[tokio::test(start_paused = true)]
async fn a_heavy_retry_does_not_start_beside_a_manual_heavy_run() {
    let mut a = tier("heavy_a", "0 * * * *", 30);
    a.heavy = true;
    a.retries = 1;
    let mut b = tier("heavy_b", "0 0 1 1 *", 60);
    b.heavy = true;
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![a, b],
        &[(
            "heavy_a",
            Behaviour {
                durations: vec![mins(5)],
                fail_attempts: vec![1],
            },
        )],
        mins(2),
    );
    sim.pass(mins(4)).await; // 01:03, attempt 1 running until 01:05, retry at 01:07
    sim.running_elsewhere("heavy_b", "heavy_b-manual");
    sim.pass(mins(10)).await; // 01:13
    let sim = sim.stop().await;
    let attempts: Vec<u32> = sim.spans().iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, vec![1], "the retry never started");
    let failures = alerts_of(&sim, AlertKind::Failure);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let text = failures[0].text();
    assert!(
        text.contains("fake failure")
            && text.contains("retry not started")
            && text.contains("heavy_b-manual"),
        "{text}"
    );
}

/// A heavy run of another process (a `--once` or `--bootstrap`, seen in the history) blocks a
/// heavy fire just as one of this runtime does; light schedules run.
#[tokio::test(start_paused = true)]
async fn a_heavy_fire_is_skipped_while_a_manual_heavy_run_is_in_the_history() {
    let mut a = tier("heavy_a", "0 * * * *", 30);
    a.heavy = true;
    let mut b = tier("heavy_b", "0 0 1 1 *", 60);
    b.heavy = true;
    let light = tier("light", "30 * * * *", 10);
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![a, b, light],
        &[("heavy_a", Behaviour::lasting(mins(5)))],
        mins(1),
    );
    sim.running_elsewhere("heavy_b", "heavy_b-manual");
    sim.pass(mins(32)).await; // to 01:31
    sim.recorder.elsewhere.lock().unwrap().clear();
    sim.pass(mins(40)).await; // to 02:11
    let sim = sim.stop().await;
    let runs = fired(&sim);
    assert_eq!(
        runs,
        vec![
            ("light".to_string(), utc(2026, 1, 1, 1, 30, 0)),
            ("heavy_a".to_string(), utc(2026, 1, 1, 2, 0, 0)),
        ]
    );
    assert_eq!(
        sim.skips("skipped_heavy"),
        vec![("heavy_a".to_string(), utc(2026, 1, 1, 1, 0, 0))]
    );
    let alerts = alerts_of(&sim, AlertKind::SkippedHeavy);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].text().contains("heavy_b-manual"),
        "{}",
        alerts[0].text()
    );
}

/// A light schedule running in another process (a manual run of it, say) does not hold a
/// heavy fire back: only heavy runs take the heavy slot.
#[tokio::test(start_paused = true)]
async fn a_heavy_fire_is_not_held_back_by_a_light_run_elsewhere() {
    let mut a = tier("heavy_a", "0 * * * *", 30);
    a.heavy = true;
    let light = tier("light", "0 0 1 1 *", 10);
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![a, light],
        &[],
        mins(1),
    );
    sim.running_elsewhere("light", "light-manual");
    sim.pass(mins(2)).await; // to 01:01
    let sim = sim.stop().await;
    assert_eq!(
        fired(&sim),
        vec![("heavy_a".to_string(), utc(2026, 1, 1, 1, 0, 0))]
    );
    assert!(sim.skips("skipped_heavy").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_run_is_cancelled_at_fire_plus_timeout() {
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 0, 30),
        utc_zone(),
        vec![tier("slow", "5 * * * *", 10)],
        &[("slow", Behaviour::lasting(mins(25)))],
        mins(1),
    );
    sim.pass(mins(30)).await;
    let sim = sim.stop().await;
    let spans = sim.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(
        spans[0].end,
        Some(utc(2026, 1, 1, 0, 15, 0)),
        "cancelled exactly at 00:05 + 10m"
    );
    assert_eq!(
        sim.fake.aborted.lock().unwrap().len(),
        1,
        "queries killed and cleanup ran"
    );
    assert_eq!(
        sim.finished(),
        vec![(spans[0].run_id.clone(), "timeout".to_string())]
    );
    let alerts = sim.alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_and_succeed() {
    let mut t = tier("flaky", "0 * * * *", 30);
    t.retries = 3;
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![t],
        &[(
            "flaky",
            Behaviour {
                durations: vec![Duration::from_secs(10)],
                fail_attempts: vec![1, 2],
            },
        )],
        mins(1),
    );
    sim.pass(mins(10)).await;
    let sim = sim.stop().await;
    let starts: Vec<_> = sim.spans().iter().map(|s| (s.attempt, s.start)).collect();
    // attempt 1 at 01:00:00 fails at :10, backoff 30s -> 01:00:40, fails at :50, backoff 60s -> 01:01:50
    assert_eq!(
        starts,
        vec![
            (1, utc(2026, 1, 1, 1, 0, 0)),
            (2, utc(2026, 1, 1, 1, 0, 40)),
            (3, utc(2026, 1, 1, 1, 1, 50))
        ]
    );
    let statuses: Vec<_> = sim.finished().into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, vec!["failed", "failed", "ok"]);
    assert!(
        sim.alerts.lock().unwrap().is_empty(),
        "a run that succeeded on retry does not alert"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_never_pass_the_runs_window() {
    let mut t = tier("flaky", "0 * * * *", 10);
    t.retries = 5;
    let sim = Sim::start_with(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![t],
        &[(
            "flaky",
            Behaviour {
                durations: vec![mins(1)],
                fail_attempts: vec![1, 2, 3, 4, 5, 6],
            },
        )],
        mins(1),
        mins(3),
        Default::default(),
        None,
    );
    sim.pass(mins(30)).await;
    let sim = sim.stop().await;
    let spans = sim.spans();
    // 01:00 fail 01:01, +3m -> 01:04 fail 01:05, +6m would be 01:11 > 01:10: give up
    let starts: Vec<_> = spans.iter().map(|s| s.start).collect();
    assert_eq!(
        starts,
        vec![utc(2026, 1, 1, 1, 0, 0), utc(2026, 1, 1, 1, 4, 0)]
    );
    for s in &spans {
        assert!(s.end.unwrap() <= utc(2026, 1, 1, 1, 10, 0));
    }
    let alerts = sim.alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::Failure);
    assert_eq!(alerts[0].step.as_deref(), Some("fake_step"));
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_running_work_finish_within_grace() {
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![tier("job", "0 * * * *", 30)],
        &[("job", Behaviour::lasting(mins(5)))],
        mins(10),
    );
    sim.pass(mins(2)).await; // 01:01, the run is halfway
    let sim = sim.stop().await; // waits for the run
    let spans = sim.spans();
    assert_eq!(spans.len(), 1);
    assert!(spans[0].ok);
    assert_eq!(spans[0].end, Some(utc(2026, 1, 1, 1, 5, 0)));
    assert_eq!(sim.finished()[0].1, "ok");
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_work_still_running_after_grace() {
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 59, 0),
        utc_zone(),
        vec![tier("job", "0 * * * *", 30)],
        &[("job", Behaviour::lasting(mins(20)))],
        mins(2),
    );
    sim.pass(mins(2)).await; // 01:01
    let sim = sim.stop().await;
    let spans = sim.spans();
    assert_eq!(spans.len(), 1);
    assert!(!spans[0].ok);
    assert_eq!(
        spans[0].end,
        Some(utc(2026, 1, 1, 1, 3, 0)),
        "stopped at 01:01 + 2m grace"
    );
    assert_eq!(sim.finished()[0].1, "cancelled");
    assert_eq!(sim.fake.aborted.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_firing() {
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 0, 0),
        utc_zone(),
        vec![tier("m", "* * * * *", 1)],
        &[],
        mins(1),
    );
    sim.pass(Duration::from_secs(150)).await;
    let sim = sim.stop().await;
    let fires: Vec<_> = sim.spans().iter().map(|s| s.fire).collect();
    assert_eq!(
        fires,
        vec![utc(2026, 1, 1, 0, 1, 0), utc(2026, 1, 1, 0, 2, 0)]
    );
}

/// While running work drains after the stop (the serve task is still alive, waiting for a
/// long run), no schedule fires or records a skip any more.
#[tokio::test(start_paused = true)]
async fn shutdown_stops_firing_while_work_drains() {
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 0, 0),
        utc_zone(),
        vec![tier("long", "* * * * *", 30), tier("short", "* * * * *", 1)],
        &[("long", Behaviour::lasting(mins(20)))],
        mins(30),
    );
    sim.pass(Duration::from_secs(150)).await; // 00:02:30
    let stopped_at = sim.clock.now();
    sim.stop.cancel();
    sim.pass(mins(5)).await;
    assert!(!sim.task.is_finished(), "the long run is still draining");
    let after: Vec<_> = sim
        .spans()
        .into_iter()
        .map(|s| (s.schedule, s.fire))
        .chain(sim.skips("skipped_running"))
        .filter(|(_, fire)| *fire > stopped_at)
        .collect();
    assert_eq!(after, vec![], "fired after the stop");
    let short = sim.spans().iter().filter(|s| s.schedule == "short").count();
    assert_eq!(short, 2, "short fired at 00:01 and 00:02, before the stop");
    let sim = sim.stop().await;
    assert_eq!(
        sim.finished().len(),
        3,
        "every run ended: {:?}",
        sim.finished()
    );
}

/// A fire due while the leader session stalls waits; once the session answers within
/// [`LATE`](stir_runtime::scheduler::LATE) it runs, a few seconds late, and nothing is lost.
#[tokio::test(start_paused = true)]
async fn a_fire_due_during_a_short_stall_runs_when_the_session_answers() {
    let sim = Sim::start(
        utc(2026, 1, 1, 0, 4, 0),
        utc_zone(),
        vec![tier("five", "*/5 * * * *", 10)],
        &[],
        mins(1),
    );
    sim.pass(Duration::from_secs(50)).await; // 00:04:50
    sim.firing.send(false).unwrap();
    sim.pass(Duration::from_secs(25)).await; // 00:05:15: due, not fired
    assert!(fired(&sim).is_empty(), "no fire while the session stalls");
    sim.firing.send(true).unwrap();
    sim.pass(Duration::from_secs(5)).await;
    let sim = sim.stop().await;
    assert_eq!(
        fired(&sim),
        vec![("five".to_string(), utc(2026, 1, 1, 0, 5, 0))]
    );
    assert!(sim.skips("missed").is_empty());
}

/// A stall longer than LATE misses the fire: recorded `missed` and alerted, never silent.
/// With `on-missed=skip` it does not run; with `run-once` (the default) it runs late, once,
/// keeping its window's deadline (fire + timeout).
#[tokio::test(start_paused = true)]
async fn a_fire_missed_by_a_long_stall_is_recorded_alerted_and_run_once_inside_its_window() {
    for on_missed in [stir::plan::OnMissed::Skip, stir::plan::OnMissed::RunOnce] {
        let mut t = tier("five", "*/5 * * * *", 10);
        t.on_missed = on_missed;
        let sim = Sim::start(
            utc(2026, 1, 1, 0, 4, 0),
            utc_zone(),
            vec![t],
            &[("five", Behaviour::lasting(mins(30)))],
            mins(1),
        );
        sim.firing.send(false).unwrap();
        sim.pass(mins(7)).await; // 00:11: the 00:05 and 00:10 fires are due
        sim.firing.send(true).unwrap();
        sim.pass(mins(9)).await; // 00:20:01
        let alerts = alerts_of(&sim, AlertKind::Missed);
        let sim = sim.stop().await;
        let missed: Vec<_> = sim.skips("missed").into_iter().map(|(_, t)| t).collect();
        match on_missed {
            stir::plan::OnMissed::Skip => {
                assert_eq!(
                    fired(&sim)[0].1,
                    utc(2026, 1, 1, 0, 15, 0),
                    "the next fire runs"
                );
                assert_eq!(
                    missed,
                    vec![utc(2026, 1, 1, 0, 10, 0), utc(2026, 1, 1, 0, 5, 0)]
                );
            }
            stir::plan::OnMissed::RunOnce => {
                assert_eq!(
                    fired(&sim)[0],
                    ("five".to_string(), utc(2026, 1, 1, 0, 10, 0)),
                    "only the newest missed fire runs"
                );
                assert_eq!(sim.spans()[0].start, utc(2026, 1, 1, 0, 11, 0), "late");
                assert_eq!(missed, vec![utc(2026, 1, 1, 0, 5, 0)]);
                // Cancelled at its own window's end (00:20), not 10 minutes after 00:11.
                assert_eq!(sim.spans()[0].end, Some(utc(2026, 1, 1, 0, 20, 0)));
            }
        }
        assert_eq!(alerts.len(), 1, "one alert for the batch: {alerts:?}");
        // Two fires gone are counted in the alert; one is named alone.
        let said = alerts[0].error.clone().unwrap_or_default();
        let counted =
            said.contains("(2 fires from 2026-01-01 00:05:00 UTC to 2026-01-01 00:10:00 UTC)");
        match on_missed {
            stir::plan::OnMissed::Skip => assert!(counted, "{said}"),
            stir::plan::OnMissed::RunOnce => assert!(!said.contains(" fires from "), "{said}"),
        }
        assert!(
            alerts[0].error.as_deref().unwrap_or("").contains("late"),
            "{alerts:?}"
        );
    }
}

/// `t` alone from 00:04, the leader session stalled for `stall`, then a second more: the
/// stopped simulation.
async fn after_a_stall_from_00_04(t: stir_runtime::scheduler::Tier, stall: Duration) -> Sim {
    let sim = Sim::start(utc(2026, 1, 1, 0, 4, 0), utc_zone(), vec![t], &[], mins(1));
    sim.firing.send(false).unwrap();
    sim.pass(stall).await;
    sim.firing.send(true).unwrap();
    sim.pass(Duration::from_secs(1)).await;
    sim.stop().await
}

/// A stall that ends exactly at a fire: the fire due at that instant is accounted for with
/// the rest (here it is the newest, so `run-once` runs it) and the older one is recorded
/// missed; none is dropped.
#[tokio::test(start_paused = true)]
async fn a_stall_ending_exactly_at_a_fire_loses_no_fire() {
    // to 00:10:00: the 00:05 fire is 5 minutes late, 00:10 is due now
    let sim = after_a_stall_from_00_04(tier("five", "*/5 * * * *", 10), mins(6)).await;
    assert_eq!(
        fired(&sim),
        vec![("five".to_string(), utc(2026, 1, 1, 0, 10, 0))]
    );
    assert_eq!(
        sim.skips("missed"),
        vec![("five".to_string(), utc(2026, 1, 1, 0, 5, 0))]
    );
}

/// A fire exactly [`LATE`](stir_runtime::scheduler::LATE) late is not missed: it runs, even
/// with `on-missed=skip`.
#[tokio::test(start_paused = true)]
async fn a_fire_exactly_late_late_still_runs() {
    let mut t = tier("five", "*/5 * * * *", 10);
    t.on_missed = stir::plan::OnMissed::Skip;
    // to 00:06:00: the 00:05 fire is 60 s late
    let sim = after_a_stall_from_00_04(t, mins(2)).await;
    assert_eq!(
        fired(&sim),
        vec![("five".to_string(), utc(2026, 1, 1, 0, 5, 0))]
    );
    assert!(sim.skips("missed").is_empty());
}

/// A stall that ends at the very instant a missed fire's window closes: the fire is not run
/// late (its window is fire + timeout, end excluded), only recorded.
#[tokio::test(start_paused = true)]
async fn a_missed_fire_is_not_run_at_the_instant_its_window_closes() {
    // to 01:03:00 exactly: the 01:00 fire's 3-minute window closes now
    let sim = after_a_stall_from_00_04(tier("hourly", "0 * * * *", 3), mins(59)).await;
    assert!(fired(&sim).is_empty(), "{:?}", fired(&sim));
    assert_eq!(
        sim.skips("missed"),
        vec![("hourly".to_string(), utc(2026, 1, 1, 1, 0, 0))]
    );
}

/// A fire exactly [`LATE`](stir_runtime::scheduler::LATE) late on a one-minute cron runs, and
/// the fire due at that instant is accounted for (beside the run just started it is
/// `skipped_running`): neither is lost without a word.
#[tokio::test(start_paused = true)]
async fn a_fire_exactly_late_late_is_followed_by_the_fire_due_now() {
    // to 00:06:00 (then a second more): 00:05 is 60 s late, 00:06 is due
    let sim = after_a_stall_from_00_04(tier("minutely", "* * * * *", 10), mins(2)).await;
    assert_eq!(
        fired(&sim),
        vec![("minutely".to_string(), utc(2026, 1, 1, 0, 5, 0))]
    );
    assert_eq!(
        sim.skips("skipped_running"),
        vec![("minutely".to_string(), utc(2026, 1, 1, 0, 6, 0))]
    );
    assert!(sim.skips("missed").is_empty());
}

/// A missed fire whose window has closed is not run late, even with `run-once`.
#[tokio::test(start_paused = true)]
async fn a_missed_fire_whose_window_closed_is_only_recorded() {
    // to 01:04: the 01:00 fire's window closed at 01:03
    let sim = after_a_stall_from_00_04(tier("hourly", "0 * * * *", 3), mins(60)).await;
    assert!(fired(&sim).is_empty());
    assert_eq!(
        sim.skips("missed"),
        vec![("hourly".to_string(), utc(2026, 1, 1, 1, 0, 0))]
    );
}

/// Airflow's dialect from manifest to fire: the plan keeps each cron as written, the runtime
/// reads it back and fires, in a DST zone, at the instants Python's zoneinfo gives for the
/// same wall times (a fire in the spring-forward gap at the first instant after it, an
/// ambiguous one at its first occurrence): the last Sunday of March 2028 is the
/// spring-forward day and that of October the fall-back day, Feb 29 2028 is the last day of
/// February, and only March, June and September 2028 have a fifth Friday.
#[tokio::test(start_paused = true)]
async fn airflow_dialect_fires_where_zoneinfo_says_through_a_plan() {
    let dir = std::env::temp_dir().join(format!("stir-dialect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("stir.kdl");
    std::fs::write(
        &manifest,
        r#"project p timezone="Europe/Berlin"
schedule last_sunday cron="30 2 ? * L0" timeout="10m" { sql "select 1"; }
schedule month_end cron="0 23 L * *" timeout="10m" { sql "select 1"; }
schedule fifth_friday cron="0 6 * * fri#5" timeout="10m" { sql "select 1"; }
schedule yearly cron="@YEARLY" timeout="10m" { sql "select 1"; }
"#,
    )
    .unwrap();
    let compiled = stir::compile_path(&manifest).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!compiled.has_errors(), "{:?}", compiled.findings);
    let plan = stir::planner::build(&compiled).unwrap();
    // schedules are sorted by name in the plan
    let crons: Vec<&str> = plan.schedules.iter().map(|s| s.cron.as_str()).collect();
    assert_eq!(
        crons,
        ["0 6 * * fri#5", "30 2 ? * L0", "0 23 L * *", "@YEARLY"]
    );
    let (zone, tiers) = stir_runtime::scheduler::prepare(&plan).unwrap();

    let sim = Sim::start(utc(2028, 1, 1, 0, 0, 0), zone, tiers, &[], mins(1));
    sim.pass(Duration::from_secs(335 * 86_400)).await; // to 2028-12-01
    let sim = sim.stop().await;
    let got: Vec<(String, String)> = fired(&sim)
        .into_iter()
        .map(|(s, t)| (s, t.format("%Y-%m-%d %H:%M").to_string()))
        .collect();
    let expect = "last_sunday 2028-01-30 01:30
month_end 2028-01-31 22:00
last_sunday 2028-02-27 01:30
month_end 2028-02-29 22:00
last_sunday 2028-03-26 01:00
fifth_friday 2028-03-31 04:00
month_end 2028-03-31 21:00
last_sunday 2028-04-30 00:30
month_end 2028-04-30 21:00
last_sunday 2028-05-28 00:30
month_end 2028-05-31 21:00
last_sunday 2028-06-25 00:30
fifth_friday 2028-06-30 04:00
month_end 2028-06-30 21:00
last_sunday 2028-07-30 00:30
month_end 2028-07-31 21:00
last_sunday 2028-08-27 00:30
month_end 2028-08-31 21:00
last_sunday 2028-09-24 00:30
fifth_friday 2028-09-29 04:00
month_end 2028-09-30 21:00
last_sunday 2028-10-29 00:30
month_end 2028-10-31 22:00
last_sunday 2028-11-26 01:30
month_end 2028-11-30 22:00";
    let expect: Vec<(String, String)> = expect
        .lines()
        .map(|l| {
            let (s, t) = l.split_once(' ').unwrap();
            (s.to_string(), t.to_string())
        })
        .collect();
    assert_eq!(got, expect);
}

#[tokio::test(start_paused = true)]
async fn a_fire_loop_that_panics_is_restarted_with_an_alert_and_the_schedule_fires_again() {
    let panicked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook: stir_runtime::scheduler::FireHook = {
        let panicked = panicked.clone();
        std::sync::Arc::new(move |schedule: &str, _fire| {
            if schedule == "hourly" && !panicked.swap(true, std::sync::atomic::Ordering::SeqCst) {
                panic!("injected in the fire loop");
            }
        })
    };
    let sim = Sim::start_with(
        utc(2026, 1, 1, 0, 30, 0),
        utc_zone(),
        vec![
            tier("hourly", "0 * * * *", 30),
            tier("quarter", "*/15 * * * *", 5),
        ],
        &[],
        mins(1),
        Duration::from_secs(30),
        Default::default(),
        Some(hook),
    );
    sim.pass(mins(160)).await; // until 03:10
    let sim = sim.stop().await;
    assert!(panicked.load(std::sync::atomic::Ordering::SeqCst));
    let hourly: Vec<_> = fired(&sim)
        .into_iter()
        .filter(|(s, _)| s == "hourly")
        .map(|(_, t)| t)
        .collect();
    // 01:00 panicked in the loop and did not run; the restarted loop fires 02:00 and 03:00.
    assert_eq!(
        hourly,
        vec![utc(2026, 1, 1, 2, 0, 0), utc(2026, 1, 1, 3, 0, 0)]
    );
    let missed = alerts_of(&sim, AlertKind::Missed);
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0].schedule, "hourly");
    let error = missed[0].error.clone().unwrap_or_default();
    assert!(error.contains("injected in the fire loop"), "{error}");
    // The other schedule never noticed.
    let quarter = fired(&sim).iter().filter(|(s, _)| s == "quarter").count();
    assert_eq!(quarter, 10, "00:45 to 03:00: {:?}", fired(&sim));
}

/// A plan's steps are checked against what it defines before anything runs: the shipped
/// platform's plan (models, syncs, requests) passes, and a step naming a model, sync or
/// request the plan lacks is refused with its kind and name (a plan edited by hand).
#[test]
fn prepare_accepts_every_step_the_plan_defines_and_refuses_one_it_lacks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let compiled = stir::compile_path(&root.join("stir.kdl")).expect("the shipped manifest loads");
    assert!(!compiled.has_errors(), "{:?}", compiled.findings);
    let plan = stir::planner::build(&compiled).expect("plan builds");
    let (_, tiers) = stir_runtime::scheduler::prepare(&plan).expect("the shipped plan prepares");
    assert_eq!(tiers.len(), plan.schedules.len());
    let kinds = |s: &stir::plan::Step| match s {
        stir::plan::Step::Run { .. } => "model",
        stir::plan::Step::Sync { .. } => "sync",
        stir::plan::Step::Request { .. } => "request",
        stir::plan::Step::Sql { .. } => "sql",
    };
    for kind in ["model", "sync", "request"] {
        let mut broken = plan.clone();
        let (si, ti) = broken
            .schedules
            .iter()
            .enumerate()
            .find_map(|(si, s)| {
                s.steps
                    .iter()
                    .position(|t| kinds(t) == kind)
                    .map(|ti| (si, ti))
            })
            .unwrap_or_else(|| panic!("the shipped plan has a {kind} step"));
        let schedule = broken.schedules[si].name.clone();
        match &mut broken.schedules[si].steps[ti] {
            stir::plan::Step::Run { models } => models[0] = "no_such".into(),
            stir::plan::Step::Sync { sync } => *sync = "no_such".into(),
            stir::plan::Step::Request { request } => *request = "no_such".into(),
            stir::plan::Step::Sql { .. } => unreachable!(),
        }
        let err = stir_runtime::scheduler::prepare(&broken)
            .err()
            .unwrap_or_else(|| panic!("a {kind} step naming nothing was accepted"))
            .to_string();
        assert_eq!(
            err,
            format!("schedule `{schedule}` names {kind} `no_such`, which the plan does not define")
        );
    }
}
