//! A fake step executor on tokio's paused clock, for scheduler timing tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use stir::cron::Cron;
use stir::schedule::{DailyWindow, Zone};
use stir_runtime::alert::{Alert, Alerter};
use stir_runtime::clock::Clock;
use stir_runtime::executor::{Engine, RunCtx, RunError, Steps};
use stir_runtime::history::{Event, MemoryRecorder};
use stir_runtime::metrics::Metrics;
use stir_runtime::scheduler::{Scheduler, Tier};
use stir_runtime::step::{BoxFut, StepError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What one attempt of a schedule does: how long it takes and whether it fails.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Duration of attempt k (the last one repeats).
    pub durations: Vec<Duration>,
    /// Attempts (1-based) that fail at their end.
    pub fail_attempts: Vec<u32>,
}

impl Behaviour {
    pub fn lasting(d: Duration) -> Behaviour {
        Behaviour {
            durations: vec![d],
            fail_attempts: vec![],
        }
    }
}

/// One attempt as the fake saw it: wall times on the simulated clock.
#[derive(Clone, Debug)]
pub struct Span {
    pub schedule: String,
    pub run_id: String,
    pub fire: DateTime<Utc>,
    pub attempt: u32,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub ok: bool,
}

#[derive(Clone)]
pub struct Fake {
    pub clock: Clock,
    pub behaviours: BTreeMap<String, Behaviour>,
    pub spans: Arc<Mutex<Vec<Span>>>,
    pub aborted: Arc<Mutex<Vec<String>>>,
    /// Random durations for the property test: schedule -> durations, used in turn for every
    /// attempt.
    pub random: Arc<Mutex<BTreeMap<String, Vec<Duration>>>>,
}

impl Fake {
    pub fn new(
        clock: Clock,
        behaviours: &[(&str, Behaviour)],
        random: BTreeMap<String, Vec<Duration>>,
    ) -> Fake {
        Fake {
            clock,
            behaviours: behaviours
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            spans: Arc::default(),
            aborted: Arc::default(),
            random: Arc::new(Mutex::new(random)),
        }
    }
}

struct EndOnDrop {
    spans: Arc<Mutex<Vec<Span>>>,
    idx: usize,
    clock: Clock,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        let now = self.clock.now();
        if let Some(s) = self.spans.lock().unwrap().get_mut(self.idx) {
            if s.end.is_none() {
                s.end = Some(now);
            }
        }
    }
}

impl Steps for Fake {
    fn attempt<'a>(&'a self, run: &'a RunCtx) -> BoxFut<'a, Result<(), RunError>> {
        Box::pin(async move {
            let b = self
                .behaviours
                .get(&run.schedule)
                .cloned()
                .unwrap_or(Behaviour::lasting(Duration::from_secs(1)));
            let mut d = b.durations[(run.attempt as usize - 1).min(b.durations.len() - 1)];
            if let Some(q) = self.random.lock().unwrap().get_mut(&run.schedule) {
                // Used in turn, over and over: every attempt gets one.
                if let Some(&x) = q.first() {
                    d = x;
                    q.rotate_left(1);
                }
            }
            let idx = {
                let mut s = self.spans.lock().unwrap();
                s.push(Span {
                    schedule: run.schedule.clone(),
                    run_id: run.run_id.clone(),
                    fire: run.fire,
                    attempt: run.attempt,
                    start: self.clock.now(),
                    end: None,
                    ok: false,
                });
                s.len() - 1
            };
            let _end = EndOnDrop {
                spans: self.spans.clone(),
                idx,
                clock: self.clock.clone(),
            };
            tokio::time::sleep(d).await;
            let fail = b.fail_attempts.contains(&run.attempt);
            self.spans.lock().unwrap()[idx].ok = !fail;
            if fail {
                Err(RunError {
                    step: "fake_step".into(),
                    error: StepError::Other("fake failure".into()),
                })
            } else {
                Ok(())
            }
        })
    }

    fn abort<'a>(&'a self, run: &'a RunCtx) -> BoxFut<'a, ()> {
        self.aborted.lock().unwrap().push(run.run_id.clone());
        Box::pin(async {})
    }
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
}

pub fn tier(name: &str, cron: &str, timeout_min: u64) -> Tier {
    Tier {
        name: name.into(),
        cron: Cron::parse(cron).unwrap(),
        skip: vec![],
        timeout: Duration::from_secs(timeout_min * 60),
        heavy: false,
        retries: 0,
        enabled: true,
        on_missed: stir::plan::OnMissed::default(),
    }
}

pub fn window(from: &str, to: &str) -> DailyWindow {
    let m = |s: &str| {
        let (h, mi) = s.split_once(':').unwrap();
        h.parse::<u16>().unwrap() * 60 + mi.parse::<u16>().unwrap()
    };
    DailyWindow {
        from: m(from),
        to: m(to),
    }
}

/// A scheduler on the paused clock, starting at wall time `start`.
pub struct Sim {
    pub fake: Fake,
    pub recorder: MemoryRecorder,
    pub alerts: Arc<Mutex<Vec<Alert>>>,
    /// The scheduler's firing node: cancelled, it stops firing and drains.
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub clock: Clock,
    /// Whether the scheduler may fire (a leader session that answers).
    pub firing: watch::Sender<bool>,
}

impl Sim {
    pub fn start(
        start: DateTime<Utc>,
        zone: Zone,
        tiers: Vec<Tier>,
        behaviours: &[(&str, Behaviour)],
        grace: Duration,
    ) -> Sim {
        Sim::start_with(
            start,
            zone,
            tiers,
            behaviours,
            grace,
            Duration::from_secs(30),
            BTreeMap::new(),
            None,
        )
    }

    /// With `hook`, the scheduler calls it in the fire loop as each fire starts.
    #[allow(clippy::too_many_arguments)]
    pub fn start_with(
        start: DateTime<Utc>,
        zone: Zone,
        tiers: Vec<Tier>,
        behaviours: &[(&str, Behaviour)],
        grace: Duration,
        backoff: Duration,
        random: BTreeMap<String, Vec<Duration>>,
        hook: Option<stir_runtime::scheduler::FireHook>,
    ) -> Sim {
        let clock = Clock::tokio_at(start);
        let fake = Fake::new(clock.clone(), behaviours, random);
        let recorder = MemoryRecorder::default();
        let (alerter, alerts) = Alerter::memory();
        let engine = Arc::new(Engine {
            plan_hash: "test".into(),
            notify: Arc::new(stir_runtime::notify::Notifier::failures_only()),
            steps: Arc::new(fake.clone()),
            recorder: Arc::new(recorder.clone()),
            alerts: alerter,
            metrics: Metrics::new("test"),
            clock: clock.clone(),
            retry_backoff: backoff,
            leader: true,
            runtime: "test-runtime".into(),
            holds: Vec::new(),
        });
        let (firing, may_fire) = watch::channel(true);
        let mut scheduler = Scheduler::new(engine, zone, tiers).with_firing(may_fire);
        if let Some(hook) = hook {
            scheduler = scheduler.with_fire_hook(hook);
        }
        let scheduler = Arc::new(scheduler);
        let stop = CancellationToken::new();
        let task = tokio::spawn(scheduler.serve(stop.clone(), grace));
        Sim {
            fake,
            recorder,
            alerts,
            stop,
            task,
            clock,
            firing,
        }
    }

    /// A run of `schedule` (`run_id`) is active in another process from now on.
    pub fn running_elsewhere(&self, schedule: &str, run_id: &str) {
        self.recorder
            .elsewhere
            .lock()
            .unwrap()
            .push((schedule.into(), run_id.into()));
    }

    pub fn spans(&self) -> Vec<Span> {
        self.fake.spans.lock().unwrap().clone()
    }

    pub fn events(&self) -> Vec<Event> {
        self.recorder.events()
    }

    pub fn skips(&self, status: &str) -> Vec<(String, DateTime<Utc>)> {
        skips_in(self.events(), status)
    }

    pub fn finished(&self) -> Vec<(String, String)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::RunFinished { run_id, status, .. } => Some((run_id, status)),
                _ => None,
            })
            .collect()
    }

    /// Let simulated time pass (tokio auto-advances the paused clock).
    pub async fn pass(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    pub async fn stop(self) -> Sim {
        self.stop.cancel();
        let Sim {
            fake,
            recorder,
            alerts,
            stop,
            task,
            clock,
            firing,
        } = self;
        // A panic in the scheduler fails the test that drove it (not swallowed as a stop).
        if let Err(e) = task.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        Sim {
            fake,
            recorder,
            alerts,
            stop,
            task: tokio::spawn(async {}),
            clock,
            firing,
        }
    }
}

/// The skipped fires of `status` among `events`, as (schedule, fire).
pub fn skips_in(events: Vec<Event>, status: &str) -> Vec<(String, DateTime<Utc>)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Skipped {
                schedule,
                fire,
                status: s,
                ..
            } if s == status => Some((schedule, fire)),
            _ => None,
        })
        .collect()
}

pub fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}
