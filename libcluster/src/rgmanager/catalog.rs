//! The configured services, compiled for placement: domains resolved to indexes,
//! dependencies resolved to services, names looked up once.

use super::domain::Domain;
use crate::config::{ClusterConf, Policy, Recovery};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A service's index in its [`Catalog`] (configuration order: `<service>`s, then `<vm>`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceIndex(pub u32);

impl fmt::Display for ServiceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One service or VM as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceDef {
    /// The rgmanager id: `service:NAME` or `vm:NAME`.
    pub name: String,
    /// `domain` (matched case-insensitively; an unknown name means no domain, spec #66).
    pub domain: Option<String>,
    /// `autostart`.
    pub autostart: bool,
    /// `exclusive`.
    pub exclusive: bool,
    /// `recovery`.
    pub recovery: Recovery,
    /// `max_restarts`.
    pub max_restarts: u32,
    /// `restart_expire_time`, in ms.
    pub restart_expire_ms: u64,
    /// `depend`: the id of a service that must be started first.
    pub depend: Option<String>,
    /// Whether it can be live-migrated (a `vm` without child resources).
    pub migratory: bool,
}

impl ServiceDef {
    /// A definition with the defaults of spec §6.2: no domain, autostart, not exclusive,
    /// recovery restart without a limit, no dependency, not migratory.
    pub fn new(name: &str) -> ServiceDef {
        ServiceDef::from_policy(name, &Policy::default(), false)
    }

    /// A definition from the configuration's placement attributes.
    pub fn from_policy(name: &str, p: &Policy, migratory: bool) -> ServiceDef {
        ServiceDef {
            name: name.to_string(),
            domain: p.domain.clone(),
            autostart: p.autostart,
            exclusive: p.exclusive,
            recovery: p.recovery,
            max_restarts: p.max_restarts,
            restart_expire_ms: p.restart_expire_time_s.saturating_mul(1000),
            depend: p.depend.clone(),
            migratory,
        }
    }
}

/// A service's dependency, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// None configured.
    None,
    /// On this service.
    On(ServiceIndex),
    /// On a name that is not a configured service: never met, so never auto-started.
    Unknown(String),
}

/// Every service with its domain and dependency resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    domains: Vec<Domain>,
    services: Vec<ServiceDef>,
    domain_of: Vec<Option<usize>>,
    depend_of: Vec<Dependency>,
    dependants: Vec<Vec<ServiceIndex>>,
    by_name: BTreeMap<String, ServiceIndex>,
}

impl Catalog {
    /// A catalog of `services` placed by `domains`. A service whose name repeats an earlier
    /// one is left out (the configuration validator reports it).
    pub fn new(domains: Vec<Domain>, services: Vec<ServiceDef>) -> Catalog {
        let mut by_name = BTreeMap::new();
        let mut kept = Vec::with_capacity(services.len());
        for s in services {
            if by_name.contains_key(&s.name) {
                continue;
            }
            by_name.insert(s.name.clone(), ServiceIndex(kept.len() as u32));
            kept.push(s);
        }
        let domain_of = kept
            .iter()
            .map(|s| {
                let name = s.domain.as_deref()?;
                domains
                    .iter()
                    .position(|d| d.name.eq_ignore_ascii_case(name))
            })
            .collect();
        let mut dependants = vec![Vec::new(); kept.len()];
        let depend_of = kept
            .iter()
            .enumerate()
            .map(|(i, s)| match &s.depend {
                None => Dependency::None,
                Some(d) => match by_name.get(d) {
                    Some(&dep) => {
                        dependants[dep.0 as usize].push(ServiceIndex(i as u32));
                        Dependency::On(dep)
                    }
                    None => Dependency::Unknown(d.clone()),
                },
            })
            .collect();
        Catalog {
            domains,
            services: kept,
            domain_of,
            depend_of,
            dependants,
            by_name,
        }
    }

    /// The catalog of a configuration: `<service>`s then `<vm>`s, in document order.
    pub fn from_config(conf: &ClusterConf) -> Catalog {
        let domains = conf
            .rm
            .failoverdomains
            .iter()
            .map(|d| Domain::from_config(d, &conf.clusternodes))
            .collect();
        let services = conf
            .rm
            .services
            .iter()
            .map(|s| ServiceDef::from_policy(&s.id(), &s.policy, false))
            .chain(
                conf.rm
                    .vms
                    .iter()
                    .map(|v| ServiceDef::from_policy(&v.id(), &v.policy, v.migratory())),
            )
            .collect();
        Catalog::new(domains, services)
    }

    /// Identifies what service indexes mean: their names, in order (FNV-1a). Nodes whose
    /// fingerprints differ must not exchange indexes.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for s in &self.services {
            for b in s.name.bytes().chain([0]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }

    /// How many services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Every service index, in order.
    pub fn indexes(&self) -> impl Iterator<Item = ServiceIndex> {
        (0..self.services.len() as u32).map(ServiceIndex)
    }

    /// The service called `name` (`vm:x`, `service:x`; exact).
    pub fn lookup(&self, name: &str) -> Option<ServiceIndex> {
        self.by_name.get(name).copied()
    }

    /// The definition of `s`. Panics on an index from another catalog (a caller bug).
    pub fn service(&self, s: ServiceIndex) -> &ServiceDef {
        &self.services[s.0 as usize]
    }

    /// Whether `s` belongs to this catalog.
    pub fn contains(&self, s: ServiceIndex) -> bool {
        (s.0 as usize) < self.services.len()
    }

    /// The domains.
    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// The index of `s`'s domain, if it names a known one.
    pub fn domain_of(&self, s: ServiceIndex) -> Option<usize> {
        self.domain_of[s.0 as usize]
    }

    /// `s`'s dependency.
    pub fn dependency(&self, s: ServiceIndex) -> &Dependency {
        &self.depend_of[s.0 as usize]
    }

    /// The services that depend on `s`.
    pub fn dependants(&self, s: ServiceIndex) -> &[ServiceIndex] {
        &self.dependants[s.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    #[test]
    fn names_domains_and_dependencies_resolve_and_duplicates_are_dropped() {
        let d = Domain::new("Web", true, false, false, &[(NodeId(1), Some(1))]);
        let mut a = ServiceDef::new("vm:a");
        a.domain = Some("web".into());
        let mut b = ServiceDef::new("vm:b");
        b.depend = Some("vm:a".into());
        b.domain = Some("nowhere".into());
        let mut c = ServiceDef::new("vm:c");
        c.depend = Some("vm:zz".into());
        let dup = ServiceDef::new("vm:a");
        let cat = Catalog::new(vec![d], vec![a, b, c, dup]);
        assert_eq!(cat.len(), 3);
        let (a, b, c) = (ServiceIndex(0), ServiceIndex(1), ServiceIndex(2));
        assert_eq!(cat.lookup("vm:b"), Some(b));
        assert_eq!(cat.domain_of(a), Some(0));
        assert_eq!(cat.domain_of(b), None, "unknown domain = no domain");
        assert_eq!(cat.dependency(b), &Dependency::On(a));
        assert_eq!(cat.dependants(a), &[b]);
        assert_eq!(cat.dependency(c), &Dependency::Unknown("vm:zz".into()));
    }
}
