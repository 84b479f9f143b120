//! Rules for `<rm>`: failover domains, resources, services and VMs.

use super::defaults::MAX_SERVICE_ID_LEN;
use super::diag::{Origin, Report};
use super::model::ClusterConf;
use super::rm::{Hypervisor, Policy, Resource, Rm};
use super::validate::{first_at, repeats};

pub(crate) fn check(c: &ClusterConf, r: &mut Report) {
    let rm = &c.rm;
    if rm.central_processing {
        r.warn(
            rm.origin.attr("central_processing"),
            "central_processing is not supported; services are placed by failover domains as without it",
        );
    }
    if rm.status_poll_interval == 0 {
        r.warn(
            rm.origin.attr("status_poll_interval"),
            "status_poll_interval 0 is ignored; 10 seconds are used",
        );
    }
    domains(c, r);
    resources(rm, r);
    services(c, r);
}

fn domains(c: &ClusterConf, r: &mut Report) {
    let doms = &c.rm.failoverdomains;
    for (prev, d) in repeats(doms, |d| d.name.to_ascii_lowercase()) {
        let msg = format!(
            "failover domain `{}` is defined twice{}",
            d.name,
            first_at(&prev.origin)
        );
        r.error(d.origin.attr("name"), msg);
    }
    for d in doms {
        for n in &d.nodes {
            if !n.name.is_empty() && c.node(&n.name).is_none() {
                let msg = format!(
                    "failover domain `{}` names node `{}`, which is not a <clusternode>",
                    d.name, n.name
                );
                r.error(n.origin.attr("name"), msg);
            }
            match (d.ordered, n.priority) {
                (true, Some(p)) if !(1..=100).contains(&p) => {
                    let msg = format!(
                        "priority {p} of `{}` in domain `{}` is outside 1 to 100",
                        n.name, d.name
                    );
                    r.error(n.origin.attr("priority"), msg);
                }
                (true, None) => {
                    let msg = format!(
                        "`{}` has no priority in ordered domain `{}`: rgmanager then prefers it over every other \
                         member when scoring but lists it last; give it a priority from 1 to 100",
                        n.name, d.name
                    );
                    r.warn(n.origin.element(), msg);
                }
                (false, Some(_)) => {
                    let msg = format!(
                        "priority is ignored because domain `{}` is not ordered",
                        d.name
                    );
                    r.warn(n.origin.attr("priority"), msg);
                }
                _ => {}
            }
        }
        for (prev, n) in repeats(&d.nodes, |n| n.name.to_ascii_lowercase()) {
            let msg = format!(
                "node `{}` is listed twice in domain `{}`{}",
                n.name,
                d.name,
                first_at(&prev.origin)
            );
            r.error(n.origin.attr("name"), msg);
        }
    }
}

fn resources(rm: &Rm, r: &mut Report) {
    for res in &rm.resources {
        if res.primary().is_none_or(str::is_empty) && res.reference().is_none() {
            let msg = format!(
                "global resource <{}> has no `{}`; services could not refer to it",
                res.kind,
                res.primary_attr()
            );
            r.error(res.origin.element(), msg);
        }
    }
    let key = |res: &Resource| {
        res.primary()
            .map_or(String::new(), |p| format!("{}\u{0}{p}", res.kind))
    };
    for (prev, res) in repeats(&rm.resources, key) {
        let msg = format!(
            "global resource <{} {}=\"{}\"> is defined twice{}",
            res.kind,
            res.primary_attr(),
            res.primary().unwrap_or_default(),
            first_at(&prev.origin)
        );
        r.error(res.origin.attr(res.primary_attr()), msg);
    }
    let mut stack: Vec<&Resource> = rm.resources.iter().flat_map(|g| &g.children).collect();
    stack.extend(rm.services.iter().flat_map(|s| &s.children));
    stack.extend(rm.vms.iter().flat_map(|v| &v.children));
    while let Some(res) = stack.pop() {
        if let Some(name) = res.reference() {
            if rm.resource(&res.kind, name).is_none() {
                let msg = format!(
                    "<{} ref=\"{name}\"> refers to no global <{}> in <resources>",
                    res.kind, res.kind
                );
                r.error(res.origin.attr("ref"), msg);
            }
        }
        stack.extend(&res.children);
    }
}

fn services(c: &ClusterConf, r: &mut Report) {
    let rm = &c.rm;
    for (prev, s) in repeats(&rm.services, |s| s.name.clone()) {
        let msg = format!(
            "service `{}` is defined twice{}",
            s.name,
            first_at(&prev.origin)
        );
        r.error(s.origin.attr("name"), msg);
    }
    for (prev, v) in repeats(&rm.vms, |v| v.name.clone()) {
        let msg = format!("vm `{}` is defined twice{}", v.name, first_at(&prev.origin));
        r.error(v.origin.attr("name"), msg);
    }
    let ids: Vec<String> = rm
        .services
        .iter()
        .map(|s| s.id())
        .chain(rm.vms.iter().map(|v| v.id()))
        .collect();
    let tops = rm.services.iter().map(|s| (s.id(), &s.policy, &s.origin));
    for (id, policy, origin) in tops.chain(rm.vms.iter().map(|v| (v.id(), &v.policy, &v.origin))) {
        common(c, &ids, &id, policy, origin, r);
    }
    for v in &rm.vms {
        if v.use_virsh == Some(false) {
            if v.hypervisor == Hypervisor::Qemu {
                r.error(
                    v.origin.attr("use_virsh"),
                    format!(
                        "{}: use_virsh=\"0\" (xm) works only with Xen, but hypervisor is qemu",
                        v.id()
                    ),
                );
            }
            if v.xmlfile.is_some() {
                r.error(
                    v.origin.attr("xmlfile"),
                    format!("{}: xmlfile needs virsh, but use_virsh is \"0\"", v.id()),
                );
            }
        }
        if !v.migratory() {
            let msg = format!("{} has child resources, so it cannot be live-migrated; it is stopped and started instead", v.id());
            r.warn(v.origin.element(), msg);
        }
        for (member, _) in &v.migration_mapping {
            if c.node(member).is_none() {
                let msg = format!(
                    "{}: migration_mapping names `{member}`, which is not a <clusternode>",
                    v.id()
                );
                r.error(v.origin.attr("migration_mapping"), msg);
            }
        }
    }
}

/// Rules shared by `<service>` and `<vm>`.
fn common(c: &ClusterConf, ids: &[String], id: &str, p: &Policy, origin: &Origin, r: &mut Report) {
    if id.len() > MAX_SERVICE_ID_LEN {
        let msg = format!(
            "`{id}` is {} bytes long; rgmanager ids are at most {MAX_SERVICE_ID_LEN}",
            id.len()
        );
        r.error(origin.attr("name"), msg);
    }
    if let Some(d) = &p.domain {
        if c.rm.failoverdomain(d).is_none() {
            let msg = format!("{id} uses failover domain `{d}`, which no <failoverdomain> defines");
            r.error(origin.attr("domain"), msg);
        }
    }
    if let Some(dep) = &p.depend {
        if dep == id {
            r.error(
                origin.attr("depend"),
                format!("{id} depends on itself, so it could never start"),
            );
        } else if !ids.iter().any(|i| i == dep) {
            let msg = format!("{id} depends on `{dep}`, which is not a configured service (write service:NAME or vm:NAME)");
            r.error(origin.attr("depend"), msg);
        }
    }
}
