//! A new incarnation for every daemon start.
//!
//! The value is `max(wall-clock microseconds, last + 1)`, and the result is persisted in
//! `<runtime dir>/cmand.incarnation`. The wall clock makes it grow across reboots (the
//! runtime directory is usually a tmpfs and starts empty); the persisted value makes it
//! grow across fast restarts and a wall clock stepped backwards while the machine was up.
//! Peers treat a higher incarnation as a restarted daemon and a lower one as stale.

use libcluster::files::write_atomic;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file in the runtime directory that holds the last incarnation used.
pub const FILE_NAME: &str = "cmand.incarnation";

/// The incarnation after `last` at wall-clock time `wall_us` (µs since the epoch).
pub fn next(last: Option<u64>, wall_us: u64) -> u64 {
    match last {
        Some(l) => wall_us.max(l.saturating_add(1)),
        None => wall_us.max(1),
    }
}

/// Where the incarnation of this runtime directory is kept.
pub fn path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(FILE_NAME)
}

/// Chooses this start's incarnation and records it. An unreadable or garbled file only
/// loses the fast-restart guarantee (the wall clock still applies), so it is ignored; a
/// failed write is returned, with the chosen value, for the caller to log.
pub fn take(runtime_dir: &Path) -> (u64, Result<(), io::Error>) {
    let file = path(runtime_dir);
    let last = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let wall_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let inc = next(last, wall_us);
    let written = std::fs::create_dir_all(runtime_dir)
        .and_then(|()| write_atomic(&file, format!("{inc}\n").as_bytes(), 0o644));
    (inc, written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_strictly_greater_than_the_last_even_when_the_clock_went_back() {
        assert_eq!(next(None, 500), 500);
        assert_eq!(next(Some(100), 500), 500);
        assert_eq!(next(Some(900), 500), 901);
        assert_eq!(next(Some(u64::MAX), 5), u64::MAX);
        assert_eq!(next(None, 0), 1);
    }

    #[test]
    fn successive_takes_in_one_directory_grow() {
        let dir = std::env::temp_dir().join(format!("cmand-inc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, wa) = take(&dir);
        let (b, wb) = take(&dir);
        assert!(wa.is_ok() && wb.is_ok());
        assert!(b > a, "{b} after {a}");
        std::fs::write(path(&dir), "garbage").unwrap();
        let (c, _) = take(&dir);
        assert!(c > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
