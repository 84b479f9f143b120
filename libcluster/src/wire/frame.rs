//! The envelope: a fixed 32-byte header, the body, a 32-byte HMAC-SHA-256.
//!
//! Every field is hand-encoded little-endian at a fixed offset, so a receiver can check the
//! version and the integrity of a frame without ever touching the body codec. The byte layout
//! is documented in `docs/wire.md`; the offsets below are the single source of truth in code.

use super::error::WireError;
use super::key::ClusterKey;
use crate::NodeId;
use hmac::Mac;
use std::ops::RangeInclusive;

/// Oldest frame version this build accepts.
pub const VERSION_MIN: u8 = 1;
/// Newest frame version this build accepts, and the one [`Header::new`] writes.
pub const VERSION_MAX: u8 = 1;
/// Length of the fixed header, bytes `0..32`.
pub const HEADER_LEN: usize = 32;
/// Length of the HMAC-SHA-256 tag that ends every frame.
pub const MAC_LEN: usize = 32;
/// The shortest frame: a header, an empty body and the tag.
pub const MIN_FRAME_LEN: usize = HEADER_LEN + MAC_LEN;
/// The longest frame accepted or sealed: the largest UDP payload over IPv4, so any frame that
/// seals can be sent as one datagram (a 64 KiB receive buffer always holds it).
pub const MAX_FRAME_LEN: usize = 65_507;
/// The longest body that fits in a frame.
pub const MAX_BODY_LEN: usize = MAX_FRAME_LEN - MIN_FRAME_LEN;

// Field offsets. Bytes CRC_START..HEADER_LEN hold the crc32, which covers bytes 0..CRC_START
// and the body.
const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 4;
const OFF_KIND: usize = 5;
const OFF_FLAGS: usize = 6;
const OFF_BODY_LEN: usize = 8;
const OFF_CLUSTER_ID: usize = 12;
const OFF_RESERVED: usize = 14;
const OFF_SENDER: usize = 16;
const OFF_INCARNATION: usize = 20;
const OFF_CRC: usize = 28;

/// What the envelope says about a frame: who sent it, for which cluster, which message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Protocol family, e.g. [`MAGIC_MEMBERSHIP`](super::MAGIC_MEMBERSHIP).
    pub magic: [u8; 4],
    /// Frame format version; [`open`] accepts [`VERSION_MIN`]`..=`[`VERSION_MAX`].
    pub version: u8,
    /// Message kind. Each protocol owns its numbering, append-only: never reuse a number.
    pub kind: u8,
    /// cman's 16-bit cluster id (see [`cluster_id_from_name`](super::cluster_id_from_name)).
    pub cluster_id: u16,
    /// The node that sealed the frame.
    pub sender: NodeId,
    /// The sender's incarnation: a new value at every daemon start, so peers can tell a
    /// restarted node from one that was only cut off.
    pub incarnation: u64,
}

impl Header {
    /// A header of the current version ([`VERSION_MAX`]).
    pub fn new(
        magic: [u8; 4],
        kind: u8,
        cluster_id: u16,
        sender: NodeId,
        incarnation: u64,
    ) -> Header {
        Header {
            magic,
            version: VERSION_MAX,
            kind,
            cluster_id,
            sender,
            incarnation,
        }
    }
}

/// A frame that passed every envelope check. The body is still undecoded: decode it with
/// [`body::decode`](super::body::decode) (or [`Opened::decode`]) as the type `header.kind` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The authenticated header.
    pub header: Header,
    /// The authenticated body bytes.
    pub body: &'a [u8],
}

impl<'a> Opened<'a> {
    /// Decodes the body as `T`; shorthand for [`body::decode`](super::body::decode)`(self.body)`.
    pub fn decode<T: serde::Deserialize<'a>>(&self) -> Result<T, WireError> {
        super::body::decode(self.body)
    }
}

/// The versions [`open`] accepts.
pub fn supported_versions() -> RangeInclusive<u8> {
    VERSION_MIN..=VERSION_MAX
}

/// Seals `body` into a frame: header, body, HMAC-SHA-256 with `key` over both.
///
/// The version written is `h.version` as given (normally [`VERSION_MAX`], see [`Header::new`]).
/// A body longer than [`MAX_BODY_LEN`] still produces a frame, but every receiver drops it as
/// [`WireError::TooLarge`]; use [`try_seal`] where the body size is not bounded by design.
pub fn seal(h: &Header, body: &[u8], key: &ClusterKey) -> Vec<u8> {
    // A body too long for the u32 field is also far over MAX_FRAME_LEN, so saturating keeps
    // the frame one that receivers reject rather than one that parses wrongly.
    let body_len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(MIN_FRAME_LEN.saturating_add(body.len()));
    frame.extend_from_slice(&h.magic);
    frame.push(h.version);
    frame.push(h.kind);
    frame.extend_from_slice(&0u16.to_le_bytes()); // flags: none defined
    frame.extend_from_slice(&body_len.to_le_bytes());
    frame.extend_from_slice(&h.cluster_id.to_le_bytes());
    frame.extend_from_slice(&0u16.to_le_bytes()); // reserved
    frame.extend_from_slice(&h.sender.0.to_le_bytes());
    frame.extend_from_slice(&h.incarnation.to_le_bytes());
    debug_assert_eq!(frame.len(), OFF_CRC);
    let crc = checksum(&frame, body);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame.extend_from_slice(body);
    let mut mac = key.mac();
    mac.update(&frame);
    frame.extend_from_slice(&mac.finalize().into_bytes());
    frame
}

/// Like [`seal`], but refuses a body that would make the frame longer than [`MAX_FRAME_LEN`].
pub fn try_seal(h: &Header, body: &[u8], key: &ClusterKey) -> Result<Vec<u8>, WireError> {
    if body.len() > MAX_BODY_LEN {
        let len = body.len().saturating_add(MIN_FRAME_LEN);
        return Err(WireError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    Ok(seal(h, body, key))
}

/// Checks a received frame from the outside in and returns its header and body.
///
/// Order: length within [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`], magic equal to `expect_magic`,
/// version supported, flags and reserved zero, body length field equal to the bytes present,
/// crc32, HMAC (constant-time), and last the cluster id equal to `cluster_id`. The body is not
/// decoded here. Never panics, whatever the bytes.
pub fn open<'a>(
    frame: &'a [u8],
    expect_magic: [u8; 4],
    cluster_id: u16,
    key: &ClusterKey,
) -> Result<Opened<'a>, WireError> {
    let len = frame.len();
    if len < MIN_FRAME_LEN {
        return Err(WireError::Short { len });
    }
    if len > MAX_FRAME_LEN {
        return Err(WireError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let (head, rest) = frame
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(WireError::Short { len })?;
    let (body, tag) = rest
        .split_last_chunk::<MAC_LEN>()
        .ok_or(WireError::Short { len })?;

    let magic = array4(head, OFF_MAGIC);
    if magic != expect_magic {
        return Err(WireError::BadMagic {
            found: magic,
            expected: expect_magic,
        });
    }
    let version = head[OFF_VERSION];
    if !supported_versions().contains(&version) {
        return Err(WireError::Version {
            found: version,
            supported: supported_versions(),
        });
    }
    let flags = u16_at(head, OFF_FLAGS);
    if flags != 0 {
        return Err(WireError::Flags { found: flags });
    }
    let reserved = u16_at(head, OFF_RESERVED);
    if reserved != 0 {
        return Err(WireError::Reserved { found: reserved });
    }
    let declared = u32_at(head, OFF_BODY_LEN);
    if usize::try_from(declared).ok() != Some(body.len()) {
        return Err(WireError::Length {
            declared,
            present: body.len(),
        });
    }
    let want = u32_at(head, OFF_CRC);
    let got = checksum(&head[..OFF_CRC], body);
    if want != got {
        return Err(WireError::Checksum { want, got });
    }
    let mut mac = key.mac();
    mac.update(head);
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(tag).map_err(|_| WireError::BadMac)?;

    let header = Header {
        magic,
        version,
        kind: head[OFF_KIND],
        cluster_id: u16_at(head, OFF_CLUSTER_ID),
        sender: NodeId(u32_at(head, OFF_SENDER)),
        incarnation: u64_at(head, OFF_INCARNATION),
    };
    if header.cluster_id != cluster_id {
        return Err(WireError::ForeignCluster {
            found: header.cluster_id,
            expected: cluster_id,
        });
    }
    Ok(Opened { header, body })
}

fn checksum(head: &[u8], body: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(head);
    crc.update(body);
    crc.finalize()
}

// The readers below take the fixed-size header, and every offset is a constant below
// HEADER_LEN, so none of them can index out of bounds.
fn array4(h: &[u8; HEADER_LEN], at: usize) -> [u8; 4] {
    [h[at], h[at + 1], h[at + 2], h[at + 3]]
}

fn u16_at(h: &[u8; HEADER_LEN], at: usize) -> u16 {
    u16::from_le_bytes([h[at], h[at + 1]])
}

fn u32_at(h: &[u8; HEADER_LEN], at: usize) -> u32 {
    u32::from_le_bytes(array4(h, at))
}

fn u64_at(h: &[u8; HEADER_LEN], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: [u8; 4] = *b"TST1";

    fn key() -> ClusterKey {
        ClusterKey::from_bytes(b"unit-test key, not secret".to_vec()).unwrap()
    }

    fn header() -> Header {
        Header::new(MAGIC, 7, 0x1234, NodeId(0xAABBCCDD), 0x0102030405060708)
    }

    #[test]
    fn header_fields_sit_at_their_documented_offsets() {
        let f = seal(&header(), b"abc", &key());
        assert_eq!(f.len(), HEADER_LEN + 3 + MAC_LEN);
        assert_eq!(&f[0..4], b"TST1");
        assert_eq!(f[4], 1);
        assert_eq!(f[5], 7);
        assert_eq!(&f[6..8], &[0, 0]);
        assert_eq!(&f[8..12], &[3, 0, 0, 0]);
        assert_eq!(&f[12..14], &[0x34, 0x12]);
        assert_eq!(&f[14..16], &[0, 0]);
        assert_eq!(&f[16..20], &[0xDD, 0xCC, 0xBB, 0xAA]);
        assert_eq!(&f[20..28], &[8, 7, 6, 5, 4, 3, 2, 1]);
        let crc = crc32fast::hash(&[&f[0..28], b"abc"].concat());
        assert_eq!(&f[28..32], &crc.to_le_bytes());
        assert_eq!(&f[32..35], b"abc");
    }

    #[test]
    fn open_returns_what_seal_was_given() {
        let f = seal(&header(), b"hello", &key());
        let o = open(&f, MAGIC, 0x1234, &key()).unwrap();
        assert_eq!(o.header, header());
        assert_eq!(o.body, b"hello");
    }

    #[test]
    fn empty_body_is_a_minimal_frame() {
        let f = seal(&header(), b"", &key());
        assert_eq!(f.len(), MIN_FRAME_LEN);
        assert_eq!(open(&f, MAGIC, 0x1234, &key()).unwrap().body, b"");
    }

    #[test]
    fn short_frames_are_refused_before_anything_else() {
        for len in 0..MIN_FRAME_LEN {
            let f = vec![0xFFu8; len];
            assert_eq!(open(&f, MAGIC, 0, &key()), Err(WireError::Short { len }));
        }
    }

    #[test]
    fn oversized_frames_are_refused() {
        let f = vec![0u8; MAX_FRAME_LEN + 1];
        assert_eq!(
            open(&f, MAGIC, 0, &key()),
            Err(WireError::TooLarge {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            })
        );
    }

    #[test]
    fn largest_body_seals_and_opens_one_more_byte_does_not() {
        let body = vec![0x5Au8; MAX_BODY_LEN];
        let f = try_seal(&header(), &body, &key()).unwrap();
        assert_eq!(f.len(), MAX_FRAME_LEN);
        assert!(open(&f, MAGIC, 0x1234, &key()).is_ok());
        let body = vec![0x5Au8; MAX_BODY_LEN + 1];
        assert!(matches!(
            try_seal(&header(), &body, &key()),
            Err(WireError::TooLarge { .. })
        ));
        let f = seal(&header(), &body, &key());
        assert!(matches!(
            open(&f, MAGIC, 0x1234, &key()),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn other_protocol_family_is_bad_magic() {
        let f = seal(&header(), b"", &key());
        assert_eq!(
            open(&f, *b"RCM1", 0x1234, &key()),
            Err(WireError::BadMagic {
                found: MAGIC,
                expected: *b"RCM1"
            })
        );
    }

    #[test]
    fn versions_outside_the_range_are_refused_even_when_authentic() {
        for v in [0u8, VERSION_MAX + 1, 255] {
            let h = Header {
                version: v,
                ..header()
            };
            let f = seal(&h, b"x", &key());
            assert_eq!(
                open(&f, MAGIC, 0x1234, &key()),
                Err(WireError::Version {
                    found: v,
                    supported: 1..=1
                })
            );
        }
    }

    /// Rewrites a header field of a sealed frame and fixes the crc and MAC, so only the
    /// field check itself can refuse the frame.
    fn reseal_with(mut f: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
        f[at..at + bytes.len()].copy_from_slice(bytes);
        let body_end = f.len() - MAC_LEN;
        let crc = checksum(&f[..OFF_CRC], &f[HEADER_LEN..body_end]);
        f[OFF_CRC..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        let mut mac = key().mac();
        mac.update(&f[..body_end]);
        let tag = mac.finalize().into_bytes();
        f[body_end..].copy_from_slice(&tag);
        f
    }

    #[test]
    fn nonzero_flags_are_refused_even_when_authentic() {
        let f = reseal_with(seal(&header(), b"x", &key()), OFF_FLAGS, &[1, 0]);
        assert_eq!(
            open(&f, MAGIC, 0x1234, &key()),
            Err(WireError::Flags { found: 1 })
        );
    }

    #[test]
    fn nonzero_reserved_is_refused_even_when_authentic() {
        let f = reseal_with(seal(&header(), b"x", &key()), OFF_RESERVED, &[0, 0x80]);
        assert_eq!(
            open(&f, MAGIC, 0x1234, &key()),
            Err(WireError::Reserved { found: 0x8000 })
        );
    }

    #[test]
    fn lying_length_field_is_refused_even_when_authentic() {
        let f = reseal_with(seal(&header(), b"xyz", &key()), OFF_BODY_LEN, &[2, 0, 0, 0]);
        assert_eq!(
            open(&f, MAGIC, 0x1234, &key()),
            Err(WireError::Length {
                declared: 2,
                present: 3
            })
        );
    }

    #[test]
    fn corrupted_body_is_a_checksum_error_and_forged_crc_a_mac_error() {
        let mut f = seal(&header(), b"payload", &key());
        f[HEADER_LEN] ^= 0x01;
        assert!(matches!(
            open(&f, MAGIC, 0x1234, &key()),
            Err(WireError::Checksum { .. })
        ));
        // An attacker without the key can fix the crc, but not the MAC.
        let body_end = f.len() - MAC_LEN;
        let crc = checksum(&f[..OFF_CRC], &f[HEADER_LEN..body_end]);
        f[OFF_CRC..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(open(&f, MAGIC, 0x1234, &key()), Err(WireError::BadMac));
    }

    #[test]
    fn wrong_key_is_bad_mac() {
        let other = ClusterKey::from_bytes(b"another cluster's key".to_vec()).unwrap();
        let f = seal(&header(), b"hi", &other);
        assert_eq!(open(&f, MAGIC, 0x1234, &key()), Err(WireError::BadMac));
    }

    #[test]
    fn authentic_frame_of_another_cluster_is_foreign() {
        let f = seal(&header(), b"hi", &key());
        assert_eq!(
            open(&f, MAGIC, 0x4321, &key()),
            Err(WireError::ForeignCluster {
                found: 0x1234,
                expected: 0x4321
            })
        );
    }

    #[test]
    fn opened_decode_reads_the_body() {
        let f = seal(&header(), &super::super::body::encode(&(7u32, "x")), &key());
        let o = open(&f, MAGIC, 0x1234, &key()).unwrap();
        assert_eq!(o.decode::<(u32, String)>().unwrap(), (7, "x".to_string()));
    }
}
