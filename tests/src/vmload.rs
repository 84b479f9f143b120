//! The VM workload of `clusterlab jepsen --vms`, and the lab's observer of QEMU.
//!
//! - Requests: one thread sends seeded random administrator requests (enable on a node,
//!   disable, relocate to a node, live-migrate to a node) for random VMs to a random
//!   reachable node's rgmanagerd, one every 1–2 s, and logs each with its `RG_E*` code.
//! - Observer: another thread, every ~100 ms, finds every QEMU process of the lab (its
//!   command line names the host's runtime directory) and asks QEMU itself for its status
//!   (`query-status` on `<node runtime dir>/vms/<vm>/status.sock`). A sample that shows one
//!   guest `running` on two hosts is looked at a second time (a live migration switches
//!   over between two reads); each sample is a line of `DIR/vm-observations.jsonl`.
//! - Settle: after the faults, every VM is enabled by its failover domain, then watched
//!   (clustat + the observer) until it runs on exactly one allowed host, within a bound.
//!
//! `DIR/vmload.json` ([`VmLog`]) holds the requests, the settle and the end of the judged
//! span; jepsen/vms.rs has the checks.

use crate::jepsen::vms::{
    FinalState, Observation, Seen, VmFinal, VmLog, VmRequest, OBSERVATIONS_FILE,
};
use clusterio::{call_blocking, ClientError};
use libcluster::ipc::rgmanager::{RgRequest, RgResponse, RgStatus, RG_EFAIL, RG_ERUN};
use libcluster::rgmanager::Request;
use libcluster::NodeId;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One node as the VM workload sees it.
#[derive(Clone, Debug)]
pub struct VmHost {
    /// Node name.
    pub name: String,
    /// Node id.
    pub nodeid: u32,
    /// Its runtime directory (rgmanagerd's socket, the guests' monitors).
    pub runtime_dir: PathBuf,
}

impl VmHost {
    fn socket(&self) -> PathBuf {
        clusterio::socket_path(&self.runtime_dir, libcluster::ipc::rgmanager::DAEMON)
    }
}

/// One VM of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSpec {
    /// The service id, `vm:NAME`.
    pub service: String,
    /// Node ids it may run on: its restricted domain's, else every node's; sorted.
    pub allowed: Vec<u32>,
}

/// The pace of the workload.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The requests' seed.
    pub seed: u64,
    /// Gap between requests, ms (uniform in this range).
    pub gap_ms: (u64, u64),
    /// How often the observer samples, ms.
    pub observe_ms: u64,
    /// How long one request may take before it is logged unanswered.
    pub request_timeout: Duration,
}

impl Options {
    /// 1–2 s between requests, a sample every 100 ms, 20 s per request.
    pub fn new(seed: u64) -> Options {
        Options {
            seed,
            gap_ms: (1000, 2000),
            observe_ms: 100,
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// The VMs of a cluster.conf with their allowed hosts.
pub fn vm_specs(config: &Path) -> Result<Vec<VmSpec>, String> {
    let parsed =
        libcluster::config::load(config).map_err(|e| format!("{}: {e:?}", config.display()))?;
    let c = &parsed.config;
    let id_of = |name: &str| {
        c.clusternodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.nodeid.0)
    };
    let all: Vec<u32> = c.clusternodes.iter().map(|n| n.nodeid.0).collect();
    Ok(c.rm
        .vms
        .iter()
        .map(|vm| {
            let domain = vm
                .policy
                .domain
                .as_deref()
                .and_then(|d| c.rm.failoverdomain(d));
            let mut allowed: Vec<u32> = match domain {
                Some(d) if d.restricted => d.nodes.iter().filter_map(|n| id_of(&n.name)).collect(),
                _ => all.clone(),
            };
            allowed.sort_unstable();
            allowed.dedup();
            VmSpec {
                service: format!("vm:{}", vm.name),
                allowed,
            }
        })
        .collect())
}

/// The random request for one step.
fn random_request<R: Rng>(rng: &mut R, nodes: &[u32]) -> (Request, String) {
    let target = nodes[rng.random_range(0..nodes.len())];
    match rng.random_range(0..20u32) {
        0..=7 => (
            Request::Enable {
                target: Some(NodeId(target)),
            },
            format!("enable {target}"),
        ),
        8..=10 => (Request::Disable, "disable".into()),
        11..=14 => (
            Request::Relocate {
                target: Some(NodeId(target)),
            },
            format!("relocate {target}"),
        ),
        _ => (
            Request::Migrate {
                target: NodeId(target),
            },
            format!("migrate {target}"),
        ),
    }
}

/// Sends `request` to the first reachable host, in an order the rng picks.
fn send<R: Rng>(
    rng: &mut R,
    hosts: &[VmHost],
    req: &RgRequest,
    timeout: Duration,
) -> (u32, Result<RgResponse, String>) {
    let start = rng.random_range(0..hosts.len());
    let mut last = (hosts[start].nodeid, Err("no host".to_string()));
    for i in 0..hosts.len() {
        let h = &hosts[(start + i) % hosts.len()];
        match call_blocking::<RgRequest, RgResponse>(&h.socket(), req, timeout) {
            Ok(r) => return (h.nodeid, Ok(r)),
            Err(e @ ClientError::Connect { .. }) => last = (h.nodeid, Err(e.to_string())),
            Err(e) => return (h.nodeid, Err(e.to_string())),
        }
    }
    last
}

/// Sends one action and logs it.
fn act<R: Rng>(
    rng: &mut R,
    hosts: &[VmHost],
    service: &str,
    request: Request,
    text: String,
    phase: &str,
    timeout: Duration,
) -> VmRequest {
    let sent_ns = crate::bench::monotonic_ns();
    let follow_domain = matches!(request, Request::Enable { target: None });
    let body = RgRequest::Action {
        service: service.to_string(),
        request,
        follow_domain,
    };
    let (node, answer) = send(rng, hosts, &body, timeout);
    let (code, error) = match answer {
        Ok(RgResponse::ActionResult { code, .. }) => (Some(code), None),
        Ok(other) => (None, Some(format!("unexpected answer {other:?}"))),
        Err(e) => (None, Some(e)),
    };
    VmRequest {
        sent_ns,
        done_ns: crate::bench::monotonic_ns(),
        node,
        service: service.to_string(),
        request: text,
        phase: phase.to_string(),
        code,
        error,
    }
}

/// Sleeps `d` in short steps; false when `stop` was set meanwhile.
fn nap(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    !stop.load(Ordering::Relaxed)
}

/// QEMU's own word on a guest: `query-status` on its status monitor
/// (`<node runtime dir>/vms/<vm>/status.sock`). `None` when it does not answer in time.
pub fn qemu_status(sock: &Path) -> Option<String> {
    let s = std::os::unix::net::UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(300))).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line).ok()?; // greeting
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n").ok()?;
    line.clear();
    r.read_line(&mut line).ok()?;
    w.write_all(b"{\"execute\":\"query-status\"}\n").ok()?;
    for _ in 0..8 {
        line.clear();
        r.read_line(&mut line).ok()?;
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        if let Some(st) = v["return"]["status"].as_str() {
            return Some(st.to_string());
        }
    }
    None
}

/// Whether QEMU is installed; when not, prints why and returns false, and in CI (CI=true)
/// that is a failure (panics).
pub fn qemu_ready() -> bool {
    let ok = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let why = "qemu-system-x86_64 missing (Debian package qemu-system-x86)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but {why}");
        }
        eprintln!("skipped: {why}");
    }
    ok
}

/// The guest name of a process, from its `/proc/PID/cmdline`, if it is a QEMU process
/// (`-name guest=NAME,...`); also its arguments.
pub fn qemu_guest(cmdline: &[u8]) -> Option<(String, Vec<String>)> {
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if !args.first().is_some_and(|a| a.contains("qemu-system")) {
        return None;
    }
    let guest = args.iter().find_map(|a| {
        a.strip_prefix("guest=")
            .map(|s| s.split(',').next().unwrap_or(s).to_string())
    })?;
    Some((guest, args))
}

/// (guest name, host node id) of every QEMU process of the lab: the host is the one whose
/// `<runtime dir>/vms/` its command line names.
fn qemu_processes(hosts: &[VmHost]) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    let marks: Vec<(String, u32)> = hosts
        .iter()
        .map(|h| (h.runtime_dir.join("vms").display().to_string(), h.nodeid))
        .collect();
    for e in proc_dir.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let Some((guest, args)) = qemu_guest(&cmdline) else {
            continue;
        };
        let Some(node) = marks
            .iter()
            .find(|(m, _)| args.iter().any(|a| a.contains(m.as_str())))
            .map(|(_, id)| *id)
        else {
            continue;
        };
        if !found.contains(&(guest.clone(), node)) {
            found.push((guest, node));
        }
    }
    found
}

fn ask(hosts: &[VmHost], guest: &str, node: u32) -> Seen {
    let status = hosts
        .iter()
        .find(|h| h.nodeid == node)
        .and_then(|h| qemu_status(&crate::lab::labconf::vm_socket_path(&h.runtime_dir, guest)))
        .unwrap_or_else(|| "unanswered".into());
    Seen { node, status }
}

/// One sample: every guest, every host holding a QEMU of it, QEMU's status; a guest seen
/// running on two hosts is asked again (in the other order) before the sample stands.
pub fn observe(hosts: &[VmHost]) -> Observation {
    let t_ns = crate::bench::monotonic_ns();
    let mut vms: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for (guest, node) in qemu_processes(hosts) {
        let seen = ask(hosts, &guest, node);
        vms.entry(guest).or_default().push(seen);
    }
    let mut o = Observation { t_ns, vms };
    let doubles: Vec<String> = o
        .vms
        .keys()
        .filter(|g| o.running(g).len() > 1)
        .cloned()
        .collect();
    for g in doubles {
        if let Some(seen) = o.vms.get_mut(&g) {
            for s in seen.iter_mut().rev() {
                *s = ask(hosts, &g, s.node);
            }
        }
    }
    o
}

/// A running VM workload with its observer.
pub struct VmLoad {
    hosts: Vec<VmHost>,
    vms: Vec<VmSpec>,
    opts: Options,
    stop_requests: Arc<AtomicBool>,
    stop_observer: Arc<AtomicBool>,
    requests: Option<JoinHandle<Vec<VmRequest>>>,
    observer: Option<JoinHandle<()>>,
    latest: Arc<Mutex<Option<Observation>>>,
    log: VmLog,
}

impl VmLoad {
    /// Starts the requests and the observer (writing `DIR/vm-observations.jsonl`).
    pub fn start(
        dir: &Path,
        hosts: Vec<VmHost>,
        vms: Vec<VmSpec>,
        opts: Options,
    ) -> Result<VmLoad, String> {
        if hosts.is_empty() {
            return Err("the VM workload needs at least one host".into());
        }
        let path = dir.join(OBSERVATIONS_FILE);
        let mut file =
            std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stop_observer = Arc::new(AtomicBool::new(false));
        let latest = Arc::new(Mutex::new(None));
        let observer = {
            let (stop, latest, hosts) = (stop_observer.clone(), latest.clone(), hosts.clone());
            std::thread::spawn(move || loop {
                let o = observe(&hosts);
                if let Ok(line) = serde_json::to_string(&o) {
                    let _ = file.write_all(format!("{line}\n").as_bytes());
                }
                if let Ok(mut l) = latest.lock() {
                    *l = Some(o);
                }
                if !nap(&stop, Duration::from_millis(opts.observe_ms)) {
                    return;
                }
            })
        };
        let stop_requests = Arc::new(AtomicBool::new(false));
        let requests = {
            let (stop, hosts, vms) = (stop_requests.clone(), hosts.clone(), vms.clone());
            std::thread::spawn(move || {
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
                let ids: Vec<u32> = hosts.iter().map(|h| h.nodeid).collect();
                let mut log = Vec::new();
                if vms.is_empty() {
                    return log;
                }
                loop {
                    let gap = rng.random_range(opts.gap_ms.0..=opts.gap_ms.1.max(opts.gap_ms.0));
                    if !nap(&stop, Duration::from_millis(gap)) {
                        return log;
                    }
                    let vm = &vms[rng.random_range(0..vms.len())];
                    let (request, text) = random_request(&mut rng, &ids);
                    log.push(act(
                        &mut rng,
                        &hosts,
                        &vm.service,
                        request,
                        text,
                        "random",
                        opts.request_timeout,
                    ));
                }
            })
        };
        Ok(VmLoad {
            hosts,
            vms,
            opts,
            stop_requests,
            stop_observer,
            requests: Some(requests),
            observer: Some(observer),
            latest,
            log: VmLog::default(),
        })
    }

    /// Stops the random requests (waits for the one in flight).
    pub fn stop_requests(&mut self) {
        self.stop_requests.store(true, Ordering::Relaxed);
        if let Some(h) = self.requests.take() {
            if let Ok(mut l) = h.join() {
                self.log.requests.append(&mut l);
            }
        }
    }

    /// The settle: enables every VM by its failover domain (a failed one is disabled
    /// first), then watches clustat and the observer until every VM runs on exactly one
    /// allowed host, the owner clustat names, or until `bound`.
    pub fn settle(&mut self, bound: Duration) {
        self.stop_requests();
        let started = Instant::now();
        let deadline = started + bound;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.opts.seed ^ 0x005e_771e);
        for vm in self.vms.clone() {
            while Instant::now() < deadline {
                let r = act(
                    &mut rng,
                    &self.hosts,
                    &vm.service,
                    Request::Enable { target: None },
                    "enable domain".into(),
                    "final",
                    self.opts.request_timeout,
                );
                let code = r.code;
                self.log.requests.push(r);
                match code {
                    Some(0) | Some(RG_ERUN) => break,
                    Some(RG_EFAIL) => {
                        let r = act(
                            &mut rng,
                            &self.hosts,
                            &vm.service,
                            Request::Disable,
                            "disable".into(),
                            "final",
                            self.opts.request_timeout,
                        );
                        self.log.requests.push(r);
                    }
                    _ => std::thread::sleep(Duration::from_secs(1)),
                }
            }
        }
        let last = loop {
            let status = self.status(&mut rng);
            let obs = self.latest.lock().ok().and_then(|l| l.clone());
            let last = self.finals(status.as_ref(), obs.as_ref());
            let fine = last.values().all(|f: &VmFinal| {
                f.state == "started"
                    && f.running.len() == 1
                    && f.owner == Some(f.running[0])
                    && f.allowed.contains(&f.running[0])
            });
            if fine || Instant::now() >= deadline {
                break last;
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        self.log.final_state = Some(FinalState {
            bound_ms: u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
            waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            vms: last,
        });
    }

    fn status<R: Rng>(&self, rng: &mut R) -> Option<RgStatus> {
        match send(rng, &self.hosts, &RgRequest::Status, Duration::from_secs(5)).1 {
            Ok(RgResponse::Status(s)) => Some(*s),
            _ => None,
        }
    }

    fn finals(
        &self,
        status: Option<&RgStatus>,
        obs: Option<&Observation>,
    ) -> BTreeMap<String, VmFinal> {
        self.vms
            .iter()
            .map(|vm| {
                let svc = status.and_then(|s| s.service(&vm.service));
                let guest = vm.service.strip_prefix("vm:").unwrap_or(&vm.service);
                let f = VmFinal {
                    allowed: vm.allowed.clone(),
                    owner: svc.and_then(|s| s.record.owner).map(|n| n.0),
                    state: svc.map_or("unknown".into(), |s| s.record.state.as_str().into()),
                    running: obs.map(|o| o.running(guest)).unwrap_or_default(),
                };
                (vm.service.clone(), f)
            })
            .collect()
    }

    /// Stops everything, marks the end of the judged span and writes `DIR/vmload.json`.
    pub fn finish(mut self, dir: &Path) -> Result<VmLog, String> {
        self.stop_requests();
        self.stop_observer.store(true, Ordering::Relaxed);
        if let Some(h) = self.observer.take() {
            let _ = h.join();
        }
        self.log.end_ns = crate::bench::monotonic_ns();
        self.log.save(dir)?;
        Ok(self.log.clone())
    }
}

impl Drop for VmLoad {
    fn drop(&mut self) {
        self.stop_requests.store(true, Ordering::Relaxed);
        self.stop_observer.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_domains_limit_the_allowed_hosts_and_others_allow_all() {
        let dir = std::env::temp_dir().join(format!("vmload-specs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("c.conf");
        std::fs::write(
            &conf,
            r#"<?xml version="1.0"?>
<cluster name="c" config_version="1"><cman/><clusternodes>
<clusternode name="n1" nodeid="1" votes="1"/><clusternode name="n2" nodeid="2" votes="1"/>
<clusternode name="n3" nodeid="3" votes="1"/></clusternodes>
<rm><failoverdomains>
<failoverdomain name="r" ordered="1" restricted="1"><failoverdomainnode name="n3" priority="1"/>
<failoverdomainnode name="n1" priority="2"/></failoverdomain>
<failoverdomain name="u" restricted="0"><failoverdomainnode name="n2"/></failoverdomain>
</failoverdomains>
<vm name="a" domain="r"/><vm name="b" domain="u"/><vm name="c"/></rm></cluster>
"#,
        )
        .unwrap();
        let specs = vm_specs(&conf).unwrap();
        let got: Vec<(&str, &[u32])> = specs
            .iter()
            .map(|s| (s.service.as_str(), s.allowed.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("vm:a", &[1, 3][..]),
                ("vm:b", &[1, 2, 3][..]),
                ("vm:c", &[1, 2, 3][..])
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_random_requests_are_a_function_of_the_seed() {
        let draw = |seed| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            (0..40)
                .map(|_| random_request(&mut rng, &[1, 2, 3]).1)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
        let all = draw(5).join(" ");
        for kind in ["enable", "disable", "relocate", "migrate"] {
            assert!(all.contains(kind), "{all}");
        }
    }
}
