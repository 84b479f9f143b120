//! Checkers over merged histories: every node's `history/*.jsonl`, plus the lab's own fault
//! records, sorted by CLOCK_MONOTONIC time into one true order.
//!
//! | check | invariant (DESIGN.md §5) |
//! |---|---|
//! | [`agreement`] | M1: records of one view (epoch, coordinator, coordinator incarnation) name one member list |
//!
//! Q1 (quorum), M3 (group order and sets, from each node's join point), N1 (no loss) and N2
//! (integrity) are in [`crate::jepsen::check`]: they need the workload's log and treat a
//! view and its quorum record as one transition.
//!
//! A node's state ends when the lab kills or powers it off, and a restart starts a new
//! incarnation whose records are judged on their own. Later issues add F1 (fencing before
//! recovery) and R1/R2 (one host per VM, recovery) over the same merged history.

use libcluster::history::{Event, Record};
use std::collections::BTreeMap;
use std::path::Path;

/// Reads and merges every `*.jsonl` file of a history directory, sorted by time.
pub fn load(dir: &Path) -> Result<Vec<Record>, String> {
    let mut all = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            all.extend(load_file(&path)?);
        }
    }
    all.sort_by_key(|r| (r.t_ns, r.node, r.incarnation));
    Ok(all)
}

/// Reads one history file in file order. A missing file is an empty history (the writer
/// never started); a torn last line (a writer killed mid-write) is skipped; any other bad
/// line is an error naming the file and line.
pub fn load_file(path: &Path) -> Result<Vec<Record>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Record::from_line(line) {
            Ok(r) => out.push(r),
            Err(e) if i + 1 == lines.len() => {
                eprintln!("{}: ignoring torn last line: {e}", path.display())
            }
            Err(e) => return Err(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    Ok(out)
}

/// A view's identity: epoch, coordinator, and the coordinator's incarnation.
pub type ViewKey = (u64, u32, u64);

fn view_key(generation: u64, coordinator: u32, members: &[(u32, u64)]) -> ViewKey {
    let inc = members
        .iter()
        .find(|(id, _)| *id == coordinator)
        .map_or(0, |(_, inc)| *inc);
    (generation, coordinator, inc)
}

/// A violation, with the records that show it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What went wrong, in a sentence.
    pub message: String,
    /// The records involved.
    pub records: Vec<Record>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} violated: {}", self.invariant, self.message)?;
        for r in &self.records {
            writeln!(f, "    {}", r.to_line())?;
        }
        Ok(())
    }
}

/// M1: all records of one view carry the same member list.
pub fn agreement(h: &[Record]) -> Result<(), Violation> {
    let mut seen: BTreeMap<ViewKey, &Record> = BTreeMap::new();
    for r in h {
        if let Event::View {
            generation,
            coordinator,
            members,
        } = &r.event
        {
            let key = view_key(*generation, *coordinator, members);
            match seen.get(&key) {
                Some(first) => {
                    if let Event::View { members: m0, .. } = &first.event {
                        if m0 != members {
                            return Err(Violation {
                                invariant: "M1",
                                message: format!("view {key:?} has two member lists"),
                                records: vec![(*first).clone(), r.clone()],
                            });
                        }
                    }
                }
                None => {
                    seen.insert(key, r);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u64, node: u32, event: Event) -> Record {
        Record {
            t_ns: t,
            node,
            incarnation: 1,
            daemon: "cmand".into(),
            event,
        }
    }
    fn view(g: u64, c: u32, m: &[u32]) -> Event {
        Event::View {
            generation: g,
            coordinator: c,
            members: m.iter().map(|i| (*i, 1)).collect(),
        }
    }
    #[test]
    fn two_member_lists_for_one_view_break_agreement() {
        let h = vec![
            rec(1, 1, view(2, 1, &[1, 2])),
            rec(2, 2, view(2, 1, &[1, 2])),
        ];
        assert!(agreement(&h).is_ok());
        let bad = vec![
            rec(1, 1, view(2, 1, &[1, 2])),
            rec(2, 2, view(2, 1, &[1, 2, 3])),
        ];
        assert_eq!(agreement(&bad).unwrap_err().invariant, "M1");
    }
}
