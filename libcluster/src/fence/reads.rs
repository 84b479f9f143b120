//! The domain core's reads: what `fence_tool ls`, NODE_INFO and `IsFenced` answer, and
//! when the core next needs a tick.

use super::domain::Domain;
use crate::ipc::fence::{
    FenceDomainInfo, FenceHow, FenceNodeInfo, FenceRecord, FenceState, WaitState,
};
use crate::{Millis, NodeId};

impl Domain {
    /// When [`super::Input::Tick`] next has work to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        if let Some(r) = &self.round {
            return Some(r.resend_at);
        }
        let nudge = self.nudge_at.filter(|_| !self.victims.is_empty());
        let master = if self.master == Some(self.me) && self.quorate {
            self.master_state.deadline()
        } else {
            None
        };
        [nudge, master].into_iter().flatten().min()
    }

    /// The domain summary (`fence_tool ls`).
    pub fn domain_info(&self) -> FenceDomainInfo {
        let joined = self.is_member();
        let wait_state = if !joined {
            WaitState::None
        } else if !self.quorate {
            WaitState::Quorum
        } else if self.round.is_some() {
            WaitState::Messages
        } else if !self.victims.is_empty() {
            WaitState::Fencing
        } else {
            WaitState::None
        };
        FenceDomainInfo {
            joined,
            members: self.members.iter().map(|n| n.0).collect(),
            victims: self.victims.keys().map(|n| n.0).collect(),
            current_victim: self.master_state.current().map_or(0, |n| n.0),
            master: self.master.map_or(0, |n| n.0),
            wait_state,
        }
    }

    /// Every configured node (`fence_tool ls -n`), sorted by id.
    pub fn nodes(&self) -> Vec<FenceNodeInfo> {
        self.nodes
            .values()
            .map(|n| FenceNodeInfo {
                node: n.id.0,
                name: n.name.clone(),
                member: self.members.contains(&n.id),
                victim: self.victims.contains_key(&n.id),
                last: self.last.get(&n.id).cloned(),
            })
            .collect()
    }

    /// Pending victims and their incarnations, sorted.
    pub fn victims(&self) -> Vec<(NodeId, u64)> {
        self.victims.iter().map(|(n, i)| (*n, *i)).collect()
    }

    /// Whether this node is a domain member (joined, not yet out).
    pub fn joined(&self) -> bool {
        self.is_member()
    }

    /// The master of the last completed round.
    pub fn master(&self) -> Option<NodeId> {
        self.master
    }

    /// Has `node`, in cmand incarnation `incarnation`, been fenced since it failed?
    ///
    /// Fenced if a record covers that incarnation (or a newer one), or the node is a cmand
    /// member again with a newer incarnation (then the record says `how = Member`);
    /// Pending if it is a victim; Unknown otherwise.
    pub fn is_fenced(&self, node: NodeId, incarnation: u64) -> FenceState {
        if let Some(r) = self.last.get(&node) {
            if r.incarnation >= incarnation {
                return FenceState::Fenced(r.clone());
            }
        }
        if self.cluster.get(&node).is_some_and(|&i| i > incarnation) {
            return FenceState::Fenced(FenceRecord {
                node: node.0,
                incarnation,
                master: self.me.0,
                how: FenceHow::Member,
                method: None,
                device: None,
                time_unix_s: self.unix_s,
            });
        }
        if self.victims.contains_key(&node) {
            FenceState::Pending
        } else {
            FenceState::Unknown
        }
    }
}
