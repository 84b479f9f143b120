//! The lab's network (root only): one network namespace per node on a private bridge, and
//! partitions as nftables rules inside the nodes' namespaces. docs/lab-network.md has the
//! whole story; in short:
//!
//! ```text
//!   root namespace                              node namespaces (cl<hash>-n<id>)
//!   ┌──────────────────────────────┐            ┌──────────────────────────────┐
//!   │ bridge cl<hash>-br           │──veth──────│ eth0 10.250.X.<id>/24        │
//!   │   10.250.X.254/24 (lab host: │            │ lo up, 224.0.0.0/4 dev eth0  │
//!   │   APC simulator, lab tools)  │            │ no default route             │
//!   │ multicast snooping off       │            │ table inet clusterlab        │
//!   └──────────────────────────────┘            │   input: ip saddr A drop     │
//!                                               │   output: ip daddr B drop    │
//!                                               └──────────────────────────────┘
//! ```
//!
//! Each veth pair is `cl<hash>-v<id>` on the bridge and `eth0` inside the namespace.
//! Every name carries a 6-hex-digit hash of the lab id, so labs never share a name, and a
//! registry entry in [`REGISTRY_DIR`] records who owns each lab so [`gc`] can remove the
//! leftovers of labs whose owner is gone. Everything here shells out to `ip` and `nft`
//! (iproute2, nftables), except the probes, which open sockets inside a namespace from a
//! thread that entered it with setns(2).

mod error;
mod faults;
mod nft;
mod probe;
mod registry;

pub use error::NetError;
pub use probe::in_netns;
pub use registry::{gc, REGISTRY_DIR};

use crate::nemesis::{Drops, HOST_ID};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

/// The first characters of every namespace, bridge and veth name the lab creates.
pub const NAME_PREFIX: &str = "cl";
/// The name of a node's interface inside its namespace.
pub const NS_IFNAME: &str = "eth0";
/// The file in a lab directory that records a persisted lab network (see [`LabNet::persist`]).
pub const MARKER_FILE: &str = "netns.json";
/// The nftables table (family `inet`) that holds a node's partition rules.
pub const NFT_TABLE: &str = "clusterlab";
/// The route every namespace has for multicast (there is no default route).
pub const MULTICAST_ROUTE: &str = "224.0.0.0/4";
/// The last octet of the lab host's address on the bridge.
pub const HOST_OCTET: u8 = 254;

/// One node's piece of the lab network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetNode {
    /// The node id (`<clusternode nodeid>`), 1..=253; also the last octet of its address.
    pub id: u32,
    /// Its network namespace (`ip netns` name): `cl<hash>-n<id>`.
    pub ns: String,
    /// The veth end on the bridge, in the root namespace: `cl<hash>-v<id>`.
    pub veth_host: String,
    /// The veth end inside the namespace: always [`NS_IFNAME`].
    pub veth_ns: String,
    /// Its address, `10.250.X.<id>` (prefix /24).
    pub addr: Ipv4Addr,
}

/// A lab's network. The value returned by [`LabNet::create`] owns the network and removes it
/// when dropped; a value from [`LabNet::load`], a clone or a persisted one is a handle that
/// removes nothing unless [`LabNet::destroy`] is called.
#[derive(Debug, Serialize, Deserialize)]
pub struct LabNet {
    lab_id: String,
    hash: String,
    bridge: String,
    subnet: u8,
    nodes: Vec<NetNode>,
    #[serde(skip)]
    owned: bool,
}

/// What [`LabNet::destroy`] (or [`gc`]) removed and what it found still running.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DestroyReport {
    /// Names of the namespaces, veths and bridge that were removed.
    pub removed: Vec<String>,
    /// Processes that were still inside a node's namespace, by node id. They were not
    /// killed; the namespace lives on, detached and cut off, until they exit.
    pub leftover_pids: BTreeMap<u32, Vec<i32>>,
}

/// FNV-1a, 32 bits: a stable hash (the names must not change between builds).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The 6-hex-digit hash that every name of the lab `lab_id` carries.
pub fn lab_hash(lab_id: &str) -> String {
    format!("{:06x}", fnv1a(lab_id.as_bytes()) >> 8)
}

/// Where the search for a free 10.250.X.0/24 starts for `lab_id` (1..=254).
fn first_subnet(lab_id: &str) -> u8 {
    (fnv1a(lab_id.as_bytes()) % 254 + 1) as u8
}

/// The bridge of the lab with hash `hash`.
pub fn bridge_name(hash: &str) -> String {
    format!("{NAME_PREFIX}{hash}-br")
}

/// The namespace of node `id`.
pub fn ns_name(hash: &str, id: u32) -> String {
    format!("{NAME_PREFIX}{hash}-n{id}")
}

/// The root-namespace veth end of node `id`.
pub fn veth_name(hash: &str, id: u32) -> String {
    format!("{NAME_PREFIX}{hash}-v{id}")
}

/// What a lab-made name names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NameKind {
    /// A node's root-side veth.
    Veth,
    /// A node's namespace.
    Ns,
    /// The bridge.
    Bridge,
}

/// The hash and kind of a name this module makes, or None for any other name.
pub(crate) fn parse_name(name: &str) -> Option<(&str, NameKind)> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (hash, tail) = (rest.get(..6)?, rest.get(6..)?);
    let lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    if !hash.chars().all(lower_hex) {
        return None;
    }
    let id = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    match tail.strip_prefix('-')? {
        "br" => Some((hash, NameKind::Bridge)),
        t if t.starts_with('n') && id(&t[1..]) => Some((hash, NameKind::Ns)),
        t if t.starts_with('v') && id(&t[1..]) => Some((hash, NameKind::Veth)),
        _ => None,
    }
}

/// `ip netns exec NS PROGRAM`: a command that runs `program` inside namespace `ns` (with
/// /sys remounted for that namespace). Add arguments, environment and stdio as usual.
pub fn ns_command(ns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// Runs `cmd`, feeding `input` on stdin; returns its stdout, or an error with its stderr.
pub(crate) fn run(cmd: &mut Command, input: Option<&str>) -> Result<String, NetError> {
    let line = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let program = cmd.get_program().to_string_lossy().into_owned();
    let spawn_err = |source| NetError::Spawn {
        program: program.clone(),
        source,
    };
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error means the program exited early; its status says why.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetError::Command {
            command: line,
            status: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// `ip -batch -` (in namespace `ns` when given): many changes in one process; stops at the
/// first failing line.
fn ip_batch(ns: Option<&str>, lines: &[String]) -> Result<(), NetError> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    cmd.args(["-batch", "-"]);
    run(&mut cmd, Some(&(lines.join("\n") + "\n"))).map(drop)
}

/// Whether a network interface of this name exists in the root namespace.
fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether a named network namespace exists.
fn ns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Turns IPv6 off on `ifname` (or `all`/`default`) in the calling thread's namespace, so no
/// link-local address carries traffic the IPv4 rules would not see. Best effort: a kernel
/// without IPv6 has no such file.
fn disable_ipv6(ifname: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    if Path::new(&path).exists() {
        let _ = std::fs::write(path, "1");
    }
}

/// Node ids sorted, after checking each can have an address.
fn check_ids(node_ids: &[u32]) -> Result<Vec<u32>, NetError> {
    if node_ids.is_empty() {
        return Err(NetError::NoNodes);
    }
    let mut ids = node_ids.to_vec();
    ids.sort_unstable();
    for w in ids.windows(2) {
        if w[0] == w[1] {
            return Err(NetError::BadNodeId {
                id: w[0],
                reason: "it appears twice",
            });
        }
    }
    if let Some(&id) = ids.iter().find(|id| !(1..=253).contains(*id)) {
        return Err(NetError::BadNodeId {
            id,
            reason: "a lab network's node ids are 1..=253 (the id is the address's last octet)",
        });
    }
    Ok(ids)
}

impl Clone for LabNet {
    /// A clone is a handle: only the value [`LabNet::create`] returned removes the network on drop.
    fn clone(&self) -> LabNet {
        LabNet {
            lab_id: self.lab_id.clone(),
            hash: self.hash.clone(),
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            nodes: self.nodes.clone(),
            owned: false,
        }
    }
}

impl PartialEq for LabNet {
    fn eq(&self, other: &LabNet) -> bool {
        (
            &self.lab_id,
            &self.hash,
            &self.bridge,
            self.subnet,
            &self.nodes,
        ) == (
            &other.lab_id,
            &other.hash,
            &other.bridge,
            other.subnet,
            &other.nodes,
        )
    }
}

impl Eq for LabNet {}

impl LabNet {
    /// The names and addresses of a lab network, without creating anything.
    fn plan(lab_id: &str, hash: &str, subnet: u8, ids: &[u32]) -> LabNet {
        let nodes = ids
            .iter()
            .map(|&id| NetNode {
                id,
                ns: ns_name(hash, id),
                veth_host: veth_name(hash, id),
                veth_ns: NS_IFNAME.to_string(),
                addr: Ipv4Addr::new(10, 250, subnet, id as u8),
            })
            .collect();
        LabNet {
            lab_id: lab_id.to_string(),
            hash: hash.to_string(),
            bridge: bridge_name(hash),
            subnet,
            nodes,
            owned: false,
        }
    }

    /// Creates the network of lab `lab_id` (pass the lab directory's canonical path): a
    /// bridge with the host address 10.250.X.254/24, and for each node a namespace joined to
    /// it by a veth pair, addressed `10.250.X.<id>/24`, with `lo` up, a multicast route, no
    /// default route, IPv6 off and an empty `inet clusterlab` table. X is picked from the lab
    /// id's hash, skipping subnets in use. Leftovers of dead labs are collected first.
    ///
    /// The returned value owns the network: dropping it removes everything (see
    /// [`LabNet::persist`] to keep it past this process). On error nothing is left behind.
    pub fn create(lab_id: &str, node_ids: &[u32]) -> Result<LabNet, NetError> {
        let ids = check_ids(node_ids)?;
        let hash = lab_hash(lab_id);
        let mut net = registry::reserve(&hash, first_subnet(lab_id), |subnet| {
            LabNet::plan(lab_id, &hash, subnet, &ids)
        })?;
        net.owned = true; // from here on, a failure removes what was made (Drop)
        net.build()?;
        Ok(net)
    }

    fn build(&self) -> Result<(), NetError> {
        let br = &self.bridge;
        let mut root = vec![format!("link add {br} type bridge mcast_snooping 0")];
        root.extend(self.nodes.iter().map(|n| format!("netns add {}", n.ns)));
        ip_batch(None, &root)?;
        disable_ipv6(br);
        for n in &self.nodes {
            in_netns(&n.ns, || {
                disable_ipv6("all");
                disable_ipv6("default");
            })?;
        }
        let mut root = Vec::new();
        for n in &self.nodes {
            let (vh, vn, ns) = (&n.veth_host, &n.veth_ns, &n.ns);
            root.push(format!("link add {vh} type veth peer name {vn} netns {ns}"));
            root.push(format!("link set {vh} master {br}"));
            root.push(format!("link set {vh} up"));
        }
        root.push(format!("addr add {}/24 dev {br}", self.host_addr()));
        root.push(format!("link set {br} up"));
        ip_batch(None, &root)?;
        for n in &self.nodes {
            disable_ipv6(&n.veth_host);
            let vn = &n.veth_ns;
            ip_batch(
                Some(&n.ns),
                &[
                    format!("addr add {}/24 dev {vn}", n.addr),
                    format!("link set {vn} up"),
                    "link set lo up".to_string(),
                    format!("route add {MULTICAST_ROUTE} dev {vn}"),
                ],
            )?;
        }
        self.apply(&Drops::new())
    }

    /// Keeps the network past this process: writes the marker `lab_dir/netns.json` (which
    /// [`LabNet::load`] reads) and hands ownership to it. [`gc`] removes the network once
    /// the marker is gone; [`LabNet::destroy`] removes both. After this, dropping `self`
    /// removes nothing.
    pub fn persist(&mut self, lab_dir: &Path) -> Result<(), NetError> {
        let dir = lab_dir.canonicalize().map_err(|source| NetError::File {
            path: lab_dir.to_path_buf(),
            source,
        })?;
        let marker = dir.join(MARKER_FILE);
        registry::write_json(&marker, &self.clone())?;
        registry::set_marker(&self.hash, &marker)?;
        self.owned = false;
        Ok(())
    }

    /// A handle on the network persisted in `lab_dir` (it removes nothing when dropped).
    pub fn load(lab_dir: &Path) -> Result<LabNet, NetError> {
        registry::read_json(&lab_dir.join(MARKER_FILE))
    }

    /// Removes the namespaces, veths and bridge, the registry entry and the marker (if
    /// persisted). Processes still inside a namespace are listed, not killed. Calling it on
    /// a network that is already (partly) gone is fine.
    pub fn destroy(mut self) -> Result<DestroyReport, NetError> {
        self.owned = false;
        self.teardown()
    }

    fn teardown(&self) -> Result<DestroyReport, NetError> {
        let report = self.remove_resources()?;
        registry::forget(&self.hash)?;
        Ok(report)
    }

    /// Removes what exists of the network (not the bookkeeping); goes on after a failure
    /// and returns the first one.
    pub(crate) fn remove_resources(&self) -> Result<DestroyReport, NetError> {
        let mut report = DestroyReport::default();
        let mut first_err = None;
        let mut step = |name: &str, exists: bool, args: &[&str]| {
            if exists {
                match run(Command::new("ip").args(args).arg(name), None) {
                    Ok(_) => report.removed.push(name.to_string()),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        };
        let mut leftovers = BTreeMap::new();
        for n in &self.nodes {
            let pids = self.pids_in(n);
            if !pids.is_empty() {
                leftovers.insert(n.id, pids);
            }
            step(&n.veth_host, link_exists(&n.veth_host), &["link", "del"]);
            step(&n.ns, ns_exists(&n.ns), &["netns", "del"]);
        }
        step(&self.bridge, link_exists(&self.bridge), &["link", "del"]);
        report.leftover_pids = leftovers;
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn pids_in(&self, n: &NetNode) -> Vec<i32> {
        if !ns_exists(&n.ns) {
            return Vec::new();
        }
        run(Command::new("ip").args(["netns", "pids", &n.ns]), None)
            .map(|out| {
                out.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Processes running inside each node's namespace, by node id (nodes with none are left out).
    pub fn leftover_pids(&self) -> BTreeMap<u32, Vec<i32>> {
        self.nodes
            .iter()
            .map(|n| (n.id, self.pids_in(n)))
            .filter(|(_, p)| !p.is_empty())
            .collect()
    }

    /// The lab id the network was created for.
    pub fn lab_id(&self) -> &str {
        &self.lab_id
    }

    /// The 6-hex-digit hash in every name.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// X of the lab's subnet 10.250.X.0/24.
    pub fn subnet_octet(&self) -> u8 {
        self.subnet
    }

    /// The lab's subnet as (network address, prefix length).
    pub fn subnet(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::new(10, 250, self.subnet, 0), 24)
    }

    /// The lab host's address on the bridge, 10.250.X.254: where services the lab runs in
    /// the root namespace (the APC simulator) listen for the nodes.
    pub fn host_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 250, self.subnet, HOST_OCTET)
    }

    /// Every node, in id order.
    pub fn nodes(&self) -> &[NetNode] {
        &self.nodes
    }

    /// Every node id, in order.
    pub fn node_ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// One node.
    pub fn node(&self, id: u32) -> Result<&NetNode, NetError> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or(NetError::UnknownNode(id))
    }

    /// The address of a node, or of the lab host for [`HOST_ID`].
    pub fn addr(&self, id: u32) -> Result<Ipv4Addr, NetError> {
        if id == HOST_ID {
            return Ok(self.host_addr());
        }
        self.node(id).map(|n| n.addr)
    }

    /// The node (or [`HOST_ID`]) that has `addr`.
    pub fn endpoint_of(&self, addr: Ipv4Addr) -> Option<u32> {
        if addr == self.host_addr() {
            return Some(HOST_ID);
        }
        self.nodes.iter().find(|n| n.addr == addr).map(|n| n.id)
    }

    /// A command that runs `program` inside node `id`'s namespace (see [`ns_command`]).
    pub fn command(&self, id: u32, program: impl AsRef<OsStr>) -> Result<Command, NetError> {
        Ok(ns_command(&self.node(id)?.ns, program))
    }
}

impl Drop for LabNet {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        match self.teardown() {
            Ok(report) if !report.leftover_pids.is_empty() => eprintln!(
                "clusterlab: lab network {} removed; processes were still inside: {:?}",
                self.hash, report.leftover_pids
            ),
            Ok(_) => {}
            Err(e) => eprintln!("clusterlab: removing lab network {}: {e}", self.hash),
        }
    }
}

/// Why this process cannot build lab networks, if it cannot: not root, or `ip`/`nft` missing.
pub fn prerequisites() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("lab networks need root (network namespaces, bridges, nftables)".into());
    }
    for (program, arg, package) in [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")] {
        let ok = Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "`{program}` is missing (apt-get install {package})"
            ));
        }
    }
    Ok(())
}

/// For tests: whether lab networks can be built here. When not, prints why and returns
/// false; in CI (CI=true) a missing prerequisite is a failure (panics).
pub fn test_prerequisites(test: &str) -> bool {
    match prerequisites() {
        Ok(()) => true,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {why}")
        }
        Err(why) => {
            eprintln!("skipped {test}: {why}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_fit_in_an_interface_name() {
        let hash = lab_hash("/tmp/some/lab");
        for name in [
            bridge_name(&hash),
            ns_name(&hash, 253),
            veth_name(&hash, 253),
        ] {
            assert!(name.len() <= 15, "{name}");
        }
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // A change here renames every lab's resources: gc of older labs still works (by
        // prefix), but do it on purpose.
        assert_eq!(lab_hash(""), "811c9d");
        assert_eq!(lab_hash("/tmp/lab"), lab_hash("/tmp/lab"));
        assert_ne!(lab_hash("/tmp/lab1"), lab_hash("/tmp/lab2"));
    }

    #[test]
    fn only_lab_made_names_parse() {
        assert_eq!(
            parse_name("cl0a1b2c-br"),
            Some(("0a1b2c", NameKind::Bridge))
        );
        assert_eq!(parse_name("cl0a1b2c-n12"), Some(("0a1b2c", NameKind::Ns)));
        assert_eq!(parse_name("cl0a1b2c-v3"), Some(("0a1b2c", NameKind::Veth)));
        for other in [
            "eth0",
            "cl0a1b2c",
            "cl0a1b2c-",
            "cl0A1b2c-br",
            "cl0a1b2c-n",
            "cl0a1b2c-nx",
            "cl0a1b2c-n1234",
            "cl0a1b2g-br",
            "cl0a1b2c-brx",
            "docker0",
            "cl",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn node_ids_outside_one_to_253_or_repeated_are_refused() {
        assert!(matches!(check_ids(&[]), Err(NetError::NoNodes)));
        assert!(matches!(
            check_ids(&[0, 1]),
            Err(NetError::BadNodeId { id: 0, .. })
        ));
        assert!(matches!(
            check_ids(&[1, 254]),
            Err(NetError::BadNodeId { id: 254, .. })
        ));
        assert!(matches!(
            check_ids(&[2, 1, 2]),
            Err(NetError::BadNodeId { id: 2, .. })
        ));
        assert_eq!(check_ids(&[3, 1, 2]).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn a_plan_addresses_nodes_by_id_and_clones_are_handles() {
        let net = LabNet::plan("lab", "abcdef", 42, &[1, 7]);
        assert_eq!(net.addr(7).unwrap(), Ipv4Addr::new(10, 250, 42, 7));
        assert_eq!(net.addr(HOST_ID).unwrap(), Ipv4Addr::new(10, 250, 42, 254));
        assert_eq!(net.endpoint_of(Ipv4Addr::new(10, 250, 42, 1)), Some(1));
        assert_eq!(net.endpoint_of(Ipv4Addr::new(10, 250, 43, 1)), None);
        assert!(matches!(net.node(2), Err(NetError::UnknownNode(2))));
        let mut owned = net.clone();
        owned.owned = true;
        let handle = owned.clone();
        assert!(!handle.owned);
        assert_eq!(handle, owned);
        std::mem::forget(owned); // would try to remove a network that was never made
    }

    #[test]
    fn the_record_round_trips_through_json() {
        let net = LabNet::plan("lab", "abcdef", 42, &[1, 2]);
        let text = serde_json::to_string(&net).unwrap();
        let back: LabNet = serde_json::from_str(&text).unwrap();
        assert_eq!(back, net);
        assert!(!back.owned);
    }

    proptest! {
        #[test]
        fn every_made_name_parses_back_to_its_hash_and_kind(id in "[ -~]{0,40}", node in 1u32..254) {
            let hash = lab_hash(&id);
            for (name, kind) in [
                (bridge_name(&hash), NameKind::Bridge),
                (ns_name(&hash, node), NameKind::Ns),
                (veth_name(&hash, node), NameKind::Veth),
            ] {
                prop_assert_eq!(parse_name(&name), Some((hash.as_str(), kind)));
            }
            prop_assert!((1..=254).contains(&first_subnet(&id)));
        }
    }
}
