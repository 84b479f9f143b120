//! `<script>` resources run from temporary scripts (no root needed): group start, stop,
//! status scheduling, probe, and the per-node registry the daemon uses.

mod resources_support;

use std::time::{Duration, Instant};

use resources_support::{agents_in, group, read_pid, rm, wait_gone, TempDir};
use rgmanagerd::resources::{GroupError, Probe, ResourceError, ServiceGroups};

/// A script logging `NAME OP` to `log`, whose status passes while `NAME.up` exists and whose
/// start fails when `NAME.fail-start` exists (stop: `NAME.fail-stop`).
fn logging_script(dir: &TempDir, name: &str) -> String {
    let d = dir.0.display();
    dir.script(
        name,
        &format!(
            r#"echo "{name} $1" >> {d}/log
case "$1" in
  start) [ -e {d}/{name}.fail-start ] && exit 1; touch {d}/{name}.up ;;
  stop) [ -e {d}/{name}.fail-stop ] && exit 4; rm -f {d}/{name}.up ;;
  status) [ -e {d}/{name}.up ] || exit 3 ;;
esac
exit 0"#
        ),
    )
    .display()
    .to_string()
}

fn three(dir: &TempDir) -> String {
    let (a, b, c) = (
        logging_script(dir, "a"),
        logging_script(dir, "b"),
        logging_script(dir, "c"),
    );
    format!(
        r#"<service name="web">
             <script name="a" file="{a}"/>
             <script name="b" file="{b}"><script name="c" file="{c}"/></script>
           </service>"#
    )
}

#[tokio::test]
async fn a_group_starts_in_order_and_stops_in_exact_reverse() {
    let dir = TempDir::new("script-order");
    let mut g = group(&three(&dir), &agents_in(&dir.0));
    assert_eq!(g.start_order(), ["script:a", "script:b", "script:c"]);
    g.start().await.unwrap();
    g.stop().await.unwrap();
    assert_eq!(
        dir.lines("log"),
        ["a start", "b start", "c start", "c stop", "b stop", "a stop"]
    );
}

#[tokio::test]
async fn a_failed_start_ends_at_the_failing_resource_and_names_it() {
    let dir = TempDir::new("script-startfail");
    let mut g = group(&three(&dir), &agents_in(&dir.0));
    std::fs::write(dir.path("b.fail-start"), "").unwrap();
    let e = g.start().await.unwrap_err();
    match &e {
        GroupError::Start {
            service, resource, ..
        } => {
            assert_eq!(
                (service.as_str(), resource.as_str()),
                ("service:web", "script:b")
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .starts_with("service:web: start of script:b failed: `"),
        "{e}"
    );
    assert!(
        e.to_string().ends_with("start` failed with exit code 1"),
        "{e}"
    );
    assert_eq!(dir.lines("log"), ["a start", "b start"], "c never ran");
    // The caller recovers by stopping the whole group: every resource, in reverse.
    g.stop().await.unwrap();
    assert_eq!(dir.lines("log")[2..], ["c stop", "b stop", "a stop"]);
}

#[tokio::test]
async fn stop_tries_every_resource_and_fails_if_any_failed() {
    let dir = TempDir::new("script-stopfail");
    let mut g = group(&three(&dir), &agents_in(&dir.0));
    g.start().await.unwrap();
    std::fs::write(dir.path("c.fail-stop"), "").unwrap();
    let e = g.stop().await.unwrap_err();
    match &e {
        GroupError::Stop { failures, .. } => {
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].0, "script:c");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("exit code 4"), "{e}");
    assert_eq!(dir.lines("log")[3..], ["c stop", "b stop", "a stop"]);
}

#[tokio::test]
async fn status_runs_when_due_and_a_failure_sticks_until_the_group_restarts() {
    let dir = TempDir::new("script-status");
    let a = logging_script(&dir, "a");
    let body = format!(r#"<service name="web"><script name="a" file="{a}"/></service>"#);
    let mut g = group(&body, &agents_in(&dir.0));
    g.start().await.unwrap();
    let t0 = Instant::now();
    let statuses = |d: &TempDir| {
        d.lines("log")
            .iter()
            .filter(|l| l.ends_with("status"))
            .count()
    };
    // script: depth 0 every 30 s, counted from the start.
    g.status_at(t0 + Duration::from_secs(10)).await.unwrap();
    assert_eq!(statuses(&dir), 0, "not due yet: success assumed");
    g.status_at(t0 + Duration::from_secs(31)).await.unwrap();
    assert_eq!(statuses(&dir), 1);
    std::fs::remove_file(dir.path("a.up")).unwrap();
    g.status_at(t0 + Duration::from_secs(45)).await.unwrap();
    assert_eq!(statuses(&dir), 1, "last result reused");
    let e = g.status_at(t0 + Duration::from_secs(62)).await.unwrap_err();
    assert!(
        matches!(&e, GroupError::Status { resource, depth: 0, .. } if resource == "script:a"),
        "{e}"
    );
    assert!(e.to_string().contains("exit code 3"), "{e}");
    // Not due again, but the failure stands.
    assert!(g.status_at(t0 + Duration::from_secs(70)).await.is_err());
    assert_eq!(statuses(&dir), 2);
    g.stop().await.unwrap();
    g.start().await.unwrap();
    g.status().await.unwrap();
}

#[tokio::test]
async fn an_action_override_changes_the_status_interval() {
    let dir = TempDir::new("script-override");
    let a = logging_script(&dir, "a");
    let body = format!(
        r#"<service name="web"><script name="a" file="{a}">
             <action name="status" depth="0" interval="1h30m"/></script></service>"#
    );
    let mut g = group(&body, &agents_in(&dir.0));
    g.start().await.unwrap();
    let t0 = Instant::now();
    g.status_at(t0 + Duration::from_secs(3600)).await.unwrap();
    assert!(!dir.lines("log").iter().any(|l| l.ends_with("status")));
    g.status_at(t0 + Duration::from_secs(5400)).await.unwrap();
    assert!(dir.lines("log").iter().any(|l| l == "a status"));
}

#[tokio::test]
async fn a_probe_tells_running_from_stopped_from_partial_and_adopts_a_running_group() {
    let dir = TempDir::new("script-probe");
    let body = three(&dir);
    let agents = agents_in(&dir.0);
    assert_eq!(group(&body, &agents).probe().await, Probe::Stopped);
    for n in ["a", "b", "c"] {
        std::fs::write(dir.path(&format!("{n}.up")), "").unwrap();
    }
    let mut g = group(&body, &agents);
    assert_eq!(g.probe().await, Probe::Running);
    // Adopted: checks count from the probe, and a stop takes everything down.
    g.status_at(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    g.stop().await.unwrap();
    std::fs::write(dir.path("b.up"), "").unwrap();
    assert_eq!(group(&body, &agents).probe().await, Probe::Partial);
    // Probes never start or stop anything.
    assert!(!dir.lines("log").iter().any(|l| l.ends_with("start")));
}

#[tokio::test]
async fn a_daemon_left_by_a_start_script_does_not_hold_up_the_start() {
    let dir = TempDir::new("script-daemon");
    let pidfile = dir.path("daemon.pid");
    let s = dir.script(
        "daemonize",
        &format!(
            "case \"$1\" in start) sleep 300 & echo $! > {} ; echo started ;; esac; exit 0",
            pidfile.display()
        ),
    );
    let body = format!(
        r#"<service name="d"><script name="d" file="{}"/></service>"#,
        s.display()
    );
    let mut g = group(&body, &agents_in(&dir.0));
    let t = Instant::now();
    g.start().await.unwrap();
    let daemon = read_pid(&pidfile);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        !wait_gone(daemon.0, Duration::from_millis(100)),
        "a successful start kills nothing"
    );
}

#[tokio::test]
async fn the_node_registry_runs_services_by_id_and_compiles_on_demand() {
    let dir = TempDir::new("script-registry");
    let conf = rm(&three(&dir));
    let groups = ServiceGroups::new(agents_in(&dir.0));
    groups.start(&conf, "service:web").await.unwrap();
    groups.status(&conf, "service:web").await.unwrap();
    // A stop after a "restart" (fresh registry) compiles from the configuration.
    let fresh = ServiceGroups::new(agents_in(&dir.0));
    fresh.stop(&conf, "service:web").await.unwrap();
    assert_eq!(dir.lines("log")[3..], ["c stop", "b stop", "a stop"]);
    let e = groups.start(&conf, "service:nope").await.unwrap_err();
    assert!(
        matches!(e, GroupError::Config(ResourceError::NoSuchService { .. })),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "service:nope: no such service in cluster.conf"
    );
}

#[tokio::test]
async fn a_service_without_resources_runs_only_as_a_mark() {
    let conf = rm(r#"<service name="empty"/>"#);
    let groups = ServiceGroups::default();
    assert!(matches!(
        groups.status(&conf, "service:empty").await,
        Err(GroupError::NotStarted { .. })
    ));
    groups.start(&conf, "service:empty").await.unwrap();
    groups.status(&conf, "service:empty").await.unwrap();
    assert_eq!(
        groups.probe(&conf, "service:empty").await.unwrap(),
        Probe::Stopped
    );
    groups.stop(&conf, "service:empty").await.unwrap();
    assert!(groups.status(&conf, "service:empty").await.is_err());
}
