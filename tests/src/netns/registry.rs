//! Who owns which lab network: one JSON entry per lab in [`REGISTRY_DIR`], so that [`gc`]
//! can tell a live lab from the leftovers of a dead one.
//!
//! An entry names the lab's network and its owner: the creating process (pid and start
//! time, so a reused pid does not count), or after [`LabNet::persist`] a marker file in the
//! lab directory. A lab is alive while its owner is. Entries are written before anything
//! is created and removed after everything is gone, so a lab-made name (`cl<hash>-...`)
//! without an entry is always a leftover. Creating and collecting hold an exclusive lock
//! on `REGISTRY_DIR/.lock`, so two labs never pick the same subnet and a collection never
//! sees a lab half made.

use super::{parse_name, run, LabNet, NameKind, NetError};
use crate::procs::{self, ProcRecord};
use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the registry lives (a tmpfs: it goes away at reboot, like the namespaces).
pub const REGISTRY_DIR: &str = "/run/clusterlab/netns";

/// One lab's entry.
#[derive(Serialize, Deserialize)]
struct Record {
    net: LabNet,
    creator: Option<ProcRecord>,
    marker: Option<PathBuf>,
}

fn file_err(path: &Path) -> impl FnOnce(io::Error) -> NetError + '_ {
    move |source| NetError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` as JSON to `path` atomically (a temporary file renamed over it).
pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), NetError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| NetError::Parse {
        what: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text + "\n").map_err(file_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(file_err(path))
}

/// Reads a JSON file written by [`write_json`].
pub(super) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, NetError> {
    let text = std::fs::read_to_string(path).map_err(file_err(path))?;
    serde_json::from_str(&text).map_err(|e| NetError::Parse {
        what: path.display().to_string(),
        detail: e.to_string(),
    })
}

fn entry_path(hash: &str) -> PathBuf {
    Path::new(REGISTRY_DIR).join(format!("{hash}.json"))
}

/// The registry's exclusive lock, held until the value is dropped.
fn lock() -> Result<Flock<File>, NetError> {
    let dir = Path::new(REGISTRY_DIR);
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(file_err(&path))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| NetError::File {
        path,
        source: io::Error::from(errno),
    })
}

/// This process, as a registry owner.
fn me() -> ProcRecord {
    let pid = std::process::id() as i32;
    ProcRecord {
        pid,
        start_time: procs::start_time(pid).unwrap_or(0),
    }
}

fn owner_alive(rec: &Record) -> bool {
    rec.creator.as_ref().is_some_and(ProcRecord::alive)
        || rec
            .marker
            .as_ref()
            .is_some_and(|m| read_json::<LabNet>(m).is_ok_and(|n| n.hash == rec.net.hash))
}

/// Every entry by hash; an unreadable one comes back as its error.
fn entries() -> BTreeMap<String, Result<Record, NetError>> {
    let Ok(dir) = std::fs::read_dir(REGISTRY_DIR) else {
        return BTreeMap::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let hash = name.strip_suffix(".json")?.to_string();
            Some((hash, read_json(&e.path())))
        })
        .collect()
}

/// Names in a directory listing (the named namespaces, or the root namespace's links).
fn names_in(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The first subnet octet from `start` on (wrapping within 1..=254) that is not `used`.
fn choose_subnet(start: u8, used: &BTreeSet<u8>) -> Option<u8> {
    let start = u32::from(start.clamp(1, 254));
    (0..254u32)
        .map(|i| ((start - 1 + i) % 254 + 1) as u8)
        .find(|x| !used.contains(x))
}

/// The octets X whose 10.250.X.0/24 overlaps `addr/prefix`.
fn overlapping(addr: Ipv4Addr, prefix: u8) -> impl Iterator<Item = u8> {
    let p = u32::from(prefix.min(24));
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    let a = u32::from(addr) & mask;
    (1..=254u8).filter(move |x| u32::from(Ipv4Addr::new(10, 250, *x, 0)) & mask == a)
}

/// Subnets that addresses of the root namespace already cover (`ip -4 -o addr show`).
fn host_subnets() -> BTreeSet<u8> {
    let Ok(out) = run(Command::new("ip").args(["-4", "-o", "addr", "show"]), None) else {
        return BTreeSet::new();
    };
    parse_addr_show(&out)
}

fn parse_addr_show(out: &str) -> BTreeSet<u8> {
    let mut used = BTreeSet::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        if words.by_ref().any(|w| w == "inet") {
            if let Some((a, p)) = words.next().and_then(|cidr| cidr.split_once('/')) {
                if let (Ok(a), Ok(p)) = (a.parse(), p.parse()) {
                    used.extend(overlapping(a, p));
                }
            }
        }
    }
    used
}

/// Collects leftovers (the registry lock held): removes the networks of entries whose owner
/// is gone, then lab-made names that no entry accounts for. Returns the names removed.
fn collect() -> (Vec<String>, Option<NetError>) {
    let mut removed = Vec::new();
    let mut first_err = None;
    let mut accounted = BTreeSet::new();
    for (hash, entry) in entries() {
        match entry {
            Ok(rec) if !owner_alive(&rec) => match rec.net.remove_resources() {
                Ok(report) => {
                    removed.extend(report.removed);
                    if let Err(e) = remove_if_present(&entry_path(&hash)) {
                        first_err.get_or_insert(e);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                    accounted.insert(hash);
                }
            },
            // A live lab, or an entry this version cannot read: leave it alone.
            _ => {
                accounted.insert(hash);
            }
        }
    }
    let mut orphans: Vec<(NameKind, String)> = Vec::new();
    for (dir, kinds) in [
        ("/run/netns", &[NameKind::Ns][..]),
        ("/sys/class/net", &[NameKind::Veth, NameKind::Bridge][..]),
    ] {
        for name in names_in(dir) {
            if let Some((hash, kind)) = parse_name(&name) {
                if kinds.contains(&kind) && !accounted.contains(hash) {
                    orphans.push((kind, name));
                }
            }
        }
    }
    orphans.sort(); // veths, then namespaces, then bridges
    for (kind, name) in orphans {
        let args: &[&str] = match kind {
            NameKind::Ns => &["netns", "del"],
            NameKind::Veth | NameKind::Bridge => &["link", "del"],
        };
        match run(Command::new("ip").args(args).arg(&name), None) {
            Ok(_) => removed.push(name),
            // Deleting a namespace removes its veth pair: the root end may be gone already.
            Err(_)
                if kind == NameKind::Veth && !Path::new("/sys/class/net").join(&name).exists() => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    (removed, first_err)
}

/// Removes the leftovers of every lab whose owner is gone (its creating process died, or
/// its persisted marker was removed) and every lab-made name no registry entry accounts
/// for. Live labs, this process's and other processes', are left alone. Returns the names
/// of the namespaces, veths and bridges removed; an error if any removal failed (the
/// others were still done).
pub fn gc() -> Result<Vec<String>, NetError> {
    let _lock = lock()?;
    match collect() {
        (removed, None) => Ok(removed),
        (_, Some(e)) => Err(e),
    }
}

/// Collects leftovers, picks a subnet for a new lab and writes its entry (owned by this
/// process) before anything is created.
pub(super) fn reserve(
    hash: &str,
    start: u8,
    plan: impl FnOnce(u8) -> LabNet,
) -> Result<LabNet, NetError> {
    let _lock = lock()?;
    let _ = collect(); // a failed removal elsewhere does not stop a new lab
    let mut used = host_subnets();
    for (h, entry) in entries() {
        match entry {
            Ok(rec) if h == hash => {
                return Err(NetError::InUse {
                    hash: h,
                    owner: rec.net.lab_id().to_string(),
                })
            }
            Ok(rec) => {
                used.insert(rec.net.subnet_octet());
            }
            Err(_) if h == hash => {
                return Err(NetError::InUse {
                    hash: h,
                    owner: "(an unreadable registry entry)".into(),
                })
            }
            Err(_) => {}
        }
    }
    let subnet = choose_subnet(start, &used).ok_or(NetError::NoFreeSubnet)?;
    let net = plan(subnet);
    let rec = Record {
        net: net.clone(),
        creator: Some(me()),
        marker: None,
    };
    write_json(&entry_path(hash), &rec)?;
    Ok(net)
}

/// Hands a lab's ownership from its creator to the marker file `marker`.
pub(super) fn set_marker(hash: &str, marker: &Path) -> Result<(), NetError> {
    let _lock = lock()?;
    let path = entry_path(hash);
    let mut rec: Record = read_json(&path)?;
    rec.creator = None;
    rec.marker = Some(marker.to_path_buf());
    write_json(&path, &rec)
}

/// Removes a file; one that is already gone is fine.
fn remove_if_present(path: &Path) -> Result<(), NetError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(file_err(path)(e)),
        _ => Ok(()),
    }
}

/// Removes a lab's entry, then its marker (if the marker still names this lab). The entry
/// goes first: a marker without an entry means nothing to a collection. A missing entry is
/// fine.
pub(super) fn forget(hash: &str) -> Result<(), NetError> {
    let path = entry_path(hash);
    let marker = read_json::<Record>(&path).ok().and_then(|rec| rec.marker);
    remove_if_present(&path)?;
    match marker {
        Some(m) if read_json::<LabNet>(&m).is_ok_and(|n| n.hash() == hash) => remove_if_present(&m),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subnets_covered_by_host_addresses_are_used() {
        let out = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                   4: eth0    inet 10.250.7.9/24 brd 10.250.7.255 scope global eth0\n\
                   5: br0    inet 10.250.16.1/20 scope global br0\n\
                   6: x    inet 192.168.1.2/16 scope global x\n";
        let used = parse_addr_show(out);
        let want: BTreeSet<u8> = [7].into_iter().chain(16..=31).collect();
        assert_eq!(used, want);
    }

    #[test]
    fn a_whole_10_slash_8_covers_every_subnet() {
        assert_eq!(overlapping("10.1.2.3".parse().unwrap(), 8).count(), 254);
        assert_eq!(overlapping("10.251.0.1".parse().unwrap(), 16).count(), 0);
    }

    #[test]
    fn the_subnet_search_wraps_and_fails_only_when_all_are_used() {
        let used: BTreeSet<u8> = [253, 254, 1].into_iter().collect();
        assert_eq!(choose_subnet(253, &used), Some(2));
        let all: BTreeSet<u8> = (1..=254).collect();
        assert_eq!(choose_subnet(5, &all), None);
    }

    proptest! {
        #[test]
        fn a_chosen_subnet_is_free_and_in_range(start in any::<u8>(), used in proptest::collection::btree_set(1u8..=254, 0..254)) {
            match choose_subnet(start, &used) {
                Some(x) => prop_assert!((1..=254).contains(&x) && !used.contains(&x)),
                None => prop_assert_eq!(used.len(), 254),
            }
        }
    }
}
