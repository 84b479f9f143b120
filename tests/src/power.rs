//! The lab's power: one APC switch simulator (`apcsim`) per lab, one outlet per node.
//!
//! ```text
//!  clusterlab power off n2 ──telnet menus──┐
//!  fence_apc -o off -n 2 (in a node's ns) ─┤
//!                                          ▼
//!                 apcsim (lab host address, DIR/apc.json) ──hook──► clusterlab power-hook
//!                                                                   --dir DIR off 2
//!                                                                          │
//!         SIGKILL every process of the node on outlet 2 (a power cut) ◄────┘
//!         and a `power-off` fault record; `on` starts its daemons (a fresh boot)
//! ```
//!
//! The switch runs the hook before it answers, so once the switch (or fence_apc) says the
//! outlet is off, the node is dead; the outlet state (`DIR/apc.json`) and the node agree.
//! [`switch_command`] is a small client of the switch's v3 menu dialog (the one fence_apc
//! drives), so `clusterlab power` needs no fence agent installed.

use crate::lab::{self, faults};
use crate::procs::{self, ProcRecord};
use crate::state::{LabMode, LabState, PowerSwitch};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The most outlets the simulator has.
pub const MAX_OUTLETS: u32 = 64;
/// How long one step of the switch dialog may take (a hook that kills a node waits for it).
const STEP_TIMEOUT: Duration = Duration::from_secs(40);

/// What to do with a node's outlet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerAction {
    /// Immediate On: the node boots.
    On,
    /// Immediate Off: a power cut.
    Off,
    /// Off, then on (as fence_apc does it).
    Reboot,
}

impl std::str::FromStr for PowerAction {
    type Err = String;

    fn from_str(s: &str) -> Result<PowerAction, String> {
        match s {
            "on" => Ok(PowerAction::On),
            "off" => Ok(PowerAction::Off),
            "reboot" => Ok(PowerAction::Reboot),
            other => Err(format!("unknown power action {other:?}: on, off or reboot")),
        }
    }
}

/// Why talking to the switch failed.
#[derive(Debug)]
pub enum PowerError {
    /// The lab has no running switch.
    NoSwitch,
    /// No node of this name or id.
    UnknownNode(String),
    /// Connecting, reading or writing failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The switch did not show what the dialog expects next.
    Dialog {
        /// What was awaited.
        expected: String,
        /// The end of what arrived instead.
        got: String,
    },
    /// The switch refused the login.
    LoginRefused,
    /// Another session holds the switch (it serves one at a time, as an APC does).
    Busy,
}

impl fmt::Display for PowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowerError::NoSwitch => write!(f, "the lab has no running power switch"),
            PowerError::UnknownNode(n) => write!(f, "no node {n} in this lab"),
            PowerError::Io { what, source } => write!(f, "{what}: {source}"),
            PowerError::Busy => write!(f, "the switch is busy with another session"),
            PowerError::Dialog { expected, got } => {
                write!(f, "the switch did not show {expected:?}; it sent {got:?}")
            }
            PowerError::LoginRefused => write!(f, "the switch refused the lab's login"),
        }
    }
}

impl std::error::Error for PowerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PowerError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Quotes `s` for `sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// An outlet name the switch accepts (printable ASCII, 1..=23 characters, no commas).
fn outlet_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != ',' {
                c
            } else {
                '_'
            }
        })
        .take(crate::apc::model::MAX_NAME_LEN)
        .collect();
    if clean.is_empty() {
        "node".into()
    } else {
        clean
    }
}

/// What the switch says to a second session before it closes it.
const BUSY: &str = "Too many sessions";

/// Starts the lab's `apcsim` (recorded in `lab.power_switch`): on the lab host's address
/// (the bridge in netns mode, 127.0.0.1 in loopback mode) at a free port, one outlet per
/// node named after it, every outlet on, state in `DIR/apc.json`, and the hook
/// `clusterlab power-hook --dir DIR`. Returns once it listens.
pub fn start_switch(
    lab: &mut LabState,
    login: &str,
    password: &str,
) -> Result<PowerSwitch, String> {
    let host = lab::lab_host_addr(lab)?;
    let count = lab
        .nodes
        .iter()
        .map(|n| n.outlet)
        .max()
        .unwrap_or(1)
        .max(lab.nodes.len() as u32);
    if count > MAX_OUTLETS {
        return Err(format!(
            "the lab's switch has at most {MAX_OUTLETS} outlets; this lab needs {count}"
        ));
    }
    let names: Vec<String> = (1..=count)
        .map(|o| match lab.node_on_outlet(o) {
            Some(n) => outlet_name(&n.name),
            None => format!("Outlet {o}"),
        })
        .collect();
    let state = lab.apc_state_path();
    let _ = std::fs::remove_file(&state); // a new lab starts with every outlet on
    let log = lab.dir.join("apcsim.log");
    let _ = std::fs::remove_file(&log);
    let hook = format!(
        "{} power-hook --dir {}",
        shell_quote(&lab.bin_dir.join("clusterlab").display().to_string()),
        shell_quote(&lab.dir.display().to_string())
    );
    let mut cmd = Command::new(lab.bin_dir.join("apcsim"));
    cmd.arg("--listen")
        .arg(format!("{host}:0"))
        .arg("--outlets")
        .arg(count.to_string())
        .arg("--names")
        .arg(names.join(","))
        .arg("--login")
        .arg(login)
        .arg("--password")
        .arg(password)
        .arg("--state")
        .arg(&state)
        .arg("--hook")
        .arg(hook)
        .arg("--hook-timeout-secs")
        .arg("15")
        // One session at a time, as an APC switch: two nodes racing to fence each other
        // are serialised here, and the loser's agent dies with its host.
        .arg("--max-connections")
        .arg("1");
    let rec = procs::spawn_detached(cmd, &log).map_err(|e| format!("starting apcsim: {e}"))?;
    lab.power_switch = Some(PowerSwitch {
        address: host.to_string(),
        port: 0,
        login: login.to_string(),
        password: password.to_string(),
        process: Some(rec.clone()),
    });
    let port = wait_listening(&rec, &log)?;
    let sw = lab.power_switch.as_mut().expect("set above");
    sw.port = port;
    Ok(sw.clone())
}

/// Waits for apcsim's `listening on ADDR:PORT` line; returns the port.
fn wait_listening(rec: &ProcRecord, log: &Path) -> Result<u16, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with("listening on ")) {
            let addr: SocketAddr = line["listening on ".len()..]
                .trim()
                .parse()
                .map_err(|e| format!("apcsim printed {line:?}: {e}"))?;
            return Ok(addr.port());
        }
        if !rec.alive() || Instant::now() >= deadline {
            return Err(format!(
                "apcsim did not start listening; last lines of {}:\n{}",
                log.display(),
                procs::tail(log, 8)
            ));
        }
        sleep(Duration::from_millis(20));
    }
}

/// Whether outlet `outlet` is on, from the switch's state file (None without one).
pub fn outlet_on(lab: &LabState, outlet: u32) -> Option<bool> {
    let text = std::fs::read_to_string(lab.apc_state_path()).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc["outlets"]
        .as_array()?
        .iter()
        .find(|o| o["outlet"].as_u64() == Some(u64::from(outlet)))
        .and_then(|o| o["power"].as_str())
        .map(|p| p == "on")
}

/// Turns `node`'s outlet on, off, or off and on, through the lab's switch. Returns when
/// the switch confirmed, which is after the hook ran: the node is dead, or booting.
pub fn power(lab: &LabState, node: &str, action: PowerAction) -> Result<(), PowerError> {
    let n = lab
        .node(node)
        .ok_or_else(|| PowerError::UnknownNode(node.to_string()))?;
    let sw = lab
        .power_switch
        .as_ref()
        .filter(|s| s.process.as_ref().is_some_and(ProcRecord::alive))
        .ok_or(PowerError::NoSwitch)?;
    match action {
        PowerAction::On => switch_command(sw, n.outlet, true),
        PowerAction::Off => switch_command(sw, n.outlet, false),
        PowerAction::Reboot => {
            switch_command(sw, n.outlet, false)?;
            switch_command(sw, n.outlet, true)
        }
    }
}

/// `clusterlab power-hook --dir DIR on|off OUTLET`, as the switch runs it: off kills every
/// process of the node on that outlet (a power cut), on starts its daemons (a fresh boot);
/// each recorded as a `power-off`/`power-on` fault. An outlet without a node does nothing.
pub fn hook(dir: &Path, on: bool, outlet: u32) -> Result<(), String> {
    let lab = LabState::load(dir).map_err(|e| e.to_string())?;
    let Some(n) = lab.node_on_outlet(outlet) else {
        return Ok(());
    };
    let (name, id) = (n.name.clone(), n.nodeid);
    if on {
        faults::record(dir, Some(id), "power-on")?;
        LabState::update(dir, |l| lab::start_node_locked(l, &name)).map(drop)
    } else {
        LabState::update(dir, |l| lab::power_off_locked(l, &name))?;
        faults::record(dir, Some(id), "power-off")
    }
}

/// The switch in one line: where, credentials, and whether it runs.
pub fn switch_summary(lab: &LabState) -> String {
    match &lab.power_switch {
        Some(sw) => format!(
            "{}:{} login {} password {} ({}{})",
            sw.address,
            sw.port,
            sw.login,
            sw.password,
            match lab.mode {
                LabMode::Netns => "on the lab bridge",
                LabMode::Loopback => "on loopback",
            },
            match sw.process.as_ref().filter(|r| r.alive()) {
                Some(r) => format!(", pid {}", r.pid),
                None => ", stopped".into(),
            }
        ),
        None => "none".into(),
    }
}

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
const OPT_ECHO: u8 = 1;
const OPT_SGA: u8 = 3;
const PROMPT: &str = "\r\n> ";

/// A telnet connection that strips option negotiation from what it reads and answers it:
/// DO ECHO and SGA when offered, refuse everything else.
struct Telnet {
    stream: TcpStream,
    text: Vec<u8>,
    pending: Vec<u8>,
}

impl Telnet {
    fn connect(sw: &PowerSwitch) -> Result<Telnet, PowerError> {
        let what = format!("connecting to the switch at {}:{}", sw.address, sw.port);
        let io_err = |source| PowerError::Io {
            what: what.clone(),
            source,
        };
        let addr: SocketAddr = format!("{}:{}", sw.address, sw.port)
            .parse()
            .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(io_err)?;
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(io_err)?;
        Ok(Telnet {
            stream,
            text: Vec::new(),
            pending: Vec::new(),
        })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), PowerError> {
        self.stream
            .write_all(bytes)
            .map_err(|source| PowerError::Io {
                what: "writing to the switch".into(),
                source,
            })
    }

    /// Moves received bytes into `text`, answering negotiation; keeps an incomplete
    /// command in `pending`.
    fn absorb(&mut self, bytes: &[u8]) -> Result<(), PowerError> {
        self.pending.extend_from_slice(bytes);
        let mut replies = Vec::new();
        let mut i = 0;
        let buf = std::mem::take(&mut self.pending);
        while i < buf.len() {
            if buf[i] != IAC {
                self.text.push(buf[i]);
                i += 1;
                continue;
            }
            let Some(&cmd) = buf.get(i + 1) else { break };
            match cmd {
                WILL | WONT | DO | DONT => {
                    let Some(&opt) = buf.get(i + 2) else { break };
                    match (cmd, opt) {
                        (WILL, OPT_ECHO | OPT_SGA) => replies.extend([IAC, DO, opt]),
                        (WILL, _) => replies.extend([IAC, DONT, opt]),
                        (DO, _) => replies.extend([IAC, WONT, opt]),
                        _ => {}
                    }
                    i += 3;
                }
                SB => match buf[i..].windows(2).position(|w| w == [IAC, SE]) {
                    Some(end) => i += end + 2,
                    None => break,
                },
                IAC => {
                    self.text.push(IAC);
                    i += 2;
                }
                _ => i += 2,
            }
        }
        self.pending = buf[i.min(buf.len())..].to_vec();
        if !replies.is_empty() {
            self.send(&replies)?;
        }
        Ok(())
    }

    /// Reads until one of `patterns` has arrived; returns its index and consumes the text
    /// up to its end.
    fn expect(&mut self, patterns: &[&str]) -> Result<usize, PowerError> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            let hit = patterns
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    self.text
                        .windows(p.len())
                        .position(|w| w == p.as_bytes())
                        .map(|at| (at + p.len(), i))
                })
                .min();
            if let Some((end, i)) = hit {
                self.text.drain(..end);
                return Ok(i);
            }
            let closed = match self.stream.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    let bytes = buf[..n].to_vec();
                    self.absorb(&bytes)?;
                    false
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    false
                }
                Err(source) => {
                    return Err(PowerError::Io {
                        what: "reading from the switch".into(),
                        source,
                    })
                }
            };
            if closed || Instant::now() >= deadline {
                let text = String::from_utf8_lossy(&self.text);
                let tail: String = text
                    .chars()
                    .rev()
                    .take(200)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                return Err(PowerError::Dialog {
                    expected: patterns.join(" or "),
                    got: tail,
                });
            }
        }
    }

    /// Sends a line and waits for `pattern`.
    fn step(&mut self, line: &str, pattern: &str) -> Result<(), PowerError> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.expect(&[pattern]).map(drop)
    }
}

/// Logs in to the switch and turns `outlet` on or off through the v3 menus (Device Manager,
/// Outlet Management, Outlet Control, the outlet, Control Outlet, Immediate On/Off, YES),
/// then logs out. Returns once the switch said `Command successfully issued.`.
pub fn switch_command(sw: &PowerSwitch, outlet: u32, on: bool) -> Result<(), PowerError> {
    // The switch serves one session at a time (a fence agent may hold it): wait a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match switch_command_once(sw, outlet, on) {
            Err(PowerError::Busy) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

fn switch_command_once(sw: &PowerSwitch, outlet: u32, on: bool) -> Result<(), PowerError> {
    let mut t = Telnet::connect(sw)?;
    if t.expect(&["User Name : ", BUSY])? == 1 {
        return Err(PowerError::Busy);
    }
    t.step(&sw.login, "Password  : ")?;
    t.send(format!("{}\r\n", sw.password).as_bytes())?;
    if t.expect(&[PROMPT, "User Name : "])? == 1 {
        return Err(PowerError::LoginRefused);
    }
    t.step("1", PROMPT)?; // Device Manager
    t.step("2", PROMPT)?; // Outlet Management
    t.step("1", PROMPT)?; // Outlet Control/Configuration: the list
    t.step(&outlet.to_string(), "Control Outlet")?;
    t.expect(&[PROMPT])?;
    t.step("1", "Immediate Off")?; // Control Outlet
    t.expect(&[PROMPT])?;
    t.step(if on { "1" } else { "2" }, "<ENTER> to cancel : ")?;
    t.step("YES", "Command successfully issued.")?;
    t.expect(&["Press <ENTER> to continue..."])?;
    t.step("", PROMPT)?;
    t.send(&[3])?; // Ctrl-C: back to the Control Console
    t.expect(&[PROMPT])?;
    t.send(b"4\r\n")?; // Logout
    let _ = t.expect(&["Bye"]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apc::{self, Power, ServerConfig, SwitchModel};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(bool, u32)>>>;

    fn server(outlets: u32) -> (apc::ApcServer, PowerSwitch, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut model = SwitchModel::new(outlets).unwrap();
        model.login = "lab".into();
        model.password = "secret".into();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook_seen = seen.clone();
        let server = apc::spawn(
            listener,
            ServerConfig::new(model),
            move |c: apc::PowerChange| {
                hook_seen
                    .lock()
                    .unwrap()
                    .push((c.power == Power::On, c.outlet));
            },
        )
        .unwrap();
        let sw = PowerSwitch {
            address: "127.0.0.1".into(),
            port: server.local_addr().port(),
            login: "lab".into(),
            password: "secret".into(),
            process: None,
        };
        (server, sw, seen)
    }

    #[test]
    fn the_menu_client_turns_an_outlet_off_and_on_and_the_hook_sees_both() {
        let (server, sw, seen) = server(4);
        switch_command(&sw, 3, false).unwrap();
        assert_eq!(server.outlets()[2].power, Power::Off);
        assert_eq!(server.outlets()[1].power, Power::On);
        switch_command(&sw, 3, true).unwrap();
        assert_eq!(server.outlets()[2].power, Power::On);
        assert_eq!(*seen.lock().unwrap(), vec![(false, 3), (true, 3)]);
        server.shutdown().unwrap();
    }

    #[test]
    fn a_wrong_password_is_refused_and_changes_nothing() {
        let (server, mut sw, seen) = server(2);
        sw.password = "wrong".into();
        assert!(matches!(
            switch_command(&sw, 1, false),
            Err(PowerError::LoginRefused)
        ));
        assert!(seen.lock().unwrap().is_empty());
        server.shutdown().unwrap();
    }

    #[test]
    fn outlet_names_fit_the_switch() {
        assert_eq!(outlet_name("n1"), "n1");
        assert_eq!(
            outlet_name("station200.example.com"),
            "station200.example.com"
        );
        assert_eq!(outlet_name("a,b c"), "a_b_c");
        assert_eq!(
            outlet_name(&"x".repeat(40)).len(),
            crate::apc::model::MAX_NAME_LEN
        );
        assert_eq!(outlet_name(""), "node");
    }

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote("a 'b' $c")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a 'b' $c");
    }
}
