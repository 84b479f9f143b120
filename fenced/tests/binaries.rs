//! The binaries this crate installs answer their most basic calls. (Cargo builds a package's
//! binaries for its integration tests: this file is also what makes `cargo test --workspace`
//! build them for the lab's tests, which run them.)

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin).args(args).output().expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn fence_apc_prints_its_metadata() {
    let (code, out) = run(env!("CARGO_BIN_EXE_fence_apc"), &["-o", "metadata"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("<?xml version=\"1.0\" ?>"), "{out}");
    assert!(out.contains("<resource-agent name=\"fence_apc\""), "{out}");
}

#[test]
fn fence_manual_prints_its_metadata() {
    let (code, out) = run(env!("CARGO_BIN_EXE_fence_manual"), &["-o", "metadata"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("fence_manual"), "{out}");
}

#[test]
fn fence_ack_manual_without_a_node_prints_its_usage() {
    let (_, out) = run(env!("CARGO_BIN_EXE_fence_ack_manual"), &[]);
    assert!(out.contains("usage: fence_ack_manual"), "{out}");
}

#[test]
fn the_tools_and_the_daemon_know_their_version_and_usage() {
    let (code, out) = run(env!("CARGO_BIN_EXE_fence_tool"), &["-V"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("fence_tool "), "{out}");
    let (code, out) = run(env!("CARGO_BIN_EXE_fence_node"), &["-V"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(env!("CARGO_BIN_EXE_fenced"), &["--help"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("fence domain daemon"), "{out}");
}
