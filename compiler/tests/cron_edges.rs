//! Edges of the cron and schedule code that mutation testing (cargo-mutants, docs/testing.md)
//! found no test for: each assertion here fails on a mutant that every other test let pass.

use stir::cron::Cron;

/// The error a user reads (its Display) is the message, naming the field and the value.
#[test]
fn a_cron_error_reads_as_its_message() {
    let e = Cron::parse("61 * * * *").unwrap_err();
    assert!(!e.message.is_empty());
    assert_eq!(e.to_string(), e.message);
    assert!(e.to_string().contains("minute"), "{e}");
}

/// Leading zeros are read as croniter reads them (`int()`), up to four digits; longer values
/// are out of range whatever they say (and cannot overflow).
#[test]
fn values_with_leading_zeros_up_to_four_digits() {
    let c = Cron::parse("0005 0023 * * *").expect("0005 is minute 5");
    assert_eq!(c.times_of_day(), vec![23 * 60 + 5]);
    for long in ["00005 * * * *", "99999999999 * * * *"] {
        assert!(Cron::parse(long).is_err(), "{long}");
    }
}

/// An error in the upper end of a range points at that value, not at the dash before it.
#[test]
fn a_bad_range_end_is_pointed_at() {
    for (expr, bad) in [
        ("1-61 * * * *", "61"),
        ("5 10-25 * * *", "25"),
        ("5 4 * * mon-sux", "sux"),
    ] {
        let e = Cron::parse(expr).unwrap_err();
        assert_eq!(&expr[e.span.clone()], bad, "{expr}: {}", e.message);
    }
}

/// Feb 29 exists in 2028 and 2000, not in 2100 (divisible by 100, not by 400): a cron of the
/// leap day skips 2100.
#[test]
fn leap_years_follow_the_gregorian_rule() {
    use stir::cron::month_len;
    assert_eq!(
        [2026, 2028, 2000, 2100, 2400].map(|y| month_len(y, 2)),
        [28, 29, 29, 28, 29]
    );
    let leap_day = Cron::parse("0 0 29 2 *").unwrap();
    let after = chrono::NaiveDate::from_ymd_opt(2097, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let next = leap_day.next_after(after).unwrap();
    assert_eq!(
        next.date(),
        chrono::NaiveDate::from_ymd_opt(2104, 2, 29).unwrap()
    );
}

/// Days 1-30 without `L` are not every day (months with a 31st miss it), so a schedule of the
/// 31st never meets one of days 1-30 at the same hour.
#[test]
fn days_1_to_30_are_not_every_day() {
    use stir::schedule::{first_overlap, Tier, Zone};
    assert!(!Cron::parse("0 1 1-30 * *").unwrap().every_day());
    assert!(Cron::parse("0 1 1-30,31 * *").unwrap().every_day());
    let tier = |name: &str, cron: &str| Tier {
        name: name.into(),
        cron: Cron::parse(cron).unwrap(),
        timeout_min: 60,
        heavy: true,
        skip: vec![],
    };
    let (a, b) = (tier("a", "0 1 31 * *"), tier("b", "0 1 1-30 * *"));
    assert_eq!(first_overlap(&a, &b, &Zone::Fixed(0)), None);
}

/// A blackout's length in minutes, across midnight too (the timeline draws it).
#[test]
fn blackout_windows_have_their_length() {
    use stir::schedule::DailyWindow;
    let w = |from, to| DailyWindow { from, to };
    assert_eq!(w(19 * 60, 22 * 60).len(), 180);
    assert_eq!(w(22 * 60, 60).len(), 180);
    assert!(w(300, 300).is_empty() && !w(300, 301).is_empty());
}

/// A run longer than four days meets a fire five days after its own (the day offsets a run
/// covers are not only powers of two).
#[test]
fn a_run_of_five_and_a_half_days_meets_a_fire_five_days_later() {
    use stir::schedule::{first_overlap, Tier, Zone};
    let tier = |name: &str, cron: &str, timeout_min: u32| Tier {
        name: name.into(),
        cron: Cron::parse(cron).unwrap(),
        timeout_min,
        heavy: true,
        skip: vec![],
    };
    // Monday 00:00 for 5 d 13 h 20 min, to Saturday 13:20; Saturday 12:00 for 10 minutes.
    let (a, b) = (tier("a", "0 0 * * 1", 8000), tier("b", "0 12 * * 6", 10));
    let o = first_overlap(&a, &b, &Zone::Fixed(0)).expect("they meet");
    let at = |d: u32, h: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 1, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    };
    assert_eq!(
        (o.instant, o.a_fire, o.b_fire),
        (at(10, 12), at(5, 0), at(10, 12))
    );
}
