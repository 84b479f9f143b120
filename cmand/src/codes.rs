//! cmand's own error codes in IPC `Error` frames, for `cman_tool`, `ccs_tool` and the daemons
//! that call cmand.
//!
//! Generic codes (denied, bad request, busy, unavailable...) are
//! [`libcluster::ipc::ErrorCode`]'s; these start at [`ErrorCode::DAEMON_BASE`]. Each one
//! stands for the errno the original cman returned in the same situation, so a tool can
//! print the original's wording with [`strerror`]. Codes are never reused.

use libcluster::ipc::ErrorCode;

/// No view is installed yet (cman: ENOENT, "Node is not yet a cluster member").
pub const NOT_MEMBER: ErrorCode = ErrorCode(1000);
/// The value was refused: `expected` out of range or disallowed nodes present, a kill of a
/// node that is neither a member nor disallowed, an empty or oversized payload (EINVAL).
pub const INVALID: ErrorCode = ErrorCode(1001);
/// Something is in use: `leave` without `force` while local clients hold groups, or too
/// many group messages queued (`<cman max_queued>`); retry later (EBUSY).
pub const IN_USE: ErrorCode = libcluster::ipc::cman::ERR_IN_USE;
/// `kill -n NAME`: no configured node has that name or id (ENOENT).
pub const NO_SUCH_NODE: ErrorCode = ErrorCode(1003);
/// `ccs_tool update` / `version -r`: the cluster.conf does not validate; the message is the
/// first error as `FILE:LINE:COL: error: ...` (EINVAL).
pub const CONFIG_INVALID: ErrorCode = ErrorCode(1004);
/// `ccs_tool update` / `version -r`: its config_version is not greater than the running one;
/// the message names both (EINVAL).
pub const CONFIG_NOT_NEWER: ErrorCode = ErrorCode(1005);
/// The node is leaving the cluster and takes no more requests (ENOTCONN).
pub const LEAVING: ErrorCode = ErrorCode(1006);
/// A group operation on a group this node has not joined, has already joined, or one group
/// too many (EINVAL).
pub const GROUP: ErrorCode = ErrorCode(1007);

/// The errno the original returned for `code`, by name (`"EINVAL"`), if it is one of ours.
pub fn errno_name(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        NOT_MEMBER | NO_SUCH_NODE => "ENOENT",
        INVALID | CONFIG_INVALID | CONFIG_NOT_NEWER | GROUP => "EINVAL",
        IN_USE => "EBUSY",
        LEAVING => "ENOTCONN",
        _ => return None,
    })
}

/// The C library's text for the errno of `code` (what `strerror` printed in the original's
/// messages, e.g. "Error leaving cluster: Device or resource busy"), if it is one of ours.
pub fn strerror(code: ErrorCode) -> Option<&'static str> {
    Some(match errno_name(code)? {
        "ENOENT" => "No such file or directory",
        "EINVAL" => "Invalid argument",
        "EBUSY" => "Device or resource busy",
        _ => "Transport endpoint is not connected",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_daemon_specific_distinct_and_has_an_errno() {
        let all = [
            NOT_MEMBER,
            INVALID,
            IN_USE,
            NO_SUCH_NODE,
            CONFIG_INVALID,
            CONFIG_NOT_NEWER,
            LEAVING,
            GROUP,
        ];
        for (i, c) in all.iter().enumerate() {
            assert!(*c >= ErrorCode::DAEMON_BASE, "{c:?}");
            assert!(errno_name(*c).is_some() && strerror(*c).is_some(), "{c:?}");
            assert!(!all[i + 1..].contains(c), "{c:?} repeated");
        }
        assert_eq!(strerror(IN_USE), Some("Device or resource busy"));
        assert_eq!(errno_name(ErrorCode::BUSY), None);
    }
}
