//! Default values and the values the original tools derive from other settings.
//!
//! Everything here follows spec/cman-qdisk.md, spec/fencing.md and spec/rgmanager.md,
//! except [`DEFAULT_TOKEN_MS`], which is ours (see its doc).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Totem token timeout when `<totem token>` is not set, in milliseconds.
///
/// Ours, not the original's: cman injected 10000 ms. Our cmand declares a silent node dead
/// after about one token, and the design asks for detection within about a second.
pub const DEFAULT_TOKEN_MS: u32 = 1000;

/// `<cman keyfile>` default: the key written by `cman_tool keygen`.
pub const DEFAULT_KEYFILE: &str = "/etc/cluster/cman_authkey";

/// `<cman port>` default (totem mcastport; port − 1 is used too).
pub const DEFAULT_PORT: u16 = 5405;

/// `<cman shutdown_timeout>` default, ms.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u32 = 5000;

/// `<cman ccsd_poll>` default, ms.
pub const DEFAULT_CCSD_POLL_MS: u32 = 1000;

/// `<cman max_queued>` default.
pub const DEFAULT_MAX_QUEUED: u32 = 128;

/// `<totem join>` default, ms.
pub const DEFAULT_JOIN_MS: u32 = 60;

/// `<totem fail_recv_const>` default.
pub const DEFAULT_FAIL_RECV_CONST: u32 = 2500;

/// `<totem token_retransmits_before_loss_const>` default (cman.5, RHEL 5).
pub const DEFAULT_TOKEN_RETRANSMITS: u32 = 20;

/// `<clusternode votes>` default.
pub const DEFAULT_NODE_VOTES: u32 = 1;

/// Highest node id a `<clusternode>` may carry.
pub const MAX_NODE_ID: u32 = 4096;

/// Highest vote count of one node.
pub const MAX_NODE_VOTES: u32 = 255;

/// Longest cluster name, in bytes.
pub const MAX_CLUSTER_NAME_LEN: usize = 15;

/// `<quorumd interval>` default, seconds.
pub const DEFAULT_QDISK_INTERVAL_S: u32 = 1;

/// `<quorumd tko>` default when unset: the RHEL 5 qdiskd's fixed 10 cycles.
///
/// (RHEL 6 derived it from the totem token, which with our 1 s token would give 0.)
pub const DEFAULT_QDISK_TKO: u32 = 10;

/// Node slots on a quorum disk: node ids 1..=16 can use it.
pub const QDISK_MAX_NODE_ID: u32 = 16;

/// Most heuristics qdiskd runs.
pub const MAX_HEURISTICS: usize = 10;

/// `<fence_daemon post_join_delay>` default, seconds.
pub const DEFAULT_POST_JOIN_DELAY_S: i32 = 6;

/// `<fence_daemon override_path>` default.
pub const DEFAULT_OVERRIDE_PATH: &str = "/var/run/cluster/fenced_override";

/// `<fence_daemon override_time>` default and minimum, seconds.
pub const DEFAULT_OVERRIDE_TIME_S: u32 = 3;

/// Most methods per node and devices per method that fenced tries.
pub const MAX_FENCE_METHODS: usize = 8;

/// See [`MAX_FENCE_METHODS`].
pub const MAX_FENCE_DEVICES: usize = 8;

/// `<rm status_poll_interval>` default, seconds.
pub const DEFAULT_STATUS_POLL_INTERVAL_S: u32 = 10;

/// `<rm statusmax>` default.
pub const DEFAULT_STATUSMAX: u32 = 5;

/// `<rm transition_throttling>` default, seconds.
pub const DEFAULT_TRANSITION_THROTTLING_S: u32 = 5;

/// Longest rgmanager service id (`vm:NAME`, `service:NAME`), in bytes.
pub const MAX_SERVICE_ID_LEN: usize = 63;

/// The 16-bit cluster id cman derives from the cluster name.
///
/// Plain: `v = (v << 1) + byte` over the name, then the low 16 bits. With
/// `hash_cluster_id`: FNV-1a 32-bit folded to 16 bits.
pub fn cluster_id_from_name(name: &str, hash: bool) -> u16 {
    if hash {
        let h = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        ((h >> 16) ^ (h & 0xFFFF)) as u16
    } else {
        let v = name
            .bytes()
            .fold(0_u32, |v, b| (v << 1).wrapping_add(u32::from(b)));
        (v & 0xFFFF) as u16
    }
}

/// The multicast address cman uses when `<multicast addr>` is not set.
///
/// IPv4 `239.192.<id >> 8>.<id % 255>` (the original's modulo 255, not `& 0xff`).
pub fn default_multicast_addr(cluster_id: u16) -> IpAddr {
    let hi = (cluster_id >> 8) as u8;
    let lo = (cluster_id % 255) as u8;
    IpAddr::V4(Ipv4Addr::new(239, 192, hi, lo))
}

/// The IPv6 default group, `ff15::<id>`.
pub fn default_multicast_addr_v6(cluster_id: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0, cluster_id))
}

/// Totem consensus when unset: more than two nodes, token + 2000; otherwise token × 0.2
/// clamped to 200..=2000 (the RHEL 6 cman rule).
pub fn default_consensus_ms(token_ms: u32, node_count: usize) -> u32 {
    if node_count > 2 {
        token_ms.saturating_add(2000)
    } else {
        (token_ms / 5).clamp(200, 2000)
    }
}

/// Parses rgmanager's time syntax: an integer with an optional unit `s` (default), `m`, `h`,
/// `d`, `w` or `y`; concatenated terms add up (`1h30m` = 5400). Returns seconds.
pub fn parse_time_s(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            if chars.peek().is_some() {
                continue;
            }
        }
        let unit = if c.is_ascii_digit() {
            's'
        } else {
            c.to_ascii_lowercase()
        };
        let factor: u64 = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            'y' => 31_536_000,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(factor)?)?;
        digits.clear();
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_of_mycluster_is_56756_as_cman_computes_it() {
        assert_eq!(cluster_id_from_name("mycluster", false), 56756);
    }

    #[test]
    fn default_multicast_of_mycluster_uses_modulo_255() {
        let id = cluster_id_from_name("mycluster", false);
        assert_eq!(default_multicast_addr(id).to_string(), "239.192.221.146");
        assert_eq!(default_multicast_addr_v6(id).to_string(), "ff15::ddb4");
    }

    #[test]
    fn hashed_cluster_id_differs_from_the_plain_one() {
        // FNV-1a("a") = 0xe40c292c; folded: 0xe40c ^ 0x292c.
        assert_eq!(cluster_id_from_name("a", true), 0xe40c ^ 0x292c);
    }

    #[test]
    fn consensus_follows_the_node_count_rule() {
        assert_eq!(default_consensus_ms(1000, 2), 200);
        assert_eq!(default_consensus_ms(10_000, 2), 2000);
        assert_eq!(default_consensus_ms(20_000, 2), 2000);
        assert_eq!(default_consensus_ms(1000, 3), 3000);
    }

    #[test]
    fn time_syntax_sums_terms_with_units() {
        assert_eq!(parse_time_s("30"), Some(30));
        assert_eq!(parse_time_s("30s"), Some(30));
        assert_eq!(parse_time_s("1h30m"), Some(5400));
        assert_eq!(parse_time_s("2d"), Some(172_800));
        assert_eq!(parse_time_s("5M"), Some(300));
        assert_eq!(parse_time_s("1w1"), Some(604_801));
    }

    #[test]
    fn time_syntax_rejects_garbage_and_overflow() {
        for bad in [
            "",
            "h",
            "1x",
            "-5",
            "1.5",
            "m30",
            "99999999999999999999y",
            "1hh",
        ] {
            assert_eq!(parse_time_s(bad), None, "{bad}");
        }
    }
}
