//! `cman_tool`'s command line, read the way the original's GNU getopt reads it: every
//! option first (options and words may come in any order, short options cluster, an
//! option's argument is attached or the next word), then the words in order
//! (`remove`/`force` are words too). Messages and checks are the original's.

use cmand::render::MAX_NODE_NAMES;
use std::fmt;
use std::path::PathBuf;

/// Longest node name `-n` accepts (cman's MAX_NODE_NAME_LEN).
const MAX_NODE_NAME_LEN: usize = 65;

/// The subcommand words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Join,
    Leave,
    Kill,
    Expected,
    Votes,
    Version,
    Wait,
    Status,
    Nodes,
    Services,
    Debug,
    Keygen,
}

impl Op {
    pub(crate) fn from_word(word: &str) -> Option<Op> {
        Some(match word {
            "join" => Op::Join,
            "leave" => Op::Leave,
            "kill" => Op::Kill,
            "expected" => Op::Expected,
            "votes" => Op::Votes,
            "version" => Op::Version,
            "wait" => Op::Wait,
            "status" => Op::Status,
            "nodes" => Op::Nodes,
            "services" => Op::Services,
            "debug" => Op::Debug,
            "keygen" => Op::Keygen,
            _ => return None,
        })
    }
}

/// The parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Cli {
    pub(crate) op: Option<Op>,
    /// `-n`, repeatable: node names for `nodes` and `kill`.
    pub(crate) names: Vec<String>,
    /// `-a`.
    pub(crate) addresses: bool,
    /// `-F`.
    pub(crate) format: Option<String>,
    /// `-w`.
    pub(crate) wait: bool,
    /// `-q`.
    pub(crate) quorate: bool,
    /// `-t` seconds; 0 (the default) waits forever, as `alarm(0)` does.
    pub(crate) timeout_s: u32,
    /// `-e`.
    pub(crate) expected: Option<u32>,
    /// `-r`.
    pub(crate) reload: bool,
    /// `-f`: `keygen` may replace an existing file.
    pub(crate) overwrite: bool,
    /// `-d[level]`.
    pub(crate) debug: u32,
    /// `-h`.
    pub(crate) help: bool,
    /// `--json`.
    pub(crate) json: bool,
    /// `--runtime-dir DIR`.
    pub(crate) runtime_dir: Option<PathBuf>,
    /// The words `remove` and `force`.
    pub(crate) remove: bool,
    pub(crate) force: bool,
    /// `keygen FILE`.
    pub(crate) key_file: Option<PathBuf>,
    /// Notes for stderr that do not stop the command (deprecated forms).
    pub(crate) warnings: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    Run(Cli),
    /// `-h`: usage of one subcommand or all.
    Help(Option<Op>),
    /// `-V`.
    Version,
}

/// Why the tool stops early.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `cman_tool: <message>` on stderr, exit 1.
    Die(String),
    /// A bad option: getopt's complaint (none for `-?`), then `Please use '-h' for usage.`,
    /// exit 1.
    Usage(String),
    /// `-t` ran out: `Timed-out waiting for cluster`, exit 2.
    TimedOut,
    /// The messages were printed already; exit 1.
    Reported,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Die(message) => write!(f, "cman_tool: {message}"),
            Failure::Usage(complaint) if complaint.is_empty() => {
                f.write_str("Please use '-h' for usage.")
            }
            Failure::Usage(complaint) => {
                write!(f, "cman_tool: {complaint}\nPlease use '-h' for usage.")
            }
            Failure::TimedOut => f.write_str("Timed-out waiting for cluster"),
            Failure::Reported => Ok(()),
        }
    }
}

pub(crate) fn die(message: impl Into<String>) -> Failure {
    Failure::Die(message.into())
}

/// Which options take an argument: `Some(true)` required, `Some(false)` optional (only in
/// the same word, `-d3`), `None` a flag. Unknown letters are `Err`. The letters are the
/// original's getopt string; join-only ones are read and ignored.
pub(crate) fn option_kind(c: char) -> Result<Option<bool>, ()> {
    match c {
        'm' | 'n' | 'v' | 'e' | 'p' | 'c' | 'i' | 'N' | 't' | 'o' | 'k' | 'F' | 'C' => {
            Ok(Some(true))
        }
        'D' | 'd' | 'r' => Ok(Some(false)),
        '2' | 'V' | 'A' | 'P' | 'w' | 'f' | 'q' | 'a' | 'z' | 'h' | '?' | 'X' | 'S' => Ok(None),
        _ => Err(()),
    }
}

/// The original's `get_int_arg`: a whole decimal number, not negative.
pub(crate) fn int_arg(opt: char, arg: &str) -> Result<u32, Failure> {
    let value: i64 = arg
        .parse()
        .map_err(|_| die(format!("argument to {opt} ({arg}) is not an integer")))?;
    if value < 0 {
        return Err(die(format!("argument to {opt} cannot be negative")));
    }
    u32::try_from(value).map_err(|_| die(format!("argument to {opt} ({arg}) is too large")))
}

/// Applies one short option to `cli`.
pub(crate) fn apply_option(cli: &mut Cli, opt: char, arg: Option<&str>) -> Result<(), Failure> {
    let arg_or_empty = arg.unwrap_or_default();
    match opt {
        'n' => {
            if cli.names.len() >= MAX_NODE_NAMES {
                return Err(die(format!(
                    "maximum of {MAX_NODE_NAMES} node names allowed"
                )));
            }
            if arg_or_empty.len() > MAX_NODE_NAME_LEN {
                return Err(die(format!(
                    "maximum node name length is {MAX_NODE_NAME_LEN}"
                )));
            }
            cli.names.push(arg_or_empty.to_string());
        }
        'a' => cli.addresses = true,
        'F' => cli.format = Some(arg_or_empty.to_string()),
        'w' => cli.wait = true,
        'q' => cli.quorate = true,
        't' => cli.timeout_s = int_arg(opt, arg_or_empty)?,
        'e' => cli.expected = Some(int_arg(opt, arg_or_empty)?),
        'v' | 'p' | 'N' => {
            int_arg(opt, arg_or_empty)?;
        }
        'r' => {
            cli.reload = true;
            if arg.is_some() {
                cli.warnings.push(DEPRECATED_VERSION.to_string());
            }
        }
        'D' => match arg
            .and_then(|a| a.chars().next())
            .map(|c| c.to_ascii_uppercase())
        {
            None | Some('F' | 'W' | 'N') => {}
            Some(_) => {
                return Err(die(
                    "invalid option to -D, it should be 'force', 'warn' or 'none'",
                ))
            }
        },
        'd' => cli.debug = arg.map_or(255, |a| a.parse().unwrap_or(0)),
        'f' => cli.overwrite = true,
        'h' => cli.help = true,
        // getopt's own error return: the original cannot tell `-?` from a bad option.
        '?' => return Err(Failure::Usage(String::new())),
        // Read for the original's sake (join, votes), used by nothing cmand offers.
        'm' | 'c' | 'o' | 'k' | 'C' | '2' | 'A' | 'P' | 'z' | 'X' | 'S' => {}
        // In the original's getopt string without a handler: it dies the same way.
        _ => return Err(die(format!("unknown option: {opt}"))),
    }
    Ok(())
}

pub(crate) const DEPRECATED_VERSION: &str =
    "Warning: specifying a version for the -r flag is deprecated and no longer used";

/// Parses the arguments after the program name, the way the original's GNU getopt does:
/// every option first (in order), then the words in order.
pub(crate) fn parse(args: &[String]) -> Result<Parsed, Failure> {
    let mut cli = Cli::default();
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if arg == "--" {
            words.extend(args[i..].iter().map(String::as_str));
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            match (name, inline) {
                ("json", None) => cli.json = true,
                ("help", None) => cli.help = true,
                ("version", None) => return Ok(Parsed::Version),
                ("runtime-dir", Some(dir)) => cli.runtime_dir = Some(PathBuf::from(dir)),
                ("runtime-dir", None) => match args.get(i) {
                    Some(dir) => {
                        cli.runtime_dir = Some(PathBuf::from(dir));
                        i += 1;
                    }
                    None => {
                        return Err(Failure::Usage(
                            "option '--runtime-dir' requires an argument".into(),
                        ))
                    }
                },
                _ => return Err(Failure::Usage(format!("unrecognized option '{arg}'"))),
            }
            continue;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
            words.push(arg);
            continue;
        };
        for (at, opt) in cluster.char_indices() {
            let rest = &cluster[at + opt.len_utf8()..];
            match option_kind(opt) {
                Err(()) => return Err(Failure::Usage(format!("invalid option -- '{opt}'"))),
                Ok(None) if opt == 'V' => return Ok(Parsed::Version),
                Ok(None) => apply_option(&mut cli, opt, None)?,
                Ok(Some(required)) => {
                    let value = if !rest.is_empty() {
                        Some(rest)
                    } else if required {
                        let next = args.get(i).ok_or_else(|| {
                            Failure::Usage(format!("option requires an argument -- '{opt}'"))
                        })?;
                        i += 1;
                        Some(next.as_str())
                    } else {
                        None
                    };
                    apply_option(&mut cli, opt, value)?;
                    break;
                }
            }
        }
    }
    for word in words {
        if let Some(op) = Op::from_word(word) {
            if cli.op.is_some() {
                return Err(die("can't specify two operations"));
            }
            cli.op = Some(op);
        } else if word == "remove" {
            cli.remove = true;
        } else if word == "force" {
            cli.force = true;
        } else if cli.op == Some(Op::Keygen) && cli.key_file.is_none() {
            cli.key_file = Some(PathBuf::from(word));
        } else if cli.reload && cli.op == Some(Op::Version) && is_canonical_int(word) {
            cli.warnings.push(DEPRECATED_VERSION.to_string());
        } else {
            return Err(die(format!("unknown option {word}")));
        }
    }
    if cli.help {
        return Ok(Parsed::Help(cli.op));
    }
    if cli.op.is_none() {
        return Err(die("no operation specified"));
    }
    Ok(Parsed::Run(cli))
}

/// What `printf("%d", atoi(word))` gives back unchanged: the original's test for a
/// version number after `version -r`.
pub(crate) fn is_canonical_int(word: &str) -> bool {
    word.parse::<i32>().is_ok_and(|n| n.to_string() == word)
}

/// Usage text, for one subcommand or (none given) all of them.
pub(crate) fn usage(op: Option<Op>) -> String {
    let mut out = String::from(
        "Usage:\n\n\
         cman_tool <leave|kill|expected|version|wait|status|nodes|keygen> [options]\n\n\
         Options:\n\
         \x20 -h               Print this help, then exit\n\
         \x20 -V               Print program version information, then exit\n\
         \x20 -d               Enable debug output\n\
         \x20 --runtime-dir DIR  Where cmand's socket is (default $CLUSTER_RUNTIME_DIR, else /run/cluster)\n\n",
    );
    let sections: [(Op, &str); 9] = [
        (
            Op::Wait,
            "wait               Wait until the node is a member of a cluster\n\
             \x20 -q               Wait until the cluster is quorate\n\
             \x20 -t               Maximum time (in seconds) to wait\n",
        ),
        (
            Op::Leave,
            "leave\n\
             \x20 -w               If cluster is in transition, wait and keep trying\n\
             \x20 -t               Maximum time (in seconds) to wait\n\
             \x20 remove           Tell other nodes to adjust quorum downwards if necessary\n\
             \x20 force            Leave even if cluster subsystems are active\n",
        ),
        (
            Op::Kill,
            "kill\n\
             \x20 -n <nodename>    The name of the node to kill (can specify multiple times)\n",
        ),
        (
            Op::Expected,
            "expected\n\
             \x20 -e <votes>       New number of expected votes for the cluster\n",
        ),
        (
            Op::Status,
            "status             Show local record of cluster status\n\
             \x20 --json           The same as JSON\n",
        ),
        (
            Op::Nodes,
            "nodes              Show local record of cluster nodes\n\
             \x20 -a                 Also show node address(es)\n\
             \x20 -n <nodename>      Only show information for specific node\n\
             \x20 -F <format>        Fields: id,name,type,addr,votes,exp,state\n\
             \x20 --json             The same as JSON\n",
        ),
        (
            Op::Version,
            "version            Show the protocol and config versions\n\
             \x20 -r               Reload cluster.conf and distribute it if its version is newer\n",
        ),
        (
            Op::Keygen,
            "keygen [FILE]      Write a new cluster key (default /etc/cluster/cman_authkey)\n\
             \x20 -f               Replace an existing key file\n",
        ),
        (
            Op::Join,
            "join, votes, services, debug\n\
             \x20 Not offered by cmand: start the cmand service to join; see docs/cman_tool.md\n",
        ),
    ];
    let join_like = matches!(op, Some(Op::Join | Op::Votes | Op::Services | Op::Debug));
    for (section, text) in sections {
        if op.is_none() || op == Some(section) || (join_like && section == Op::Join) {
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Parsed, Failure> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&args)
    }

    fn cli(line: &str) -> Cli {
        match parse_words(line) {
            Ok(Parsed::Run(cli)) => cli,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn options_may_come_before_or_after_the_word() {
        assert_eq!(cli("nodes -a"), cli("-a nodes"));
        assert!(cli("-a nodes").addresses);
    }

    #[test]
    fn short_options_cluster_and_take_attached_or_next_arguments() {
        let c = cli("nodes -aF id,name -nnode1 -n node2");
        assert!(c.addresses);
        assert_eq!(c.format.as_deref(), Some("id,name"));
        assert_eq!(c.names, vec!["node1", "node2"]);
        assert_eq!(cli("expected -e3").expected, Some(3));
    }

    #[test]
    fn remove_and_force_are_words() {
        let c = cli("leave remove force -w -t 5");
        assert!(c.remove && c.force && c.wait);
        assert_eq!(c.timeout_s, 5);
    }

    #[test]
    fn unknown_options_point_to_help() {
        assert_eq!(
            parse_words("status -x"),
            Err(Failure::Usage("invalid option -- 'x'".into()))
        );
        assert_eq!(
            parse_words("status --bogus"),
            Err(Failure::Usage("unrecognized option '--bogus'".into()))
        );
        assert_eq!(
            parse_words("kill -n"),
            Err(Failure::Usage("option requires an argument -- 'n'".into()))
        );
    }

    #[test]
    fn words_are_checked_like_the_original() {
        assert_eq!(
            parse_words("status nodes"),
            Err(die("can't specify two operations"))
        );
        assert_eq!(parse_words("stats"), Err(die("unknown option stats")));
        assert_eq!(parse_words("-a"), Err(die("no operation specified")));
        assert_eq!(parse_words(""), Err(die("no operation specified")));
    }

    #[test]
    fn integer_arguments_are_whole_and_not_negative() {
        assert_eq!(
            parse_words("expected -e 3x"),
            Err(die("argument to e (3x) is not an integer"))
        );
        assert_eq!(
            parse_words("expected -e -1"),
            Err(die("argument to e cannot be negative"))
        );
        assert_eq!(
            parse_words("wait -t abc"),
            Err(die("argument to t (abc) is not an integer"))
        );
    }

    #[test]
    fn help_and_version_win_over_missing_words() {
        assert_eq!(parse_words("-h"), Ok(Parsed::Help(None)));
        assert_eq!(parse_words("nodes -h"), Ok(Parsed::Help(Some(Op::Nodes))));
        assert_eq!(parse_words("-V status -x"), Ok(Parsed::Version));
    }

    #[test]
    fn keygen_takes_one_file_word() {
        let c = cli("keygen /tmp/k -f");
        assert_eq!(c.key_file, Some(PathBuf::from("/tmp/k")));
        assert!(c.overwrite);
        assert_eq!(cli("keygen").key_file, None);
        assert_eq!(parse_words("keygen /a /b"), Err(die("unknown option /b")));
    }

    #[test]
    fn a_version_number_after_reload_is_a_deprecation_warning() {
        let c = cli("version -r 12");
        assert!(c.reload);
        assert_eq!(c.warnings, vec![DEPRECATED_VERSION.to_string()]);
        assert_eq!(cli("version -r12").warnings.len(), 1);
        assert_eq!(parse_words("version 12"), Err(die("unknown option 12")));
    }

    #[test]
    fn node_names_are_limited_like_the_original() {
        let eleven = (0..11)
            .map(|i| format!("-n n{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            parse_words(&format!("nodes {eleven}")),
            Err(die("maximum of 10 node names allowed"))
        );
        let long = "x".repeat(66);
        assert_eq!(
            parse_words(&format!("kill -n {long}")),
            Err(die("maximum node name length is 65"))
        );
    }

    #[test]
    fn long_options_set_json_and_the_runtime_dir() {
        let c = cli("status --json --runtime-dir /tmp/rt");
        assert!(c.json);
        assert_eq!(c.runtime_dir, Some(PathBuf::from("/tmp/rt")));
        assert_eq!(
            cli("nodes --runtime-dir=/x").runtime_dir,
            Some(PathBuf::from("/x"))
        );
    }

    #[test]
    fn a_double_dash_ends_the_options() {
        assert_eq!(cli("keygen -- -f").key_file, Some(PathBuf::from("-f")));
    }

    #[test]
    fn usage_of_one_subcommand_leaves_the_others_out() {
        let text = usage(Some(Op::Kill));
        assert!(text.contains("kill\n"));
        assert!(!text.contains("leave\n"));
        assert!(usage(None).contains("keygen [FILE]"));
    }
}
