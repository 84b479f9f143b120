//! The replicated service record: states, flags, administrator intent (spec/rgmanager.md §1).

use crate::{Millis, NodeId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A service's state (`rs_state`, spec §1.2). The numeric codes are the original's; the
/// strings are what `clustat` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ServiceState {
    /// 110: not running; re-evaluated at the next node or service event.
    Stopped,
    /// 111: the start agent runs.
    Starting,
    /// 112: running.
    Started,
    /// 113: the stop agent runs (not for recovery).
    Stopping,
    /// 114: a stop failed; only disable is accepted.
    Failed,
    /// 115: no state known locally.
    Uninitialized,
    /// 116: defined by the original, never assigned.
    Checking,
    /// 117 (`RG_STATE_ERROR`, shown `recoverable`): stopping a failed service for recovery.
    Recoverable,
    /// 118: stopped cleanly after a failure, waiting for the recovery policy.
    Recovering,
    /// 119: never started automatically.
    Disabled,
    /// 120: a live migration runs (owner is still the source until it succeeds).
    Migrating,
}

impl ServiceState {
    const ALL: [ServiceState; 11] = [
        ServiceState::Stopped,
        ServiceState::Starting,
        ServiceState::Started,
        ServiceState::Stopping,
        ServiceState::Failed,
        ServiceState::Uninitialized,
        ServiceState::Checking,
        ServiceState::Recoverable,
        ServiceState::Recovering,
        ServiceState::Disabled,
        ServiceState::Migrating,
    ];

    /// The original's numeric code (110..=120).
    pub fn code(self) -> u32 {
        110 + ServiceState::ALL
            .iter()
            .position(|&s| s == self)
            .unwrap_or(0) as u32
    }

    /// The state with this code.
    pub fn from_code(code: u32) -> Option<ServiceState> {
        let i = code.checked_sub(110)? as usize;
        ServiceState::ALL.get(i).copied()
    }

    /// The user string (`clustat`, `rg_strings.c`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Stopped => "stopped",
            ServiceState::Starting => "starting",
            ServiceState::Started => "started",
            ServiceState::Stopping => "stopping",
            ServiceState::Failed => "failed",
            ServiceState::Uninitialized => "uninitialized",
            ServiceState::Checking => "checking",
            ServiceState::Recoverable => "recoverable",
            ServiceState::Recovering => "recovering",
            ServiceState::Disabled => "disabled",
            ServiceState::Migrating => "migrating",
        }
    }

    /// Parses a user string, case-insensitively (spec §1.2).
    pub fn from_name(s: &str) -> Option<ServiceState> {
        ServiceState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether the service occupies its owner (started, or an operation on it runs there).
    pub fn occupies_owner(self) -> bool {
        matches!(
            self,
            ServiceState::Starting
                | ServiceState::Started
                | ServiceState::Stopping
                | ServiceState::Recoverable
                | ServiceState::Migrating
        )
    }

    /// Whether `clustat` shows the last owner in brackets instead of the owner (§5.2).
    pub fn shows_last_owner(self) -> bool {
        matches!(
            self,
            ServiceState::Stopped
                | ServiceState::Disabled
                | ServiceState::Recoverable
                | ServiceState::Failed
        )
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record's flag bits (`rs_flags`, spec §1.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flags(pub u32);

impl Flags {
    /// `RG_FLAG_FROZEN`: no status checks, no start, stop or failover.
    pub const FROZEN: u32 = 1;
    /// `RG_FLAG_PARTIAL`: a non-critical resource is stopped.
    pub const PARTIAL: u32 = 2;

    /// Whether the frozen bit is set.
    pub fn frozen(self) -> bool {
        self.0 & Flags::FROZEN != 0
    }

    /// The flags with the frozen bit set or cleared.
    pub fn with_frozen(self, on: bool) -> Flags {
        if on {
            Flags(self.0 | Flags::FROZEN)
        } else {
            Flags(self.0 & !Flags::FROZEN)
        }
    }

    /// Long names, comma separated (`clustat -l`): `frozen`, `partial`.
    pub fn long(self) -> String {
        let mut v = Vec::new();
        if self.0 & Flags::FROZEN != 0 {
            v.push("frozen");
        }
        if self.0 & Flags::PARTIAL != 0 {
            v.push("partial");
        }
        v.join(",")
    }

    /// Short letters (`clustat`): `Z` frozen, `P` partial.
    pub fn short(self) -> String {
        let mut s = String::new();
        if self.0 & Flags::FROZEN != 0 {
            s.push('Z');
        }
        if self.0 & Flags::PARTIAL != 0 {
            s.push('P');
        }
        s
    }
}

/// One service's replicated record (`rg_state_t`, spec §1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The state.
    pub state: ServiceState,
    /// The node running it (or where an operation on it runs); `None` = 0 = none.
    pub owner: Option<NodeId>,
    /// The previous owner.
    pub last_owner: Option<NodeId>,
    /// Flag bits; the frozen bit mirrors the intent.
    pub flags: Flags,
    /// Starts from `recovering` in a row; reset by any other start and by `failed`.
    pub restarts: u32,
    /// When it last started, stopped or failed (the coordinator's clock); `None` = never
    /// (the original's transition 0, which the autostart rule reads).
    pub transition: Option<Millis>,
}

impl ServiceRecord {
    /// The record a service has before anything happened: `stopped`, no owner, transition 0
    /// (the cluster-wide read of a missing record, spec §1.1).
    pub fn new() -> ServiceRecord {
        ServiceRecord {
            state: ServiceState::Stopped,
            owner: None,
            last_owner: None,
            flags: Flags::default(),
            restarts: 0,
            transition: None,
        }
    }
}

impl Default for ServiceRecord {
    fn default() -> ServiceRecord {
        ServiceRecord::new()
    }
}

/// What the administrator asked for, replicated with the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Enabled (may run) or disabled (`clusvcadm -d`, or autostart off before the first start).
    pub enabled: bool,
    /// Frozen (`clusvcadm -Z`): nothing is started, stopped or recovered.
    pub frozen: bool,
    /// The member the administrator named last (`-e -m`, `-r -m`, `-M -m`), tried first
    /// when the service is placed by a user request.
    pub target: Option<NodeId>,
}

impl Intent {
    /// The intent of a service nobody has touched: enabled iff `autostart` (spec §2.9).
    pub fn initial(autostart: bool) -> Intent {
        Intent {
            enabled: autostart,
            frozen: false,
            target: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codes_and_strings_match_the_original_table() {
        // spec §1.2
        let table = [
            (110, "stopped"),
            (111, "starting"),
            (112, "started"),
            (113, "stopping"),
            (114, "failed"),
            (115, "uninitialized"),
            (116, "checking"),
            (117, "recoverable"),
            (118, "recovering"),
            (119, "disabled"),
            (120, "migrating"),
        ];
        for (code, name) in table {
            let s = ServiceState::from_code(code).unwrap();
            assert_eq!(s.code(), code);
            assert_eq!(s.as_str(), name);
            assert_eq!(ServiceState::from_name(&name.to_uppercase()), Some(s));
        }
        assert_eq!(ServiceState::from_code(109), None);
        assert_eq!(ServiceState::from_code(121), None);
        assert_eq!(ServiceState::from_name("running"), None);
    }

    #[test]
    fn flags_print_long_and_short_forms() {
        // spec §1.3
        let f = Flags(Flags::FROZEN | Flags::PARTIAL);
        assert_eq!(f.long(), "frozen,partial");
        assert_eq!(f.short(), "ZP");
        assert!(f.frozen());
        assert!(!f.with_frozen(false).frozen());
        assert_eq!(Flags::default().long(), "");
    }

    #[test]
    fn a_new_record_is_stopped_with_no_owner_and_no_transition() {
        // spec §1.1
        let r = ServiceRecord::new();
        assert_eq!(r.state, ServiceState::Stopped);
        assert_eq!(
            (r.owner, r.last_owner, r.restarts, r.transition),
            (None, None, 0, None)
        );
        assert!(!Intent::initial(false).enabled);
    }
}
