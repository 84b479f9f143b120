//! rgmanagerd's own life cycle in the lab, on the reference deployment (two_node,
//! station200/201, vm:station182 in domain1, vm:station183 in domain2): real daemons in
//! network namespaces, real QEMU guests.
//!
//! - rgmanagerd alone is killed on the host of vm:station183 and started again: the guest's
//!   QEMU keeps running (same process), the new rgmanagerd adopts it (no second start, never
//!   two running copies, nobody fences the host);
//! - `clusvcadm -l` on station200: a relocation there is refused ("Temporary failure; try
//!   again", exit 250) until `clusvcadm -u`;
//! - rgmanagerd is stopped cleanly (SIGTERM) on station201: vm:station183 is handed over by
//!   live migration to station200 before it exits, and station201 is not fenced;
//! - rgmanagerd starts again on station201: domain2 prefers it, so the VM migrates back;
//! - `ccs_tool update` with a new `<vm>` put first in `<rm>` (every index moves): the new
//!   VM is placed, the running ones are not touched (same QEMU processes), no restart of
//!   rgmanagerd needed.
//!
//! Root and QEMU needed (skips with a reason; fails under CI=true).

mod rg_support;

use clusterlab::checker;
use clusterlab::demo::REFERENCE_CONF;
use clusterlab::lab::{self, netns_test_ready, test_lab_dir, test_up_stack, Network, Stack};
use libcluster::history::{Event, Record};
use rg_support::{
    qemu_pids, qemu_ready, run, running_qemus, service, wait, wait_r1, A, B, VM1, VM2,
};
use std::time::Duration;

const GUEST2: &str = "station183.example.com";

fn records_after(dir: &std::path::Path, t0: u64) -> Vec<Record> {
    checker::load(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.t_ns > t0)
        .collect()
}

#[test]
fn rgmanagerd_adopts_its_vms_after_a_crash_and_hands_them_over_when_stopped() {
    if !netns_test_ready("rgmanagerd_adopts_its_vms_after_a_crash_and_hands_them_over_when_stopped")
        || !qemu_ready()
    {
        return;
    }
    let (dir, conf) = test_lab_dir("rgm-life", REFERENCE_CONF);
    let mut g = test_up_stack(&dir, &conf, false, Network::Netns, Stack::Full);
    wait("rgmanager on both hosts", || {
        run(&g, A, &["clustat"]).1.matches("rgmanager").count() >= 2
    });
    for (vm, host) in [(VM1, A), (VM2, B)] {
        let (code, out) = run(&g, A, &["clusvcadm", "-e", vm, "-m", host]);
        assert_eq!(code, 0, "{out}");
    }
    wait("both started", || {
        service(&g, A, VM1) == Some((A.into(), "started".into()))
            && service(&g, A, VM2) == Some((B.into(), "started".into()))
    });
    let history = g.lab.history_dir();

    // 1. rgmanagerd alone dies on station201 and comes back: it adopts its guest.
    let pids = qemu_pids(&g, B, GUEST2);
    assert_eq!(pids.len(), 1, "one QEMU of {GUEST2} on {B}: {pids:?}");
    let t0 = clusterlab::bench::monotonic_ns();
    lab::stop_daemon(&mut g.lab, B, "rgmanagerd", true).expect("kill rgmanagerd");
    wait("station201 without rgmanager in clustat", || {
        let out = run(&g, A, &["clustat"]).1;
        out.lines()
            .any(|l| l.contains(B) && l.contains("Online") && !l.contains("rgmanager"))
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        qemu_pids(&g, B, GUEST2),
        pids,
        "the guest ran on without rgmanagerd"
    );
    lab::start_node(&mut g.lab, B).expect("start rgmanagerd again");
    wait_r1(&g, "rgmanager back on station201", || {
        run(&g, A, &["clustat"]).1.matches("rgmanager").count() >= 2
    });
    wait_r1(&g, "vm:station183 started on station201", || {
        service(&g, A, VM2) == Some((B.into(), "started".into()))
    });
    std::thread::sleep(Duration::from_secs(6)); // a status check and a sweep later
    assert_eq!(qemu_pids(&g, B, GUEST2), pids, "adopted, not started again");
    let after = records_after(&history, t0);
    assert!(
        !after.iter().any(|r| matches!(&r.event,
            Event::Vm { vm, op, .. } if vm.contains(GUEST2) && op == "start")),
        "{GUEST2} was started again"
    );
    assert!(
        !after
            .iter()
            .any(|r| matches!(r.event, Event::Fenced { .. })),
        "nobody is fenced for an rgmanagerd restart"
    );

    // 2. A locked node takes no service.
    let (code, out) = run(&g, A, &["clusvcadm", "-l"]);
    assert_eq!((code, out.trim()), (0, "Resource groups locked"));
    let (_, out) = run(&g, A, &["clusvcadm", "-S"]);
    assert_eq!(out.trim(), "Resource groups locked");
    let (code, out) = run(&g, B, &["clusvcadm", "-r", VM2, "-m", A]);
    assert_eq!(code, 250, "{out}");
    assert!(out.contains("Temporary failure; try again"), "{out}");
    assert_eq!(service(&g, A, VM2), Some((B.into(), "started".into())));
    let (code, out) = run(&g, A, &["clusvcadm", "-u"]);
    assert_eq!((code, out.trim()), (0, "Resource groups unlocked"));

    // 3. A clean stop of rgmanagerd on station201 hands its guest over, live.
    let t1 = clusterlab::bench::monotonic_ns();
    lab::stop_daemon(&mut g.lab, B, "rgmanagerd", false).expect("stop rgmanagerd");
    assert_eq!(
        running_qemus(&g).get(GUEST2),
        Some(&vec![A.to_string()]),
        "handed over to station200 before rgmanagerd exited"
    );
    assert!(
        qemu_pids(&g, B, GUEST2).is_empty(),
        "no QEMU of it left on {B}"
    );
    wait("clustat on station200 after the hand-over", || {
        service(&g, A, VM2) == Some((A.into(), "started".into()))
    });
    let after = records_after(&history, t1);
    assert!(
        after.iter().any(|r| r.node == 2
            && matches!(&r.event,
                Event::Vm { vm, op, ok: true, to: Some(1), .. } if vm.contains(GUEST2) && op == "migrate-out")),
        "handed over by live migration"
    );
    assert!(
        !after
            .iter()
            .any(|r| matches!(r.event, Event::Fenced { .. })),
        "a clean stop fences nobody"
    );

    // 4. Back on station201, domain2's preferred host: it migrates back.
    lab::start_node(&mut g.lab, B).expect("start rgmanagerd again");
    wait_r1(&g, "vm:station183 back on station201", || {
        service(&g, A, VM2) == Some((B.into(), "started".into()))
            && running_qemus(&g).get(GUEST2) == Some(&vec![B.to_string()])
    });

    // 5. A new VM in the configuration, first in <rm>: the running ones stay as they are.
    let pids1 = qemu_pids(&g, A, "station182.example.com");
    let pids2 = qemu_pids(&g, B, GUEST2);
    let node_a = g.lab.node(A).expect("station200");
    let mut conf = libcluster::config::load(&node_a.config_path())
        .expect("the node's cluster.conf")
        .config;
    let mut added = conf.rm.vms[0].clone();
    added.name = "station184.example.com".into();
    added.policy.autostart = true;
    conf.rm.vms.insert(0, added);
    conf.config_version += 1;
    clusterlab::lab::labconf::write_vm_definitions(&conf, &g.lab.dir.join("vms"))
        .expect("a definition for the new VM");
    let newer = dir.join("cluster.conf.new");
    std::fs::write(&newer, libcluster::config::to_xml(&conf)).expect("write the new file");
    let t2 = clusterlab::bench::monotonic_ns();
    let (code, out) = run(
        &g,
        A,
        &["ccs_tool", "update", newer.to_str().expect("a path")],
    );
    assert_eq!(code, 0, "{out}");
    wait_r1(&g, "the new VM started", || {
        service(&g, B, "vm:station184.example.com").is_some_and(|(_, st)| st == "started")
    });
    assert_eq!(service(&g, A, VM1), Some((A.into(), "started".into())));
    assert_eq!(service(&g, A, VM2), Some((B.into(), "started".into())));
    assert_eq!(
        qemu_pids(&g, A, "station182.example.com"),
        pids1,
        "untouched"
    );
    assert_eq!(qemu_pids(&g, B, GUEST2), pids2, "untouched");
    let after = records_after(&history, t2);
    assert!(
        !after.iter().any(|r| matches!(&r.event,
            Event::Vm { vm, op, .. } if !vm.contains("station184") && (op == "start" || op == "stop"))),
        "a running VM was started or stopped by the reconfiguration"
    );
    drop(g);
    let _ = std::fs::remove_dir_all(&dir);
}
