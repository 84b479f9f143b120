//! Building and running a lab: `up`, starting and stopping a node's daemons, the
//! environment a node's commands run in, and waiting for the cluster to settle.
//!
//! Loopback mode (this file): every node gets its own address in 127.0.0.0/8, chosen per
//! lab directory so that several labs (parallel tests) never share an address:port. All
//! of 127/8 reaches the loopback interface, so no setup and no root is needed.

use crate::procs::{self, ProcRecord};
use crate::state::{LabNode, LabState};
use libcluster::config;
use libcluster::ipc::cman::{CmanRequest, CmanResponse, CmanStatus, DAEMON};
use libcluster::wire::{self, ClusterKey};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The daemons every lab node runs, in start order. Grows as the project grows.
pub const DAEMONS: &[&str] = &["cmand"];

/// How `up` was asked to build the lab.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// The cluster.conf to build from.
    pub config: PathBuf,
    /// The lab directory (created if missing).
    pub dir: PathBuf,
    /// Where the project's binaries are (default: beside the running executable).
    pub bin_dir: PathBuf,
    /// Start cmand with `--realtime`.
    pub realtime: bool,
    /// How long to wait for one quorate view of every node.
    pub timeout: Duration,
}

/// The directory of the running executable's siblings: where cargo put the other binaries.
/// A test binary lives in `target/<profile>/deps`, so its parent is tried too.
pub fn default_bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.join("cmand").exists() || !dir.ends_with("deps") {
        dir
    } else {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    }
}

/// The 127.A.B.0/24 block a lab directory uses: A in 1..=254, B in 0..=255, from an FNV-1a
/// hash of the directory's path.
pub fn loopback_block(dir: &Path) -> (u8, u8) {
    let mut h: u32 = 0x811c_9dc5;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    ((h % 254 + 1) as u8, (h >> 8) as u8)
}

/// Builds the lab directory and starts every node; returns once all nodes are in one
/// quorate view, or an error with the daemons' last log lines.
pub fn up(opts: &UpOptions) -> Result<LabState, String> {
    let parsed = config::load(&opts.config).map_err(|d| d.to_string())?;
    let conf = &parsed.config;
    std::fs::create_dir_all(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
    let dir = opts
        .dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", opts.dir.display()))?;
    if let Ok(old) = LabState::load(&dir) {
        if old
            .nodes
            .iter()
            .any(|n| n.daemons.values().any(ProcRecord::alive))
        {
            return Err(format!(
                "a lab is already running in {}; run `clusterlab down --dir {}` first",
                dir.display(),
                dir.display()
            ));
        }
    }
    let (a, b) = loopback_block(&dir);
    let mut nodes = Vec::new();
    let mut sorted: Vec<_> = conf.clusternodes.iter().collect();
    sorted.sort_by_key(|n| n.nodeid);
    for n in sorted {
        let id = n.nodeid.0;
        if !(1..=254).contains(&id) {
            return Err(format!(
                "node {} has id {id}: loopback mode supports node ids 1..254",
                n.name
            ));
        }
        let node_dir = dir.join("nodes").join(&n.name);
        std::fs::create_dir_all(node_dir.join("run"))
            .map_err(|e| format!("{}: {e}", node_dir.display()))?;
        nodes.push(LabNode {
            name: n.name.clone(),
            nodeid: id,
            address: format!("127.{a}.{b}.{id}"),
            dir: node_dir,
            daemons: BTreeMap::new(),
        });
    }
    let lab = LabState {
        dir: dir.clone(),
        cluster_name: conf.name.clone(),
        config_source: opts.config.canonicalize().unwrap_or(opts.config.clone()),
        bin_dir: opts.bin_dir.clone(),
        realtime: opts.realtime,
        nodes,
    };
    std::fs::create_dir_all(lab.history_dir()).map_err(|e| e.to_string())?;
    write_key(&lab.key_path())?;
    let hosts: String = lab
        .nodes
        .iter()
        .map(|n| format!("{} {}\n", n.address, n.name))
        .collect();
    std::fs::write(lab.hosts_path(), hosts).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&opts.config).map_err(|e| e.to_string())?;
    for n in &lab.nodes {
        std::fs::write(n.config_path(), &text).map_err(|e| e.to_string())?;
    }
    let mut lab = lab;
    lab.save().map_err(|e| e.to_string())?;
    for i in 0..lab.nodes.len() {
        let name = lab.nodes[i].name.clone();
        start_node(&mut lab, &name)?;
    }
    let all: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
    wait_for_view(&lab, &all, &all, true, opts.timeout)?;
    Ok(lab)
}

/// A new 64-byte cluster key from the kernel's random source, unless one exists.
fn write_key(path: &Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let mut bytes = vec![0u8; 64];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let key = ClusterKey::from_bytes(bytes).map_err(|e| e.to_string())?;
    wire::write_key_file(path, &key).map_err(|e| e.to_string())
}

/// The environment a command of `node` runs in: its runtime dir, config, name, the lab's
/// hosts file and key, and the project's binaries first on PATH.
pub fn node_env(lab: &LabState, node: &LabNode) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_default();
    vec![
        (
            "CLUSTER_RUNTIME_DIR".into(),
            node.runtime_dir().display().to_string(),
        ),
        (
            "CLUSTER_CONF".into(),
            node.config_path().display().to_string(),
        ),
        ("CLUSTER_NODE_NAME".into(), node.name.clone()),
        (
            "CLUSTER_HOSTS".into(),
            lab.hosts_path().display().to_string(),
        ),
        (
            "CLUSTER_KEYFILE".into(),
            lab.key_path().display().to_string(),
        ),
        (
            "CLUSTER_HISTORY".into(),
            lab.history_dir()
                .join(format!("{}.jsonl", node.name))
                .display()
                .to_string(),
        ),
        ("PATH".into(), format!("{}:{path}", lab.bin_dir.display())),
    ]
}

/// Starts the daemons of `node` that are not running (a fresh boot: new incarnations).
pub fn start_node(lab: &mut LabState, node: &str) -> Result<(), String> {
    let snapshot = lab.clone();
    let n = lab
        .node_mut(node)
        .ok_or_else(|| format!("no node {node} in this lab"))?;
    for daemon in DAEMONS {
        if n.daemons.get(*daemon).is_some_and(ProcRecord::alive) {
            continue;
        }
        let mut cmd = Command::new(snapshot.bin_dir.join(daemon));
        cmd.envs(node_env(&snapshot, n));
        cmd.arg("-f");
        if snapshot.realtime && *daemon == "cmand" {
            cmd.arg("--realtime");
        }
        let log = n.log_path(daemon);
        let rec = procs::spawn_detached(cmd, &log)
            .map_err(|e| format!("starting {daemon} on {}: {e}", n.name))?;
        n.daemons.insert(daemon.to_string(), rec);
    }
    lab.save().map_err(|e| e.to_string())
}

/// Stops (SIGTERM, then SIGKILL) or kills (SIGKILL) every daemon of `node`.
pub fn stop_node(lab: &mut LabState, node: &str, kill: bool) -> Result<(), String> {
    let n = lab
        .node_mut(node)
        .ok_or_else(|| format!("no node {node} in this lab"))?;
    for rec in n.daemons.values() {
        rec.signal(nix::sys::signal::Signal::SIGCONT);
        if kill {
            rec.kill_and_wait();
        } else {
            rec.stop(Duration::from_secs(10));
        }
    }
    n.daemons.clear();
    lab.save().map_err(|e| e.to_string())
}

/// Stops every node.
pub fn down(lab: &mut LabState) -> Result<(), String> {
    let names: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
    for n in names {
        stop_node(lab, &n, false)?;
    }
    Ok(())
}

/// cmand's status on `node`, over its IPC socket.
pub fn cman_status(lab: &LabState, node: &str) -> Result<CmanStatus, String> {
    let n = lab
        .node(node)
        .ok_or_else(|| format!("no node {node} in this lab"))?;
    let sock = clusterio::socket_path(&n.runtime_dir(), DAEMON);
    match clusterio::call_blocking::<CmanRequest, CmanResponse>(
        &sock,
        &CmanRequest::Status,
        Duration::from_secs(2),
    ) {
        Ok(CmanResponse::Status(s)) => Ok(*s),
        Ok(other) => Err(format!("{node}: unexpected answer {other:?}")),
        Err(e) => Err(format!("{node}: {e}")),
    }
}

/// Waits until every node of `observers` has installed the same view whose members are
/// exactly `members`, and is quorate (or not) as `quorate` says. On timeout the error
/// holds what each observer last reported and the tail of its log.
pub fn wait_for_view(
    lab: &LabState,
    observers: &[String],
    members: &[String],
    quorate: bool,
    timeout: Duration,
) -> Result<(), String> {
    let mut want: Vec<u32> = members
        .iter()
        .filter_map(|m| lab.node(m).map(|n| n.nodeid))
        .collect();
    want.sort_unstable();
    let deadline = Instant::now() + timeout;
    loop {
        let seen: Vec<Result<CmanStatus, String>> =
            observers.iter().map(|o| cman_status(lab, o)).collect();
        let settled = seen.iter().all(|s| {
            s.as_ref()
                .is_ok_and(|s| s.members == want && s.quorate == quorate)
        }) && seen.windows(2).all(|w| match (&w[0], &w[1]) {
            (Ok(a), Ok(b)) => (a.generation, a.coordinator) == (b.generation, b.coordinator),
            _ => false,
        });
        if settled {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let mut msg =
                format!("no agreed view of {want:?} (quorate={quorate}) after {timeout:?}:\n");
            for (o, s) in observers.iter().zip(&seen) {
                match s {
                    Ok(s) => {
                        msg += &format!(
                            "  {o}: generation {} coordinator {:?} members {:?} quorate {}\n",
                            s.generation, s.coordinator, s.members, s.quorate
                        )
                    }
                    Err(e) => msg += &format!("  {o}: {e}\n"),
                }
                if let Some(n) = lab.node(o) {
                    msg += &format!(
                        "  last lines of {}:\n{}\n",
                        n.log_path("cmand").display(),
                        procs::tail(&n.log_path("cmand"), 8)
                    );
                }
            }
            return Err(msg);
        }
        sleep(Duration::from_millis(50));
    }
}

/// A lab that is torn down when dropped, for tests: even a failing test leaves no process.
pub struct LabGuard {
    /// The lab.
    pub lab: LabState,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = down(&mut self.lab);
    }
}

/// A cluster.conf of `n` nodes named n1..nN (ids 1..N, one vote each), for tests and
/// benchmarks. `two_node` sets `<cman two_node="1" expected_votes="1">` (n must be 2).
pub fn simple_config(cluster: &str, n: u32, two_node: bool, version: u64) -> String {
    let cman = if two_node {
        "  <cman two_node=\"1\" expected_votes=\"1\"/>\n".to_string()
    } else {
        "  <cman/>\n".to_string()
    };
    let nodes: String = (1..=n)
        .map(|i| format!("    <clusternode name=\"n{i}\" nodeid=\"{i}\" votes=\"1\"/>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\n<cluster name=\"{cluster}\" config_version=\"{version}\">\n{cman}  <clusternodes>\n{nodes}  </clusternodes>\n</cluster>\n"
    )
}

/// For tests: a fresh lab directory under the system temp dir, unique per process and
/// name, and a cluster.conf written into it.
pub fn test_lab_dir(name: &str, conf_text: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("clab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create lab dir");
    let conf = dir.join("cluster.conf");
    std::fs::write(&conf, conf_text).expect("write config");
    (dir, conf)
}

/// For tests: whether the project's daemons are built beside this test binary. When not,
/// prints why and the command to fix it; in CI (CI=true) a missing binary is a failure.
pub fn binaries_present() -> bool {
    let bin = default_bin_dir().join("cmand");
    if bin.exists() {
        return true;
    }
    let msg = format!(
        "{} is missing: run the tests with `cargo test --workspace` so the daemons are built",
        bin.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

/// For tests: `up` with generous bounds, wrapped in a guard that stops the lab on drop.
pub fn test_up(dir: &Path, conf: &Path, realtime: bool) -> LabGuard {
    let opts = UpOptions {
        config: conf.to_path_buf(),
        dir: dir.to_path_buf(),
        bin_dir: default_bin_dir(),
        realtime,
        timeout: Duration::from_secs(60),
    };
    match up(&opts) {
        Ok(lab) => LabGuard { lab },
        Err(e) => {
            if let Ok(mut lab) = LabState::load(dir) {
                let _ = down(&mut lab);
            }
            panic!("lab did not come up: {e}");
        }
    }
}
