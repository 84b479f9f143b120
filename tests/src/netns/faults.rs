//! Partitions on a live lab network: faults become drop sets (crate::nemesis), drop sets
//! become one nftables transaction per namespace (see nft.rs), and the rules in force are
//! read back from the kernel, so `blocked` tells the truth even to another process.

use super::{nft, ns_command, run, LabNet, NetError, NFT_TABLE};
use crate::nemesis::{Drops, NetFault};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

impl LabNet {
    /// Replaces every node's drop rules with `drops`: one `nft -f -` transaction per
    /// namespace (atomic per node; nodes change one after another, in id order).
    pub fn apply(&self, drops: &Drops) -> Result<(), NetError> {
        for id in drops.endpoints() {
            self.addr(id)?;
        }
        let addrs = |set: BTreeSet<u32>| -> Vec<Ipv4Addr> {
            set.into_iter()
                .filter_map(|id| self.addr(id).ok())
                .collect()
        };
        for n in &self.nodes {
            let script = nft::ruleset(&addrs(drops.incoming(n.id)), &addrs(drops.outgoing(n.id)));
            run(ns_command(&n.ns, "nft").args(["-f", "-"]), Some(&script))?;
        }
        Ok(())
    }

    /// Applies `fault` (replacing the current one) and returns its drop set.
    pub fn inject(&self, fault: &NetFault) -> Result<Drops, NetError> {
        let drops = fault.drops(&self.node_ids())?;
        self.apply(&drops)?;
        Ok(drops)
    }

    /// Node `id` neither sends to nor hears any other node.
    pub fn isolate(&self, id: u32) -> Result<(), NetError> {
        self.inject(&NetFault::Isolate(id)).map(drop)
    }

    /// The lower half of the node ids against the upper half.
    pub fn halves(&self) -> Result<(), NetError> {
        self.inject(&NetFault::Halves).map(drop)
    }

    /// B sees A and C; A and C do not see each other.
    pub fn bridge_topology(&self, a: u32, b: u32, c: u32) -> Result<(), NetError> {
        self.inject(&NetFault::Bridge { a, b, c }).map(drop)
    }

    /// `from`'s packets to `to` are dropped; `to`'s packets to `from` flow.
    pub fn oneway(&self, from: u32, to: u32) -> Result<(), NetError> {
        self.inject(&NetFault::OneWay { from, to }).map(drop)
    }

    /// Nodes in different groups do not see each other; unnamed nodes form one more group.
    pub fn partition(&self, groups: &[Vec<u32>]) -> Result<(), NetError> {
        self.inject(&NetFault::Partition(groups.to_vec())).map(drop)
    }

    /// The listed nodes (all when empty) and the lab host do not see each other.
    pub fn cut_host(&self, ids: &[u32]) -> Result<(), NetError> {
        self.inject(&NetFault::CutHost(ids.to_vec())).map(drop)
    }

    /// Removes every drop rule in every namespace.
    pub fn heal(&self) -> Result<(), NetError> {
        self.apply(&Drops::new())
    }

    /// The drops in force, read back from every namespace's `inet clusterlab` table.
    pub fn current_drops(&self) -> Result<Drops, NetError> {
        let mut drops = Drops::new();
        for n in &self.nodes {
            let listing = ns_command(&n.ns, "nft")
                .args(["-j", "list", "table", "inet", NFT_TABLE])
                .output()
                .map_err(|source| NetError::Spawn {
                    program: "nft".into(),
                    source,
                })?;
            if !listing.status.success() {
                continue; // no table: nothing dropped in this namespace
            }
            let text = String::from_utf8_lossy(&listing.stdout);
            let rules = nft::parse_listing(&text).map_err(|detail| NetError::Parse {
                what: format!("the nft rules of {}", n.ns),
                detail,
            })?;
            for (chain, addr) in rules {
                let peer = self.endpoint_of(addr).ok_or_else(|| NetError::Parse {
                    what: format!("the nft rules of {}", n.ns),
                    detail: format!("{addr} is not an address of this lab"),
                })?;
                match chain {
                    nft::Chain::Input => drops.drop_link(peer, n.id),
                    nft::Chain::Output => drops.drop_link(n.id, peer),
                }
            }
        }
        Ok(drops)
    }

    /// Whether `from`'s packets to `to` are dropped by the rules in force.
    pub fn blocked(&self, from: u32, to: u32) -> Result<bool, NetError> {
        Ok(self.current_drops()?.blocked(from, to))
    }
}
