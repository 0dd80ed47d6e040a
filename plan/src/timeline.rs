//! A picture of the worst-case schedule: one row per tier over a few days, as SVG (for a
//! browser) and as plain text (for a terminal). Output is deterministic: same input, same bytes.

use crate::schedule::{windows, DailyWindow, Tier, Zone};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blackout {
    pub name: String,
    pub window: DailyWindow,
}

/// Minute intervals [s, e) relative to the picture start.
type Spans = Vec<(i64, i64)>;

/// Worst-case windows of a tier, clipped to the picture and merged where they touch or
/// overlap (a `*/5` tier becomes one bar instead of hundreds).
fn merged(t: &Tier, zone: &Zone, from: NaiveDateTime, total: i64) -> Spans {
    let to = from + Duration::minutes(total);
    let mut out: Spans = Vec::new();
    for (f, e) in windows(t, zone, from, to) {
        let s = (f - from).num_minutes().max(0);
        let e = (e - from).num_minutes().min(total);
        if e <= s {
            continue;
        }
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn intersect(a: &Spans, b: &Spans) -> Spans {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if s < e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn union(mut v: Spans) -> Spans {
    v.sort();
    let mut out: Spans = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn blackout_spans(blackouts: &[Blackout], days: u32) -> Spans {
    let mut v = Vec::new();
    for b in blackouts {
        let len = b.window.len();
        if len == 0 {
            continue;
        }
        // start one day early so a window wrapping past midnight shows on day 0
        for d in -1..days as i64 {
            let s = d * 1440 + b.window.from as i64;
            let e = s + len;
            let (s, e) = (s.max(0), e.min(days as i64 * 1440));
            if s < e {
                v.push((s, e));
            }
        }
    }
    union(v)
}

struct Picture {
    rows: Vec<Spans>,
    /// per tier: the parts overlapping another heavy tier
    clash: Vec<Spans>,
    blackout: Spans,
    total: i64,
}

fn picture(
    tiers: &[Tier],
    blackouts: &[Blackout],
    zone: &Zone,
    start: NaiveDate,
    days: u32,
) -> Picture {
    let from = start.and_time(chrono::NaiveTime::MIN);
    let total = days as i64 * 1440;
    let rows: Vec<Spans> = tiers.iter().map(|t| merged(t, zone, from, total)).collect();
    let mut clash: Vec<Spans> = vec![Vec::new(); tiers.len()];
    for i in 0..tiers.len() {
        for j in i + 1..tiers.len() {
            if tiers[i].heavy && tiers[j].heavy {
                let x = intersect(&rows[i], &rows[j]);
                clash[i].extend(x.iter().copied());
                clash[j].extend(x);
            }
        }
    }
    let clash = clash.into_iter().map(union).collect();
    Picture {
        rows,
        clash,
        blackout: blackout_spans(blackouts, days),
        total,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A real run laid over the picture (the runtime's console): tier index, local wall times,
/// and whether it came close to its window (it used most of its timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actual {
    pub tier: usize,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    /// `ok`, `failed`, `timeout`, `lost`, `running`, `cancelled`, `skipped_*`, `missed`.
    pub status: String,
    pub close: bool,
    /// The hover text (run id, status, duration).
    pub title: String,
}

/// The fill of a real run of `status` (Airflow's colours where it has one).
fn actual_fill(status: &str) -> &'static str {
    match status {
        "ok" => "#2ca02c",
        "failed" | "lost" => "#8b0000",
        "timeout" => "#ff7f0e",
        "running" => "#17becf",
        "cancelled" => "#7f7f7f",
        _ => "#e377c2",
    }
}

/// SVG timeline: one row per tier, blackouts shaded across all rows, heavy tiers dark,
/// overlaps between heavy tiers red, day and hour labels, a legend.
pub fn svg(
    tiers: &[Tier],
    blackouts: &[Blackout],
    zone: &Zone,
    start: NaiveDate,
    days: u32,
) -> String {
    svg_with(tiers, blackouts, zone, start, days, &[])
}

/// [`svg`] with real runs laid over each tier's worst-case windows: a thin bar per run in its
/// status colour, outlined when it came close to its window. Without runs, the same bytes.
pub fn svg_with(
    tiers: &[Tier],
    blackouts: &[Blackout],
    zone: &Zone,
    start: NaiveDate,
    days: u32,
    actual: &[Actual],
) -> String {
    let days = days.max(1);
    let p = picture(tiers, blackouts, zone, start, days);
    let labels: Vec<String> = tiers
        .iter()
        .map(|t| format!("{} ({}, {}m)", t.name, t.cron.source(), t.timeout_min))
        .collect();
    // The label column fits the longest label (about 6.8 px a character at 11 px, bold).
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let left = (12.0 + longest as f64 * 6.8).max(180.0);
    let (top, row_h, bar_h) = (40.0, 22.0, 14.0);
    let plot_w = (days as f64 * 24.0 * 7.0).clamp(600.0, 2400.0);
    let scale = plot_w / p.total as f64;
    let x = |m: i64| left + m as f64 * scale;
    let height = top + row_h * tiers.len() as f64 + 70.0;
    let width = left + plot_w + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<title>stir schedule timeline ({} days from {}, {})</title>"#,
        days,
        start,
        esc(&zone.to_string())
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let rows_bottom = top + row_h * tiers.len() as f64;
    // blackouts across all rows
    for (a, b) in &p.blackout {
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{top:.0}" width="{:.1}" height="{:.0}" fill="#c8c8c8" opacity="0.6"/>"##,
            x(*a),
            (*b - *a) as f64 * scale,
            rows_bottom - top
        );
    }
    // axis: day lines and labels, hour ticks every 6 hours
    for h in (0..=days as i64 * 24).step_by(6) {
        let xx = x(h * 60);
        let day_line = h % 24 == 0;
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{:.0}" x2="{xx:.1}" y2="{rows_bottom:.0}" stroke="{}" stroke-width="{}"/>"##,
            top - 4.0,
            if day_line { "#555555" } else { "#dddddd" },
            if day_line { 1.0 } else { 0.5 }
        );
        if day_line && h < days as i64 * 24 {
            let d = start + Duration::days(h / 24);
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="14" font-weight="bold">{}</text>"#,
                xx + 2.0,
                d.format("%a %Y-%m-%d")
            );
        } else if !day_line {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="30" fill="#777777">{:02}:00</text>"##,
                xx - 12.0,
                h % 24
            );
        }
    }
    for (i, t) in tiers.iter().enumerate() {
        let y = top + row_h * i as f64;
        let (fill, weight) = if t.heavy {
            ("#1f3a93", "bold")
        } else {
            ("#8fb3e0", "normal")
        };
        let _ = writeln!(
            s,
            r#"<text x="4" y="{:.1}" font-weight="{weight}">{}</text>"#,
            y + row_h / 2.0 + 4.0,
            esc(&labels[i])
        );
        for (a, b) in &p.rows[i] {
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bar_h:.0}" fill="{fill}"/>"#,
                x(*a),
                y + (row_h - bar_h) / 2.0,
                ((*b - *a) as f64 * scale).max(0.5)
            );
        }
        for (a, b) in &p.clash[i] {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bar_h:.0}" fill="#d62728"/>"##,
                x(*a),
                y + (row_h - bar_h) / 2.0,
                ((*b - *a) as f64 * scale).max(0.5)
            );
        }
    }
    let from = start.and_time(chrono::NaiveTime::MIN);
    for a in actual.iter().filter(|a| a.tier < tiers.len()) {
        let s0 = (a.from - from).num_minutes().max(0);
        let e0 = (a.to - from).num_minutes().min(p.total);
        if e0 < s0 || s0 >= p.total {
            continue;
        }
        let y = top + row_h * a.tier as f64 + row_h / 2.0 - 3.0;
        let outline = if a.close {
            r##" stroke="#ffd700" stroke-width="2""##
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<rect class="run" x="{:.1}" y="{y:.1}" width="{:.1}" height="6" fill="{}"{outline}><title>{}</title></rect>"#,
            x(s0),
            ((e0 - s0) as f64 * scale).max(2.0),
            actual_fill(&a.status),
            esc(&a.title)
        );
    }
    // legend
    let ly = rows_bottom + 24.0;
    let mut items = vec![
        ("#1f3a93", "heavy run"),
        ("#8fb3e0", "run"),
        ("#d62728", "heavy overlap"),
        ("#c8c8c8", "blackout"),
    ];
    if !actual.is_empty() {
        items.extend([
            ("#2ca02c", "ran ok"),
            ("#8b0000", "failed / lost"),
            ("#ff7f0e", "timeout"),
            ("#e377c2", "skipped"),
            ("#ffd700", "close to its window"),
        ]);
    }
    for (k, (c, label)) in items.iter().enumerate() {
        let lx = left + k as f64 * 130.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.0}" y="{:.0}" width="14" height="10" fill="{c}"/>"#,
            ly - 9.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.0}" y="{ly:.0}">{label}</text>"#,
            lx + 18.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="4" y="{:.0}" fill="#555555">worst case: every fire happens, every run lasts its timeout; times in {}</text>"##,
        ly + 20.0,
        esc(&zone.to_string())
    );
    s.push_str("</svg>\n");
    s
}

fn covers(spans: &Spans, a: i64, b: i64) -> bool {
    let i = spans.partition_point(|x| x.1 <= a);
    spans.get(i).is_some_and(|x| x.0 < b)
}

/// Plain-text timeline: one line per tier, one character per time bucket: `#` heavy run,
/// `=` other run, `!` heavy overlap, `.` blackout, space idle.
pub fn text(
    tiers: &[Tier],
    blackouts: &[Blackout],
    zone: &Zone,
    start: NaiveDate,
    days: u32,
    width: usize,
) -> String {
    let days = days.max(1);
    let width = width.max(1);
    let p = picture(tiers, blackouts, zone, start, days);
    let name_w = tiers
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 24);
    let bucket = |k: usize| {
        (
            k as i64 * p.total / width as i64,
            (k as i64 + 1) * p.total / width as i64,
        )
    };
    let mut out = String::new();
    // header: a `|` at each day start, with the date where it fits
    let mut axis = vec![' '; width];
    for d in 0..days as i64 {
        let k = (d * 1440 * width as i64 / p.total) as usize;
        let label = (start + Duration::days(d)).format("|%m-%d").to_string();
        for (i, c) in label.chars().enumerate() {
            if let Some(slot) = axis.get_mut(k + i) {
                *slot = c;
            }
        }
    }
    let _ = writeln!(
        out,
        "{:name_w$} {}",
        "",
        axis.into_iter().collect::<String>()
    );
    for (i, t) in tiers.iter().enumerate() {
        let name: String = t.name.chars().take(name_w).collect();
        let line: String = (0..width)
            .map(|k| {
                let (a, b) = bucket(k);
                if covers(&p.clash[i], a, b) {
                    '!'
                } else if covers(&p.rows[i], a, b) {
                    if t.heavy {
                        '#'
                    } else {
                        '='
                    }
                } else if covers(&p.blackout, a, b) {
                    '.'
                } else {
                    ' '
                }
            })
            .collect();
        let _ = writeln!(out, "{name:name_w$} {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::Cron;

    fn tier(name: &str, cron: &str, timeout: u32, heavy: bool) -> Tier {
        Tier {
            name: name.into(),
            cron: Cron::parse(cron).expect("cron"),
            timeout_min: timeout,
            heavy,
            skip: vec![],
        }
    }

    #[test]
    fn real_runs_are_laid_over_their_row_and_change_nothing_else() {
        let tiers = vec![
            tier("core", "*/5 * * * *", 10, false),
            tier("daily", "0 3 * * *", 60, true),
        ];
        let start = NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        let at = |d: u32, h: u32, m: u32| {
            NaiveDate::from_ymd_opt(2026, 1, d)
                .and_then(|x| x.and_hms_opt(h, m, 0))
                .expect("time")
        };
        let plain = svg(&tiers, &[], &Zone::Fixed(0), start, 7);
        assert_eq!(plain, svg_with(&tiers, &[], &Zone::Fixed(0), start, 7, &[]));
        assert!(!plain.contains("class=\"run\""));
        let runs = [
            Actual {
                tier: 1,
                from: at(6, 3, 0),
                to: at(6, 3, 57),
                status: "ok".into(),
                close: true,
                title: "daily-<1>: ok".into(),
            },
            // Before the week: not drawn.
            Actual {
                tier: 0,
                from: at(1, 3, 0),
                to: at(1, 3, 5),
                status: "failed".into(),
                close: false,
                title: "old".into(),
            },
        ];
        let over = svg_with(&tiers, &[], &Zone::Fixed(0), start, 7, &runs);
        assert_eq!(over.matches("class=\"run\"").count(), 1, "{over}");
        assert!(
            over.contains("stroke=\"#ffd700\""),
            "close to its window: outlined"
        );
        assert!(
            over.contains("<title>daily-&lt;1&gt;: ok</title>"),
            "titles escaped"
        );
        assert!(over.contains("close to its window"), "the legend says so");
    }

    #[test]
    fn draws_overlaps_and_merges_frequent_tiers() {
        let tiers = vec![
            tier("post_ranker", "0 */5 * * *", 300, true),
            tier("dbt_daily", "0 19 * * *", 360, true),
            tier("dbt_recent", "*/5 * * * *", 90, false),
        ];
        let bl = vec![Blackout {
            name: "daily-batch".into(),
            window: DailyWindow {
                from: 19 * 60,
                to: 22 * 60,
            },
        }];
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let a = svg(&tiers, &bl, &Zone::Fixed(0), start, 7);
        assert_eq!(a, svg(&tiers, &bl, &Zone::Fixed(0), start, 7));
        assert!(a.contains("#d62728"));
        assert!(a.len() < 40_000, "{}", a.len());
        let t = text(&tiers, &bl, &Zone::Fixed(0), start, 1, 48);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains('!') && lines[2].contains('!'));
        assert!(lines[3].chars().all(|c| c != '#'));
        assert!(lines
            .iter()
            .skip(1)
            .all(|l| l.chars().count() == lines[1].chars().count()));
    }
}
