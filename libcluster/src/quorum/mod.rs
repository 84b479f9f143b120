//! Filled in by the foundation work on `quorum`.
