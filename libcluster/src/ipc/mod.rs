//! The local API between a daemon and its clients, without the sockets.
//!
//! Daemons (`cmand`, `qdiskd`, `fenced`, `rgmanagerd`) serve a request/response API and an
//! event stream over a unix socket in the runtime directory; tools (`cman_tool`, `clustat`,
//! `clusvcadm`, ...) and other daemons are the clients. This module is the pure half: the
//! frame format with an incremental decoder, the error codes, and the access policy that
//! decides who may change state. `clusterio` carries the same frames over real sockets.
//!
//! ```text
//!  0        4         5      6
//!  +--------+---------+------+--------------------------------------------+
//!  | len LE | version | kind | payload (kind-specific, see FrameKind)     |
//!  +--------+---------+------+--------------------------------------------+
//!  len = number of bytes after the length field (2 + payload), at most MAX_FRAME_LEN
//!
//!  client                                  daemon
//!    | -- Request{id, body} -------------->  |   access check (Peer, ApiRequest::access)
//!    | <------------- Response{id, body} --  |   or Error{id, code, message}
//!    | -- Subscribe{id} ------------------>  |
//!    | <------------------ Subscribed{id} -  |
//!    | <--------------- Event{seq, body} --  |   until either side closes
//! ```
//!
//! There is no handshake: every frame carries its version, and a daemon answers a frame of
//! another version with an `Error` frame (id 0, [`ErrorCode::UNSUPPORTED_VERSION`]) in its
//! own version before closing. The header and the `Error` payload layout are frozen across
//! versions so that answer stays readable. Bodies are postcard; the fixed fields (ids,
//! sequence numbers, codes) are hand-encoded little-endian so a request whose body does not
//! decode can still be answered by id.
//!
//! The daemon-specific request, response and event types are type parameters; a request
//! type says whether it reads or writes through [`ApiRequest`], and [`permits`] applies the
//! policy: reads are open to every local user, writes need root or the configured admin
//! group (`<cman admin_group="NAME">`).

mod access;
pub mod cman;
mod error;
pub mod fence;
mod frame;
pub mod rgmanager;

pub use access::{permits, Access, ApiRequest, Peer};
pub use error::{ErrorCode, ErrorReply, IpcError};
pub use frame::{Frame, FrameDecoder, FrameKind, HEADER_LEN};

/// The protocol version this build speaks and writes into every frame.
pub const IPC_VERSION: u8 = 1;

/// The default upper bound of a frame's length field (bytes after the length field): 1 MiB.
pub const MAX_FRAME_LEN: u32 = 1 << 20;
