//! Netns labs come up: 3 and 5 nodes in one quorate view, each node's daemons inside its
//! own namespace at its 10.250.X.ID address, the APC switch on the lab bridge, status JSON
//! as documented; a configuration naming a real-world address is refused and leaves
//! nothing behind. Root only (skips with a reason; fails under CI=true).

use clusterlab::lab::{self, netns_test_ready, simple_config, test_lab_dir, test_up_with, Network};
use clusterlab::state::LabMode;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The network namespace a process runs in, as `ip netns identify` names it.
fn netns_of(pid: i32) -> String {
    let out = Command::new("ip")
        .args(["netns", "identify", &pid.to_string()])
        .output()
        .expect("ip netns identify");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn check_lab(n: u32, name: &str) {
    let (dir, conf) = test_lab_dir(name, &simple_config(name, n, false, 1));
    let g = test_up_with(&dir, &conf, false, Network::Netns);
    assert_eq!(g.lab.mode, LabMode::Netns);
    let net = lab::lab_net(&g.lab).unwrap();
    for node in &g.lab.nodes {
        let ns = node
            .netns
            .clone()
            .expect("a netns lab names each node's namespace");
        assert_eq!(node.address, net.addr(node.nodeid).unwrap().to_string());
        assert!(node.address.starts_with("10.250."), "{}", node.address);
        assert_eq!(
            node.outlet, node.nodeid,
            "outlets follow node ids without fence_apc"
        );
        let pid = node.daemons["cmand"].pid;
        assert_eq!(
            netns_of(pid),
            ns,
            "cmand of {} runs in its namespace",
            node.name
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&clusterlab::report::status_json(&g.lab)).unwrap();
    assert_eq!(json["mode"], "netns");
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), n as usize);
    for (j, node) in nodes.iter().zip(&g.lab.nodes) {
        assert_eq!(j["name"], node.name.as_str());
        assert_eq!(j["nodeid"], node.nodeid);
        assert_eq!(j["address"], node.address.as_str());
        assert_eq!(j["netns"], node.netns.as_deref().unwrap());
        assert_eq!(j["outlet"], node.outlet);
        assert_eq!(j["power"], "on");
        assert_eq!(j["pids"]["cmand"], node.daemons["cmand"].pid);
    }
    let sw = &json["power_switch"];
    assert_eq!(sw["address"], net.host_addr().to_string());
    assert!(sw["port"].as_u64().unwrap() > 0);
    assert_eq!(
        (sw["login"].as_str(), sw["password"].as_str()),
        (Some("apc"), Some("apc"))
    );
    assert_eq!(json["drops"], serde_json::json!([]));
    let table = clusterlab::report::status_table(&g.lab);
    assert!(
        table.contains("netns mode") && table.contains("Dropped links: none"),
        "{table}"
    );
    let hash = net.hash().to_string();
    drop(g);
    assert!(
        !Path::new("/run/netns")
            .join(format!("cl{hash}-n1"))
            .exists(),
        "down removes the namespaces"
    );
    assert!(!dir.join("netns.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_three_node_netns_lab_forms_one_quorate_view() {
    if netns_test_ready("a_three_node_netns_lab_forms_one_quorate_view") {
        check_lab(3, "ns3");
    }
}

#[test]
fn a_five_node_netns_lab_forms_one_quorate_view() {
    if netns_test_ready("a_five_node_netns_lab_forms_one_quorate_view") {
        check_lab(5, "ns5");
    }
}

#[test]
fn a_config_naming_a_real_world_address_is_refused_and_leaves_nothing() {
    if !netns_test_ready("a_config_naming_a_real_world_address_is_refused_and_leaves_nothing") {
        return;
    }
    let text = simple_config("leak", 2, true, 1).replace(
        "</cluster>",
        "  <fencedevices>\n    <fencedevice name=\"ilo\" agent=\"fence_ilo\" ipaddr=\"192.168.77.5\"/>\n  </fencedevices>\n</cluster>",
    );
    let (dir, conf) = test_lab_dir("leak", &text);
    let opts = lab::UpOptions {
        config: conf,
        dir: dir.clone(),
        bin_dir: lab::default_bin_dir(),
        realtime: false,
        timeout: Duration::from_secs(60),
    };
    let lab_opts = lab::LabOptions {
        network: Network::Netns,
        owned: true,
        stack: lab::Stack::Membership,
    };
    let err = lab::up_with(&opts, &lab_opts).expect_err("up must refuse the config");
    assert!(
        err.contains("192.168.77.5") && err.contains("outside"),
        "{err}"
    );
    let state = clusterlab::state::LabState::load(&dir).unwrap();
    assert!(
        state.nodes.iter().all(|n| n.daemons.is_empty()),
        "no daemon started"
    );
    assert!(
        state.power_switch.unwrap().process.is_none(),
        "the switch was stopped"
    );
    assert!(!dir.join("netns.json").exists(), "the network was removed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_guard_whose_directory_was_removed_still_stops_everything() {
    if !netns_test_ready("a_guard_whose_directory_was_removed_still_stops_everything") {
        return;
    }
    let (dir, conf) = test_lab_dir("rmdir", &simple_config("rmdir", 2, true, 1));
    let g = test_up_with(&dir, &conf, false, Network::Netns);
    let mut procs: Vec<_> = g
        .lab
        .nodes
        .iter()
        .flat_map(|n| n.daemons.values().cloned())
        .collect();
    procs.extend(g.lab.power_switch.as_ref().and_then(|s| s.process.clone()));
    let ns: Vec<String> = g.lab.nodes.iter().filter_map(|n| n.netns.clone()).collect();
    assert_eq!((procs.len(), ns.len()), (3, 2));
    std::fs::remove_dir_all(&dir).unwrap();
    drop(g);
    assert!(
        procs.iter().all(|p| !p.alive()),
        "a process outlived the guard"
    );
    assert!(
        ns.iter().all(|n| !Path::new("/run/netns").join(n).exists()),
        "a namespace outlived the guard"
    );
}
