//! rgmanagerd: places and recovers VM services; hypervisor drivers and VM definitions.
//!
//! - [`driver`]: the hypervisor drivers (`qemu` through QMP, `virsh`, `xl`) behind one trait.
//! - [`vmdef`]: VM definitions read from a vm resource's `path` directories (xm-style files
//!   and a plain QEMU format).

pub mod driver;
pub mod resources;
pub mod tools;
pub mod vmdef;
