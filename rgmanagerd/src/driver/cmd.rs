//! Running the virsh and xl commands: a [`Cmd`] is data (so command construction is unit
//! tested), a [`Runner`] executes it (so driver flows are tested with a scripted runner).

use std::fmt;
use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use super::qmp::millis;
use super::DriverError;

/// A program and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Cmd {
    /// A command line.
    pub fn new<S: Into<String>>(program: &str, args: impl IntoIterator<Item = S>) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

impl fmt::Display for Cmd {
    /// Shell-like: arguments with spaces or quotes are single-quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program)?;
        for a in &self.args {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
            if plain {
                write!(f, " {a}")?;
            } else {
                write!(f, " '{}'", a.replace('\'', "'\\''"))?;
            }
        }
        Ok(())
    }
}

/// What a finished command printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The exit status in words.
    pub fn status(&self) -> String {
        match self.code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".to_string(),
        }
    }

    /// The error for a failed command.
    pub fn failure(&self, cmd: &Cmd) -> DriverError {
        DriverError::CommandFailed {
            command: cmd.to_string(),
            status: self.status(),
            stderr: self.stderr.trim().to_string(),
        }
    }
}

/// Executes commands.
pub trait Runner: Send + Sync {
    /// Runs `cmd` to completion, killing it after `timeout`. A non-zero exit is an `Ok`
    /// output; only failing to run or timing out are errors.
    fn run(
        &self,
        cmd: &Cmd,
        timeout: Duration,
    ) -> impl Future<Output = Result<Output, DriverError>> + Send;
}

/// Runs commands as child processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    async fn run(&self, cmd: &Cmd, timeout: Duration) -> Result<Output, DriverError> {
        let child = tokio::process::Command::new(&cmd.program)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| DriverError::Spawn {
                program: cmd.program.clone(),
                source,
            })?;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => Ok(Output {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
            Ok(Err(source)) => Err(DriverError::Spawn {
                program: cmd.program.clone(),
                source,
            }),
            // Dropping the future dropped the child, and kill_on_drop killed it.
            Err(_) => Err(DriverError::CommandTimedOut {
                command: cmd.to_string(),
                after_ms: millis(timeout),
            }),
        }
    }
}

/// A runner for tests: answers commands from a script, in order, and records them.
#[derive(Debug, Default)]
pub struct ScriptedRunner {
    script: std::sync::Mutex<std::collections::VecDeque<(String, Output)>>,
    seen: std::sync::Mutex<Vec<String>>,
}

impl ScriptedRunner {
    /// Expects a command whose display starts with `prefix`; answers `code` and `stdout`
    /// (and `stderr`).
    pub fn expect(&self, prefix: &str, code: i32, stdout: &str, stderr: &str) -> &Self {
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((
                prefix.to_string(),
                Output {
                    code: Some(code),
                    stdout: stdout.to_string(),
                    stderr: stderr.to_string(),
                },
            ));
        self
    }

    /// The commands run so far, as displayed.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Runner for ScriptedRunner {
    async fn run(&self, cmd: &Cmd, _timeout: Duration) -> Result<Output, DriverError> {
        let line = cmd.to_string();
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.clone());
        let next = self
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match next {
            Some((prefix, out)) if line.starts_with(&prefix) => Ok(out),
            Some((prefix, _)) => Err(DriverError::BadOutput {
                command: line,
                reason: format!("script expected a command starting with `{prefix}`"),
            }),
            None => Err(DriverError::BadOutput {
                command: line,
                reason: "script has no more answers".to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_display_with_shell_quoting() {
        let c = Cmd::new(
            "xl",
            ["create", "/etc/xen/vm 1", "on_crash=\"destroy\"", "it's"],
        );
        assert_eq!(
            c.to_string(),
            "xl create '/etc/xen/vm 1' 'on_crash=\"destroy\"' 'it'\\''s'"
        );
    }

    #[tokio::test]
    async fn the_system_runner_reports_exit_codes_and_timeouts() {
        let out = SystemRunner
            .run(
                &Cmd::new("sh", ["-c", "echo hi; echo err >&2; exit 3"]),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), "hi\n", "err\n")
        );
        let e = SystemRunner
            .run(&Cmd::new("sleep", ["30"]), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(e, DriverError::CommandTimedOut { .. }), "{e}");
        let e = SystemRunner
            .run(
                &Cmd::new("/nonexistent/virsh", ["list"]),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, DriverError::Spawn { .. }), "{e}");
    }
}
