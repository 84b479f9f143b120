//! Properties of the writer and the parser: `parse(to_xml(c)) == c` for every valid model,
//! and no input, however mangled, makes the parser panic or point outside the text.
//!
//! The generators draw names from small alphabets that include the characters XML must
//! escape (`& < > " '`), and free-form values that also hold tabs, line breaks and
//! non-ASCII characters. References (a method's device, a domain's node, a service's
//! domain) are drawn as numbers first and resolved to real names in `make_valid`.

use std::net::IpAddr;

use libcluster::config::{
    self, AltName, ClusterConf, ClusterNode, Cman, DependMode, DeviceRef, FailoverDomain,
    FailoverDomainNode, FenceDaemon, FenceDevice, FenceMethod, FenceXvmd, Heuristic, Hypervisor,
    MigrateMode, Multicast, Policy, Quorumd, Recovery, Resource, Rm, Scheduler, Service, Totem,
    Transport, Vm,
};
use libcluster::NodeId;
use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

const NAME: &str = "[a-d&<>\"'][a-d0-9.&<>\"'_-]{0,6}";
const FREE: &str = "[a-z &<>\"'\t\n\r\u{e9}\u{2713}/.:=-]{0,10}";
const ATTR: &str = "[a-z][a-z_]{0,5}";

fn free() -> impl Strategy<Value = String> {
    FREE
}

fn placeholder() -> impl Strategy<Value = String> {
    (0u8..64).prop_map(|i| i.to_string())
}

fn index_of(placeholder: &str, len: usize) -> usize {
    placeholder.parse::<usize>().unwrap_or(0) % len.max(1)
}

/// Attributes with distinct names, none of the reserved ones, in generated order.
fn args() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((ATTR, free()), 0..4).prop_map(|mut v| {
        let mut seen = Vec::new();
        v.retain(|(k, _)| {
            let keep =
                !["name", "agent", "ref", "address"].contains(&k.as_str()) && !seen.contains(k);
            seen.push(k.clone());
            keep
        });
        v
    })
}

fn multicast_ip() -> impl Strategy<Value = IpAddr> {
    select(vec![
        "239.192.1.2",
        "239.0.0.9",
        "224.1.2.3",
        "ff15::1",
        "ff02::ddb4",
    ])
    .prop_map(|s| s.parse().unwrap())
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    select(vec![
        "10.0.0.1",
        "192.168.10.254",
        "::1",
        "fe80::1",
        "239.1.1.1",
    ])
    .prop_map(|s| s.parse().unwrap())
}

prop_compose! {
    fn arb_multicast()(addr in option::of(multicast_ip()), port in option::of(any::<u16>()), ttl in option::of(any::<u8>())) -> Multicast {
        Multicast { addr, port, ttl, ..Multicast::default() }
    }
}

prop_compose! {
    fn arb_cman()(
        (two_node, expected_votes, port, cluster_id, hash_cluster_id, keyfile) in (
            any::<bool>(), option::of(1u32..1000), 2u16..=u16::MAX, option::of(any::<u16>()), any::<bool>(),
            prop_oneof![Just(config::defaults::DEFAULT_KEYFILE.to_string()), free()],
        ),
        (transport, broadcast, quorum_dev_poll, shutdown_timeout, ccsd_poll, disallowed) in (
            option::of(select(vec![Transport::Udp, Transport::Udpb, Transport::Udpu, Transport::Rdma])),
            any::<bool>(), option::of(any::<u32>()), any::<u32>(), any::<u32>(), any::<bool>(),
        ),
        (upgrading, max_queued, startup_config_timeout, admin_group, multicast, altmulticast) in (
            any::<bool>(), any::<u32>(), any::<u32>(), option::of("[a-z_][a-z0-9_.-]{0,10}"),
            option::of(arb_multicast()), option::of(arb_multicast()),
        ),
    ) -> Cman {
        Cman {
            two_node, expected_votes, port, cluster_id, hash_cluster_id, keyfile, transport, broadcast,
            quorum_dev_poll, shutdown_timeout, ccsd_poll, disallowed, upgrading, max_queued,
            startup_config_timeout, admin_group, multicast, altmulticast, ..Cman::default()
        }
    }
}

prop_compose! {
    fn arb_totem()(
        token in option::of(1u32..100_000), join in option::of(any::<u32>()), consensus in option::of(any::<u32>()),
        retransmits in option::of(any::<u32>()), fail_recv in option::of(any::<u32>()),
        rrp_mode in option::of(select(vec!["none", "active", "passive"]).prop_map(String::from)),
        rrp_threshold in option::of(any::<u32>()), secauth in option::of(any::<bool>()), vsftype in option::of(free()),
    ) -> Totem {
        Totem {
            token, join, consensus, token_retransmits_before_loss_const: retransmits, fail_recv_const: fail_recv,
            rrp_mode, rrp_problem_count_threshold: rrp_threshold, secauth, vsftype, ..Totem::default()
        }
    }
}

prop_compose! {
    fn arb_heuristic()(program in "[a-z&<>\"'][a-z &<>\"'/.-]{0,12}", score in 1u32..6, interval in 1u32..10, tko in 1u32..10) -> Heuristic {
        Heuristic { program, score, interval: Some(interval), tko: Some(tko), ..Heuristic::default() }
    }
}

prop_compose! {
    fn arb_quorumd()(
        (device, label, interval, tko, tko_up, upgrade_wait, master_wait) in (
            option::of("/dev/[a-z&]{1,5}"), option::of(NAME), 1u32..6, option::of(1u32..20), option::of(any::<u32>()),
            option::of(any::<u32>()), option::of(any::<u32>()),
        ),
        (votes, min_score, cman_label, status_file, scheduler, priority) in (
            option::of(0u32..5), option::of(0u32..5), option::of("/q/[a-z<]{1,4}"), option::of(free()),
            select(vec![Scheduler::Rr, Scheduler::Fifo, Scheduler::Other]), any::<i32>(),
        ),
        (flags, max_error_cycles, master_wins, heuristics) in (
            any::<[bool; 6]>(), any::<u32>(), option::of(any::<bool>()), vec(arb_heuristic(), 0..4),
        ),
    ) -> Quorumd {
        let device = if device.is_none() && label.is_none() { Some("/dev/sdb".to_string()) } else { device };
        let [reboot, allow_kill, stop_cman, paranoid, io_timeout, use_uptime] = flags;
        Quorumd {
            interval, tko, tko_up, upgrade_wait, master_wait, votes, min_score, device, label, cman_label,
            status_file, scheduler, priority, reboot, allow_kill, stop_cman, paranoid, io_timeout, max_error_cycles,
            use_uptime, master_wins, heuristics, ..Quorumd::default()
        }
    }
}

prop_compose! {
    fn arb_fence_daemon()(pjd in -1i32..100, pfd in -1i32..100, clean_start in any::<bool>(), path in free(), time in any::<u32>()) -> FenceDaemon {
        FenceDaemon { post_join_delay: pjd, post_fail_delay: pfd, clean_start, override_path: path, override_time: time, ..FenceDaemon::default() }
    }
}

prop_compose! {
    fn arb_fence_xvmd()(
        debug in option::of(any::<u32>()), family in option::of(select(vec!["auto", "ipv4", "ipv6"]).prop_map(String::from)),
        multicast_address in option::of(any_ip()), port in option::of(any::<u16>()),
        auth in option::of(select(vec!["none", "sha1", "sha256", "sha512"]).prop_map(String::from)),
        hash in option::of(select(vec!["none", "sha256"]).prop_map(String::from)),
        key_file in option::of(free()), use_uuid in option::of(any::<bool>()), uri in option::of(free()),
    ) -> FenceXvmd {
        FenceXvmd { debug, family, multicast_address, port, auth, hash, key_file, use_uuid, uri, ..FenceXvmd::default() }
    }
}

prop_compose! {
    fn arb_device_ref()(name in placeholder(), args in args()) -> DeviceRef {
        DeviceRef { name, args, ..DeviceRef::default() }
    }
}

prop_compose! {
    fn arb_methods()(names in btree_set("[0-9a-c&<]{1,3}", 0..4))
        (devices in vec(vec(arb_device_ref(), 1..4), names.len()), names in Just(names)) -> Vec<FenceMethod> {
        names.into_iter().zip(devices).map(|(name, devices)| FenceMethod { name, devices, ..FenceMethod::default() }).collect()
    }
}

prop_compose! {
    fn arb_node()(
        votes in 0u32..=255, fence in arb_methods(), unfence in vec(arb_device_ref(), 0..2),
        altname in option::of((NAME, option::of(any::<u16>()), option::of(multicast_ip()))),
    ) -> ClusterNode {
        let altname = altname.map(|(name, port, mcast)| AltName { name, port, mcast, ..AltName::default() });
        ClusterNode { votes, fence, unfence, altname, ..ClusterNode::default() }
    }
}

prop_compose! {
    fn arb_nodes()(names in btree_set(NAME, 1..6))
        (gaps in vec(1u32..=3, names.len()), nodes in vec(arb_node(), names.len()), names in Just(names)) -> Vec<ClusterNode> {
        let mut id = 0;
        names.into_iter().zip(gaps).zip(nodes).map(|((name, gap), node)| {
            id += gap; // at most 5 nodes × 3: ids stay within the quorum disk's 16 slots
            ClusterNode { name, nodeid: NodeId(id), ..node }
        }).collect()
    }
}

prop_compose! {
    fn arb_fencedevices()(names in btree_set("[a-d&<\"'][a-z0-9_]{0,5}", 0..4))
        (agents in vec("fence_[a-z]{1,5}", names.len()), args in vec(args(), names.len()), names in Just(names)) -> Vec<FenceDevice> {
        names.into_iter().zip(agents).zip(args).map(|((name, agent), args)| FenceDevice { name, agent, args, ..FenceDevice::default() }).collect()
    }
}

prop_compose! {
    fn arb_policy()(
        domain in option::of(placeholder()), autostart in any::<bool>(), exclusive in any::<bool>(),
        recovery in select(vec![Recovery::Restart, Recovery::Relocate, Recovery::Disable, Recovery::RestartDisable]),
        max_restarts in any::<u32>(), restart_expire_time_s in 0u64..1_000_000_000, depend in option::of(placeholder()),
        depend_mode in select(vec![DependMode::Hard, DependMode::Soft]),
    ) -> Policy {
        Policy { domain, autostart, exclusive, recovery, max_restarts, restart_expire_time_s, depend, depend_mode }
    }
}

/// A resource in a service tree: inline (with a name) or, when `ref` survives
/// `make_valid`, a reference to a global resource of its kind.
fn arb_tree_resource() -> impl Strategy<Value = Resource> {
    let leaf = (
        select(vec!["fs", "ip", "script", "nfsexport", "action"]),
        any::<bool>(),
        NAME,
        args(),
    )
        .prop_map(|(kind, by_ref, name, mut attrs)| {
            let key = if by_ref {
                "ref"
            } else if kind == "ip" {
                "address"
            } else {
                "name"
            };
            attrs.insert(0, (key.to_string(), name));
            Resource {
                kind: kind.to_string(),
                attrs,
                ..Resource::default()
            }
        });
    leaf.prop_recursive(2, 6, 3, |inner| {
        (inner.clone(), vec(inner, 0..3)).prop_map(|(mut parent, children)| {
            parent.children = children;
            parent
        })
    })
}

prop_compose! {
    fn arb_globals()(items in vec((select(vec!["fs", "ip", "script"]), NAME, args()), 0..4)) -> Vec<Resource> {
        let mut out: Vec<Resource> = Vec::new();
        for (kind, primary, mut attrs) in items {
            let key = if kind == "ip" { "address" } else { "name" };
            if out.iter().any(|r| r.kind == kind && r.attr(key) == Some(primary.as_str())) {
                continue;
            }
            attrs.insert(0, (key.to_string(), primary));
            out.push(Resource { kind: kind.to_string(), attrs, ..Resource::default() });
        }
        out
    }
}

prop_compose! {
    fn arb_service()(name in NAME, policy in arb_policy(), priority in any::<u32>(), flags in any::<[bool; 2]>(), children in vec(arb_tree_resource(), 0..3)) -> Service {
        Service { name, policy, priority, nfslock: flags[0], nfs_client_cache: flags[1], children, ..Service::default() }
    }
}

prop_compose! {
    fn arb_vm()(
        (name, policy, migrate, migrate_options, tunnelled, mapping) in (
            NAME, arb_policy(), select(vec![MigrateMode::Live, MigrateMode::Pause]), option::of(free()), any::<bool>(),
            vec((placeholder(), "[a-z.]{1,6}"), 0..3),
        ),
        (use_virsh, xmlfile, path, snapshot, hypervisor) in (
            option::of(any::<bool>()), option::of(free()), option::of(free()), option::of(free()),
            select(vec![Hypervisor::Auto, Hypervisor::Xen, Hypervisor::Qemu]),
        ),
        (hypervisor_uri, migration_uri, status_program, no_kill, children) in (
            option::of(free()), option::of(free()), option::of(free()), any::<bool>(), vec(arb_tree_resource(), 0..2),
        ),
    ) -> Vm {
        Vm {
            name, policy, migrate, migrate_options, tunnelled, migration_mapping: mapping, use_virsh, xmlfile, path,
            snapshot, hypervisor, hypervisor_uri, migration_uri, status_program, no_kill, children, ..Vm::default()
        }
    }
}

prop_compose! {
    fn arb_domain()(name in "[a-d&<\"'][a-d0-9]{0,4}", flags in any::<[bool; 3]>(), nodes in vec((placeholder(), option::of(1u32..=100)), 0..4)) -> FailoverDomain {
        let nodes = nodes.into_iter().map(|(name, priority)| FailoverDomainNode { name, priority, ..FailoverDomainNode::default() }).collect();
        FailoverDomain { name, ordered: flags[0], restricted: flags[1], nofailback: flags[2], nodes, ..FailoverDomain::default() }
    }
}

prop_compose! {
    fn arb_rm()(
        flags in any::<[bool; 2]>(), numbers in any::<[u32; 4]>(), failoverdomains in vec(arb_domain(), 0..3),
        resources in arb_globals(), services in vec(arb_service(), 0..3), vms in vec(arb_vm(), 0..3),
    ) -> Rm {
        Rm {
            central_processing: flags[0], disabled: flags[1], status_poll_interval: numbers[0], status_child_max: numbers[1],
            statusmax: numbers[2], transition_throttling: numbers[3], failoverdomains, resources, services, vms,
            ..Rm::default()
        }
    }
}

prop_compose! {
    fn arb_conf()(
        name in "[a-z&<>\"'][a-z0-9&<>\"']{0,14}", alias in option::of(free()), config_version in any::<u32>(),
        cman in arb_cman(), totem in arb_totem(), quorumd in option::of(arb_quorumd()),
        fence_daemon in arb_fence_daemon(), fence_xvmd in option::of(arb_fence_xvmd()), clusternodes in arb_nodes(),
        fencedevices in arb_fencedevices(), rm in arb_rm(),
    ) -> ClusterConf {
        make_valid(ClusterConf {
            name, alias, config_version, cman, totem, quorumd, fence_daemon, fence_xvmd, clusternodes, fencedevices, rm,
            ..ClusterConf::default()
        })
    }
}

/// Resolves placeholder references and repairs combinations the rules reject.
fn make_valid(mut c: ClusterConf) -> ClusterConf {
    let node_names: Vec<String> = c.clusternodes.iter().map(|n| n.name.clone()).collect();
    let devices: Vec<String> = c.fencedevices.iter().map(|d| d.name.clone()).collect();
    for n in &mut c.clusternodes {
        if devices.is_empty() {
            n.fence.clear();
            n.unfence.clear();
        }
        for d in n
            .fence
            .iter_mut()
            .flat_map(|m| &mut m.devices)
            .chain(&mut n.unfence)
        {
            d.name = devices[index_of(&d.name, devices.len())].clone();
        }
    }
    if c.cman.two_node && c.clusternodes.len() != 2 {
        c.cman.two_node = false;
    }
    if c.cman.two_node {
        c.cman.expected_votes = c.cman.expected_votes.filter(|e| *e == 1);
        c.clusternodes.iter_mut().for_each(|n| n.votes = 1);
    }
    let token = c.token_ms();
    if let Some(cons) = c.totem.consensus {
        if u64::from(cons) * 5 < u64::from(token) * 6 {
            c.totem.consensus = Some(token * 2);
        }
    }
    let all_one = c.clusternodes.iter().all(|n| n.votes == 1);
    if let Some(q) = &mut c.quorumd {
        if q.votes.is_none() && !all_one {
            q.votes = Some(1);
        }
        let max = q.max_score();
        q.min_score = q.min_score.map(|m| m.min(max));
    }
    // Domains: distinct names (case-insensitively), nodes resolved and listed once.
    let mut seen: Vec<String> = Vec::new();
    c.rm.failoverdomains.retain(|d| {
        let fresh = !seen.contains(&d.name.to_ascii_lowercase());
        seen.push(d.name.to_ascii_lowercase());
        fresh
    });
    for d in &mut c.rm.failoverdomains {
        let mut listed = Vec::new();
        d.nodes.retain_mut(|n| {
            n.name = node_names[index_of(&n.name, node_names.len())].clone();
            let fresh = !listed.contains(&n.name);
            listed.push(n.name.clone());
            fresh
        });
    }
    let domains: Vec<String> =
        c.rm.failoverdomains
            .iter()
            .map(|d| d.name.clone())
            .collect();
    dedup_by_name(&mut c.rm.services, |s| s.name.clone());
    dedup_by_name(&mut c.rm.vms, |v| v.name.clone());
    let ids: Vec<String> =
        c.rm.services
            .iter()
            .map(|s| s.id())
            .chain(c.rm.vms.iter().map(|v| v.id()))
            .collect();
    let globals = c.rm.resources.clone();
    let fix_policy = |p: &mut Policy, own: &str| {
        p.domain = p
            .domain
            .as_ref()
            .filter(|_| !domains.is_empty())
            .map(|d| domains[index_of(d, domains.len())].clone());
        let others: Vec<&String> = ids.iter().filter(|i| *i != own).collect();
        p.depend = p
            .depend
            .as_ref()
            .filter(|_| !others.is_empty())
            .map(|d| others[index_of(d, others.len())].clone());
    };
    for s in &mut c.rm.services {
        let own = s.id();
        fix_policy(&mut s.policy, &own);
        s.children.iter_mut().for_each(|r| fix_refs(r, &globals));
    }
    for v in &mut c.rm.vms {
        let own = v.id();
        fix_policy(&mut v.policy, &own);
        v.children.iter_mut().for_each(|r| fix_refs(r, &globals));
        for (member, _) in &mut v.migration_mapping {
            *member = node_names[index_of(member, node_names.len())].clone();
        }
        if v.use_virsh == Some(false) {
            v.xmlfile = None;
            if v.hypervisor == Hypervisor::Qemu {
                v.hypervisor = Hypervisor::Xen;
            }
        }
    }
    c
}

fn dedup_by_name<T>(items: &mut Vec<T>, key: impl Fn(&T) -> String) {
    let mut seen = Vec::new();
    items.retain(|i| {
        let fresh = !seen.contains(&key(i));
        seen.push(key(i));
        fresh
    });
}

/// Points `ref` at a global resource of the same kind, or drops it when there is none.
fn fix_refs(r: &mut Resource, globals: &[Resource]) {
    if let Some(pos) = r.attrs.iter().position(|(k, _)| k == "ref") {
        let candidates: Vec<&Resource> = globals.iter().filter(|g| g.kind == r.kind).collect();
        if candidates.is_empty() {
            r.attrs[pos].0 = if r.kind == "ip" {
                "address".into()
            } else {
                "name".into()
            };
        } else {
            let pick = candidates[r.attrs[pos].1.len() % candidates.len()];
            r.attrs[pos].1 = pick.primary().unwrap_or_default().to_string();
        }
    }
    r.children.iter_mut().for_each(|c| fix_refs(c, globals));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn written_configurations_parse_back_to_the_same_model(c in arb_conf()) {
        let text = config::to_xml(&c);
        match config::parse(&text, "generated.conf") {
            Ok(parsed) => prop_assert_eq!(parsed.config, c, "\n{}", text),
            Err(e) => prop_assert!(false, "a valid model was rejected:\n{}\n--- written:\n{}", e, text),
        }
    }

    #[test]
    fn writing_is_stable_after_one_round(c in arb_conf()) {
        let once = config::to_xml(&c);
        let twice = config::to_xml(&config::parse(&once, "g").unwrap().config);
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn mangled_files_never_panic_and_diagnostics_point_inside_the_text(
        c in arb_conf(), cuts in vec((any::<prop::sample::Index>(), 0usize..4, "[<>/\"= a-z&]{0,3}"), 1..4),
    ) {
        let mut text = config::to_xml(&c);
        for (at, len, insert) in cuts {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            let mut j = (i + len).min(text.len());
            while !text.is_char_boundary(j) { j += 1; }
            text.replace_range(i..j, &insert);
        }
        let lines = u32::try_from(text.split('\n').count()).unwrap();
        let diags = match config::parse(&text, "m") { Ok(p) => p.warnings, Err(e) => e.all().to_vec() };
        for d in diags {
            prop_assert!(d.line >= 1 && d.line <= lines && d.col >= 1, "{} outside the text:\n{}", d, text);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = config::parse(&text, "x");
    }
}
