//! `apcsim`: a simulated APC power switch that the real `fence_apc` can log in to.
//!
//! See docs/apcsim.md. Prints `listening on ADDR` on stdout once the socket is bound (so
//! `--listen 127.0.0.1:0` can be used), then serves until killed. Every outlet change is
//! saved to `--state` and reported by running `--hook CMD on|off N`.

use clap::Parser;
use clusterlab::apc::{self, Firmware, HookOutcome, PowerChange, ServerConfig, SwitchModel};
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "apcsim",
    about = "A simulated APC MasterSwitch that fence_apc can fence through (telnet, loopback)"
)]
struct Cli {
    /// Address to listen on, e.g. 127.0.0.1:2323 (port 0 picks a free one).
    #[arg(long)]
    listen: String,
    /// Number of outlets (1..=64).
    #[arg(long, default_value_t = 8)]
    outlets: u32,
    /// User name accepted at `User Name :`.
    #[arg(long, default_value = "apc")]
    login: String,
    /// Password accepted at `Password  :`.
    #[arg(long, default_value = "apc")]
    password: String,
    /// Firmware: v3 (menus, the default) or v6 (command line).
    #[arg(long, default_value = "v3")]
    firmware: String,
    /// Outlet names, comma-separated, from outlet 1 on (default `Outlet N`).
    #[arg(long)]
    names: Option<String>,
    /// Outlet lines per page of the menu's outlet list (0: never page).
    #[arg(long, default_value_t = 0)]
    page_size: usize,
    /// State file (JSON): loaded at start if it exists, rewritten after every change.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Shell command run as `CMD on|off N` after every power change.
    #[arg(long)]
    hook: Option<String>,
    /// Seconds a hook may run before its process group is killed.
    #[arg(long, default_value_t = 10)]
    hook_timeout_secs: u64,
    /// Connections served at once.
    #[arg(long, default_value_t = 4)]
    max_connections: usize,
    /// Seconds without input after which a connection is closed.
    #[arg(long, default_value_t = 180)]
    idle_timeout_secs: u64,
    /// Milliseconds an outlet stays off during Immediate Reboot.
    #[arg(long, default_value_t = 5000)]
    reboot_delay_ms: u64,
    /// Log only errors.
    #[arg(long)]
    quiet: bool,
}

fn build_model(cli: &Cli) -> Result<SwitchModel, apc::ApcError> {
    let mut model = SwitchModel::new(cli.outlets)?;
    model.firmware = Firmware::parse(&cli.firmware)?;
    model.login.clone_from(&cli.login);
    model.password.clone_from(&cli.password);
    model.page_size = cli.page_size;
    if let Some(names) = &cli.names {
        for (name, n) in names.split(',').zip(1u32..) {
            model.rename(n, name.trim())?;
        }
    }
    if let Some(path) = &cli.state {
        apc::load_state_file(path, &mut model)?;
        apc::write_state_file(path, &model)?;
    }
    Ok(model)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let model = match build_model(&cli) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("apcsim: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&cli.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("apcsim: cannot listen on {}: {e}", cli.listen);
            return ExitCode::from(2);
        }
    };
    match listener.local_addr() {
        Ok(addr) => {
            println!("listening on {addr}");
            let _ = std::io::stdout().flush();
        }
        Err(e) => {
            eprintln!("apcsim: {e}");
            return ExitCode::from(2);
        }
    }
    let mut config = ServerConfig::new(model);
    config.state_file = cli.state.clone();
    config.max_connections = cli.max_connections.max(1);
    config.idle_timeout = Duration::from_secs(cli.idle_timeout_secs.max(1));
    config.reboot_delay = Duration::from_millis(cli.reboot_delay_ms);
    config.verbose = !cli.quiet;
    let hook_cmd = cli.hook.clone();
    let hook_timeout = Duration::from_secs(cli.hook_timeout_secs.max(1));
    let quiet = cli.quiet;
    let hook = move |change: PowerChange| {
        let Some(cmd) = &hook_cmd else { return };
        let started = Instant::now();
        let outcome = apc::run_hook_command(cmd, change, hook_timeout);
        let ms = started.elapsed().as_millis();
        if !quiet || !matches!(outcome, HookOutcome::Exited { code: Some(0), .. }) {
            eprintln!(
                "apcsim: hook {:?} {}: {outcome} ({ms} ms)",
                change.power, change.outlet
            );
        }
    };
    match apc::serve(listener, config, hook) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "apcsim: {e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            ExitCode::FAILURE
        }
    }
}
