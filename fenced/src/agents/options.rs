//! Agent parameters the way fence-agents' `fencing.py` reads them.
//!
//! An agent started with no arguments (argc == 1) reads `name=value` lines from stdin, as
//! fenced and `fence_node` run it; with arguments it reads getopt-style options and ignores
//! stdin (spec/fencing.md §2.1, §2.2):
//!
//! ```text
//!  stdin line --trim--> skip "" and "#..." --split at first '='--> name, value
//!      value: surrounding double quotes removed
//!      name:  modern name | deprecated name (ipaddr, login, passwd, port, secure, ...)
//!             | legacy alias (option, hostname) | long option spelling (password-script)
//!             | nodename/agent (ignored when the agent has no such parameter)
//!             | anything else -> "Parse error: Ignoring unknown option '<line>'" on stderr
//!      boolean value: 1/yes/on/true -> set, 0/no/off/false -> unset, else a warning
//! ```
//!
//! Every value is stored under the parameter's modern name; later lines win.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The type of a parameter's value, as metadata calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Free text.
    String,
    /// A flag: present or not.
    Boolean,
    /// A whole number.
    Integer,
    /// A time in seconds (fractions allowed).
    Second,
}

impl ParamKind {
    /// The word metadata's `<content type=...>` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::String => "string",
            ParamKind::Boolean => "boolean",
            ParamKind::Integer => "integer",
            ParamKind::Second => "second",
        }
    }
}

/// One parameter an agent accepts: its names on stdin and the command line, and metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    /// The modern name: the stdin key and metadata name values are stored under.
    pub name: &'static str,
    /// The deprecated name still accepted on stdin (`ipaddr` for `ip`).
    pub old: Option<&'static str>,
    /// Short command-line option letter.
    pub short: Option<char>,
    /// Long command-line option, without the dashes.
    pub long: &'static str,
    /// Value type.
    pub kind: ParamKind,
    /// The value used when none is given.
    pub default: Option<&'static str>,
    /// Whether metadata marks it required.
    pub required: bool,
    /// The placeholder metadata and `-h` show after the long option (`[ip]`), empty for flags.
    pub hint: &'static str,
    /// One-line description.
    pub desc: &'static str,
}

impl ParamSpec {
    /// The same parameter with another default.
    pub const fn with_default(mut self, default: &'static str) -> ParamSpec {
        self.default = Some(default);
        self
    }

    /// The same parameter without a default.
    pub const fn without_default(mut self) -> ParamSpec {
        self.default = None;
        self
    }

    /// The same parameter, required or not.
    pub const fn required(mut self, required: bool) -> ParamSpec {
        self.required = required;
        self
    }

    /// The getopt text of metadata and `-h`: `-a, --ip=[ip]`.
    pub fn getopt(&self) -> String {
        let long = if self.hint.is_empty() {
            format!("--{}", self.long)
        } else {
            format!("--{}={}", self.long, self.hint)
        };
        match self.short {
            Some(c) => format!("-{c}, {long}"),
            None => long,
        }
    }
}

#[allow(clippy::too_many_arguments)] // a table row constructor
const fn p(
    name: &'static str,
    old: Option<&'static str>,
    short: Option<char>,
    long: &'static str,
    kind: ParamKind,
    default: Option<&'static str>,
    hint: &'static str,
    desc: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        old,
        short,
        long,
        kind,
        default,
        required: false,
        hint,
        desc,
    }
}

use ParamKind::{Boolean as B, Integer as I, Second as T, String as S};

/// The standard parameters of fence-agents (spec/fencing.md §2.2). Agents pick theirs by
/// name with [`standard`] and adjust defaults.
pub const STANDARD: &[ParamSpec] = &[
    p(
        "action",
        Some("option"),
        Some('o'),
        "action",
        S,
        Some("reboot"),
        "[action]",
        "Fencing action",
    ),
    p(
        "ip",
        Some("ipaddr"),
        Some('a'),
        "ip",
        S,
        None,
        "[ip]",
        "IP address or hostname of fencing device",
    ),
    p(
        "ipport",
        None,
        Some('u'),
        "ipport",
        I,
        Some("23"),
        "[port]",
        "TCP/UDP port to use for connection with device",
    ),
    p(
        "username",
        Some("login"),
        Some('l'),
        "username",
        S,
        None,
        "[name]",
        "Login name",
    ),
    p(
        "password",
        Some("passwd"),
        Some('p'),
        "password",
        S,
        None,
        "[password]",
        "Login password or passphrase",
    ),
    p(
        "password_script",
        Some("passwd_script"),
        Some('S'),
        "password-script",
        S,
        None,
        "[script]",
        "Script to run to retrieve password",
    ),
    p(
        "plug",
        Some("port"),
        Some('n'),
        "plug",
        S,
        None,
        "[id]",
        "Physical plug number on device, UUID or identification of machine",
    ),
    p(
        "switch",
        None,
        Some('s'),
        "switch",
        S,
        None,
        "[id]",
        "Physical switch number on device",
    ),
    p(
        "ssh",
        Some("secure"),
        Some('x'),
        "ssh",
        B,
        None,
        "",
        "Use SSH connection",
    ),
    p(
        "identity_file",
        None,
        Some('k'),
        "identity-file",
        S,
        None,
        "[filename]",
        "Identity file (private key) for SSH",
    ),
    p(
        "ssh_options",
        None,
        None,
        "ssh-options",
        S,
        None,
        "[options]",
        "SSH options to use",
    ),
    p(
        "command_prompt",
        Some("cmd_prompt"),
        Some('c'),
        "command-prompt",
        S,
        None,
        "[prompt]",
        "Force command prompt (literal text; several separated by '|')",
    ),
    p(
        "inet4_only",
        None,
        Some('4'),
        "inet4-only",
        B,
        None,
        "",
        "Forces agent to use IPv4 addresses only",
    ),
    p(
        "inet6_only",
        None,
        Some('6'),
        "inet6-only",
        B,
        None,
        "",
        "Forces agent to use IPv6 addresses only",
    ),
    p(
        "quiet",
        None,
        Some('q'),
        "quiet",
        B,
        None,
        "",
        "Disable logging to stderr",
    ),
    p(
        "verbose",
        None,
        Some('v'),
        "verbose",
        B,
        None,
        "",
        "Verbose mode",
    ),
    p(
        "verbose_level",
        None,
        None,
        "verbose-level",
        I,
        None,
        "",
        "Level of debugging detail in output",
    ),
    p(
        "debug_file",
        Some("debug"),
        Some('D'),
        "debug-file",
        S,
        None,
        "[debugfile]",
        "Debugging to output file",
    ),
    p(
        "version",
        None,
        Some('V'),
        "version",
        B,
        None,
        "",
        "Display version information and exit",
    ),
    p(
        "help",
        None,
        Some('h'),
        "help",
        B,
        None,
        "",
        "Display help and exit",
    ),
    p(
        "plug_separator",
        None,
        None,
        "plug-separator",
        S,
        Some(","),
        "[char]",
        "Separator for plug parameter when specifying more than 1 plug",
    ),
    p(
        "separator",
        None,
        Some('C'),
        "separator",
        S,
        Some(","),
        "[char]",
        "Separator for CSV created by 'list' operation",
    ),
    p(
        "delay",
        None,
        None,
        "delay",
        T,
        Some("0"),
        "[seconds]",
        "Wait X seconds before fencing is started",
    ),
    p(
        "disable_timeout",
        None,
        None,
        "disable-timeout",
        S,
        None,
        "[true/false]",
        "Disable timeout (true/false)",
    ),
    p(
        "login_timeout",
        None,
        None,
        "login-timeout",
        T,
        Some("5"),
        "[seconds]",
        "Wait X seconds for cmd prompt after login",
    ),
    p(
        "power_timeout",
        None,
        None,
        "power-timeout",
        T,
        Some("20"),
        "[seconds]",
        "Test X seconds for status change after ON/OFF",
    ),
    p(
        "power_wait",
        None,
        None,
        "power-wait",
        T,
        Some("0"),
        "[seconds]",
        "Wait X seconds after issuing ON/OFF",
    ),
    p(
        "shell_timeout",
        None,
        None,
        "shell-timeout",
        T,
        Some("3"),
        "[seconds]",
        "Wait X seconds for cmd prompt after issuing command",
    ),
    p(
        "stonith_status_sleep",
        None,
        None,
        "stonith-status-sleep",
        T,
        Some("1"),
        "[seconds]",
        "Sleep X seconds between status calls during a STONITH action",
    ),
    p(
        "retry_on",
        None,
        None,
        "retry-on",
        I,
        Some("1"),
        "[attempts]",
        "Count of attempts to retry power on",
    ),
    p(
        "missing_as_off",
        None,
        Some('M'),
        "missing-as-off",
        B,
        None,
        "",
        "Missing port returns OFF instead of failure",
    ),
    p(
        "ssh_path",
        None,
        None,
        "ssh-path",
        S,
        Some("/usr/bin/ssh"),
        "[path]",
        "Path to ssh binary",
    ),
    p(
        "telnet_path",
        None,
        None,
        "telnet-path",
        S,
        None,
        "[path]",
        "Accepted for compatibility; telnet is built in",
    ),
    p(
        "nodename",
        None,
        None,
        "nodename",
        S,
        None,
        "[nodename]",
        "Name of the node to be fenced",
    ),
    p(
        "timeout",
        None,
        None,
        "timeout",
        T,
        Some("60"),
        "[seconds]",
        "Give up waiting after X seconds",
    ),
];

/// The standard parameter `name`. Panics on a name missing from [`STANDARD`]: agent tables
/// are constants, and a unit test walks every agent's table.
pub fn standard(name: &str) -> ParamSpec {
    match STANDARD.iter().find(|s| s.name == name) {
        Some(s) => *s,
        None => panic!("no standard fence agent parameter {name}"),
    }
}

/// Legacy stdin names fencing.py maps onto modern ones ([S3] aliases).
const LEGACY_ALIASES: &[(&str, &str)] = &[
    ("option", "action"),
    ("hostname", "ip"),
    ("blade", "plug"),
    ("fm", "plug"),
];

/// Names fenced adds to every agent's stdin; ignored silently by agents that do not use them.
const ALWAYS_ACCEPTED: &[&str] = &["nodename", "agent"];

/// Parameters as read, under their modern names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    values: BTreeMap<&'static str, String>,
    /// How many times `-v` was given (stdin `verbose=1` counts once).
    pub verbose: u32,
}

impl Options {
    /// The value given for `name`, if any (no default).
    pub fn given(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Sets `name` (a standard or agent parameter name) to `value`.
    pub fn set(&mut self, spec: &ParamSpec, value: impl Into<String>) {
        self.values.insert(spec.name, value.into());
    }

    /// Whether the boolean `name` is set.
    pub fn flag(&self, name: &str) -> bool {
        self.given(name) == Some("1")
    }

    /// Every value given, by modern name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

/// A command line or stdin the agent cannot work with: the message fencing.py would print,
/// followed by `Please use '-h' for usage`; the agent exits 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n\nPlease use '-h' for usage", self.0)
    }
}

impl std::error::Error for UsageError {}

/// What a command line asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run with these options.
    Run(Options),
    /// `-h`: print usage and exit 0.
    Help,
    /// `-V`: print the version and exit 0.
    Version,
}

fn find_by_name<'a>(params: &'a [ParamSpec], name: &str) -> Option<&'a ParamSpec> {
    let dashed = name.replace('-', "_");
    params
        .iter()
        .find(|s| s.name == name || s.old == Some(name))
        .or_else(|| {
            let alias = LEGACY_ALIASES.iter().find(|(old, _)| *old == name)?;
            params.iter().find(|s| s.name == alias.1)
        })
        .or_else(|| params.iter().find(|s| s.long == name || s.name == dashed))
}

/// Whether a boolean value turns the flag on (`Some(true)`), off, or is no boolean at all.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// Parses stdin text as fencing.py does. Returns the options and the warnings to print on
/// stderr. Never fails: bad lines are warned about and skipped.
pub fn parse_stdin(text: &str, params: &[ParamSpec]) -> (Options, Vec<String>) {
    let mut opts = Options::default();
    let mut warnings = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        let value = strip_quotes(value);
        let Some(spec) = find_by_name(params, name) else {
            if !ALWAYS_ACCEPTED.contains(&name) {
                warnings.push(format!("Parse error: Ignoring unknown option '{line}'"));
            }
            continue;
        };
        if spec.kind == ParamKind::Boolean {
            match parse_bool(value) {
                Some(true) => {
                    opts.set(spec, "1");
                    if spec.name == "verbose" {
                        opts.verbose = opts.verbose.max(1);
                    }
                }
                Some(false) => {
                    opts.values.remove(spec.name);
                }
                None => warnings.push(format!(
                    "Parse error: Ignoring option '{name}' because it does not have value"
                )),
            }
        } else {
            opts.set(spec, value);
        }
    }
    (opts, warnings)
}

fn strip_quotes(value: &str) -> &str {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner,
        None => value,
    }
}

/// Parses a command line (without the program name) getopt-style: `-o off`, `-ooff`,
/// `--action off`, `--action=off`, stacked flags `-vx`.
pub fn parse_args(args: &[String], params: &[ParamSpec]) -> Result<Invocation, UsageError> {
    let mut opts = Options::default();
    let mut i = 0;
    let parse_error = |m: String| UsageError(format!("Parse error: {m}"));
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let Some(spec) = params.iter().find(|s| s.long == name) else {
                return Err(parse_error(format!("option --{name} not recognized")));
            };
            if spec.kind == ParamKind::Boolean {
                if inline.is_some() {
                    return Err(parse_error(format!(
                        "option --{name} must not have an argument"
                    )));
                }
                flag_on(&mut opts, spec);
            } else {
                let value = match inline {
                    Some(v) => v.to_owned(),
                    None => match args.get(i) {
                        Some(v) => {
                            i += 1;
                            v.clone()
                        }
                        None => {
                            return Err(parse_error(format!("option --{name} requires argument")))
                        }
                    },
                };
                opts.set(spec, value);
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (pos, c) in shorts.char_indices() {
                let Some(spec) = params.iter().find(|s| s.short == Some(c)) else {
                    return Err(parse_error(format!("option -{c} not recognized")));
                };
                if spec.kind == ParamKind::Boolean {
                    flag_on(&mut opts, spec);
                    continue;
                }
                let rest = &shorts[pos + c.len_utf8()..];
                let value = if !rest.is_empty() {
                    rest.to_owned()
                } else {
                    match args.get(i) {
                        Some(v) => {
                            i += 1;
                            v.clone()
                        }
                        None => return Err(parse_error(format!("option -{c} requires argument"))),
                    }
                };
                opts.set(spec, value);
                break;
            }
        } else {
            return Err(parse_error(format!("unexpected argument '{arg}'")));
        }
    }
    if opts.flag("help") {
        return Ok(Invocation::Help);
    }
    if opts.flag("version") {
        return Ok(Invocation::Version);
    }
    Ok(Invocation::Run(opts))
}

fn flag_on(opts: &mut Options, spec: &ParamSpec) {
    opts.set(spec, "1");
    if spec.name == "verbose" {
        opts.verbose += 1;
    }
}

/// The value of `name`: given, else the parameter's default.
pub fn value<'a>(opts: &'a Options, params: &[ParamSpec], name: &str) -> Option<&'a str> {
    opts.given(name).or_else(|| {
        params
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.default)
    })
}

/// A time in seconds (`2`, `0.5`), as fencing.py accepts it.
pub fn seconds(opts: &Options, params: &[ParamSpec], name: &str) -> Result<Duration, UsageError> {
    let text = value(opts, params, name).unwrap_or("0");
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=1.0e7).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(UsageError(format!(
            "Failed: The value you have entered for --{} is not a valid time in seconds",
            long_of(params, name)
        ))),
    }
}

/// A non-negative whole number.
pub fn integer(opts: &Options, params: &[ParamSpec], name: &str) -> Result<u64, UsageError> {
    let text = value(opts, params, name).unwrap_or("0");
    text.trim().parse::<u64>().map_err(|_| {
        UsageError(format!(
            "Failed: The value you have entered for --{} is not a valid integer",
            long_of(params, name)
        ))
    })
}

fn long_of<'a>(params: &'a [ParamSpec], name: &'a str) -> &'a str {
    params
        .iter()
        .find(|s| s.name == name)
        .map_or(name, |s| s.long)
}

/// Runs `password_script` through `sh -c` and returns its first line of output, trailing
/// whitespace removed (fencing.py's rule). `None` when it cannot be run or fails.
pub fn run_password_script(script: &str) -> Option<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("").trim_end().to_owned())
}

/// The `-h` text: `Usage:` then one line per parameter.
pub fn usage(agent: &str, params: &[ParamSpec]) -> String {
    let mut out = format!("Usage:\n\t{agent} [options]\nOptions:\n");
    for s in params {
        if s.long == "nodename" && s.short.is_none() && agent != "fence_manual" {
            continue;
        }
        out.push_str(&format!("   {:<30} {}\n", s.getopt(), s.desc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params() -> Vec<ParamSpec> {
        [
            "action",
            "ip",
            "ipport",
            "username",
            "password",
            "plug",
            "ssh",
            "verbose",
            "shell_timeout",
            "separator",
            "help",
            "version",
        ]
        .iter()
        .map(|n| standard(n))
        .collect()
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn stdin_aliases_map_to_modern_names_and_later_lines_win() {
        let text = "# comment\n\n ipaddr=10.0.0.1 \nlogin=apc\npasswd=\"se=cret\"\nport=3\n\
                    option=off\nagent=fence_apc\nnodename=n2\nplug=4\n";
        let (o, warnings) = parse_stdin(text, &params());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(o.given("ip"), Some("10.0.0.1"));
        assert_eq!(o.given("username"), Some("apc"));
        assert_eq!(o.given("password"), Some("se=cret"));
        assert_eq!(o.given("plug"), Some("4"));
        assert_eq!(o.given("action"), Some("off"));
    }

    #[test]
    fn unknown_stdin_names_warn_with_the_whole_line() {
        let (o, warnings) = parse_stdin("foo=bar\naction=on\n", &params());
        assert_eq!(
            warnings,
            vec!["Parse error: Ignoring unknown option 'foo=bar'"]
        );
        assert_eq!(o.given("action"), Some("on"));
    }

    #[test]
    fn stdin_booleans_follow_the_fence_agents_words() {
        for (v, set) in [("1", true), ("yes", true), ("ON", true), ("true", true)] {
            let (o, _) = parse_stdin(&format!("secure={v}\n"), &params());
            assert_eq!(o.flag("ssh"), set, "{v}");
        }
        for v in ["0", "no", "off", "False"] {
            let (o, w) = parse_stdin(&format!("ssh=1\nssh={v}\n"), &params());
            assert!(!o.flag("ssh") && w.is_empty(), "{v}");
        }
        let (o, w) = parse_stdin("ssh=maybe\n", &params());
        assert!(!o.flag("ssh"));
        assert_eq!(
            w,
            vec!["Parse error: Ignoring option 'ssh' because it does not have value"]
        );
    }

    #[test]
    fn command_line_accepts_short_long_attached_and_stacked_forms() {
        let p = params();
        let Invocation::Run(o) = parse_args(
            &args("-a h -ooff --username=u --password p -n3 -vv --shell-timeout 9"),
            &p,
        )
        .unwrap() else {
            panic!("not a run")
        };
        assert_eq!(o.given("ip"), Some("h"));
        assert_eq!(o.given("action"), Some("off"));
        assert_eq!(o.given("username"), Some("u"));
        assert_eq!(o.given("password"), Some("p"));
        assert_eq!(o.given("plug"), Some("3"));
        assert_eq!(o.verbose, 2);
        assert_eq!(
            seconds(&o, &p, "shell_timeout").unwrap(),
            Duration::from_secs(9)
        );
    }

    #[test]
    fn command_line_errors_name_the_option_and_point_to_help() {
        let p = params();
        let e = parse_args(&args("--bogus"), &p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Parse error: option --bogus not recognized\n\nPlease use '-h' for usage"
        );
        let e = parse_args(&args("-a"), &p).unwrap_err();
        assert_eq!(e.0, "Parse error: option -a requires argument");
        assert_eq!(parse_args(&args("-h -a x"), &p).unwrap(), Invocation::Help);
        assert_eq!(parse_args(&args("-V"), &p).unwrap(), Invocation::Version);
    }

    #[test]
    fn defaults_apply_and_bad_times_are_usage_errors() {
        let p = params();
        let o = Options::default();
        assert_eq!(value(&o, &p, "action"), Some("reboot"));
        assert_eq!(
            seconds(&o, &p, "shell_timeout").unwrap(),
            Duration::from_secs(3)
        );
        let Invocation::Run(o) = parse_args(&args("--shell-timeout abc"), &p).unwrap() else {
            panic!()
        };
        assert!(seconds(&o, &p, "shell_timeout")
            .unwrap_err()
            .0
            .contains("--shell-timeout is not a valid time"));
    }

    #[test]
    fn password_script_output_becomes_the_password() {
        assert_eq!(
            run_password_script("printf 'pw  \\nrest'").as_deref(),
            Some("pw")
        );
        assert_eq!(run_password_script("exit 3"), None);
    }

    proptest! {
        #[test]
        fn stdin_parser_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let (o, _) = parse_stdin(&text, STANDARD);
            for (name, _) in o.iter() {
                prop_assert!(STANDARD.iter().any(|s| s.name == name));
            }
        }

        #[test]
        fn stdin_lines_roundtrip_values(value in "[a-zA-Z0-9 _.:/-]{0,40}") {
            let (o, w) = parse_stdin(&format!("password={value}\n"), STANDARD);
            prop_assert!(w.is_empty());
            prop_assert_eq!(o.given("password"), Some(value.trim_end()));
        }

        #[test]
        fn command_line_parser_never_panics(words in proptest::collection::vec("-{0,2}[a-zA-Z0-9=]{0,6}", 0..8)) {
            let _ = parse_args(&words, STANDARD);
        }
    }
}
