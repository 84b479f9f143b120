//! `cmand`: the membership, quorum and group messaging daemon and its tools.
pub mod codes;
pub mod render;
