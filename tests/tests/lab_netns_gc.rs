//! Leftovers of dead labs: a lab whose creator (`clusterlab up --hold`) was SIGKILLed keeps
//! running, and `clusterlab gc` tears it down (daemons, switch, namespaces); a held lab
//! whose creator is told to stop (SIGTERM) tears itself down. Root only (skips with a
//! reason; fails under CI=true).

use clusterlab::lab::{self, netns_test_ready, simple_config, test_lab_dir};
use clusterlab::procs::ProcRecord;
use clusterlab::state::LabState;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Tears the lab down if the test ends early, so a failure leaves nothing behind.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if self.0.join("lab.json").exists() {
            let _ = lab::down_dir(&self.0);
        }
    }
}

/// Starts `clusterlab up --netns --hold` and returns once it holds the lab.
fn held_lab(dir: &Path, conf: &Path) -> Child {
    let mut child = Command::new(lab::default_bin_dir().join("clusterlab"))
        .args(["up", "--netns", "--hold", "--config"])
        .arg(conf)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn clusterlab up");
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        if line
            .expect("read clusterlab's output")
            .starts_with("holding the lab")
        {
            return child;
        }
    }
    let status = child.wait().unwrap();
    panic!("clusterlab up --hold ended ({status}) without holding the lab");
}

/// Every process and namespace of the lab, for checks.
fn lab_parts(dir: &Path) -> (Vec<ProcRecord>, Vec<String>) {
    let lab = LabState::load(dir).unwrap();
    let mut procs: Vec<ProcRecord> = lab
        .nodes
        .iter()
        .flat_map(|n| n.daemons.values().cloned())
        .collect();
    procs.extend(lab.power_switch.and_then(|s| s.process));
    let ns = lab.nodes.iter().filter_map(|n| n.netns.clone()).collect();
    (procs, ns)
}

fn gone(procs: &[ProcRecord], ns: &[String]) -> bool {
    procs.iter().all(|p| !p.alive()) && ns.iter().all(|n| !Path::new("/run/netns").join(n).exists())
}

/// A held lab's creator, stopped with SIGTERM (it then tears its lab down) if a test fails
/// before it meant to kill it.
struct HeldLab(Option<std::process::Child>);

impl Drop for HeldLab {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            let _ = c.wait();
        }
    }
}

#[test]
fn gc_tears_down_a_lab_whose_creator_was_sigkilled() {
    if !netns_test_ready("gc_after_sigkill") {
        return;
    }
    let (dir, conf) = test_lab_dir("gckill", &simple_config("gckill", 3, false, 1));
    let _guard = DirGuard(dir.clone());
    let mut held = HeldLab(Some(held_lab(&dir, &conf)));
    let (procs, ns) = lab_parts(&dir);
    assert_eq!(
        (procs.len(), ns.len()),
        (10, 3),
        "cmand, fenced and rgmanagerd on 3 nodes + apcsim, 3 namespaces"
    );
    let mut child = held.0.take().expect("held");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    assert!(
        procs.iter().all(ProcRecord::alive),
        "the lab outlives its creator"
    );
    assert!(ns.iter().all(|n| Path::new("/run/netns").join(n).exists()));

    let out = Command::new(lab::default_bin_dir().join("clusterlab"))
        .arg("gc")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("tore down lab {}", dir.display())),
        "{text}"
    );
    assert!(gone(&procs, &ns), "gc left processes or namespaces");
    assert!(!dir.join("netns.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_held_lab_tears_itself_down_on_sigterm() {
    if !netns_test_ready("hold_sigterm") {
        return;
    }
    let (dir, conf) = test_lab_dir("gcterm", &simple_config("gcterm", 2, true, 1));
    let _guard = DirGuard(dir.clone());
    let mut child = held_lab(&dir, &conf);
    let (procs, ns) = lab_parts(&dir);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "clusterlab up --hold did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gone(&procs, &ns),
        "the held lab left processes or namespaces"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
