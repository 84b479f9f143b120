//! Readers for `<cluster>` and everything in it except `<rm>` (see [`read_rm`](super::read_rm)).

use roxmltree::{Document, Node};

use super::model::{
    AltName, ClusterConf, ClusterNode, Cman, DeviceRef, FenceDaemon, FenceDevice, FenceMethod,
    FenceXvmd, Multicast, Totem, Transport,
};
use super::parse::{El, Flag, Reader};
use super::quorumd::{Heuristic, Quorumd, Scheduler};
use super::read_rm;
use crate::NodeId;

const I32: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);

/// Reads the document. `None` when the root is not `<cluster>` (nothing else can be read).
pub(crate) fn cluster(r: &mut Reader<'_>, doc: &Document<'_>) -> Option<ClusterConf> {
    let root = doc.root_element();
    if root.tag_name().name() != "cluster" {
        let p = r.pos(doc, root.range().start);
        let msg = format!(
            "the root element is <{}>; a cluster.conf starts with <cluster>",
            root.tag_name().name()
        );
        r.report.error(p, msg);
        return None;
    }
    let el = r.open(root, Some(&["name", "alias", "config_version"]));
    let mut c = ClusterConf {
        name: r.required(&el, "name"),
        alias: r.str(&el, "alias"),
        ..ClusterConf::default()
    };
    c.config_version = if el.node.has_attribute("config_version") {
        r.u32(&el, "config_version").unwrap_or(0)
    } else {
        r.required(&el, "config_version");
        0
    };
    let single = [
        "cman",
        "totem",
        "quorumd",
        "fence_daemon",
        "fence_xvmd",
        "clusternodes",
        "fencedevices",
        "rm",
    ];
    let mut seen = Vec::new();
    for child in r.children(&el) {
        let tag = child.tag_name().name();
        if single.contains(&tag) && !r.first(&mut seen, child, &el) {
            continue;
        }
        match tag {
            "cman" => c.cman = cman(r, child),
            "totem" => c.totem = totem(r, child),
            "quorumd" => c.quorumd = Some(quorumd(r, child)),
            "fence_daemon" => c.fence_daemon = fence_daemon(r, child),
            "fence_xvmd" => c.fence_xvmd = Some(fence_xvmd(r, child)),
            "clusternodes" => c.clusternodes = list(r, child, "clusternode", clusternode),
            "fencedevices" => c.fencedevices = list(r, child, "fencedevice", fencedevice),
            "rm" => c.rm = read_rm::rm(r, child),
            _ => r.unknown_element(child, &el),
        }
    }
    c.origin = el.origin;
    Some(c)
}

/// Reads a container (`<clusternodes>`, `<fencedevices>`...) of `item` elements.
pub(crate) fn list<T>(
    r: &mut Reader<'_>,
    node: Node<'_, '_>,
    item: &str,
    read: impl Fn(&mut Reader<'_>, Node<'_, '_>) -> T,
) -> Vec<T> {
    let el = r.open(node, Some(&[]));
    items(r, &el, item, read)
}

/// Reads the `item` children of `el`, warning about any other child element.
pub(crate) fn items<T>(
    r: &mut Reader<'_>,
    el: &El<'_, '_>,
    item: &str,
    read: impl Fn(&mut Reader<'_>, Node<'_, '_>) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    for child in r.children(el) {
        if child.tag_name().name() == item {
            out.push(read(r, child));
        } else {
            r.unknown_element(child, el);
        }
    }
    out
}

fn cman(r: &mut Reader<'_>, node: Node<'_, '_>) -> Cman {
    let known = [
        "two_node",
        "expected_votes",
        "port",
        "cluster_id",
        "hash_cluster_id",
        "keyfile",
        "transport",
        "broadcast",
        "quorum_dev_poll",
        "shutdown_timeout",
        "ccsd_poll",
        "disallowed",
        "upgrading",
        "max_queued",
        "startup_config_timeout",
        "admin_group",
    ];
    let el = r.open(node, Some(&known));
    let d = Cman::default();
    let transports = "udp, udpb, udpu or rdma";
    let mut m = Cman {
        two_node: r.flag(&el, "two_node", Flag::Numeric).unwrap_or(d.two_node),
        expected_votes: r.u32(&el, "expected_votes"),
        port: r.u16(&el, "port").unwrap_or(d.port),
        cluster_id: r.u16(&el, "cluster_id"),
        hash_cluster_id: r.flag(&el, "hash_cluster_id", Flag::Words).unwrap_or(false),
        keyfile: r.str(&el, "keyfile").unwrap_or(d.keyfile),
        transport: r.choice(&el, "transport", Transport::from_name, transports),
        broadcast: r.flag(&el, "broadcast", Flag::Words).unwrap_or(false),
        quorum_dev_poll: r.u32(&el, "quorum_dev_poll"),
        shutdown_timeout: r.u32(&el, "shutdown_timeout").unwrap_or(d.shutdown_timeout),
        ccsd_poll: r.u32(&el, "ccsd_poll").unwrap_or(d.ccsd_poll),
        disallowed: r.flag(&el, "disallowed", Flag::Numeric).unwrap_or(false),
        upgrading: r.flag(&el, "upgrading", Flag::Words).unwrap_or(false),
        max_queued: r.u32(&el, "max_queued").unwrap_or(d.max_queued),
        startup_config_timeout: r.u32(&el, "startup_config_timeout").unwrap_or(0),
        admin_group: r.str(&el, "admin_group"),
        ..d
    };
    let mut seen = Vec::new();
    for child in r.children(&el) {
        let tag = child.tag_name().name();
        let slot = match tag {
            "multicast" => &mut m.multicast,
            "altmulticast" => &mut m.altmulticast,
            _ => {
                r.unknown_element(child, &el);
                continue;
            }
        };
        if r.first(&mut seen, child, &el) {
            *slot = Some(multicast(r, child));
        }
    }
    m.origin = el.origin;
    m
}

fn multicast(r: &mut Reader<'_>, node: Node<'_, '_>) -> Multicast {
    let el = r.open(node, Some(&["addr", "port", "ttl"]));
    Multicast {
        addr: r.ip(&el, "addr"),
        port: r.u16(&el, "port"),
        ttl: r.int(&el, "ttl", 0, 255),
        origin: leaf(r, el),
    }
}

fn totem(r: &mut Reader<'_>, node: Node<'_, '_>) -> Totem {
    let known = [
        "token",
        "join",
        "consensus",
        "token_retransmits_before_loss_const",
        "fail_recv_const",
        "rrp_mode",
        "rrp_problem_count_threshold",
        "secauth",
        "vsftype",
    ];
    let el = r.open(node, Some(&known));
    let rrp = |s: &str| {
        ["none", "active", "passive"]
            .contains(&s)
            .then(|| s.to_string())
    };
    Totem {
        token: r.u32(&el, "token"),
        join: r.u32(&el, "join"),
        consensus: r.u32(&el, "consensus"),
        token_retransmits_before_loss_const: r.u32(&el, "token_retransmits_before_loss_const"),
        fail_recv_const: r.u32(&el, "fail_recv_const"),
        rrp_mode: r.choice(&el, "rrp_mode", rrp, "none, active or passive"),
        rrp_problem_count_threshold: r.u32(&el, "rrp_problem_count_threshold"),
        secauth: r.flag(&el, "secauth", Flag::Words),
        vsftype: r.str(&el, "vsftype"),
        origin: leaf(r, el),
    }
}

fn quorumd(r: &mut Reader<'_>, node: Node<'_, '_>) -> Quorumd {
    let known = [
        "interval",
        "tko",
        "tko_up",
        "upgrade_wait",
        "master_wait",
        "votes",
        "min_score",
        "device",
        "label",
        "cman_label",
        "status_file",
        "scheduler",
        "priority",
        "reboot",
        "allow_kill",
        "stop_cman",
        "paranoid",
        "io_timeout",
        "max_error_cycles",
        "use_uptime",
        "master_wins",
        "log_level",
        "log_facility",
    ];
    let el = r.open(node, Some(&known));
    for old in ["log_level", "log_facility"] {
        if el.node.has_attribute(old) {
            let msg = format!("`{old}` on <quorumd> is deprecated and ignored; logging is configured by the daemons");
            r.report.warn(el.origin.attr(old), msg);
        }
    }
    let d = Quorumd::default();
    let numeric = |r: &mut Reader<'_>, name: &str, dflt: bool| {
        r.flag(&el, name, Flag::Numeric).unwrap_or(dflt)
    };
    let mut q = Quorumd {
        interval: r.u32(&el, "interval").unwrap_or(d.interval),
        tko: r.u32(&el, "tko"),
        tko_up: r.u32(&el, "tko_up"),
        upgrade_wait: r.u32(&el, "upgrade_wait"),
        master_wait: r.u32(&el, "master_wait"),
        votes: r.u32(&el, "votes"),
        min_score: r.u32(&el, "min_score"),
        device: r.str(&el, "device"),
        label: r.str(&el, "label"),
        cman_label: r.str(&el, "cman_label"),
        status_file: r.str(&el, "status_file"),
        scheduler: r
            .choice(&el, "scheduler", Scheduler::from_name, "rr, fifo or other")
            .unwrap_or(d.scheduler),
        priority: r.int(&el, "priority", I32.0, I32.1).unwrap_or(d.priority),
        reboot: numeric(r, "reboot", d.reboot),
        allow_kill: numeric(r, "allow_kill", d.allow_kill),
        stop_cman: numeric(r, "stop_cman", d.stop_cman),
        paranoid: numeric(r, "paranoid", d.paranoid),
        io_timeout: numeric(r, "io_timeout", d.io_timeout),
        max_error_cycles: r.u32(&el, "max_error_cycles").unwrap_or(0),
        use_uptime: numeric(r, "use_uptime", d.use_uptime),
        master_wins: r.flag(&el, "master_wins", Flag::Numeric),
        ..d
    };
    q.heuristics = items(r, &el, "heuristic", heuristic);
    q.origin = el.origin;
    q
}

fn heuristic(r: &mut Reader<'_>, node: Node<'_, '_>) -> Heuristic {
    let el = r.open(node, Some(&["program", "score", "interval", "tko"]));
    Heuristic {
        program: r.required(&el, "program"),
        score: r.u32(&el, "score").unwrap_or(1),
        interval: r.u32(&el, "interval"),
        tko: r.u32(&el, "tko"),
        origin: leaf(r, el),
    }
}

fn fence_daemon(r: &mut Reader<'_>, node: Node<'_, '_>) -> FenceDaemon {
    let known = [
        "post_join_delay",
        "post_fail_delay",
        "clean_start",
        "override_path",
        "override_time",
    ];
    let el = r.open(node, Some(&known));
    let d = FenceDaemon::default();
    FenceDaemon {
        post_join_delay: r
            .int(&el, "post_join_delay", I32.0, I32.1)
            .unwrap_or(d.post_join_delay),
        post_fail_delay: r
            .int(&el, "post_fail_delay", I32.0, I32.1)
            .unwrap_or(d.post_fail_delay),
        clean_start: r.flag(&el, "clean_start", Flag::Numeric).unwrap_or(false),
        override_path: r.str(&el, "override_path").unwrap_or(d.override_path),
        override_time: r.u32(&el, "override_time").unwrap_or(d.override_time),
        origin: leaf(r, el),
    }
}

fn fence_xvmd(r: &mut Reader<'_>, node: Node<'_, '_>) -> FenceXvmd {
    let known = [
        "debug",
        "family",
        "multicast_address",
        "port",
        "auth",
        "hash",
        "key_file",
        "use_uuid",
        "uri",
    ];
    let el = r.open(node, Some(&known));
    let family = |s: &str| ["auto", "ipv4", "ipv6"].contains(&s).then(|| s.to_string());
    let hash = |s: &str| {
        ["none", "sha1", "sha256", "sha512"]
            .contains(&s)
            .then(|| s.to_string())
    };
    let hashes = "none, sha1, sha256 or sha512";
    FenceXvmd {
        debug: r.u32(&el, "debug"),
        family: r.choice(&el, "family", family, "auto, ipv4 or ipv6"),
        multicast_address: r.ip(&el, "multicast_address"),
        port: r.u16(&el, "port"),
        auth: r.choice(&el, "auth", hash, hashes),
        hash: r.choice(&el, "hash", hash, hashes),
        key_file: r.str(&el, "key_file"),
        use_uuid: r.flag(&el, "use_uuid", Flag::Words),
        uri: r.str(&el, "uri"),
        origin: leaf(r, el),
    }
}

fn clusternode(r: &mut Reader<'_>, node: Node<'_, '_>) -> ClusterNode {
    let el = r.open(node, Some(&["name", "nodeid", "votes"]));
    let name = r.required(&el, "name");
    let nodeid = if el.node.has_attribute("nodeid") {
        r.u32(&el, "nodeid").unwrap_or(0)
    } else {
        r.required(&el, "nodeid");
        0
    };
    let mut n = ClusterNode {
        name,
        nodeid: NodeId(nodeid),
        ..ClusterNode::default()
    };
    n.votes = r.u32(&el, "votes").unwrap_or(n.votes);
    let mut seen = Vec::new();
    for child in r.children(&el) {
        let tag = child.tag_name().name();
        if !["fence", "unfence", "altname"].contains(&tag) {
            r.unknown_element(child, &el);
        } else if r.first(&mut seen, child, &el) {
            match tag {
                "fence" => n.fence = list(r, child, "method", method),
                "unfence" => n.unfence = list(r, child, "device", device),
                _ => n.altname = Some(altname(r, child)),
            }
        }
    }
    n.origin = el.origin;
    n
}

fn altname(r: &mut Reader<'_>, node: Node<'_, '_>) -> AltName {
    let el = r.open(node, Some(&["name", "port", "mcast"]));
    AltName {
        name: r.required(&el, "name"),
        port: r.u16(&el, "port"),
        mcast: r.ip(&el, "mcast"),
        origin: leaf(r, el),
    }
}

fn method(r: &mut Reader<'_>, node: Node<'_, '_>) -> FenceMethod {
    let el = r.open(node, Some(&["name"]));
    let name = r.required(&el, "name");
    let devices = items(r, &el, "device", device);
    FenceMethod {
        origin: el.origin,
        name,
        devices,
    }
}

fn device(r: &mut Reader<'_>, node: Node<'_, '_>) -> DeviceRef {
    let el = r.open(node, None);
    DeviceRef {
        name: r.required(&el, "name"),
        args: r.args(&el, &["name"]),
        origin: leaf(r, el),
    }
}

fn fencedevice(r: &mut Reader<'_>, node: Node<'_, '_>) -> FenceDevice {
    let el = r.open(node, None);
    FenceDevice {
        name: r.required(&el, "name"),
        agent: r.required(&el, "agent"),
        args: r.args(&el, &["name", "agent"]),
        origin: leaf(r, el),
    }
}

/// Finishes an element that has no children: warns about any, returns its origin.
pub(crate) fn leaf(r: &mut Reader<'_>, el: El<'_, '_>) -> super::diag::Origin {
    for child in r.children(&el) {
        r.unknown_element(child, &el);
    }
    el.origin
}
