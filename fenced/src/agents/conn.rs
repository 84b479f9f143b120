//! Connections to a device and the expect-style dialog on top of them.
//!
//! - [`TelnetTransport`]: TCP with the telnet layer of [`super::telnet`] built in (no
//!   `telnet` binary is needed).
//! - [`SshTransport`]: the system `ssh` client with pipes; a password reaches it through
//!   `SSH_ASKPASS` pointing back at the agent's own executable (see [`askpass_main`]).
//! - [`Dialog`]: send lines, wait for one of several [`Pattern`]s, keep the text received
//!   before the match (pexpect's `before`), all bounded by explicit timeouts.

use super::action::AgentError;
use super::telnet::{self, TelnetCodec};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A byte pipe to the device.
pub trait Transport {
    /// Sends bytes as they are.
    fn send(&mut self, data: &[u8]) -> Result<(), AgentError>;
    /// Appends what arrives to `buf`, waiting at most until `deadline`. `Ok(false)` means the
    /// device closed the connection; `Ok(true)` with nothing appended means the deadline came.
    fn recv(&mut self, buf: &mut Vec<u8>, deadline: Instant) -> Result<bool, AgentError>;
}

/// Which address families a connection may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Family {
    /// Either.
    #[default]
    Any,
    /// `-4`.
    V4,
    /// `-6`.
    V6,
}

/// A telnet session over TCP.
#[derive(Debug)]
pub struct TelnetTransport {
    stream: TcpStream,
    codec: TelnetCodec,
}

impl TelnetTransport {
    /// Connects to `host:port`, trying each resolved address of the allowed family, each
    /// for at most `timeout`.
    pub fn connect(
        host: &str,
        port: u16,
        family: Family,
        timeout: Duration,
    ) -> Result<Self, AgentError> {
        let target = format!("{host}:{port}");
        let connect_err = |source| AgentError::Connect {
            target: target.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(connect_err)?
            .filter(|a| match family {
                Family::Any => true,
                Family::V4 => a.is_ipv4(),
                Family::V6 => a.is_ipv6(),
            })
            .collect();
        let mut last = std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address of the requested family",
        );
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout.max(Duration::from_millis(100))) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(TelnetTransport {
                        stream,
                        codec: TelnetCodec::default(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(connect_err(last))
    }
}

impl Transport for TelnetTransport {
    fn send(&mut self, data: &[u8]) -> Result<(), AgentError> {
        self.stream
            .write_all(&telnet::encode(data))
            .map_err(AgentError::Io)
    }

    fn recv(&mut self, buf: &mut Vec<u8>, deadline: Instant) -> Result<bool, AgentError> {
        let mut raw = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(true);
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(AgentError::Io)?;
            let n = match self.stream.read(&mut raw) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(false),
                Err(e) => return Err(AgentError::Io(e)),
            };
            let (before, mut reply) = (buf.len(), Vec::new());
            self.codec.decode(&raw[..n], buf, &mut reply);
            if !reply.is_empty() {
                self.stream.write_all(&reply).map_err(AgentError::Io)?;
            }
            if buf.len() > before {
                return Ok(true);
            }
        }
    }
}

/// The environment variable that turns the agent into its own ssh askpass helper.
pub const ASKPASS_ENV: &str = "FENCE_AGENT_ASKPASS";
/// The environment variable carrying the secret to the helper.
pub const ASKPASS_SECRET_ENV: &str = "FENCE_AGENT_ASKPASS_SECRET";

/// Call first thing in an agent's `main`: when ssh runs the agent as its askpass helper,
/// this answers ssh's question on stdout and returns `true` (the caller exits 0). A host-key
/// question (`(yes/no...)`) is answered `yes`, as fence-agents does; anything else gets the
/// password.
pub fn askpass_main() -> bool {
    if std::env::var_os(ASKPASS_ENV).is_none() {
        return false;
    }
    let question = std::env::args().nth(1).unwrap_or_default();
    let answer = if question.contains("(yes/no") {
        "yes".to_owned()
    } else {
        std::env::var(ASKPASS_SECRET_ENV).unwrap_or_default()
    };
    println!("{answer}");
    true
}

/// What to start ssh with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// The ssh program.
    pub ssh_path: String,
    /// Device address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Private key, if any.
    pub identity_file: Option<String>,
    /// Extra options, split at whitespace.
    pub ssh_options: Option<String>,
    /// Address family.
    pub family: Family,
}

impl SshTarget {
    /// The ssh arguments: `[-4|-6] -tt -p PORT [-i FILE] [options] user@host`.
    pub fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        match self.family {
            Family::V4 => a.push("-4".to_owned()),
            Family::V6 => a.push("-6".to_owned()),
            Family::Any => {}
        }
        a.extend(["-tt".to_owned(), "-p".to_owned(), self.port.to_string()]);
        match &self.identity_file {
            Some(f) => a.extend(["-i".to_owned(), f.clone()]),
            None => a.extend(["-o".to_owned(), "PubkeyAuthentication=no".to_owned()]),
        }
        if let Some(o) = &self.ssh_options {
            a.extend(o.split_whitespace().map(String::from));
        }
        a.push(format!("{}@{}", self.user, self.host));
        a
    }
}

/// A session through the system ssh client.
#[derive(Debug)]
pub struct SshTransport {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Vec<u8>>,
}

impl SshTransport {
    /// Starts ssh; `password` (or the key's passphrase) is handed over through askpass.
    pub fn spawn(target: &SshTarget, password: Option<&str>) -> Result<Self, AgentError> {
        let spawn_err = |source| AgentError::Spawn {
            program: target.ssh_path.clone(),
            source,
        };
        let me = std::env::current_exe().map_err(spawn_err)?;
        let mut cmd = Command::new(&target.ssh_path);
        cmd.args(target.args())
            .env("LANG", "C")
            .env("LC_ALL", "C")
            .env("SSH_ASKPASS", me)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env(ASKPASS_ENV, "1")
            .env(ASKPASS_SECRET_ENV, password.unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let (Some(stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_err(std::io::Error::other("no pipes to ssh")));
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(SshTransport { child, stdin, rx })
    }
}

impl Transport for SshTransport {
    fn send(&mut self, data: &[u8]) -> Result<(), AgentError> {
        self.stdin
            .write_all(data)
            .and_then(|_| self.stdin.flush())
            .map_err(AgentError::Io)
    }

    fn recv(&mut self, buf: &mut Vec<u8>, deadline: Instant) -> Result<bool, AgentError> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(bytes) => {
                buf.extend_from_slice(&bytes);
                Ok(true)
            }
            Err(RecvTimeoutError::Timeout) => Ok(true),
            Err(RecvTimeoutError::Disconnected) => Ok(false),
        }
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Something to wait for in the device's output. Matching ignores ASCII case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// A literal text.
    Text(String),
    /// A login prompt: `login: ` (any spaces before the colon), `Login Name:  ` (not after
    /// `Last `), `username: ` or `User Name :` — fence-agents' login regex.
    Login,
}

impl Pattern {
    /// A literal pattern.
    pub fn text(s: &str) -> Pattern {
        Pattern::Text(s.to_owned())
    }

    /// The first match in `hay` (already lower-cased): start and end.
    pub fn find(&self, hay: &[u8]) -> Option<(usize, usize)> {
        match self {
            Pattern::Text(t) => {
                find_from(hay, t.to_ascii_lowercase().as_bytes(), 0).map(|s| (s, s + t.len()))
            }
            Pattern::Login => {
                let mut best: Option<(usize, usize)> = None;
                let mut keep = |m: Option<(usize, usize)>| {
                    if let Some(m) = m {
                        if best.is_none_or(|b| m.0 < b.0) {
                            best = Some(m);
                        }
                    }
                };
                keep(login_colon(hay));
                keep(find_from(hay, b"username: ", 0).map(|s| (s, s + 10)));
                keep(find_from(hay, b"user name :", 0).map(|s| (s, s + 11)));
                let mut from = 0;
                while let Some(s) = find_from(hay, b"login name:  ", from) {
                    if !hay[..s].ends_with(b"last ") {
                        keep(Some((s, s + 13)));
                        break;
                    }
                    from = s + 1;
                }
                best
            }
        }
    }
}

fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from.min(hay.len()));
    }
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `login\s*: `.
fn login_colon(hay: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(s) = find_from(hay, b"login", from) {
        let mut i = s + 5;
        while i < hay.len() && hay[i].is_ascii_whitespace() {
            i += 1;
        }
        if hay.get(i..i + 2) == Some(b": ") {
            return Some((s, i + 2));
        }
        from = s + 1;
    }
    None
}

/// The earliest match of any pattern in `buf` (ties: the lower index): `(index, start, end)`.
pub fn earliest(buf: &[u8], patterns: &[Pattern]) -> Option<(usize, usize, usize)> {
    let hay = buf.to_ascii_lowercase();
    patterns
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.find(&hay).map(|(s, e)| (i, s, e)))
        .min_by_key(|&(i, s, _)| (s, i))
}

/// An expect-style dialog over a transport.
#[derive(Debug)]
pub struct Dialog<T> {
    transport: T,
    buf: Vec<u8>,
    /// The line end sent after every command.
    pub eol: &'static str,
    /// The text received before the last match.
    pub before: String,
}

impl<T: Transport> Dialog<T> {
    /// A dialog sending `\r\n` line ends.
    pub fn new(transport: T) -> Dialog<T> {
        Dialog {
            transport,
            buf: Vec::new(),
            eol: "\r\n",
            before: String::new(),
        }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sends `text` and the line end.
    pub fn send_line(&mut self, text: &str) -> Result<(), AgentError> {
        tracing::trace!(text, "send");
        self.transport
            .send(format!("{text}{}", self.eol).as_bytes())
    }

    /// Sends raw bytes (Ctrl-C).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), AgentError> {
        self.transport.send(bytes)
    }

    /// Waits for the first of `patterns`; returns its index and keeps the text before it in
    /// [`Dialog::before`]. What follows the match stays buffered for the next wait.
    pub fn expect(&mut self, patterns: &[Pattern], timeout: Duration) -> Result<usize, AgentError> {
        let deadline = Instant::now() + timeout;
        let what = || {
            patterns
                .iter()
                .map(|p| match p {
                    Pattern::Text(t) => format!("{t:?}"),
                    Pattern::Login => "a login prompt".to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" or ")
        };
        loop {
            if let Some((i, start, end)) = earliest(&self.buf, patterns) {
                self.before = String::from_utf8_lossy(&self.buf[..start]).into_owned();
                self.buf.drain(..end);
                return Ok(i);
            }
            if Instant::now() >= deadline {
                return Err(AgentError::Timeout {
                    waiting_for: what(),
                    after: timeout,
                });
            }
            if !self.transport.recv(&mut self.buf, deadline)? {
                if let Some((i, start, end)) = earliest(&self.buf, patterns) {
                    self.before = String::from_utf8_lossy(&self.buf[..start]).into_owned();
                    self.buf.drain(..end);
                    return Ok(i);
                }
                return Err(AgentError::ConnectionLost {
                    waiting_for: what(),
                });
            }
            // Keep memory bounded against a device that talks forever without a match.
            if self.buf.len() > 1 << 20 {
                let cut = self.buf.len() - (1 << 16);
                self.buf.drain(..cut);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(buf: &str, pats: &[Pattern]) -> Option<(usize, usize, usize)> {
        earliest(buf.as_bytes(), pats)
    }

    #[test]
    fn login_prompt_forms_match_and_last_login_name_does_not() {
        for prompt in [
            "\r\nUser Name : ",
            "host login: ",
            "LOGIN : ",
            "Username: ",
            "Login Name:  ",
        ] {
            assert!(at(prompt, &[Pattern::Login]).is_some(), "{prompt:?}");
        }
        assert_eq!(at("Last Login Name:  x", &[Pattern::Login]), None);
        assert_eq!(at("logins are 5", &[Pattern::Login]), None);
    }

    #[test]
    fn the_earliest_match_wins_then_the_lower_index() {
        let pats = [Pattern::text("\napc>"), Pattern::text("\n>")];
        assert_eq!(at("menu\r\n> ", &pats), Some((1, 5, 7)));
        assert_eq!(at("x\napc>\n>", &pats), Some((0, 1, 6)));
        assert_eq!(
            at("PASSWORD  : ", &[Pattern::text("password")]),
            Some((0, 0, 8))
        );
    }

    #[test]
    fn ssh_arguments_carry_port_key_options_and_target() {
        let t = SshTarget {
            ssh_path: "ssh".into(),
            host: "10.0.0.5".into(),
            port: 2222,
            user: "apc".into(),
            identity_file: Some("/k".into()),
            ssh_options: Some("-o  StrictHostKeyChecking=no".into()),
            family: Family::V4,
        };
        assert_eq!(
            t.args(),
            [
                "-4",
                "-tt",
                "-p",
                "2222",
                "-i",
                "/k",
                "-o",
                "StrictHostKeyChecking=no",
                "apc@10.0.0.5"
            ]
        );
    }

    proptest! {
        #[test]
        fn matching_never_panics(hay in proptest::collection::vec(any::<u8>(), 0..200), lit in ".{0,6}") {
            let _ = earliest(&hay, &[Pattern::Login, Pattern::Text(lit)]);
        }
    }
}
