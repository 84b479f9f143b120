//! `fence_node` end to end: the real `fence_apc` (Debian fence-agents, unchanged) run by our
//! runner from a cluster.conf, against the APC simulator on 127.0.0.1.
//!
//! Needs /usr/sbin/fence_apc, /usr/bin/telnet and the `fence_node` binary (built by `cargo
//! test --workspace` or `cargo build -p fenced`). Without them the tests print why and pass,
//! except under CI=true, where that is a failure.

use clusterlab::apc::{self, ApcServer, Power, PowerChange, ServerConfig, SwitchModel};
use clusterlab::lab::default_bin_dir;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The agent's prompt timeouts, raised so a loaded machine cannot fail a run meant to work.
const SLOW_MACHINE: &str = r#"shell_timeout="15" login_timeout="15" power_timeout="30""#;

fn prerequisites() -> Option<PathBuf> {
    let fence_node = default_bin_dir().join("fence_node");
    let missing: Vec<String> = [
        Path::new("/usr/sbin/fence_apc"),
        Path::new("/usr/bin/telnet"),
        fence_node.as_path(),
    ]
    .iter()
    .filter(|p| !p.exists())
    .map(|p| p.display().to_string())
    .collect();
    if missing.is_empty() {
        return Some(fence_node);
    }
    let why = format!(
        "missing {} (Debian packages fence-agents and telnet; `cargo build -p fenced`)",
        missing.join(", ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {why}");
    }
    eprintln!("skipped: {why}");
    None
}

type Changes = Arc<Mutex<Vec<PowerChange>>>;

fn start_switch() -> (ApcServer, Changes) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = ServerConfig::new(SwitchModel::new(8).unwrap());
    config.reboot_delay = Duration::from_millis(500);
    let changes: Changes = Arc::default();
    let seen = Arc::clone(&changes);
    let server = apc::spawn(listener, config, move |c| seen.lock().unwrap().push(c)).unwrap();
    (server, changes)
}

struct Lab {
    dir: PathBuf,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("fence-node-lab-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Lab { dir }
    }

    /// Writes cluster.conf: node1 with `methods`, and `devices` as <fencedevices>.
    fn conf(&self, methods: &str, devices: &str) -> PathBuf {
        let text = format!(
            r#"<cluster name="lab" config_version="1">
  <clusternodes>
    <clusternode name="node1.lab" nodeid="1"><fence>{methods}</fence></clusternode>
    <clusternode name="node2.lab" nodeid="2"/>
  </clusternodes>
  <fencedevices>{devices}</fencedevices>
</cluster>
"#
        );
        let path = self.dir.join("cluster.conf");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn fence_node(&self, bin: &Path, conf: &Path, args: &[&str]) -> Output {
        Command::new(bin)
            .arg("--config")
            .arg(conf)
            .args(args)
            // No fenced here: fence_node must only note that.
            .env("CLUSTER_RUNTIME_DIR", &self.dir)
            .output()
            .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn apc_device(name: &str, server: &ApcServer, password: &str, extra: &str) -> String {
    format!(
        r#"<fencedevice name="{name}" agent="/usr/sbin/fence_apc" ipaddr="127.0.0.1" ipport="{}" login="apc" passwd="{password}" {extra}/>"#,
        server.local_addr().port()
    )
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect()
}

fn change(outlet: u32, power: Power) -> PowerChange {
    PowerChange { outlet, power }
}

#[test]
fn fence_node_reboots_the_outlet_through_the_real_fence_apc() {
    let Some(bin) = prerequisites() else { return };
    let (server, changes) = start_switch();
    let lab = Lab::new("reboot");
    let conf = lab.conf(
        r#"<method name="1"><device name="apc" port="3"/></method>"#,
        &apc_device("apc", &server, "apc", SLOW_MACHINE),
    );
    let out = lab.fence_node(&bin, &conf, &["-vv", "node1"]);
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(0), "{lines:#?}");
    assert_eq!(
        lines[0],
        "fence node1.lab dev 0.0 agent /usr/sbin/fence_apc result: success"
    );
    let port = server.local_addr().port();
    assert_eq!(
        lines[1],
        format!(
            "agent args: port=3 nodename=node1.lab agent=/usr/sbin/fence_apc ipaddr=127.0.0.1 \
             ipport={port} login=apc passwd=apc shell_timeout=15 login_timeout=15 power_timeout=30 "
        )
    );
    assert_eq!(lines[2], "fence node1.lab success");
    assert!(
        lines[3].starts_with("fence_node: fenced is not running"),
        "{lines:#?}"
    );
    assert_eq!(
        *changes.lock().unwrap(),
        vec![change(3, Power::Off), change(3, Power::On)]
    );
    assert_eq!(server.outlets()[2].power, Power::On);
}

#[test]
fn a_wrong_password_fails_and_leaves_the_outlet_alone() {
    let Some(bin) = prerequisites() else { return };
    let (server, changes) = start_switch();
    let lab = Lab::new("password");
    let conf = lab.conf(
        r#"<method name="1"><device name="apc" port="3"/></method>"#,
        &apc_device("apc", &server, "wrong", ""),
    );
    let out = lab.fence_node(&bin, &conf, &["node1.lab"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr_lines(&out), vec!["fence node1.lab failed"]);
    assert!(changes.lock().unwrap().is_empty());
}

#[test]
fn method_one_failing_falls_back_to_method_two() {
    let Some(bin) = prerequisites() else { return };
    let (server, changes) = start_switch();
    let lab = Lab::new("fallback");
    let devices = format!(
        "{}{}",
        apc_device("apc-bad", &server, "wrong", ""),
        apc_device("apc-good", &server, "apc", SLOW_MACHINE)
    );
    let conf = lab.conf(
        r#"<method name="primary"><device name="apc-bad" port="1"/></method>
           <method name="backup"><device name="apc-good" port="2" action="off"/></method>"#,
        &devices,
    );
    let out = lab.fence_node(&bin, &conf, &["-v", "NODE1"]);
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(0), "{lines:#?}");
    let summary: Vec<&String> = lines.iter().filter(|l| l.starts_with("fence ")).collect();
    assert_eq!(
        summary,
        vec![
            "fence node1.lab dev 0.0 agent /usr/sbin/fence_apc result: error from agent",
            "fence node1.lab dev 1.0 agent /usr/sbin/fence_apc result: success",
            "fence node1.lab success",
        ]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("agent \"/usr/sbin/fence_apc\" reports:")),
        "{lines:#?}"
    );
    assert_eq!(*changes.lock().unwrap(), vec![change(2, Power::Off)]);
    assert_eq!(server.outlets()[0].power, Power::On);
}

#[test]
fn an_unknown_node_names_the_config_file() {
    let Some(bin) = prerequisites() else { return };
    let lab = Lab::new("unknown");
    let conf = lab.conf("", "");
    let out = lab.fence_node(&bin, &conf, &["node9"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("node9") && text.contains(&conf.display().to_string()),
        "{text}"
    );
}
