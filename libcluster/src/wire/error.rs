//! Why a received frame was dropped.

use std::fmt;
use std::ops::RangeInclusive;

/// Why [`open`](super::open) or [`body::decode`](super::body::decode) refused a frame.
///
/// Every variant means the same thing for the receiver's state: **the frame is dropped and no
/// state changed.** Daemons count drops per reason with [`WireError::counter_name`] (shown by
/// `cman_tool status`) and log the Display text at `debug`.
///
/// The variants are listed in the order `open` checks them, from the outside in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The datagram is shorter than a header plus a MAC (64 bytes). The frame is dropped; no
    /// state changed.
    Short {
        /// Bytes received.
        len: usize,
    },
    /// The datagram is longer than [`MAX_FRAME_LEN`](super::MAX_FRAME_LEN), or a body given to
    /// [`try_seal`](super::try_seal) would make it so. The frame is dropped; no state changed.
    TooLarge {
        /// Bytes received (or the frame length a seal would have produced).
        len: usize,
        /// The largest frame accepted.
        max: usize,
    },
    /// The first four bytes are not the magic of the protocol family this socket serves. The
    /// frame is dropped; no state changed.
    BadMagic {
        /// The magic in the frame.
        found: [u8; 4],
        /// The magic the receiver expected.
        expected: [u8; 4],
    },
    /// The frame's format version is outside the range this build understands. The frame is
    /// dropped; no state changed.
    Version {
        /// The version byte in the frame.
        found: u8,
        /// The versions this build accepts.
        supported: RangeInclusive<u8>,
    },
    /// The flags field is not zero; no flags are defined yet. The frame is dropped; no state
    /// changed.
    Flags {
        /// The flags in the frame.
        found: u16,
    },
    /// The reserved header field is not zero. The frame is dropped; no state changed.
    Reserved {
        /// The reserved field in the frame.
        found: u16,
    },
    /// The body length in the header disagrees with the bytes present between header and MAC
    /// (a truncated or padded datagram). The frame is dropped; no state changed.
    Length {
        /// The body length the header declares.
        declared: u32,
        /// The body bytes actually present.
        present: usize,
    },
    /// The crc32 over header and body does not match: the frame was corrupted in transit. The
    /// frame is dropped; no state changed.
    Checksum {
        /// The checksum carried in the header.
        want: u32,
        /// The checksum computed over what arrived.
        got: u32,
    },
    /// The HMAC does not verify with our cluster key: the sender does not hold the key, or the
    /// frame was forged. The frame is dropped; no state changed.
    BadMac,
    /// The frame is authentic but belongs to another cluster id (two clusters sharing a key and
    /// a network). The frame is dropped; no state changed.
    ForeignCluster {
        /// The cluster id in the frame.
        found: u16,
        /// Our cluster id.
        expected: u16,
    },
    /// The body could not be decoded as the expected message type, or had bytes left over.
    /// The frame is dropped; no state changed.
    Body(String),
}

/// Counter names in check order, one per variant; see [`WireError::counter_name`].
const COUNTER_NAMES: &[&str] = &[
    "short",
    "too_large",
    "bad_magic",
    "version",
    "flags",
    "reserved",
    "length",
    "checksum",
    "bad_mac",
    "foreign_cluster",
    "body",
];

impl WireError {
    /// A stable snake_case name for this reason, for per-reason drop counters
    /// (`cman_tool status` prints them). Names never change once released.
    pub fn counter_name(&self) -> &'static str {
        match self {
            WireError::Short { .. } => "short",
            WireError::TooLarge { .. } => "too_large",
            WireError::BadMagic { .. } => "bad_magic",
            WireError::Version { .. } => "version",
            WireError::Flags { .. } => "flags",
            WireError::Reserved { .. } => "reserved",
            WireError::Length { .. } => "length",
            WireError::Checksum { .. } => "checksum",
            WireError::BadMac => "bad_mac",
            WireError::ForeignCluster { .. } => "foreign_cluster",
            WireError::Body(_) => "body",
        }
    }

    /// Every counter name [`counter_name`](Self::counter_name) can return, in the order the
    /// checks run, so a daemon can show all counters (zeros included) in a fixed order.
    pub fn counter_names() -> &'static [&'static str] {
        COUNTER_NAMES
    }
}

/// Shows a magic as text when it is printable ASCII, as hex otherwise.
struct MagicDisplay<'a>(&'a [u8; 4]);

impl fmt::Display for MagicDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| b.is_ascii_graphic()) {
            f.write_str("\"")?;
            for &b in self.0 {
                write!(f, "{}", char::from(b))?;
            }
            f.write_str("\"")
        } else {
            f.write_str("0x")?;
            for b in self.0 {
                write!(f, "{b:02x}")?;
            }
            Ok(())
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Short { len } => {
                write!(
                    f,
                    "frame too short: {len} bytes, need at least {}",
                    super::MIN_FRAME_LEN
                )
            }
            WireError::TooLarge { len, max } => {
                write!(f, "frame too large: {len} bytes, at most {max} allowed")
            }
            WireError::BadMagic { found, expected } => write!(
                f,
                "bad magic {}, expected {}",
                MagicDisplay(found),
                MagicDisplay(expected)
            ),
            WireError::Version { found, supported } => write!(
                f,
                "unsupported frame version {found}, this build speaks {}..={}",
                supported.start(),
                supported.end()
            ),
            WireError::Flags { found } => {
                write!(f, "unknown frame flags {found:#06x}, none are defined")
            }
            WireError::Reserved { found } => {
                write!(f, "reserved header field is {found:#06x}, must be zero")
            }
            WireError::Length { declared, present } => write!(
                f,
                "body length mismatch: header says {declared} bytes, {present} present"
            ),
            WireError::Checksum { want, got } => {
                write!(
                    f,
                    "checksum mismatch: header has {want:#010x}, computed {got:#010x}"
                )
            }
            WireError::BadMac => f.write_str("message authentication failed (wrong cluster key?)"),
            WireError::ForeignCluster { found, expected } => {
                write!(f, "frame from cluster id {found}, ours is {expected}")
            }
            WireError::Body(reason) => write!(f, "undecodable body: {reason}"),
        }
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<WireError> {
        vec![
            WireError::Short { len: 3 },
            WireError::TooLarge {
                len: 70_000,
                max: 65_536,
            },
            WireError::BadMagic {
                found: *b"RCG1",
                expected: *b"RCM1",
            },
            WireError::Version {
                found: 9,
                supported: 1..=1,
            },
            WireError::Flags { found: 1 },
            WireError::Reserved { found: 2 },
            WireError::Length {
                declared: 10,
                present: 9,
            },
            WireError::Checksum { want: 1, got: 2 },
            WireError::BadMac,
            WireError::ForeignCluster {
                found: 1,
                expected: 2,
            },
            WireError::Body("x".into()),
        ]
    }

    #[test]
    fn counter_names_list_every_variant_once_in_check_order() {
        let names: Vec<&str> = one_of_each().iter().map(WireError::counter_name).collect();
        assert_eq!(names, WireError::counter_names());
    }

    #[test]
    fn display_is_lower_case_and_unpunctuated() {
        for e in one_of_each() {
            let text = e.to_string();
            let first = text.chars().next().unwrap();
            assert!(first.is_lowercase(), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
    }

    #[test]
    fn magic_is_shown_as_text_or_hex() {
        let e = WireError::BadMagic {
            found: [0, 1, 2, 0xff],
            expected: *b"RCM1",
        };
        assert_eq!(e.to_string(), "bad magic 0x000102ff, expected \"RCM1\"");
    }
}
