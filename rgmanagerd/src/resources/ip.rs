//! The native `ip` agent: a floating address on the interface whose subnet holds it.
//!
//! Like rgmanager's ip.sh: start picks the interface that already has an address in a subnet
//! containing the new one (its prefix length is used unless the resource gives one), adds the
//! address with iproute2 and announces it with a gratuitous ARP when `arping` is installed;
//! stop removes it (an absent address is already stopped); status wants the address present
//! and, with `monitor_link` (default on), the interface up with carrier. Every depth runs
//! the same check.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use tracing::{debug, info};

use super::agent::{Agent, Invocation};
use super::error::AgentError;
use super::run::{find_program, run, system, Command};
use super::tree::{flag, required, AttrProblem};

/// The announcement is best-effort; it never holds a start longer than this.
const ARP_LIMIT: Duration = Duration::from_secs(10);

/// An `<ip address= monitor_link= prefer_interface=>` resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpAgent {
    address: IpAddr,
    prefix: Option<u8>,
    monitor_link: bool,
    prefer_interface: Option<String>,
}

impl IpAgent {
    /// Reads and checks the attributes.
    pub fn from_attrs(attrs: &[(String, String)]) -> Result<IpAgent, AttrProblem> {
        let text = required(attrs, "address")?;
        let (address, prefix) = parse_address(text).map_err(|reason| AttrProblem::Bad {
            attr: "address",
            value: text.to_string(),
            reason,
        })?;
        let prefer_interface = attrs
            .iter()
            .find(|(k, _)| k == "prefer_interface")
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty());
        Ok(IpAgent {
            address,
            prefix,
            monitor_link: flag(attrs, "monitor_link", true)?,
            prefer_interface,
        })
    }

    /// The address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    async fn links(&self, inv: &Invocation) -> Result<Vec<Link>, AgentError> {
        let cmd = Command::new(system("ip"), &["-j", "addr", "show"]);
        let done = run(
            &cmd,
            inv.limit,
            &inv.resource,
            inv.op.as_str(),
            inv.enforced,
        )
        .await?;
        if !done.success() {
            return Err(done.failure(&cmd));
        }
        parse_links(&done.stdout).map_err(|reason| AgentError::Exit {
            command: cmd.display(),
            status: "unreadable output".to_string(),
            output: reason,
        })
    }

    async fn ip(&self, inv: &Invocation, args: &[&str]) -> Result<(), AgentError> {
        let cmd = Command::new(system("ip"), args);
        let done = run(
            &cmd,
            inv.limit,
            &inv.resource,
            inv.op.as_str(),
            inv.enforced,
        )
        .await?;
        if done.success() {
            Ok(())
        } else {
            Err(done.failure(&cmd))
        }
    }

    /// A gratuitous ARP so switches and peers learn the new owner; failures are only logged.
    async fn announce(&self, ifname: &str, inv: &Invocation) {
        let IpAddr::V4(v4) = self.address else {
            // The kernel's unsolicited neighbour advertisement (ndisc_notify) is the IPv6
            // equivalent; we send nothing ourselves.
            debug!(address = %self.address, "no gratuitous announcement for IPv6");
            return;
        };
        let Some(arping) = find_program("arping") else {
            debug!(address = %v4, "arping is not installed; no gratuitous ARP");
            return;
        };
        let addr = v4.to_string();
        let cmd = Command::new(arping, &["-q", "-c", "2", "-U", "-I", ifname, &addr]);
        match run(
            &cmd,
            inv.limit.min(ARP_LIMIT),
            &inv.resource,
            "start",
            false,
        )
        .await
        {
            Ok(done) if done.success() => debug!(address = %v4, ifname, "gratuitous ARP sent"),
            Ok(done) => debug!(address = %v4, error = %done.failure(&cmd), "gratuitous ARP failed"),
            Err(e) => debug!(address = %v4, error = %e, "gratuitous ARP failed"),
        }
    }
}

impl Agent for IpAgent {
    async fn start(&self, inv: &Invocation) -> Result<(), AgentError> {
        let links = self.links(inv).await?;
        if let Some((link, _)) = holder(&links, self.address) {
            info!(address = %self.address, ifname = %link.ifname, "address already configured");
            return Ok(());
        }
        let Some((link, subnet_prefix)) =
            choose_interface(&links, self.address, self.prefer_interface.as_deref())
        else {
            return Err(AgentError::Refused {
                reason: format!(
                    "no interface has an address in a subnet containing {}",
                    self.address
                ),
            });
        };
        if self.monitor_link && !carrier(link) {
            return Err(AgentError::Refused {
                reason: format!("interface {} has no link (monitor_link is on)", link.ifname),
            });
        }
        let prefix = self.prefix.unwrap_or(subnet_prefix);
        let with_prefix = format!("{}/{prefix}", self.address);
        let mut args = vec!["addr", "add", &with_prefix, "dev", &link.ifname];
        if self.address.is_ipv4() && prefix <= 30 {
            args.extend(["brd", "+"]);
        }
        self.ip(inv, &args).await?;
        info!(address = %with_prefix, ifname = %link.ifname, "address added");
        self.announce(&link.ifname, inv).await;
        Ok(())
    }

    async fn stop(&self, inv: &Invocation) -> Result<(), AgentError> {
        let links = self.links(inv).await?;
        let Some((link, prefix)) = holder(&links, self.address) else {
            debug!(address = %self.address, "address not configured; nothing to stop");
            return Ok(());
        };
        let with_prefix = format!("{}/{prefix}", self.address);
        self.ip(inv, &["addr", "del", &with_prefix, "dev", &link.ifname])
            .await?;
        info!(address = %with_prefix, ifname = %link.ifname, "address removed");
        Ok(())
    }

    async fn status(&self, _depth: u32, inv: &Invocation) -> Result<(), AgentError> {
        let links = self.links(inv).await?;
        let Some((link, _)) = holder(&links, self.address) else {
            return Err(AgentError::Down {
                reason: format!("{} is not configured on any interface", self.address),
            });
        };
        if self.monitor_link && !carrier(link) {
            return Err(AgentError::Down {
                reason: format!("{} has no link on {}", self.address, link.ifname),
            });
        }
        Ok(())
    }
}

/// `10.0.0.5`, `10.0.0.5/24`, `fd00::5/64`.
fn parse_address(text: &str) -> Result<(IpAddr, Option<u8>), String> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let address: IpAddr = addr
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_string())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => None,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => Some(n),
            _ => return Err(format!("the prefix length must be 0..={max}")),
        },
    };
    if address.is_unspecified() || address.is_multicast() {
        return Err("not a unicast address".to_string());
    }
    Ok((address, prefix))
}

/// One interface of `ip -j addr show`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct Link {
    #[serde(default)]
    pub ifname: String,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub addr_info: Vec<AddrInfo>,
}

/// One address of an interface.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct AddrInfo {
    #[serde(default)]
    pub local: Option<String>,
    #[serde(default)]
    pub prefixlen: Option<u8>,
}

impl Link {
    fn addresses(&self) -> impl Iterator<Item = (IpAddr, u8)> + '_ {
        self.addr_info.iter().filter_map(|a| {
            let ip: IpAddr = a.local.as_deref()?.parse().ok()?;
            Some((ip, a.prefixlen?))
        })
    }
}

/// Parses `ip -j addr show`; entries without a name (old iproute2 prints `{}`) are dropped.
pub(crate) fn parse_links(json: &str) -> Result<Vec<Link>, String> {
    let links: Vec<Link> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(links.into_iter().filter(|l| !l.ifname.is_empty()).collect())
}

/// The interface holding `addr`, with the prefix it was added with.
pub(crate) fn holder(links: &[Link], addr: IpAddr) -> Option<(&Link, u8)> {
    links.iter().find_map(|l| {
        l.addresses()
            .find(|(a, _)| *a == addr)
            .map(|(_, prefix)| (l, prefix))
    })
}

/// The interface to add `addr` to: one with an address whose subnet contains it (the
/// preferred interface among several), with that address's prefix length.
pub(crate) fn choose_interface<'l>(
    links: &'l [Link],
    addr: IpAddr,
    prefer: Option<&str>,
) -> Option<(&'l Link, u8)> {
    let mut candidates = links.iter().filter_map(|l| {
        l.addresses()
            .find(|(a, prefix)| *a != addr && same_subnet(*a, addr, *prefix))
            .map(|(_, prefix)| (l, prefix))
    });
    let first = candidates.next()?;
    match prefer {
        Some(name) if first.0.ifname != name => {
            Some(candidates.find(|(l, _)| l.ifname == name).unwrap_or(first))
        }
        _ => Some(first),
    }
}

/// Whether `a` and `b` share their first `prefix` bits (and family).
pub(crate) fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    let (x, y, bits) = match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => (
            u128::from(u32::from(x)) << 96,
            u128::from(u32::from(y)) << 96,
            32,
        ),
        (IpAddr::V6(x), IpAddr::V6(y)) => (u128::from(x), u128::from(y), 128),
        _ => return false,
    };
    let prefix = u32::from(prefix.min(bits));
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    x & mask == y & mask
}

/// Administratively up and with carrier (`LOWER_UP`), as `ip link` reports.
pub(crate) fn carrier(link: &Link) -> bool {
    let has = |f: &str| link.flags.iter().any(|x| x == f);
    has("UP") && has("LOWER_UP") && !has("NO-CARRIER")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],
       "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},{"family":"inet6","local":"::1","prefixlen":128}]},
      {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],
       "addr_info":[{"family":"inet","local":"10.250.200.1","prefixlen":24},
                    {"family":"inet6","local":"fd00:250::1","prefixlen":64},
                    {"family":"inet6","local":"fe80::1","prefixlen":64}]},
      {"ifindex":3,"ifname":"eth1","flags":["NO-CARRIER","BROADCAST","UP"],
       "addr_info":[{"family":"inet","local":"10.250.200.2","prefixlen":24},
                    {"family":"inet","local":"10.250.201.9","prefixlen":24}]},
      {}
    ]"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn attrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn addresses_parse_with_and_without_prefix() {
        assert_eq!(
            parse_address("10.250.200.10"),
            Ok((ip("10.250.200.10"), None))
        );
        assert_eq!(
            parse_address("10.250.200.10/24"),
            Ok((ip("10.250.200.10"), Some(24)))
        );
        assert_eq!(parse_address(" fd00::5/64 "), Ok((ip("fd00::5"), Some(64))));
        for bad in [
            "10.0.0.300",
            "10.0.0.1/33",
            "fd00::1/129",
            "x",
            "10.0.0.1/",
            "0.0.0.0",
            "224.0.0.1",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
        let e = IpAgent::from_attrs(&attrs(&[
            ("address", "10.0.0.1"),
            ("monitor_link", "maybe"),
        ]))
        .unwrap_err();
        assert!(matches!(
            e,
            AttrProblem::Bad {
                attr: "monitor_link",
                ..
            }
        ));
        assert_eq!(
            IpAgent::from_attrs(&attrs(&[])),
            Err(AttrProblem::Missing("address"))
        );
        let a =
            IpAgent::from_attrs(&attrs(&[("address", "10.0.0.1"), ("monitor_link", "0")])).unwrap();
        assert!(!a.monitor_link);
    }

    #[test]
    fn the_interface_is_the_one_whose_subnet_holds_the_address() {
        let links = parse_links(SAMPLE).unwrap();
        assert_eq!(links.len(), 3, "the empty entry is dropped");
        let (l, p) = choose_interface(&links, ip("10.250.200.10"), None).unwrap();
        assert_eq!((l.ifname.as_str(), p), ("eth0", 24));
        let (l, _) = choose_interface(&links, ip("10.250.200.10"), Some("eth1")).unwrap();
        assert_eq!(l.ifname, "eth1", "preferred among candidates");
        let (l, _) = choose_interface(&links, ip("10.250.200.10"), Some("lo")).unwrap();
        assert_eq!(
            l.ifname, "eth0",
            "a preference outside the subnet is ignored"
        );
        assert_eq!(
            choose_interface(&links, ip("10.250.201.3"), None)
                .unwrap()
                .0
                .ifname,
            "eth1"
        );
        assert!(choose_interface(&links, ip("10.9.9.9"), None).is_none());
        let (l, p) = choose_interface(&links, ip("fd00:250::77"), None).unwrap();
        assert_eq!((l.ifname.as_str(), p), ("eth0", 64));
    }

    #[test]
    fn holders_and_carrier_come_from_the_listing() {
        let links = parse_links(SAMPLE).unwrap();
        let (l, p) = holder(&links, ip("10.250.201.9")).unwrap();
        assert_eq!((l.ifname.as_str(), p), ("eth1", 24));
        assert!(!carrier(l));
        assert!(carrier(holder(&links, ip("10.250.200.1")).unwrap().0));
        assert!(holder(&links, ip("10.250.200.10")).is_none());
    }

    #[test]
    fn subnets_compare_leading_bits_of_one_family() {
        assert!(same_subnet(ip("10.1.2.3"), ip("10.1.200.1"), 16));
        assert!(!same_subnet(ip("10.1.2.3"), ip("10.2.0.1"), 16));
        assert!(same_subnet(ip("10.1.2.3"), ip("192.168.0.1"), 0));
        assert!(!same_subnet(ip("10.1.2.3"), ip("10.1.2.4"), 32));
        assert!(!same_subnet(ip("10.1.2.3"), ip("::a01:203"), 0));
        assert!(same_subnet(ip("fd00::1"), ip("fd00::ffff"), 64));
        assert!(
            same_subnet(ip("fd00::1"), ip("fd00::1"), 200),
            "prefix clamped"
        );
    }

    proptest! {
        #[test]
        fn listing_and_address_parsers_never_panic(text in ".{0,200}") {
            let _ = parse_links(&text);
            let _ = parse_address(&text);
        }

        #[test]
        fn same_subnet_is_reflexive(a in any::<u32>(), p in 0u8..=40) {
            let a = IpAddr::from(a.to_be_bytes());
            prop_assert!(same_subnet(a, a, p));
        }
    }
}
