//! C's `ctime` without a time zone database: `Thu Nov 25 16:02:00 2008`.
//!
//! The caller passes the offset from UTC in effect at the instant (the binaries ask the C
//! library, tests pass a constant), so renderers stay pure and golden files are stable.

const DAY_S: i64 = 86_400;
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The civil date (year, month 1..=12, day 1..=31) of day `days` after 1970-01-01.
///
/// Counts in 400-year cycles that begin on 1 March, so February (and its leap day) is the
/// last month of each counted year.
fn civil(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let cycle = z.div_euclid(146_097);
    let doc = z.rem_euclid(146_097);
    let yoc = (doc - doc / 1_460 + doc / 36_524 - doc / 146_096) / 365;
    let doy = doc - (365 * yoc + yoc / 4 - yoc / 100);
    let mp = (5 * doy + 2) / 153; // 0 = March
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = cycle * 400 + yoc + i64::from(month <= 2);
    (year, month as usize, day)
}

/// `ctime(&t)` without the trailing newline, for `unix_s` shifted by `utc_offset_s`.
pub fn ctime(unix_s: i64, utc_offset_s: i32) -> String {
    let t = unix_s.saturating_add(i64::from(utc_offset_s));
    let days = t.div_euclid(DAY_S);
    let secs = t.rem_euclid(DAY_S);
    let (year, month, day) = civil(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    let month = MONTHS.get(month.wrapping_sub(1)).copied().unwrap_or("???");
    format!(
        "{weekday} {month} {day:2} {:02}:{:02}:{:02} {year}",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The offset function for UTC.
pub fn utc(_unix_s: i64) -> i32 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants_print_like_glibc_ctime() {
        assert_eq!(ctime(0, 0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_227_628_920, 0), "Tue Nov 25 16:02:00 2008");
        assert_eq!(ctime(951_782_400, 0), "Tue Feb 29 00:00:00 2000");
        assert_eq!(ctime(1_227_628_920, 3_600), "Tue Nov 25 17:02:00 2008");
        assert_eq!(ctime(-1, 0), "Wed Dec 31 23:59:59 1969");
    }

    proptest! {
        #[test]
        fn consecutive_days_advance_the_weekday_and_date(days in -100_000i64..100_000) {
            let a = ctime(days * DAY_S, 0);
            let b = ctime((days + 1) * DAY_S, 0);
            let wa = WEEKDAYS.iter().position(|w| a.starts_with(w)).unwrap();
            let wb = WEEKDAYS.iter().position(|w| b.starts_with(w)).unwrap();
            prop_assert_eq!((wa + 1) % 7, wb);
            let (y1, m1, d1) = civil(days);
            let (y2, m2, d2) = civil(days + 1);
            prop_assert!((y2, m2, d2) > (y1, m1, d1));
            prop_assert!(d2 == d1 + 1 || d2 == 1);
        }
    }
}
