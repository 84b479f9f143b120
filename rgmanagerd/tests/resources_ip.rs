//! The native `ip` agent in a network namespace of our own (root only): subnet choice,
//! link monitoring, start/stop idempotence. Addresses are in 10.250.200.0/24 and exist only
//! inside the namespace, which a guard deletes even when the test fails.

mod resources_support;

use std::time::{Duration, Instant};

use resources_support::{group, inside, privileged, run_inside, sh};
use rgmanagerd::resources::{AgentConfig, AgentError, GroupError, Probe};

/// A network namespace this test created; deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rgm-{tag}-{}", std::process::id());
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &name])
            .output();
        sh(&format!("ip netns add {name}"));
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .output();
    }
}

fn addresses(dev: &str) -> String {
    sh(&format!("ip -o addr show dev {dev}"))
}

const TEST: &str = "ip_addresses_go_on_the_interface_of_their_subnet_and_follow_its_link";

#[test]
fn ip_addresses_go_on_the_interface_of_their_subnet_and_follow_its_link() {
    if inside(TEST) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(in_namespace());
        return;
    }
    if !privileged(TEST, &["ip"]) {
        return;
    }
    let ns = Netns::new("ip");
    let n = &ns.0;
    // v0 holds the subnet; its peer v1 decides v0's carrier.
    sh(&format!(
        "ip -n {n} link add v0 type veth peer name v1 && \
         ip -n {n} addr add 10.250.200.1/24 dev v0 && \
         ip -n {n} link set lo up && ip -n {n} link set v1 up && ip -n {n} link set v0 up"
    ));
    run_inside(&["ip", "netns", "exec", n], TEST, Duration::from_secs(120));
}

async fn in_namespace() {
    let agents = AgentConfig::with_path(Some("/nonexistent"));
    let svc = r#"<service name="vip">
                   <ip address="10.250.200.10"/>
                   <ip address="10.250.200.11/28" monitor_link="0"/>
                 </service>"#;
    let mut g = group(svc, &agents);
    g.start().await.unwrap();
    let a = addresses("v0");
    assert!(a.contains("10.250.200.10/24"), "the subnet's prefix: {a}");
    assert!(
        a.contains("10.250.200.11/28"),
        "the resource's own prefix: {a}"
    );
    // Starting again finds them in place.
    g.start().await.unwrap();
    g.status_at(Instant::now() + Duration::from_secs(61))
        .await
        .unwrap();
    assert_eq!(group(svc, &agents).probe().await, Probe::Running);

    // No carrier on v0: monitor_link fails the first address, not the second.
    sh("ip link set v1 down");
    let e = group(svc, &agents).status().await.unwrap_err();
    match &e {
        GroupError::Status {
            resource, reason, ..
        } => {
            assert_eq!(resource, "ip:10.250.200.10");
            assert_eq!(reason, "10.250.200.10 has no link on v0");
        }
        other => panic!("{other}"),
    }
    let only_second =
        r#"<service name="v2"><ip address="10.250.200.11/28" monitor_link="0"/></service>"#;
    group(only_second, &agents).status().await.unwrap();
    // A new address is not put on a link that is down.
    let e = group(
        r#"<service name="v3"><ip address="10.250.200.12"/></service>"#,
        &agents,
    )
    .start()
    .await
    .unwrap_err();
    assert!(
        matches!(&e, GroupError::Start { source: AgentError::Refused { reason }, .. }
            if reason == "interface v0 has no link (monitor_link is on)"),
        "{e}"
    );
    sh("ip link set v1 up");

    // Stop removes ours only, and stopping what is absent succeeds.
    g.stop().await.unwrap();
    let a = addresses("v0");
    assert!(
        !a.contains("10.250.200.10/") && !a.contains("10.250.200.11/"),
        "{a}"
    );
    assert!(a.contains("10.250.200.1/24"), "{a}");
    g.stop().await.unwrap();
    let e = group(svc, &agents).status().await.unwrap_err();
    assert!(
        e.to_string()
            .ends_with("10.250.200.10 is not configured on any interface"),
        "{e}"
    );
    assert_eq!(group(svc, &agents).probe().await, Probe::Stopped);

    // No interface holds the subnet.
    let e = group(
        r#"<service name="v4"><ip address="10.250.99.5"/></service>"#,
        &agents,
    )
    .start()
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "service:v4: start of ip:10.250.99.5 failed: refused: no interface has an address in a subnet containing 10.250.99.5"
    );
}
