//! Cron expressions and durations in words, for the console. The times come from the
//! project's own cron (`stir_plan::cron`, Airflow's day semantics), so the words say when the
//! runtime really fires; the day fields are read from the expression's text.

use stir_plan::cron::Cron;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// When in the day: `every 5 minutes`, `at 03:00`, `every 2 hours at :15`, `at 06:00, 18:00`.
fn times(cron: &Cron) -> String {
    let t = cron.times_of_day();
    match t.len() {
        0 => return "never".into(),
        1440 => return "every minute".into(),
        1 => return format!("at {}", hhmm(t[0])),
        _ => {}
    }
    let step = t[1] - t[0];
    // A short list reads better than a rule: `at 06:00, 18:00`, not `every 12 hours`.
    let even = t.windows(2).all(|w| w[1] - w[0] == step)
        && 1440 % step == 0
        && t[0] < step
        && (step < 60 || t.len() > 6);
    if even {
        if step < 60 {
            return format!("every {step} minutes");
        }
        if step % 60 == 0 {
            let h = step / 60;
            let at = format!(":{:02}", t[0] % 60);
            return if h == 1 {
                format!("every hour at {at}")
            } else {
                format!("every {h} hours at {at} from {}", hhmm(t[0]))
            };
        }
    }
    if t.len() <= 6 {
        let list: Vec<String> = t.iter().map(|&m| hhmm(m)).collect();
        return format!("at {}", list.join(", "));
    }
    format!(
        "{} times a day from {} to {}",
        t.len(),
        hhmm(t[0]),
        hhmm(t[t.len() - 1])
    )
}

/// A day field's terms as names (`1-5` → `Mon–Fri`), or `None` when it has steps or words.
fn named(field: &str, names: &[&str], base: usize) -> Option<String> {
    let name = |s: &str| -> Option<&str> {
        let n: usize = s.parse().ok()?;
        let i = if names.len() == 7 {
            n % 7
        } else {
            n.checked_sub(base)?
        };
        names.get(i).copied()
    };
    let mut out = Vec::new();
    for term in field.split(',') {
        match term.split_once('-') {
            Some((a, b)) => out.push(format!("{}–{}", name(a)?, name(b)?)),
            None => out.push(name(term)?.to_string()),
        }
    }
    Some(out.join(", "))
}

/// The whole expression in words, e.g. `every 5 minutes, every day` or
/// `at 03:00, on day 1 of the month or on Mon` (Airflow: either day field matches).
pub fn cron_words(expr: &str) -> String {
    let Ok(cron) = Cron::parse(expr) else {
        return format!("`{expr}`");
    };
    let f: Vec<&str> = expr.split_whitespace().collect();
    let when = times(&cron);
    if f.len() != 5 {
        return when;
    }
    let (dom, month, dow) = (f[2], f[3], f[4]);
    let dow_words = || {
        named(dow, &WEEKDAYS, 0)
            .map(|n| format!("on {n}"))
            .unwrap_or_else(|| format!("on weekdays `{dow}`"))
    };
    let mut days = match (dom == "*", dow == "*") {
        (true, true) => "every day".to_string(),
        (true, false) => dow_words(),
        (false, true) => format!("on day {dom} of the month"),
        (false, false) => format!("on day {dom} of the month or {}", dow_words()),
    };
    if month != "*" {
        let m = named(month, &MONTHS, 1).unwrap_or_else(|| format!("months `{month}`"));
        days.push_str(&format!(", in {m}"));
    }
    format!("{when}, {days}")
}

/// `4m 05s`, `1h 02m`, `0.8s`.
pub fn duration(secs: f64) -> String {
    if secs < 0.0 {
        return "-".into();
    }
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_crons_read_as_an_operator_says_them() {
        for (cron, want) in [
            ("*/5 * * * *", "every 5 minutes, every day"),
            ("0 3 * * *", "at 03:00, every day"),
            ("15 * * * *", "every hour at :15, every day"),
            ("0 */6 * * *", "at 00:00, 06:00, 12:00, 18:00, every day"),
            ("30 */2 * * *", "every 2 hours at :30 from 00:30, every day"),
            ("0 6,18 * * 1-5", "at 06:00, 18:00, on Mon–Fri"),
            ("30 2 1 * 0", "at 02:30, on day 1 of the month or on Sun"),
            ("0 4 * 1,7 *", "at 04:00, every day, in Jan, Jul"),
            ("0 4 * * 1/2", "at 04:00, on weekdays `1/2`"),
            ("* * * * *", "every minute, every day"),
        ] {
            assert_eq!(cron_words(cron), want, "{cron}");
        }
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(0.84), "0.8s");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(3720.0), "1h 02m");
    }
}
