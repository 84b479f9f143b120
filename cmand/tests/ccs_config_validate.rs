//! Runs the built `ccs_config_validate` against the reference files.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ccs_config_validate"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn reference_example_validates_with_two_warnings_on_stderr() {
    let file = repo_file("docs/examples/dom0cluster1.conf");
    let out = run(&["-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Configuration validates\n");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    for l in &lines {
        let rest = l
            .strip_prefix(file.to_str().unwrap())
            .expect("each line starts with the file name");
        let fields: Vec<&str> = rest.splitn(4, ':').collect();
        assert!(
            fields[1].parse::<u32>().is_ok() && fields[2].parse::<u32>().is_ok(),
            "{l}"
        );
        assert!(fields[3].starts_with(" warning: "), "{l}");
    }
}

#[test]
fn appendix_b_fails_with_its_line_and_column() {
    let file = repo_file("libcluster/tests/data/appendix-b.conf");
    let out = run(&["-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "Configuration fails to validate\n");
    let expected = format!(
        "{}:51:14: error: malformed closing tag `</resources`",
        file.display()
    );
    assert!(
        text(&out.stderr).starts_with(&expected),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn quiet_mode_prints_only_errors() {
    let ok = run(&[
        "-q",
        "-f",
        repo_file("docs/examples/dom0cluster1.conf")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(
        (ok.status.code(), ok.stdout.len(), ok.stderr.len()),
        (Some(0), 0, 0)
    );
    let bad = run(&[
        "-q",
        "-f",
        repo_file("libcluster/tests/data/appendix-b.conf")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(bad.stdout.is_empty());
    assert_eq!(text(&bad.stderr).lines().count(), 1);
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let out = run(&["-f", "/nonexistent/cluster.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("/nonexistent/cluster.conf:1:1: error: cannot read the file")
    );
}

#[test]
fn version_and_usage_errors_follow_convention() {
    let v = run(&["-V"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(text(&v.stdout).starts_with("ccs_config_validate "));
    assert_eq!(run(&["--bogus"]).status.code(), Some(2));
    assert!(text(&run(&["-h"]).stdout).contains("-f <FILE>"));
}
