//! Readers for `<rm>`: failover domains, resources, services and VMs.

use roxmltree::Node;

use super::defaults::parse_time_s;
use super::parse::{El, Flag, Reader};
use super::read::{items, leaf, list};
use super::rm::{
    DependMode, FailoverDomain, FailoverDomainNode, Hypervisor, MigrateMode, Policy, Recovery,
    Resource, Rm, Service, Vm,
};

const POLICY_ATTRS: [&str; 9] = [
    "name",
    "domain",
    "autostart",
    "exclusive",
    "recovery",
    "max_restarts",
    "restart_expire_time",
    "depend",
    "depend_mode",
];

pub(crate) fn rm(r: &mut Reader<'_>, node: Node<'_, '_>) -> Rm {
    let known = [
        "central_processing",
        "status_poll_interval",
        "status_child_max",
        "statusmax",
        "transition_throttling",
        "disabled",
        "log_level",
        "log_facility",
    ];
    let el = r.open(node, Some(&known));
    for old in ["log_level", "log_facility"] {
        if el.node.has_attribute(old) {
            let msg = format!(
                "`{old}` on <rm> is deprecated and ignored; logging is configured by the daemons"
            );
            r.report.warn(el.origin.attr(old), msg);
        }
    }
    let d = Rm::default();
    let mut rm = Rm {
        central_processing: r
            .flag(&el, "central_processing", Flag::Numeric)
            .unwrap_or(false),
        status_poll_interval: r
            .u32(&el, "status_poll_interval")
            .unwrap_or(d.status_poll_interval),
        status_child_max: r.u32(&el, "status_child_max").unwrap_or(d.status_child_max),
        statusmax: r.u32(&el, "statusmax").unwrap_or(d.statusmax),
        transition_throttling: r
            .u32(&el, "transition_throttling")
            .unwrap_or(d.transition_throttling),
        disabled: r.flag(&el, "disabled", Flag::Numeric).unwrap_or(false),
        ..d
    };
    let mut seen = Vec::new();
    for child in r.children(&el) {
        let tag = child.tag_name().name();
        if ["failoverdomains", "resources"].contains(&tag) && !r.first(&mut seen, child, &el) {
            continue;
        }
        match tag {
            "failoverdomains" => {
                rm.failoverdomains = list(r, child, "failoverdomain", failoverdomain)
            }
            "resources" => {
                let el = r.open(child, Some(&[]));
                rm.resources = resources(r, &el);
            }
            "service" => rm.services.push(service(r, child)),
            "vm" => rm.vms.push(vm(r, child)),
            "events" | "resource-defaults" => {
                let p = r.pos(child.document(), child.range().start);
                r.report.warn(
                    p,
                    format!("<{tag}> is not supported (no central processing); ignored"),
                );
            }
            _ => r.unknown_element(child, &el),
        }
    }
    rm.origin = el.origin;
    rm
}

fn failoverdomain(r: &mut Reader<'_>, node: Node<'_, '_>) -> FailoverDomain {
    let el = r.open(node, Some(&["name", "ordered", "restricted", "nofailback"]));
    let mut d = FailoverDomain {
        name: r.required(&el, "name"),
        ordered: r.flag(&el, "ordered", Flag::Numeric).unwrap_or(false),
        restricted: r.flag(&el, "restricted", Flag::Numeric).unwrap_or(false),
        nofailback: r.flag(&el, "nofailback", Flag::Numeric).unwrap_or(false),
        ..FailoverDomain::default()
    };
    d.nodes = items(r, &el, "failoverdomainnode", |r, child| {
        let el = r.open(child, Some(&["name", "priority"]));
        FailoverDomainNode {
            name: r.required(&el, "name"),
            priority: r.u32(&el, "priority"),
            origin: leaf(r, el),
        }
    });
    d.origin = el.origin;
    d
}

/// Every child element of `el`, read as a resource tree.
fn resources(r: &mut Reader<'_>, el: &El<'_, '_>) -> Vec<Resource> {
    r.children(el).into_iter().map(|c| resource(r, c)).collect()
}

/// A resource element of any type, with its subtree.
fn resource(r: &mut Reader<'_>, node: Node<'_, '_>) -> Resource {
    let el = r.open(node, None);
    let children = resources(r, &el);
    Resource {
        kind: el.tag().to_string(),
        attrs: r.args(&el, &[]),
        children,
        origin: el.origin,
    }
}

fn policy(r: &mut Reader<'_>, el: &El<'_, '_>) -> Policy {
    let d = Policy::default();
    let recoveries = "restart, relocate, disable or restart-disable";
    let time = "a time such as 300, 5m or 1h30m";
    Policy {
        domain: r.str(el, "domain"),
        autostart: r
            .flag(el, "autostart", Flag::Numeric)
            .unwrap_or(d.autostart),
        exclusive: r.flag(el, "exclusive", Flag::Words).unwrap_or(d.exclusive),
        recovery: r
            .choice(el, "recovery", Recovery::from_name, recoveries)
            .unwrap_or(d.recovery),
        max_restarts: r.u32(el, "max_restarts").unwrap_or(0),
        restart_expire_time_s: r
            .choice(el, "restart_expire_time", parse_time_s, time)
            .unwrap_or(0),
        depend: r.str(el, "depend"),
        depend_mode: r
            .choice(el, "depend_mode", DependMode::from_name, "hard or soft")
            .unwrap_or(d.depend_mode),
    }
}

fn service(r: &mut Reader<'_>, node: Node<'_, '_>) -> Service {
    let mut known = POLICY_ATTRS.to_vec();
    known.extend(["priority", "nfslock", "nfs_client_cache"]);
    let el = r.open(node, Some(&known));
    let children = resources(r, &el);
    Service {
        name: r.required(&el, "name"),
        policy: policy(r, &el),
        priority: r.u32(&el, "priority").unwrap_or(0),
        nfslock: r.flag(&el, "nfslock", Flag::Words).unwrap_or(false),
        nfs_client_cache: r
            .flag(&el, "nfs_client_cache", Flag::Words)
            .unwrap_or(false),
        children,
        origin: el.origin,
    }
}

fn vm(r: &mut Reader<'_>, node: Node<'_, '_>) -> Vm {
    let mut known = POLICY_ATTRS.to_vec();
    known.extend([
        "migrate",
        "migrate_options",
        "tunnelled",
        "migration_mapping",
        "use_virsh",
        "xmlfile",
        "path",
        "snapshot",
        "hypervisor",
        "hypervisor_uri",
        "migration_uri",
        "status_program",
        "no_kill",
    ]);
    let el = r.open(node, Some(&known));
    let mapping = "a list like node1:host1,node2:host2";
    let children = resources(r, &el);
    Vm {
        name: r.required(&el, "name"),
        policy: policy(r, &el),
        migrate: r
            .choice(&el, "migrate", MigrateMode::from_name, "live or pause")
            .unwrap_or_default(),
        migrate_options: r.str(&el, "migrate_options"),
        tunnelled: r.flag(&el, "tunnelled", Flag::Words).unwrap_or(false),
        migration_mapping: r
            .choice(&el, "migration_mapping", parse_mapping, mapping)
            .unwrap_or_default(),
        use_virsh: r.flag(&el, "use_virsh", Flag::Words),
        xmlfile: r.str(&el, "xmlfile"),
        path: r.str(&el, "path"),
        snapshot: r.str(&el, "snapshot"),
        hypervisor: r
            .choice(
                &el,
                "hypervisor",
                Hypervisor::from_name,
                "auto, xen or qemu",
            )
            .unwrap_or_default(),
        hypervisor_uri: r.str(&el, "hypervisor_uri"),
        migration_uri: r.str(&el, "migration_uri"),
        status_program: r.str(&el, "status_program"),
        no_kill: r.flag(&el, "no_kill", Flag::Words).unwrap_or(false),
        children,
        origin: el.origin,
    }
}

/// `member:host,member:host`; an empty value is an empty mapping.
fn parse_mapping(s: &str) -> Option<Vec<(String, String)>> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (member, host) = e.split_once(':')?;
            let (member, host) = (member.trim(), host.trim());
            (!member.is_empty() && !host.is_empty()).then(|| (member.to_string(), host.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_mapping_pairs_members_with_hosts() {
        let m = parse_mapping("a:ha, b:hb").unwrap();
        assert_eq!(
            m,
            [
                ("a".to_string(), "ha".to_string()),
                ("b".to_string(), "hb".to_string())
            ]
        );
        assert_eq!(parse_mapping(""), Some(vec![]));
        assert_eq!(parse_mapping("a"), None);
        assert_eq!(parse_mapping("a:"), None);
    }
}
