//! Node names to addresses: a hosts-format file named by `CLUSTER_HOSTS` (the lab's), or
//! the system resolver.
//!
//! A hosts file has lines `ADDRESS NAME [ALIASES...]`; `#` starts a comment; names compare
//! case-insensitively; the first line naming a host wins, as in /etc/hosts. With a hosts
//! file, a name it does not list is unresolved (the system resolver is not asked), so a
//! lab never reaches outside its own addresses.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;

/// The environment variable naming the hosts file.
pub const HOSTS_ENV: &str = "CLUSTER_HOSTS";

/// The (address, names) entries of a hosts-format text; malformed lines are skipped.
pub fn parse_hosts(text: &str) -> Vec<(IpAddr, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let addr = words.next()?.parse::<IpAddr>().ok()?;
            let names: Vec<String> = words.map(str::to_string).collect();
            (!names.is_empty()).then_some((addr, names))
        })
        .collect()
}

/// The address of `name` in parsed hosts entries: the first line listing it.
pub fn lookup(entries: &[(IpAddr, Vec<String>)], name: &str) -> Option<IpAddr> {
    entries
        .iter()
        .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map(|(addr, _)| *addr)
}

/// Where names are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// Only this hosts-format file.
    HostsFile(PathBuf),
    /// The system resolver (getaddrinfo: /etc/hosts, DNS...).
    System,
}

impl Resolver {
    /// The hosts file of `CLUSTER_HOSTS` when set and non-empty, else the system resolver.
    pub fn from_env() -> Resolver {
        match std::env::var_os(HOSTS_ENV) {
            Some(p) if !p.is_empty() => Resolver::HostsFile(PathBuf::from(p)),
            _ => Resolver::System,
        }
    }

    /// Resolves every name it can; blocking (file read or DNS), so the daemon calls it at
    /// start and from a blocking task later. A name missing from the result is unresolved.
    /// An unreadable hosts file is an error (nothing resolves).
    pub fn resolve_all(&self, names: &[String]) -> io::Result<BTreeMap<String, IpAddr>> {
        let mut found = BTreeMap::new();
        match self {
            Resolver::HostsFile(path) => {
                let entries = parse_hosts(&std::fs::read_to_string(path)?);
                for name in names {
                    if let Some(addr) = lookup(&entries, name) {
                        found.insert(name.clone(), addr);
                    }
                }
            }
            Resolver::System => {
                for name in names {
                    if let Some(addr) = system_lookup(name) {
                        found.insert(name.clone(), addr);
                    }
                }
            }
        }
        Ok(found)
    }
}

/// getaddrinfo, preferring an IPv4 address (the membership socket is one address family).
fn system_lookup(name: &str) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = (name, 0u16)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "# lab\n127.0.0.1 n1 node1.lab  # first\n\nnot-an-address n9\n127.0.0.2\tN2\n::1 n3\n127.0.0.9 n1\n";

    #[test]
    fn hosts_lines_map_names_and_aliases_first_line_winning() {
        let e = parse_hosts(HOSTS);
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(lookup(&e, "n1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(lookup(&e, "NODE1.lab"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(lookup(&e, "n2"), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(lookup(&e, "n3"), Some("::1".parse().unwrap()));
        assert_eq!(lookup(&e, "n9"), None);
        assert_eq!(lookup(&e, "first"), None);
    }

    #[test]
    fn a_hosts_file_resolves_only_what_it_lists() {
        let path = std::env::temp_dir().join(format!("cmand-hosts-{}", std::process::id()));
        std::fs::write(&path, HOSTS).unwrap();
        let r = Resolver::HostsFile(path.clone());
        let got = r
            .resolve_all(&["n2".to_string(), "localhost".to_string()])
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["n2"], "127.0.0.2".parse::<IpAddr>().unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(r.resolve_all(&["n2".to_string()]).is_err());
    }
}
