//! Filled in by the membership work.
