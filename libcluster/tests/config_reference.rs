//! The reference deployment: the fixed example validates with exactly two consequence
//! warnings, and the guide's Appendix B (malformed as printed) is rejected precisely.

use libcluster::config::{self, Recovery, Severity};
use libcluster::NodeId;

const EXAMPLE: &str = include_str!("../../docs/examples/dom0cluster1.conf");
const APPENDIX_B: &str = include_str!("data/appendix-b.conf");

#[test]
fn dom0cluster1_example_validates_with_exactly_two_warnings() {
    let parsed = config::parse(EXAMPLE, "dom0cluster1.conf").unwrap_or_else(|e| panic!("{e}"));
    let w: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].starts_with("dom0cluster1.conf:10:"), "{}", w[0]);
    assert!(w[0].contains("interval × tko = 3 × 4 = 12 s"), "{}", w[0]);
    assert!(w[1].starts_with("dom0cluster1.conf:14:"), "{}", w[1]);
    assert!(
        w[1].contains("two_node") && w[1].contains("fencing does"),
        "{}",
        w[1]
    );
    assert!(parsed
        .warnings
        .iter()
        .all(|d| d.severity == Severity::Warning));
}

#[test]
fn dom0cluster1_example_reads_into_the_model() {
    let c = config::parse(EXAMPLE, "x").unwrap().config;
    assert_eq!((c.name.as_str(), c.config_version), ("dom0cluster1", 2));
    assert!(c.two_node());
    assert_eq!(c.expected_votes(), 1);
    assert_eq!(c.token_ms(), config::DEFAULT_TOKEN_MS);
    let q = c.quorumd.as_ref().unwrap();
    assert_eq!((q.interval, q.tko(), q.dead_after_s()), (3, 4, 12));
    assert_eq!(q.heuristics[0].program, "ping 192.168.10.254 -c3 -t1");
    assert_eq!(c.qdisk_votes(), Some(1));
    assert_eq!(c.fence_daemon.post_join_delay, 20);
    assert!(c.fence_daemon.clean_start);
    let n2 = c.node("station201.example.com").unwrap();
    assert_eq!(n2.nodeid, NodeId(2));
    let methods: Vec<&str> = n2.fence.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(methods, ["1", "2"]);
    let apc = &n2.fence[0].devices[0];
    assert_eq!(
        apc.args,
        [
            ("port".to_string(), "2".to_string()),
            ("switch".to_string(), "1".to_string())
        ]
    );
    assert_eq!((apc.arg("port"), apc.arg("plug")), (Some("2"), None));
    let pdu = c.fencedevice("fence_station201").unwrap();
    assert_eq!(pdu.arg("login"), Some("fenceuser"));
    assert_eq!(
        c.fencedevice("fence_station201").unwrap().agent,
        "fence_apc"
    );
    let d1 = c.rm.failoverdomain("domain1").unwrap();
    assert!(d1.ordered && d1.restricted && !d1.nofailback);
    assert_eq!(d1.nodes[1].priority, Some(2));
    let vm = &c.rm.vms[1];
    assert_eq!(vm.id(), "vm:station183.example.com");
    assert_eq!(vm.policy.domain.as_deref(), Some("domain2"));
    assert!(!vm.policy.autostart);
    assert_eq!(vm.policy.recovery, Recovery::Restart);
    assert_eq!(vm.path_dirs(), ["/etc/sysconfig/sharedvm"]);
}

#[test]
fn dom0cluster1_example_round_trips_through_the_writer() {
    let c = config::parse(EXAMPLE, "x").unwrap().config;
    let again = config::parse(&config::to_xml(&c), "written").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.config, c);
    assert_eq!(again.warnings.len(), 2);
}

#[test]
fn appendix_b_as_printed_is_rejected_at_the_broken_closing_tag() {
    let line = APPENDIX_B
        .lines()
        .position(|l| l.contains("</resources/>"))
        .unwrap()
        + 1;
    assert_eq!(line, 51, "the data file is Appendix B verbatim");
    let err = config::parse(APPENDIX_B, "appendix-b.conf").unwrap_err();
    let errors: Vec<_> = err.errors().collect();
    assert_eq!(errors.len(), 1, "{err}");
    let e = errors[0];
    // `</resources` is read as a closing tag; the `/` at column 14 cannot follow its name.
    assert_eq!((e.line, e.col), (51, 14), "{e}");
    assert!(
        e.to_string().starts_with(
            "appendix-b.conf:51:14: error: malformed closing tag `</resources`: `/` follows"
        ),
        "{e}"
    );
}

/// Found by the config_parse fuzz target: a rule about an element the file lacks (here
/// `<cman>`, misspelt) reported at 0:0. Every diagnostic of a file points inside it.
#[test]
fn rules_about_a_missing_element_point_at_the_cluster_element() {
    let text = "<?xml version=\"1.0\"?>\n<cluster name=\"c\" config_version=\"1\">\n  <quorumd label=\"q\" votes=\"1\"/>\n  <cmanx expected_votes=\"2\"/>\n  <clusternodes>\n    <clusternode name=\"a\" nodeid=\"1\"/>\n    <clusternode name=\"b\" nodeid=\"2\"/>\n  </clusternodes>\n</cluster>\n";
    let parsed = libcluster::config::parse(text, "f.conf").expect("valid with warnings");
    assert!(!parsed.warnings.is_empty());
    for w in &parsed.warnings {
        assert!(w.line >= 1 && w.col >= 1, "{w} has no position");
    }
    assert!(
        parsed
            .warnings
            .iter()
            .any(|w| w.line == 2 && w.message.contains("expected_votes")),
        "{:?}",
        parsed.warnings
    );
}
