//! External OCF-style agents (`<dir>/<type>.sh`) from a test agent directory: lookup, the
//! environment they get, type ordering across agents, and stop's "not installed" rule.

mod resources_support;

use std::time::{Duration, Instant};

use resources_support::{agents_in, group, rm, TempDir};
use rgmanagerd::resources::{GroupError, ResourceGroup};

/// Installs `<type>.sh` agents that log `INSTANCE OP` to `$OCF_RESKEY_log` and dump their
/// environment to `env.INSTANCE.OP`; `OCF_RESKEY_rc_<op>` sets an exit code.
fn install(dir: &TempDir, types: &[&str]) {
    let d = dir.0.display();
    for t in types {
        dir.script(
            &format!("{t}.sh"),
            &format!(
                r#"echo "$OCF_RESOURCE_INSTANCE $1" >> "$OCF_RESKEY_log"
env | grep -E '^OCF_' | sort > "{d}/env.$OCF_RESOURCE_INSTANCE.$1"
eval "rc=\${{OCF_RESKEY_rc_$1:-0}}"
exit $rc"#
            ),
        );
    }
}

fn env_of(dir: &TempDir, instance: &str, op: &str) -> Vec<String> {
    dir.lines(&format!("env.{instance}.{op}"))
}

#[tokio::test]
async fn external_agents_get_every_attribute_and_the_ocf_variables() {
    let dir = TempDir::new("agents-env");
    install(&dir, &["nfsexport"]);
    let log = dir.path("log").display().to_string();
    let body = format!(
        r#"<service name="nfs">
             <nfsexport name="exp" log="{log}" options="rw,sync" __enforce_timeouts="yes">
               <action name="status" depth="10" interval="10m" timeout="45"/>
             </nfsexport>
           </service>"#
    );
    let mut g = group(&body, &agents_in(&dir.0));
    g.start().await.unwrap();
    let env = env_of(&dir, "nfsexport:exp", "start");
    for want in [
        "OCF_RESKEY_name=exp",
        "OCF_RESKEY_options=rw,sync",
        "OCF_RESKEY___enforce_timeouts=yes",
        "OCF_RESKEY_service_name=nfs",
        "OCF_RA_VERSION_MAJOR=1",
        "OCF_RA_VERSION_MINOR=0",
        "OCF_ROOT=/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE=nfsexport:exp",
        "OCF_RESOURCE_TYPE=nfsexport",
        "OCF_CHECK_LEVEL=0",
        "OCF_RESKEY_RGMANAGER_meta_refcnt=1",
        // Enforced with a 5 s start timeout: the agent is told 0, as rgmanager did.
        "OCF_RESKEY_RGMANAGER_meta_timeout=0",
    ] {
        assert!(env.iter().any(|l| l == want), "{want} not in {env:?}");
    }
    // The deep check runs with its depth (nfsexport's 1 h depth 0 is not due yet).
    g.status_at(Instant::now() + Duration::from_secs(601))
        .await
        .unwrap();
    let env = env_of(&dir, "nfsexport:exp", "status");
    assert!(env.iter().any(|l| l == "OCF_CHECK_LEVEL=10"), "{env:?}");
    assert!(
        env.iter()
            .any(|l| l == "OCF_RESKEY_RGMANAGER_meta_timeout=0"),
        "{env:?}"
    );
}

#[tokio::test]
async fn without_enforcement_the_agent_is_told_its_action_timeout() {
    let dir = TempDir::new("agents-meta");
    install(&dir, &["nfsclient"]);
    let log = dir.path("log").display().to_string();
    let body =
        format!(r#"<service name="s"><nfsclient name="c" target="*" log="{log}"/></service>"#);
    let mut g = group(&body, &agents_in(&dir.0));
    g.start().await.unwrap();
    let env = env_of(&dir, "nfsclient:c", "start");
    assert!(
        env.iter()
            .any(|l| l == "OCF_RESKEY_RGMANAGER_meta_timeout=90"),
        "{env:?}"
    );
}

#[tokio::test]
async fn types_start_by_level_across_native_and_external_agents() {
    let dir = TempDir::new("agents-order");
    install(&dir, &["lvm", "nfsexport", "nfsclient", "smb", "apache"]);
    let log = dir.path("log").display().to_string();
    let script = dir.script("s", &format!("echo \"script:s $1\" >> {log}"));
    let body = format!(
        r#"<service name="mixed">
             <apache name="www" log="{log}"/>
             <script name="s" file="{}"/>
             <smb name="share" log="{log}"/>
             <nfsexport name="exp" log="{log}">
               <nfsclient name="cl" target="*" log="{log}"/>
             </nfsexport>
             <lvm name="vg" log="{log}"/>
           </service>"#,
        script.display()
    );
    let mut g = group(&body, &agents_in(&dir.0));
    g.start().await.unwrap();
    g.stop().await.unwrap();
    let order = [
        "lvm:vg",
        "nfsexport:exp",
        "nfsclient:cl",
        "smb:share",
        "script:s",
        "apache:www",
    ];
    let mut want: Vec<String> = order.iter().map(|r| format!("{r} start")).collect();
    want.extend(order.iter().rev().map(|r| format!("{r} stop")));
    assert_eq!(dir.lines("log"), want);
}

#[tokio::test]
async fn a_missing_agent_names_the_type_and_the_directories_searched() {
    let dir = TempDir::new("agents-missing");
    let conf = rm(r#"<service name="db"><mysql name="m"/></service>"#);
    let mut agents = agents_in(&dir.0);
    agents.dirs.push("/nonexistent/rgm".into());
    let e = ResourceGroup::compile(&conf.services[0], &conf, &agents).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "service:db: <mysql name=\"m\">: no agent for resource type `mysql`: mysql.sh is not in {}:/nonexistent/rgm (set RGMANAGER_AGENT_PATH to search elsewhere)",
            dir.0.display()
        )
    );
    // Installed later, the next compile (every start compiles) finds it.
    install(&dir, &["mysql"]);
    assert!(ResourceGroup::compile(&conf.services[0], &conf, &agents).is_ok());
}

#[tokio::test]
async fn not_installed_on_stop_is_success_only_for_a_resource_not_started_here() {
    let dir = TempDir::new("agents-rc5");
    install(&dir, &["lvm"]);
    let log = dir.path("log").display().to_string();
    let body = format!(r#"<service name="s"><lvm name="vg" log="{log}" rc_stop="5"/></service>"#);
    let agents = agents_in(&dir.0);
    // Never started here: OCF_ERR_INSTALLED means nothing of it can run.
    group(&body, &agents).stop().await.unwrap();
    let mut g = group(&body, &agents);
    g.start().await.unwrap();
    let e = g.stop().await.unwrap_err();
    assert!(
        matches!(&e, GroupError::Stop { failures, .. } if failures[0].0 == "lvm:vg"),
        "{e}"
    );
    assert!(e.to_string().contains("exit code 5"), "{e}");
}

#[tokio::test]
async fn an_agent_that_is_not_executable_fails_clearly() {
    let dir = TempDir::new("agents-noexec");
    std::fs::write(dir.path("lvm.sh"), "#!/bin/sh\nexit 0\n").unwrap(); // mode 644
    let body = r#"<service name="s"><lvm name="vg"/></service>"#;
    let e = group(body, &agents_in(&dir.0)).start().await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("service:s: start of lvm:vg failed: cannot run "),
        "{text}"
    );
    assert!(text.contains("lvm.sh"), "{text}");
}
