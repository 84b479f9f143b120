//! rgmanagerd's local API: what `clustat` and `clusvcadm` ask of rgmanagerd over
//! `<runtime dir>/rgmanagerd.sock`, and the events it publishes.
//!
//! ```text
//!  clustat   ── Status ──────────────────▶ rgmanagerd ── Status(RgStatus) ──▶ render
//!  clustat   ── Service{name} ───────────▶            ── Service(Option<RgService>)
//!  clusvcadm ── Status (names → ids) ────▶            ── Status(RgStatus)
//!  clusvcadm ── Action{service, request,─▶            ── ActionResult{code, owner_after}
//!                      follow_domain}                    (code: RG_E*, spec §5.1)
//!  clusvcadm ── Lock | Unlock | QueryLock ▶           ── Locked(bool)
//! ```
//!
//! The snapshot is self-contained: member names, ids and flags, and per service its
//! replicated record, the administrator's intent and the wall-clock time of its last
//! transition, so a client needs nothing else to print the original `clustat` layouts
//! (owner ids resolve through [`RgStatus::members`]).
//!
//! Access follows the original: status is open to every local user; actions and the lock
//! need root or the admin group (the original answered `RG_EPERM` to non-root senders; the
//! server answers `denied`, which `clusvcadm` prints as `Permission denied`).
//!
//! An action is answered when it has finished (or failed), as the original's were: the
//! daemon may take minutes (a forwarded request waits up to 60 × 10 s, spec §5.1), so
//! clients allow a long timeout. Refusals are not errors: they come back as an
//! [`RgResponse::ActionResult`] with a negative `code` ([`strerror`] names it). Error frames
//! are for requests the daemon could not handle at all.
//!
//! Append variants at the end only: postcard encodes the variant index.

use super::{Access, ApiRequest};
use crate::rgmanager::{Flags, Intent, Request, ServiceRecord, ServiceState};
use crate::NodeId;
use serde::{Deserialize, Serialize};

/// The daemon name used for the socket path: `<runtime dir>/rgmanagerd.sock`.
pub const DAEMON: &str = "rgmanagerd";

/// A request to rgmanagerd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RgRequest {
    /// `clustat`: the whole snapshot.
    Status,
    /// `clustat -s NAME`: one service by its full name (`vm:x`, `service:x`), exactly.
    Service {
        /// The full service name.
        name: String,
    },
    /// `clusvcadm -e/-d/-s/-r/-M/-R/-Z/-U`: an administrator request for one service.
    Action {
        /// The full service name (`vm:x`, `service:x`), exactly as configured.
        service: String,
        /// What to do. `Enable { target: None }` places by failover domain when
        /// `follow_domain` is set (`-F`), else it means "the node this request arrived on"
        /// (a plain `-e` from a client that did not know the local node id).
        #[serde(with = "RequestDef")]
        request: Request,
        /// `clusvcadm -F` (the original's header arg1 = 1): place by failover domain.
        follow_domain: bool,
    },
    /// `clusvcadm -l`: lock the local resource group manager (no service starts).
    Lock,
    /// `clusvcadm -u`: unlock it.
    Unlock,
    /// `clusvcadm -S`: is it locked?
    QueryLock,
    /// `clusvcadm -c`: start the failed non-critical resources of a service (the
    /// original's `RG_CONVALESCE`). A daemon without partial services answers
    /// [`RG_EINVAL`].
    Convalesce {
        /// The full service name.
        service: String,
    },
}

/// The serde mirror of [`Request`], so the contract carries the core's own request type.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Request")]
enum RequestDef {
    Enable { target: Option<NodeId> },
    Disable,
    Stop,
    Relocate { target: Option<NodeId> },
    Migrate { target: NodeId },
    Restart,
    Freeze,
    Unfreeze,
}

impl ApiRequest for RgRequest {
    fn access(&self) -> Access {
        match self {
            RgRequest::Status | RgRequest::Service { .. } | RgRequest::QueryLock => Access::Read,
            RgRequest::Action { .. }
            | RgRequest::Lock
            | RgRequest::Unlock
            | RgRequest::Convalesce { .. } => Access::Write,
        }
    }
}

/// rgmanagerd's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RgResponse {
    /// The snapshot, for [`RgRequest::Status`].
    Status(Box<RgStatus>),
    /// One service, for [`RgRequest::Service`]; `None` if no service has that name.
    Service(Option<Box<RgService>>),
    /// The outcome of an [`RgRequest::Action`] or [`RgRequest::Convalesce`].
    ActionResult {
        /// `RG_ESUCCESS` (0) or a negative `RG_E*` code (spec §5.1; [`strerror`]).
        code: i32,
        /// The service's owner after the request, by member name (`clusvcadm` prints
        /// `<svc> is now running on <owner>` after `-e` and `-r`); `None` if it runs nowhere.
        owner_after: Option<String>,
    },
    /// The lock state after [`RgRequest::Lock`] (true), [`RgRequest::Unlock`] (false) or
    /// as [`RgRequest::QueryLock`] found it.
    Locked(bool),
}

/// Everything `clustat` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RgStatus {
    /// `<cluster name>`.
    pub cluster_name: String,
    /// The 16-bit cluster id (`clustat -x` `<cluster id>`).
    pub cluster_id: u16,
    /// The installed view's epoch (`<cluster generation>`).
    pub generation: u64,
    /// Whether the cluster is quorate.
    pub quorate: bool,
    /// This node's id (`clustat -I`).
    pub local_node_id: u32,
    /// Whether this node's rgmanagerd is locked (`clusvcadm -l`).
    pub locked: bool,
    /// Every configured node, plus the quorum device (id 0) when registered, plus members
    /// not in cluster.conf (estranged); any order (clustat lists nodes by id, the quorum
    /// device last).
    pub members: Vec<RgMember>,
    /// Every configured service; any order (clustat sorts by name).
    pub services: Vec<RgService>,
}

/// One row of `clustat`'s member table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RgMember {
    /// The node's name as configured (the device name for the quorum device).
    pub name: String,
    /// Node id; 0 for the quorum device.
    pub id: u32,
    /// In the installed view (the quorum device: qdiskd reports it alive).
    pub online: bool,
    /// This node.
    pub local: bool,
    /// Its rgmanagerd takes part in placement.
    pub rgmanager: bool,
    /// Its rgmanagerd makes the placement decisions (our coordinator).
    pub master: bool,
    /// The quorum device.
    pub qdisk: bool,
    /// A member that cluster.conf does not list.
    pub estranged: bool,
}

/// One service as `clustat` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RgService {
    /// The full name: `vm:NAME` or `service:NAME`.
    pub name: String,
    /// The replicated record: state, owner, last owner, flags, restarts.
    pub record: ServiceRecord,
    /// What the administrator asked for.
    pub intent: Intent,
    /// Unix time (seconds) of the last start, stop or failure; `None` if none since the
    /// record was created (the original's transition 0).
    pub last_transition_unix_s: Option<i64>,
}

/// What rgmanagerd publishes to subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RgEvent {
    /// A service's record or intent changed (the original's `RG_EVENT`).
    Service(Box<RgService>),
}

/// `RG_ESUCCESS`: success.
pub const RG_ESUCCESS: i32 = 0;
/// `RG_EFAIL`: generic failure.
pub const RG_EFAIL: i32 = -1;
/// `RG_EABORT`: aborted; service failed.
pub const RG_EABORT: i32 = -2;
/// `RG_EFORWARD`: service not mastered locally (internal).
pub const RG_EFORWARD: i32 = -3;
/// `RG_ENOSERVICE`: no such service.
pub const RG_ENOSERVICE: i32 = -4;
/// `RG_EDEADLCK`: the operation would deadlock.
pub const RG_EDEADLCK: i32 = -5;
/// `RG_EAGAIN`: temporary failure; try again.
pub const RG_EAGAIN: i32 = -6;
/// `RG_EDEPEND`: violates a dependency rule.
pub const RG_EDEPEND: i32 = -7;
/// `RG_EINVAL`: invalid operation for the resource.
pub const RG_EINVAL: i32 = -8;
/// `RG_EQUORUM`: needs quorum.
pub const RG_EQUORUM: i32 = -9;
/// `RG_ERUN`: already running (`clusvcadm` exits 0).
pub const RG_ERUN: i32 = -10;
/// `RG_EFROZEN`: the service is frozen.
pub const RG_EFROZEN: i32 = -11;
/// `RG_ENODE`: target node dead or nonexistent.
pub const RG_ENODE: i32 = -12;
/// `RG_EFENCE`: fencing pending; try again later.
pub const RG_EFENCE: i32 = -13;
/// `RG_ESCRIPT`: central-processing script error.
pub const RG_ESCRIPT: i32 = -14;
/// `RG_EDOMAIN`: service not runnable.
pub const RG_EDOMAIN: i32 = -15;
/// `RG_EEXCL`: not runnable: cannot run exclusive.
pub const RG_EEXCL: i32 = -16;
/// `RG_ERELO`: failed; running on the original owner.
pub const RG_ERELO: i32 = -17;
/// `RG_EPERM`: permission denied.
pub const RG_EPERM: i32 = -18;
/// `RG_EWARNING`: warning; see system logs.
pub const RG_EWARNING: i32 = -19;

/// The original's `rg_strerror`: the string `clusvcadm` prints for a result code
/// (spec §5.1). Codes outside the table print `Unknown`.
pub fn strerror(code: i32) -> &'static str {
    match code {
        RG_ESUCCESS => "Success",
        RG_EFAIL => "Failure",
        RG_EABORT => "Aborted; service failed",
        RG_EFORWARD => "Service not mastered locally",
        RG_ENOSERVICE => "Service does not exist",
        RG_EDEADLCK => "Operation would cause a deadlock",
        RG_EAGAIN => "Temporary failure; try again",
        RG_EDEPEND => "Operation violates dependency rule",
        RG_EINVAL => "Invalid operation for resource",
        RG_EQUORUM => "Operation requires quorum",
        RG_ERUN => "Service is already running",
        RG_EFROZEN => "Failure: Service is frozen",
        RG_ENODE => "Target node dead / nonexistent",
        RG_EFENCE => "Fencing operation pending; try again later",
        RG_ESCRIPT => "S/Lang Script Error",
        RG_EDOMAIN => "Service not runnable",
        RG_EEXCL => "Service not runnable: cannot run exclusive",
        RG_ERELO => "Failed; service running on original owner",
        RG_EPERM => "Permission denied",
        RG_EWARNING => "Warning; see system logs",
        _ => "Unknown",
    }
}

/// The full service name a user's word means, given the configured names: the word
/// itself if configured, else `service:WORD`, else `vm:WORD` (only for words without a
/// `:`); `None` if none is configured.
pub fn resolve_service<'a, I>(word: &str, names: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: Clone,
{
    let names = names.into_iter();
    let mut candidates = vec![word.to_string()];
    if !word.contains(':') {
        candidates.push(format!("service:{word}"));
        candidates.push(format!("vm:{word}"));
    }
    candidates
        .into_iter()
        .find(|c| names.clone().any(|n| n == c))
}

impl RgStatus {
    /// The service with this full name.
    pub fn service(&self, name: &str) -> Option<&RgService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The member with this id.
    pub fn member(&self, id: u32) -> Option<&RgMember> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The state of a service, for callers that only need that.
    pub fn state_of(&self, name: &str) -> Option<ServiceState> {
        self.service(name).map(|s| s.record.state)
    }
}

impl RgService {
    /// A service nobody has touched: `stopped`, no owner, no transition.
    pub fn new(name: &str) -> RgService {
        RgService {
            name: name.to_string(),
            record: ServiceRecord::new(),
            intent: Intent::initial(true),
            last_transition_unix_s: None,
        }
    }

    /// Its flag bits.
    pub fn flags(&self) -> Flags {
        self.record.flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::{Frame, FrameDecoder};
    use proptest::prelude::*;

    type RgFrame = Frame<RgRequest, RgResponse, RgEvent>;

    fn roundtrip(f: &RgFrame) -> RgFrame {
        let bytes = f.encode().unwrap();
        let mut d = FrameDecoder::default();
        d.push(&bytes);
        d.next_frame::<RgRequest, RgResponse, RgEvent>()
            .unwrap()
            .unwrap()
    }

    fn every_request() -> Vec<RgRequest> {
        let action = |request| RgRequest::Action {
            service: "vm:guest1".into(),
            request,
            follow_domain: false,
        };
        vec![
            RgRequest::Status,
            RgRequest::Service {
                name: "vm:guest1".into(),
            },
            action(Request::Enable {
                target: Some(NodeId(2)),
            }),
            action(Request::Enable { target: None }),
            action(Request::Disable),
            action(Request::Stop),
            action(Request::Relocate { target: None }),
            action(Request::Relocate {
                target: Some(NodeId(1)),
            }),
            action(Request::Migrate { target: NodeId(2) }),
            action(Request::Restart),
            action(Request::Freeze),
            action(Request::Unfreeze),
            RgRequest::Lock,
            RgRequest::Unlock,
            RgRequest::QueryLock,
            RgRequest::Convalesce {
                service: "service:web".into(),
            },
        ]
    }

    fn sample_status() -> RgStatus {
        let mut svc = RgService::new("vm:guest1");
        svc.record.state = ServiceState::Started;
        svc.record.owner = Some(NodeId(1));
        svc.record.flags = Flags(Flags::FROZEN);
        svc.last_transition_unix_s = Some(1_227_628_920);
        RgStatus {
            cluster_name: "dom0cluster1".into(),
            cluster_id: 4711,
            generation: 12,
            quorate: true,
            local_node_id: 1,
            locked: false,
            members: vec![RgMember {
                name: "station200".into(),
                id: 1,
                online: true,
                local: true,
                rgmanager: true,
                master: true,
                qdisk: false,
                estranged: false,
            }],
            services: vec![svc],
        }
    }

    #[test]
    fn only_status_queries_are_open_to_every_user() {
        for r in every_request() {
            let want = match r {
                RgRequest::Status | RgRequest::Service { .. } | RgRequest::QueryLock => {
                    Access::Read
                }
                _ => Access::Write,
            };
            assert_eq!(r.access(), want, "{r:?}");
        }
        let write = RgRequest::Action {
            service: "x".into(),
            request: Request::Freeze,
            follow_domain: false,
        };
        assert_eq!(write.access(), Access::Write);
    }

    #[test]
    fn every_request_roundtrips_through_frames() {
        for (id, body) in every_request().into_iter().enumerate() {
            let f = RgFrame::Request {
                id: id as u32 + 1,
                body,
            };
            assert_eq!(roundtrip(&f), f);
        }
    }

    #[test]
    fn responses_and_events_roundtrip_through_frames() {
        let status = sample_status();
        let bodies = vec![
            RgResponse::Status(Box::new(status.clone())),
            RgResponse::Service(Some(Box::new(status.services[0].clone()))),
            RgResponse::Service(None),
            RgResponse::ActionResult {
                code: RG_ERUN,
                owner_after: Some("station200".into()),
            },
            RgResponse::ActionResult {
                code: RG_ESUCCESS,
                owner_after: None,
            },
            RgResponse::Locked(true),
        ];
        for (id, body) in bodies.into_iter().enumerate() {
            let f = RgFrame::Response {
                id: id as u32 + 1,
                body,
            };
            assert_eq!(roundtrip(&f), f);
        }
        let ev = RgFrame::Event {
            seq: 9,
            body: RgEvent::Service(Box::new(status.services[0].clone())),
        };
        assert_eq!(roundtrip(&ev), ev);
    }

    #[test]
    fn result_strings_match_the_original_table() {
        // spec §5.1, result codes
        let table = [
            (0, "Success"),
            (-1, "Failure"),
            (-2, "Aborted; service failed"),
            (-3, "Service not mastered locally"),
            (-4, "Service does not exist"),
            (-5, "Operation would cause a deadlock"),
            (-6, "Temporary failure; try again"),
            (-7, "Operation violates dependency rule"),
            (-8, "Invalid operation for resource"),
            (-9, "Operation requires quorum"),
            (-10, "Service is already running"),
            (-11, "Failure: Service is frozen"),
            (-12, "Target node dead / nonexistent"),
            (-13, "Fencing operation pending; try again later"),
            (-14, "S/Lang Script Error"),
            (-15, "Service not runnable"),
            (-16, "Service not runnable: cannot run exclusive"),
            (-17, "Failed; service running on original owner"),
            (-18, "Permission denied"),
            (-19, "Warning; see system logs"),
        ];
        for (code, s) in table {
            assert_eq!(strerror(code), s, "code {code}");
        }
        assert_eq!(strerror(-20), "Unknown");
        assert_eq!(strerror(1), "Unknown");
    }

    #[test]
    fn core_request_errors_map_to_codes_with_strings() {
        // The engine's refusals must be codes clusvcadm can name.
        use crate::rgmanager::{RequestError, ServiceIndex};
        let errors = [
            RequestError::NoService {
                service: ServiceIndex(0),
            },
            RequestError::NoQuorum,
            RequestError::Frozen,
            RequestError::Busy {
                state: ServiceState::Starting,
            },
            RequestError::Refused {
                state: ServiceState::Failed,
            },
            RequestError::AlreadyRunning { node: NodeId(1) },
            RequestError::Invalid,
            RequestError::NodeDown { node: NodeId(3) },
            RequestError::Dependency,
            RequestError::NowhereToRun,
            RequestError::FencePending,
        ];
        for e in errors {
            assert_ne!(strerror(e.code()), "Unknown", "{e:?}");
        }
    }

    #[test]
    fn bare_names_resolve_as_given_then_service_then_vm() {
        let names = ["service:web", "vm:guest1", "vm:web", "plain"];
        let r = |w: &str| resolve_service(w, names.iter().copied());
        assert_eq!(r("web").as_deref(), Some("service:web"));
        assert_eq!(r("guest1").as_deref(), Some("vm:guest1"));
        assert_eq!(r("vm:web").as_deref(), Some("vm:web"));
        assert_eq!(r("plain").as_deref(), Some("plain"));
        assert_eq!(r("nothing"), None);
        // A name with a colon is never prefixed.
        assert_eq!(r("x:guest1"), None);
    }

    proptest! {
        #[test]
        fn any_action_roundtrips(
            service in "[a-z:]{0,20}",
            kind in 0u8..8,
            target in proptest::option::of(any::<u32>()),
            follow_domain in any::<bool>(),
        ) {
            let t = target.map(NodeId);
            let request = match kind {
                0 => Request::Enable { target: t },
                1 => Request::Disable,
                2 => Request::Stop,
                3 => Request::Relocate { target: t },
                4 => Request::Migrate { target: t.unwrap_or(NodeId(1)) },
                5 => Request::Restart,
                6 => Request::Freeze,
                _ => Request::Unfreeze,
            };
            let f = RgFrame::Request { id: 1, body: RgRequest::Action { service, request, follow_domain } };
            prop_assert_eq!(roundtrip(&f), f);
        }

        #[test]
        fn garbage_never_panics_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut d = FrameDecoder::default();
            d.push(&bytes);
            let _ = d.next_frame::<RgRequest, RgResponse, RgEvent>();
        }
    }
}
