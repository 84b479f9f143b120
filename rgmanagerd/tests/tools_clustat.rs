//! clustat's layouts byte for byte against golden files (tests/data/clustat_*), and the
//! exit rules of -s, -m and -Q. `BLESS=1 cargo test -p rgmanagerd --test tools_clustat`
//! rewrites the files; review the diff before committing it.

use libcluster::ipc::rgmanager::{RgMember, RgService, RgStatus};
use libcluster::rgmanager::{Flags, ServiceState};
use libcluster::NodeId;
use rgmanagerd::tools::clustat::{text, RenderOpts, Report};
use rgmanagerd::tools::xml::{json, xml};
use std::path::PathBuf;

/// Tue Nov 25 16:02:00 2008 UTC.
const NOW: i64 = 1_227_628_920;

fn member(name: &str, id: u32) -> RgMember {
    RgMember {
        name: name.into(),
        id,
        online: true,
        local: false,
        rgmanager: true,
        master: false,
        qdisk: false,
        estranged: false,
    }
}

fn service(name: &str, state: ServiceState, owner: u32, last: u32) -> RgService {
    let mut s = RgService::new(name);
    s.record.state = state;
    s.record.owner = (owner != 0).then_some(NodeId(owner));
    s.record.last_owner = (last != 0).then_some(NodeId(last));
    s.last_transition_unix_s = Some(NOW - 3_600);
    s
}

/// The reference deployment (two dom0s and a quorum disk) with a service in every state
/// that prints differently.
fn reference() -> RgStatus {
    let mut local = member("station200.example.com", 1);
    local.local = true;
    local.master = true;
    let mut qdisk = member("/dev/mpath/quorumpl", 0);
    qdisk.qdisk = true;
    qdisk.rgmanager = false;
    let mut down = member("station202.example.com", 3);
    down.online = false;
    down.rgmanager = false;
    let mut frozen = service("vm:station184.example.com", ServiceState::Started, 2, 1);
    frozen.record.flags = Flags(Flags::FROZEN);
    let mut both = service("service:nfs", ServiceState::Stopped, 0, 2);
    both.record.flags = Flags(Flags::FROZEN | Flags::PARTIAL);
    both.record.restarts = 2;
    let mut never = service("service:web", ServiceState::Disabled, 0, 0);
    never.last_transition_unix_s = None;
    RgStatus {
        cluster_name: "dom0cluster1".into(),
        cluster_id: 4711,
        generation: 12,
        quorate: true,
        local_node_id: 1,
        locked: false,
        // Deliberately unsorted: clustat sorts (nodes by id, the quorum device last).
        members: vec![qdisk, down, member("station201.example.com", 2), local],
        services: vec![
            service("vm:station183.example.com", ServiceState::Started, 1, 0),
            service("vm:station182.example.com", ServiceState::Started, 1, 2),
            frozen,
            both,
            never,
            service("vm:failed", ServiceState::Failed, 0, 9),
            service("vm:recovering", ServiceState::Recovering, 2, 1),
        ],
    }
}

fn golden(name: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(format!("clustat_{name}.txt"));
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1)", path.display()));
    assert_eq!(got, want, "golden file {}", path.display());
}

fn opts() -> RenderOpts {
    RenderOpts::new(NOW)
}

fn check(name: &str, report: Report, exit: u8) {
    golden(name, &report.text);
    assert_eq!(report.exit, exit, "{name}");
}

#[test]
fn default_report_without_a_tty_uses_80_columns_and_full_names() {
    check("default", text(&reference(), &opts()), 0);
}

#[test]
fn default_report_on_a_wide_tty_strips_service_prefixes() {
    let o = RenderOpts {
        columns: 120,
        is_tty: true,
        ..opts()
    };
    check("tty120", text(&reference(), &o), 0);
}

#[test]
fn narrow_tty_cuts_names_to_their_columns() {
    let o = RenderOpts {
        columns: 60,
        is_tty: true,
        ..opts()
    };
    check("tty60", text(&reference(), &o), 0);
}

#[test]
fn local_time_zone_moves_the_status_line() {
    fn cest(_: i64) -> i32 {
        7_200
    }
    let o = RenderOpts {
        utc_offset_s: cest,
        ..opts()
    };
    let report = text(&reference(), &o);
    assert!(report
        .text
        .starts_with("Cluster Status for dom0cluster1 @ Tue Nov 25 18:02:00 2008\n"));
}

#[test]
fn long_format_lists_every_field() {
    let o = RenderOpts {
        long: true,
        ..opts()
    };
    check("long", text(&reference(), &o), 0);
}

#[test]
fn inquorate_without_rgmanager_shows_members_only() {
    let mut st = reference();
    st.quorate = false;
    let o = RenderOpts {
        rgmanager: false,
        ..opts()
    };
    check("no_rgmanager", text(&st, &o), 0);
}

#[test]
fn one_service_prints_its_header_and_row_and_exits_by_state() {
    let o = |s: &str| RenderOpts {
        service: Some(s.into()),
        ..opts()
    };
    check(
        "service",
        text(&reference(), &o("station182.example.com")),
        0,
    );
    // Bare names: as given, then service:, then vm:.
    assert_eq!(text(&reference(), &o("nfs")).exit, 110);
    assert_eq!(text(&reference(), &o("web")).exit, 119);
    assert_eq!(text(&reference(), &o("vm:failed")).exit, 114);
    assert_eq!(text(&reference(), &o("vm:recovering")).exit, 118);
    let missing = text(&reference(), &o("nothing"));
    assert_eq!((missing.text.as_str(), missing.exit), ("", 255));
    // Without rgmanagerd a service is unknown.
    let no_rg = RenderOpts {
        rgmanager: false,
        ..o("nfs")
    };
    assert_eq!(text(&reference(), &no_rg).exit, 255);
}

#[test]
fn one_member_prints_its_header_and_row_and_exits_by_state() {
    let o = |m: &str| RenderOpts {
        member: Some(m.into()),
        ..opts()
    };
    check(
        "member",
        text(&reference(), &o("station200.example.com")),
        0,
    );
    assert_eq!(text(&reference(), &o("station202.example.com")).exit, 1);
    let missing = text(&reference(), &o("station2"));
    assert_eq!((missing.text.as_str(), missing.exit), ("", 255));
}

#[test]
fn member_and_service_together_print_both_and_the_member_exit_wins() {
    let o = RenderOpts {
        member: Some("station202.example.com".into()),
        service: Some("service:nfs".into()),
        ..opts()
    };
    check("member_service", text(&reference(), &o), 1);
    let o = RenderOpts {
        member: Some("station201.example.com".into()),
        ..o
    };
    assert_eq!(text(&reference(), &o).exit, 110);
}

#[test]
fn xml_report_has_the_original_elements() {
    check("xml", xml(&reference(), &opts()), 0);
}

#[test]
fn xml_inquorate_keeps_the_original_line_break() {
    let mut st = reference();
    st.quorate = false;
    let o = RenderOpts {
        rgmanager: false,
        ..opts()
    };
    check("xml_inquorate", xml(&st, &o), 0);
}

#[test]
fn xml_filters_by_service_and_member() {
    let o = RenderOpts {
        service: Some("vm:station184.example.com".into()),
        ..opts()
    };
    check("xml_service", xml(&reference(), &o), 0);
    let o = RenderOpts {
        member: Some("station202.example.com".into()),
        ..opts()
    };
    let r = xml(&reference(), &o);
    assert!(r
        .text
        .contains("<node name=\"station202.example.com\" state=\"0\""));
    assert!(!r.text.contains("<groups>"));
    assert_eq!(r.exit, 1);
}

#[test]
fn json_report_resolves_names_and_states() {
    check("json", json(&reference(), &opts()).unwrap(), 0);
    let v: serde_json::Value =
        serde_json::from_str(&json(&reference(), &opts()).unwrap().text).expect("valid JSON");
    assert_eq!(v["services"][0]["name"], "service:nfs");
    assert_eq!(v["services"][0]["flags"][1], "partial");
}

#[test]
fn estranged_members_show_only_while_online() {
    let mut st = reference();
    let mut gone = member("intruder", 7);
    gone.estranged = true;
    gone.online = false;
    let mut here = member("visitor", 8);
    here.estranged = true;
    st.members.extend([gone, here]);
    let t = text(&st, &opts()).text;
    assert!(!t.contains("intruder"));
    assert!(t.contains("   8 Online, Estranged, rgmanager"));
    let x = xml(&st, &opts()).text;
    assert!(!x.contains("intruder"));
    assert!(x.contains("estranged=\"1\""));
}

#[test]
fn unknown_owner_ids_print_unknown() {
    // vm:failed's last owner 9 is no member: "(unknown)".
    let t = text(&reference(), &opts()).text;
    assert!(t.contains(" (unknown) "), "{t}");
}
