//! Fencing: the fence domain's decision core (who is a victim, who fences, retries,
//! acknowledgements) and the plan of agent calls a node's `<fence>` section describes.
//!
//! [`Domain`] is fenced's brain, a sans-IO state machine in the shape of C3's fenced
//! (spec/fencing.md §1). The shell feeds it cmand's events and local requests through
//! [`Domain::handle`], carries out its [`Action`]s and wakes it at [`Domain::next_deadline`].
//!
//! ```text
//!   Out ──Join──► Joining ──GroupView(+me)──► Member ──Leave──► Leaving ──own Leaving──► LeaveGroup
//!    ▲                                          │                                         │
//!    └───────────────── GroupView(-me) ◄────────┴─────────────────────────────────────────┘
//!
//!   every GroupView (a "change"):  victims += members that failed
//!        │ send Start{change, state}
//!        ▼
//!   wait for the Start of every member (WaitState::Messages)
//!        │ merge state, master = lowest id with complete state, else lowest id
//!        ▼
//!   master only, while quorate:  delay (post_join / post_fail, C3 loop)
//!        │ skip victims back with a newer incarnation (how = Member)
//!        ▼
//!   Fence{victim, attempt} ──FenceDone ok──► send VictimDone ──► every member: Fenced(record)
//!        ▲           └── failed ──► back-off (1 s doubling to 30 s) ──┘
//!   Ack (fence_ack_manual, any member) ──► every member: Fenced(how = Override), CancelFence
//! ```
//!
//! docs/fencing-core.md describes the protocol, the master rule and the deviations from C3.

mod api;
mod domain;
mod master;
mod msg;
pub mod plan;
mod reads;
mod round;
mod sim_node;
#[cfg(test)]
mod tests;

pub use api::{
    settings_from_config, Action, AttemptOutcome, FenceSettings, Input, NodeEntry,
    DEFAULT_RETRY_INITIAL_MS, DEFAULT_RETRY_MAX_MS, LOGGED_FAILURES, STILL_RETRYING_EVERY,
};
pub use domain::{Domain, ROUND_RESEND_MS, VICTIM_NUDGE_MS};
pub use master::VIEW_SETTLE_MS;
pub use msg::{ChangeId, DomainMsg, FenceError, StateBody, PROTOCOL_VERSION};
pub use sim_node::{FenceSimEvent, FenceSimInput, FenceSimNode, SwitchConfig};
