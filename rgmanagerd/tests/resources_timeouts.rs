//! Hung agents never wedge a group: `__enforce_timeouts` kills at the action timeout, and
//! without it the safety bound still does; the agent's whole process group goes.

mod resources_support;

use std::time::{Duration, Instant};

use resources_support::{agents_in, group, read_pid, wait_gone, TempDir};
use rgmanagerd::resources::{AgentError, GroupError};

/// A script that, for `op`, starts a child sleeper (PID in `NAME.child`) and waits on it.
fn hanging(dir: &TempDir, name: &str, op: &str) -> String {
    let child = dir.path(&format!("{name}.child"));
    let env = dir.path(&format!("{name}.env"));
    dir.script(
        name,
        &format!(
            r#"echo "$OCF_RESKEY_RGMANAGER_meta_timeout" > {env}
if [ "$1" = "{op}" ]; then sleep 300 & echo $! > {child}; wait; fi
exit 0"#,
            env = env.display(),
            child = child.display()
        ),
    )
    .display()
    .to_string()
}

#[tokio::test]
async fn an_enforced_start_timeout_kills_the_agent_and_its_children() {
    let dir = TempDir::new("timeout-enforced");
    let s = hanging(&dir, "hang", "start");
    let body = format!(
        r#"<service name="slow">
             <script name="hang" file="{s}" __enforce_timeouts="1">
               <action name="start" timeout="1"/>
             </script>
           </service>"#
    );
    let mut g = group(&body, &agents_in(&dir.0));
    let t = Instant::now();
    let e = g.start().await.unwrap_err();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );
    match &e {
        GroupError::Start {
            resource,
            source:
                AgentError::TimedOut {
                    op: "start",
                    enforced: true,
                    after,
                    ..
                },
            ..
        } => {
            assert_eq!(resource, "script:hang");
            assert_eq!(*after, Duration::from_secs(1));
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("__enforce_timeouts"), "{e}");
    let child = read_pid(&dir.path("hang.child"));
    assert!(
        wait_gone(child.0, Duration::from_secs(5)),
        "sleeper {} survived",
        child.0
    );
    assert_eq!(
        dir.lines("hang.env"),
        ["0"],
        "enforced: the agent is told 0"
    );
}

#[tokio::test]
async fn without_enforcement_the_safety_bound_kills_a_hung_status() {
    let dir = TempDir::new("timeout-safety");
    let s = hanging(&dir, "hang", "status");
    let body = format!(r#"<service name="slow"><script name="hang" file="{s}"/></service>"#);
    let mut agents = agents_in(&dir.0);
    agents.safety_timeout = Duration::from_millis(800);
    let mut g = group(&body, &agents);
    g.start().await.unwrap();
    let t = Instant::now();
    let e = g
        .status_at(Instant::now() + Duration::from_secs(31))
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        matches!(&e, GroupError::Status { resource, .. } if resource == "script:hang"),
        "{e}"
    );
    assert!(e.to_string().contains("the safety bound"), "{e}");
    let child = read_pid(&dir.path("hang.child"));
    assert!(
        wait_gone(child.0, Duration::from_secs(5)),
        "sleeper {} survived",
        child.0
    );
}

#[tokio::test]
async fn a_hung_stop_times_out_and_the_other_resources_still_stop() {
    let dir = TempDir::new("timeout-stop");
    let hang = hanging(&dir, "hang", "stop");
    let log = dir.path("log");
    let other = dir.script("other", &format!("echo \"other $1\" >> {}", log.display()));
    let body = format!(
        r#"<service name="slow">
             <script name="other" file="{}"/>
             <script name="hang" file="{hang}" __enforce_timeouts="1"><action name="stop" timeout="1"/></script>
           </service>"#,
        other.display()
    );
    let mut g = group(&body, &agents_in(&dir.0));
    g.start().await.unwrap();
    let e = g.stop().await.unwrap_err();
    match &e {
        GroupError::Stop { failures, .. } => {
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].0, "script:hang");
            assert!(matches!(
                failures[0].1,
                AgentError::TimedOut { op: "stop", .. }
            ));
        }
        other => panic!("{other}"),
    }
    assert_eq!(dir.lines("log"), ["other start", "other stop"]);
    let child = read_pid(&dir.path("hang.child"));
    assert!(wait_gone(child.0, Duration::from_secs(5)));
}
