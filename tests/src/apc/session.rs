//! One telnet connection to the switch: telnet layer, line editing, login, then the menus
//! (v3) or the command line (v6). Pure: bytes in, bytes and outlet actions out.

use super::cli::{self, CliOutcome};
use super::menu::{self, MenuOutcome, Screen};
use super::model::{Firmware, OutletAction, SwitchModel};
use super::telnet::{Telnet, TelnetEvent};

/// The longest line the switch keeps; further characters are dropped unechoed.
pub const MAX_LINE: usize = 64;
/// Failed logins after which the switch hangs up.
pub const MAX_LOGIN_FAILURES: u32 = 3;

const USER_PROMPT: &str = "User Name : ";
const PASSWORD_PROMPT: &str = "Password  : ";
const CTRL_C: u8 = 0x03;
const BACKSPACE: u8 = 0x08;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    UserName,
    Password { user: String },
    Menu(Screen),
    Cli,
    Closed,
}

/// The dialog of one connection.
#[derive(Clone, Debug)]
pub struct ApcSession {
    telnet: Telnet,
    firmware: Firmware,
    login: String,
    password: String,
    stage: Stage,
    line: Vec<u8>,
    last_cr: bool,
    failures: u32,
}

impl ApcSession {
    /// A new connection to `model`'s switch, and what the switch sends first: its telnet
    /// options (`WILL ECHO`, `WILL SGA`) and `\r\nUser Name : `. Credentials and firmware are
    /// taken from `model` now; outlets are read at each input.
    pub fn new(model: &SwitchModel) -> (ApcSession, Vec<u8>) {
        let mut telnet = Telnet::new();
        let mut out = telnet.opening();
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(USER_PROMPT.as_bytes());
        let session = ApcSession {
            telnet,
            firmware: model.firmware,
            login: model.login.clone(),
            password: model.password.clone(),
            stage: Stage::UserName,
            line: Vec::new(),
            last_cr: false,
            failures: 0,
        };
        (session, out)
    }

    /// Whether the switch has hung up (logout, or too many failed logins). Input is ignored
    /// from then on; the caller closes the connection after sending the last output.
    pub fn is_closed(&self) -> bool {
        self.stage == Stage::Closed
    }

    /// Whether the user has logged in (and not logged out).
    pub fn logged_in(&self) -> bool {
        matches!(self.stage, Stage::Menu(_) | Stage::Cli)
    }

    /// The menu screen the session is on, if logged in to a menu-mode switch.
    pub fn screen(&self) -> Option<Screen> {
        match self.stage {
            Stage::Menu(s) => Some(s),
            _ => None,
        }
    }

    /// Feeds bytes received from the client. Returns the bytes to send back (telnet answers,
    /// echo, screens) and the outlet actions carried out, already applied to `model`.
    pub fn input(&mut self, model: &mut SwitchModel, bytes: &[u8]) -> (Vec<u8>, Vec<OutletAction>) {
        let (mut events, mut out, mut actions) = (Vec::new(), Vec::new(), Vec::new());
        self.telnet.feed(bytes, &mut events, &mut out);
        for ev in events {
            if self.is_closed() {
                break;
            }
            let after_cr = std::mem::replace(&mut self.last_cr, false);
            match ev {
                TelnetEvent::Data(b'\r') => {
                    self.last_cr = true;
                    self.enter(model, &mut out, &mut actions);
                }
                // CR LF and CR NUL are one Enter; a lone LF is an Enter too.
                TelnetEvent::Data(b'\n' | 0) if after_cr => {}
                TelnetEvent::Data(b'\n') => self.enter(model, &mut out, &mut actions),
                TelnetEvent::Data(CTRL_C) | TelnetEvent::Interrupt => {
                    self.interrupt(model, &mut out)
                }
                TelnetEvent::Data(ESC) => self.escape(model, &mut out),
                TelnetEvent::Data(BACKSPACE | DEL) | TelnetEvent::EraseChar => {
                    if self.line.pop().is_some() && self.echoes() {
                        out.extend_from_slice(b"\x08 \x08");
                    }
                }
                TelnetEvent::Data(CTRL_U) | TelnetEvent::EraseLine => self.line.clear(),
                TelnetEvent::Data(b @ 0x20..=0x7e) => self.typed(b, &mut out),
                TelnetEvent::Data(_) => {}
            }
        }
        (out, actions)
    }

    fn echoes(&self) -> bool {
        !self.telnet.echo_refused()
    }

    fn typed(&mut self, b: u8, out: &mut Vec<u8>) {
        let takes = match &self.stage {
            Stage::Menu(s) => s.takes_typing(),
            Stage::Closed => false,
            _ => true,
        };
        if !takes || self.line.len() >= MAX_LINE {
            return;
        }
        self.line.push(b);
        if self.echoes() {
            let shown = if matches!(self.stage, Stage::Password { .. }) {
                b'*'
            } else {
                b
            };
            out.push(shown);
        }
    }

    fn enter(
        &mut self,
        model: &mut SwitchModel,
        out: &mut Vec<u8>,
        actions: &mut Vec<OutletAction>,
    ) {
        let raw = std::mem::take(&mut self.line);
        let line = String::from_utf8_lossy(&raw).trim().to_string();
        let paging = matches!(
            self.stage,
            Stage::Menu(Screen::OutletList { next: Some(_) }) | Stage::Menu(Screen::Done(_))
        );
        if !paging {
            out.extend_from_slice(b"\r\n");
        }
        match std::mem::replace(&mut self.stage, Stage::Closed) {
            Stage::UserName => {
                if line.is_empty() {
                    self.stage = Stage::UserName;
                    out.extend_from_slice(USER_PROMPT.as_bytes());
                } else {
                    self.stage = Stage::Password { user: line };
                    out.extend_from_slice(PASSWORD_PROMPT.as_bytes());
                }
            }
            Stage::Password { user } => {
                if user == self.login && line == self.password {
                    self.failures = 0;
                    self.stage = match self.firmware {
                        Firmware::MenuV3 => {
                            menu::banner(out);
                            Stage::Menu(Screen::Console.show(model, out))
                        }
                        Firmware::CliV6 => {
                            cli::banner(out);
                            Stage::Cli
                        }
                    };
                } else {
                    self.failures += 1;
                    if self.failures >= MAX_LOGIN_FAILURES {
                        out.extend_from_slice(b"\r\nBye.\r\n");
                        self.stage = Stage::Closed;
                    } else {
                        out.extend_from_slice(b"\r\n");
                        out.extend_from_slice(USER_PROMPT.as_bytes());
                        self.stage = Stage::UserName;
                    }
                }
            }
            Stage::Menu(screen) => {
                let (next, outcome) = screen.enter(&line, model, out, actions);
                self.stage = match outcome {
                    MenuOutcome::Stay => Stage::Menu(next),
                    MenuOutcome::Logout => Stage::Closed,
                };
            }
            Stage::Cli => {
                self.stage = match cli::run(&line, model, out, actions) {
                    CliOutcome::Stay => Stage::Cli,
                    CliOutcome::Logout => Stage::Closed,
                };
            }
            Stage::Closed => {}
        }
    }

    /// Ctrl-C: back to the Control Console from any screen (the agent relies on it, also at a
    /// page break); a fresh prompt on the command line; nothing before login.
    fn interrupt(&mut self, model: &SwitchModel, out: &mut Vec<u8>) {
        self.line.clear();
        match self.stage {
            Stage::Menu(_) => self.stage = Stage::Menu(Screen::Console.show(model, out)),
            Stage::Cli => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(cli::PROMPT.as_bytes());
            }
            _ => {}
        }
    }

    /// ESC: up one menu level (a pending confirmation is cancelled).
    fn escape(&mut self, model: &SwitchModel, out: &mut Vec<u8>) {
        if let Stage::Menu(screen) = self.stage {
            self.line.clear();
            self.stage = Stage::Menu(screen.parent().show(model, out));
        }
    }
}
