//! Printing the lab's state for people (a table) and scripts (JSON).
//!
//! JSON (`clusterlab status --json`):
//!
//! ```text
//! { "dir", "cluster", "mode": "netns"|"loopback",
//!   "nodes": [ { "name", "nodeid", "address", "netns" (or null), "outlet",
//!                "power": "on"|"off", "pids": { "cmand": 1234 }, "dir" } ],
//!   "power_switch": { "address", "port", "login", "password", "pid" } (or null),
//!   "drops": [ [from, to], ... ] (netns mode: the links the nftables rules drop) }
//! ```
//!
//! `power` is the outlet's state in the switch's state file (`DIR/apc.json`) while the
//! switch runs; otherwise whether any daemon of the node runs.

use crate::lab;
use crate::nemesis::Drops;
use crate::power;
use crate::state::{LabMode, LabNode, LabState};
use serde_json::json;

fn power_on(lab: &LabState, n: &LabNode) -> bool {
    let switch_up = lab
        .power_switch
        .as_ref()
        .and_then(|s| s.process.as_ref())
        .is_some_and(|r| r.alive());
    let outlet = power::outlet_on(lab, n.outlet).filter(|_| switch_up);
    outlet.unwrap_or_else(|| n.daemons.values().any(|r| r.alive()))
}

/// The links dropped now (netns mode), or None.
fn drops(lab: &LabState) -> Option<Drops> {
    if lab.mode != LabMode::Netns {
        return None;
    }
    lab::lab_net(lab).ok()?.current_drops().ok()
}

/// The lab as JSON (see the module doc).
pub fn status_json(lab: &LabState) -> String {
    let nodes: Vec<_> = lab
        .nodes
        .iter()
        .map(|n| {
            let pids: serde_json::Map<String, serde_json::Value> = n
                .daemons
                .iter()
                .filter(|(_, rec)| rec.alive())
                .map(|(d, rec)| (d.clone(), json!(rec.pid)))
                .collect();
            json!({
                "name": n.name,
                "nodeid": n.nodeid,
                "address": n.address,
                "netns": n.netns,
                "outlet": n.outlet,
                "power": if power_on(lab, n) { "on" } else { "off" },
                "pids": pids,
                "dir": n.dir,
            })
        })
        .collect();
    let switch = lab.power_switch.as_ref().map(|sw| {
        json!({
            "address": sw.address,
            "port": sw.port,
            "login": sw.login,
            "password": sw.password,
            "pid": sw.process.as_ref().filter(|r| r.alive()).map(|r| r.pid),
        })
    });
    let drops: Option<Vec<(u32, u32)>> = drops(lab).map(|d| d.links().collect());
    let doc = json!({
        "dir": lab.dir,
        "cluster": lab.cluster_name,
        "mode": lab.mode.as_str(),
        "nodes": nodes,
        "power_switch": switch,
        "drops": drops,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The lab as a table, one node a line, then the power switch and the dropped links.
pub fn status_table(lab: &LabState) -> String {
    let mut out = format!(
        "Lab {} (cluster {}, {} mode)\n",
        lab.dir.display(),
        lab.cluster_name,
        lab.mode.as_str()
    );
    out += &format!(
        "{:<24} {:>4}  {:<15} {:<14} {:>6} {:<5} {}\n",
        "Node", "ID", "Address", "Netns", "Outlet", "Power", "Daemons"
    );
    for n in &lab.nodes {
        let daemons: Vec<String> = n
            .daemons
            .iter()
            .map(|(d, rec)| {
                let state = if rec.alive() { "" } else { " (dead)" };
                format!("{d}[{}]{state}", rec.pid)
            })
            .collect();
        let daemons = if daemons.is_empty() {
            "-".to_string()
        } else {
            daemons.join(" ")
        };
        out += &format!(
            "{:<24} {:>4}  {:<15} {:<14} {:>6} {:<5} {}\n",
            n.name,
            n.nodeid,
            n.address,
            n.netns.as_deref().unwrap_or("-"),
            n.outlet,
            if power_on(lab, n) { "on" } else { "off" },
            daemons
        );
    }
    out += &format!("Power switch: {}\n", power::switch_summary(lab));
    if let Some(d) = drops(lab) {
        if d.is_empty() {
            out += "Dropped links: none\n";
        } else {
            let links: Vec<String> = d.links().map(|(f, t)| format!("{f}->{t}")).collect();
            out += &format!("Dropped links: {}\n", links.join(" "));
        }
    }
    out
}
