//! Building and running a lab: `up`, starting and stopping a node's daemons, the
//! environment a node's commands run in, and waiting for the cluster to settle.
//!
//! Two network modes (docs/lab.md):
//!
//! - netns (the default as root): every node in its own network namespace on a private
//!   bridge (`crate::netns`), its daemons started with `ip netns exec`, partitions as
//!   nftables rules ([`faults::network`]).
//! - loopback: every node gets its own address in 127.0.0.0/8, chosen per lab directory so
//!   that several labs (parallel tests) never share an address:port. All of 127/8 reaches
//!   the loopback interface, so no setup and no root is needed.
//!
//! Both run the APC switch simulator (`crate::power`) with one outlet per node, and rewrite
//! each node's cluster.conf ([`labconf`]) so that nothing in it points outside the lab.
//! Changes to `DIR/lab.json` happen under the lab's lock ([`LabState::update`]); the
//! functions that take `&mut LabState` reload it from disk first, since the power hook (run
//! by the switch, in another process) changes it too.

pub mod faults;
mod gc;
pub mod labconf;

pub use gc::{gc, GcReport, LABS_REGISTRY_DIR};

use crate::netns::{self, LabNet};
use crate::power;
use crate::procs::{self, ProcRecord};
use crate::state::{self, LabMode, LabNode, LabState};
use libcluster::config;
use libcluster::ipc::cman::{CmanRequest, CmanResponse, CmanStatus, DAEMON};
use libcluster::wire::{self, ClusterKey};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Which daemons a lab's nodes run, in start order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stack {
    /// cmand only: membership, quorum and group messaging (the membership tests).
    #[default]
    Membership,
    /// cmand and fenced: nodes that fail are fenced through the lab's power switch, and
    /// nodes without a `<fence>` section get the lab's APC outlet (method 1) and manual
    /// fencing (method 2) wired into their copy of cluster.conf.
    Fencing,
    /// cmand, fenced and rgmanagerd: the whole product. Every `<vm>` gets a small QEMU
    /// definition in the lab's shared `vms/` directory (its `path` points there).
    Full,
}

impl Stack {
    /// The daemons, in start order.
    pub fn daemons(self) -> &'static [&'static str] {
        match self {
            Stack::Membership => &["cmand"],
            Stack::Fencing => &["cmand", "fenced"],
            Stack::Full => &["cmand", "fenced", "rgmanagerd"],
        }
    }

    /// Whether the lab wires fencing into the nodes' configuration.
    pub fn fencing(self) -> bool {
        self != Stack::Membership
    }
}

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

/// Which network a lab is built on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// Network namespaces when this process can make them (root, `ip`, `nft`), else
    /// loopback with a printed reason.
    #[default]
    Auto,
    /// Loopback addresses, even as root.
    Loopback,
    /// Network namespaces, or an error saying why not.
    Netns,
}

/// Lab options beyond [`UpOptions`].
#[derive(Clone, Debug, Default)]
pub struct LabOptions {
    /// Which network to build on.
    pub network: Network,
    /// The lab belongs to this process: once the process is gone, `clusterlab gc` tears
    /// the lab down (tests and `up --hold` set this; a plain `clusterlab up` lab lives
    /// until `down`).
    pub owned: bool,
    /// Which daemons the nodes run.
    pub stack: Stack,
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

/// The mode a lab gets for `network`, with the reason when `Auto` falls back to loopback.
pub fn choose_mode(network: Network) -> Result<(LabMode, Option<String>), String> {
    match (network, netns::prerequisites()) {
        (Network::Loopback, _) => Ok((LabMode::Loopback, None)),
        (_, Ok(())) => Ok((LabMode::Netns, None)),
        (Network::Auto, Err(why)) => Ok((LabMode::Loopback, Some(why))),
        (Network::Netns, Err(why)) => Err(format!("cannot build a netns lab: {why}")),
    }
}

/// Builds the lab directory and starts every node; returns once all nodes are in one
/// quorate view, or an error with the daemons' last log lines. The network is chosen as
/// [`Network::Auto`] says; see [`up_with`].
pub fn up(opts: &UpOptions) -> Result<LabState, String> {
    up_with(opts, &LabOptions::default())
}

/// Builds the lab: the network (namespaces or loopback addresses), the nodes' directories
/// with their rewritten cluster.conf, the APC switch simulator, then every node's daemons;
/// returns once all nodes are in one quorate view. On failure everything started is
/// stopped again (and the network removed) before the error is returned.
pub fn up_with(opts: &UpOptions, lab_opts: &LabOptions) -> Result<LabState, String> {
    let parsed = config::load(&opts.config).map_err(|d| d.to_string())?;
    let conf = parsed.config;
    std::fs::create_dir_all(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
    let dir = opts
        .dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", opts.dir.display()))?;
    let (mode, fallback) = choose_mode(lab_opts.network)?;
    if let Some(why) = fallback {
        eprintln!("clusterlab: loopback mode: {why}");
    }
    let lock = state::lock(&dir).map_err(|e| e.to_string())?;
    clear_dead_lab(&dir)?;
    let started = build(opts, lab_opts, &conf, &dir, mode).and_then(|mut lab| {
        let r = start_all(&mut lab, &conf);
        r.map(|()| lab)
    });
    drop(lock);
    let result = started.and_then(|lab| {
        let all: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
        wait_for_view(&lab, &all, &all, true, opts.timeout).map(|()| lab)
    });
    if result.is_err() && dir.join(state::STATE_FILE).exists() {
        let _ = down_dir(&dir);
    } else if result.is_err() && dir.join(netns::MARKER_FILE).exists() {
        if let Ok(net) = LabNet::load(&dir) {
            let _ = net.destroy();
        }
    }
    result
}

/// Refuses a directory whose lab still runs; removes the network of one that died
/// without `down`.
fn clear_dead_lab(dir: &Path) -> Result<(), String> {
    if let Ok(old) = LabState::load(dir) {
        let switch_alive = old
            .power_switch
            .as_ref()
            .and_then(|s| s.process.as_ref())
            .is_some_and(ProcRecord::alive);
        if switch_alive
            || old
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
    if dir.join(netns::MARKER_FILE).exists() {
        let net = LabNet::load(dir).map_err(|e| e.to_string())?;
        net.destroy()
            .map_err(|e| format!("removing the old lab network: {e}"))?;
    }
    Ok(())
}

/// Makes the network, the directories, the key and the hosts file, and saves the record.
/// Starts nothing.
fn build(
    opts: &UpOptions,
    lab_opts: &LabOptions,
    conf: &config::ClusterConf,
    dir: &Path,
    mode: LabMode,
) -> Result<LabState, String> {
    let outlets = labconf::node_outlets(conf)?;
    let mut sorted: Vec<_> = conf.clusternodes.iter().collect();
    sorted.sort_by_key(|n| n.nodeid);
    if let Some(n) = sorted.iter().find(|n| !(1..=253).contains(&n.nodeid.0)) {
        return Err(format!(
            "node {} has id {}: a lab supports node ids 1..=253",
            n.name, n.nodeid.0
        ));
    }
    let ids: Vec<u32> = sorted.iter().map(|n| n.nodeid.0).collect();
    let net = match mode {
        LabMode::Netns => {
            let mut net = LabNet::create(&dir.display().to_string(), &ids)
                .map_err(|e| format!("creating the lab network: {e}"))?;
            net.persist(dir)
                .map_err(|e| format!("keeping the lab network: {e}"))?;
            Some(net)
        }
        LabMode::Loopback => None,
    };
    let (a, b) = loopback_block(dir);
    let mut nodes = Vec::new();
    for n in sorted {
        let id = n.nodeid.0;
        let node_dir = dir.join("nodes").join(&n.name);
        std::fs::create_dir_all(node_dir.join("run"))
            .map_err(|e| format!("{}: {e}", node_dir.display()))?;
        let (address, ns) = match &net {
            Some(net) => {
                let node = net.node(id).map_err(|e| e.to_string())?;
                (node.addr.to_string(), Some(node.ns.clone()))
            }
            None => (format!("127.{a}.{b}.{id}"), None),
        };
        nodes.push(LabNode {
            name: n.name.clone(),
            nodeid: id,
            address,
            dir: node_dir,
            netns: ns,
            outlet: outlets.get(&id).copied().unwrap_or(id),
            daemons: BTreeMap::new(),
        });
    }
    let me = std::process::id() as i32;
    let lab = LabState {
        dir: dir.to_path_buf(),
        cluster_name: conf.name.clone(),
        config_source: opts.config.canonicalize().unwrap_or(opts.config.clone()),
        bin_dir: opts.bin_dir.clone(),
        realtime: opts.realtime,
        mode,
        owner: procs::start_time(me)
            .filter(|_| lab_opts.owned)
            .map(|start_time| ProcRecord {
                pid: me,
                start_time,
            }),
        power_switch: None,
        daemons: lab_opts
            .stack
            .daemons()
            .iter()
            .map(|d| d.to_string())
            .collect(),
        nodes,
    };
    lab.save().map_err(|e| e.to_string())?;
    if lab.owner.is_some() {
        gc::register(dir);
    }
    std::fs::create_dir_all(lab.history_dir()).map_err(|e| e.to_string())?;
    write_key(&lab.key_path())?;
    let hosts: String = lab
        .nodes
        .iter()
        .map(|n| format!("{} {}\n", n.address, n.name))
        .collect();
    std::fs::write(lab.hosts_path(), hosts).map_err(|e| e.to_string())?;
    Ok(lab)
}

/// Starts the power switch, writes every node's config (pointing at it, checked to name
/// nothing outside the lab) and starts every node. Saves the record as it goes.
fn start_all(lab: &mut LabState, conf: &config::ClusterConf) -> Result<(), String> {
    if lab.daemons.iter().any(|d| d == "rgmanagerd") {
        let dirs: Vec<PathBuf> = lab.nodes.iter().map(|n| n.runtime_dir()).collect();
        labconf::check_vm_socket_paths(conf, dirs.iter().map(|d| d.as_path()))?;
    }
    let (login, password) = labconf::switch_credentials(conf);
    let switch = power::start_switch(lab, &login, &password);
    lab.save().map_err(|e| e.to_string())?;
    let switch = switch?;
    let host = lab_host_addr(lab)?;
    let mut conf = conf.clone();
    if lab.daemons.iter().any(|d| d == "fenced") {
        let outlets: BTreeMap<u32, u32> = lab.nodes.iter().map(|n| (n.nodeid, n.outlet)).collect();
        labconf::wire_fencing(&mut conf, &outlets);
    }
    if lab.daemons.iter().any(|d| d == "rgmanagerd") {
        let vms = lab.dir.join("vms");
        labconf::write_vm_definitions(&conf, &vms)?;
        labconf::point_vms_at(&mut conf, &vms);
    }
    let text = labconf::lab_config(&conf, &switch, host);
    let subnet = match lab.mode {
        LabMode::Netns => Some(lab_net(lab)?.subnet()),
        LabMode::Loopback => None,
    };
    labconf::check_addresses(&text, subnet)
        .map_err(|e| format!("the lab's copy of {} {e}", lab.config_source.display()))?;
    for n in &lab.nodes {
        std::fs::write(n.config_path(), &text)
            .map_err(|e| format!("{}: {e}", n.config_path().display()))?;
    }
    let names: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
    for name in names {
        let r = start_node_locked(lab, &name);
        lab.save().map_err(|e| e.to_string())?;
        r?;
    }
    Ok(())
}

/// The address of the lab host as the nodes see it: the bridge address in netns mode,
/// 127.0.0.1 in loopback mode.
pub fn lab_host_addr(lab: &LabState) -> Result<Ipv4Addr, String> {
    match lab.mode {
        LabMode::Netns => Ok(lab_net(lab)?.host_addr()),
        LabMode::Loopback => Ok(Ipv4Addr::LOCALHOST),
    }
}

/// A handle on the lab's network; an error saying so in loopback mode.
pub fn lab_net(lab: &LabState) -> Result<LabNet, String> {
    match lab.mode {
        LabMode::Netns => LabNet::load(&lab.dir).map_err(|e| format!("the lab network: {e}")),
        LabMode::Loopback => Err(format!(
            "the lab in {} runs in loopback mode: network faults need a netns lab \
             (`clusterlab up --netns`, as root)",
            lab.dir.display()
        )),
    }
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
        // The lab's guests have no OS to answer ACPI: give up on a graceful stop quickly.
        ("RGMANAGER_STOP_TIMEOUT".into(), "2".into()),
        // A clean stop hands services over within the lab's grace, then stops them.
        ("RGMANAGER_HANDOFF_TIMEOUT".into(), "20".into()),
    ]
}

/// A command that runs `program` as `node`: inside its namespace (netns mode) with its
/// environment ([`node_env`]).
pub fn node_command(
    lab: &LabState,
    node: &LabNode,
    program: impl AsRef<std::ffi::OsStr>,
) -> Command {
    let mut cmd = match &node.netns {
        Some(ns) => netns::ns_command(ns, program),
        None => Command::new(program),
    };
    cmd.envs(node_env(lab, node));
    cmd
}

/// Runs `f` on the record on disk under the lab's lock, then refreshes `lab` from it.
fn locked(
    lab: &mut LabState,
    f: impl FnOnce(&mut LabState) -> Result<(), String>,
) -> Result<(), String> {
    let dir = lab.dir.clone();
    match LabState::update(&dir, f) {
        Ok((new, ())) => {
            *lab = new;
            Ok(())
        }
        Err(e) => {
            if let Ok(new) = LabState::load(&dir) {
                *lab = new;
            }
            Err(e)
        }
    }
}

/// Starts the daemons of `node` that are not running (a fresh boot: new incarnations).
/// `lab` is reloaded from `DIR/lab.json` first, under the lab's lock, and saved after.
pub fn start_node(lab: &mut LabState, node: &str) -> Result<(), String> {
    locked(lab, |l| start_node_locked(l, node))
}

/// [`start_node`] on a record whose lock the caller holds.
pub fn start_node_locked(lab: &mut LabState, node: &str) -> Result<(), String> {
    let snapshot = lab.clone();
    let n = lab
        .node_mut(node)
        .ok_or_else(|| format!("no node {node} in this lab"))?;
    for daemon in &snapshot.daemons {
        if n.daemons.get(daemon).is_some_and(ProcRecord::alive) {
            continue;
        }
        let mut cmd = node_command(&snapshot, n, snapshot.bin_dir.join(daemon));
        if daemon == "cmand" {
            // fenced's -f is post_fail_delay, as the original's; it always stays in front.
            cmd.arg("-f");
        }
        if snapshot.realtime && daemon == "cmand" {
            cmd.arg("--realtime");
        }
        let log = n.log_path(daemon);
        let rec = procs::spawn_detached(cmd, &log)
            .map_err(|e| format!("starting {daemon} on {}: {e}", n.name))?;
        n.daemons.insert(daemon.to_string(), rec);
    }
    Ok(())
}

/// Stops (SIGTERM, then SIGKILL) or kills (SIGKILL) every daemon of `node`. A stop goes in
/// the reverse order of the start, as a host's shutdown does: rgmanagerd first (it hands its
/// services over, within [`HANDOFF_GRACE`]), cmand last. `lab` is reloaded first and saved
/// after, under the lab's lock.
pub fn stop_node(lab: &mut LabState, node: &str, kill: bool) -> Result<(), String> {
    locked(lab, |l| stop_node_locked(l, node, kill))
}

/// [`stop_node`] on a record whose lock the caller holds.
pub fn stop_node_locked(lab: &mut LabState, node: &str, kill: bool) -> Result<(), String> {
    let how = if kill { Stop::Kill } else { Stop::Clean };
    stop_daemons(lab, node, how)
}

/// Stops one daemon of `node` (SIGTERM and its grace, or SIGKILL), leaving the others
/// running: `systemctl stop rgmanagerd` or a crash of that daemon alone. [`start_node`]
/// starts it again.
pub fn stop_daemon(lab: &mut LabState, node: &str, daemon: &str, kill: bool) -> Result<(), String> {
    locked(lab, |l| {
        let n = l
            .node_mut(node)
            .ok_or_else(|| format!("no node {node} in this lab"))?;
        let rec = n
            .daemons
            .remove(daemon)
            .ok_or_else(|| format!("{daemon} does not run on {node}"))?;
        rec.signal(Signal::SIGCONT);
        if kill {
            rec.kill_and_wait();
        } else if daemon == "rgmanagerd" {
            rec.stop(HANDOFF_GRACE);
        } else {
            rec.stop(Duration::from_secs(10));
        }
        Ok(())
    })
}

/// How long a clean stop gives rgmanagerd to hand its services over (live migrations).
pub const HANDOFF_GRACE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGKILL everything (a crash).
    Kill,
    /// SIGTERM in reverse start order (a host's shutdown).
    Clean,
    /// The lab goes away: rgmanagerd is killed (its VMs die with the namespace), the rest
    /// stop cleanly.
    Teardown,
}

fn stop_daemons(lab: &mut LabState, node: &str, how: Stop) -> Result<(), String> {
    let order: Vec<String> = lab.daemons.iter().rev().cloned().collect();
    let n = lab
        .node_mut(node)
        .ok_or_else(|| format!("no node {node} in this lab"))?;
    let mut names: Vec<String> = order
        .into_iter()
        .filter(|d| n.daemons.contains_key(d))
        .collect();
    names.extend(
        n.daemons
            .keys()
            .filter(|d| !names.contains(d))
            .cloned()
            .collect::<Vec<_>>(),
    );
    for name in names {
        let Some(rec) = n.daemons.get(&name) else {
            continue;
        };
        rec.signal(Signal::SIGCONT);
        match (how, name.as_str()) {
            (Stop::Kill, _) | (Stop::Teardown, "rgmanagerd") => rec.kill_and_wait(),
            (Stop::Clean, "rgmanagerd") => rec.stop(HANDOFF_GRACE),
            _ => rec.stop(Duration::from_secs(10)),
        }
    }
    n.daemons.clear();
    Ok(())
}

/// A power cut of `node`, on a record whose lock the caller holds: SIGKILL to every
/// recorded daemon's process group and, in netns mode, to every process left in the node's
/// namespace (whatever its daemons started). Returns once they are gone (bounded).
pub fn power_off_locked(lab: &mut LabState, node: &str) -> Result<(), String> {
    let n = lab
        .node_mut(node)
        .ok_or_else(|| format!("no node {node} in this lab"))?;
    for rec in n.daemons.values().filter(|r| r.alive()) {
        let _ = killpg(Pid::from_raw(rec.pid), Signal::SIGKILL);
    }
    for rec in n.daemons.values() {
        rec.kill_and_wait();
    }
    n.daemons.clear();
    if let Some(ns) = &n.netns {
        kill_namespace(ns);
    }
    Ok(())
}

/// SIGKILLs every process inside namespace `ns` until none is left (bounded).
/// Everything in a node's namespace belongs to that node.
fn kill_namespace(ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<i32> = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        sleep(Duration::from_millis(20));
    }
}

/// Stops every node and the power switch and removes the lab network. `lab` is reloaded
/// from disk first (under the lab's lock) and saved after. Removes nothing else: the lab
/// directory stays, with its logs and histories.
pub fn down(lab: &mut LabState) -> Result<(), String> {
    if lab.dir.join(state::STATE_FILE).exists() {
        locked(lab, teardown_locked)
    } else {
        // The directory is gone (a test removed it before its guard dropped): stop what
        // this record knows.
        teardown_locked(lab)
    }
}

/// [`down`] for a lab directory.
pub fn down_dir(dir: &Path) -> Result<(), String> {
    LabState::update(dir, teardown_locked).map(drop)
}

/// Stops everything the lab started and removes its network; goes on after a failure and
/// returns the first.
fn teardown_locked(lab: &mut LabState) -> Result<(), String> {
    let mut first_err = None;
    let names: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
    for name in &names {
        if let Err(e) = stop_daemons(lab, name, Stop::Teardown) {
            first_err.get_or_insert(e);
        }
    }
    if let Some(rec) = lab.power_switch.as_mut().and_then(|s| s.process.take()) {
        rec.stop(Duration::from_secs(5));
    }
    for ns in lab.nodes.iter().filter_map(|n| n.netns.as_deref()) {
        kill_namespace(ns);
    }
    if lab.dir.join(netns::MARKER_FILE).exists() {
        match LabNet::load(&lab.dir).map(LabNet::destroy) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) | Err(e) => {
                first_err.get_or_insert(format!("removing the lab network: {e}"));
            }
        }
    } else if lab.mode == LabMode::Netns {
        // Without its marker the network counts as a dead lab's leftover: collect it.
        if let Err(e) = netns::gc() {
            first_err.get_or_insert(format!("removing the lab network: {e}"));
        }
    }
    gc::unregister(&lab.dir);
    lab.owner = None;
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
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

/// A lab that is torn down when dropped, for tests: even a failing test leaves no process
/// and no network behind.
pub struct LabGuard {
    /// The lab.
    pub lab: LabState,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Err(e) = down(&mut self.lab) {
            eprintln!("clusterlab: tearing down {}: {e}", self.lab.dir.display());
        }
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
/// The lab belongs to the test process (`clusterlab gc` removes it if the test dies).
pub fn test_up(dir: &Path, conf: &Path, realtime: bool) -> LabGuard {
    test_up_with(dir, conf, realtime, Network::Auto)
}

/// For tests: [`test_up`] on a chosen network.
pub fn test_up_with(dir: &Path, conf: &Path, realtime: bool, network: Network) -> LabGuard {
    test_up_stack(dir, conf, realtime, network, Stack::Membership)
}

/// For tests: [`test_up_with`] running a chosen set of daemons.
pub fn test_up_stack(
    dir: &Path,
    conf: &Path,
    realtime: bool,
    network: Network,
    stack: Stack,
) -> LabGuard {
    let opts = UpOptions {
        config: conf.to_path_buf(),
        dir: dir.to_path_buf(),
        bin_dir: default_bin_dir(),
        realtime,
        timeout: Duration::from_secs(60),
    };
    let lab_opts = LabOptions {
        network,
        owned: true,
        stack,
    };
    match up_with(&opts, &lab_opts) {
        Ok(lab) => LabGuard { lab },
        Err(e) => panic!("lab did not come up: {e}"),
    }
}

/// For tests: whether a netns lab can be built here (daemons built, root, `ip`, `nft`).
/// When not, prints why and returns false; in CI (CI=true) that is a failure.
pub fn netns_test_ready(test: &str) -> bool {
    binaries_present() && netns::test_prerequisites(test)
}

/// For tests: names as owned strings.
pub fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// For tests: waits until `node`'s cmand reports exactly `members` (by name) and the
/// given quorum state, whatever the other nodes think.
pub fn wait_for_own_view(
    lab: &LabState,
    node: &str,
    members: &[&str],
    quorate: bool,
    timeout: Duration,
) -> Result<(), String> {
    wait_for_view(lab, &names(&[node]), &names(members), quorate, timeout)
}

/// Waits for one quorate view of every node, starting again any node whose daemons all
/// died meanwhile (with a `start` fault record); returns the nodes it started. For the
/// end of a fault: a node that rejoins can get a settled member expelled and killed
/// (a membership issue, reported), and an operator restarts it. Do not call it while a
/// node is meant to be down.
pub fn settle_all(lab: &mut LabState, timeout: Duration) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + timeout;
    let mut started = Vec::new();
    loop {
        let fresh = LabState::load(&lab.dir).map_err(|e| e.to_string())?;
        *lab = fresh;
        let all: Vec<String> = lab.nodes.iter().map(|n| n.name.clone()).collect();
        let step = Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now()));
        match wait_for_view(lab, &all, &all, true, step) {
            Ok(()) => return Ok(started),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {}
        }
        let dead: Vec<String> = lab
            .nodes
            .iter()
            .filter(|n| !n.daemons.values().any(ProcRecord::alive))
            .map(|n| n.name.clone())
            .collect();
        for name in dead {
            eprintln!("clusterlab: {name} is down while the cluster settles; starting it");
            faults::start(lab, &name)?;
            started.push(name);
        }
    }
}
