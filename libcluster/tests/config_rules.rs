//! Every parse and validation rule, each with an input that breaks it and the line:column
//! the diagnostic must point at. `@@` in an input marks that position and is removed before
//! parsing.

use libcluster::config::{self, Diagnostic, Pos, Severity};

const NODES: &str = r#"
    <clusternode name="a" nodeid="1">
      <fence><method name="1"><device name="pdu" port="1"/></method></fence>
    </clusternode>
    <clusternode name="b" nodeid="2">
      <fence><method name="1"><device name="pdu" port="2"/></method></fence>
    </clusternode>"#;

const DEVICES: &str = r#"<fencedevice name="pdu" agent="fence_apc" ipaddr="10.0.0.9"/>"#;

/// A cluster with `head` before the node list, `nodes`, `devices` and `tail` (e.g. `<rm>`).
fn conf(head: &str, nodes: &str, devices: &str, tail: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<cluster name=\"c1\" config_version=\"1\">\n  {head}\n  \
         <clusternodes>{nodes}\n  </clusternodes>\n  <fencedevices>{devices}</fencedevices>\n  {tail}\n</cluster>\n"
    )
}

fn head(h: &str) -> String {
    conf(h, NODES, DEVICES, "")
}

fn nodes(n: &str) -> String {
    conf("", n, DEVICES, "")
}

fn tail(t: &str) -> String {
    conf("", NODES, DEVICES, t)
}

/// Two nodes, two domains and `body` inside `<rm>`.
fn rm(body: &str) -> String {
    tail(&format!(
        "<rm>\n    <failoverdomains>\n      <failoverdomain name=\"d1\" ordered=\"1\">\n        \
         <failoverdomainnode name=\"a\" priority=\"1\"/>\n      </failoverdomain>\n    </failoverdomains>\n    \
         {body}\n  </rm>"
    ))
}

/// Removes the `@@` marker and returns the text and the marker's position.
fn marked(text: &str) -> (String, Pos) {
    let at = text
        .find("@@")
        .expect("the input marks the expected position with @@");
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (
        text.replacen("@@", "", 1),
        Pos::new(line as u32, col as u32),
    )
}

fn all(text: &str) -> Vec<Diagnostic> {
    match config::parse(text, "t.conf") {
        Ok(p) => p.warnings,
        Err(e) => e.all().to_vec(),
    }
}

/// The input is rejected, with an error at the marker whose message contains `needle`.
#[track_caller]
fn rejects(input: &str, needle: &str) {
    let (text, pos) = marked(input);
    let err = match config::parse(&text, "t.conf") {
        Ok(_) => panic!("accepted, but expected an error at {pos} containing {needle:?}:\n{text}"),
        Err(e) => e,
    };
    let hit = err
        .errors()
        .any(|d| d.pos() == pos && d.message.contains(needle));
    assert!(
        hit,
        "expected an error at {pos} containing {needle:?}; got:\n{err}\n--- input:\n{text}"
    );
}

/// The input is accepted, with a warning at the marker whose message contains `needle`.
#[track_caller]
fn warns(input: &str, needle: &str) {
    let (text, pos) = marked(input);
    let parsed = config::parse(&text, "t.conf")
        .unwrap_or_else(|e| panic!("rejected:\n{e}\n--- input:\n{text}"));
    let hit = parsed
        .warnings
        .iter()
        .any(|d| d.pos() == pos && d.message.contains(needle));
    let got: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert!(
        hit,
        "expected a warning at {pos} containing {needle:?}; got {got:#?}"
    );
}

#[test]
fn the_base_configurations_are_valid_and_quiet() {
    for text in [head(""), rm("<vm name=\"g\" domain=\"d1\"/>")] {
        assert_eq!(all(&text), [], "{text}");
    }
}

// ---- well-formedness and structure ----

#[test]
fn malformed_xml_is_one_error_at_the_parser_position() {
    // The unclosed quote swallows the line break; the parser stops at the next `<`.
    let (text, pos) = marked(
        "<cluster name=\"c1\" config_version=\"1\">\n  <cman two_node=\"1/>\n@@</cluster>\n",
    );
    let err = config::parse(&text, "t.conf").unwrap_err();
    assert_eq!(err.all().len(), 1, "{err}");
    assert_eq!(err.first_error().pos(), pos, "{err}");
    assert!(err.first_error().message.contains("not closed"), "{err}");
    rejects(
        "<cluster name=\"c1\" config_version=\"1\">\n  <cman>\n@@</cluster>\n",
        "</cluster>",
    );
    rejects(
        "<cluster name=\"a&b\" config_version=\"1\">\n  <clusternodes/>\n</cluster>\n"
            .replace("a&", "a@@&")
            .as_str(),
        "&amp;",
    );
}

#[test]
fn root_element_must_be_cluster() {
    rejects(
        "<?xml version=\"1.0\"?>\n@@<clusterconf name=\"x\"/>\n",
        "root element is <clusterconf>",
    );
}

#[test]
fn single_elements_may_not_repeat() {
    rejects(
        &head("<cman/>\n  @@<cman two_node=\"0\"/>"),
        "<cman> appears more than once",
    );
    rejects(&nodes("\n<clusternode name=\"a\" nodeid=\"1\"><altname name=\"x\"/>@@<altname name=\"y\"/></clusternode>"), "<altname> appears more than once");
}

// ---- <cluster> ----

#[test]
fn cluster_name_is_required_and_at_most_15_bytes() {
    let text = head("").replace(" name=\"c1\"", "");
    let text = text.replacen("<cluster", "@@<cluster", 1);
    rejects(&text, "has no `name` attribute");
    rejects(
        &head("").replace("name=\"c1\"", "@@name=\"a_very_long_cluster\""),
        "19 bytes long",
    );
    assert!(config::parse(
        &head("").replace("name=\"c1\"", "name=\"exactly15chars_\""),
        "t"
    )
    .is_ok());
}

#[test]
fn config_version_is_required_and_numeric() {
    let text = head("")
        .replace(" config_version=\"1\"", "")
        .replacen("<cluster", "@@<cluster", 1);
    rejects(&text, "has no `config_version`");
    rejects(
        &head("").replace("config_version=\"1\"", "@@config_version=\"two\""),
        "`two` is not a valid value for `config_version`",
    );
    rejects(
        &head("").replace("config_version=\"1\"", "@@config_version=\"-3\""),
        "out of range",
    );
}

// ---- nodes ----

#[test]
fn at_least_one_node_is_required() {
    rejects(
        &conf("", "", "", "").replacen("<cluster", "@@<cluster", 1),
        "no <clusternode>",
    );
}

#[test]
fn node_names_are_unique_ignoring_case() {
    rejects(
        &nodes(r#"<clusternode name="a" nodeid="1"/><clusternode @@name="A" nodeid="2"/>"#),
        "node name `A` is used twice",
    );
}

#[test]
fn node_ids_are_unique() {
    rejects(
        &nodes(r#"<clusternode name="a" nodeid="1"/><clusternode name="b" @@nodeid="1"/>"#),
        "already used by `a`",
    );
}

#[test]
fn node_ids_are_required_and_within_1_to_4096() {
    rejects(
        &nodes(r#"<clusternode name="a" @@nodeid="0"/>"#),
        "out of range: node ids are 1 to 4096",
    );
    rejects(
        &nodes(r#"<clusternode name="a" @@nodeid="4097"/>"#),
        "out of range",
    );
    rejects(
        &nodes(r#"<clusternode name="a" @@nodeid="one"/>"#),
        "`one` is not a valid value for `nodeid`",
    );
    rejects(
        &nodes(r#"@@<clusternode name="a"/>"#),
        "has no `nodeid` attribute",
    );
    assert!(config::parse(&nodes(r#"<clusternode name="a" nodeid="4096"/>"#), "t").is_ok());
}

#[test]
fn missing_nodeid_is_reported_once() {
    let text = nodes(r#"<clusternode name="a"/><clusternode name="b"/>"#);
    let errs = all(&text)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    assert_eq!(
        errs, 2,
        "one per node, no follow-on range or duplicate errors"
    );
}

#[test]
fn node_votes_are_0_to_255() {
    rejects(
        &nodes(r#"<clusternode name="a" nodeid="1" @@votes="256"/>"#),
        "has 256 votes",
    );
    rejects(
        &nodes(r#"<clusternode name="a" nodeid="1" @@votes="-1"/>"#),
        "out of range for `votes`",
    );
}

// ---- <cman> ----

#[test]
fn two_node_needs_exactly_two_nodes() {
    let three = format!("{NODES}<clusternode name=\"c\" nodeid=\"3\"/>");
    rejects(
        &conf("<cman @@two_node=\"1\"/>", &three, DEVICES, ""),
        "3 <clusternode> entries",
    );
}

#[test]
fn two_node_rejects_expected_votes_other_than_1() {
    rejects(
        &head("<cman two_node=\"1\" @@expected_votes=\"2\"/>"),
        "two_node requires expected_votes=\"1\"",
    );
    assert!(config::parse(&head("<cman two_node=\"1\" expected_votes=\"1\"/>"), "t").is_ok());
}

#[test]
fn two_node_needs_one_vote_per_node() {
    let n = r#"<clusternode name="a" nodeid="1" @@votes="2"/><clusternode name="b" nodeid="2"/>"#;
    rejects(
        &conf("<cman two_node=\"1\"/>", n, DEVICES, ""),
        "each node must have exactly 1",
    );
}

#[test]
fn expected_votes_is_at_least_1() {
    rejects(
        &head("<cman @@expected_votes=\"0\"/>"),
        "expected_votes is 0",
    );
}

#[test]
fn port_must_leave_room_for_the_port_below() {
    rejects(&head("<cman @@port=\"1\"/>"), "port 1 is not usable");
    rejects(&head("<cman @@port=\"70000\"/>"), "from 0 to 65535");
}

#[test]
fn admin_group_must_be_a_group_name() {
    rejects(
        &head("<cman @@admin_group=\"wheel staff\"/>"),
        "not a valid unix group name",
    );
    rejects(
        &head("<cman @@admin_group=\"\"/>"),
        "not a valid unix group name",
    );
    assert!(config::parse(&head("<cman admin_group=\"cluster-admins\"/>"), "t").is_ok());
}

#[test]
fn multicast_addresses_must_be_multicast_ips() {
    rejects(
        &head("<cman><multicast @@addr=\"10.0.0.1\"/></cman>"),
        "not a multicast address",
    );
    rejects(
        &head("<cman><altmulticast @@addr=\"ff15::zz\"/></cman>"),
        "an IPv4 or IPv6 address",
    );
    assert!(config::parse(
        &head("<cman><multicast addr=\"239.192.1.2\" ttl=\"3\"/></cman>"),
        "t"
    )
    .is_ok());
}

#[test]
fn enumerated_values_are_checked() {
    rejects(
        &head("<cman @@transport=\"tcp\"/>"),
        "expected udp, udpb, udpu or rdma",
    );
    rejects(
        &head("<totem @@rrp_mode=\"fast\"/>"),
        "expected none, active or passive",
    );
}

#[test]
fn booleans_accept_what_the_original_accepts() {
    rejects(&head("<cman @@two_node=\"maybe\"/>"), "expected 1 or 0");
    rejects(&head("<cman @@broadcast=\"maybe\"/>"), "yes/no");
    assert!(config::parse(
        &head("<cman broadcast=\"yes\" hash_cluster_id=\"on\" upgrading=\"no\"/>"),
        "t"
    )
    .is_ok());
}

#[test]
fn numeric_flags_reject_yes_because_the_original_reads_it_as_off() {
    rejects(&head("<cman @@two_node=\"yes\"/>"), "would mean off");
    rejects(
        &rm("<service name=\"s\" @@autostart=\"yes\"/>"),
        "would mean off",
    );
    let c = config::parse(&rm("<service name=\"s\" autostart=\"no\"/>"), "t")
        .unwrap()
        .config;
    assert!(!c.rm.services[0].policy.autostart);
}

// ---- <totem> ----

#[test]
fn token_must_be_positive() {
    rejects(&head("<totem @@token=\"0\"/>"), "token is 0 ms");
}

#[test]
fn consensus_must_be_at_least_1_2_tokens() {
    rejects(
        &head("<totem token=\"5000\" @@consensus=\"5999\"/>"),
        "shorter than 1.2 × token (5000 ms)",
    );
    assert!(config::parse(&head("<totem token=\"5000\" consensus=\"6000\"/>"), "t").is_ok());
    rejects(
        &head("<totem @@consensus=\"1000\"/>"),
        "1.2 × token (1000 ms)",
    );
}

// ---- <quorumd> ----

/// A quorum disk that is fine for the two default nodes (no warnings: short timeout).
fn qdisk(attrs: &str, body: &str) -> String {
    head(&format!("<cman expected_votes=\"3\"/>\n  <totem token=\"10000\" consensus=\"12000\"/>\n  <quorumd {attrs}>{body}</quorumd>"))
}

#[test]
fn the_qdisk_base_is_valid_and_quiet() {
    assert_eq!(all(&qdisk("device=\"/dev/sdb1\" tko=\"4\"", "")), []);
}

#[test]
fn quorumd_needs_a_device_or_a_label() {
    rejects(
        &head("@@<quorumd votes=\"1\"/>"),
        "neither `device` nor `label`",
    );
    assert!(config::parse(&head("<quorumd label=\"q\"/>"), "t").is_ok());
}

#[test]
fn quorumd_interval_and_tko_are_positive() {
    rejects(
        &qdisk("device=\"/d\" @@interval=\"0\"", ""),
        "interval is 0",
    );
    rejects(&qdisk("device=\"/d\" @@tko=\"0\"", ""), "tko is 0");
}

#[test]
fn quorumd_without_votes_needs_one_vote_per_node() {
    let n = r#"<clusternode name="a" nodeid="1" @@votes="2"/><clusternode name="b" nodeid="2"/>"#;
    rejects(
        &conf("<quorumd device=\"/d\"/>", n, DEVICES, ""),
        "set all node votes to 1",
    );
}

#[test]
fn qdisk_node_ids_stop_at_16() {
    let n = r#"<clusternode name="a" nodeid="1"/><clusternode name="b" @@nodeid="17"/>"#;
    rejects(
        &conf("<quorumd device=\"/d\" votes=\"1\"/>", n, DEVICES, ""),
        "slots for node ids 1 to 16",
    );
}

#[test]
fn quorum_device_name_must_differ_from_node_names() {
    rejects(
        &qdisk("device=\"/d\" @@cman_label=\"a\"", ""),
        "also a node name",
    );
}

#[test]
fn heuristics_need_a_program_and_a_positive_score() {
    rejects(
        &qdisk(
            "device=\"/d\"",
            "@@<heuristic score=\"1\" interval=\"2\" tko=\"2\"/>",
        ),
        "has no `program`",
    );
    rejects(
        &qdisk(
            "device=\"/d\"",
            "<heuristic program=\"true\" @@score=\"0\" interval=\"2\" tko=\"2\"/>",
        ),
        "score is 0",
    );
}

#[test]
fn heuristic_defaults_need_a_long_enough_budget() {
    rejects(
        &qdisk(
            "device=\"/d\" interval=\"1\" tko=\"3\"",
            "@@<heuristic program=\"true\"/>",
        ),
        "too short to derive them",
    );
    assert!(config::parse(
        &qdisk(
            "device=\"/d\" interval=\"1\" tko=\"4\"",
            "<heuristic program=\"true\"/>"
        ),
        "t"
    )
    .is_ok());
}

#[test]
fn at_most_ten_heuristics() {
    let ten = "<heuristic program=\"true\" interval=\"1\" tko=\"2\"/>".repeat(10);
    rejects(
        &qdisk(
            "device=\"/d\"",
            &format!("{ten}@@<heuristic program=\"x\" interval=\"1\" tko=\"2\"/>"),
        ),
        "more than 10",
    );
}

#[test]
fn min_score_must_be_reachable() {
    let h = "<heuristic program=\"true\" score=\"2\" interval=\"2\" tko=\"2\"/>";
    rejects(
        &qdisk("device=\"/d\" @@min_score=\"3\"", h),
        "more than the heuristics can score (2)",
    );
}

// ---- fencing ----

#[test]
fn fence_devices_are_unique() {
    rejects(
        &conf(
            "",
            NODES,
            &format!("{DEVICES}<fencedevice @@name=\"pdu\" agent=\"x\"/>"),
            "",
        ),
        "`pdu` is used twice",
    );
}

#[test]
fn fence_devices_need_a_name_and_an_agent() {
    rejects(
        &conf(
            "",
            NODES,
            &format!("{DEVICES}@@<fencedevice name=\"x\"/>"),
            "",
        ),
        "has no `agent`",
    );
    rejects(
        &conf(
            "",
            NODES,
            &format!("{DEVICES}<fencedevice @@name=\" \" agent=\"x\"/>"),
            "",
        ),
        "is empty",
    );
}

#[test]
fn method_devices_must_name_a_fencedevice() {
    let n = r#"<clusternode name="a" nodeid="1"><fence><method name="1"><device @@name="apc9"/></method></fence></clusternode>"#;
    rejects(
        &nodes(n),
        "uses fence device `apc9`, which no <fencedevice> defines",
    );
    let u = r#"<clusternode name="a" nodeid="1"><fence><method name="1"><device name="pdu"/></method></fence><unfence><device @@name="scsi" action="on"/></unfence></clusternode>"#;
    rejects(&nodes(u), "`scsi`");
}

#[test]
fn method_names_are_unique_per_node() {
    let n = r#"<clusternode name="a" nodeid="1"><fence><method name="1"><device name="pdu"/></method><method @@name="1"><device name="pdu"/></method></fence></clusternode>"#;
    rejects(&nodes(n), "two methods named `1`");
}

#[test]
fn methods_need_devices_and_stay_within_fenceds_limits() {
    let empty =
        r#"<clusternode name="a" nodeid="1"><fence>@@<method name="1"/></fence></clusternode>"#;
    rejects(&nodes(empty), "lists no device");
    let m = |i: usize| format!("<method name=\"{i}\"><device name=\"pdu\"/></method>");
    let eight: String = (1..=8).map(m).collect();
    let nine = format!(
        "<clusternode name=\"a\" nodeid=\"1\"><fence>{eight}@@{}</fence></clusternode>",
        m(9)
    );
    rejects(&nodes(&nine), "more than 8 fence methods");
    let devs = "<device name=\"pdu\"/>".repeat(8);
    let n = format!("<clusternode name=\"a\" nodeid=\"1\"><fence><method name=\"1\">{devs}@@<device name=\"pdu\"/></method></fence></clusternode>");
    rejects(&nodes(&n), "more than 8 devices");
}

#[test]
fn fence_delays_are_minus_one_or_more() {
    rejects(
        &head("<fence_daemon @@post_join_delay=\"-2\"/>"),
        "post_join_delay is -2",
    );
    rejects(
        &head("<fence_daemon @@post_fail_delay=\"soon\"/>"),
        "not a valid value for `post_fail_delay`",
    );
    assert!(config::parse(&head("<fence_daemon post_join_delay=\"-1\"/>"), "t").is_ok());
}

// ---- <rm> ----

#[test]
fn failover_domains_are_unique_ignoring_case() {
    let t = tail("<rm><failoverdomains><failoverdomain name=\"d\"/><failoverdomain @@name=\"D\"/></failoverdomains></rm>");
    rejects(&t, "failover domain `D` is defined twice");
}

#[test]
fn failover_domain_nodes_must_be_cluster_nodes() {
    let t = tail("<rm><failoverdomains><failoverdomain name=\"d\"><failoverdomainnode @@name=\"station201\"/></failoverdomain></failoverdomains></rm>");
    rejects(&t, "names node `station201`, which is not a <clusternode>");
}

#[test]
fn failover_domain_lists_a_node_once() {
    let t = tail("<rm><failoverdomains><failoverdomain name=\"d\"><failoverdomainnode name=\"a\"/><failoverdomainnode @@name=\"a\"/></failoverdomain></failoverdomains></rm>");
    rejects(&t, "listed twice in domain `d`");
}

#[test]
fn ordered_domain_priorities_are_1_to_100() {
    let fd = |p: &str| {
        tail(&format!("<rm><failoverdomains><failoverdomain name=\"d\" ordered=\"1\"><failoverdomainnode name=\"a\" @@priority=\"{p}\"/></failoverdomain></failoverdomains></rm>"))
    };
    rejects(&fd("0"), "outside 1 to 100");
    rejects(&fd("101"), "outside 1 to 100");
}

#[test]
fn ordered_flag_rejects_yes() {
    rejects(&tail("<rm><failoverdomains><failoverdomain name=\"d\" @@ordered=\"yes\"/></failoverdomains></rm>"), "would mean off");
}

#[test]
fn services_and_vms_must_use_a_known_domain() {
    rejects(
        &rm("<vm name=\"g\" @@domain=\"domain9\"/>"),
        "vm:g uses failover domain `domain9`",
    );
    rejects(
        &rm("<service name=\"s\" @@domain=\"x\"/>"),
        "service:s uses failover domain `x`",
    );
    assert!(
        config::parse(&rm("<vm name=\"g\" domain=\"D1\"/>"), "t").is_ok(),
        "domain names ignore case"
    );
}

#[test]
fn service_and_vm_names_are_unique() {
    rejects(
        &rm("<service name=\"s\"/><service @@name=\"s\"/>"),
        "service `s` is defined twice",
    );
    rejects(
        &rm("<vm name=\"g\"/><vm @@name=\"g\"/>"),
        "vm `g` is defined twice",
    );
    assert!(
        config::parse(&rm("<service name=\"x\"/><vm name=\"x\"/>"), "t").is_ok(),
        "service:x and vm:x differ"
    );
}

#[test]
fn service_ids_fit_rgmanagers_63_bytes() {
    let long = "v".repeat(61);
    rejects(&rm(&format!("<vm @@name=\"{long}\"/>")), "64 bytes long");
    assert!(config::parse(&rm(&format!("<vm name=\"{}\"/>", "v".repeat(60))), "t").is_ok());
}

#[test]
fn recovery_is_one_of_the_four_policies() {
    rejects(
        &rm("<vm name=\"g\" @@recovery=\"reboot\"/>"),
        "expected restart, relocate, disable or restart-disable",
    );
    assert!(config::parse(&rm("<vm name=\"g\" recovery=\"Restart-Disable\"/>"), "t").is_ok());
}

#[test]
fn restart_expire_time_uses_rgmanager_time_syntax() {
    rejects(
        &rm("<vm name=\"g\" @@restart_expire_time=\"soon\"/>"),
        "a time such as",
    );
    let c = config::parse(&rm("<vm name=\"g\" restart_expire_time=\"1h30m\"/>"), "t")
        .unwrap()
        .config;
    assert_eq!(c.rm.vms[0].policy.restart_expire_time_s, 5400);
}

#[test]
fn depend_must_name_another_configured_service() {
    rejects(
        &rm("<service name=\"s\" @@depend=\"service:db\"/>"),
        "depends on `service:db`",
    );
    rejects(
        &rm("<service name=\"s\" @@depend=\"service:s\"/>"),
        "depends on itself",
    );
    assert!(config::parse(
        &rm("<vm name=\"g\"/><service name=\"s\" depend=\"vm:g\"/>"),
        "t"
    )
    .is_ok());
}

#[test]
fn global_resources_need_a_unique_primary_attribute() {
    rejects(
        &rm("<resources>@@<fs device=\"/dev/x\"/></resources>"),
        "has no `name`",
    );
    rejects(
        &rm("<resources><ip address=\"10.0.0.5\"/><ip @@address=\"10.0.0.5\"/></resources>"),
        "defined twice",
    );
}

#[test]
fn resource_refs_must_resolve() {
    let r = "<resources><ip address=\"10.0.0.5\"/></resources><service name=\"s\"><ip ref=\"10.0.0.5\"/><fs @@ref=\"data\"/></service>";
    rejects(&rm(r), "<fs ref=\"data\"> refers to no global <fs>");
    let nested = "<resources><fs name=\"data\"/></resources><service name=\"s\"><fs ref=\"data\"><script @@ref=\"x\"/></fs></service>";
    rejects(&rm(nested), "no global <script>");
}

#[test]
fn xm_mode_vms_need_xen_and_no_xmlfile() {
    rejects(
        &rm("<vm name=\"g\" @@use_virsh=\"0\" hypervisor=\"qemu\"/>"),
        "works only with Xen",
    );
    rejects(
        &rm("<vm name=\"g\" use_virsh=\"0\" @@xmlfile=\"/x.xml\"/>"),
        "xmlfile needs virsh",
    );
}

#[test]
fn migration_mapping_names_cluster_nodes() {
    rejects(
        &rm("<vm name=\"g\" @@migration_mapping=\"a:ha,z:hz\"/>"),
        "names `z`",
    );
    rejects(
        &rm("<vm name=\"g\" @@migration_mapping=\"a-ha\"/>"),
        "node1:host1",
    );
}

#[test]
fn every_problem_is_reported_in_one_pass_in_source_order() {
    let text =
        rm("<vm name=\"g\" domain=\"nope\" recovery=\"bad\"/><service name=\"s\" depend=\"x\"/>")
            .replace("config_version=\"1\"", "config_version=\"x\"");
    let err = config::parse(&text, "t.conf").unwrap_err();
    let msgs: Vec<String> = err.errors().map(|d| d.message.clone()).collect();
    assert_eq!(msgs.len(), 4, "{err}");
    let positions: Vec<Pos> = err.all().iter().map(Diagnostic::pos).collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
}

// ---- warnings ----

#[test]
fn unknown_attributes_and_elements_warn_and_are_ignored() {
    warns(
        &head("<cman @@foo=\"1\"/>"),
        "unknown attribute `foo` on <cman>; ignored",
    );
    warns(
        &head("@@<logging to_syslog=\"yes\"/>"),
        "unknown element <logging> inside <cluster>; ignored",
    );
    warns(
        &rm("<vm name=\"g\" @@bogus=\"1\"/>"),
        "unknown attribute `bogus` on <vm>",
    );
    warns(&tail("<rm>@@<events/></rm>"), "<events> is not supported");
    warns(
        &qdisk("device=\"/d\" tko=\"4\" @@log_level=\"7\"", ""),
        "deprecated",
    );
}

#[test]
fn free_form_attributes_do_not_warn() {
    let d = r#"<fencedevice name="pdu" agent="fence_apc" ipaddr="10.0.0.9" login="x" passwd="y" secure="1"/>"#;
    let r = "<resources><fs name=\"data\" device=\"/dev/x\" mountpoint=\"/srv\" fstype=\"ext3\"/></resources>";
    let text = conf("", NODES, d, &format!("<rm>{r}<service name=\"s\"><fs ref=\"data\"><action name=\"status\" depth=\"*\" interval=\"10\"/></fs></service></rm>"));
    assert_eq!(all(&text), []);
}

#[test]
fn stray_text_inside_an_element_warns() {
    warns(
        &rm("<vm name=\"g\">\n@@name=\"h\" path=\"/x\"/>\n</vm>"),
        "text `name=\"h\" path=\"/x\"/>` inside <vm> is ignored",
    );
}

#[test]
fn two_node_with_a_quorum_disk_warns_that_fencing_decides() {
    warns(&head("<cman @@two_node=\"1\" expected_votes=\"1\"/><totem token=\"20000\" consensus=\"24000\"/><quorumd label=\"q\" tko=\"4\"/>"), "fencing does");
}

#[test]
fn a_quorum_disk_slower_than_membership_warns() {
    warns(
        &head("<cman expected_votes=\"3\"/><quorumd label=\"q\" interval=\"3\" @@tko=\"4\"/>"),
        "interval × tko = 3 × 4 = 12 s",
    );
    warns(
        &head("<cman expected_votes=\"3\"/>@@<quorumd label=\"q\"/>"),
        "1 × 10 = 10 s",
    );
}

#[test]
fn expected_votes_without_the_qdisk_votes_warns() {
    let t = "<cman @@expected_votes=\"2\"/><totem token=\"20000\" consensus=\"24000\"/><quorumd label=\"q\" tko=\"4\"/>";
    warns(&head(t), "set expected_votes=\"3\"");
}

#[test]
fn a_node_without_fence_methods_warns() {
    warns(
        &nodes("@@<clusternode name=\"a\" nodeid=\"1\"/>"),
        "no fence method",
    );
}

#[test]
fn domain_priority_oddities_warn() {
    let fd = |o: &str, n: &str| {
        tail(&format!("<rm><failoverdomains><failoverdomain name=\"d\" ordered=\"{o}\">{n}</failoverdomain></failoverdomains></rm>"))
    };
    warns(
        &fd("1", "@@<failoverdomainnode name=\"a\"/>"),
        "has no priority in ordered domain",
    );
    warns(
        &fd("0", "<failoverdomainnode name=\"a\" @@priority=\"1\"/>"),
        "not ordered",
    );
}

#[test]
fn vm_with_children_warns_it_cannot_migrate() {
    warns(
        &rm("@@<vm name=\"g\"><script name=\"x\" file=\"/bin/true\"/></vm>"),
        "cannot be live-migrated",
    );
}

#[test]
fn ignored_settings_warn() {
    warns(
        &qdisk(
            "device=\"/d\" tko=\"4\" @@master_wins=\"1\"",
            "<heuristic program=\"true\" interval=\"1\" tko=\"2\"/>",
        ),
        "master_wins is ignored",
    );
    warns(
        &head("<fence_daemon @@override_time=\"1\"/>"),
        "acts as 3 seconds",
    );
    warns(&tail("<rm @@central_processing=\"1\"/>"), "not supported");
    warns(
        &tail("<rm @@status_poll_interval=\"0\"/>"),
        "10 seconds are used",
    );
    warns(&head("<cman @@transport=\"rdma\"/>"), "not implemented");
}

// ---- load ----

#[test]
fn load_names_the_file_when_it_cannot_be_read() {
    use std::error::Error;
    let err = config::load(std::path::Path::new("/nonexistent/cluster.conf")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("/nonexistent/cluster.conf:1:1: error: cannot read the file"),
        "{text}"
    );
    assert!(err.source().is_some());
}

#[test]
fn load_rejects_non_utf8_at_the_bad_byte() {
    let dir = std::env::temp_dir().join(format!("config-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latin1.conf");
    std::fs::write(
        &path,
        b"<cluster name=\"c\"\n config_version=\"1\" alias=\"caf\xe9\"/>",
    )
    .unwrap();
    let err = config::load(&path).unwrap_err();
    assert_eq!(err.first_error().pos(), Pos::new(2, 31), "{err}");
    assert!(err.first_error().message.contains("0xe9"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn models_built_in_code_are_validated_with_unknown_positions() {
    use libcluster::config::{ClusterConf, ClusterNode};
    use libcluster::NodeId;
    let node = |name: &str| ClusterNode {
        name: name.into(),
        nodeid: NodeId(1),
        ..ClusterNode::default()
    };
    let c = ClusterConf {
        name: "c".into(),
        clusternodes: vec![node("a"), node("b")],
        ..ClusterConf::default()
    };
    let diags = config::validate(&c, "built");
    let dup = diags
        .iter()
        .find(|d| d.severity == Severity::Error)
        .expect("duplicate nodeid is an error");
    assert!(
        dup.message
            .contains("nodeid 1 of `b` is already used by `a`"),
        "{dup}"
    );
    assert_eq!((dup.line, dup.col), (0, 0));
    assert!(
        !dup.message.contains("first at line"),
        "no source line to point at: {dup}"
    );
}
