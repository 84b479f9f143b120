//! `apcsim`: an APC MasterSwitch / Rack PDU that the real `fence_apc` can fence through.
//!
//! The lab's nodes are powered through a simulated switch: `fence_apc` (Debian fence-agents,
//! driving `/usr/bin/telnet`) logs in over TCP on loopback, walks the menus and turns outlets
//! off and on; each change is saved to a state file and reported to a hook that kills or
//! starts a node's processes. Layers, outside in:
//!
//! - [`server`]: TCP listener, one thread per connection, the shared [`SwitchModel`], the
//!   state file, the hook (in order, before the client sees the answer), the reboot timer;
//!   [`hook`] runs the `--hook` command.
//! - [`session`]: the pure, sans-IO dialog of one connection: [`ApcSession::new`] gives the
//!   first bytes, [`ApcSession::input`] turns received bytes into bytes to send and
//!   [`OutletAction`]s (already applied to the model).
//! - [`telnet`]: option negotiation (WILL ECHO/SGA, BINARY accepted, all else refused).
//! - [`menu`] (AOS v3 menus, the default) and [`cli`] (AOS v6 command line).
//!
//! The dialog of a v3 session (ESC goes up one level, Ctrl-C to the Control Console from
//! anywhere, Enter alone redraws; every menu screen ends in the prompt `\r\n> `):
//!
//! ```text
//!  User Name : --login--> Password  : --ok--> banner (AOS v3.5.7) + Control Console
//!      ^                       |                                 |  1- Device Manager
//!      +------- wrong ---------+ (3rd failure: hang up)          |  4- Logout --> Bye, close
//!                                                                v
//!  Device Manager --2--> Outlet Management --1--> Outlet Control/Configuration
//!                        (2- Outlet Restriction)   "     N- <name>   ON|OFF" per outlet
//!                                                  [Press <ENTER> to continue... if paging]
//!                                                              | N
//!                                                              v
//!  Outlet N --1--> Control Outlet --1|2|3--> Enter 'YES' to continue or <ENTER> to cancel :
//!                  1- Immediate On              | YES                 | else
//!                  2- Immediate Off             v                     v
//!                  3- Immediate Reboot     Command successfully   Control Outlet
//!                                          issued. Press <ENTER> to continue... --> Control Outlet
//! ```
//!
//! A v6 session answers `olStatus all`, `olOn N`, `olOff N`, `olReboot N` at the prompt
//! `apc>`. See docs/apcsim.md for what was verified against Debian's fence_apc.

pub mod cli;
pub mod hook;
pub mod menu;
pub mod model;
pub mod server;
pub mod session;
pub mod telnet;

#[cfg(test)]
mod dialog_tests;

pub use hook::{run_hook_command, HookOutcome};
pub use model::{ApcError, Command, Firmware, Outlet, OutletAction, Power, SwitchModel};
pub use server::{
    load_state_file, serve, spawn, write_state_file, ApcServer, PowerChange, ServerConfig,
};
pub use session::ApcSession;
