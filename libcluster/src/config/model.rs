//! The typed model of `cluster.conf`: `<cluster>`, `<cman>`, `<totem>`, `<fence_daemon>`,
//! `<fence_xvmd>`, `<clusternodes>` and `<fencedevices>`. The quorum disk is in
//! [`quorumd`](super::quorumd), the resource manager in [`rm`](super::rm).
//!
//! Fields hold what the file says. A field is an `Option` when "not set" matters because
//! the default depends on other values; the accessor of the same name gives the effective
//! value. Fields with a fixed default hold that default when the attribute is absent.

use std::net::IpAddr;

use super::defaults::{self, DEFAULT_TOKEN_MS};
use super::diag::Origin;
use super::quorumd::Quorumd;
use super::rm::Rm;
use crate::NodeId;

/// The whole file: `<cluster>` and everything in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterConf {
    /// Source positions (ignored by equality).
    pub origin: Origin,
    /// `name`: the cluster name, at most 15 bytes. Required.
    pub name: String,
    /// `alias`: a display name (Conga); not used by the daemons.
    pub alias: Option<String>,
    /// `config_version`: must increase with every update. Required.
    pub config_version: u32,
    /// `<cman>`.
    pub cman: Cman,
    /// `<totem>`.
    pub totem: Totem,
    /// `<quorumd>`, if a quorum disk is configured.
    pub quorumd: Option<Quorumd>,
    /// `<fence_daemon>`.
    pub fence_daemon: FenceDaemon,
    /// `<fence_xvmd>`, settings of the host-side VM fencing daemon.
    pub fence_xvmd: Option<FenceXvmd>,
    /// `<clusternodes>`, in document order.
    pub clusternodes: Vec<ClusterNode>,
    /// `<fencedevices>`, in document order.
    pub fencedevices: Vec<FenceDevice>,
    /// `<rm>`, the resource manager section.
    pub rm: Rm,
}

impl ClusterConf {
    /// The node called `name` (host names compare case-insensitively).
    pub fn node(&self, name: &str) -> Option<&ClusterNode> {
        self.clusternodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// The node with id `id`.
    pub fn node_by_id(&self, id: NodeId) -> Option<&ClusterNode> {
        self.clusternodes.iter().find(|n| n.nodeid == id)
    }

    /// The fence device called `name` (exact match, as fenced looks it up).
    pub fn fencedevice(&self, name: &str) -> Option<&FenceDevice> {
        self.fencedevices.iter().find(|d| d.name == name)
    }

    /// Sum of the votes of every configured node.
    pub fn node_votes(&self) -> u32 {
        self.clusternodes
            .iter()
            .map(|n| n.votes)
            .fold(0, u32::saturating_add)
    }

    /// Effective expected votes: `<cman expected_votes>` if set, else the sum of node votes.
    /// Quorum disk votes are not added (the admin includes them, as in the original).
    pub fn expected_votes(&self) -> u32 {
        self.cman
            .expected_votes
            .unwrap_or_else(|| self.node_votes())
    }

    /// Whether the two-node special case is on.
    pub fn two_node(&self) -> bool {
        self.cman.two_node
    }

    /// Effective totem token timeout, ms ([`DEFAULT_TOKEN_MS`] when unset).
    pub fn token_ms(&self) -> u32 {
        self.totem.token.unwrap_or(DEFAULT_TOKEN_MS)
    }

    /// Effective totem consensus timeout, ms (see [`defaults::default_consensus_ms`]).
    pub fn consensus_ms(&self) -> u32 {
        let token = self.token_ms();
        self.totem
            .consensus
            .unwrap_or_else(|| defaults::default_consensus_ms(token, self.clusternodes.len()))
    }

    /// Effective quorum device poll timeout, ms: `<cman quorum_dev_poll>` or the token.
    pub fn quorum_dev_poll_ms(&self) -> u32 {
        self.cman.quorum_dev_poll.unwrap_or_else(|| self.token_ms())
    }

    /// Effective 16-bit cluster id: `<cman cluster_id>` or derived from the name.
    pub fn cluster_id(&self) -> u16 {
        self.cman.cluster_id.unwrap_or_else(|| {
            defaults::cluster_id_from_name(&self.name, self.cman.hash_cluster_id)
        })
    }

    /// Effective multicast group: `<cman><multicast addr>` or derived from the cluster id.
    pub fn multicast_addr(&self) -> IpAddr {
        let set = self.cman.multicast.as_ref().and_then(|m| m.addr);
        set.unwrap_or_else(|| defaults::default_multicast_addr(self.cluster_id()))
    }

    /// Effective quorum disk votes, if a quorum disk is configured: `<quorumd votes>`, else
    /// the number of nodes minus one (qdiskd requires every node to have 1 vote then).
    pub fn qdisk_votes(&self) -> Option<u32> {
        let q = self.quorumd.as_ref()?;
        let nodes = u32::try_from(self.clusternodes.len()).unwrap_or(u32::MAX);
        Some(q.votes.unwrap_or(nodes.saturating_sub(1)))
    }
}

/// `<cman>`: membership and quorum settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cman {
    /// Source positions.
    pub origin: Origin,
    /// `two_node`: quorum is 1 while at most two nodes are members.
    pub two_node: bool,
    /// `expected_votes`; see [`ClusterConf::expected_votes`].
    pub expected_votes: Option<u32>,
    /// `port`: UDP port (default 5405).
    pub port: u16,
    /// `cluster_id`; see [`ClusterConf::cluster_id`].
    pub cluster_id: Option<u16>,
    /// `hash_cluster_id`: derive the id with FNV-1a instead of sum-and-shift.
    pub hash_cluster_id: bool,
    /// `keyfile`: the cluster authentication key (default `/etc/cluster/cman_authkey`).
    pub keyfile: String,
    /// `transport`; see [`Cman::effective_transport`].
    pub transport: Option<Transport>,
    /// `broadcast`: `yes` means transport `udpb`.
    pub broadcast: bool,
    /// `quorum_dev_poll`, ms; see [`ClusterConf::quorum_dev_poll_ms`].
    pub quorum_dev_poll: Option<u32>,
    /// `shutdown_timeout`, ms (default 5000).
    pub shutdown_timeout: u32,
    /// `ccsd_poll`, ms (default 1000).
    pub ccsd_poll: u32,
    /// `disallowed`: refuse stateful rejoins (RHEL 6 default off).
    pub disallowed: bool,
    /// `upgrading`: RHEL 5 compatibility mode.
    pub upgrading: bool,
    /// `max_queued`: outstanding message limit (default 128).
    pub max_queued: u32,
    /// `startup_config_timeout`, seconds (default 0 = wait forever).
    pub startup_config_timeout: u32,
    /// Our extension: a unix group whose members may change cluster state over the local
    /// IPC sockets, besides root. Unset: root only.
    pub admin_group: Option<String>,
    /// `<multicast>` child.
    pub multicast: Option<Multicast>,
    /// `<altmulticast>` child (second ring).
    pub altmulticast: Option<Multicast>,
}

impl Default for Cman {
    fn default() -> Cman {
        Cman {
            origin: Origin::default(),
            two_node: false,
            expected_votes: None,
            port: defaults::DEFAULT_PORT,
            cluster_id: None,
            hash_cluster_id: false,
            keyfile: defaults::DEFAULT_KEYFILE.to_string(),
            transport: None,
            broadcast: false,
            quorum_dev_poll: None,
            shutdown_timeout: defaults::DEFAULT_SHUTDOWN_TIMEOUT_MS,
            ccsd_poll: defaults::DEFAULT_CCSD_POLL_MS,
            disallowed: false,
            upgrading: false,
            max_queued: defaults::DEFAULT_MAX_QUEUED,
            startup_config_timeout: 0,
            admin_group: None,
            multicast: None,
            altmulticast: None,
        }
    }
}

impl Cman {
    /// Effective transport: `transport` if set, else `udpb` with `broadcast="yes"`, else `udp`.
    pub fn effective_transport(&self) -> Transport {
        match (self.transport, self.broadcast) {
            (Some(t), _) => t,
            (None, true) => Transport::Udpb,
            (None, false) => Transport::Udp,
        }
    }
}

/// `<cman transport>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// Multicast UDP.
    Udp,
    /// Broadcast UDP.
    Udpb,
    /// Unicast UDP to every configured node.
    Udpu,
    /// RDMA (accepted for compatibility; our cmand does not implement it).
    Rdma,
}

impl Transport {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Udpb => "udpb",
            Transport::Udpu => "udpu",
            Transport::Rdma => "rdma",
        }
    }

    /// Parses an attribute value.
    pub fn from_name(s: &str) -> Option<Transport> {
        [
            Transport::Udp,
            Transport::Udpb,
            Transport::Udpu,
            Transport::Rdma,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// `<multicast addr= port= ttl=>` (also `<altmulticast>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Multicast {
    /// Source positions.
    pub origin: Origin,
    /// `addr`: the group address.
    pub addr: Option<IpAddr>,
    /// `port`.
    pub port: Option<u16>,
    /// `ttl` (default 1).
    pub ttl: Option<u8>,
}

/// `<totem>`: timing of the membership protocol. Unset values take the defaults of the
/// accessors (cman injected its own values; `token` is ours, see [`DEFAULT_TOKEN_MS`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totem {
    /// Source positions.
    pub origin: Origin,
    /// `token`, ms; see [`ClusterConf::token_ms`].
    pub token: Option<u32>,
    /// `join`, ms; see [`Totem::join_ms`].
    pub join: Option<u32>,
    /// `consensus`, ms; see [`ClusterConf::consensus_ms`].
    pub consensus: Option<u32>,
    /// `token_retransmits_before_loss_const`.
    pub token_retransmits_before_loss_const: Option<u32>,
    /// `fail_recv_const`.
    pub fail_recv_const: Option<u32>,
    /// `rrp_mode`: `none`, `active` or `passive`.
    pub rrp_mode: Option<String>,
    /// `rrp_problem_count_threshold`.
    pub rrp_problem_count_threshold: Option<u32>,
    /// `secauth`: our traffic is always authenticated; kept for compatibility.
    pub secauth: Option<bool>,
    /// `vsftype`.
    pub vsftype: Option<String>,
}

impl Totem {
    /// Effective `join`, ms (60).
    pub fn join_ms(&self) -> u32 {
        self.join.unwrap_or(defaults::DEFAULT_JOIN_MS)
    }

    /// Effective `fail_recv_const` (2500).
    pub fn fail_recv_const(&self) -> u32 {
        self.fail_recv_const
            .unwrap_or(defaults::DEFAULT_FAIL_RECV_CONST)
    }

    /// Effective `token_retransmits_before_loss_const` (20, as cman.5 documents).
    pub fn token_retransmits(&self) -> u32 {
        self.token_retransmits_before_loss_const
            .unwrap_or(defaults::DEFAULT_TOKEN_RETRANSMITS)
    }
}

/// `<fence_daemon>`: fenced's delays and override settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceDaemon {
    /// Source positions.
    pub origin: Origin,
    /// `post_join_delay`, seconds (6); −1 = wait forever.
    pub post_join_delay: i32,
    /// `post_fail_delay`, seconds (0); −1 = wait forever.
    pub post_fail_delay: i32,
    /// `clean_start`: no start-up fencing at all.
    pub clean_start: bool,
    /// `override_path`: the FIFO fence_ack_manual writes to.
    pub override_path: String,
    /// `override_time`, seconds (3; smaller values act as 3).
    pub override_time: u32,
}

impl Default for FenceDaemon {
    fn default() -> FenceDaemon {
        FenceDaemon {
            origin: Origin::default(),
            post_join_delay: defaults::DEFAULT_POST_JOIN_DELAY_S,
            post_fail_delay: 0,
            clean_start: false,
            override_path: defaults::DEFAULT_OVERRIDE_PATH.to_string(),
            override_time: defaults::DEFAULT_OVERRIDE_TIME_S,
        }
    }
}

/// `<fence_xvmd>`: options of the host daemon that fences VMs (unset = its own defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FenceXvmd {
    /// Source positions.
    pub origin: Origin,
    /// `debug` level.
    pub debug: Option<u32>,
    /// `family`: `auto`, `ipv4` or `ipv6`.
    pub family: Option<String>,
    /// `multicast_address`.
    pub multicast_address: Option<IpAddr>,
    /// `port` (1229).
    pub port: Option<u16>,
    /// `auth`: `none`, `sha1`, `sha256`, `sha512`.
    pub auth: Option<String>,
    /// `hash`: same values as `auth`.
    pub hash: Option<String>,
    /// `key_file` (`/etc/cluster/fence_xvm.key`).
    pub key_file: Option<String>,
    /// `use_uuid`: VMs are named by UUID.
    pub use_uuid: Option<bool>,
    /// `uri`: hypervisor URI.
    pub uri: Option<String>,
}

/// `<clusternode name= nodeid= votes=>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// Source positions.
    pub origin: Origin,
    /// `name`: the node's host name. Required, unique.
    pub name: String,
    /// `nodeid`: 1..=4096. Required, unique.
    pub nodeid: NodeId,
    /// `votes`: 0..=255 (default 1).
    pub votes: u32,
    /// `<altname>`: the node's name on the second ring.
    pub altname: Option<AltName>,
    /// `<fence><method>...`: tried in order until one succeeds.
    pub fence: Vec<FenceMethod>,
    /// `<unfence><device>...`: run in order when the node starts (all are tried).
    pub unfence: Vec<DeviceRef>,
}

impl Default for ClusterNode {
    fn default() -> ClusterNode {
        ClusterNode {
            origin: Origin::default(),
            name: String::new(),
            nodeid: NodeId(0),
            votes: defaults::DEFAULT_NODE_VOTES,
            altname: None,
            fence: Vec::new(),
            unfence: Vec::new(),
        }
    }
}

/// `<altname name= port= mcast=>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AltName {
    /// Source positions.
    pub origin: Origin,
    /// `name`: host name or address on the second ring.
    pub name: String,
    /// `port`.
    pub port: Option<u16>,
    /// `mcast`: multicast group of the second ring.
    pub mcast: Option<IpAddr>,
}

/// `<method name=>`: every device of a method must succeed for the method to succeed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FenceMethod {
    /// Source positions.
    pub origin: Origin,
    /// `name`: a label (fenced looks devices up by it, so it must be unique per node).
    pub name: String,
    /// The devices, run in order.
    pub devices: Vec<DeviceRef>,
}

/// `<device name= ...>` inside a method or `<unfence>`: a fence device plus per-node
/// arguments for its agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceRef {
    /// Source positions.
    pub origin: Origin,
    /// `name`: a `<fencedevice name>`.
    pub name: String,
    /// Every other attribute, in document order (`port`, `switch`, `nodename`, `action`...).
    pub args: Vec<(String, String)>,
}

/// `<fencedevice name= agent= ...>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FenceDevice {
    /// Source positions.
    pub origin: Origin,
    /// `name`. Required, unique.
    pub name: String,
    /// `agent`: the fence agent executable. Required.
    pub agent: String,
    /// Every other attribute, in document order (`ipaddr`, `login`, `passwd`...).
    pub args: Vec<(String, String)>,
}

impl DeviceRef {
    /// The value of argument `name`.
    pub fn arg(&self, name: &str) -> Option<&str> {
        arg(&self.args, name)
    }
}

impl FenceDevice {
    /// The value of argument `name`.
    pub fn arg(&self, name: &str) -> Option<&str> {
        arg(&self.args, name)
    }
}

/// Looks a value up in an ordered attribute list.
pub(crate) fn arg<'a>(args: &'a [(String, String)], name: &str) -> Option<&'a str> {
    args.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_nodes() -> ClusterConf {
        let node = |name: &str, id: u32| ClusterNode {
            name: name.into(),
            nodeid: NodeId(id),
            ..ClusterNode::default()
        };
        ClusterConf {
            name: "mycluster".into(),
            clusternodes: vec![node("a", 1), node("B", 2)],
            ..ClusterConf::default()
        }
    }

    #[test]
    fn expected_votes_defaults_to_the_sum_of_node_votes() {
        let mut c = two_nodes();
        c.clusternodes[1].votes = 3;
        assert_eq!(c.expected_votes(), 4);
        c.cman.expected_votes = Some(7);
        assert_eq!(c.expected_votes(), 7);
    }

    #[test]
    fn timing_accessors_use_our_token_default() {
        let mut c = two_nodes();
        assert_eq!(c.token_ms(), DEFAULT_TOKEN_MS);
        assert_eq!(c.consensus_ms(), 200);
        assert_eq!(c.quorum_dev_poll_ms(), DEFAULT_TOKEN_MS);
        c.totem.token = Some(5000);
        assert_eq!(c.quorum_dev_poll_ms(), 5000);
        assert_eq!(c.consensus_ms(), 1000);
    }

    #[test]
    fn cluster_id_and_multicast_derive_from_the_name_unless_set() {
        let mut c = two_nodes();
        assert_eq!(c.cluster_id(), 56756);
        assert_eq!(c.multicast_addr().to_string(), "239.192.221.146");
        c.cman.cluster_id = Some(7);
        c.cman.multicast = Some(Multicast {
            addr: "239.1.1.1".parse().ok(),
            ..Multicast::default()
        });
        assert_eq!(c.cluster_id(), 7);
        assert_eq!(c.multicast_addr().to_string(), "239.1.1.1");
    }

    #[test]
    fn transport_follows_broadcast_unless_set() {
        let mut m = Cman::default();
        assert_eq!(m.effective_transport(), Transport::Udp);
        m.broadcast = true;
        assert_eq!(m.effective_transport(), Transport::Udpb);
        m.transport = Some(Transport::Udpu);
        assert_eq!(m.effective_transport(), Transport::Udpu);
    }

    #[test]
    fn node_lookup_ignores_case_and_qdisk_votes_default_to_nodes_minus_one() {
        let mut c = two_nodes();
        assert_eq!(c.node("b").map(|n| n.nodeid), Some(NodeId(2)));
        assert_eq!(c.node_by_id(NodeId(1)).map(|n| n.name.as_str()), Some("a"));
        assert_eq!(c.qdisk_votes(), None);
        c.quorumd = Some(Quorumd::default());
        assert_eq!(c.qdisk_votes(), Some(1));
    }
}
