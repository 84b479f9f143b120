//! The TCP server: one thread per connection, a shared switch, the state file and the hook.
//!
//! Every outlet change made through any connection is, in this order and before the client
//! sees the switch's answer: applied to the shared model, written to the state file (when
//! one is configured), and reported to the hook. An agent that reads `Command successfully
//! issued.` therefore knows the hook (the lab's "power cut") has already run. Hook calls are
//! made in the order the changes happened, one at a time. Immediate Reboot is reported as
//! off, then on again after `reboot_delay` unless the outlet was commanded again meanwhile.

use super::model::{ApcError, Command, Outlet, OutletAction, Power, SwitchModel};
use super::session::ApcSession;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// A power change reported to the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerChange {
    /// The outlet (1-based).
    pub outlet: u32,
    /// Its new power state.
    pub power: Power,
}

/// The switch and the server's limits.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The switch as it starts (already loaded from the state file, if any).
    pub model: SwitchModel,
    /// Connections served at once; further ones are told so and closed. (A real AP79xx
    /// takes one telnet session at a time.)
    pub max_connections: usize,
    /// A connection with no input for this long is closed.
    pub idle_timeout: Duration,
    /// How long an outlet stays off during Immediate Reboot.
    pub reboot_delay: Duration,
    /// Where the outlets are saved after each change (JSON, written atomically).
    pub state_file: Option<PathBuf>,
    /// Log connections and changes to stderr.
    pub verbose: bool,
}

impl ServerConfig {
    /// Defaults: 4 connections, 180 s idle timeout, 5 s reboot delay, no state file, quiet.
    pub fn new(model: SwitchModel) -> ServerConfig {
        ServerConfig {
            model,
            max_connections: 4,
            idle_timeout: Duration::from_secs(180),
            reboot_delay: Duration::from_secs(5),
            state_file: None,
            verbose: false,
        }
    }
}

type Hook = Box<dyn Fn(PowerChange) + Send>;

struct SwitchState {
    model: SwitchModel,
    /// Bumped on every command to an outlet; a pending reboot only powers on if unchanged.
    generation: Vec<u64>,
    /// Pending reboot power-ons: outlet -> (when, generation of the reboot). At most one
    /// per outlet, so a flood of reboots costs no more than one.
    reboots: BTreeMap<u32, (Instant, u64)>,
}

struct Shared {
    state: Mutex<SwitchState>,
    /// Wakes the reboot timer when a reboot is scheduled or the server stops.
    reboot_due: Condvar,
    hook: Mutex<Hook>,
    stop: AtomicBool,
    connections: AtomicUsize,
    max_connections: usize,
    idle_timeout: Duration,
    reboot_delay: Duration,
    state_file: Option<PathBuf>,
    verbose: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking hook must not take the switch down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn log(&self, msg: fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("apcsim: {msg}");
        }
    }

    fn persist(&self, model: &SwitchModel) {
        if let Some(path) = &self.state_file {
            if let Err(e) = write_state_file(path, model) {
                eprintln!("apcsim: {e}: {}", source_text(&e));
            }
        }
    }

    /// Reports `actions` (already applied to `st.model`): persists, then calls the hook in
    /// order while holding the hook lock, taken before the state lock is released so that
    /// hook calls follow the order of the changes.
    fn report(&self, mut st: MutexGuard<'_, SwitchState>, actions: &[OutletAction]) {
        if actions.is_empty() {
            return;
        }
        self.persist(&st.model);
        for &a in actions {
            let n = match a {
                OutletAction::On(n) | OutletAction::Off(n) | OutletAction::Reboot(n) => n,
            };
            let Some(g) = index(n).and_then(|i| st.generation.get_mut(i)) else {
                continue;
            };
            *g += 1;
            let g = *g;
            if let OutletAction::Reboot(_) = a {
                st.reboots
                    .insert(n, (Instant::now() + self.reboot_delay, g));
                self.reboot_due.notify_all();
            }
        }
        let hook = lock(&self.hook);
        drop(st);
        for &a in actions {
            let change = match a {
                OutletAction::On(n) => PowerChange {
                    outlet: n,
                    power: Power::On,
                },
                OutletAction::Off(n) | OutletAction::Reboot(n) => PowerChange {
                    outlet: n,
                    power: Power::Off,
                },
            };
            self.log(format_args!(
                "outlet {} {:?} ({a:?})",
                change.outlet, change.power
            ));
            hook(change);
        }
    }

    /// The reboot timer: powers outlets on again when their reboot delay is over, unless
    /// they were commanded since. Runs until the server stops.
    fn reboot_timer(&self) {
        let mut st = lock(&self.state);
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let due = st
                .reboots
                .iter()
                .find(|(_, (at, _))| *at <= now)
                .map(|(&n, &(_, g))| (n, g));
            if let Some((n, g)) = due {
                st.reboots.remove(&n);
                let current = index(n).and_then(|i| st.generation.get(i).copied());
                if current == Some(g) && st.model.set_power(n, Power::On) {
                    self.report(st, &[OutletAction::On(n)]);
                    st = lock(&self.state);
                }
                continue;
            }
            let next = st.reboots.values().map(|(at, _)| *at).min();
            let wait = next.map_or(POLL, |at| at.saturating_duration_since(now).min(POLL));
            st = self
                .reboot_due
                .wait_timeout(st, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

fn index(n: u32) -> Option<usize> {
    usize::try_from(n.checked_sub(1)?).ok()
}

fn source_text(e: &ApcError) -> String {
    std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Writes `model`'s state JSON to `path` atomically (a temporary file, then rename).
pub fn write_state_file(path: &Path, model: &SwitchModel) -> Result<(), ApcError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let err = |source| ApcError::StateWrite {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, model.state_json()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Loads outlet names and power from `path` into `model` if the file exists.
/// Returns whether it existed.
pub fn load_state_file(path: &Path, model: &mut SwitchModel) -> Result<bool, ApcError> {
    match std::fs::read_to_string(path) {
        Ok(json) => model.load_state_json(path, &json).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ApcError::StateRead {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A running simulator, serving on its own threads until shut down or dropped.
pub struct ApcServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<Result<(), ApcError>>>,
}

impl ApcServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The outlets as they are now.
    pub fn outlets(&self) -> Vec<Outlet> {
        lock(&self.shared.state).model.outlets.clone()
    }

    /// Sets an outlet's power from outside the dialog (as the lab's operator would at the
    /// switch), persisted and reported like any change. Returns whether it changed.
    pub fn set_power(&self, outlet: u32, power: Power) -> bool {
        let mut st = lock(&self.shared.state);
        let command = match power {
            Power::On => Command::On,
            Power::Off => Command::Off,
        };
        let action = st.model.command(outlet, command);
        let changed = action.is_some();
        self.shared
            .report(st, &action.into_iter().collect::<Vec<_>>());
        changed
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Stops accepting, closes every connection (within about 100 ms) and waits for that.
    pub fn shutdown(mut self) -> Result<(), ApcError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ApcError> {
        self.shared.stop.store(true, Ordering::Relaxed);
        match self.accept.take() {
            Some(h) => h.join().unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for ApcServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Starts serving `listener` on background threads; `hook` hears every power change.
pub fn spawn(
    listener: TcpListener,
    config: ServerConfig,
    hook: impl Fn(PowerChange) + Send + 'static,
) -> Result<ApcServer, ApcError> {
    let addr = listener
        .local_addr()
        .map_err(|source| ApcError::Listen { source })?;
    let shared = new_shared(config, Box::new(hook));
    let s = Arc::clone(&shared);
    let accept = thread::spawn(move || accept_loop(&listener, &s));
    Ok(ApcServer {
        shared,
        addr,
        accept: Some(accept),
    })
}

/// Serves `listener` on this thread until the listening socket fails.
pub fn serve(
    listener: TcpListener,
    config: ServerConfig,
    hook: impl Fn(PowerChange) + Send + 'static,
) -> Result<(), ApcError> {
    let shared = new_shared(config, Box::new(hook));
    accept_loop(&listener, &shared)
}

fn new_shared(config: ServerConfig, hook: Hook) -> Arc<Shared> {
    let generation = vec![0; config.model.outlets.len()];
    Arc::new(Shared {
        state: Mutex::new(SwitchState {
            model: config.model,
            generation,
            reboots: BTreeMap::new(),
        }),
        reboot_due: Condvar::new(),
        hook: Mutex::new(hook),
        stop: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
        max_connections: config.max_connections,
        idle_timeout: config.idle_timeout,
        reboot_delay: config.reboot_delay,
        state_file: config.state_file,
        verbose: config.verbose,
    })
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) -> Result<(), ApcError> {
    listener
        .set_nonblocking(true)
        .map_err(|source| ApcError::Listen { source })?;
    let timer = {
        let s = Arc::clone(shared);
        thread::spawn(move || s.reboot_timer())
    };
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let result = loop {
        if shared.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        workers.retain(|h| !h.is_finished());
        match listener.accept() {
            Ok((stream, peer)) => {
                if shared.connections.load(Ordering::Relaxed) >= shared.max_connections {
                    shared.log(format_args!("{peer}: refused, too many sessions"));
                    let mut stream = stream;
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                    let _ = stream.write_all(b"\r\nToo many sessions, try again later.\r\n");
                    continue;
                }
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let s = Arc::clone(shared);
                workers.push(thread::spawn(move || {
                    s.log(format_args!("{peer}: connected"));
                    let why = connection(stream, &s);
                    s.log(format_args!("{peer}: closed ({why})"));
                    s.connections.fetch_sub(1, Ordering::Relaxed);
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL / 2),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(source) => break Err(ApcError::Listen { source }),
        }
    };
    shared.stop.store(true, Ordering::Relaxed);
    shared.reboot_due.notify_all();
    for w in workers.into_iter().chain([timer]) {
        let _ = w.join();
    }
    result
}

/// Serves one connection; returns why it ended, for the log.
fn connection(mut stream: TcpStream, shared: &Arc<Shared>) -> &'static str {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_nodelay(true))
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))));
    if setup.is_err() {
        return "socket setup failed";
    }
    let (mut session, hello) = ApcSession::new(&lock(&shared.state).model);
    if stream.write_all(&hello).is_err() {
        return "write failed";
    }
    let mut buf = [0u8; 1024];
    let mut last_input = Instant::now();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return "server stopping";
        }
        match stream.read(&mut buf) {
            Ok(0) => return "client closed",
            Ok(n) => {
                last_input = Instant::now();
                let mut st = lock(&shared.state);
                let (out, actions) = session.input(&mut st.model, &buf[..n]);
                shared.report(st, &actions);
                if stream.write_all(&out).is_err() {
                    return "write failed";
                }
                if session.is_closed() {
                    return "logged out";
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last_input.elapsed() >= shared.idle_timeout {
                    let _ = stream.write_all(b"\r\nConnection timed out - Bye\r\n");
                    return "idle timeout";
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return "client closed",
            Err(_) => return "read failed",
        }
    }
}
