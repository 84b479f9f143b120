//! cman_tool and ccs_tool against a running 3-node cluster (issue: cmand).

use clusterlab::lab::{binaries_present, node_env, simple_config, test_lab_dir, test_up};
use clusterlab::state::LabState;
use std::process::{Command, Output};

fn run_as(lab: &LabState, node: &str, args: &[&str]) -> Output {
    let n = lab.node(node).expect("node");
    Command::new(lab.bin_dir.join(args[0]))
        .args(&args[1..])
        .envs(node_env(lab, n))
        .output()
        .expect("run tool")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `Key: value` lines of `cman_tool status`, in order (spec/cman-qdisk.md §1.8).
fn status_fields(out: &str) -> Vec<(String, String)> {
    out.lines()
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("not a Key: value line: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn status_and_nodes_follow_the_original_layouts() {
    if !binaries_present() {
        return;
    }
    let (dir, conf) = test_lab_dir("tools", &simple_config("tools", 3, false, 1));
    let g = test_up(&dir, &conf, false);

    let o = run_as(&g.lab, "n2", &["cman_tool", "status"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let fields = status_fields(&out);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    let order = [
        "Version",
        "Config Version",
        "Cluster Name",
        "Cluster Id",
        "Cluster Member",
        "Cluster Generation",
        "Membership state",
        "Nodes",
        "Expected votes",
        "Total votes",
        "Node votes",
        "Quorum",
        "Active subsystems",
        "Flags",
        "Ports Bound",
        "Node name",
        "Node ID",
        "Multicast addresses",
        "Node addresses",
    ];
    assert_eq!(keys, order, "{out}");
    let get = |k: &str| fields.iter().find(|(key, _)| key == k).unwrap().1.clone();
    assert_eq!(get("Version"), " 6.2.0");
    assert_eq!(get("Cluster Name"), " tools");
    assert_eq!(get("Cluster Member"), " Yes");
    assert_eq!(get("Membership state"), " Cluster-Member");
    assert_eq!(get("Nodes"), " 3");
    assert_eq!(get("Expected votes"), " 3");
    assert_eq!(get("Total votes"), " 3");
    // Quorate: the value is followed by two spaces (the original's quirk).
    assert_eq!(get("Quorum"), " 2  ");
    assert_eq!(get("Node name"), " n2");
    assert_eq!(get("Node ID"), " 2");

    let o = run_as(&g.lab, "n1", &["cman_tool", "nodes"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("Node  Sts   Inc   Joined               Name")
    );
    for (i, l) in lines.enumerate() {
        // `%4u   %c  %5d   %s  %s`
        assert_eq!(l[..4].trim(), (i + 1).to_string(), "{l:?}");
        assert_eq!(&l[4..7], "   ");
        assert_eq!(&l[7..8], "M", "{l:?}");
        assert!(l.ends_with(&format!("  n{}", i + 1)), "{l:?}");
    }
    drop(g);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ccs_tool_update_reaches_every_node_and_older_versions_are_refused() {
    if !binaries_present() {
        return;
    }
    let (dir, conf) = test_lab_dir("ccs", &simple_config("ccs", 3, false, 1));
    let g = test_up(&dir, &conf, false);

    // n3 is down during the update and must get the new version when it rejoins.
    let mut g = g;
    clusterlab::lab::stop_node(&mut g.lab, "n3", true).unwrap();
    clusterlab::lab::wait_for_view(
        &g.lab,
        &["n1".into(), "n2".into()],
        &["n1".into(), "n2".into()],
        true,
        std::time::Duration::from_secs(30),
    )
    .unwrap();

    let newer = dir.join("v2.conf");
    std::fs::write(&newer, simple_config("ccs", 3, false, 2)).unwrap();
    let o = run_as(
        &g.lab,
        "n1",
        &["ccs_tool", "update", newer.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));

    clusterlab::lab::start_node(&mut g.lab, "n3").unwrap();
    let all: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
    clusterlab::lab::wait_for_view(&g.lab, &all, &all, true, std::time::Duration::from_secs(30))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for n in &g.lab.nodes {
        loop {
            let on_disk = std::fs::read_to_string(n.config_path()).unwrap();
            if on_disk.contains("config_version=\"2\"") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} still has:\n{on_disk}",
                n.name
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let o = run_as(&g.lab, &n.name, &["cman_tool", "version"]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "6.2.0 config 2",
            "{}",
            text(&o)
        );
    }

    let older = dir.join("v1.conf");
    std::fs::write(&older, simple_config("ccs", 3, false, 1)).unwrap();
    let o = run_as(
        &g.lab,
        "n3",
        &["ccs_tool", "update", older.to_str().unwrap()],
    );
    assert!(
        !o.status.success(),
        "an older config_version must be refused: {}",
        text(&o)
    );
    for n in &g.lab.nodes {
        assert!(std::fs::read_to_string(n.config_path())
            .unwrap()
            .contains("config_version=\"2\""));
    }
    drop(g);
    let _ = std::fs::remove_dir_all(&dir);
}
