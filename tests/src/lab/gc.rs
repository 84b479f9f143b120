//! `clusterlab gc`: tearing down labs whose owner died.
//!
//! A lab that belongs to a process (a test, `clusterlab up --hold`) is listed in
//! [`LABS_REGISTRY_DIR`] by directory. When that process is gone (SIGKILLed mid-test, say),
//! [`gc`] stops the lab's daemons and switch and removes its network, as `down` would; then
//! `netns::gc` removes lab networks no live lab accounts for.

use super::down_dir;
use crate::netns;
use crate::procs::ProcRecord;
use crate::state::LabState;
use std::path::{Path, PathBuf};

/// Where labs that belong to a process are listed (a tmpfs, like the namespaces).
pub const LABS_REGISTRY_DIR: &str = "/run/clusterlab/labs";

fn entry(dir: &Path) -> PathBuf {
    let hash = netns::lab_hash(&dir.display().to_string());
    Path::new(LABS_REGISTRY_DIR).join(format!("{hash}.dir"))
}

/// Lists an owned lab. Best effort: without root there is no registry (and no network to
/// leak), and a lab missing here is still stopped by its guard or `down`.
pub(super) fn register(dir: &Path) {
    if std::fs::create_dir_all(LABS_REGISTRY_DIR).is_ok() {
        let _ = std::fs::write(entry(dir), dir.display().to_string());
    }
}

/// Removes a lab's entry (none is fine).
pub(super) fn unregister(dir: &Path) {
    let _ = std::fs::remove_file(entry(dir));
}

/// What [`gc`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Lab directories whose owner was gone, torn down.
    pub labs: Vec<PathBuf>,
    /// Namespaces, veths and bridges that `netns::gc` removed.
    pub names: Vec<String>,
}

/// Tears down every listed lab whose owning process is gone (daemons and switch stopped,
/// network removed), then removes the networks of dead labs (`netns::gc`, when this
/// process can: root with `ip` and `nft`). Live labs are left alone. Goes on after a
/// failure and returns the first.
pub fn gc() -> Result<GcReport, String> {
    let mut report = GcReport::default();
    let mut first_err = None;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(LABS_REGISTRY_DIR)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let dir = PathBuf::from(text.trim());
        match LabState::load(&dir) {
            Ok(lab) if lab.owner.as_ref().is_some_and(ProcRecord::alive) => {}
            Ok(lab) if lab.owner.is_none() => {
                let _ = std::fs::remove_file(&path);
            }
            Ok(_) => match down_dir(&dir) {
                Ok(()) => report.labs.push(dir),
                Err(e) => {
                    first_err.get_or_insert(format!("{}: {e}", dir.display()));
                }
            },
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if netns::prerequisites().is_ok() {
        match netns::gc() {
            Ok(names) => report.names = names,
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(report),
    }
}
