//! The history file the lab's checkers read: one `libcluster::history::Record` per line,
//! written by every daemon (`cmand`, `fenced`, `rgmanagerd`) to the file `CLUSTER_HISTORY`
//! names.
//!
//! The file is opened with `O_APPEND` and every record is one `write` of a whole line, so
//! lines of concurrent writers never interleave and a crash loses at most the line being
//! written. Nothing is buffered in the process.

use libcluster::history::{Event, Record};
use nix::time::{clock_gettime, ClockId};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// CLOCK_MONOTONIC in nanoseconds: the clock every process on the machine shares.
pub fn monotonic_ns() -> u64 {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => {
            let s = u64::try_from(ts.tv_sec()).unwrap_or(0);
            let ns = u64::try_from(ts.tv_nsec()).unwrap_or(0);
            s.saturating_mul(1_000_000_000).saturating_add(ns)
        }
        Err(_) => 0,
    }
}

/// An open history file of one daemon start.
#[derive(Debug)]
pub struct History {
    file: File,
    path: PathBuf,
    node: u32,
    incarnation: u64,
    daemon: &'static str,
}

impl History {
    /// Opens (creating it if needed) the history file at `path` for appending; records
    /// carry `daemon`, `node` and `incarnation`.
    pub fn open(
        path: &Path,
        daemon: &'static str,
        node: u32,
        incarnation: u64,
    ) -> io::Result<History> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        Ok(History {
            file,
            path: path.to_path_buf(),
            node,
            incarnation,
            daemon,
        })
    }

    /// Appends one record stamped with the monotonic clock. A failed write is logged, not
    /// fatal: the history serves the lab's checkers, not the cluster.
    pub fn record(&mut self, event: Event) {
        let rec = Record {
            t_ns: monotonic_ns(),
            node: self.node,
            incarnation: self.incarnation,
            daemon: self.daemon.into(),
            event,
        };
        let mut line = rec.to_line();
        line.push('\n');
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot append to the history file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_appended_as_parseable_lines_in_clock_order() {
        let path =
            std::env::temp_dir().join(format!("clusterio-hist-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, "").unwrap();
        let mut h = History::open(&path, "cmand", 3, 42).unwrap();
        h.record(Event::Start);
        h.record(Event::ConfigChanged { version: 2 });
        drop(h);
        let text = std::fs::read_to_string(&path).unwrap();
        let recs: Vec<Record> = text
            .lines()
            .map(|l| Record::from_line(l).unwrap())
            .collect();
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].node, recs[0].incarnation), (3, 42));
        assert_eq!(recs[1].event, Event::ConfigChanged { version: 2 });
        assert!(recs[0].t_ns <= recs[1].t_ns && recs[0].t_ns > 0);
        std::fs::remove_file(&path).unwrap();
    }
}
