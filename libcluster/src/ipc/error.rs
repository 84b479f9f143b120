//! What can go wrong with a frame, and the codes a daemon answers errors with.

use super::FrameKind;
use std::fmt;

/// Why a byte stream is not a valid sequence of frames, or a value could not be framed.
///
/// The framing errors ([`IpcError::is_fatal`]) mean the stream can no longer be split into
/// frames: the decoder stops and the connection should be closed. A [`IpcError::Body`]
/// error consumed exactly one frame and the decoder goes on with the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpcError {
    /// The length field announces more than the limit. Nothing of the frame was buffered.
    Oversize {
        /// The announced length (or, when encoding, the length the frame would have had).
        len: u64,
        /// The limit in force.
        max: u32,
    },
    /// The length field is smaller than the version and kind bytes it must cover.
    TooShort {
        /// The announced length.
        len: u32,
    },
    /// The frame was written by a peer speaking another protocol version.
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The version this side speaks.
        supported: u8,
    },
    /// The kind byte names no frame kind this version knows.
    UnknownKind {
        /// The kind byte found.
        kind: u8,
    },
    /// A well-delimited frame whose payload does not decode. The frame was skipped.
    Body {
        /// The kind of the frame.
        kind: FrameKind,
        /// The request id, when the payload was long enough to carry one.
        id: Option<u32>,
        /// What the body codec said.
        reason: String,
    },
    /// A value could not be serialized into a frame body. Nothing was produced.
    Encode {
        /// The kind of frame being built.
        kind: FrameKind,
        /// What the body codec said.
        reason: String,
    },
}

impl IpcError {
    /// Whether the byte stream lost its framing: the connection must be closed.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, IpcError::Body { .. } | IpcError::Encode { .. })
    }
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpcError::Oversize { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
            IpcError::TooShort { len } => {
                write!(
                    f,
                    "frame length {len} is too short to hold a version and a kind"
                )
            }
            IpcError::UnsupportedVersion { found, supported } => write!(
                f,
                "ipc version {found} is not supported (this side speaks version {supported})"
            ),
            IpcError::UnknownKind { kind } => write!(f, "unknown frame kind {kind}"),
            IpcError::Body {
                kind,
                id: Some(id),
                reason,
            } => {
                write!(f, "bad {kind} body (id {id}): {reason}")
            }
            IpcError::Body {
                kind,
                id: None,
                reason,
            } => write!(f, "bad {kind} body: {reason}"),
            IpcError::Encode { kind, reason } => write!(f, "cannot encode {kind} frame: {reason}"),
        }
    }
}

impl std::error::Error for IpcError {}

/// The code of an `Error` frame: why a daemon refused or failed a request.
///
/// A number rather than an enum so that a code added by a newer daemon still decodes.
/// Codes below [`ErrorCode::DAEMON_BASE`] are the generic ones defined here; a daemon's
/// own codes (for example "no such service") start at `DAEMON_BASE`. Codes are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    /// The peer may not make this request (a write by a user outside the admin group).
    pub const DENIED: ErrorCode = ErrorCode(1);
    /// The request did not decode or makes no sense.
    pub const BAD_REQUEST: ErrorCode = ErrorCode(2);
    /// The peer speaks another protocol version; the connection is closed after this.
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(3);
    /// The daemon has too many connections or requests queued; try again later.
    pub const BUSY: ErrorCode = ErrorCode(4);
    /// The daemon is shutting down or its core is gone.
    pub const UNAVAILABLE: ErrorCode = ErrorCode(5);
    /// The daemon failed while handling the request.
    pub const INTERNAL: ErrorCode = ErrorCode(6);
    /// The first code a daemon may define for itself.
    pub const DAEMON_BASE: ErrorCode = ErrorCode(1000);

    /// A short lower-case name for the generic codes, `None` for the others.
    pub fn name(self) -> Option<&'static str> {
        match self {
            ErrorCode::DENIED => Some("permission denied"),
            ErrorCode::BAD_REQUEST => Some("bad request"),
            ErrorCode::UNSUPPORTED_VERSION => Some("unsupported version"),
            ErrorCode::BUSY => Some("daemon busy"),
            ErrorCode::UNAVAILABLE => Some("daemon unavailable"),
            ErrorCode::INTERNAL => Some("internal error"),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "error {}", self.0),
        }
    }
}

/// A daemon's refusal or failure of one request, as it travels in an `Error` frame.
///
/// Cores answer requests with `Result<Resp, ErrorReply>`; the shell turns it into a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// Why, as a number a program can act on.
    pub code: ErrorCode,
    /// Why, for a human: a lower-case sentence without trailing punctuation.
    pub message: String,
}

impl ErrorReply {
    /// A reply with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorReply {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_body_and_encode_errors_leave_the_stream_usable() {
        let body = IpcError::Body {
            kind: FrameKind::Request,
            id: Some(3),
            reason: "x".into(),
        };
        assert!(!body.is_fatal());
        assert!(IpcError::Oversize { len: 9, max: 1 }.is_fatal());
        assert!(IpcError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
        .is_fatal());
        assert!(IpcError::UnknownKind { kind: 99 }.is_fatal());
        assert!(IpcError::TooShort { len: 1 }.is_fatal());
    }

    #[test]
    fn version_error_names_found_and_supported_versions() {
        let text = IpcError::UnsupportedVersion {
            found: 7,
            supported: 1,
        }
        .to_string();
        assert_eq!(
            text,
            "ipc version 7 is not supported (this side speaks version 1)"
        );
    }

    #[test]
    fn daemon_codes_display_as_numbers() {
        assert_eq!(ErrorCode::DENIED.to_string(), "permission denied");
        assert_eq!(ErrorCode(1004).to_string(), "error 1004");
    }
}
