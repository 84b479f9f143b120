//! `clusvcadm`: its command line, member-name matching, progress lines, result strings and
//! exit codes (spec/rgmanager.md §5.1).
//!
//! ```text
//!  argv ──parse_args()──▶ Command::Action(ActionArgs)
//!       (getopt "lSue:M:d:r:n:c:m:FvR:s:Z:U:qh?": last action wins; -l/-S/-u/-v act at once)
//!  -m NODE ──match_member()──▶ exact | "'N' not in membership list" + "Closest match: 'X'"
//!  progress_line()  "Member node2 trying to enable vm:guest1..."   (then the request)
//!  outcome()        "Success" / "Warning: vm:guest1 is now running on node1", exit code & 0xFF
//! ```

use super::getopt::{getopt, Opt};
use libcluster::ipc::rgmanager::{strerror, RgMember, RG_ERUN, RG_ESUCCESS};
use std::path::PathBuf;

/// The action flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `-e`.
    Enable,
    /// `-d`.
    Disable,
    /// `-r`.
    Relocate,
    /// `-M`.
    Migrate,
    /// `-s`.
    Stop,
    /// `-R`.
    Restart,
    /// `-Z`.
    Freeze,
    /// `-U`.
    Unfreeze,
    /// `-c`.
    Convalesce,
}

impl Verb {
    fn from_flag(c: char) -> Option<Verb> {
        Some(match c {
            'e' => Verb::Enable,
            'd' => Verb::Disable,
            'r' => Verb::Relocate,
            'M' => Verb::Migrate,
            's' => Verb::Stop,
            'R' => Verb::Restart,
            'Z' => Verb::Freeze,
            'U' => Verb::Unfreeze,
            'c' => Verb::Convalesce,
            _ => return None,
        })
    }

    /// The words of the progress line.
    pub fn words(self) -> &'static str {
        match self {
            Verb::Enable => "trying to enable",
            Verb::Disable => "disabling",
            Verb::Relocate => "relocate",
            Verb::Migrate => "migrate",
            Verb::Stop => "stopping",
            Verb::Restart => "trying to restart",
            Verb::Freeze => "freezing",
            Verb::Unfreeze => "unfreezing",
            Verb::Convalesce => "convalescing",
        }
    }
}

/// A service request as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionArgs {
    /// The last action flag given.
    pub verb: Verb,
    /// Its service word (`vm:x`, `service:x` or a bare name).
    pub service: String,
    /// `-m`/`-n NODE`.
    pub node: Option<String>,
    /// `-F`.
    pub follow_domain: bool,
}

/// What `clusvcadm` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-l`.
    Lock,
    /// `-u`.
    Unlock,
    /// `-S`.
    QueryLock,
    /// A service request.
    Action(ActionArgs),
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cli {
    /// What to do.
    pub command: Command,
    /// `-q`: nothing on stdout.
    pub quiet: bool,
    /// `--runtime-dir DIR`.
    pub runtime_dir: Option<PathBuf>,
}

pub use super::clustat::Parsed;

/// `clusvcadm`'s usage text.
pub fn usage() -> String {
    [
        "usage: clusvcadm [command]",
        "",
        "Resource Group Control Commands:",
        "  -v                     Display version and exit",
        "  -d <group>             Disable <group>.  This stops a group",
        "                         until an administrator enables it again,",
        "                         the cluster loses and regains quorum, or",
        "                         an administrator-defined event script",
        "                         explicitly enables it again.",
        "  -e <group>             Enable <group>",
        "  -e <group> -F          Enable <group> according to failover",
        "                         domain rules (deprecated; always the",
        "                         case when using central processing)",
        "  -e <group> -m <member> Enable <group> on <member>",
        "  -r <group> -m <member> Relocate <group> [to <member>]",
        "                         Stops a group and starts it on another",
        "                         cluster member.",
        "  -M <group> -m <member> Migrate <group> to <member>",
        "                         (e.g. for live migration of VMs)",
        "  -q                     Quiet operation",
        "  -R <group>             Restart a group in place.",
        "  -s <group>             Stop <group>.  This temporarily stops",
        "                         a group.  After the next group or",
        "                         or cluster member transition, the group",
        "                         will be restarted (if possible).",
        "  -Z <group>             Freeze resource group.  This prevents",
        "                         transitions and status checks, and is ",
        "                         useful if an administrator needs to ",
        "                         administer part of a service without ",
        "                         stopping the whole service.",
        "  -U <group>             Unfreeze (thaw) resource group.  Restores",
        "                         a group to normal operation.",
        "  -c <group>             Convalesce (repair, fix) resource group.",
        "                         Attempts to start failed, non-critical ",
        "                         resources within a resource group.",
        "Resource Group Locking (for cluster Shutdown / Debugging):",
        "  -l                     Lock local resource group managers.",
        "                         This prevents resource groups from",
        "                         starting.",
        "  -S                     Show lock state",
        "  -u                     Unlock resource group managers.",
        "                         This allows resource groups to start.",
        "  --runtime-dir DIR      Where the daemons' sockets are",
        "",
    ]
    .join("\n")
}

fn exit_with(stdout: impl Into<String>, stderr: impl Into<String>, code: u8) -> Parsed<Cli> {
    Parsed::Exit {
        stdout: stdout.into(),
        stderr: stderr.into(),
        code,
    }
}

/// Parses `clusvcadm`'s arguments (without the program name) as the original did: options
/// in order, `-l`/`-S`/`-u`/`-v` act the moment they are seen, the last action flag wins,
/// `-F` and `-m`/`-n` refuse each other, `-M` needs `-m`. `version` is what `-v` prints.
pub fn parse_args(args: &[String], version: &str) -> Parsed<Cli> {
    let mut quiet = false;
    let mut runtime_dir = None;
    let mut action: Option<(Verb, String)> = None;
    let mut node: Option<String> = None;
    let mut follow_domain = false;
    let long = [("runtime-dir", true)];
    let opts = getopt(args, "lSue:M:d:r:n:c:m:FvR:s:Z:U:qh?", &long);
    // --runtime-dir applies wherever it stands, even after -l.
    for opt in &opts {
        if let Opt::Long(name, Some(dir)) = opt {
            if name == "runtime-dir" {
                runtime_dir = Some(PathBuf::from(dir));
            }
        }
    }
    let now = |command, quiet, runtime_dir| {
        Parsed::Run(Cli {
            command,
            quiet,
            runtime_dir,
        })
    };
    for opt in opts {
        if let Some(message) = opt.error_message("clusvcadm") {
            return exit_with(usage(), format!("{message}\n"), 1);
        }
        match opt {
            Opt::Short('l', _) => return now(Command::Lock, quiet, runtime_dir),
            Opt::Short('S', _) => return now(Command::QueryLock, quiet, runtime_dir),
            Opt::Short('u', _) => return now(Command::Unlock, quiet, runtime_dir),
            Opt::Short('v', _) => {
                return exit_with(
                    if quiet {
                        String::new()
                    } else {
                        format!("{version}\n")
                    },
                    "",
                    0,
                )
            }
            Opt::Short('F', _) => {
                if node.is_some() {
                    return exit_with("", "Cannot use '-F' with '-n' or '-m'\n", 1);
                }
                follow_domain = true;
            }
            Opt::Short('m' | 'n', Some(name)) => {
                if follow_domain {
                    return exit_with("", "Cannot use '-F' with '-n' or '-m'\n", 1);
                }
                node = Some(name);
            }
            Opt::Short('q', _) => quiet = true,
            Opt::Short(c, Some(svc)) if Verb::from_flag(c).is_some() => {
                action = Verb::from_flag(c).map(|v| (v, svc));
            }
            Opt::Long(..) => {}
            _ => return exit_with(if quiet { String::new() } else { usage() }, "", 1),
        }
    }
    let Some((verb, service)) = action else {
        return exit_with(if quiet { String::new() } else { usage() }, "", 1);
    };
    if verb == Verb::Migrate && node.is_none() {
        let msg = if quiet {
            ""
        } else {
            "Migration requires a target cluster member\n"
        };
        return exit_with(msg, "", 1);
    }
    Parsed::Run(Cli {
        command: Command::Action(ActionArgs {
            verb,
            service,
            node,
            follow_domain,
        }),
        quiet,
        runtime_dir,
    })
}

/// A `-m` word matched to a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    /// Its node id.
    pub id: u32,
    /// Its full name (the progress line uses it).
    pub name: String,
    /// Whether it is online.
    pub online: bool,
}

/// Matches a `-m` word against the cluster nodes (the quorum device never matches): the
/// exact name, else the unique member sharing the longest common prefix with the word.
/// Returns the lines the original printed on the way (stdout) and the match, or `None`
/// when it gave up (exit 1).
pub fn match_member(members: &[RgMember], word: &str) -> (Vec<String>, Option<Matched>) {
    let nodes: Vec<&RgMember> = members.iter().filter(|m| m.id != 0 && !m.qdisk).collect();
    let found = |m: &RgMember| Matched {
        id: m.id,
        name: m.name.clone(),
        online: m.online,
    };
    if let Some(m) = nodes.iter().find(|m| m.name == word) {
        return (Vec::new(), Some(found(m)));
    }
    let mut lines = vec![format!("'{word}' not in membership list")];
    let common = |m: &RgMember| {
        m.name
            .bytes()
            .zip(word.bytes())
            .take_while(|(a, b)| a == b)
            .count()
    };
    let best = nodes.iter().map(|m| common(m)).max().unwrap_or(0);
    if best == 0 {
        lines.push(format!("No matches for '{word}' found"));
        return (lines, None);
    }
    let at_best: Vec<&&RgMember> = nodes.iter().filter(|m| common(m) == best).collect();
    match at_best.as_slice() {
        [only] => {
            lines.push(format!("Closest match: '{}'", only.name));
            (lines, Some(found(only)))
        }
        _ => {
            lines.push(format!("More than one possible match for '{word}' found"));
            (lines, None)
        }
    }
}

/// The line printed before the request is sent (without a newline; the result follows on
/// the same line): `Local machine disabling vm:a...`, `Member n2 trying to enable vm:a...`,
/// `Trying to relocate vm:a...`, `Trying to migrate vm:a to n2...`.
pub fn progress_line(verb: Verb, service: &str, node: Option<&str>) -> String {
    let words = verb.words();
    match (verb, node) {
        (Verb::Relocate | Verb::Migrate, None) => format!("Trying to {words} {service}..."),
        (Verb::Relocate | Verb::Migrate, Some(n)) => {
            format!("Trying to {words} {service} to {n}...")
        }
        (_, None) => format!("Local machine {words} {service}..."),
        (_, Some(n)) => format!("Member {n} {words} {service}..."),
    }
}

/// The process exit status for a result code: `code & 0xFF`, except `RG_ERUN` → 0.
pub fn exit_code(code: i32) -> u8 {
    if code == RG_ERUN {
        0
    } else {
        (code & 0xFF) as u8
    }
}

/// What follows the progress line for a daemon's answer: the result string, then after a
/// successful `-e` or `-r` `<svc> is now running on <owner>` (prefixed `Warning: ` when
/// `-m` named another member); and the exit status.
pub fn outcome(
    verb: Verb,
    service: &str,
    target: Option<&str>,
    code: i32,
    owner_after: Option<&str>,
) -> (String, u8) {
    let mut text = format!("{}\n", strerror(code));
    if code == RG_ESUCCESS && matches!(verb, Verb::Enable | Verb::Relocate) {
        if let Some(owner) = owner_after {
            let warn = match target {
                Some(t) if t != owner => "Warning: ",
                _ => "",
            };
            text.push_str(&format!("{warn}{service} is now running on {owner}\n"));
        }
    }
    (text, exit_code(code))
}

/// The lock commands' lines: (stdout, exit status) for the lock state the daemon
/// reported, or `None` when the request failed.
pub fn lock_outcome(command: &Command, locked: Option<bool>) -> (String, u8) {
    let ok = |l: bool| {
        if l {
            "Resource groups locked\n"
        } else {
            "Resource groups unlocked\n"
        }
    };
    match (command, locked) {
        (Command::Lock, Some(true)) => (ok(true).into(), 0),
        (Command::Lock, _) => ("Lock operation failed\n".into(), 1),
        (Command::Unlock, Some(false)) => (ok(false).into(), 0),
        (Command::Unlock, _) => ("Unlock operation failed\n".into(), 1),
        (Command::QueryLock, Some(l)) => (ok(l).into(), 0),
        _ => ("Query operation failed\n".into(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn cli(s: &str) -> Cli {
        match parse_args(&words(s), "0.1.0") {
            Parsed::Run(c) => c,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn exit(s: &str) -> (String, String, u8) {
        match parse_args(&words(s), "0.1.0") {
            Parsed::Exit {
                stdout,
                stderr,
                code,
            } => (stdout, stderr, code),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn action(s: &str) -> ActionArgs {
        match cli(s).command {
            Command::Action(a) => a,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn member(name: &str, id: u32, online: bool) -> RgMember {
        RgMember {
            name: name.into(),
            id,
            online,
            local: false,
            rgmanager: true,
            master: false,
            qdisk: id == 0,
            estranged: false,
        }
    }

    #[test]
    fn every_action_flag_maps_to_its_verb() {
        for (flag, verb) in [
            ("-e", Verb::Enable),
            ("-d", Verb::Disable),
            ("-r", Verb::Relocate),
            ("-s", Verb::Stop),
            ("-R", Verb::Restart),
            ("-Z", Verb::Freeze),
            ("-U", Verb::Unfreeze),
            ("-c", Verb::Convalesce),
        ] {
            let a = action(&format!("{flag} vm:a"));
            assert_eq!((a.verb, a.service.as_str()), (verb, "vm:a"), "{flag}");
        }
        assert_eq!(action("-M vm:a -m n2").verb, Verb::Migrate);
    }

    #[test]
    fn the_last_action_flag_wins() {
        let a = action("-e vm:a -d vm:b");
        assert_eq!((a.verb, a.service.as_str()), (Verb::Disable, "vm:b"));
    }

    #[test]
    fn lock_flags_act_at_once_and_ignore_what_follows() {
        assert_eq!(cli("-l -e vm:a").command, Command::Lock);
        assert_eq!(cli("-e vm:a -u -Z").command, Command::Unlock);
        assert_eq!(cli("-S").command, Command::QueryLock);
        let c = cli("-q -l --runtime-dir /tmp/x");
        assert!(c.quiet);
        assert_eq!(c.runtime_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn f_and_m_refuse_each_other_in_either_order() {
        let want = (
            String::new(),
            "Cannot use '-F' with '-n' or '-m'\n".to_string(),
            1,
        );
        assert_eq!(exit("-e vm:a -F -m n1"), want);
        assert_eq!(exit("-e vm:a -n n1 -F"), want);
        let a = action("-F -e vm:a");
        assert!(a.follow_domain && a.node.is_none());
    }

    #[test]
    fn migrate_needs_a_target() {
        assert_eq!(
            exit("-M vm:a"),
            (
                "Migration requires a target cluster member\n".into(),
                String::new(),
                1
            )
        );
    }

    #[test]
    fn no_service_help_and_unknown_flags_print_usage_and_exit_one() {
        for args in ["", "-h", "-?", "-m n1", "-x", "-e"] {
            let (out, _, code) = exit(args);
            assert_eq!(code, 1, "{args:?}");
            assert!(out.starts_with("usage: clusvcadm [command]"), "{args:?}");
        }
        assert_eq!(exit("-v"), ("0.1.0\n".into(), String::new(), 0));
    }

    #[test]
    fn exact_member_names_match_silently() {
        let ms = [member("node1", 1, true), member("node10", 10, false)];
        let (lines, m) = match_member(&ms, "node1");
        assert!(lines.is_empty());
        assert_eq!(m.unwrap().id, 1);
    }

    #[test]
    fn a_unique_longest_prefix_is_the_closest_match() {
        let ms = [
            member("station200.example.com", 1, true),
            member("station201.example.com", 2, true),
        ];
        let (lines, m) = match_member(&ms, "station201");
        assert_eq!(
            lines,
            [
                "'station201' not in membership list",
                "Closest match: 'station201.example.com'"
            ]
        );
        assert_eq!(m.unwrap().id, 2);
    }

    #[test]
    fn ties_and_no_common_prefix_give_up() {
        let ms = [
            member("station200", 1, true),
            member("station201", 2, true),
            member("/dev/sdb", 0, true),
        ];
        let (lines, m) = match_member(&ms, "station2");
        assert_eq!(
            lines[1],
            "More than one possible match for 'station2' found"
        );
        assert!(m.is_none());
        let (lines, m) = match_member(&ms, "zeus");
        assert_eq!(
            lines,
            [
                "'zeus' not in membership list",
                "No matches for 'zeus' found"
            ]
        );
        assert!(m.is_none());
        // The quorum device is never a target.
        let (_, m) = match_member(&ms, "/dev/sdb");
        assert!(m.is_none());
    }

    #[test]
    fn progress_lines_follow_the_original_table() {
        let cases = [
            (Verb::Enable, None, "Local machine trying to enable vm:a..."),
            (
                Verb::Enable,
                Some("n2"),
                "Member n2 trying to enable vm:a...",
            ),
            (Verb::Disable, None, "Local machine disabling vm:a..."),
            (Verb::Stop, Some("n2"), "Member n2 stopping vm:a..."),
            (
                Verb::Restart,
                None,
                "Local machine trying to restart vm:a...",
            ),
            (Verb::Freeze, None, "Local machine freezing vm:a..."),
            (Verb::Unfreeze, None, "Local machine unfreezing vm:a..."),
            (Verb::Convalesce, None, "Local machine convalescing vm:a..."),
            (Verb::Relocate, None, "Trying to relocate vm:a..."),
            (
                Verb::Relocate,
                Some("n2"),
                "Trying to relocate vm:a to n2...",
            ),
            (Verb::Migrate, Some("n2"), "Trying to migrate vm:a to n2..."),
        ];
        for (verb, node, want) in cases {
            assert_eq!(progress_line(verb, "vm:a", node), want);
        }
    }

    #[test]
    fn exit_codes_are_the_low_byte_except_already_running() {
        let table = [
            (0, 0),
            (-1, 255),
            (-2, 254),
            (-3, 253),
            (-4, 252),
            (-5, 251),
            (-6, 250),
            (-7, 249),
            (-8, 248),
            (-9, 247),
            (-10, 0),
            (-11, 245),
            (-12, 244),
            (-13, 243),
            (-14, 242),
            (-15, 241),
            (-16, 240),
            (-17, 239),
            (-18, 238),
            (-19, 237),
        ];
        for (code, exit) in table {
            assert_eq!(exit_code(code), exit, "code {code}");
        }
    }

    #[test]
    fn enable_and_relocate_report_the_new_owner() {
        let (t, e) = outcome(Verb::Enable, "vm:a", None, 0, Some("n1"));
        assert_eq!((t.as_str(), e), ("Success\nvm:a is now running on n1\n", 0));
        let (t, _) = outcome(Verb::Relocate, "vm:a", Some("n2"), 0, Some("n1"));
        assert_eq!(t, "Success\nWarning: vm:a is now running on n1\n");
        let (t, _) = outcome(Verb::Enable, "vm:a", Some("n1"), 0, Some("n1"));
        assert_eq!(t, "Success\nvm:a is now running on n1\n");
        // Not after -M, not after a failure.
        let (t, _) = outcome(Verb::Migrate, "vm:a", Some("n2"), 0, Some("n2"));
        assert_eq!(t, "Success\n");
        let (t, e) = outcome(Verb::Enable, "vm:a", None, -10, Some("n1"));
        assert_eq!((t.as_str(), e), ("Service is already running\n", 0));
        let (t, e) = outcome(Verb::Disable, "vm:a", None, -11, None);
        assert_eq!((t.as_str(), e), ("Failure: Service is frozen\n", 245));
    }

    #[test]
    fn lock_commands_print_the_original_words() {
        assert_eq!(
            lock_outcome(&Command::Lock, Some(true)),
            ("Resource groups locked\n".into(), 0)
        );
        assert_eq!(
            lock_outcome(&Command::Lock, None),
            ("Lock operation failed\n".into(), 1)
        );
        assert_eq!(
            lock_outcome(&Command::Unlock, Some(false)),
            ("Resource groups unlocked\n".into(), 0)
        );
        assert_eq!(
            lock_outcome(&Command::Unlock, None),
            ("Unlock operation failed\n".into(), 1)
        );
        assert_eq!(
            lock_outcome(&Command::QueryLock, Some(true)),
            ("Resource groups locked\n".into(), 0)
        );
        assert_eq!(
            lock_outcome(&Command::QueryLock, None),
            ("Query operation failed\n".into(), 1)
        );
    }
}
