//! The daemon's contact with the operating system: sockets, files, name resolution,
//! scheduling. Nothing here knows the membership protocol.

pub mod history;
pub mod hosts;
pub mod incarnation;
pub mod realtime;
pub mod udp;
