//! The Jepsen runner with VMs (`clusterlab jepsen --vms`): the whole stack (cmand, fenced,
//! rgmanagerd with real QEMU guests) under kill, pause, power and partition, a VM workload
//! of random enable/disable/relocate/migrate requests, and the lab's QEMU observer. One
//! seed each, on the reference deployment (two_node, two VMs in ordered restricted
//! domains) and on a 3-node cluster with 3 VMs (an ordered restricted domain, an unordered
//! unrestricted one, no domain). Each must pass; R1, R1h, F1vm and R2 must be in the
//! verdict, and planted violations in the 3-node run's files must fail R1 and R1h.
//!
//! Root and QEMU needed (skips with a reason; fails under CI=true). Replay by hand:
//! `clusterlab jepsen --config FILE --time 20s --seed N --nemesis kill,pause,partition,power
//! --vms --keep` (docs/testing.md).

use clusterlab::checker;
use clusterlab::demo::REFERENCE_CONF;
use clusterlab::jepsen::{self, schedule::NemesisKind, vms, JepsenOptions};
use clusterlab::lab::{self, netns_test_ready};
use clusterlab::vmload::qemu_ready;
use libcluster::history::Event;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Three hosts, three guests: g1 in an ordered restricted domain (n1, then n2), g2 in an
/// unordered unrestricted one (n2, n3), g3 without a domain.
const THREE_NODES: &str = r#"<?xml version="1.0"?>
<cluster name="vms3" config_version="1">
  <fence_daemon post_fail_delay="0" post_join_delay="3"/>
  <cman/>
  <clusternodes>
    <clusternode name="n1" nodeid="1" votes="1"/>
    <clusternode name="n2" nodeid="2" votes="1"/>
    <clusternode name="n3" nodeid="3" votes="1"/>
  </clusternodes>
  <rm>
    <failoverdomains>
      <failoverdomain name="ordered12" ordered="1" restricted="1">
        <failoverdomainnode name="n1" priority="1"/>
        <failoverdomainnode name="n2" priority="2"/>
      </failoverdomain>
      <failoverdomain name="loose23" ordered="0" restricted="0">
        <failoverdomainnode name="n2"/>
        <failoverdomainnode name="n3"/>
      </failoverdomain>
    </failoverdomains>
    <vm name="g1" domain="ordered12" autostart="1" migrate="live" recovery="relocate"/>
    <vm name="g2" domain="loose23" autostart="1" migrate="live" recovery="restart"/>
    <vm name="g3" autostart="0" migrate="live" recovery="restart"/>
  </rm>
</cluster>
"#;

/// Runs one seed; it must pass. Returns the lab directory (kept) and the test's base.
fn run_seed(tag: &str, conf_text: &str, seed: u64) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("clab-jvms-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("test dir");
    let conf = base.join("cluster.conf");
    std::fs::write(&conf, conf_text).expect("write config");
    let mut o = JepsenOptions::new(conf.clone(), seed, Duration::from_secs(20));
    o.dir = Some(base.join("lab"));
    o.nemesis = NemesisKind::ALL.to_vec();
    o.stack = lab::Stack::Full;
    o.vms = true;
    let (verdict, dir) = jepsen::run(&o).unwrap_or_else(|e| panic!("{tag} seed {seed}: {e}"));
    let table = verdict.table();
    eprintln!("{tag}, seed {seed}:\n{table}");
    assert!(
        verdict.passed(),
        "{tag} seed {seed} failed; lab directory {} kept\n{table}\nreplay: clusterlab jepsen --config {} --time 20s --seed {seed} --nemesis kill,pause,partition,power --vms",
        dir.display(),
        conf.display()
    );
    for id in ["R1 ", "R1h", "F1vm", "R2 ", "F1 "] {
        assert!(
            table.contains(&format!("  {id}")),
            "{id} missing from the verdict:\n{table}"
        );
    }
    (dir, base)
}

/// The checks can fail on a real run's files: a doctored observation (a second host
/// reporting a guest running) fails R1, a doctored record (the last VM start repeated on
/// another host) fails R1h.
fn planted_violations_are_caught(dir: &Path) {
    assert!(jepsen::check_dir(dir).expect("check").passed());
    let obs_file = dir.join(vms::OBSERVATIONS_FILE);
    let original = std::fs::read_to_string(&obs_file).expect("observations");
    let obs = vms::load_observations(dir).expect("observations");
    let mut o = obs
        .iter()
        .rev()
        .find(|o| o.vms.keys().any(|g| o.running(g).len() == 1))
        .expect("a sample with a running guest")
        .clone();
    let guest = o
        .vms
        .keys()
        .find(|g| o.running(g).len() == 1)
        .cloned()
        .expect("guest");
    let host = o.running(&guest)[0];
    let other = if host == 1 { 2 } else { 1 };
    o.vms.get_mut(&guest).expect("guest").push(vms::Seen {
        node: other,
        status: "running".into(),
    });
    o.t_ns += 1;
    let line = serde_json::to_string(&o).expect("encode");
    std::fs::write(&obs_file, format!("{original}{line}\n")).expect("doctor observations");
    let table = jepsen::check_dir(dir).expect("check").table();
    assert!(
        table.contains("R1   one host per VM (QEMU)   VIOLATED"),
        "{table}"
    );
    std::fs::write(&obs_file, original).expect("restore observations");

    let end_ns = vms::VmLog::load(dir).expect("vmload.json").end_ns;
    let h = checker::load(&dir.join("history")).expect("history");
    let start = h
        .iter()
        .rev()
        .find(|r| {
            r.t_ns < end_ns && matches!(&r.event, Event::Vm { op, ok: true, .. } if op == "start")
        })
        .expect("a VM start in the run")
        .clone();
    let mut twin = start.clone();
    twin.node = if start.node == 1 { 2 } else { 1 };
    twin.t_ns += 1;
    let lab = clusterlab::state::LabState::load(dir).expect("lab.json");
    let name = &lab
        .nodes
        .iter()
        .find(|n| n.nodeid == twin.node)
        .expect("node")
        .name;
    let file = dir.join("history").join(format!("{name}.jsonl"));
    let mut text = std::fs::read_to_string(&file).expect("node history");
    text.push_str(&(twin.to_line() + "\n"));
    std::fs::write(&file, text).expect("doctor history");
    let table = jepsen::check_dir(dir).expect("check").table();
    assert!(table.contains("R1h  one host per VM (recs)"), "{table}");
    assert!(table.contains("VIOLATED"), "{table}");
}

#[test]
fn vm_seeds_pass_on_the_reference_deployment_and_three_nodes() {
    if !netns_test_ready("vm_seeds_pass_on_the_reference_deployment_and_three_nodes")
        || !qemu_ready()
    {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (_, base) = run_seed("ref", REFERENCE_CONF, 41);
    let _ = std::fs::remove_dir_all(&base);
    let (dir, base) = run_seed("3n", THREE_NODES, 42);
    planted_violations_are_caught(&dir);
    let _ = std::fs::remove_dir_all(&base);
}
