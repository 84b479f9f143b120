//! The authenticated datagram envelope of our own protocols, its body codec and key files.
//!
//! ```text
//!  0      4   5    6       8          12         14     16       20            28      32
//!  +------+---+----+-------+----------+----------+------+--------+-------------+-------+
//!  |magic |ver|kind| flags | body len |cluster id| rsvd | sender | incarnation | crc32 |
//!  +------+---+----+-------+----------+----------+------+--------+-------------+-------+
//!  | body: postcard, `body len` bytes                       ...                         |
//!  +------------------------------------------------------------------------------------+
//!  | HMAC-SHA-256(cluster key, bytes 0..32 ++ body), 32 bytes                            |
//!  +------------------------------------------------------------------------------------+
//! ```
//!
//! All integers are little-endian at fixed offsets; the crc32 covers bytes `0..28` and the
//! body. `docs/wire.md` is the full description. Receiving runs from the outside in:
//!
//! ```text
//!  bytes --len--> magic --> version --> flags/reserved --> length --> crc32 --> MAC --> cluster id
//!    |     |        |          |              |              |          |        |         |
//!  Short TooLarge BadMagic  Version     Flags/Reserved     Length   Checksum  BadMac  ForeignCluster
//!                                                                                           |
//!                                            Opened { header, body } --> body::decode --> Body
//! ```
//!
//! Every failure is a [`WireError`]: the frame is dropped and no state changes (invariant
//! S1: unauthenticated or malformed traffic changes nothing and crashes nothing). `open` and
//! `body::decode` never panic, whatever the bytes (property tests and the `wire_open` fuzz
//! target check this).
//!
//! Like the original cman, the frame carries the 16-bit cluster id ([`cluster_id_from_name`]);
//! unlike it, every frame is authenticated with HMAC-SHA-256 over a key file
//! ([`ClusterKey::load`]) rather than totem's encryption. Byte-exact external formats (qdisk
//! blocks, fence_xvm packets) do not use this envelope.
//!
//! ```
//! use libcluster::wire::{self, ClusterKey, Header, MAGIC_MEMBERSHIP};
//! use libcluster::NodeId;
//!
//! let key = ClusterKey::from_bytes(b"an example key, 29 bytes long".to_vec()).unwrap();
//! let cluster_id = wire::cluster_id_from_name("mycluster");
//! let h = Header::new(MAGIC_MEMBERSHIP, 1, cluster_id, NodeId(2), 7);
//! let frame = wire::seal(&h, &wire::body::encode(&(42u64, "hello")), &key);
//!
//! let opened = wire::open(&frame, MAGIC_MEMBERSHIP, cluster_id, &key).unwrap();
//! assert_eq!(opened.header.sender, NodeId(2));
//! let (n, s): (u64, &str) = wire::body::decode(opened.body).unwrap();
//! assert_eq!((n, s), (42, "hello"));
//! ```

pub mod body;
mod cluster_id;
mod error;
mod frame;
mod key;

pub use cluster_id::{cluster_id_from_name, cluster_id_from_name_fnv};
pub use error::WireError;
pub use frame::{
    open, seal, supported_versions, try_seal, Header, Opened, HEADER_LEN, MAC_LEN, MAX_BODY_LEN,
    MAX_FRAME_LEN, MIN_FRAME_LEN, VERSION_MAX, VERSION_MIN,
};
pub use key::{write_key_file, ClusterKey, KeyError, KEY_LEN_GENERATED, KEY_LEN_MAX, KEY_LEN_MIN};

/// Magic of cmand's membership protocol (heartbeats, view agreement). The trailing `1` is
/// part of the name, not the version: versions live in the version byte.
pub const MAGIC_MEMBERSHIP: [u8; 4] = *b"RCM1";
/// Magic of cmand's ordered group messaging (the CPG-like layer fenced and rgmanagerd use).
pub const MAGIC_GROUP: [u8; 4] = *b"RCG1";
