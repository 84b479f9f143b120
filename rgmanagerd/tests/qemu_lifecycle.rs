//! Real QEMU: start a guest from an xm-style file, query it, stop it, re-adopt it.
//! QEMU absent: skipped with a printed reason, or a failure when CI=true.

mod qemu_support;

use std::time::Duration;

use qemu_support::{process_alive_with, qemu_present, Lab};
use rgmanagerd::driver::qemu::QemuOptions;
use rgmanagerd::driver::{Driver, DriverError, StopOptions, StopOutcome, VmState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_from_an_xm_file_runs_then_stops_by_force_when_it_ignores_acpi() {
    if !qemu_present("lifecycle") {
        return;
    }
    let lab = Lab::new("life");
    let qemu = lab.driver("n1");
    let def = lab.guest("lab1");
    let running = qemu.start(&def).await.unwrap();
    assert_eq!(running.state, VmState::Running);
    let pid = running.pid.unwrap();
    assert!(process_alive_with(pid as i32, &lab.dir));
    assert_eq!(qemu.status("lab1").await.unwrap(), VmState::Running);
    assert_eq!(
        qemu.list().await.unwrap(),
        [("lab1".to_string(), VmState::Running)]
    );
    // Starting a running guest succeeds and leaves it alone, as vm.sh did.
    assert_eq!(qemu.start(&def).await.unwrap().pid, Some(pid));

    // Firmware without an OS ignores the ACPI power button: the timeout runs out and
    // the driver falls back to quit.
    let opts = StopOptions {
        timeout: Duration::from_millis(500),
        no_kill: false,
    };
    assert_eq!(
        qemu.stop("lab1", opts).await.unwrap(),
        StopOutcome::Destroyed
    );
    assert_eq!(qemu.status("lab1").await.unwrap(), VmState::Stopped);
    assert!(
        !process_alive_with(pid as i32, &lab.dir),
        "qemu {pid} still runs"
    );
    assert_eq!(qemu.list().await.unwrap(), []);
    assert_eq!(
        qemu.stop("lab1", opts).await.unwrap(),
        StopOutcome::WasStopped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_kill_leaves_a_guest_that_ignores_acpi_running_and_says_so() {
    if !qemu_present("no_kill") {
        return;
    }
    let lab = Lab::new("nokill");
    // Plain TCG here, the path CI machines without /dev/kvm take through accel=kvm:tcg.
    let mut opts = QemuOptions::default();
    opts.args.accel = "tcg".to_string();
    let qemu = lab.driver_with("n1", opts);
    qemu.start(&lab.guest("lab2")).await.unwrap();
    let opts = StopOptions {
        timeout: Duration::from_millis(300),
        no_kill: true,
    };
    let e = qemu.stop("lab2", opts).await.unwrap_err();
    assert!(matches!(e, DriverError::StopTimedOut { .. }), "{e}");
    assert_eq!(qemu.status("lab2").await.unwrap(), VmState::Running);
    qemu.kill("lab2").await.unwrap();
    assert_eq!(qemu.status("lab2").await.unwrap(), VmState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_driver_readopts_a_running_guest_from_the_state_directory() {
    if !qemu_present("readopt") {
        return;
    }
    let lab = Lab::new("adopt");
    let pid = {
        let first = lab.driver("n1");
        first.start(&lab.guest("lab3")).await.unwrap().pid.unwrap()
        // `first` is dropped here, as when rgmanagerd exits; QEMU is daemonized.
    };
    let second = lab.driver("n1");
    assert_eq!(second.status("lab3").await.unwrap(), VmState::Running);
    assert_eq!(
        second.list().await.unwrap(),
        [("lab3".to_string(), VmState::Running)]
    );
    second.kill("lab3").await.unwrap();
    assert!(!process_alive_with(pid as i32, &lab.dir));
    assert_eq!(second.status("lab3").await.unwrap(), VmState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_disk_or_a_bad_qemu_argument_is_an_error_and_nothing_runs() {
    if !qemu_present("errors") {
        return;
    }
    let lab = Lab::new("err");
    let qemu = lab.driver("n1");
    let mut def = lab.guest("lab4");
    let image = def.disks[0].path.clone();
    std::fs::remove_file(&image).unwrap();
    match qemu.start(&def).await {
        Err(DriverError::MissingDisk { path, .. }) => assert_eq!(path, image),
        other => panic!("{other:?}"),
    }
    let mut def2 = lab.guest("lab4");
    def2.qemu_args = vec!["-no-such-option".to_string()];
    def = def2;
    match qemu.start(&def).await {
        Err(e @ DriverError::StartFailed { .. }) => {
            let text = e.to_string();
            assert!(text.contains("no-such-option"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(qemu.status("lab4").await.unwrap(), VmState::Stopped);
    assert_eq!(qemu.list().await.unwrap(), []);
}
