//! Compiling a `<service>` into its resources in start order (spec/rgmanager.md §6.2).
//!
//! Siblings start by type level (lvm 1, fs 2, clusterfs 3, netfs 4, nfsexport 5,
//! nfsclient 6, ip 7, smb 8, script 9, any other type after those), in document order within
//! a level; a resource starts before its children. The result is one list: start walks it
//! forwards, stop backwards, so children stop before their parent.
//!
//! `<fs ref="data"/>` stands for the `<fs name="data">` of `<resources>`: it takes the global
//! resource's attributes and `<action>` overrides, keeps its own children, and may add the
//! per-place `__` attributes (`__enforce_timeouts`...). Other attributes on a reference are
//! ignored, as rgmanager ignored them.

use std::path::Path;

use libcluster::config::{Resource, Rm, Service};
use tracing::warn;

use super::agent::{AnyAgent, ProgramAgent};
use super::error::ResourceError;
use super::fs::FsAgent;
use super::ip::IpAgent;
use super::schedule::Actions;
use super::AgentConfig;

/// Nesting we follow before calling the file hostile.
pub const MAX_DEPTH: usize = 32;

/// One resource of a compiled group.
#[derive(Clone, Debug)]
pub struct CompiledResource {
    /// The type (element name).
    pub kind: String,
    /// `type:primary`, rgmanager's instance name (`OCF_RESOURCE_INSTANCE`).
    pub name: String,
    /// The attributes agents see: the resource's own (or its global's), then inherited ones.
    pub attrs: Vec<(String, String)>,
    /// Index of the parent resource in start order; `None` for the service's children.
    pub parent: Option<usize>,
    /// Timeouts and status schedule.
    pub actions: Actions,
    /// `__enforce_timeouts`.
    pub enforce_timeouts: bool,
    /// How many places of cluster.conf use this resource (`OCF_RESKEY_RGMANAGER_meta_refcnt`).
    pub refcnt: usize,
    /// Who runs it.
    pub agent: AnyAgent,
}

impl CompiledResource {
    /// The value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        attr(&self.attrs, name)
    }
}

/// The start level of a type among its siblings (unlisted types after the listed ones).
pub fn start_level(kind: &str) -> u32 {
    match kind {
        "lvm" => 1,
        "fs" => 2,
        "clusterfs" => 3,
        "netfs" => 4,
        "nfsexport" => 5,
        "nfsclient" => 6,
        "ip" => 7,
        "smb" => 8,
        "script" => 9,
        _ => 10,
    }
}

/// An attribute problem found by a native agent's constructor; the compiler adds context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrProblem {
    /// A required attribute is absent (or empty).
    Missing(&'static str),
    /// An attribute's value is unusable.
    Bad {
        /// The attribute.
        attr: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
}

/// Parses a boolean attribute the way rgmanager's agents read them.
pub fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "" | "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// A boolean attribute with its default.
pub(crate) fn flag(
    attrs: &[(String, String)],
    name: &'static str,
    default: bool,
) -> Result<bool, AttrProblem> {
    match attr(attrs, name) {
        None => Ok(default),
        Some(v) => parse_flag(v).ok_or_else(|| AttrProblem::Bad {
            attr: name,
            value: v.to_string(),
            reason: "not a boolean (1/0, yes/no, true/false, on/off)".to_string(),
        }),
    }
}

/// A required, non-empty attribute.
pub(crate) fn required<'a>(
    attrs: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, AttrProblem> {
    attr(attrs, name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(AttrProblem::Missing(name))
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `<kind primary="value">` (or the attribute that identifies it best, or its `ref`), or
/// `<kind>`: how errors name a resource.
pub fn describe(kind: &str, attrs: &[(String, String)]) -> String {
    let (key, fallback) = identity_attrs(kind);
    [key, fallback, "ref"]
        .into_iter()
        .find_map(|k| attr(attrs, k).filter(|v| !v.is_empty()).map(|v| (k, v)))
        .map_or_else(
            || format!("<{kind}>"),
            |(k, v)| format!("<{kind} {k}=\"{v}\">"),
        )
}

/// The primary attribute of a type, and what identifies a resource without one.
fn identity_attrs(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "ip" => ("address", "address"),
        "script" => ("name", "file"),
        "fs" | "clusterfs" | "netfs" => ("name", "mountpoint"),
        _ => ("name", "name"),
    }
}

/// Attributes filled from an ancestor when a resource lacks them, as the original agents'
/// metadata declared (`inherit="..."`): `service%X` is the service's attribute, a plain name
/// the nearest ancestor resource's. We do not read metadata, so this is the list for the
/// agents that nest under an `fs` or a service.
const INHERITED: &[(&str, &str, &str)] = &[
    ("*", "service_name", "service%name"),
    ("nfsexport", "path", "mountpoint"),
    ("nfsexport", "device", "device"),
    ("nfsexport", "fsid", "fsid"),
    ("nfsserver", "path", "mountpoint"),
    ("nfsclient", "path", "path"),
    ("nfsclient", "fsid", "fsid"),
    ("nfsclient", "nfslock", "service%nfslock"),
    ("nfsclient", "use_cache", "service%nfs_client_cache"),
    ("fs", "nfslock", "service%nfslock"),
    ("clusterfs", "nfslock", "service%nfslock"),
    ("ip", "nfslock", "service%nfslock"),
];

struct Compiler<'a> {
    service: &'a Service,
    id: String,
    rm: &'a Rm,
    agents: &'a AgentConfig,
    out: Vec<CompiledResource>,
}

/// Compiles `service`'s tree. Every problem is an error naming the service, the resource
/// and the attribute; nothing is run.
pub fn compile(
    service: &Service,
    rm: &Rm,
    agents: &AgentConfig,
) -> Result<Vec<CompiledResource>, ResourceError> {
    let mut c = Compiler {
        service,
        id: service.id(),
        rm,
        agents,
        out: Vec::new(),
    };
    c.walk(&service.children, None, 0)?;
    Ok(c.out)
}

impl<'a> Compiler<'a> {
    fn walk(
        &mut self,
        list: &'a [Resource],
        parent: Option<usize>,
        depth: usize,
    ) -> Result<(), ResourceError> {
        let mut siblings: Vec<&'a Resource> = list.iter().filter(|r| r.kind != "action").collect();
        // A stable sort keeps document order within a level.
        siblings.sort_by_key(|r| start_level(&r.kind));
        for r in siblings {
            if depth >= MAX_DEPTH {
                return Err(ResourceError::TooDeep {
                    service: self.id.clone(),
                    resource: describe(&r.kind, &r.attrs),
                    max: MAX_DEPTH,
                });
            }
            let index = self.one(r, parent)?;
            self.walk(&r.children, Some(index), depth + 1)?;
        }
        Ok(())
    }

    /// Compiles one resource (not its children) and appends it.
    fn one(&mut self, r: &'a Resource, parent: Option<usize>) -> Result<usize, ResourceError> {
        let Resolved {
            mut attrs,
            overrides,
            refcnt,
        } = self.resolve(r)?;
        self.inherit(&r.kind, &mut attrs, parent);
        let resource = describe(&r.kind, &attrs);
        let problem = |p: AttrProblem| match p {
            AttrProblem::Missing(attr) => ResourceError::MissingAttr {
                service: self.id.clone(),
                resource: resource.clone(),
                attr,
            },
            AttrProblem::Bad {
                attr,
                value,
                reason,
            } => ResourceError::BadAttr {
                service: self.id.clone(),
                resource: resource.clone(),
                attr: attr.to_string(),
                value,
                reason,
            },
        };
        let mut actions = Actions::defaults(&r.kind);
        for o in overrides {
            actions
                .apply_override(&o.attrs)
                .map_err(|b| ResourceError::BadAttr {
                    service: self.id.clone(),
                    resource: resource.clone(),
                    attr: format!("<action> {}", b.attr),
                    value: b.value,
                    reason: b.reason.to_string(),
                })?;
        }
        let enforce_timeouts = flag(&attrs, "__enforce_timeouts", false).map_err(problem)?;
        let agent = self
            .agent(&r.kind, &attrs, &resource)
            .map_err(|e| match e {
                Found::Problem(p) => problem(p),
                Found::Error(e) => e,
            })?;
        let primary = instance_primary(&r.kind, &attrs, self.out.len());
        self.out.push(CompiledResource {
            kind: r.kind.clone(),
            name: format!("{}:{primary}", r.kind),
            attrs,
            parent,
            actions,
            enforce_timeouts,
            refcnt,
            agent,
        });
        Ok(self.out.len() - 1)
    }

    /// The attributes and `<action>` overrides a resource stands for, and its reference count.
    fn resolve(&self, r: &'a Resource) -> Result<Resolved<'a>, ResourceError> {
        let own_actions = r.children.iter().filter(|c| c.kind == "action");
        let Some(reference) = r.reference() else {
            return Ok(Resolved {
                attrs: r.attrs.clone(),
                overrides: own_actions.collect(),
                refcnt: 1,
            });
        };
        let Some(global) = self.rm.resource(&r.kind, reference) else {
            return Err(ResourceError::UnknownRef {
                service: self.id.clone(),
                kind: r.kind.clone(),
                reference: reference.to_string(),
                primary_attr: r.primary_attr(),
            });
        };
        let mut attrs = global.attrs.clone();
        for (k, v) in &r.attrs {
            if k == "ref" {
                continue;
            }
            if !k.starts_with("__") {
                warn!(service = %self.id, resource = %describe(&r.kind, &global.attrs), attr = %k,
                    "attribute on a ref= element ignored; set it on the resource in <resources>");
                continue;
            }
            match attrs.iter_mut().find(|(gk, _)| gk == k) {
                Some(slot) => slot.1.clone_from(v),
                None => attrs.push((k.clone(), v.clone())),
            }
        }
        let actions = global
            .children
            .iter()
            .filter(|c| c.kind == "action")
            .chain(own_actions)
            .collect();
        Ok(Resolved {
            attrs,
            overrides: actions,
            refcnt: count_refs(self.rm, &r.kind, reference).max(1),
        })
    }

    fn inherit(&self, kind: &str, attrs: &mut Vec<(String, String)>, parent: Option<usize>) {
        for (for_kind, name, source) in INHERITED {
            if (*for_kind != "*" && *for_kind != kind) || attr(attrs, name).is_some() {
                continue;
            }
            let value = match source.strip_prefix("service%") {
                Some("name") => Some(self.service.name.clone()),
                Some("nfslock") => self.service.nfslock.then(|| "1".to_string()),
                Some("nfs_client_cache") => self.service.nfs_client_cache.then(|| "1".to_string()),
                Some(_) => None,
                None => self.ancestor_attr(parent, source),
            };
            if let Some(v) = value {
                attrs.push((name.to_string(), v));
            }
        }
    }

    fn ancestor_attr(&self, mut at: Option<usize>, name: &str) -> Option<String> {
        while let Some(i) = at {
            if let Some(v) = self.out[i].attr(name) {
                return Some(v.to_string());
            }
            at = self.out[i].parent;
        }
        None
    }

    fn agent(
        &self,
        kind: &str,
        attrs: &[(String, String)],
        resource: &str,
    ) -> Result<AnyAgent, Found> {
        match kind {
            "script" => {
                let file = required(attrs, "file").map_err(Found::Problem)?;
                if !Path::new(file).is_absolute() {
                    return Err(Found::Problem(AttrProblem::Bad {
                        attr: "file",
                        value: file.to_string(),
                        reason: "not an absolute path".to_string(),
                    }));
                }
                Ok(AnyAgent::Script(ProgramAgent::script(Path::new(file))))
            }
            "ip" => IpAgent::from_attrs(attrs)
                .map(AnyAgent::Ip)
                .map_err(Found::Problem),
            "fs" => FsAgent::from_attrs(attrs, self.agents.kill_grace)
                .map(AnyAgent::Fs)
                .map_err(Found::Problem),
            _ => match self.agents.find_agent(kind) {
                Some(path) => Ok(AnyAgent::External(ProgramAgent::external(&path))),
                None => Err(Found::Error(ResourceError::NoAgent {
                    service: self.id.clone(),
                    resource: resource.to_string(),
                    kind: kind.to_string(),
                    searched: self.agents.dirs.clone(),
                })),
            },
        }
    }
}

/// What a resource element stands for once `ref=` is followed.
struct Resolved<'a> {
    attrs: Vec<(String, String)>,
    overrides: Vec<&'a Resource>,
    refcnt: usize,
}

enum Found {
    Problem(AttrProblem),
    Error(ResourceError),
}

/// The primary value naming an instance: the primary attribute, else what identifies the
/// resource best (a script's file, an fs's mountpoint), else its position.
fn instance_primary(kind: &str, attrs: &[(String, String)], index: usize) -> String {
    let (key, fallback) = identity_attrs(kind);
    attr(attrs, key)
        .or_else(|| attr(attrs, fallback))
        .filter(|v| !v.is_empty())
        .map_or_else(|| format!("#{}", index + 1), str::to_string)
}

/// How many elements under `<service>`s and `<vm>`s refer to the global `kind` `primary`.
fn count_refs(rm: &Rm, kind: &str, primary: &str) -> usize {
    fn walk(list: &[Resource], kind: &str, primary: &str) -> usize {
        list.iter()
            .map(|r| {
                usize::from(r.kind == kind && r.reference() == Some(primary))
                    + walk(&r.children, kind, primary)
            })
            .sum()
    }
    rm.services
        .iter()
        .map(|s| walk(&s.children, kind, primary))
        .chain(rm.vms.iter().map(|v| walk(&v.children, kind, primary)))
        .sum()
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
