//! AOS v3 menu screens: what each shows and where each choice leads.
//!
//! Texts contain every substring fence_apc (C3 and modern) looks for, and the section titles
//! the legacy telnetlib agent searched; the rest of the wording is ours (no real screen dump
//! was available, spec/fencing.md §6). Each screen ends in the prompt `\r\n> `, and `\n>`
//! occurs nowhere else, because the agent takes it for the prompt wherever it appears.

use super::model::{Command, OutletAction, Power, SwitchModel};

/// The screen a menu-mode session is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// Control Console: 1- Device Manager ... 4- Logout.
    Console,
    /// Device Manager: 2- Outlet Management.
    DeviceManager,
    /// Outlet Management: 1- Outlet Control/Configuration, 2- Outlet Restriction.
    OutletManagement,
    /// The outlet list; `next` is the index of the first outlet not shown yet while a
    /// `Press <ENTER> to continue...` page break waits.
    OutletList {
        /// First outlet index still to show, when paging.
        next: Option<usize>,
    },
    /// One outlet: 1- Control Outlet.
    Outlet(u32),
    /// Control Outlet: 1- Immediate On, 2- Immediate Off, 3- Immediate Reboot.
    ControlOutlet(u32),
    /// `Enter 'YES' to continue or <ENTER> to cancel :` for a command.
    Confirm(u32, Command),
    /// `Press <ENTER> to continue...` after a command was issued.
    Done(u32),
}

/// What an Enter on a screen asks of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MenuOutcome {
    /// Stay logged in.
    Stay,
    /// Log out and close the connection.
    Logout,
}

const WIDTH: usize = 79;
const BACK: &str = "<ESC>- Back, <ENTER>- Refresh, <CTRL-L>- Event Log";
const MAIN: &str = "<ESC>- Main Menu, <ENTER>- Refresh, <CTRL-L>- Event Log";
const HELP_BACK: &str = "?- Help, <ESC>- Back, <ENTER>- Refresh, <CTRL-L>- Event Log";

/// The login banner of a v3 switch. The first `v<digits>.` in it is `v3.`, which is what
/// makes the modern agent choose menu mode.
pub fn banner(out: &mut Vec<u8>) {
    let rule = "-".repeat(WIDTH);
    put(
        out,
        &format!(
            "\r\n\r\nAmerican Power Conversion               Network Management Card AOS      v3.5.7\r\n\
             (c) Copyright 2008 All Rights Reserved  Rack PDU APP                     v3.5.6\r\n\
             {rule}\r\n\
             Name      : apcsim                                    Date : 01/01/2008\r\n\
             Contact   : Unknown                                   Time : 00:00:00\r\n\
             Location  : Unknown                                   User : Administrator\r\n\
             Up Time   : 0 Days 0 Hours 0 Minutes                  Stat : P+ N+ A+\r\n\
             \r\n\
             Switched Rack PDU: Communication Established\r\n"
        ),
    );
}

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

fn title(out: &mut Vec<u8>, name: &str) {
    let head = format!("------- {name} ");
    let dashes = WIDTH.saturating_sub(head.len()).max(12);
    put(
        out,
        &format!("\r\n\r\n{head}{}\r\n\r\n", "-".repeat(dashes)),
    );
}

fn items(out: &mut Vec<u8>, list: &[&str]) {
    for (i, item) in list.iter().enumerate() {
        put(out, &format!("{:>6}- {item}\r\n", i + 1));
    }
}

fn footer(out: &mut Vec<u8>, keys: &str) {
    put(out, &format!("\r\n     {keys}\r\n> "));
}

fn outlet_facts(out: &mut Vec<u8>, model: &SwitchModel, n: u32) {
    if let Some(o) = model.outlet(n) {
        put(
            out,
            &format!(
                "        Name         : {}\r\n        Outlet       : {n}\r\n        State        : {}\r\n\r\n",
                o.name,
                o.power.menu_word()
            ),
        );
    }
}

/// One outlet list line as the agent parses it: `(^|\r)\s*(\d+)- (.*?)\s+(ON|OFF)\s*`.
pub fn outlet_line(n: u32, name: &str, power: Power) -> String {
    format!("{n:>6}- {name:<24}{}\r\n", power.menu_word())
}

impl Screen {
    /// Where ESC leads from here.
    pub fn parent(self) -> Screen {
        match self {
            Screen::Console | Screen::DeviceManager => Screen::Console,
            Screen::OutletManagement => Screen::DeviceManager,
            Screen::OutletList { .. } => Screen::OutletManagement,
            Screen::Outlet(_) => Screen::OutletList { next: None },
            Screen::ControlOutlet(n) => Screen::Outlet(n),
            Screen::Confirm(n, _) | Screen::Done(n) => Screen::ControlOutlet(n),
        }
    }

    /// Whether typed characters are taken (and echoed); a page break and the
    /// `Press <ENTER> to continue...` pause wait for Enter alone.
    pub fn takes_typing(self) -> bool {
        !matches!(self, Screen::OutletList { next: Some(_) } | Screen::Done(_))
    }

    /// Draws this screen from its top. Returns the screen to be on afterwards (the outlet
    /// list may stop at a page break; a vanished outlet falls back to the list).
    pub fn show(self, model: &SwitchModel, out: &mut Vec<u8>) -> Screen {
        match self {
            Screen::Console => {
                title(out, "Control Console");
                items(out, &["Device Manager", "Network", "System", "Logout"]);
                footer(out, MAIN);
            }
            Screen::DeviceManager => {
                title(out, "Device Manager");
                items(
                    out,
                    &[
                        "Phase Monitor/Configuration",
                        "Outlet Management",
                        "Power Supply Status",
                    ],
                );
                footer(out, BACK);
            }
            Screen::OutletManagement => {
                title(out, "Outlet Management");
                items(out, &["Outlet Control/Configuration", "Outlet Restriction"]);
                footer(out, BACK);
            }
            Screen::OutletList { .. } => {
                title(out, "Outlet Control/Configuration");
                return list_from(0, model, out);
            }
            Screen::Outlet(n) => {
                if model.outlet(n).is_none() {
                    return Screen::OutletList { next: None }.show(model, out);
                }
                title(out, &format!("Outlet {n}"));
                outlet_facts(out, model, n);
                items(out, &["Control Outlet", "Configure Outlet"]);
                footer(out, HELP_BACK);
            }
            Screen::ControlOutlet(n) => {
                if model.outlet(n).is_none() {
                    return Screen::OutletList { next: None }.show(model, out);
                }
                title(out, "Control Outlet");
                outlet_facts(out, model, n);
                items(out, &["Immediate On", "Immediate Off", "Immediate Reboot"]);
                footer(out, HELP_BACK);
            }
            Screen::Confirm(n, command) => {
                let Some(o) = model.outlet(n) else {
                    return Screen::OutletList { next: None }.show(model, out);
                };
                let (what, verb) = match command {
                    Command::On => ("Immediate On", "turn on"),
                    Command::Off => ("Immediate Off", "turn off"),
                    Command::Reboot => ("Immediate Reboot", "reboot"),
                };
                let rule = "-".repeat(WIDTH - 8);
                put(
                    out,
                    &format!(
                        "\r\n        {rule}\r\n        {what}\r\n        {rule}\r\n\r\n\
                         \x20       This command will immediately {verb} outlet {n}\r\n\
                         \x20       named '{}'.\r\n\r\n\
                         \x20       Enter 'YES' to continue or <ENTER> to cancel : ",
                        o.name
                    ),
                );
            }
            Screen::Done(_) => {
                put(
                    out,
                    "\r\n        Command successfully issued.\r\n\r\n        Press <ENTER> to continue...",
                );
            }
        }
        self
    }

    /// Handles one entered line (trimmed). Outlet commands change `model` and are pushed to
    /// `actions`; the next screen is drawn into `out`.
    pub fn enter(
        self,
        line: &str,
        model: &mut SwitchModel,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutletAction>,
    ) -> (Screen, MenuOutcome) {
        let next = match (self, line) {
            (Screen::OutletList { next: Some(i) }, _) => {
                return (list_from(i, model, out), MenuOutcome::Stay);
            }
            (Screen::Console, "4") => {
                put(out, "\r\nBye.\r\n\r\nConnection Closed - Bye\r\n");
                return (Screen::Console, MenuOutcome::Logout);
            }
            (Screen::Console, "1") => Screen::DeviceManager,
            (Screen::DeviceManager, "2") => Screen::OutletManagement,
            (Screen::OutletManagement, "1") => Screen::OutletList { next: None },
            (Screen::OutletList { next: None }, l) => match l.parse::<u32>() {
                Ok(n) if model.outlet(n).is_some() => Screen::Outlet(n),
                _ => self,
            },
            (Screen::Outlet(n), "1") => Screen::ControlOutlet(n),
            (Screen::ControlOutlet(n), "1") => Screen::Confirm(n, Command::On),
            (Screen::ControlOutlet(n), "2") => Screen::Confirm(n, Command::Off),
            (Screen::ControlOutlet(n), "3") => Screen::Confirm(n, Command::Reboot),
            (Screen::Confirm(n, command), "YES") => {
                actions.extend(model.command(n, command));
                Screen::Done(n)
            }
            (Screen::Confirm(n, _), _) | (Screen::Done(n), _) => Screen::ControlOutlet(n),
            // Anything else, Enter alone included, redraws the current screen.
            (s, _) => s,
        };
        (next.show(model, out), MenuOutcome::Stay)
    }
}

/// Draws outlet lines from index `from`, then a page break or the end of the screen.
fn list_from(from: usize, model: &SwitchModel, out: &mut Vec<u8>) -> Screen {
    let page = if model.page_size == 0 {
        usize::MAX
    } else {
        model.page_size
    };
    // A continued page starts on a fresh line, or the agent misses its first outlet.
    if from > 0 {
        put(out, "\r\n");
    }
    let end = from.saturating_add(page).min(model.outlets.len());
    for (i, o) in model.outlets.iter().enumerate().take(end).skip(from) {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        put(out, &outlet_line(n, &o.name, o.power));
    }
    if end < model.outlets.len() {
        put(out, "\r\n     Press <ENTER> to continue...");
        Screen::OutletList { next: Some(end) }
    } else {
        footer(out, BACK);
        Screen::OutletList { next: None }
    }
}
