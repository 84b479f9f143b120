//! The I/O half shared by the daemon shells.
