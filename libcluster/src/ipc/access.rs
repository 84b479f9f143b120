//! Who may do what through the local API.
//!
//! The original stack let any local user read status (`clustat`, `cman_tool status`) and
//! kept changes (`clusvcadm`, `cman_tool leave`, `fence_node`) to root; cman's
//! `admin_group` widened the latter to a group. We keep that model: reads are open,
//! writes need uid 0 or membership of the admin group, primary or supplementary.

/// Whether a request only looks at state or changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Status queries: open to every local user.
    Read,
    /// Anything that changes cluster or daemon state: root or the admin group.
    Write,
}

/// Implemented by each daemon's request type so the server can check a request before the
/// daemon sees it.
pub trait ApiRequest {
    /// What this request does to the daemon's state.
    fn access(&self) -> Access;
}

/// The credentials of the process at the other end of a connection, as the kernel
/// reported them when it connected (`SO_PEERCRED`), plus its supplementary groups.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Peer {
    /// Process id (0 if the kernel did not say).
    pub pid: u32,
    /// Effective user id.
    pub uid: u32,
    /// Effective (primary) group id.
    pub gid: u32,
    /// Supplementary group ids; may or may not repeat `gid`.
    pub groups: Vec<u32>,
}

impl Peer {
    /// Whether the peer belongs to `gid`, as its primary or a supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Whether `peer` may make a request with this access. `admin_gid` is the group named by
/// `<cman admin_group="NAME">`, resolved by the daemon; `None` when not configured (or the
/// name did not resolve), leaving writes to root alone.
pub fn permits(peer: &Peer, access: Access, admin_gid: Option<u32>) -> bool {
    match access {
        Access::Read => true,
        Access::Write => peer.uid == 0 || admin_gid.is_some_and(|gid| peer.in_group(gid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            pid: 4242,
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_may_write_without_an_admin_group() {
        assert!(permits(&user(0, 0, &[]), Access::Write, None));
        assert!(permits(&user(0, 100, &[]), Access::Write, Some(10)));
    }

    #[test]
    fn ordinary_user_may_not_write_without_an_admin_group() {
        assert!(!permits(&user(1000, 1000, &[10, 20]), Access::Write, None));
    }

    #[test]
    fn admin_group_as_primary_group_permits_writes() {
        assert!(permits(&user(1000, 10, &[]), Access::Write, Some(10)));
    }

    #[test]
    fn admin_group_as_supplementary_group_permits_writes() {
        assert!(permits(
            &user(1000, 1000, &[4, 10, 27]),
            Access::Write,
            Some(10)
        ));
    }

    #[test]
    fn another_group_does_not_permit_writes() {
        assert!(!permits(
            &user(1000, 1000, &[4, 27]),
            Access::Write,
            Some(10)
        ));
    }

    #[test]
    fn root_group_membership_alone_is_not_root() {
        // gid 0 without uid 0 is an ordinary user unless gid 0 is the admin group.
        assert!(!permits(&user(1000, 0, &[0]), Access::Write, None));
        assert!(permits(&user(1000, 0, &[]), Access::Write, Some(0)));
    }

    proptest! {
        #[test]
        fn reads_are_always_permitted(
            uid in any::<u32>(), gid in any::<u32>(),
            groups in proptest::collection::vec(any::<u32>(), 0..8),
            admin in proptest::option::of(any::<u32>()),
        ) {
            prop_assert!(permits(&user(uid, gid, &groups), Access::Read, admin));
        }

        #[test]
        fn non_root_writes_need_the_admin_group(
            uid in 1u32.., gid in any::<u32>(),
            groups in proptest::collection::vec(any::<u32>(), 0..8),
            admin in proptest::option::of(any::<u32>()),
        ) {
            let peer = user(uid, gid, &groups);
            let member = admin.is_some_and(|a| gid == a || groups.contains(&a));
            prop_assert_eq!(permits(&peer, Access::Write, admin), member);
        }
    }
}
