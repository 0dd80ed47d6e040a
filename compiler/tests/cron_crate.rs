//! stir's cron against the `cron` crate, an implementation that shares no code with it, on
//! the expressions where the two dialects agree: at most one day field restricted (the crate
//! ANDs day-of-month and day-of-week where Airflow ORs them), no Airflow extensions (`L`,
//! `#`, presets), in UTC. The crate's fields start with seconds, and its weekdays are written
//! by name here, since its numbers start at Sunday = 1.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use stir::cron::Cron;
use stir::schedule::Zone;

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A field: `*`, `*/k`, a value, a range, or a list of values, within `lo..=hi`.
fn field(lo: u32, hi: u32) -> impl Strategy<Value = Vec<u32>> {
    // The set of values it stands for; empty = `*`.
    prop_oneof![
        Just(Vec::new()),
        (lo..=hi).prop_map(|v| vec![v]),
        proptest::collection::btree_set(lo..=hi, 1..4).prop_map(|s| s.into_iter().collect()),
        (2u32..=((hi - lo) / 2).max(2)).prop_map(move |k| (lo..=hi).step_by(k as usize).collect()),
    ]
}

fn text(values: &[u32], name: impl Fn(u32) -> String) -> String {
    if values.is_empty() {
        "*".into()
    } else {
        values
            .iter()
            .map(|v| name(*v))
            .collect::<Vec<_>>()
            .join(",")
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn fires_agree_with_the_cron_crate(
        minute in field(0, 59),
        hour in field(0, 23),
        dom in field(1, 28),
        month in field(1, 12),
        dow in field(0, 6),
        dom_side in any::<bool>(),
        start in 0i64..(4 * 365 * 24 * 60),
    ) {
        // At most one day field restricted: where AND and OR agree.
        let (dom, dow) = if dom_side { (dom, Vec::new()) } else { (Vec::new(), dow) };
        let n = |v: u32| v.to_string();
        let ours = format!("{} {} {} {} {}", text(&minute, n), text(&hour, n), text(&dom, n), text(&month, n), text(&dow, n));
        let theirs = format!(
            "0 {} {} {} {} {}",
            text(&minute, n),
            text(&hour, n),
            text(&dom, n),
            text(&month, n),
            text(&dow, |d| DAYS[d as usize].to_string())
        );
        let cron = Cron::parse(&ours).unwrap();
        let reference = cron::Schedule::from_str(&theirs).unwrap();
        let zone = Zone::parse("UTC").unwrap();
        let from: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
            + chrono::TimeDelta::minutes(start);
        let mut at = from;
        let want: Vec<DateTime<Utc>> = reference.after(&from).take(20).collect();
        for (i, w) in want.iter().enumerate() {
            let got = zone.next_fire_utc(&cron, &[], at);
            prop_assert_eq!(got, Some(*w), "fire {} of `{}` after {}", i, ours, from);
            at = *w;
        }
    }
}
