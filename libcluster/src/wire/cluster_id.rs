//! cman's 16-bit cluster id, derived from the cluster name when `<cman cluster_id=>` is unset.
//!
//! The id goes into every frame header so that two clusters sharing a network (and, by
//! mistake, a key) ignore each other. See spec/cman-qdisk.md §1.6.

/// The cluster id cman derives from a cluster name: start at 0, for each byte
/// `v = (v << 1) + byte`, keep the low 16 bits. `"mycluster"` gives 56756.
///
/// Bytes are taken as unsigned. Cluster names are ASCII in practice; for bytes ≥ 0x80 the C
/// original's result depended on the platform's `char` signedness.
pub fn cluster_id_from_name(name: &str) -> u16 {
    let v = name
        .bytes()
        .fold(0u32, |v, b| v.wrapping_shl(1).wrapping_add(u32::from(b)));
    // Only the low 16 bits survive, and wrapping in u32 leaves those exact.
    (v & 0xFFFF) as u16
}

/// The cluster id cman derives with `<cman hash_cluster_id="yes">`: FNV-1a 32-bit over the
/// name's bytes, folded to 16 bits as `(h >> 16) ^ (h & 0xFFFF)`.
pub fn cluster_id_from_name_fnv(name: &str) -> u16 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let h = name
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u32::from(b)).wrapping_mul(PRIME));
    ((h >> 16) ^ (h & 0xFFFF)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mycluster_is_56756_as_in_the_spec() {
        assert_eq!(cluster_id_from_name("mycluster"), 56756);
    }

    #[test]
    fn sum_and_shift_matches_a_hand_computation() {
        assert_eq!(cluster_id_from_name(""), 0);
        assert_eq!(cluster_id_from_name("a"), 97);
        assert_eq!(cluster_id_from_name("ab"), 97 * 2 + 98);
        // A byte 16 or more places from the end is shifted out of the low 16 bits, so long
        // names that differ only there share an id (and computing it does not overflow).
        let tail = "z".repeat(100);
        assert_eq!(
            cluster_id_from_name(&format!("a{tail}")),
            cluster_id_from_name(&format!("b{tail}"))
        );
        assert_ne!(
            cluster_id_from_name("a0123456789abcd"),
            cluster_id_from_name("b0123456789abcd")
        );
    }

    #[test]
    fn fnv_variant_matches_a_hand_computation() {
        assert_eq!(cluster_id_from_name_fnv(""), (0x811c ^ 0x9dc5) as u16);
        // FNV-1a("a") = 0xe40c292c.
        assert_eq!(cluster_id_from_name_fnv("a"), (0xe40c ^ 0x292c) as u16);
        assert_eq!(cluster_id_from_name_fnv("mycluster"), 65461);
    }
}
