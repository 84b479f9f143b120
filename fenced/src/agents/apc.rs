//! `fence_apc`: an APC MasterSwitch / Rack PDU over telnet or ssh (spec/fencing.md §3).
//!
//! ```text
//!  connect --> "User Name :" <- user --> "Password" <- password --> prompt "\n>" | "\napc>"
//!                                                      (login prompt again: denied, exit 1)
//!  banner's first v<digits>. is v5/v6/v7 -> CLI mode, else menu mode
//!
//!  menu status/list: 1 | classify | 2, 1 (v3) or 2/3 (v2) or <switch> | Enter per page | ^C
//!  menu set:         1 | classify | navigate | <plug> | [1] | 1 on / 2 off (3 off on
//!                    MasterSwitch plus) | YES | Enter | ^C
//!  CLI:              olStatus all | olOn N | olOff N
//!  logout:           4
//! ```
//!
//! The dialog copies fence-agents' `fence_apc`, so a switch that works with it works with
//! this agent, and the other way round.

use super::action::{AgentError, Outlet, Power, PowerDevice};
use super::conn::{Dialog, Family, Pattern, SshTarget, SshTransport, TelnetTransport, Transport};
use super::metadata::AgentInfo;
use super::options::{self, standard, Options, ParamSpec};
use super::power::{ConnectError, PowerAgent};
use std::time::Duration;

/// The timeouts of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// For the login dialog.
    pub login: Duration,
    /// For a prompt after a command.
    pub shell: Duration,
    /// For the switch to confirm a power command.
    pub power: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Menu,
    Cli,
}

/// A logged-in session with an APC switch.
#[derive(Debug)]
pub struct ApcSession<T> {
    dialog: Dialog<T>,
    prompts: Vec<Pattern>,
    mode: Mode,
    switch: Option<String>,
    timeouts: Timeouts,
}

/// The default command prompts: the menu's `\n>` and the CLI's `\napc>`.
pub fn default_prompts() -> Vec<Pattern> {
    vec![Pattern::text("\n>"), Pattern::text("\napc>")]
}

/// The firmware major digit the way fence-agents finds it: the first `v<digits>.` in the
/// banner, keeping only the last digit (so `v10.` reads as 0 — the original's quirk).
pub fn firmware_digit(banner: &str) -> Option<u8> {
    let b = banner.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c != b'v' {
            continue;
        }
        let digits = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if b.get(i + 1 + digits) == Some(&b'.') {
            return match digits {
                0 => None,
                _ => Some(b[i + digits] - b'0'),
            };
        }
    }
    None
}

/// Outlets of a menu screen: lines `<spaces><n>- <alias><spaces>ON|OFF`.
pub fn parse_menu_outlets(text: &str) -> Vec<Outlet> {
    let mut out = Vec::new();
    for line in text.split(['\n', '\r']) {
        let line = line.trim_start();
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let Some(rest) = line[digits..].strip_prefix("- ") else {
            continue;
        };
        let rest = rest.trim_end();
        let (alias, word) = match rest.rsplit_once(char::is_whitespace) {
            Some((a, w)) => (a.trim_end(), w),
            None => continue,
        };
        let power = match word {
            "ON" => Power::On,
            "OFF" => Power::Off,
            _ => continue,
        };
        out.push(Outlet {
            plug: line[..digits].to_owned(),
            alias: alias.to_owned(),
            power: Some(power),
        });
    }
    out
}

/// Outlets of `olStatus all`: lines ` <n>: <alias>: On|Off`.
pub fn parse_cli_outlets(text: &str) -> Vec<Outlet> {
    let mut out = Vec::new();
    for line in text.split(['\n', '\r']) {
        let line = line.trim();
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let Some(rest) = line[digits..].strip_prefix(": ") else {
            continue;
        };
        let Some((alias, word)) = rest.rsplit_once(": ") else {
            continue;
        };
        let power = match word.trim().to_ascii_lowercase().as_str() {
            "on" => Power::On,
            "off" => Power::Off,
            _ => continue,
        };
        out.push(Outlet {
            plug: line[..digits].to_owned(),
            alias: alias.to_owned(),
            power: Some(power),
        });
    }
    out
}

struct Screen {
    switch_model: bool,
    version: u8,
    admin: bool,
}

const CTRL_C: &[u8] = &[3];

impl<T: Transport> ApcSession<T> {
    /// Logs in over `transport`. `prompts` are the command prompts (default
    /// [`default_prompts`]); `switch` is the daisy-chain unit for MasterSwitch plus models.
    /// With `expect_login_prompt` false (ssh), the user name was given to ssh and the
    /// dialog starts at the command prompt.
    pub fn login(
        transport: T,
        user: &str,
        password: &str,
        prompts: Vec<Pattern>,
        switch: Option<String>,
        timeouts: Timeouts,
        expect_login_prompt: bool,
    ) -> Result<Self, AgentError> {
        let mut dialog = Dialog::new(transport);
        if expect_login_prompt {
            dialog.expect(&[Pattern::Login], timeouts.login)?;
            dialog.send_line(user)?;
            dialog.expect(
                &[Pattern::text("password"), Pattern::text("pass phrase")],
                timeouts.login,
            )?;
            dialog.send_line(password)?;
        }
        let mut wait: Vec<Pattern> = prompts.clone();
        wait.push(Pattern::Login);
        let got = dialog.expect(&wait, timeouts.login)?;
        let banner = dialog.before.clone();
        if got == prompts.len() {
            return Err(AgentError::LoginDenied);
        }
        let mode = match firmware_digit(&banner) {
            Some(5..=7) => Mode::Cli,
            _ => Mode::Menu,
        };
        tracing::debug!(?mode, "logged in");
        Ok(ApcSession {
            dialog,
            prompts,
            mode,
            switch,
            timeouts,
        })
    }

    fn prompt(&mut self, timeout: Duration) -> Result<(), AgentError> {
        let prompts = self.prompts.clone();
        self.dialog.expect(&prompts, timeout).map(|_| ())
    }

    fn classify(&self) -> Screen {
        let b = &self.dialog.before;
        let switch_model = b.contains(" MasterSwitch plus");
        Screen {
            switch_model,
            version: if b.contains("Outlet Management") {
                3
            } else {
                2
            },
            admin: b.contains("Outlet Control/Configuration"),
        }
    }

    fn switch_for(&self, screen: &Screen) -> Result<Option<String>, AgentError> {
        if !screen.switch_model {
            return Ok(None);
        }
        let plus2 = self.dialog.before.contains(" MasterSwitch plus 2");
        match (&self.switch, plus2) {
            (Some(s), _) => Ok(Some(s.clone())),
            (None, true) => Err(AgentError::PlugStatus {
                plug: "(switch number required on a MasterSwitch plus 2)".into(),
            }),
            (None, false) => Ok(Some("1".into())),
        }
    }

    fn back_to_console(&mut self) -> Result<(), AgentError> {
        self.dialog.send_raw(CTRL_C)?;
        self.dialog
            .expect(&[Pattern::text("- Logout")], self.timeouts.shell)?;
        self.prompt(self.timeouts.shell)
    }

    fn menu_outlets(&mut self) -> Result<Vec<Outlet>, AgentError> {
        let shell = self.timeouts.shell;
        self.dialog.send_line("1")?;
        self.prompt(shell)?;
        let screen = self.classify();
        match self.switch_for(&screen)? {
            Some(sw) => self.dialog.send_line(&sw)?,
            None if screen.version == 2 => {
                self.dialog
                    .send_line(if screen.admin { "3" } else { "2" })?
            }
            None => {
                self.dialog.send_line("2")?;
                self.prompt(shell)?;
                self.dialog.send_line("1")?;
            }
        }
        let mut wait = vec![Pattern::text("Press <ENTER>")];
        wait.extend(self.prompts.iter().cloned());
        let mut outlets: Vec<Outlet> = Vec::new();
        loop {
            let i = self.dialog.expect(&wait, shell)?;
            for o in parse_menu_outlets(&self.dialog.before) {
                match outlets.iter_mut().find(|x| x.plug == o.plug) {
                    Some(x) => *x = o,
                    None => outlets.push(o),
                }
            }
            self.dialog.send_line("")?;
            if i != 0 {
                break;
            }
        }
        self.back_to_console()?;
        Ok(outlets)
    }

    fn menu_set(&mut self, plug: &str, power: Power) -> Result<(), AgentError> {
        let shell = self.timeouts.shell;
        self.dialog.send_line("1")?;
        self.prompt(shell)?;
        let screen = self.classify();
        let sw = self.switch_for(&screen)?;
        let mut admin3 = false;
        match &sw {
            Some(sw) => self.dialog.send_line(sw)?,
            None if screen.version == 2 => {
                self.dialog
                    .send_line(if screen.admin { "3" } else { "2" })?
            }
            None => {
                self.dialog.send_line("2")?;
                self.prompt(shell)?;
                admin3 = self.dialog.before.contains("2- Outlet Restriction");
                self.dialog.send_line("1")?;
            }
        }
        let mut wait = vec![Pattern::text("Press <ENTER>")];
        wait.extend(self.prompts.iter().cloned());
        while self.dialog.expect(&wait, shell)? == 0 {
            self.dialog.send_line("")?;
        }
        self.dialog.send_line(plug)?;
        self.prompt(shell)?;
        let control = match &sw {
            Some(_) => true,
            None => (screen.version == 2 && screen.admin) || admin3,
        };
        if control {
            self.dialog.send_line("1")?;
            self.prompt(shell)?;
        }
        let code = match (power, sw.is_some()) {
            (Power::On, _) => "1",
            (Power::Off, false) => "2",
            (Power::Off, true) => "3",
        };
        self.dialog.send_line(code)?;
        self.dialog.expect(
            &[Pattern::text(
                "Enter 'YES' to continue or <ENTER> to cancel :",
            )],
            shell,
        )?;
        self.dialog.send_line("YES")?;
        self.dialog.expect(
            &[Pattern::text("Press <ENTER> to continue...")],
            self.timeouts.power,
        )?;
        self.dialog.send_line("")?;
        self.prompt(shell)?;
        self.back_to_console()
    }

    fn cli_outlets(&mut self) -> Result<Vec<Outlet>, AgentError> {
        self.dialog.send_line("olStatus all")?;
        self.prompt(self.timeouts.shell)?;
        Ok(parse_cli_outlets(&self.dialog.before))
    }

    fn cli_set(&mut self, plug: &str, power: Power) -> Result<(), AgentError> {
        let cmd = match power {
            Power::On => "olOn",
            Power::Off => "olOff",
        };
        self.dialog.send_line(&format!("{cmd} {plug}"))?;
        self.prompt(self.timeouts.power)
    }
}

impl<T: Transport> PowerDevice for ApcSession<T> {
    fn outlets(&mut self) -> Result<Vec<Outlet>, AgentError> {
        match self.mode {
            Mode::Menu => self.menu_outlets(),
            Mode::Cli => self.cli_outlets(),
        }
    }

    fn set_power(&mut self, plug: &str, power: Power) -> Result<(), AgentError> {
        if !plug.bytes().all(|b| b.is_ascii_digit()) || plug.is_empty() {
            return Err(AgentError::PlugStatus {
                plug: plug.to_owned(),
            });
        }
        match self.mode {
            Mode::Menu => self.menu_set(plug, power),
            Mode::Cli => self.cli_set(plug, power),
        }
    }

    fn logout(&mut self) {
        let _ = self.dialog.send_line("4");
    }
}

/// The `fence_apc` agent: parameters, metadata and how it connects.
#[derive(Clone, Copy, Debug, Default)]
pub struct FenceApc;

/// Parameter names of `fence_apc`, in `-h` order.
const APC_PARAMS: &[&str] = &[
    "ip",
    "username",
    "password",
    "command_prompt",
    "ssh",
    "plug",
    "switch",
    "ipport",
    "password_script",
    "identity_file",
    "ssh_options",
    "inet4_only",
    "inet6_only",
    "action",
    "quiet",
    "verbose",
    "verbose_level",
    "debug_file",
    "version",
    "help",
    "separator",
    "plug_separator",
    "power_timeout",
    "shell_timeout",
    "login_timeout",
    "disable_timeout",
    "power_wait",
    "stonith_status_sleep",
    "delay",
    "retry_on",
    "missing_as_off",
    "ssh_path",
    "telnet_path",
];

impl PowerAgent for FenceApc {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            name: "fence_apc",
            shortdesc: "Fence agent for APC over telnet/ssh",
            longdesc: "fence_apc is an I/O Fencing agent which can be used with the APC network power switch. \
                       It logs into the device via telnet (built in) or ssh (the system ssh client) and \
                       turns a specified outlet off or on; reboot is off, then on.",
            vendor_url: Some("http://www.apc.com"),
            actions: &["on", "off", "reboot", "status", "list", "list-status", "monitor", "metadata", "manpage", "validate-all"],
        }
    }

    fn params(&self) -> Vec<ParamSpec> {
        APC_PARAMS
            .iter()
            .map(|n| {
                let p = standard(n);
                match *n {
                    "ip" | "username" | "plug" => p.required(true),
                    "action" => p.required(true),
                    _ => p,
                }
            })
            .collect()
    }

    fn connect(
        &self,
        opts: &Options,
        params: &[ParamSpec],
    ) -> Result<Box<dyn PowerDevice>, ConnectError> {
        let ssh = opts.flag("ssh");
        let host = opts.given("ip").unwrap_or_default().to_owned();
        let port = match opts.given("ipport") {
            Some(p) => p.trim().parse::<u16>().unwrap_or(23),
            None if ssh => 22,
            None => 23,
        };
        let family = if opts.flag("inet4_only") {
            Family::V4
        } else if opts.flag("inet6_only") {
            Family::V6
        } else {
            Family::Any
        };
        let timeouts = Timeouts {
            login: options::seconds(opts, params, "login_timeout")?,
            shell: options::seconds(opts, params, "shell_timeout")?,
            power: options::seconds(opts, params, "power_timeout")?,
        };
        let prompts = match opts.given("command_prompt") {
            Some(p) if !p.is_empty() => p
                .split('|')
                .map(|t| Pattern::text(&t.replace("\\n", "\n")))
                .collect(),
            _ => default_prompts(),
        };
        let user = opts.given("username").unwrap_or_default();
        let password = opts.given("password").unwrap_or_default();
        let switch = opts.given("switch").map(str::to_owned);
        if ssh {
            let target = SshTarget {
                ssh_path: options::value(opts, params, "ssh_path")
                    .unwrap_or("/usr/bin/ssh")
                    .to_owned(),
                host,
                port,
                user: user.to_owned(),
                identity_file: opts.given("identity_file").map(str::to_owned),
                ssh_options: opts.given("ssh_options").map(str::to_owned),
                family,
            };
            let t = SshTransport::spawn(&target, Some(password))?;
            Ok(Box::new(ApcSession::login(
                t, user, password, prompts, switch, timeouts, false,
            )?))
        } else {
            let t = TelnetTransport::connect(&host, port, family, timeouts.login)?;
            Ok(Box::new(ApcSession::login(
                t, user, password, prompts, switch, timeouts, true,
            )?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::time::Instant;

    #[test]
    fn firmware_digit_copies_the_first_version_and_its_last_digit() {
        assert_eq!(
            firmware_digit("AOS      v3.5.7\r\nRack PDU APP v6.1."),
            Some(3)
        );
        assert_eq!(firmware_digit("AOS v6.4.6"), Some(6));
        assert_eq!(firmware_digit("AOS v10.1"), Some(0));
        assert_eq!(firmware_digit("no version here"), None);
    }

    #[test]
    fn menu_lines_give_plug_alias_and_state() {
        let text = "\r\n     1- node1                   ON\r\n    12- my box  OFF\r\n  3- x ONLINE\r\n 4-OFF\r\n";
        let got = parse_menu_outlets(text);
        assert_eq!(
            got,
            vec![
                Outlet {
                    plug: "1".into(),
                    alias: "node1".into(),
                    power: Some(Power::On)
                },
                Outlet {
                    plug: "12".into(),
                    alias: "my box".into(),
                    power: Some(Power::Off)
                },
            ]
        );
    }

    #[test]
    fn cli_lines_give_plug_alias_and_state() {
        let text = "olStatus all\r\nE000: Success\r\n 1: Outlet 1: On\r\n 2: a: b: Off\r\n";
        let got = parse_cli_outlets(text);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[1].plug.as_str(), got[1].alias.as_str(), got[1].power),
            ("2", "a: b", Some(Power::Off))
        );
    }

    /// A transport that answers each sent line with the next scripted reply.
    #[derive(Debug)]
    struct Script {
        replies: VecDeque<&'static str>,
        sent: Vec<String>,
        pending: Vec<u8>,
    }

    impl Transport for Script {
        fn send(&mut self, data: &[u8]) -> Result<(), AgentError> {
            self.sent.push(String::from_utf8_lossy(data).into_owned());
            if let Some(r) = self.replies.pop_front() {
                self.pending.extend_from_slice(r.as_bytes());
            }
            Ok(())
        }
        fn recv(&mut self, buf: &mut Vec<u8>, _deadline: Instant) -> Result<bool, AgentError> {
            if self.pending.is_empty() {
                return Ok(false);
            }
            buf.append(&mut self.pending);
            Ok(true)
        }
    }

    fn timeouts() -> Timeouts {
        Timeouts {
            login: Duration::from_secs(1),
            shell: Duration::from_secs(1),
            power: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_second_user_name_prompt_means_the_login_was_denied() {
        let t = Script {
            replies: VecDeque::from(["Password  : ", "\r\nUser Name : "]),
            sent: vec![],
            pending: b"\r\nUser Name : ".to_vec(),
        };
        let r = ApcSession::login(t, "apc", "bad", default_prompts(), None, timeouts(), true);
        assert!(matches!(r, Err(AgentError::LoginDenied)), "{r:?}");
    }

    #[test]
    fn cli_firmware_is_driven_with_ol_commands() {
        let t = Script {
            replies: VecDeque::from([
                "Password  : ",
                "\r\nAOS v6.4.6\r\napc>",
                "olStatus all\r\nE000: Success\r\n 1: n1: On\r\n 2: n2: Off\r\napc>",
                "olOff 1\r\nE000: Success\r\napc>",
            ]),
            sent: vec![],
            pending: b"User Name : ".to_vec(),
        };
        let mut s =
            ApcSession::login(t, "apc", "apc", default_prompts(), None, timeouts(), true).unwrap();
        assert_eq!(s.status("2").unwrap(), Power::Off);
        s.set_power("1", Power::Off).unwrap();
        assert_eq!(
            s.dialog.transport().sent[2..],
            ["olStatus all\r\n", "olOff 1\r\n"]
        );
    }
}
