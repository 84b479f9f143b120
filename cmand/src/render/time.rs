//! Wall-clock formatting for `cman_tool nodes` without a time zone database.
//!
//! The original prints join times with `strftime("%F %H:%M:%S", localtime(t))`. Here the
//! caller supplies the offset from UTC in effect at that instant (the binary asks the C
//! library, tests pass a constant), and the calendar arithmetic is done on whole days.

/// Seconds in a day.
const DAY_S: i64 = 86_400;

/// The proleptic Gregorian date of a day counted from 1970-01-01 (day 0): (year, month
/// 1..=12, day 1..=31).
///
/// Works in 400-year eras of 146,097 days, with years that start on March 1 so the leap
/// day falls at the end of the year and every month before it has a fixed offset.
pub fn date_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the origin to 0000-03-01, the start of an era.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097); // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = March .. 11 = February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    // Both values are small by construction (1..=31, 1..=12).
    (year, month as u32, day as u32)
}

/// `YYYY-MM-DD HH:MM:SS` for `unix_s` seconds since the epoch, shifted by `utc_offset_s`
/// seconds (east of UTC positive), as `strftime("%F %H:%M:%S")` prints local time.
pub fn format_local(unix_s: i64, utc_offset_s: i32) -> String {
    let t = unix_s.saturating_add(i64::from(utc_offset_s));
    let (year, month, day) = date_from_days(t.div_euclid(DAY_S));
    let second_of_day = t.rem_euclid(DAY_S);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_leap(y: i64) -> bool {
        (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
    }

    fn month_len(y: i64, m: u32) -> u32 {
        match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// The dumb reference: walk day by day from the epoch.
    fn walk(days: i64) -> (i64, u32, u32) {
        let (mut y, mut m, mut d) = (1970_i64, 1_u32, 1_u32);
        for _ in 0..days {
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        (y, m, d)
    }

    #[test]
    fn known_instants_format_like_strftime() {
        assert_eq!(format_local(0, 0), "1970-01-01 00:00:00");
        // The spec's example row, 2011-10-03 15:22:22 UTC.
        assert_eq!(format_local(1_317_655_342, 0), "2011-10-03 15:22:22");
        // The same instant two hours east.
        assert_eq!(format_local(1_317_655_342, 7_200), "2011-10-03 17:22:22");
        assert_eq!(format_local(951_782_400, 0), "2000-02-29 00:00:00");
        assert_eq!(format_local(-1, 0), "1969-12-31 23:59:59");
        assert_eq!(format_local(1_700_000_000, -18_000), "2023-11-14 17:13:20");
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        for t in [i64::MIN, i64::MAX, i64::MIN / DAY_S, 0] {
            for off in [i32::MIN, 0, i32::MAX] {
                let _ = format_local(t, off);
            }
        }
    }

    #[test]
    fn every_day_of_fifty_years_matches_a_day_by_day_walk() {
        let (mut y, mut m, mut d) = (1970_i64, 1_u32, 1_u32);
        for days in 0..(50 * 366) {
            assert_eq!(date_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    proptest! {
        #[test]
        fn dates_agree_with_the_walk(days in 0_i64..200_000) {
            prop_assert_eq!(date_from_days(days), walk(days));
        }

        #[test]
        fn consecutive_days_are_consecutive_dates(days in -100_000_000_i64..100_000_000) {
            let (y, m, d) = date_from_days(days);
            let (y2, m2, d2) = date_from_days(days + 1);
            prop_assert!(d >= 1 && d <= month_len(y, m) && (1..=12).contains(&m));
            if d < month_len(y, m) {
                prop_assert_eq!((y2, m2, d2), (y, m, d + 1));
            } else if m < 12 {
                prop_assert_eq!((y2, m2, d2), (y, m + 1, 1));
            } else {
                prop_assert_eq!((y2, m2, d2), (y + 1, 1, 1));
            }
        }
    }
}
