//! Real QEMU: live migration between two "hosts" (two state directories) on loopback.
//! QEMU absent: skipped with a printed reason, or a failure when CI=true.

mod qemu_support;

use std::net::{SocketAddr, TcpListener};

use qemu_support::{process_alive_with, qemu_present, Lab};
use rgmanagerd::driver::{Driver, DriverError, VmState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_migration_over_loopback_moves_the_guest_and_reports_its_downtime() {
    if !qemu_present("migrate") {
        return;
    }
    let lab = Lab::new("mig");
    let (source, target) = (lab.driver("src"), lab.driver("dst"));
    let def = lab.guest("mvm");
    let src_pid = source.start(&def).await.unwrap().pid.unwrap();

    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let incoming = target.prepare_incoming(&def, listen).await.unwrap();
    assert!(
        incoming.uri.starts_with("tcp:127.0.0.1:"),
        "{}",
        incoming.uri
    );
    assert!(!incoming.uri.ends_with(":0"), "{}", incoming.uri);
    assert_eq!(target.status("mvm").await.unwrap(), VmState::Incoming);
    // A target waiting for a guest does not count as running it.
    assert_eq!(
        target.list().await.unwrap(),
        [("mvm".to_string(), VmState::Incoming)]
    );

    let stats = source.migrate("mvm", &incoming.uri).await.unwrap();
    println!(
        "migration: total {} ms, downtime {:?} ms, setup {:?} ms, {:?} bytes",
        stats.total_ms, stats.downtime_ms, stats.setup_ms, stats.transferred_bytes
    );
    assert!(stats.downtime_ms.is_some() && stats.transferred_bytes.unwrap_or(0) > 0);

    assert_eq!(target.status("mvm").await.unwrap(), VmState::Running);
    assert_eq!(source.status("mvm").await.unwrap(), VmState::Stopped);
    assert!(
        !process_alive_with(src_pid as i32, &lab.dir),
        "source qemu still runs"
    );
    // The migrated guest is no longer "incoming": aborting must not kill it.
    let e = target.abort_incoming("mvm").await.unwrap_err();
    assert!(matches!(e, DriverError::AlreadyPresent { .. }), "{e}");
    assert_eq!(target.status("mvm").await.unwrap(), VmState::Running);
    target.kill("mvm").await.unwrap();
    assert_eq!(target.status("mvm").await.unwrap(), VmState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_to_a_port_where_nothing_listens_fails_and_the_guest_stays() {
    if !qemu_present("migrate_fail") {
        return;
    }
    let lab = Lab::new("migfail");
    let source = lab.driver("src");
    let def = lab.guest("fvm");
    let pid = source.start(&def).await.unwrap().pid.unwrap();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    match source
        .migrate("fvm", &format!("tcp:127.0.0.1:{port}"))
        .await
    {
        Err(DriverError::MigrationFailed {
            reason,
            source_state,
            ..
        }) => {
            println!("migration failed as expected: {reason}");
            assert_eq!(source_state, VmState::Running);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(source.status("fvm").await.unwrap(), VmState::Running);
    assert!(process_alive_with(pid as i32, &lab.dir));
    source.kill("fvm").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_incoming_guest_is_cleaned_up_by_the_target() {
    if !qemu_present("abort_incoming") {
        return;
    }
    let lab = Lab::new("abort");
    let target = lab.driver("dst");
    let def = lab.guest("avm");
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let h = target.prepare_incoming(&def, listen).await.unwrap();
    let pid = h.pid.unwrap();
    // A second prepare for the same guest is refused while the first waits.
    let e = target.prepare_incoming(&def, listen).await.unwrap_err();
    assert!(matches!(e, DriverError::AlreadyPresent { .. }), "{e}");
    target.abort_incoming("avm").await.unwrap();
    assert!(!process_alive_with(pid as i32, &lab.dir));
    assert_eq!(target.status("avm").await.unwrap(), VmState::Stopped);
}
