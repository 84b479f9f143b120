//! The generic action engine of a power agent (fence-agents' `fence_action`), shared by every
//! agent through [`PowerDevice`].
//!
//! ```text
//!  status       -> "Status: ON" (exit 0) | "Status: OFF" (exit 2)
//!  off          -> already off? "Success: Already OFF"
//!                  else set off, sleep power_wait, poll every stonith_status_sleep until off
//!                  (at most power_timeout) -> "Success: Powered OFF" | exit 1
//!  on           -> the same towards on, 1 + retry_on attempts -> "Success: Powered ON"
//!  reboot       -> off as above (failure: exit 1), then on; failing to come back on is only
//!                  logged ("Timed out waiting to power ON") -> "Success: Rebooted"
//!  list         -> "<plug><sep><alias>" per outlet
//!  list-status  -> "<plug><sep><alias><sep>ON|OFF|UNKNOWN"
//!  monitor      -> fetch the list silently, exit 0
//! ```
//!
//! Any [`AgentError`] ends the action with its fence-agents message on stderr and exit 1.

use std::fmt;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// An outlet's power.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Powered.
    On,
    /// Not powered.
    Off,
}

impl Power {
    /// `ON` or `OFF`, as `status` and `list-status` print it.
    pub fn word(self) -> &'static str {
        match self {
            Power::On => "ON",
            Power::Off => "OFF",
        }
    }
}

/// One outlet as a device lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outlet {
    /// The plug id the agent is given (`5`).
    pub plug: String,
    /// The device's name for it.
    pub alias: String,
    /// Its power, when the device reports it.
    pub power: Option<Power>,
}

/// Why an agent could not complete its action. The process exits 1 whatever the variant;
/// the variant only picks the message.
#[derive(Debug)]
pub enum AgentError {
    /// No connection to the device (refused, unreachable, name not resolved).
    Connect {
        /// `host:port` or the command that was started.
        target: String,
        /// What the system said.
        source: io::Error,
    },
    /// The device did not accept the login (it asked for the user name again).
    LoginDenied,
    /// The device closed the connection in the middle of a dialog.
    ConnectionLost {
        /// What the agent was waiting for.
        waiting_for: String,
    },
    /// The device did not show what the agent waited for in time.
    Timeout {
        /// What the agent was waiting for.
        waiting_for: String,
        /// The time allowed.
        after: Duration,
    },
    /// The plug is not in the device's outlet list.
    PlugStatus {
        /// The plug asked for.
        plug: String,
    },
    /// A helper program (ssh) could not be started.
    Spawn {
        /// The program.
        program: String,
        /// What the system said.
        source: io::Error,
    },
    /// Reading or writing the connection failed.
    Io(io::Error),
}

impl AgentError {
    /// The message fence-agents prints for this kind of failure (spec/fencing.md §2.4).
    pub fn fence_agents_message(&self) -> &'static str {
        match self {
            AgentError::Connect { .. } | AgentError::LoginDenied | AgentError::Spawn { .. } => {
                "Unable to connect/login to fencing device"
            }
            AgentError::ConnectionLost { .. } | AgentError::Io(_) => "Connection lost",
            AgentError::Timeout { .. } => "Connection timed out",
            AgentError::PlugStatus { .. } => {
                "Failed: Unable to obtain correct plug status or plug is not available"
            }
        }
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Connect { target, source } => {
                write!(f, "cannot connect to {target}: {source}")
            }
            AgentError::LoginDenied => f.write_str("the device refused the login"),
            AgentError::ConnectionLost { waiting_for } => {
                write!(
                    f,
                    "the device closed the connection while the agent waited for {waiting_for}"
                )
            }
            AgentError::Timeout { waiting_for, after } => {
                write!(
                    f,
                    "no {waiting_for} from the device within {} ms",
                    after.as_millis()
                )
            }
            AgentError::PlugStatus { plug } => {
                write!(f, "plug {plug} is not in the device's outlet list")
            }
            AgentError::Spawn { program, source } => write!(f, "cannot start {program}: {source}"),
            AgentError::Io(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentError::Connect { source, .. }
            | AgentError::Spawn { source, .. }
            | AgentError::Io(source) => Some(source),
            _ => None,
        }
    }
}

/// What an agent must be able to do with a device; the engine does the rest.
pub trait PowerDevice {
    /// Every outlet with its alias and power.
    fn outlets(&mut self) -> Result<Vec<Outlet>, AgentError>;

    /// Commands `plug` on or off. Returns once the device accepted the command; the engine
    /// then polls [`PowerDevice::status`].
    fn set_power(&mut self, plug: &str, power: Power) -> Result<(), AgentError>;

    /// The power of one plug. The default looks it up in [`PowerDevice::outlets`].
    fn status(&mut self, plug: &str) -> Result<Power, AgentError> {
        let outlets = self.outlets()?;
        outlets
            .iter()
            .find(|o| o.plug == plug)
            .and_then(|o| o.power)
            .ok_or_else(|| AgentError::PlugStatus {
                plug: plug.to_owned(),
            })
    }

    /// Ends the session politely. Errors are ignored: the action's outcome is known.
    fn logout(&mut self) {}
}

/// Time as the engine sees it, so that tests can run the polling loops without waiting.
pub trait Clock {
    /// Time since an arbitrary start.
    fn now(&mut self) -> Duration;
    /// Waits.
    fn sleep(&mut self, d: Duration);
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&mut self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The actions of a power agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Power on.
    On,
    /// Power off.
    Off,
    /// Off, then on.
    Reboot,
    /// Print the plug's power.
    Status,
    /// Print every outlet.
    List,
    /// Print every outlet with its power.
    ListStatus,
    /// Check the device answers.
    Monitor,
    /// Print the metadata XML.
    Metadata,
    /// Check the parameters only.
    ValidateAll,
}

impl Action {
    /// Parses an action word; `enable`/`disable` are fabric agents' names for on/off.
    pub fn parse(word: &str) -> Option<Action> {
        Some(match word.to_ascii_lowercase().as_str() {
            "on" | "enable" => Action::On,
            "off" | "disable" => Action::Off,
            "reboot" => Action::Reboot,
            "status" => Action::Status,
            "list" => Action::List,
            "list-status" => Action::ListStatus,
            "monitor" => Action::Monitor,
            "metadata" | "manpage" => Action::Metadata,
            "validate-all" => Action::ValidateAll,
            _ => return None,
        })
    }

    /// Whether the action works on one plug (needs `plug`).
    pub fn needs_plug(self) -> bool {
        matches!(
            self,
            Action::On | Action::Off | Action::Reboot | Action::Status
        )
    }
}

/// The engine's settings, read from the options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The action.
    pub action: Action,
    /// The plug, for plug actions.
    pub plug: String,
    /// Field separator of `list`.
    pub separator: String,
    /// Sleep after a power command.
    pub power_wait: Duration,
    /// How long to poll for the new state.
    pub power_timeout: Duration,
    /// Between two polls.
    pub status_sleep: Duration,
    /// Power-on attempts beyond the first.
    pub retry_on: u32,
    /// An unknown plug reads as off instead of failing.
    pub missing_as_off: bool,
}

/// Runs `settings.action` against `dev`, printing the fence-agents texts on `out` and
/// failures on `err`. Returns the exit code: 0, 1, or 2 for `status` off.
pub fn run(
    dev: &mut dyn PowerDevice,
    settings: &Settings,
    clock: &mut dyn Clock,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match act(dev, settings, clock, out, err) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "{}", e.fence_agents_message());
            let _ = writeln!(err, "({e})");
            1
        }
    }
}

fn status(dev: &mut dyn PowerDevice, s: &Settings) -> Result<Power, AgentError> {
    match dev.status(&s.plug) {
        Err(AgentError::PlugStatus { .. }) if s.missing_as_off => Ok(Power::Off),
        other => other,
    }
}

/// Commands `want` once, then polls until the plug shows it or power_timeout passes.
fn set_and_wait(
    dev: &mut dyn PowerDevice,
    s: &Settings,
    clock: &mut dyn Clock,
    want: Power,
) -> Result<bool, AgentError> {
    dev.set_power(&s.plug, want)?;
    clock.sleep(s.power_wait);
    let deadline = clock.now() + s.power_timeout;
    loop {
        if status(dev, s)? == want {
            return Ok(true);
        }
        if clock.now() >= deadline {
            return Ok(false);
        }
        clock.sleep(s.status_sleep.max(Duration::from_millis(10)));
    }
}

fn power_on(
    dev: &mut dyn PowerDevice,
    s: &Settings,
    clock: &mut dyn Clock,
) -> Result<bool, AgentError> {
    for _ in 0..=s.retry_on {
        if set_and_wait(dev, s, clock, Power::On)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn act(
    dev: &mut dyn PowerDevice,
    s: &Settings,
    clock: &mut dyn Clock,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, AgentError> {
    let w = |out: &mut dyn Write, line: &str| {
        let _ = writeln!(out, "{line}");
    };
    match s.action {
        Action::Status => {
            let p = status(dev, s)?;
            w(out, &format!("Status: {}", p.word()));
            Ok(if p == Power::On { 0 } else { 2 })
        }
        Action::Off => {
            if status(dev, s)? == Power::Off {
                w(out, "Success: Already OFF");
                return Ok(0);
            }
            if set_and_wait(dev, s, clock, Power::Off)? {
                w(out, "Success: Powered OFF");
                Ok(0)
            } else {
                w(err, "Failed: Timed out waiting to power OFF");
                Ok(1)
            }
        }
        Action::On => {
            if status(dev, s)? == Power::On {
                w(out, "Success: Already ON");
                return Ok(0);
            }
            if power_on(dev, s, clock)? {
                w(out, "Success: Powered ON");
                Ok(0)
            } else {
                w(err, "Failed: Timed out waiting to power ON");
                Ok(1)
            }
        }
        Action::Reboot => {
            if status(dev, s)? != Power::Off && !set_and_wait(dev, s, clock, Power::Off)? {
                w(err, "Failed: Timed out waiting to power OFF");
                return Ok(1);
            }
            if !power_on(dev, s, clock)? {
                w(err, "Timed out waiting to power ON");
            }
            w(out, "Success: Rebooted");
            Ok(0)
        }
        Action::List | Action::ListStatus => {
            for o in dev.outlets()? {
                let mut line = format!("{}{}{}", o.plug, s.separator, o.alias);
                if s.action == Action::ListStatus {
                    let word = o.power.map_or("UNKNOWN", Power::word);
                    line.push_str(&format!("{}{word}", s.separator));
                }
                w(out, &line);
            }
            Ok(0)
        }
        Action::Monitor => {
            dev.outlets()?;
            Ok(0)
        }
        Action::Metadata | Action::ValidateAll => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A switch whose outlets reach the commanded state after `lag` status polls.
    #[derive(Default)]
    struct FakeSwitch {
        power: BTreeMap<String, Power>,
        pending: Option<(String, Power, u32)>,
        lag: u32,
        sticky: bool,
        commands: Vec<(String, Power)>,
    }

    impl FakeSwitch {
        fn new(outlets: &[(&str, Power)]) -> FakeSwitch {
            FakeSwitch {
                power: outlets.iter().map(|(p, s)| (p.to_string(), *s)).collect(),
                ..FakeSwitch::default()
            }
        }
    }

    impl PowerDevice for FakeSwitch {
        fn outlets(&mut self) -> Result<Vec<Outlet>, AgentError> {
            if let Some((plug, want, left)) = self.pending.take() {
                if left == 0 {
                    if !self.sticky {
                        self.power.insert(plug, want);
                    }
                } else {
                    self.pending = Some((plug, want, left - 1));
                }
            }
            Ok(self
                .power
                .iter()
                .map(|(p, s)| Outlet {
                    plug: p.clone(),
                    alias: format!("node{p}"),
                    power: Some(*s),
                })
                .collect())
        }
        fn set_power(&mut self, plug: &str, power: Power) -> Result<(), AgentError> {
            self.commands.push((plug.to_owned(), power));
            self.pending = Some((plug.to_owned(), power, self.lag));
            Ok(())
        }
    }

    #[derive(Default)]
    struct FakeClock(Duration);
    impl Clock for FakeClock {
        fn now(&mut self) -> Duration {
            self.0
        }
        fn sleep(&mut self, d: Duration) {
            self.0 += d;
        }
    }

    fn settings(action: Action) -> Settings {
        Settings {
            action,
            plug: "2".into(),
            separator: ",".into(),
            power_wait: Duration::ZERO,
            power_timeout: Duration::from_secs(20),
            status_sleep: Duration::from_secs(1),
            retry_on: 1,
            missing_as_off: false,
        }
    }

    fn go(dev: &mut FakeSwitch, s: &Settings) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(dev, s, &mut FakeClock::default(), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn status_exits_zero_for_on_and_two_for_off() {
        let mut d = FakeSwitch::new(&[("1", Power::Off), ("2", Power::On)]);
        assert_eq!(go(&mut d, &settings(Action::Status)).0, 0);
        let mut s = settings(Action::Status);
        s.plug = "1".into();
        let (code, out, _) = go(&mut d, &s);
        assert_eq!((code, out.as_str()), (2, "Status: OFF\n"));
    }

    #[test]
    fn off_waits_for_the_device_and_already_off_sends_nothing() {
        let mut d = FakeSwitch::new(&[("2", Power::On)]);
        d.lag = 3;
        assert_eq!(
            go(&mut d, &settings(Action::Off)),
            (0, "Success: Powered OFF\n".into(), String::new())
        );
        assert_eq!(d.commands, vec![("2".to_string(), Power::Off)]);
        assert_eq!(
            go(&mut d, &settings(Action::Off)).1,
            "Success: Already OFF\n"
        );
        assert_eq!(d.commands.len(), 1);
    }

    #[test]
    fn a_plug_that_never_turns_off_times_out_with_exit_1() {
        let mut d = FakeSwitch::new(&[("2", Power::On)]);
        d.sticky = true;
        let (code, out, err) = go(&mut d, &settings(Action::Off));
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.contains("Timed out waiting to power OFF"), "{err}");
    }

    #[test]
    fn on_is_attempted_one_plus_retry_on_times() {
        let mut d = FakeSwitch::new(&[("2", Power::Off)]);
        d.sticky = true;
        let mut s = settings(Action::On);
        s.retry_on = 2;
        assert_eq!(go(&mut d, &s).0, 1);
        assert_eq!(d.commands.len(), 3);
    }

    #[test]
    fn reboot_is_off_then_on_and_a_failed_on_is_only_logged() {
        let mut d = FakeSwitch::new(&[("2", Power::On)]);
        assert_eq!(
            go(&mut d, &settings(Action::Reboot)).1,
            "Success: Rebooted\n"
        );
        assert_eq!(
            d.commands,
            vec![("2".to_string(), Power::Off), ("2".to_string(), Power::On)]
        );
        let mut s = settings(Action::Reboot);
        s.retry_on = 0;
        let mut d = FakeSwitch::new(&[("2", Power::Off)]);
        d.sticky = true;
        let (code, out, err) = go(&mut d, &s);
        assert_eq!((code, out.as_str()), (0, "Success: Rebooted\n"));
        assert!(err.contains("Timed out waiting to power ON"));
    }

    #[test]
    fn unknown_plug_fails_unless_missing_counts_as_off() {
        let mut d = FakeSwitch::new(&[("1", Power::On)]);
        let (code, _, err) = go(&mut d, &settings(Action::Status));
        assert_eq!(code, 1);
        assert!(err.starts_with(
            "Failed: Unable to obtain correct plug status or plug is not available\n"
        ));
        let mut s = settings(Action::Off);
        s.missing_as_off = true;
        assert_eq!(go(&mut d, &s).1, "Success: Already OFF\n");
    }

    #[test]
    fn list_and_list_status_use_the_separator() {
        let mut d = FakeSwitch::new(&[("1", Power::On), ("2", Power::Off)]);
        let mut s = settings(Action::ListStatus);
        s.separator = ";".into();
        assert_eq!(go(&mut d, &s).1, "1;node1;ON\n2;node2;OFF\n");
        assert_eq!(go(&mut d, &settings(Action::List)).1, "1,node1\n2,node2\n");
        assert_eq!(
            go(&mut d, &settings(Action::Monitor)),
            (0, String::new(), String::new())
        );
    }
}
