//! History records: what each daemon appends, one JSON object a line, to the file named by
//! `CLUSTER_HISTORY` (the lab sets it; production leaves it unset).
//!
//! Timestamps are CLOCK_MONOTONIC nanoseconds. On one machine every process reads the same
//! monotonic clock, so the lab merges all nodes' files into one true order and the checkers
//! (agreement, quorum, fencing before recovery, one host per VM) judge that order. Later
//! daemons append their own event kinds; add variants, never change existing ones.

use serde::{Deserialize, Serialize};

/// One line of a history file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// CLOCK_MONOTONIC in nanoseconds.
    pub t_ns: u64,
    /// The node id of the writer.
    pub node: u32,
    /// The writer's incarnation (a new value at every daemon start).
    pub incarnation: u64,
    /// The daemon that wrote it (`cmand`, `fenced`, ...).
    pub daemon: String,
    /// What happened.
    pub event: Event,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The daemon started.
    Start,
    /// A membership view was installed.
    View {
        /// Epoch.
        generation: u64,
        /// Coordinator node id.
        coordinator: u32,
        /// Members with incarnations, sorted by id.
        members: Vec<(u32, u64)>,
    },
    /// The quorum state changed.
    Quorum {
        /// Quorate now.
        quorate: bool,
        /// Votes needed.
        quorum: u32,
        /// Votes present.
        total_votes: u32,
    },
    /// A group message was delivered to a local client.
    Deliver {
        /// Group.
        group: String,
        /// View epoch it was ordered in.
        generation: u64,
        /// Coordinator of that view (with the epoch, the view's identity).
        coordinator: u32,
        /// Sequence number in that view.
        seq: u64,
        /// Sender.
        from: u32,
        /// crc32 of the payload, so checkers compare contents without storing them.
        crc: u32,
    },
    /// A new cluster.conf was written.
    ConfigChanged {
        /// Its config_version.
        version: u64,
    },
    /// The daemon is exiting.
    Shutdown {
        /// Why.
        reason: String,
    },
    /// A fault the lab injected (written by the lab, `daemon` = "lab"): `kill`, `start`,
    /// `pause`, `resume`, `power-off`, `power-on`, `isolate`, `halves`, `heal`, ...
    Fault {
        /// The node it hit, if one.
        target: Option<u32>,
        /// What was done.
        what: String,
    },
    /// fenced on the master: a victim's fencing completed (`how`: `agent`, `member`,
    /// `override`, `external`).
    Fenced {
        /// The victim's node id.
        victim: u32,
        /// The victim's incarnation when it failed.
        victim_incarnation: u64,
        /// How it completed.
        how: String,
        /// The method that succeeded, if an agent did it.
        method: Option<String>,
        /// The last device of that method.
        device: Option<String>,
    },
    /// fenced on the master: it starts a pass through a victim's methods (written before
    /// the first agent runs, so checkers can judge the quorum it decided with).
    FenceStart {
        /// The victim's node id.
        victim: u32,
        /// The victim's incarnation when it failed.
        victim_incarnation: u64,
    },
    /// rgmanagerd: a local VM operation ended (`op`: `start`, `stop`, `incoming`,
    /// `migrate-out`, `status-failed`, `abort-incoming`).
    Vm {
        /// The VM's name (without `vm:`).
        vm: String,
        /// The operation.
        op: String,
        /// Whether it succeeded.
        ok: bool,
        /// The migration target, when one.
        to: Option<u32>,
        /// QEMU's downtime of a live migration, ms.
        downtime_ms: Option<u64>,
        /// Total time of the operation, ms.
        took_ms: u64,
    },
    /// fenced on the master: one pass through a victim's methods ended.
    FenceAttempt {
        /// The victim's node id.
        victim: u32,
        /// The victim's incarnation when it failed.
        victim_incarnation: u64,
        /// Whether a method succeeded.
        success: bool,
    },
}

impl Record {
    /// The record as one line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"unencodable\":\"{e}\"}}"))
    }

    /// Parses one line.
    pub fn from_line(line: &str) -> Result<Record, String> {
        serde_json::from_str(line).map_err(|e| format!("bad history line: {e}: {line}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_through_one_line() {
        let r = Record {
            t_ns: 12,
            node: 2,
            incarnation: 9,
            daemon: "cmand".into(),
            event: Event::View {
                generation: 3,
                coordinator: 1,
                members: vec![(1, 5), (2, 9)],
            },
        };
        let line = r.to_line();
        assert!(!line.contains('\n'));
        assert!(line.contains("\"kind\":\"view\""), "{line}");
        assert_eq!(Record::from_line(&line).unwrap(), r);
        assert!(Record::from_line("{").is_err());
    }
}
