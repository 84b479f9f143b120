//! The body codec: postcard behind two functions, so it can be replaced in one place.
//!
//! postcard is a specified, stable format (varint integers, length-prefixed sequences, enum
//! variants by index). Consequences for message types: fields are matched by position, so
//! add new fields only at the end of a struct *and* bump the frame version, and never reorder
//! enum variants. `decode` refuses trailing bytes, so a body means exactly one value.

use super::error::WireError;
use serde::{Deserialize, Serialize};

/// Encodes `v` as a frame body.
///
/// # Panics
///
/// Only if `T`'s `Serialize` impl cannot be expressed in postcard (a sequence of unknown
/// length, or an impl that returns an error). That is a bug in the message type, found by
/// the first test that encodes it, never something a peer can cause. Use [`try_encode`] to
/// get the error instead.
pub fn encode<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    match try_encode(v) {
        Ok(bytes) => bytes,
        Err(e) => panic!("message type cannot be encoded as a frame body: {e}"),
    }
}

/// Encodes `v` as a frame body, returning [`WireError::Body`] if its `Serialize` impl fails.
pub fn try_encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, WireError> {
    postcard::to_allocvec(v).map_err(|e| WireError::Body(e.to_string()))
}

/// Decodes a frame body as exactly one `T`.
///
/// Bytes left over after the value are an error ([`WireError::Body`]): a body that means more
/// than it says is not accepted. Never panics, whatever the bytes.
pub fn decode<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, WireError> {
    let (v, rest) = postcard::take_from_bytes(b).map_err(|e| WireError::Body(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Body(format!(
            "{} trailing bytes after the message",
            rest.len()
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Beat {
            from: NodeId,
            seq: u64,
            hears: Vec<NodeId>,
        },
        Text(String),
        Map(BTreeMap<u32, bool>),
    }

    #[test]
    fn roundtrip_of_an_enum_message() {
        for m in [
            Msg::Beat {
                from: NodeId(3),
                seq: u64::MAX,
                hears: vec![NodeId(1), NodeId(2)],
            },
            Msg::Text("vm:guest1".into()),
            Msg::Map([(1, true), (9, false)].into_iter().collect()),
        ] {
            assert_eq!(decode::<Msg>(&encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn borrowed_strings_decode_without_copying() {
        let b = encode("node1");
        let s: &str = decode(&b).unwrap();
        assert_eq!(s, "node1");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = encode(&7u32);
        b.push(0);
        assert_eq!(
            decode::<u32>(&b),
            Err(WireError::Body("1 trailing bytes after the message".into()))
        );
    }

    #[test]
    fn truncated_body_is_refused() {
        let b = encode(&Msg::Text("hello".into()));
        assert!(matches!(
            decode::<Msg>(&b[..b.len() - 1]),
            Err(WireError::Body(_))
        ));
        assert!(matches!(decode::<Msg>(&[]), Err(WireError::Body(_))));
    }

    #[test]
    fn unknown_enum_variant_is_refused() {
        assert!(matches!(decode::<Msg>(&[9]), Err(WireError::Body(_))));
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating_it() {
        // Sequence length u32::MAX as a varint, then nothing.
        let b = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
        assert!(matches!(decode::<Vec<u64>>(&b), Err(WireError::Body(_))));
    }
}
