//! What XML alone does not catch: ranges, cross references, the two_node and quorum disk
//! rules. Every rule reports at the offending element or attribute. `<rm>` rules are in
//! [`validate_rm`](super::validate_rm).

use std::collections::BTreeMap;

use super::defaults::{
    MAX_CLUSTER_NAME_LEN, MAX_FENCE_DEVICES, MAX_FENCE_METHODS, MAX_HEURISTICS, MAX_NODE_ID,
    MAX_NODE_VOTES, QDISK_MAX_NODE_ID,
};
use super::diag::{Origin, Pos, Report};
use super::model::{ClusterConf, DeviceRef, Transport};
use super::quorumd::Quorumd;
use super::validate_rm;

/// Runs every rule over `c`.
pub(crate) fn check(c: &ClusterConf, r: &mut Report) {
    cluster(c, r);
    nodes(c, r);
    cman(c, r);
    totem(c, r);
    if let Some(q) = &c.quorumd {
        quorumd(c, q, r);
    }
    fencing(c, r);
    validate_rm::check(c, r);
}

/// For each item whose `key` was already seen: (the earlier one, the repeat).
pub(crate) fn repeats<'a, T>(
    items: impl IntoIterator<Item = &'a T>,
    key: impl Fn(&T) -> String,
) -> Vec<(&'a T, &'a T)> {
    let mut first: BTreeMap<String, &T> = BTreeMap::new();
    let mut out = Vec::new();
    for item in items {
        let k = key(item);
        if k.is_empty() {
            continue; // a missing name is reported where it is missing
        }
        match first.get(&k) {
            Some(prev) => out.push((*prev, item)),
            None => {
                first.insert(k, item);
            }
        }
    }
    out
}

/// " (first at line L)" when the earlier item came from a file.
pub(crate) fn first_at(o: &Origin) -> String {
    let p = o.element();
    if p == Pos::default() {
        String::new()
    } else {
        format!(" (first at line {})", p.line)
    }
}

fn cluster(c: &ClusterConf, r: &mut Report) {
    if c.name.len() > MAX_CLUSTER_NAME_LEN {
        let msg = format!(
            "cluster name `{}` is {} bytes long; cman accepts at most {MAX_CLUSTER_NAME_LEN}",
            c.name,
            c.name.len()
        );
        r.error(c.origin.attr("name"), msg);
    }
    if c.clusternodes.is_empty() {
        r.error(
            c.origin.element(),
            "no <clusternode> is configured; a cluster needs at least one node",
        );
    }
}

fn nodes(c: &ClusterConf, r: &mut Report) {
    for n in &c.clusternodes {
        if !(1..=MAX_NODE_ID).contains(&n.nodeid.0) {
            let msg = format!(
                "nodeid {} of node `{}` is out of range: node ids are 1 to {MAX_NODE_ID}",
                n.nodeid, n.name
            );
            r.error(n.origin.attr("nodeid"), msg);
        }
        if n.votes > MAX_NODE_VOTES {
            let msg = format!(
                "node `{}` has {} votes; a node has 0 to {MAX_NODE_VOTES}",
                n.name, n.votes
            );
            r.error(n.origin.attr("votes"), msg);
        }
    }
    for (prev, n) in repeats(&c.clusternodes, |n| n.name.to_ascii_lowercase()) {
        let msg = format!(
            "node name `{}` is used twice{}; node names must be unique",
            n.name,
            first_at(&prev.origin)
        );
        r.error(n.origin.attr("name"), msg);
    }
    for (prev, n) in repeats(&c.clusternodes, |n| {
        if n.nodeid.0 == 0 {
            String::new()
        } else {
            n.nodeid.to_string()
        }
    }) {
        let msg = format!(
            "nodeid {} of `{}` is already used by `{}`{}; node ids must be unique",
            n.nodeid,
            n.name,
            prev.name,
            first_at(&prev.origin)
        );
        r.error(n.origin.attr("nodeid"), msg);
    }
}

fn cman(c: &ClusterConf, r: &mut Report) {
    let m = &c.cman;
    if m.expected_votes == Some(0) {
        r.error(
            m.origin.attr("expected_votes"),
            "expected_votes is 0; it must be at least 1 (or left out)",
        );
    }
    if m.two_node {
        if c.clusternodes.len() != 2 {
            let msg = format!(
                "two_node is set but {} <clusternode> entries are configured; two_node needs exactly 2",
                c.clusternodes.len()
            );
            r.error(m.origin.attr("two_node"), msg);
        }
        if let Some(e) = m.expected_votes.filter(|e| *e != 1) {
            let msg = format!("expected_votes is {e} but two_node requires expected_votes=\"1\"");
            r.error(m.origin.attr("expected_votes"), msg);
        }
        for n in c.clusternodes.iter().filter(|n| n.votes != 1) {
            let msg = format!(
                "node `{}` has {} votes; with two_node each node must have exactly 1",
                n.name, n.votes
            );
            r.error(n.origin.attr("votes"), msg);
        }
    }
    if m.port < 2 {
        let msg = format!("port {} is not usable: cman uses the port and the one below it, so it must be 2 to 65535", m.port);
        r.error(m.origin.attr("port"), msg);
    }
    if let Some(g) = &m.admin_group {
        let bad = g.is_empty()
            || g.len() > 32
            || g.starts_with('-')
            || !g
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_-.$".contains(ch));
        if bad {
            let msg = format!("admin_group `{g}` is not a valid unix group name (letters, digits, `_`, `-`, `.`; at most 32)");
            r.error(m.origin.attr("admin_group"), msg);
        }
    }
    for mc in [&m.multicast, &m.altmulticast].into_iter().flatten() {
        if let Some(a) = mc.addr.filter(|a| !a.is_multicast()) {
            r.error(
                mc.origin.attr("addr"),
                format!("{a} is not a multicast address"),
            );
        }
    }
    if m.effective_transport() == Transport::Rdma {
        r.warn(
            m.origin.attr("transport"),
            "transport rdma is not implemented by our cmand; it will refuse to start",
        );
    }
}

fn totem(c: &ClusterConf, r: &mut Report) {
    let t = &c.totem;
    if t.token == Some(0) {
        r.error(
            t.origin.attr("token"),
            "token is 0 ms; a dead node could never be told from a slow one",
        );
    }
    if let Some(consensus) = t.consensus {
        let token = u64::from(c.token_ms());
        if u64::from(consensus) * 5 < token * 6 {
            let msg = format!(
                "consensus {consensus} ms is shorter than 1.2 × token ({token} ms); membership would reform \
                 before a token loss is confirmed"
            );
            r.error(t.origin.attr("consensus"), msg);
        }
    }
}

fn quorumd(c: &ClusterConf, q: &Quorumd, r: &mut Report) {
    if q.device.is_none() && q.label.is_none() {
        r.error(
            q.origin.element(),
            "<quorumd> has neither `device` nor `label`; qdiskd cannot find its disk",
        );
    }
    if q.interval == 0 {
        r.error(
            q.origin.attr("interval"),
            "interval is 0; qdiskd needs at least 1 second per cycle",
        );
    }
    if q.tko == Some(0) {
        r.error(
            q.origin.attr("tko"),
            "tko is 0; a node would be declared dead without missing a cycle",
        );
    }
    if q.votes.is_none() {
        for n in c.clusternodes.iter().filter(|n| n.votes != 1) {
            let msg = format!(
                "node `{}` has {} votes while <quorumd> sets no `votes`; qdiskd can only derive its votes when \
                 every node has 1: set all node votes to 1 or set quorumd votes",
                n.name, n.votes
            );
            r.error(n.origin.attr("votes"), msg);
        }
    }
    for n in c
        .clusternodes
        .iter()
        .filter(|n| n.nodeid.0 > QDISK_MAX_NODE_ID && n.nodeid.0 <= MAX_NODE_ID)
    {
        let msg = format!(
            "node `{}` has nodeid {}, but the quorum disk has slots for node ids 1 to {QDISK_MAX_NODE_ID} only",
            n.name, n.nodeid
        );
        r.error(n.origin.attr("nodeid"), msg);
    }
    let registered = q
        .cman_label
        .as_ref()
        .map(|l| ("cman_label", l))
        .or(q.device.as_ref().map(|d| ("device", d)));
    if let Some((attr, name)) = registered {
        if c.node(name).is_some() {
            let msg = format!(
                "the quorum device registers with cman as `{name}`, which is also a node name"
            );
            r.error(q.origin.attr(attr), msg);
        }
    }
    heuristics(q, r);
    if let Some(m) = q.min_score.filter(|m| *m > q.max_score()) {
        let msg = format!(
            "min_score {m} is more than the heuristics can score ({}); no node could ever use the quorum disk",
            q.max_score()
        );
        r.error(q.origin.attr("min_score"), msg);
    }
    if q.master_wins == Some(true) && (!q.heuristics.is_empty() || c.clusternodes.len() != 2) {
        r.warn(
            q.origin.attr("master_wins"),
            "master_wins is ignored: it needs exactly two nodes and no heuristics",
        );
    }
    quorum_timing(c, q, r);
}

fn heuristics(q: &Quorumd, r: &mut Report) {
    for (i, h) in q.heuristics.iter().enumerate() {
        if i == MAX_HEURISTICS {
            let msg = format!("more than {MAX_HEURISTICS} heuristics; qdiskd runs only the first {MAX_HEURISTICS}");
            r.error(h.origin.element(), msg);
        }
        if h.score == 0 {
            r.error(
                h.origin.attr("score"),
                "heuristic score is 0; it must be at least 1",
            );
        }
        if q.interval > 0 && (q.heuristic_interval(h).is_none() || q.heuristic_tko(h).is_none()) {
            let msg = format!(
                "heuristic `{}` leaves interval or tko unset, and quorumd interval × (tko − 1) = {} s is too \
                 short to derive them; set both on the heuristic",
                h.program,
                q.interval.saturating_mul(q.tko().saturating_sub(1))
            );
            r.error(h.origin.element(), msg);
        }
    }
}

/// The two warnings about how quorum and the quorum disk interact with membership.
fn quorum_timing(c: &ClusterConf, q: &Quorumd, r: &mut Report) {
    if c.cman.two_node {
        r.warn(
            c.cman.origin.attr("two_node"),
            "two_node is combined with a quorum disk: quorum is forced to 1 while two nodes are members, so the \
             quorum disk's votes cannot decide a split, fencing does; qdisk(5) recommends two_node=\"0\" and \
             expected_votes=\"3\" (1 vote per node, 1 for the disk)",
        );
    } else if let Some(qv) = c.qdisk_votes() {
        let total = c.node_votes().saturating_add(qv);
        if c.expected_votes() < total {
            let msg = format!(
                "expected_votes is {} but the nodes and the quorum disk carry {total} votes; cman does not add the \
                 quorum disk's {qv} to expected_votes, so set expected_votes=\"{total}\"",
                c.expected_votes()
            );
            r.warn(c.cman.origin.attr("expected_votes"), msg);
        }
    }
    let token = u64::from(c.token_ms());
    if q.interval > 0 && q.dead_after_s() * 1000 > token {
        let msg = format!(
            "the quorum disk declares a node dead after interval × tko = {} × {} = {} s, longer than the \
             membership timeout (token {token} ms): a dead node leaves the membership after about {token} ms, \
             but the quorum disk takes {} s to declare it dead",
            q.interval,
            q.tko(),
            q.dead_after_s(),
            q.dead_after_s()
        );
        r.warn(q.origin.attr("tko"), msg);
    }
}

fn fencing(c: &ClusterConf, r: &mut Report) {
    for (prev, d) in repeats(&c.fencedevices, |d| d.name.clone()) {
        let msg = format!(
            "fence device name `{}` is used twice{}",
            d.name,
            first_at(&prev.origin)
        );
        r.error(d.origin.attr("name"), msg);
    }
    let known = |r: &mut Report, d: &DeviceRef, node: &str| {
        if !d.name.is_empty() && c.fencedevice(&d.name).is_none() {
            let msg = format!(
                "node `{node}` uses fence device `{}`, which no <fencedevice> defines",
                d.name
            );
            r.error(d.origin.attr("name"), msg);
        }
    };
    for n in &c.clusternodes {
        if n.fence.is_empty() {
            let msg = format!(
                "node `{}` has no fence method: if it fails, fencing is retried until an administrator runs \
                 fence_ack_manual, and its services wait",
                n.name
            );
            r.warn(n.origin.element(), msg);
        }
        for (prev, m) in repeats(&n.fence, |m| m.name.clone()) {
            let msg = format!(
                "node `{}` has two methods named `{}`{}; fenced finds devices by method name, so the second would \
                 run the first one's devices",
                n.name,
                m.name,
                first_at(&prev.origin)
            );
            r.error(m.origin.attr("name"), msg);
        }
        for (i, m) in n.fence.iter().enumerate() {
            if i == MAX_FENCE_METHODS {
                let msg = format!("node `{}` has more than {MAX_FENCE_METHODS} fence methods; fenced never tries the rest", n.name);
                r.error(m.origin.element(), msg);
            }
            if m.devices.is_empty() {
                let msg = format!(
                    "fence method `{}` of node `{}` lists no device, so it can never succeed",
                    m.name, n.name
                );
                r.error(m.origin.element(), msg);
            }
            for (j, d) in m.devices.iter().enumerate() {
                if j == MAX_FENCE_DEVICES {
                    let msg = format!("method `{}` has more than {MAX_FENCE_DEVICES} devices; fenced never runs the rest", m.name);
                    r.error(d.origin.element(), msg);
                }
                known(r, d, &n.name);
            }
        }
        for d in &n.unfence {
            known(r, d, &n.name);
        }
    }
    let fd = &c.fence_daemon;
    for (attr, v) in [
        ("post_join_delay", fd.post_join_delay),
        ("post_fail_delay", fd.post_fail_delay),
    ] {
        if v < -1 {
            r.error(
                fd.origin.attr(attr),
                format!("{attr} is {v}; it must be -1 (wait forever) or more"),
            );
        }
    }
    if fd.override_time < 3 {
        r.warn(
            fd.origin.attr("override_time"),
            format!(
                "override_time {} is below 3 and acts as 3 seconds",
                fd.override_time
            ),
        );
    }
}
