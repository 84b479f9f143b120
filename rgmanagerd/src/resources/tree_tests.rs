use super::*;
use crate::resources::group::{ocf_env, ResourceGroup};
use crate::resources::schedule::StatusAction;
use libcluster::config;
use std::path::Path;
use std::time::Duration;

/// A cluster.conf with `rm` as the body of `<rm>`.
fn rm(body: &str) -> Rm {
    let text = format!(
        r#"<cluster name="c" config_version="1">
             <clusternodes><clusternode name="a" nodeid="1"/></clusternodes>
             <rm>{body}</rm>
           </cluster>"#
    );
    match config::parse(&text, "test.conf") {
        Ok(p) => p.config.rm,
        Err(d) => panic!("{d}"),
    }
}

/// Agent directories with the given `<type>.sh` files (not run by these tests).
fn agents_with(types: &[&str]) -> AgentConfig {
    let dir = std::env::temp_dir().join(format!(
        "rgm-tree-{}-{}",
        std::process::id(),
        types.join("-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for t in types {
        std::fs::write(dir.join(format!("{t}.sh")), "#!/bin/sh\nexit 0\n").unwrap();
    }
    AgentConfig::with_path(Some(&dir.display().to_string()))
}

fn compile_one(rm: &Rm, agents: &AgentConfig) -> Result<Vec<CompiledResource>, ResourceError> {
    compile(&rm.services[0], rm, agents)
}

fn names(list: &[CompiledResource]) -> Vec<&str> {
    list.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn children_start_by_type_level_then_document_order_and_before_their_own_children() {
    let rm = rm(r#"
      <service name="web">
        <script name="b" file="/etc/init.d/b"/>
        <ip address="10.250.200.10"/>
        <nfsexport name="exp"/>
        <fs name="data" device="/dev/sdb1" mountpoint="/srv/data">
          <nfsexport name="inner"/>
          <fs name="sub" device="/dev/sdb2" mountpoint="/srv/data/sub"/>
        </fs>
        <script name="a" file="/etc/init.d/a"/>
        <apache name="www"/>
        <lvm name="vg"/>
        <ip address="10.250.200.11"/>
      </service>"#);
    let agents = agents_with(&["nfsexport", "apache", "lvm"]);
    let list = compile_one(&rm, &agents).unwrap();
    assert_eq!(
        names(&list),
        [
            "lvm:vg",
            "fs:data",
            "fs:sub",
            "nfsexport:inner",
            "nfsexport:exp",
            "ip:10.250.200.10",
            "ip:10.250.200.11",
            "script:b",
            "script:a",
            "apache:www",
        ]
    );
    // Children point at their parent; stop is the exact reverse of start.
    assert_eq!(list[2].parent, Some(1));
    assert_eq!(list[3].parent, Some(1));
    assert_eq!(list[0].parent, None);
    let group = ResourceGroup::compile(&rm.services[0], &rm, &agents).unwrap();
    let mut reversed = group.start_order();
    reversed.reverse();
    assert_eq!(group.stop_order(), reversed);
}

#[test]
fn a_reference_takes_the_global_attributes_and_actions_and_keeps_its_own_children() {
    let rm = rm(r#"
      <resources>
        <fs name="data" device="/dev/sdb1" mountpoint="/srv/data" fstype="ext4">
          <action name="status" depth="20" interval="1h30m"/>
        </fs>
        <script name="httpd" file="/etc/init.d/httpd"/>
      </resources>
      <service name="web">
        <fs ref="data" __enforce_timeouts="1">
          <script ref="httpd"/>
          <action name="status" depth="0" timeout="7"/>
        </fs>
      </service>
      <service name="other"><script ref="httpd"/></service>"#);
    let list = compile_one(&rm, &AgentConfig::default()).unwrap();
    assert_eq!(names(&list), ["fs:data", "script:httpd"]);
    let fs = &list[0];
    assert_eq!(fs.attr("device"), Some("/dev/sdb1"));
    assert_eq!(fs.attr("fstype"), Some("ext4"));
    assert_eq!(fs.attr("ref"), None);
    assert!(fs.enforce_timeouts, "per-place __ attributes apply");
    let depth = |d: u32| fs.actions.status.iter().find(|a| a.depth == d).copied();
    assert_eq!(depth(20).unwrap().interval, Duration::from_secs(5400));
    assert_eq!(depth(0).unwrap().timeout, Duration::from_secs(7));
    assert_eq!(list[1].parent, Some(0));
    assert_eq!(list[1].refcnt, 2, "referenced by both services");
    assert_eq!(fs.refcnt, 1);
}

#[test]
fn inherited_attributes_come_from_the_nearest_ancestor_and_the_service() {
    let rm = rm(r#"
      <service name="nfs" nfslock="1">
        <fs name="export" device="/dev/sdc1" mountpoint="/exports/a" fsid="77">
          <nfsexport name="e">
            <nfsclient name="world" target="*" options="rw"/>
            <nfsclient name="one" target="h1" path="/exports/a/sub"/>
          </nfsexport>
        </fs>
      </service>"#);
    let list = compile_one(&rm, &agents_with(&["nfsexport", "nfsclient"])).unwrap();
    let by = |n: &str| list.iter().find(|r| r.name == n).unwrap();
    let e = by("nfsexport:e");
    assert_eq!(e.attr("path"), Some("/exports/a"));
    assert_eq!(e.attr("device"), Some("/dev/sdc1"));
    let w = by("nfsclient:world");
    assert_eq!(w.attr("path"), Some("/exports/a"), "through the export");
    assert_eq!(w.attr("fsid"), Some("77"));
    assert_eq!(w.attr("nfslock"), Some("1"));
    assert_eq!(w.attr("service_name"), Some("nfs"));
    assert_eq!(
        by("nfsclient:one").attr("path"),
        Some("/exports/a/sub"),
        "own value wins"
    );
    assert_eq!(w.attr("use_cache"), None);
}

#[test]
fn the_agent_environment_carries_every_attribute_and_the_ocf_variables() {
    let rm = rm(r#"<service name="web"><script name="s" file="/bin/true"/></service>"#);
    let agents = AgentConfig::default();
    let list = compile_one(&rm, &agents).unwrap();
    let env = ocf_env(&list[0], &agents, 10, 30);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("OCF_RESKEY_file"), Some("/bin/true"));
    assert_eq!(get("OCF_RESKEY_name"), Some("s"));
    assert_eq!(get("OCF_RESKEY_service_name"), Some("web"));
    assert_eq!(get("OCF_RA_VERSION_MAJOR"), Some("1"));
    assert_eq!(get("OCF_RA_VERSION_MINOR"), Some("0"));
    assert_eq!(get("OCF_ROOT"), Some("/usr/lib/ocf"));
    assert_eq!(get("OCF_RESOURCE_INSTANCE"), Some("script:s"));
    assert_eq!(get("OCF_RESOURCE_TYPE"), Some("script"));
    assert_eq!(get("OCF_CHECK_LEVEL"), Some("10"));
    assert_eq!(get("OCF_RESKEY_RGMANAGER_meta_refcnt"), Some("1"));
    assert_eq!(get("OCF_RESKEY_RGMANAGER_meta_timeout"), Some("30"));
}

#[test]
fn errors_name_the_service_the_resource_and_the_attribute() {
    let agents = AgentConfig::with_path(Some("/nonexistent/a:/nonexistent/b"));
    let cases = [
        (r#"<ip/>"#, "service:web: <ip> has no address"),
        (
            r#"<ip address="10.0.0.300"/>"#,
            "service:web: <ip address=\"10.0.0.300\">: address `10.0.0.300`: not an IPv4 or IPv6 address",
        ),
        (
            r#"<fs name="data" mountpoint="/srv"/>"#,
            "service:web: <fs name=\"data\"> has no device",
        ),
        (
            r#"<script file="init.d/x"/>"#,
            "service:web: <script file=\"init.d/x\">: file `init.d/x`: not an absolute path",
        ),
        (
            r#"<script file="/x" __enforce_timeouts="sometimes"/>"#,
            "service:web: <script file=\"/x\">: __enforce_timeouts `sometimes`: not a boolean (1/0, yes/no, true/false, on/off)",
        ),
        (
            r#"<script file="/x"><action name="status" interval="often"/></script>"#,
            "service:web: <script file=\"/x\">: <action> interval `often`: not a time such as 30, 5m or 1h30m",
        ),
        (
            r#"<nfsexport name="e"/>"#,
            "service:web: <nfsexport name=\"e\">: no agent for resource type `nfsexport`: nfsexport.sh is not in /nonexistent/a:/nonexistent/b (set RGMANAGER_AGENT_PATH to search elsewhere)",
        ),
    ];
    for (body, want) in cases {
        let rm = rm(&format!(r#"<service name="web">{body}</service>"#));
        let e = compile_one(&rm, &agents).unwrap_err();
        assert_eq!(e.to_string(), want, "{body}");
    }
    // A nested problem is found too, and nothing else of the group is kept.
    let rm = rm(
        r#"<service name="web"><fs name="d" device="/dev/x" mountpoint="/m"><ip/></fs></service>"#,
    );
    assert_eq!(
        compile_one(&rm, &agents).unwrap_err().to_string(),
        "service:web: <ip> has no address"
    );
}

#[test]
fn an_unknown_reference_and_runaway_nesting_are_errors() {
    let mut r = rm(r#"
      <resources><ip address="10.250.200.10"/></resources>
      <service name="web"><ip ref="10.250.200.10"/></service>"#);
    r.resources.clear(); // validation would have caught it; compile must too
    let e = compile_one(&r, &AgentConfig::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "service:web: <ip ref=\"10.250.200.10\"> refers to no <ip address=\"10.250.200.10\"> in <resources>"
    );
    let mut deep = Resource {
        kind: "script".into(),
        attrs: vec![("file".into(), "/bin/true".into())],
        ..Resource::default()
    };
    for _ in 0..MAX_DEPTH {
        deep = Resource {
            children: vec![deep],
            ..Resource {
                kind: "script".into(),
                attrs: vec![("file".into(), "/bin/true".into())],
                ..Resource::default()
            }
        };
    }
    let service = Service {
        name: "deep".into(),
        children: vec![deep],
        ..Service::default()
    };
    let e = compile(&service, &Rm::default(), &AgentConfig::default()).unwrap_err();
    assert!(matches!(e, ResourceError::TooDeep { .. }), "{e}");
}

#[test]
fn instances_are_named_by_primary_then_identity_then_position() {
    let rm = rm(r#"
      <service name="web">
        <script file="/etc/init.d/httpd"/>
        <fs device="/dev/sdb1" mountpoint="/srv/data"/>
        <apache/>
      </service>"#);
    let list = compile_one(&rm, &agents_with(&["apache"])).unwrap();
    assert_eq!(
        names(&list),
        ["fs:/srv/data", "script:/etc/init.d/httpd", "apache:#3"]
    );
    assert_eq!(
        list[1].actions.status,
        [StatusAction {
            depth: 0,
            interval: Duration::from_secs(30),
            timeout: Duration::ZERO
        }]
    );
    assert!(matches!(&list[2].agent, AnyAgent::External(a) if a.program().ends_with("apache.sh")));
    assert!(
        matches!(&list[1].agent, AnyAgent::Script(a) if a.program() == Path::new("/etc/init.d/httpd"))
    );
}

#[test]
fn a_service_without_resources_compiles_to_nothing_and_actions_are_not_resources() {
    let rm = rm(r#"<service name="empty"><action name="status" interval="5"/></service>"#);
    assert!(compile_one(&rm, &AgentConfig::default())
        .unwrap()
        .is_empty());
}
