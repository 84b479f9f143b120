//! The `main` every power agent shares: read options (stdin or command line), answer
//! `-h`, `-V`, `metadata` and `validate-all`, check the parameters as fence-agents does,
//! honour `delay`, connect, and hand over to the action engine.

use super::action::{self, Action, AgentError, Clock, PowerDevice, Settings, SystemClock};
use super::metadata::{self, AgentInfo};
use super::options::{self, Invocation, Options, ParamSpec, UsageError};
use std::io::{Read, Write};

/// The version `-V` prints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One power agent: what it says about itself and how it reaches its device.
pub trait PowerAgent {
    /// Metadata header and actions.
    fn info(&self) -> AgentInfo;
    /// Every parameter it accepts.
    fn params(&self) -> Vec<ParamSpec>;
    /// Whether it logs in with a user name (then `username` is required).
    fn needs_login(&self) -> bool {
        true
    }
    /// Connects and logs in. `opts` has been validated; the password script has run.
    fn connect(
        &self,
        opts: &Options,
        params: &[ParamSpec],
    ) -> Result<Box<dyn PowerDevice>, ConnectError>;
}

/// Why [`PowerAgent::connect`] failed: a parameter problem or the device.
#[derive(Debug)]
pub enum ConnectError {
    /// A parameter is wrong; usage error, exit 1.
    Usage(UsageError),
    /// The device could not be reached or refused the login.
    Device(AgentError),
}

impl From<UsageError> for ConnectError {
    fn from(e: UsageError) -> Self {
        ConnectError::Usage(e)
    }
}

impl From<AgentError> for ConnectError {
    fn from(e: AgentError) -> Self {
        ConnectError::Device(e)
    }
}

/// Reads the options: stdin when `args` is empty (fenced's way), else the command line.
/// `Ok(None)` means `-h` or `-V` was answered.
pub fn read_options(
    name: &str,
    params: &[ParamSpec],
    args: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Option<Options>, UsageError> {
    if args.is_empty() {
        let mut bytes = Vec::new();
        let _ = stdin.read_to_end(&mut bytes);
        let (opts, warnings) = options::parse_stdin(&String::from_utf8_lossy(&bytes), params);
        for w in warnings {
            let _ = writeln!(err, "{w}");
        }
        return Ok(Some(opts));
    }
    match options::parse_args(args, params)? {
        Invocation::Run(o) => Ok(Some(o)),
        Invocation::Help => {
            let _ = write!(out, "{}", options::usage(name, params));
            Ok(None)
        }
        Invocation::Version => {
            let _ = writeln!(out, "{VERSION}");
            Ok(None)
        }
    }
}

fn usage_err(s: &str) -> UsageError {
    UsageError(s.to_owned())
}

/// Checks the parameters fence-agents checks, in its order, and fills `password` from
/// `password_script`.
pub fn validate(
    agent: &dyn PowerAgent,
    opts: &mut Options,
    params: &[ParamSpec],
    action: Action,
) -> Result<(), UsageError> {
    if opts.given("password").is_none() {
        if let Some(script) = opts.given("password_script").map(str::to_owned) {
            if let (Some(pw), Some(spec)) = (
                options::run_password_script(&script),
                params.iter().find(|p| p.name == "password"),
            ) {
                opts.set(spec, pw);
            }
        }
    }
    if agent.needs_login() {
        if opts.given("username").is_none() {
            return Err(usage_err("Failed: You have to set login name"));
        }
        if opts.given("password").is_none() && opts.given("identity_file").is_none() {
            return Err(usage_err(
                "Failed: You have to enter password, password script or identity file",
            ));
        }
    }
    if opts.given("ip").is_none() {
        return Err(usage_err("Failed: You have to enter fence address"));
    }
    if action.needs_plug() && opts.given("plug").is_none_or(str::is_empty) {
        return Err(usage_err(
            "Failed: You have to enter plug number or machine identification",
        ));
    }
    if let Some(port) = opts.given("ipport") {
        if port.trim().parse::<u16>().is_err() {
            return Err(usage_err(
                "Failed: The value you have entered for --ipport is not a valid integer",
            ));
        }
    }
    for t in [
        "delay",
        "login_timeout",
        "shell_timeout",
        "power_timeout",
        "power_wait",
        "stonith_status_sleep",
    ] {
        options::seconds(opts, params, t)?;
    }
    options::integer(opts, params, "retry_on")?;
    Ok(())
}

/// The engine settings from validated options.
pub fn settings(
    opts: &Options,
    params: &[ParamSpec],
    action: Action,
) -> Result<Settings, UsageError> {
    Ok(Settings {
        action,
        plug: opts.given("plug").unwrap_or("").to_owned(),
        separator: options::value(opts, params, "separator")
            .unwrap_or(",")
            .to_owned(),
        power_wait: options::seconds(opts, params, "power_wait")?,
        power_timeout: options::seconds(opts, params, "power_timeout")?,
        status_sleep: options::seconds(opts, params, "stonith_status_sleep")?,
        retry_on: u32::try_from(options::integer(opts, params, "retry_on")?).unwrap_or(u32::MAX),
        missing_as_off: opts.flag("missing_as_off"),
    })
}

/// A power agent's whole life; returns the exit code.
pub fn main(
    agent: &dyn PowerAgent,
    args: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let info = agent.info();
    let params = agent.params();
    let fail = |err: &mut dyn Write, e: UsageError| {
        let _ = writeln!(err, "{e}");
        1
    };
    let mut opts = match read_options(info.name, &params, args, stdin, out, err) {
        Ok(Some(o)) => o,
        Ok(None) => return 0,
        Err(e) => return fail(err, e),
    };
    let word = options::value(&opts, &params, "action")
        .unwrap_or("reboot")
        .to_owned();
    let action = match Action::parse(&word).filter(|a| {
        let name = if *a == Action::Metadata {
            "metadata"
        } else {
            word.as_str()
        };
        info.actions.iter().any(|x| x.eq_ignore_ascii_case(name)) || word == "manpage"
    }) {
        Some(a) => a,
        None => {
            return fail(
                err,
                UsageError(format!("Failed: Unrecognised action '{word}'")),
            )
        }
    };
    if action == Action::Metadata {
        let _ = write!(out, "{}", metadata::render(&info, &params));
        return 0;
    }
    if opts.verbose > 0 || opts.flag("verbose") {
        clusterio::logging::init("fenced", true);
    }
    // `switch:port` plugs name the unit of a daisy chain.
    if let Some((sw, plug)) = opts
        .given("plug")
        .and_then(|p| p.split_once(':'))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    {
        if let (Some(s), Some(p)) = (
            params.iter().find(|s| s.name == "switch"),
            params.iter().find(|s| s.name == "plug"),
        ) {
            opts.set(s, sw);
            opts.set(p, plug);
        }
    }
    if let Err(e) = validate(agent, &mut opts, &params, action) {
        return fail(err, e);
    }
    if action == Action::ValidateAll {
        return 0;
    }
    let s = match settings(&opts, &params, action) {
        Ok(s) => s,
        Err(e) => return fail(err, e),
    };
    let mut clock = SystemClock::default();
    if matches!(action, Action::Off | Action::Reboot) {
        if let Ok(delay) = options::seconds(&opts, &params, "delay") {
            clock.sleep(delay);
        }
    }
    let mut dev = match agent.connect(&opts, &params) {
        Ok(d) => d,
        Err(ConnectError::Usage(e)) => return fail(err, e),
        Err(ConnectError::Device(e)) => {
            let _ = writeln!(err, "{}", e.fence_agents_message());
            let _ = writeln!(err, "({e})");
            return 1;
        }
    };
    let code = action::run(dev.as_mut(), &s, &mut clock, out, err);
    dev.logout();
    code
}
