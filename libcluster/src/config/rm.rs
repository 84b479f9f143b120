//! `<rm>`: failover domains, resources, services and VMs (spec/rgmanager.md §2, §4, §6).

use super::defaults;
use super::diag::Origin;

/// `<rm>`: the resource group manager section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rm {
    /// Source positions.
    pub origin: Origin,
    /// `central_processing`: event scripts decide placement (not supported by our
    /// rgmanagerd; kept so the file round-trips).
    pub central_processing: bool,
    /// `status_poll_interval`, seconds (default 10).
    pub status_poll_interval: u32,
    /// `status_child_max`: concurrent status checks (0 = unlimited).
    pub status_child_max: u32,
    /// `statusmax`: concurrent clustat queries (default 5).
    pub statusmax: u32,
    /// `transition_throttling`, seconds (default 5).
    pub transition_throttling: u32,
    /// `disabled`: rgmanager refuses to run.
    pub disabled: bool,
    /// `<failoverdomains>`, in document order.
    pub failoverdomains: Vec<FailoverDomain>,
    /// `<resources>`: global resources that services reference with `ref=`.
    pub resources: Vec<Resource>,
    /// `<service>` elements, in document order.
    pub services: Vec<Service>,
    /// `<vm>` elements, in document order.
    pub vms: Vec<Vm>,
}

impl Default for Rm {
    fn default() -> Rm {
        Rm {
            origin: Origin::default(),
            central_processing: false,
            status_poll_interval: defaults::DEFAULT_STATUS_POLL_INTERVAL_S,
            status_child_max: 0,
            statusmax: defaults::DEFAULT_STATUSMAX,
            transition_throttling: defaults::DEFAULT_TRANSITION_THROTTLING_S,
            disabled: false,
            failoverdomains: Vec::new(),
            resources: Vec::new(),
            services: Vec::new(),
            vms: Vec::new(),
        }
    }
}

impl Rm {
    /// The failover domain called `name` (case-insensitive, as rgmanager matches).
    pub fn failoverdomain(&self, name: &str) -> Option<&FailoverDomain> {
        self.failoverdomains
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// The global resource of element `kind` whose primary attribute is `primary`.
    pub fn resource(&self, kind: &str, primary: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.kind == kind && r.primary() == Some(primary))
    }
}

/// `<failoverdomain name= ordered= restricted= nofailback=>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverDomain {
    /// Source positions.
    pub origin: Origin,
    /// `name`. Required, unique (case-insensitive).
    pub name: String,
    /// `ordered`: members are preferred by priority.
    pub ordered: bool,
    /// `restricted`: services run only on members.
    pub restricted: bool,
    /// `nofailback`: a service does not move back to a more preferred member.
    pub nofailback: bool,
    /// `<failoverdomainnode>` children, in document order.
    pub nodes: Vec<FailoverDomainNode>,
}

/// `<failoverdomainnode name= priority=>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailoverDomainNode {
    /// Source positions.
    pub origin: Origin,
    /// `name`: a `<clusternode name>`.
    pub name: String,
    /// `priority`: 1 (most preferred) ..= 100; only read in ordered domains.
    pub priority: Option<u32>,
}

/// A resource element: in `<resources>`, inside a `<service>` or nested in another resource.
/// The element name is the resource agent (`ip`, `fs`, `script`, `nfsexport`...); attributes
/// are the agent's parameters and are kept verbatim, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// Source positions.
    pub origin: Origin,
    /// The element name: the resource type.
    pub kind: String,
    /// All attributes, in document order.
    pub attrs: Vec<(String, String)>,
    /// Child resources (and `<action>` overrides), in document order.
    pub children: Vec<Resource>,
}

impl Resource {
    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        super::model::arg(&self.attrs, name)
    }

    /// The attribute that identifies this resource (`address` for `ip`, else `name`).
    pub fn primary_attr(&self) -> &'static str {
        if self.kind == "ip" {
            "address"
        } else {
            "name"
        }
    }

    /// The value of the primary attribute.
    pub fn primary(&self) -> Option<&str> {
        self.attr(self.primary_attr())
    }

    /// `ref`: the primary value of a global resource of the same type this one stands for.
    pub fn reference(&self) -> Option<&str> {
        self.attr("ref")
    }
}

/// `recovery=`: what rgmanager does when a service or VM fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Recovery {
    /// Restart on the same node (relocate when `max_restarts` is exceeded). Default.
    #[default]
    Restart,
    /// Move to another node.
    Relocate,
    /// Stop and disable.
    Disable,
    /// Restart; disable when `max_restarts` is exceeded.
    RestartDisable,
}

impl Recovery {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Recovery::Restart => "restart",
            Recovery::Relocate => "relocate",
            Recovery::Disable => "disable",
            Recovery::RestartDisable => "restart-disable",
        }
    }

    /// Parses a value (case-insensitive, as rgmanager compares).
    pub fn from_name(s: &str) -> Option<Recovery> {
        [
            Recovery::Restart,
            Recovery::Relocate,
            Recovery::Disable,
            Recovery::RestartDisable,
        ]
        .into_iter()
        .find(|r| r.as_str().eq_ignore_ascii_case(s))
    }
}

/// `depend_mode=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DependMode {
    /// Stop the dependant when the dependency stops (default).
    #[default]
    Hard,
    /// Keep the dependant running.
    Soft,
}

impl DependMode {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            DependMode::Hard => "hard",
            DependMode::Soft => "soft",
        }
    }

    /// Parses an attribute value.
    pub fn from_name(s: &str) -> Option<DependMode> {
        [DependMode::Hard, DependMode::Soft]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// The attributes `<service>` and `<vm>` share: placement and recovery policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `domain`: a failover domain name.
    pub domain: Option<String>,
    /// `autostart` (default on).
    pub autostart: bool,
    /// `exclusive`: run only on a node running nothing else.
    pub exclusive: bool,
    /// `recovery` (default restart).
    pub recovery: Recovery,
    /// `max_restarts`: local restarts allowed within `restart_expire_time_s` (0 = no limit).
    pub max_restarts: u32,
    /// `restart_expire_time` in seconds (time syntax like `1h30m` accepted; 0 = never).
    pub restart_expire_time_s: u64,
    /// `depend`: another service id (`service:x`) that must run first.
    pub depend: Option<String>,
    /// `depend_mode`.
    pub depend_mode: DependMode,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            domain: None,
            autostart: true,
            exclusive: false,
            recovery: Recovery::Restart,
            max_restarts: 0,
            restart_expire_time_s: 0,
            depend: None,
            depend_mode: DependMode::Hard,
        }
    }
}

/// `<service name= ...>`: a resource group started and stopped as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Source positions.
    pub origin: Origin,
    /// `name`. Required, unique; the service id is `service:NAME`.
    pub name: String,
    /// Placement and recovery.
    pub policy: Policy,
    /// `priority`: processing order in central mode (lower first).
    pub priority: u32,
    /// `nfslock`: NFS lock failover.
    pub nfslock: bool,
    /// `nfs_client_cache`.
    pub nfs_client_cache: bool,
    /// The resource tree, in document order (children start in type order, then in order).
    pub children: Vec<Resource>,
}

impl Service {
    /// The rgmanager id, `service:NAME`.
    pub fn id(&self) -> String {
        format!("service:{}", self.name)
    }
}

/// `<vm migrate=>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MigrateMode {
    /// Live migration (default).
    #[default]
    Live,
    /// Pause, copy, resume.
    Pause,
}

impl MigrateMode {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrateMode::Live => "live",
            MigrateMode::Pause => "pause",
        }
    }

    /// Parses an attribute value.
    pub fn from_name(s: &str) -> Option<MigrateMode> {
        [MigrateMode::Live, MigrateMode::Pause]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// `<vm hypervisor=>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hypervisor {
    /// Detect (default).
    #[default]
    Auto,
    /// Xen.
    Xen,
    /// QEMU/KVM.
    Qemu,
}

impl Hypervisor {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Hypervisor::Auto => "auto",
            Hypervisor::Xen => "xen",
            Hypervisor::Qemu => "qemu",
        }
    }

    /// Parses an attribute value.
    pub fn from_name(s: &str) -> Option<Hypervisor> {
        [Hypervisor::Auto, Hypervisor::Xen, Hypervisor::Qemu]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// `<vm name= ...>`: a virtual machine kept running on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vm {
    /// Source positions.
    pub origin: Origin,
    /// `name`: the domain name. Required, unique; the service id is `vm:NAME`.
    pub name: String,
    /// Placement and recovery.
    pub policy: Policy,
    /// `migrate` (default live).
    pub migrate: MigrateMode,
    /// `migrate_options`: extra arguments for the migrate command.
    pub migrate_options: Option<String>,
    /// `tunnelled`: tunnel migration through libvirt.
    pub tunnelled: bool,
    /// `migration_mapping`: cluster node name → migration host name, in order.
    pub migration_mapping: Vec<(String, String)>,
    /// `use_virsh`: `Some(true)` virsh, `Some(false)` xm, unset = decide automatically.
    pub use_virsh: Option<bool>,
    /// `xmlfile`: libvirt domain XML.
    pub xmlfile: Option<String>,
    /// `path`: `:`-separated directories searched for the VM definition.
    pub path: Option<String>,
    /// `snapshot`: directory for save/restore on stop/start.
    pub snapshot: Option<String>,
    /// `hypervisor` (default auto).
    pub hypervisor: Hypervisor,
    /// `hypervisor_uri` (unset = auto).
    pub hypervisor_uri: Option<String>,
    /// `migration_uri` (unset = auto; `%s` is the target).
    pub migration_uri: Option<String>,
    /// `status_program`: extra health check.
    pub status_program: Option<String>,
    /// `no_kill`: stop only shuts down, never destroys.
    pub no_kill: bool,
    /// Child resources (a VM with children cannot be live-migrated).
    pub children: Vec<Resource>,
}

impl Vm {
    /// The rgmanager id, `vm:NAME`.
    pub fn id(&self) -> String {
        format!("vm:{}", self.name)
    }

    /// The `path` directories, in search order.
    pub fn path_dirs(&self) -> Vec<&str> {
        self.path.as_deref().map_or_else(Vec::new, |p| {
            p.split(':').filter(|d| !d.is_empty()).collect()
        })
    }

    /// Whether rgmanager may live-migrate it: no child resources.
    pub fn migratory(&self) -> bool {
        self.children.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_names_round_trip_and_ignore_case() {
        for r in [
            Recovery::Restart,
            Recovery::Relocate,
            Recovery::Disable,
            Recovery::RestartDisable,
        ] {
            assert_eq!(Recovery::from_name(r.as_str()), Some(r));
        }
        assert_eq!(Recovery::from_name("Relocate"), Some(Recovery::Relocate));
        assert_eq!(Recovery::from_name("reboot"), None);
    }

    #[test]
    fn resource_primary_is_address_for_ip_and_name_otherwise() {
        let ip = Resource {
            kind: "ip".into(),
            attrs: vec![("address".into(), "10.0.0.5".into())],
            ..Resource::default()
        };
        assert_eq!(ip.primary(), Some("10.0.0.5"));
        let fs = Resource {
            kind: "fs".into(),
            attrs: vec![("name".into(), "data".into())],
            ..Resource::default()
        };
        assert_eq!(fs.primary(), Some("data"));
        let rm = Rm {
            resources: vec![ip, fs],
            ..Rm::default()
        };
        assert!(rm.resource("fs", "data").is_some());
        assert!(rm.resource("ip", "data").is_none());
    }

    #[test]
    fn vm_path_splits_on_colons_and_ids_carry_the_type() {
        let vm = Vm {
            name: "g1".into(),
            path: Some("/a::/b".into()),
            ..Vm::default()
        };
        assert_eq!(vm.path_dirs(), ["/a", "/b"]);
        assert_eq!(vm.id(), "vm:g1");
        assert!(vm.migratory());
        assert_eq!(
            Service {
                name: "www".into(),
                ..Service::default()
            }
            .id(),
            "service:www"
        );
    }
}
