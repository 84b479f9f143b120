//! From model to text: `cluster.conf` XML with two-space indentation and escaped values.
//!
//! Attributes equal to their default are left out, as are elements holding only defaults
//! (`<clusternodes>` and `<fencedevices>` are always written). `parse(to_xml(c)) == c` for
//! every valid model `c` whose strings hold only XML characters.

use std::fmt::Display;

use super::model::{ClusterConf, Cman, DeviceRef, FenceDaemon, Multicast, Totem};
use super::quorumd::Quorumd;
use super::rm::{Policy, Resource, Rm};

/// An element about to be written.
struct Elem {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Elem>,
}

impl Elem {
    fn new(name: &str) -> Elem {
        Elem {
            name: name.to_string(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    fn attr(mut self, name: &str, value: impl Display) -> Elem {
        self.attrs.push((name.to_string(), value.to_string()));
        self
    }

    fn opt(self, name: &str, value: Option<impl Display>) -> Elem {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// Writes `value` unless it equals `default`.
    fn non_default<T: PartialEq + Display>(self, name: &str, value: T, default: T) -> Elem {
        if value == default {
            self
        } else {
            self.attr(name, value)
        }
    }

    fn flag(self, name: &str, value: bool, default: bool) -> Elem {
        self.non_default(name, u8::from(value), u8::from(default))
    }

    fn opt_flag(self, name: &str, value: Option<bool>) -> Elem {
        self.opt(name, value.map(u8::from))
    }

    fn args(mut self, args: &[(String, String)]) -> Elem {
        self.attrs.extend(args.iter().cloned());
        self
    }

    fn child(mut self, child: Elem) -> Elem {
        self.children.push(child);
        self
    }

    fn children(mut self, children: impl IntoIterator<Item = Elem>) -> Elem {
        self.children.extend(children);
        self
    }

    fn render(&self, depth: usize, out: &mut String) {
        out.push_str(&"  ".repeat(depth));
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_into(v, out);
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push_str(">\n");
        for c in &self.children {
            c.render(depth + 1, out);
        }
        out.push_str(&"  ".repeat(depth));
        out.push_str("</");
        out.push_str(&self.name);
        out.push_str(">\n");
    }
}

/// Escapes an attribute value. Tabs and line breaks become character references, since a
/// parser turns literal ones into spaces.
fn escape_into(v: &str, out: &mut String) {
    for ch in v.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Writes `c` as a `cluster.conf` document.
pub fn to_xml(c: &ClusterConf) -> String {
    let mut root = Elem::new("cluster")
        .attr("name", &c.name)
        .opt("alias", c.alias.as_ref());
    root = root.attr("config_version", c.config_version);
    if c.cman != Cman::default() {
        root = root.child(cman(&c.cman));
    }
    if c.totem != Totem::default() {
        root = root.child(totem(&c.totem));
    }
    if let Some(q) = &c.quorumd {
        root = root.child(quorumd(q));
    }
    if c.fence_daemon != FenceDaemon::default() {
        root = root.child(fence_daemon(&c.fence_daemon));
    }
    if let Some(x) = &c.fence_xvmd {
        let e = Elem::new("fence_xvmd")
            .opt("debug", x.debug)
            .opt("family", x.family.as_ref());
        let e = e
            .opt("multicast_address", x.multicast_address)
            .opt("port", x.port)
            .opt("auth", x.auth.as_ref());
        let e = e
            .opt("hash", x.hash.as_ref())
            .opt("key_file", x.key_file.as_ref())
            .opt_flag("use_uuid", x.use_uuid);
        root = root.child(e.opt("uri", x.uri.as_ref()));
    }
    let nodes = c.clusternodes.iter().map(|n| {
        let mut e = Elem::new("clusternode")
            .attr("name", &n.name)
            .attr("nodeid", n.nodeid)
            .attr("votes", n.votes);
        if let Some(a) = &n.altname {
            e = e.child(
                Elem::new("altname")
                    .attr("name", &a.name)
                    .opt("port", a.port)
                    .opt("mcast", a.mcast),
            );
        }
        if !n.fence.is_empty() {
            let methods = n.fence.iter().map(|m| {
                Elem::new("method")
                    .attr("name", &m.name)
                    .children(m.devices.iter().map(device))
            });
            e = e.child(Elem::new("fence").children(methods));
        }
        if !n.unfence.is_empty() {
            e = e.child(Elem::new("unfence").children(n.unfence.iter().map(device)));
        }
        e
    });
    root = root.child(Elem::new("clusternodes").children(nodes));
    let devices = c.fencedevices.iter().map(|d| {
        Elem::new("fencedevice")
            .attr("name", &d.name)
            .attr("agent", &d.agent)
            .args(&d.args)
    });
    root = root.child(Elem::new("fencedevices").children(devices));
    if c.rm != Rm::default() {
        root = root.child(rm(&c.rm));
    }
    let mut out = String::from("<?xml version=\"1.0\"?>\n");
    root.render(0, &mut out);
    out
}

fn device(d: &DeviceRef) -> Elem {
    Elem::new("device").attr("name", &d.name).args(&d.args)
}

fn cman(m: &Cman) -> Elem {
    let d = Cman::default();
    let e = Elem::new("cman")
        .flag("two_node", m.two_node, false)
        .opt("expected_votes", m.expected_votes);
    let e = e
        .non_default("port", m.port, d.port)
        .opt("cluster_id", m.cluster_id);
    let e = e
        .flag("hash_cluster_id", m.hash_cluster_id, false)
        .non_default("keyfile", &m.keyfile, &d.keyfile);
    let e =
        e.opt("transport", m.transport.map(|t| t.as_str()))
            .flag("broadcast", m.broadcast, false);
    let e = e.opt("quorum_dev_poll", m.quorum_dev_poll).non_default(
        "shutdown_timeout",
        m.shutdown_timeout,
        d.shutdown_timeout,
    );
    let e = e.non_default("ccsd_poll", m.ccsd_poll, d.ccsd_poll).flag(
        "disallowed",
        m.disallowed,
        false,
    );
    let e = e.flag("upgrading", m.upgrading, false).non_default(
        "max_queued",
        m.max_queued,
        d.max_queued,
    );
    let mut e = e
        .non_default("startup_config_timeout", m.startup_config_timeout, 0)
        .opt("admin_group", m.admin_group.as_ref());
    let mc = |name: &str, x: &Multicast| {
        Elem::new(name)
            .opt("addr", x.addr)
            .opt("port", x.port)
            .opt("ttl", x.ttl)
    };
    if let Some(x) = &m.multicast {
        e = e.child(mc("multicast", x));
    }
    if let Some(x) = &m.altmulticast {
        e = e.child(mc("altmulticast", x));
    }
    e
}

fn totem(t: &Totem) -> Elem {
    let e = Elem::new("totem")
        .opt("token", t.token)
        .opt("join", t.join)
        .opt("consensus", t.consensus);
    let e = e.opt(
        "token_retransmits_before_loss_const",
        t.token_retransmits_before_loss_const,
    );
    let e = e
        .opt("fail_recv_const", t.fail_recv_const)
        .opt("rrp_mode", t.rrp_mode.as_ref());
    let e = e
        .opt("rrp_problem_count_threshold", t.rrp_problem_count_threshold)
        .opt_flag("secauth", t.secauth);
    e.opt("vsftype", t.vsftype.as_ref())
}

fn quorumd(q: &Quorumd) -> Elem {
    let d = Quorumd::default();
    let e = Elem::new("quorumd")
        .opt("device", q.device.as_ref())
        .opt("label", q.label.as_ref());
    let e = e
        .non_default("interval", q.interval, d.interval)
        .opt("tko", q.tko)
        .opt("tko_up", q.tko_up);
    let e = e
        .opt("upgrade_wait", q.upgrade_wait)
        .opt("master_wait", q.master_wait)
        .opt("votes", q.votes);
    let e = e
        .opt("min_score", q.min_score)
        .opt("cman_label", q.cman_label.as_ref())
        .opt("status_file", q.status_file.as_ref());
    let e = e
        .non_default("scheduler", q.scheduler.as_str(), d.scheduler.as_str())
        .non_default("priority", q.priority, d.priority);
    let e = e
        .flag("reboot", q.reboot, d.reboot)
        .flag("allow_kill", q.allow_kill, d.allow_kill);
    let e = e
        .flag("stop_cman", q.stop_cman, false)
        .flag("paranoid", q.paranoid, false)
        .flag("io_timeout", q.io_timeout, false);
    let e = e
        .non_default("max_error_cycles", q.max_error_cycles, 0)
        .flag("use_uptime", q.use_uptime, d.use_uptime);
    let e = e.opt_flag("master_wins", q.master_wins);
    e.children(q.heuristics.iter().map(|h| {
        let h_e = Elem::new("heuristic")
            .attr("program", &h.program)
            .non_default("score", h.score, 1);
        h_e.opt("interval", h.interval).opt("tko", h.tko)
    }))
}

fn fence_daemon(f: &FenceDaemon) -> Elem {
    let d = FenceDaemon::default();
    let e = Elem::new("fence_daemon").non_default(
        "post_join_delay",
        f.post_join_delay,
        d.post_join_delay,
    );
    let e = e
        .non_default("post_fail_delay", f.post_fail_delay, d.post_fail_delay)
        .flag("clean_start", f.clean_start, false);
    let e = e.non_default("override_path", &f.override_path, &d.override_path);
    e.non_default("override_time", f.override_time, d.override_time)
}

fn rm(rm: &Rm) -> Elem {
    let d = Rm::default();
    let e = Elem::new("rm").flag("central_processing", rm.central_processing, false);
    let e = e.non_default(
        "status_poll_interval",
        rm.status_poll_interval,
        d.status_poll_interval,
    );
    let e = e.non_default("status_child_max", rm.status_child_max, d.status_child_max);
    let e = e.non_default("statusmax", rm.statusmax, d.statusmax);
    let e = e.non_default(
        "transition_throttling",
        rm.transition_throttling,
        d.transition_throttling,
    );
    let mut e = e.flag("disabled", rm.disabled, false);
    if !rm.failoverdomains.is_empty() {
        let doms = rm.failoverdomains.iter().map(|fd| {
            let de = Elem::new("failoverdomain")
                .attr("name", &fd.name)
                .flag("ordered", fd.ordered, false);
            let de = de.flag("restricted", fd.restricted, false).flag(
                "nofailback",
                fd.nofailback,
                false,
            );
            de.children(fd.nodes.iter().map(|n| {
                Elem::new("failoverdomainnode")
                    .attr("name", &n.name)
                    .opt("priority", n.priority)
            }))
        });
        e = e.child(Elem::new("failoverdomains").children(doms));
    }
    if !rm.resources.is_empty() {
        e = e.child(Elem::new("resources").children(rm.resources.iter().map(resource)));
    }
    for s in &rm.services {
        let se = policy(Elem::new("service").attr("name", &s.name), &s.policy)
            .non_default("priority", s.priority, 0);
        let se = se.flag("nfslock", s.nfslock, false).flag(
            "nfs_client_cache",
            s.nfs_client_cache,
            false,
        );
        e = e.child(se.children(s.children.iter().map(resource)));
    }
    for v in &rm.vms {
        let ve = policy(Elem::new("vm").attr("name", &v.name), &v.policy);
        let ve = ve
            .non_default("migrate", v.migrate.as_str(), "live")
            .opt("migrate_options", v.migrate_options.as_ref());
        let mapping: Vec<String> = v
            .migration_mapping
            .iter()
            .map(|(m, h)| format!("{m}:{h}"))
            .collect();
        let ve = ve.flag("tunnelled", v.tunnelled, false).non_default(
            "migration_mapping",
            mapping.join(","),
            String::new(),
        );
        let ve = ve
            .opt_flag("use_virsh", v.use_virsh)
            .opt("xmlfile", v.xmlfile.as_ref())
            .opt("path", v.path.as_ref());
        let ve = ve.opt("snapshot", v.snapshot.as_ref()).non_default(
            "hypervisor",
            v.hypervisor.as_str(),
            "auto",
        );
        let ve = ve
            .opt("hypervisor_uri", v.hypervisor_uri.as_ref())
            .opt("migration_uri", v.migration_uri.as_ref());
        let ve = ve
            .opt("status_program", v.status_program.as_ref())
            .flag("no_kill", v.no_kill, false);
        e = e.child(ve.children(v.children.iter().map(resource)));
    }
    e
}

fn policy(e: Elem, p: &Policy) -> Elem {
    let d = Policy::default();
    let e = e
        .opt("domain", p.domain.as_ref())
        .flag("autostart", p.autostart, d.autostart);
    let e = e.flag("exclusive", p.exclusive, d.exclusive).non_default(
        "recovery",
        p.recovery.as_str(),
        d.recovery.as_str(),
    );
    let e = e
        .non_default("max_restarts", p.max_restarts, 0)
        .non_default("restart_expire_time", p.restart_expire_time_s, 0);
    e.opt("depend", p.depend.as_ref()).non_default(
        "depend_mode",
        p.depend_mode.as_str(),
        d.depend_mode.as_str(),
    )
}

fn resource(r: &Resource) -> Elem {
    Elem::new(&r.kind)
        .args(&r.attrs)
        .children(r.children.iter().map(resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_including_whitespace_that_xml_would_normalise() {
        let mut out = String::new();
        escape_into("a&b<c>d\"e'f\tg\nh", &mut out);
        assert_eq!(out, "a&amp;b&lt;c&gt;d&quot;e&apos;f&#9;g&#10;h");
    }

    #[test]
    fn elements_nest_with_two_space_indent_and_empty_ones_self_close() {
        let e = Elem::new("a")
            .attr("x", 1)
            .child(Elem::new("b").child(Elem::new("c")));
        let mut out = String::new();
        e.render(0, &mut out);
        assert_eq!(out, "<a x=\"1\">\n  <b>\n    <c/>\n  </b>\n</a>\n");
    }

    #[test]
    fn defaults_are_left_out() {
        let c = ClusterConf {
            name: "c".into(),
            config_version: 3,
            ..ClusterConf::default()
        };
        assert_eq!(
            to_xml(&c),
            "<?xml version=\"1.0\"?>\n<cluster name=\"c\" config_version=\"3\">\n  <clusternodes/>\n  <fencedevices/>\n</cluster>\n"
        );
    }
}
