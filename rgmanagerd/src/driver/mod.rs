//! Hypervisor drivers behind one trait.
