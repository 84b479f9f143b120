//! `fence_node [-U] [-v[v]] [-h] [-V] [--config FILE] [--runtime-dir DIR] [nodename]`: the
//! command line, the stderr report and the exit code (spec/fencing.md §1.11).

use super::getopt::{items, Item, UsageError};
use crate::runner::AttemptOutcome;
use std::path::PathBuf;

/// Lines of a failing agent's output `-v` shows.
pub const MAX_REPORTED_OUTPUT_LINES: usize = 20;

/// What `fence_node` was asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeCli {
    /// `-U`: unfence instead of fence.
    pub unfence: bool,
    /// `-v` count: 1 per-device lines, 2 also the agent arguments.
    pub verbose: u8,
    /// `-h`.
    pub help: bool,
    /// `-V`.
    pub version: bool,
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--runtime-dir DIR`: where fenced's and cmand's sockets are.
    pub runtime_dir: Option<PathBuf>,
    /// The node (required unless `-U`, which defaults to this node).
    pub node: Option<String>,
}

impl NodeCli {
    /// `fence` or `unfence`, the first word of every report line.
    pub fn action(&self) -> &'static str {
        if self.unfence {
            "unfence"
        } else {
            "fence"
        }
    }
}

/// Reads the command line (without the program name).
pub fn parse(args: &[String]) -> Result<NodeCli, UsageError> {
    let mut cli = NodeCli::default();
    for item in items(
        args,
        "UvhV",
        "",
        &["help", "version"],
        &["config", "runtime-dir"],
    )? {
        match item {
            Item::Short('U', _) => cli.unfence = true,
            Item::Short('v', _) => cli.verbose = cli.verbose.saturating_add(1),
            Item::Short('h', _) => cli.help = true,
            Item::Long(l, _) if l == "help" => cli.help = true,
            Item::Short('V', _) => cli.version = true,
            Item::Long(l, _) if l == "version" => cli.version = true,
            Item::Long(l, v) if l == "config" => cli.config = v.map(PathBuf::from),
            Item::Long(l, v) if l == "runtime-dir" => cli.runtime_dir = v.map(PathBuf::from),
            Item::Word(w) if cli.node.is_none() => cli.node = Some(w),
            Item::Word(w) => return Err(UsageError(format!("unexpected argument '{w}'"))),
            other => return Err(UsageError(format!("unhandled option {other:?}"))),
        }
    }
    if cli.node.is_none() && !cli.unfence && !cli.help && !cli.version {
        return Err(UsageError("no node name specified".into()));
    }
    Ok(cli)
}

/// The help text (stdout, exit 0).
pub fn usage() -> &'static str {
    "Usage:

fence_node [options] [nodename]

Options:
  -U                    Unfence the node (default: this node)
  -v                    Show the result of every device; -vv also the agent arguments
  --config FILE         cluster.conf to read (default: $CLUSTER_CONF, else
                        /etc/cluster/cluster.conf)
  --runtime-dir DIR     Where fenced's and cmand's sockets are
  -h                    Print this help, then exit
  -V                    Print program version information, then exit
"
}

/// Everything `fence_node` prints on stderr for `outcome`: with `verbose` ≥ 1 each device
/// line (and, for a failing agent, what it printed), with `verbose` ≥ 2 each `agent args:`
/// line, then `<action> <node> success|failed|undefined`.
pub fn report(outcome: &AttemptOutcome, action: &str, verbose: u8) -> String {
    let mut text = String::new();
    if verbose >= 1 {
        for attempt in &outcome.attempts {
            text.push_str(&attempt.line);
            text.push('\n');
            if verbose >= 2 && attempt.run.is_some() {
                text.push_str(&format!("agent args: {}\n", attempt.args_line));
            }
            let failed_output = attempt
                .run
                .as_ref()
                .filter(|r| !r.result.is_success())
                .map(|r| r.output.as_str())
                .unwrap_or("");
            for line in failed_output
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(MAX_REPORTED_OUTPUT_LINES)
            {
                text.push_str(&format!(
                    "agent \"{}\" reports: {}\n",
                    attempt.agent,
                    line.trim_end()
                ));
            }
        }
    }
    text.push_str(&outcome.summary(action));
    text.push('\n');
    text
}

/// 0 success, 1 failure (a cancelled run included), 2 nothing configured.
pub fn exit_code(outcome: &AttemptOutcome) -> u8 {
    if outcome.success {
        0
    } else if outcome.undefined {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{AgentExit, AgentRun, DeviceAttempt};
    use libcluster::fence::plan::DeviceResult;
    use std::time::Duration;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn attempt(m: usize, agent: &str, result: DeviceResult, output: &str) -> DeviceAttempt {
        DeviceAttempt {
            method_index: m,
            device_index: 0,
            method: m.to_string(),
            device: format!("d{m}"),
            agent: agent.into(),
            result,
            args_line: format!("port={m} nodename=n2 agent={agent} "),
            run: Some(AgentRun {
                path: None,
                exit: AgentExit::Exited(if result.is_success() { 0 } else { 1 }),
                result,
                output: output.into(),
                output_truncated: false,
                elapsed: Duration::ZERO,
            }),
            line: format!("fence n2 dev {m}.0 agent {agent} result: {result}"),
        }
    }

    fn outcome(success: bool, attempts: Vec<DeviceAttempt>) -> AttemptOutcome {
        AttemptOutcome {
            victim: "n2".into(),
            success,
            undefined: false,
            cancelled: false,
            method: None,
            device: None,
            attempts,
        }
    }

    #[test]
    fn options_cluster_and_the_node_may_come_first() {
        let cli = parse(&argv("n2 -vv --config /c.conf")).unwrap();
        assert_eq!((cli.verbose, cli.node.as_deref()), (2, Some("n2")));
        assert_eq!(cli.config, Some(PathBuf::from("/c.conf")));
        let cli = parse(&argv("-Uv")).unwrap();
        assert!(cli.unfence && cli.node.is_none());
        assert_eq!(cli.action(), "unfence");
        assert!(parse(&argv("-v")).is_err(), "fencing needs a node");
        assert!(parse(&argv("a b")).is_err());
        assert!(parse(&argv("-x a")).is_err());
        assert!(parse(&argv("-h")).unwrap().help);
    }

    #[test]
    fn quiet_report_is_one_summary_line() {
        let o = outcome(
            true,
            vec![attempt(0, "fence_apc", DeviceResult::Success, "")],
        );
        assert_eq!(report(&o, "fence", 0), "fence n2 success\n");
        assert_eq!(exit_code(&o), 0);
    }

    #[test]
    fn verbose_report_lists_devices_args_and_failing_output() {
        let o = outcome(
            true,
            vec![
                attempt(
                    0,
                    "fence_apc",
                    DeviceResult::AgentError,
                    "Unable to connect/login to fencing device\n\n",
                ),
                attempt(1, "fence_manual", DeviceResult::Success, "ignored\n"),
            ],
        );
        assert_eq!(
            report(&o, "fence", 1),
            "fence n2 dev 0.0 agent fence_apc result: error from agent\n\
             agent \"fence_apc\" reports: Unable to connect/login to fencing device\n\
             fence n2 dev 1.0 agent fence_manual result: success\n\
             fence n2 success\n"
        );
        assert_eq!(
            report(&o, "fence", 2),
            "fence n2 dev 0.0 agent fence_apc result: error from agent\n\
             agent args: port=0 nodename=n2 agent=fence_apc \n\
             agent \"fence_apc\" reports: Unable to connect/login to fencing device\n\
             fence n2 dev 1.0 agent fence_manual result: success\n\
             agent args: port=1 nodename=n2 agent=fence_manual \n\
             fence n2 success\n"
        );
    }

    #[test]
    fn failure_exits_1_and_nothing_configured_exits_2() {
        let failed = outcome(
            false,
            vec![attempt(0, "fence_apc", DeviceResult::AgentError, "")],
        );
        assert_eq!(report(&failed, "fence", 0), "fence n2 failed\n");
        assert_eq!(exit_code(&failed), 1);
        let mut none = outcome(false, vec![]);
        none.undefined = true;
        assert_eq!(report(&none, "unfence", 0), "unfence n2 undefined\n");
        assert_eq!(exit_code(&none), 2);
        let mut cancelled = failed.clone();
        cancelled.cancelled = true;
        assert_eq!(exit_code(&cancelled), 1);
    }
}
