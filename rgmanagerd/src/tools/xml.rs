//! `clustat -x` (the original's XML, `<clustat version="4.1.1">`) and `clustat --json`.
//!
//! ```text
//!  <?xml version="1.0"?>
//!  <clustat version="4.1.1">
//!    <cluster name="dom0cluster1" id="4711" generation="12"/>     (no -s / -m)
//!    <quorum quorate="1" groupmember="1"/>                        (no -s / -m)
//!    <nodes> <node name=.. state=.. local=.. .. nodeid="0x00000001"/> </nodes>
//!    <groups> <group name=.. state=.. state_str=.. .. /> </groups> (rgmanagerd answered)
//!  </clustat>
//! ```
//!
//! The layout, attribute order and the original's quirk of a line break inside an
//! inquorate `<quorum>` element are kept; unlike the original, attribute values are
//! escaped, so a name with `&`, `<` or `"` cannot break the document.

use super::clustat::{
    exit_status, member_name, member_order, service_target, visible, RenderOpts, Report,
};
use super::ctime::ctime;
use libcluster::ipc::rgmanager::{RgMember, RgService, RgStatus};
use serde::Serialize;
use std::fmt::Write as _;

/// The `version` attribute of `<clustat>`.
pub const XML_VERSION: &str = "4.1.1";

/// Escapes an attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// `clustat -x`.
pub fn xml(status: &RgStatus, opts: &RenderOpts) -> Report {
    let (member, service) = (opts.member.as_deref(), opts.service.as_deref());
    let mut out = String::from("<?xml version=\"1.0\"?>\n");
    let _ = writeln!(out, "<clustat version=\"{XML_VERSION}\">");
    if member.is_none() && service.is_none() {
        let _ = writeln!(
            out,
            "  <cluster name=\"{}\" id=\"{}\" generation=\"{}\"/>",
            escape(&status.cluster_name),
            status.cluster_id,
            status.generation
        );
        let groupmember = status.quorate
            && opts.rgmanager
            && status.members.iter().any(|m| m.local && m.rgmanager);
        // The original ends the inquorate attribute with a newline; XML does not mind.
        let quorate = if status.quorate {
            "quorate=\"1\""
        } else {
            "quorate=\"0\"\n"
        };
        let _ = writeln!(
            out,
            "  <quorum {quorate} groupmember=\"{}\"/>",
            u8::from(groupmember)
        );
    }
    if service.is_none() || member.is_some() {
        out.push_str("  <nodes>\n");
        for m in member_order(status) {
            if member.is_some_and(|name| name != m.name) || !visible(m) {
                continue;
            }
            node(&mut out, m, opts.rgmanager);
        }
        out.push_str("  </nodes>\n");
    }
    if opts.rgmanager && (member.is_none() || service.is_some()) {
        let only = service.map(|s| service_target(status, s));
        out.push_str("  <groups>\n");
        let mut sorted: Vec<&RgService> = status.services.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for svc in sorted {
            if only.as_deref().is_none_or(|n| n == svc.name) {
                group(&mut out, status, svc, opts);
            }
        }
        out.push_str("  </groups>\n");
    }
    out.push_str("</clustat>\n");
    Report {
        text: out,
        exit: exit_status(status, opts),
    }
}

fn node(out: &mut String, m: &RgMember, rgmanager: bool) {
    let b = u8::from;
    let _ = writeln!(
        out,
        "    <node name=\"{}\" state=\"{}\" local=\"{}\" estranged=\"{}\" rgmanager=\"{}\" \
         rgmanager_master=\"{}\" qdisk=\"{}\" nodeid=\"0x{:08x}\"/>",
        escape(&m.name),
        b(m.online),
        b(m.local),
        b(m.estranged),
        b(m.rgmanager && rgmanager),
        b(m.master && rgmanager),
        b(m.qdisk),
        m.id
    );
}

fn group(out: &mut String, status: &RgStatus, svc: &RgService, opts: &RenderOpts) {
    let r = &svc.record;
    let t = svc.last_transition_unix_s.unwrap_or(0);
    let _ = writeln!(
        out,
        "    <group name=\"{}\" state=\"{}\" state_str=\"{}\" flags=\"{}\" flags_str=\"{}\" \
         owner=\"{}\" last_owner=\"{}\" restarts=\"{}\" last_transition=\"{}\" \
         last_transition_str=\"{}\"/>",
        escape(&svc.name),
        r.state.code(),
        r.state.as_str(),
        r.flags.0,
        r.flags.long().replace(',', " "),
        escape(member_name(status, r.owner.map(|n| n.0))),
        escape(member_name(status, r.last_owner.map(|n| n.0))),
        r.restarts,
        t.max(0),
        ctime(t, (opts.utc_offset_s)(t))
    );
}

/// One member in `--json`.
#[derive(Serialize)]
struct JsonMember<'a> {
    name: &'a str,
    id: u32,
    online: bool,
    local: bool,
    estranged: bool,
    rgmanager: bool,
    master: bool,
    qdisk: bool,
}

/// One service in `--json`.
#[derive(Serialize)]
struct JsonService<'a> {
    name: &'a str,
    state: &'a str,
    state_code: u32,
    flags: Vec<&'a str>,
    owner: Option<&'a str>,
    last_owner: Option<&'a str>,
    restarts: u32,
    last_transition: Option<i64>,
    enabled: bool,
    frozen: bool,
}

/// The whole `--json` document.
#[derive(Serialize)]
struct JsonReport<'a> {
    cluster_name: &'a str,
    cluster_id: u16,
    generation: u64,
    quorate: bool,
    local_node_id: u32,
    rgmanager: bool,
    members: Vec<JsonMember<'a>>,
    services: Option<Vec<JsonService<'a>>>,
}

/// `clustat --json` (ours): the same selection as the text report, one JSON document with
/// state strings and owner names resolved; `services` is null when rgmanagerd did not answer.
pub fn json(status: &RgStatus, opts: &RenderOpts) -> Result<Report, serde_json::Error> {
    let (member, service) = (opts.member.as_deref(), opts.service.as_deref());
    let owner = |id: Option<u32>| match member_name(status, id) {
        "none" => None,
        name => Some(name),
    };
    let members = member_order(status)
        .into_iter()
        .filter(|m| visible(m) && member.is_none_or(|n| n == m.name))
        .filter(|_| service.is_none() || member.is_some())
        .map(|m| JsonMember {
            name: &m.name,
            id: m.id,
            online: m.online,
            local: m.local,
            estranged: m.estranged,
            rgmanager: m.rgmanager && opts.rgmanager,
            master: m.master && opts.rgmanager,
            qdisk: m.qdisk,
        })
        .collect();
    let only = service.map(|s| service_target(status, s));
    let services = (opts.rgmanager && (member.is_none() || service.is_some())).then(|| {
        let mut v: Vec<&RgService> = status
            .services
            .iter()
            .filter(|s| only.as_deref().is_none_or(|n| n == s.name))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.into_iter()
            .map(|s| {
                let r = &s.record;
                let mut flags = Vec::new();
                if r.flags.frozen() {
                    flags.push("frozen");
                }
                if r.flags.0 & libcluster::rgmanager::Flags::PARTIAL != 0 {
                    flags.push("partial");
                }
                JsonService {
                    name: &s.name,
                    state: r.state.as_str(),
                    state_code: r.state.code(),
                    flags,
                    owner: owner(r.owner.map(|n| n.0)),
                    last_owner: owner(r.last_owner.map(|n| n.0)),
                    restarts: r.restarts,
                    last_transition: s.last_transition_unix_s,
                    enabled: s.intent.enabled,
                    frozen: s.intent.frozen,
                }
            })
            .collect()
    });
    let doc = JsonReport {
        cluster_name: &status.cluster_name,
        cluster_id: status.cluster_id,
        generation: status.generation,
        quorate: status.quorate,
        local_node_id: status.local_node_id,
        rgmanager: opts.rgmanager,
        members,
        services,
    };
    let mut text = serde_json::to_string_pretty(&doc)?;
    text.push('\n');
    Ok(Report {
        text,
        exit: exit_status(status, opts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_are_escaped() {
        assert_eq!(escape(r#"a&b<c>"d"#), "a&amp;b&lt;c&gt;&quot;d");
        assert_eq!(escape("plain"), "plain");
    }
}
