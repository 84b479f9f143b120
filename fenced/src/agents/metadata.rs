//! The metadata XML an agent prints for `-o metadata` (spec/fencing.md §2.5, fence-agents
//! shape): every parameter under its modern name with `obsoletes="old"`, and the old name
//! again with `deprecated="1"`, so tools written for either generation find theirs.

use super::options::{ParamKind, ParamSpec};

/// What metadata says about an agent.
#[derive(Clone, Copy, Debug)]
pub struct AgentInfo {
    /// Program name (`fence_apc`).
    pub name: &'static str,
    /// One line.
    pub shortdesc: &'static str,
    /// A paragraph.
    pub longdesc: &'static str,
    /// The vendor's site, if any.
    pub vendor_url: Option<&'static str>,
    /// The actions it supports, in metadata order.
    pub actions: &'static [&'static str],
}

/// Escapes text for an XML attribute or element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn parameter(out: &mut String, spec: &ParamSpec, name: &str, marker: &str) {
    let required = u8::from(spec.required);
    out.push_str(&format!(
        "\t<parameter name=\"{}\" unique=\"0\" required=\"{required}\"{marker}>\n",
        escape(name)
    ));
    out.push_str(&format!(
        "\t\t<getopt mixed=\"{}\" />\n",
        escape(&spec.getopt())
    ));
    match (spec.kind, spec.default) {
        (ParamKind::Boolean, _) | (_, None) => out.push_str(&format!(
            "\t\t<content type=\"{}\"  />\n",
            spec.kind.as_str()
        )),
        (kind, Some(d)) => out.push_str(&format!(
            "\t\t<content type=\"{}\" default=\"{}\"  />\n",
            kind.as_str(),
            escape(d)
        )),
    }
    out.push_str(&format!(
        "\t\t<shortdesc lang=\"en\">{}</shortdesc>\n\t</parameter>\n",
        escape(spec.desc)
    ));
}

/// Renders the whole document, ending in a newline.
pub fn render(info: &AgentInfo, params: &[ParamSpec]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" ?>\n");
    out.push_str(&format!(
        "<resource-agent name=\"{}\" shortdesc=\"{}\" >\n",
        escape(info.name),
        escape(info.shortdesc)
    ));
    out.push_str(&format!("<longdesc>{}</longdesc>\n", escape(info.longdesc)));
    if let Some(url) = info.vendor_url {
        out.push_str(&format!("<vendor-url>{}</vendor-url>\n", escape(url)));
    }
    out.push_str("<parameters>\n");
    // Sorted by the name shown, old names beside new ones, as fence-agents prints them.
    let mut rows: Vec<(&str, &ParamSpec, String)> = Vec::new();
    for spec in params {
        match spec.old.filter(|old| *old != "option") {
            Some(old) => {
                rows.push((old, spec, " deprecated=\"1\"".to_owned()));
                rows.push((spec.name, spec, format!(" obsoletes=\"{old}\"")));
            }
            None => rows.push((spec.name, spec, String::new())),
        }
    }
    rows.sort_by(|a, b| a.0.cmp(b.0));
    for (name, spec, marker) in rows {
        parameter(&mut out, spec, name, &marker);
    }
    out.push_str("</parameters>\n<actions>\n");
    for action in info.actions {
        if *action == "on" {
            out.push_str("\t<action name=\"on\" automatic=\"0\"/>\n");
        } else {
            out.push_str(&format!("\t<action name=\"{action}\" />\n"));
        }
    }
    out.push_str("</actions>\n</resource-agent>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::options::standard;

    const INFO: AgentInfo = AgentInfo {
        name: "fence_x",
        shortdesc: "Fence agent for <x>",
        longdesc: "long & short",
        vendor_url: None,
        actions: &["on", "off", "metadata"],
    };

    #[test]
    fn old_names_are_deprecated_and_new_names_obsolete_them() {
        let xml = render(&INFO, &[standard("ip").required(true), standard("ipport")]);
        assert!(xml
            .contains("<parameter name=\"ipaddr\" unique=\"0\" required=\"1\" deprecated=\"1\">"));
        assert!(xml
            .contains("<parameter name=\"ip\" unique=\"0\" required=\"1\" obsoletes=\"ipaddr\">"));
        assert!(xml.contains("<getopt mixed=\"-a, --ip=[ip]\" />"));
        assert!(xml.contains("<content type=\"integer\" default=\"23\"  />"));
        assert!(xml.contains("shortdesc=\"Fence agent for &lt;x&gt;\""));
        assert!(xml.contains("<longdesc>long &amp; short</longdesc>"));
        assert!(xml.contains("<action name=\"on\" automatic=\"0\"/>\n\t<action name=\"off\" />"));
        assert!(xml.starts_with("<?xml version=\"1.0\" ?>\n<resource-agent name=\"fence_x\""));
        assert!(xml.ends_with("</actions>\n</resource-agent>\n"));
    }
}
