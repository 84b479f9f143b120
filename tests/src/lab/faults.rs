//! The lab's nemeses as library calls, each recorded in the history.
//!
//! Every fault appends one `Event::Fault` record (daemon `lab`, node 0) to
//! `DIR/history/lab.jsonl`, stamped with CLOCK_MONOTONIC like the daemons' own records, so
//! the checkers see faults and views in one order. A fault that ends processes is stamped
//! after they are gone; one that starts or wakes them, before.
//!
//! | call | `what` | target |
//! |---|---|---|
//! | [`kill`] | `kill` | the node |
//! | [`stop`] | `stop` | the node |
//! | [`start`] | `start` | the node |
//! | [`pause`] / [`resume`] | `pause` / `resume` | the node |
//! | [`network`] | the fault's text: `isolate 2`, `halves`, `bridge 1 2 3`, `oneway 1 2`, `partition 1,2 3`, `cut-host`, `heal` | the node for `isolate`, else none |
//! | power hook (`crate::power`) | `power-off` / `power-on` | the node on that outlet |
//!
//! The first word of `what` is the fault's kind. Network faults need a netns lab.

use super::{lab_net, locked, start_node_locked, stop_node_locked};
use crate::bench::monotonic_ns;
use crate::nemesis::{Drops, NetFault};
use crate::state::LabState;
use libcluster::history::{Event, Record};
use nix::sys::signal::Signal;
use std::io::Write;
use std::path::Path;

/// Appends a fault record to `DIR/history/lab.jsonl`, stamped now.
pub fn record(dir: &Path, target: Option<u32>, what: &str) -> Result<(), String> {
    let rec = Record {
        t_ns: monotonic_ns(),
        node: 0,
        incarnation: 0,
        daemon: "lab".into(),
        event: Event::Fault {
            target,
            what: what.to_string(),
        },
    };
    let history = dir.join("history");
    std::fs::create_dir_all(&history).map_err(|e| format!("{}: {e}", history.display()))?;
    let path = history.join("lab.jsonl");
    // One write of one whole line to an O_APPEND file: concurrent writers do not interleave.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{}\n", rec.to_line()).as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn node_id(lab: &LabState, node: &str) -> Result<u32, String> {
    lab.node(node)
        .map(|n| n.nodeid)
        .ok_or_else(|| format!("no node {node} in this lab"))
}

/// SIGKILL every daemon of `node` (a crash); records `kill`.
pub fn kill(lab: &mut LabState, node: &str) -> Result<(), String> {
    let id = node_id(lab, node)?;
    locked(lab, |l| stop_node_locked(l, node, true))?;
    record(&lab.dir, Some(id), "kill")
}

/// SIGTERM every daemon of `node`, SIGKILL after 10 s (a clean stop); records `stop`.
pub fn stop(lab: &mut LabState, node: &str) -> Result<(), String> {
    let id = node_id(lab, node)?;
    locked(lab, |l| stop_node_locked(l, node, false))?;
    record(&lab.dir, Some(id), "stop")
}

/// Starts the daemons of `node` that are not running (a fresh boot); records `start`.
pub fn start(lab: &mut LabState, node: &str) -> Result<(), String> {
    let id = node_id(lab, node)?;
    record(&lab.dir, Some(id), "start")?;
    locked(lab, |l| start_node_locked(l, node))
}

/// Sends `sig` to every running daemon of `node`; an error if none runs.
fn signal(lab: &LabState, node: &str, sig: Signal) -> Result<(), String> {
    let n = lab
        .node(node)
        .ok_or_else(|| format!("no node {node} in this lab"))?;
    let sent = n.daemons.values().filter(|rec| rec.signal(sig)).count();
    if sent == 0 {
        return Err(format!("node {node} has no running daemon"));
    }
    Ok(())
}

/// SIGSTOP every daemon of `node` (a frozen host); records `pause`.
pub fn pause(lab: &mut LabState, node: &str) -> Result<(), String> {
    refresh(lab);
    let id = node_id(lab, node)?;
    signal(lab, node, Signal::SIGSTOP)?;
    record(&lab.dir, Some(id), "pause")
}

/// SIGCONT every daemon of `node`; records `resume`.
pub fn resume(lab: &mut LabState, node: &str) -> Result<(), String> {
    refresh(lab);
    let id = node_id(lab, node)?;
    record(&lab.dir, Some(id), "resume")?;
    signal(lab, node, Signal::SIGCONT)
}

/// Rereads the record: the power hook may have changed it.
fn refresh(lab: &mut LabState) {
    if let Ok(new) = LabState::load(&lab.dir) {
        *lab = new;
    }
}

/// Applies a network fault (replacing the one in force) and records it; returns the
/// dropped links. An error in loopback mode.
pub fn network(lab: &LabState, fault: &NetFault) -> Result<Drops, String> {
    let net = lab_net(lab)?;
    let drops = net.inject(fault).map_err(|e| e.to_string())?;
    let target = match fault {
        NetFault::Isolate(id) => Some(*id),
        _ => None,
    };
    record(&lab.dir, target, &fault.to_string())?;
    Ok(drops)
}

/// Removes every drop rule; records `heal`.
pub fn heal(lab: &LabState) -> Result<(), String> {
    network(lab, &NetFault::Heal).map(drop)
}

/// Reads a network fault from words that may name nodes by name or id:
/// `isolate n2`, `halves`, `bridge n1 n2 n3`, `oneway n1 n2`, `partition n1,n2 n3`,
/// `cut-host [n1,n2]`, `heal`.
pub fn parse_network_fault(lab: &LabState, words: &[String]) -> Result<NetFault, String> {
    let mut text = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if i == 0 {
            text.push(w.clone());
            continue;
        }
        let ids: Result<Vec<String>, String> = w
            .split(',')
            .map(|part| node_id(lab, part).map(|id| id.to_string()))
            .collect();
        text.push(ids?.join(","));
    }
    text.join(" ")
        .parse::<NetFault>()
        .map_err(|e| e.to_string())
}
