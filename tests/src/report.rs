//! Printing the lab's state for people (a table) and scripts (JSON).

use crate::state::LabState;
use serde_json::json;

/// The lab as JSON: `nodes` with name, nodeid, address, power and daemon pids.
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
                "dir": n.dir,
                "power": if pids.is_empty() { "off" } else { "on" },
                "pids": pids,
            })
        })
        .collect();
    let doc = json!({ "dir": lab.dir, "cluster": lab.cluster_name, "nodes": nodes });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The lab as a table, one node a line.
pub fn status_table(lab: &LabState) -> String {
    let mut out = format!("Lab {} (cluster {})\n", lab.dir.display(), lab.cluster_name);
    out += &format!(
        "{:<28} {:>4}  {:<15} {}\n",
        "Node", "ID", "Address", "Daemons"
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
            "{:<28} {:>4}  {:<15} {}\n",
            n.name, n.nodeid, n.address, daemons
        );
    }
    out
}
