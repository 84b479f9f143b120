//! The simulator's server over real TCP on loopback, driven by a plain socket client:
//! hook order, reboot timing, state file, idle timeout, connection limit, shutdown.

use clusterlab::apc::{self, ApcServer, Power, PowerChange, ServerConfig, SwitchModel};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous bound for anything that should take milliseconds (shared 2-core machine).
const BOUND: Duration = Duration::from_secs(20);

type Changes = Arc<Mutex<Vec<PowerChange>>>;

fn start(config: ServerConfig) -> (ApcServer, Changes) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let changes: Changes = Arc::default();
    let seen = Arc::clone(&changes);
    let server = apc::spawn(listener, config, move |c| seen.lock().unwrap().push(c)).unwrap();
    (server, changes)
}

struct Client {
    stream: TcpStream,
    seen: Vec<u8>,
}

impl Client {
    fn connect(server: &ApcServer) -> Client {
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Client {
            stream,
            seen: Vec::new(),
        }
    }

    /// Reads until `want` has been received (after what was consumed before) or EOF.
    fn expect(&mut self, want: &str) -> String {
        let deadline = Instant::now() + BOUND;
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if let Some(i) = text.find(want) {
                let upto = i + want.len();
                // Keep what follows the match for the next expect, like pexpect.
                let before = text[..upto].to_string();
                self.seen = text.as_bytes()[upto..].to_vec();
                return before;
            }
            assert!(Instant::now() < deadline, "no {want:?} in {text:?}");
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("connection closed while waiting for {want:?}; got {text:?}"),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    fn send(&mut self, s: &str) {
        self.stream.write_all(s.as_bytes()).unwrap();
    }

    fn login(server: &ApcServer) -> Client {
        let mut c = Client::connect(server);
        c.expect("User Name : ");
        c.send("apc\r\n");
        c.expect("Password  : ");
        c.send("apc\r\n");
        c.expect("\n> ");
        c
    }

    /// Control Outlet menu of outlet `n`, then `command` confirmed with YES.
    fn command(&mut self, n: u32, command: &str) {
        for line in ["1", "2", "1", &n.to_string(), "1", command] {
            self.send(&format!("{line}\r\n"));
            if line == command {
                self.expect("to cancel : ");
            } else {
                self.expect("\n> ");
            }
        }
        self.send("YES\r\n");
        self.expect("Press <ENTER> to continue...");
        self.send("\r\n");
        self.expect("\n> ");
        self.send("\x03");
        self.expect("\n> ");
    }

    /// Waits until the server closes the connection.
    fn closed(&mut self) -> bool {
        let deadline = Instant::now() + BOUND;
        let mut buf = [0u8; 1024];
        while Instant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => {}
            }
        }
        false
    }
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("apcsim-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn off_is_saved_and_hooked_before_the_switch_confirms_it() {
    let state = temp_path("off.json");
    let mut config = ServerConfig::new(SwitchModel::new(4).unwrap());
    config.state_file = Some(state.clone());
    let (server, changes) = start(config);
    let mut c = Client::login(&server);
    for line in ["1", "2", "1", "3", "1"] {
        c.send(&format!("{line}\r\n"));
        c.expect("\n> ");
    }
    c.send("2\r\n");
    c.expect("to cancel : ");
    c.send("YES\r\n");
    c.expect("Command successfully issued.");
    // Already reported and saved when the confirmation arrives.
    assert_eq!(
        *changes.lock().unwrap(),
        vec![PowerChange {
            outlet: 3,
            power: Power::Off
        }]
    );
    let json = std::fs::read_to_string(&state).unwrap();
    let mut reloaded = SwitchModel::new(4).unwrap();
    reloaded.load_state_json(&state, &json).unwrap();
    assert_eq!(reloaded.outlet(3).unwrap().power, Power::Off);
    assert_eq!(reloaded.outlet(2).unwrap().power, Power::On);
    assert_eq!(server.outlets()[2].power, Power::Off);
    server.shutdown().unwrap();
    if let Some(dir) = state.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn reboot_reports_off_then_on_after_the_delay() {
    let mut config = ServerConfig::new(SwitchModel::new(2).unwrap());
    config.reboot_delay = Duration::from_millis(300);
    let (server, changes) = start(config);
    let mut c = Client::login(&server);
    c.command(2, "3");
    assert!(wait_until(|| changes.lock().unwrap().len() == 2));
    assert_eq!(
        *changes.lock().unwrap(),
        vec![
            PowerChange {
                outlet: 2,
                power: Power::Off
            },
            PowerChange {
                outlet: 2,
                power: Power::On
            },
        ]
    );
    assert_eq!(server.outlets()[1].power, Power::On);
}

#[test]
fn a_command_during_a_reboot_cancels_its_power_on() {
    let mut config = ServerConfig::new(SwitchModel::new(2).unwrap());
    config.reboot_delay = Duration::from_secs(3);
    let (server, changes) = start(config);
    let mut c = Client::login(&server);
    c.command(1, "3"); // reboot: off now
    assert!(server.set_power(1, Power::On)); // an explicit on during the delay
    assert!(server.set_power(1, Power::Off)); // and off again
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        server.outlets()[0].power,
        Power::Off,
        "the stale reboot must not power on"
    );
    let ch = changes.lock().unwrap().clone();
    assert_eq!(ch.len(), 3, "{ch:?}");
}

#[test]
fn idle_connections_are_closed() {
    let mut config = ServerConfig::new(SwitchModel::new(1).unwrap());
    config.idle_timeout = Duration::from_millis(300);
    let (server, _) = start(config);
    let mut c = Client::connect(&server);
    c.expect("User Name : ");
    assert!(c.closed(), "an idle connection must be closed");
    assert!(String::from_utf8_lossy(&c.seen).contains("timed out"));
}

#[test]
fn connections_beyond_the_limit_are_refused_and_a_freed_slot_is_reused() {
    let mut config = ServerConfig::new(SwitchModel::new(1).unwrap());
    config.max_connections = 1;
    let (server, _) = start(config);
    let mut first = Client::login(&server);
    let mut second = Client::connect(&server);
    assert!(second.closed());
    assert!(String::from_utf8_lossy(&second.seen).contains("Too many sessions"));
    first.send("4\r\n");
    assert!(first.closed(), "logout closes the connection");
    assert!(wait_until(|| server.connections() == 0));
    let mut third = Client::connect(&server);
    third.expect("User Name : ");
}

#[test]
fn shutdown_closes_open_sessions() {
    let (server, _) = start(ServerConfig::new(SwitchModel::new(1).unwrap()));
    let mut c = Client::login(&server);
    server.shutdown().unwrap();
    assert!(c.closed());
}

#[test]
fn hook_command_gets_on_or_off_and_the_outlet_and_is_killed_on_timeout() {
    let change = PowerChange {
        outlet: 7,
        power: Power::Off,
    };
    let out = apc::run_hook_command("echo got", change, BOUND);
    assert!(out.success(), "{out}");
    assert!(out.to_string().contains("got off 7"), "{out}");
    let failing = apc::run_hook_command("exit 3 #", change, BOUND);
    assert!(
        matches!(failing, apc::HookOutcome::Exited { code: Some(3), .. }),
        "{failing}"
    );
    let started = Instant::now();
    let slow = apc::run_hook_command("sleep 30; true", change, Duration::from_millis(300));
    assert!(matches!(slow, apc::HookOutcome::TimedOut), "{slow}");
    assert!(started.elapsed() < BOUND);
}
