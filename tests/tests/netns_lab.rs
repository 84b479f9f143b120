//! The lab network on a real kernel (root, `ip`, `nft`): namespaces on a bridge, unicast
//! and multicast between them, no route out, partitions with nftables, removal and gc.
//!
//! Without root (or without iproute2/nftables) every test prints why it skips; with
//! CI=true that is a failure. Every network is removed by its owner's Drop, pass or fail.
//! Expected deliveries get a generous 10 s; expected losses wait 1 s (a lost datagram can
//! only make a "blocked" check pass late, never flake a "reachable" one).

use clusterlab::nemesis::{Drops, NetFault, HOST_ID};
use clusterlab::netns::{self, LabNet, NetError, MARKER_FILE};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const REACH: Duration = Duration::from_secs(10);
const LOST: Duration = Duration::from_secs(1);

/// A lab id unique to this test and process.
fn lab_id(test: &str) -> String {
    format!("/netns-test/{test}/{}", std::process::id())
}

fn net(test: &str, ids: &[u32]) -> LabNet {
    LabNet::create(&lab_id(test), ids).unwrap_or_else(|e| panic!("creating the lab network: {e}"))
}

/// Whether any namespace or interface named for this lab exists.
fn traces(hash: &str) -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["/run/netns", "/sys/class/net"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("cl{hash}-")) {
                found.push(name);
            }
        }
    }
    found
}

fn reaches(net: &LabNet, from: u32, to: u32) -> bool {
    net.udp_probe(from, to, REACH).unwrap()
}

fn lost(net: &LabNet, from: u32, to: u32) -> bool {
    !net.udp_probe(from, to, LOST).unwrap()
}

fn ping_installed() -> bool {
    Command::new("ping")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn three_namespaces_on_a_bridge_reach_each_other_and_nothing_else() {
    if !netns::test_prerequisites("three_namespaces_on_a_bridge") {
        return;
    }
    let net = net("three", &[1, 2, 3]);
    let x = net.subnet_octet();
    for n in net.nodes() {
        assert_eq!(n.addr, Ipv4Addr::new(10, 250, x, n.id as u8));
        let routes = netns::ns_command(&n.ns, "ip")
            .args(["route", "show"])
            .output()
            .unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout);
        assert!(!routes.contains("default"), "{}: {routes}", n.ns);
        assert!(
            routes.contains("224.0.0.0/4 dev eth0"),
            "{}: {routes}",
            n.ns
        );
        let v6 = netns::ns_command(&n.ns, "ip")
            .args(["-6", "addr", "show"])
            .output()
            .unwrap();
        let v6 = String::from_utf8_lossy(&v6.stdout);
        assert_eq!(v6.trim(), "", "{}: IPv6 is on", n.ns);
    }
    let snooping = format!("/sys/class/net/{}/bridge/multicast_snooping", net.bridge());
    assert_eq!(std::fs::read_to_string(snooping).unwrap().trim(), "0");
    for a in 1..=3 {
        for b in 1..=3 {
            if a != b {
                assert!(reaches(&net, a, b), "{a} -> {b}");
            }
        }
        assert!(
            reaches(&net, a, HOST_ID) && reaches(&net, HOST_ID, a),
            "{a} <-> host"
        );
    }
    if ping_installed() {
        let to = net.addr(3).unwrap().to_string();
        let mut ping = net.command(1, "ping").unwrap();
        ping.args(["-c1", "-W5", &to]).stdout(Stdio::null());
        assert!(ping.status().unwrap().success(), "ping 1 -> 3");
    } else {
        eprintln!("ping (iputils-ping) is not installed: only the UDP probes ran");
    }
    // No route: connect() fails at once and no packet is sent anywhere.
    let outside = [
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(10, 251, 0, 1),
        Ipv4Addr::new(10, 250, x.wrapping_add(1).max(1), 1),
        Ipv4Addr::new(172, 16, 0, 1),
    ];
    for dest in outside {
        let err = net.route_error(2, dest).unwrap();
        let errno = err.as_ref().and_then(std::io::Error::raw_os_error);
        assert_eq!(
            errno,
            Some(nix::errno::Errno::ENETUNREACH as i32),
            "{dest}: {err:?}"
        );
    }
    assert!(net.route_error(2, net.addr(3).unwrap()).unwrap().is_none());
}

#[test]
fn multicast_from_one_namespace_reaches_every_other() {
    if !netns::test_prerequisites("multicast_from_one_namespace") {
        return;
    }
    let net = net("mcast", &[1, 2, 3]);
    let group = Ipv4Addr::new(239, 250, 0, 1);
    let heard = net.multicast_probe(1, group, 39250, REACH).unwrap();
    assert_eq!(heard, BTreeSet::from([2, 3]));
    let heard = net.multicast_probe(3, group, 39251, REACH).unwrap();
    assert_eq!(heard, BTreeSet::from([1, 2]));
}

#[test]
fn isolate_cuts_one_node_both_ways_and_heal_restores() {
    if !netns::test_prerequisites("isolate_and_heal") {
        return;
    }
    let net = net("isolate", &[1, 2, 3]);
    net.isolate(1).unwrap();
    let want = NetFault::Isolate(1).drops(&[1, 2, 3]).unwrap();
    assert_eq!(net.current_drops().unwrap(), want);
    assert!(net.blocked(1, 2).unwrap() && net.blocked(3, 1).unwrap());
    assert!(!net.blocked(2, 3).unwrap());
    for p in [2, 3] {
        assert!(
            lost(&net, 1, p) && lost(&net, p, 1),
            "1 <-> {p} still flows"
        );
    }
    assert!(reaches(&net, 2, 3) && reaches(&net, 3, 2));
    let group = Ipv4Addr::new(239, 250, 0, 1);
    assert_eq!(
        net.multicast_probe(1, group, 39252, LOST).unwrap(),
        BTreeSet::new()
    );
    assert!(
        reaches(&net, 1, HOST_ID),
        "isolate leaves the lab host reachable"
    );

    net.heal().unwrap();
    assert_eq!(net.current_drops().unwrap(), Drops::new());
    for p in [2, 3] {
        assert!(
            reaches(&net, 1, p) && reaches(&net, p, 1),
            "1 <-> {p} after heal"
        );
    }
}

#[test]
fn oneway_drops_only_one_direction() {
    if !netns::test_prerequisites("oneway") {
        return;
    }
    let net = net("oneway", &[1, 2, 3]);
    net.oneway(1, 2).unwrap();
    assert!(net.blocked(1, 2).unwrap() && !net.blocked(2, 1).unwrap());
    assert!(lost(&net, 1, 2));
    assert!(reaches(&net, 2, 1));
    assert!(reaches(&net, 1, 3) && reaches(&net, 3, 2));
}

#[test]
fn bridge_topology_lets_only_the_middle_see_both_ends() {
    if !netns::test_prerequisites("bridge_topology") {
        return;
    }
    let net = net("bridge", &[1, 2, 3]);
    net.bridge_topology(1, 2, 3).unwrap();
    assert!(lost(&net, 1, 3) && lost(&net, 3, 1));
    for (a, b) in [(1, 2), (2, 1), (2, 3), (3, 2)] {
        assert!(reaches(&net, a, b), "{a} -> {b}");
    }
}

#[test]
fn partitions_read_back_as_the_drops_they_were_built_from() {
    if !netns::test_prerequisites("partitions_read_back") {
        return;
    }
    let ids = [1, 2, 3, 4, 5];
    let net = net("partitions", &ids);
    for fault in [
        NetFault::Halves,
        NetFault::Partition(vec![vec![1, 4], vec![2]]),
        NetFault::CutHost(vec![2, 5]),
        NetFault::OneWay { from: 5, to: 1 },
        NetFault::Heal,
    ] {
        let want = net.inject(&fault).unwrap();
        assert_eq!(want, fault.drops(&ids).unwrap());
        assert_eq!(net.current_drops().unwrap(), want, "{fault}");
    }
    net.halves().unwrap();
    assert!(lost(&net, 2, 3) && reaches(&net, 1, 2) && reaches(&net, 4, 5));
    net.cut_host(&[2]).unwrap();
    assert!(lost(&net, 2, HOST_ID) && lost(&net, HOST_ID, 2));
    assert!(reaches(&net, 2, 3), "cut-host replaced the halves");
    let stranger = NetFault::Isolate(9);
    assert!(matches!(net.inject(&stranger), Err(NetError::Fault(_))));
}

#[test]
fn destroy_leaves_no_namespace_bridge_or_veth_and_can_be_repeated() {
    if !netns::test_prerequisites("destroy") {
        return;
    }
    let net = net("destroy", &[1, 2, 3]);
    let hash = net.hash().to_string();
    let handle = net.clone();
    assert_eq!(traces(&hash).len(), 7, "{:?}", traces(&hash));
    let report = net.destroy().unwrap();
    assert_eq!(report.removed.len(), 7, "{report:?}");
    assert!(report.leftover_pids.is_empty());
    assert_eq!(traces(&hash), Vec::<String>::new());
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&hash));
    let links = Command::new("ip").args(["link", "show"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&hash));
    assert_eq!(handle.destroy().unwrap().removed, Vec::<String>::new());
}

#[test]
fn a_panicking_owner_still_removes_its_network() {
    if !netns::test_prerequisites("panicking_owner") {
        return;
    }
    let hash = netns::lab_hash(&lab_id("panic"));
    let result = std::panic::catch_unwind(|| {
        let _net = net("panic", &[1, 2]);
        assert!(!traces(&hash).is_empty());
        panic!("a failing test");
    });
    assert!(result.is_err());
    assert_eq!(traces(&hash), Vec::<String>::new());
}

#[test]
fn the_same_lab_cannot_be_created_twice() {
    if !netns::test_prerequisites("same_lab_twice") {
        return;
    }
    let _net = net("twice", &[1]);
    match LabNet::create(&lab_id("twice"), &[1, 2]) {
        Err(NetError::InUse { owner, .. }) => assert_eq!(owner, lab_id("twice")),
        other => panic!("expected InUse, got {other:?}"),
    }
}

/// Kills the helper child if a test fails before it does.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CHILD_ENV: &str = "CLUSTERLAB_NETNS_GC_CHILD";

/// Not a test: the process `gc_collects_a_lab_whose_creator_died` starts and kills. It
/// creates a network, says so, and waits (at most two minutes) to be killed.
#[test]
#[ignore = "a helper process for gc_collects_a_lab_whose_creator_died"]
fn gc_child_process() {
    let Ok(id) = std::env::var(CHILD_ENV) else {
        return;
    };
    let net = LabNet::create(&id, &[1, 2]).unwrap();
    println!("READY {}", net.hash());
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn gc_collects_a_lab_whose_creator_died_and_only_that() {
    if !netns::test_prerequisites("gc_dead_creator") {
        return;
    }
    let mine = net("gc-mine", &[1]);
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "gc_child_process", "--ignored", "--nocapture"])
        .env(CHILD_ENV, lab_id("gc-child"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().unwrap();
    let hash = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("READY ").map(str::to_string))
        .expect("the child created its network");
    assert_eq!(hash, netns::lab_hash(&lab_id("gc-child")));
    assert_eq!(traces(&hash).len(), 5);

    let removed = netns::gc().unwrap();
    assert!(
        !removed.iter().any(|n| n.contains(&hash)),
        "a live lab was collected: {removed:?}"
    );
    assert_eq!(traces(&hash).len(), 5);

    drop(child); // SIGKILL: no Drop runs in the child
    netns::gc().unwrap();
    // Another test's create or gc may have collected it first; either way it is gone.
    assert_eq!(traces(&hash), Vec::<String>::new());
    assert_eq!(traces(mine.hash()).len(), 3, "our own live lab survived gc");
}

/// Removes a lab directory and the network persisted in it, pass or fail.
struct PersistedGuard(PathBuf);

impl Drop for PersistedGuard {
    fn drop(&mut self) {
        if let Ok(net) = LabNet::load(&self.0) {
            let _ = net.destroy();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_lab_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clab-netns-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn marker_exists(dir: &Path) -> bool {
    dir.join(MARKER_FILE).exists()
}

#[test]
fn a_persisted_lab_outlives_its_creator_until_its_marker_goes() {
    if !netns::test_prerequisites("persisted_lab") {
        return;
    }
    let dir = temp_lab_dir("persist");
    let guard = PersistedGuard(dir.clone());
    let mut net = net("persist", &[1, 2]);
    let hash = net.hash().to_string();
    net.persist(&dir).unwrap();
    drop(net);
    assert!(marker_exists(&dir));
    assert_eq!(
        traces(&hash).len(),
        5,
        "dropping a persisted lab removes nothing"
    );
    netns::gc().unwrap();
    assert_eq!(traces(&hash).len(), 5, "gc keeps a lab whose marker exists");

    let handle = LabNet::load(&dir).unwrap();
    assert_eq!(handle.hash(), hash);
    handle.oneway(2, 1).unwrap();
    assert!(LabNet::load(&dir).unwrap().blocked(2, 1).unwrap());
    drop(handle);
    assert_eq!(
        traces(&hash).len(),
        5,
        "dropping a loaded handle removes nothing"
    );

    std::fs::remove_dir_all(&dir).unwrap();
    netns::gc().unwrap();
    assert_eq!(traces(&hash), Vec::<String>::new());
    drop(guard);
}

#[test]
fn destroying_a_persisted_lab_removes_its_marker() {
    if !netns::test_prerequisites("destroy_persisted") {
        return;
    }
    let dir = temp_lab_dir("destroy-persisted");
    let _guard = PersistedGuard(dir.clone());
    let mut net = net("destroy-persisted", &[1]);
    net.persist(&dir).unwrap();
    let hash = net.hash().to_string();
    LabNet::load(&dir).unwrap().destroy().unwrap();
    assert!(!marker_exists(&dir));
    assert_eq!(traces(&hash), Vec::<String>::new());
}
