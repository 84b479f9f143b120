//! The agent trait and the agents that are programs: `script` (`<file> start|stop|status`)
//! and external OCF-style agents (`<dir>/<type>.sh`, rgmanager's own agents when installed).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::debug;

use super::error::AgentError;
use super::fs::FsAgent;
use super::ip::IpAgent;
use super::run::{run, Command};

/// The operations rgmanager runs on a resource of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// Bring it up.
    Start,
    /// Take it down.
    Stop,
    /// Check it (at a depth).
    Status,
}

impl Op {
    /// The agent's argument.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Status => "status",
        }
    }
}

/// One run of an agent operation.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The resource, `type:primary`, for messages.
    pub resource: String,
    /// What runs.
    pub op: Op,
    /// `OCF_CHECK_LEVEL` (0 for start and stop).
    pub depth: u32,
    /// Processes the agent runs are killed after this.
    pub limit: Duration,
    /// Whether `limit` is the action timeout (`__enforce_timeouts`).
    pub enforced: bool,
    /// The OCF environment (spec/rgmanager.md §3.1), for agents that are programs.
    pub env: Vec<(String, String)>,
    /// Whether this resource was started (or adopted) here, for stop's "not installed" rule.
    pub started: bool,
}

/// What every resource agent does. Implementations must return within `inv.limit` or be
/// cancellable (dropping the future kills what they run); the group also bounds them.
pub trait Agent {
    /// Brings the resource up; succeeds if it already is.
    fn start(&self, inv: &Invocation) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Takes the resource down; succeeds if it already is.
    fn stop(&self, inv: &Invocation) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Checks the resource at `depth` (0 shallow, 10, 20 deeper).
    fn status(
        &self,
        depth: u32,
        inv: &Invocation,
    ) -> impl Future<Output = Result<(), AgentError>> + Send;
}

/// Every agent a resource can have.
#[derive(Clone, Debug)]
pub enum AnyAgent {
    /// `<script file=>`.
    Script(ProgramAgent),
    /// A native `<ip>`.
    Ip(IpAgent),
    /// A native `<fs>`.
    Fs(FsAgent),
    /// `<dir>/<type>.sh`.
    External(ProgramAgent),
}

impl Agent for AnyAgent {
    async fn start(&self, inv: &Invocation) -> Result<(), AgentError> {
        match self {
            AnyAgent::Script(a) | AnyAgent::External(a) => a.start(inv).await,
            AnyAgent::Ip(a) => a.start(inv).await,
            AnyAgent::Fs(a) => a.start(inv).await,
        }
    }

    async fn stop(&self, inv: &Invocation) -> Result<(), AgentError> {
        match self {
            AnyAgent::Script(a) | AnyAgent::External(a) => a.stop(inv).await,
            AnyAgent::Ip(a) => a.stop(inv).await,
            AnyAgent::Fs(a) => a.stop(inv).await,
        }
    }

    async fn status(&self, depth: u32, inv: &Invocation) -> Result<(), AgentError> {
        match self {
            AnyAgent::Script(a) | AnyAgent::External(a) => a.status(depth, inv).await,
            AnyAgent::Ip(a) => a.status(depth, inv).await,
            AnyAgent::Fs(a) => a.status(depth, inv).await,
        }
    }
}

/// OCF's "not installed" exit code.
const OCF_ERR_INSTALLED: i32 = 5;

/// An agent that is a program run as `<program> start|stop|status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramAgent {
    program: PathBuf,
    /// OCF exit-code rules (external agents); a `script` maps every non-zero exit to failure.
    ocf: bool,
}

impl ProgramAgent {
    /// A `script` resource's file.
    pub fn script(file: &Path) -> ProgramAgent {
        ProgramAgent {
            program: file.to_path_buf(),
            ocf: false,
        }
    }

    /// An external agent found in the agent directories.
    pub fn external(agent: &Path) -> ProgramAgent {
        ProgramAgent {
            program: agent.to_path_buf(),
            ocf: true,
        }
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    async fn exec(&self, inv: &Invocation) -> Result<(), AgentError> {
        let mut cmd = Command::new(&self.program, &[inv.op.as_str()]);
        cmd.env.clone_from(&inv.env);
        let done = run(
            &cmd,
            inv.limit,
            &inv.resource,
            inv.op.as_str(),
            inv.enforced,
        )
        .await?;
        for line in done.stdout.lines().chain(done.stderr.lines()) {
            debug!(resource = %inv.resource, op = inv.op.as_str(), "{line}");
        }
        if done.success() {
            return Ok(());
        }
        // spec §3.4: stopping a resource we never started, whose agent says its software is
        // not installed here, is not a failure (nothing of it can be running).
        if self.ocf && inv.op == Op::Stop && !inv.started && done.code == Some(OCF_ERR_INSTALLED) {
            debug!(resource = %inv.resource, "stop: not installed and not started here; nothing to stop");
            return Ok(());
        }
        Err(done.failure(&cmd))
    }
}

impl Agent for ProgramAgent {
    async fn start(&self, inv: &Invocation) -> Result<(), AgentError> {
        self.exec(inv).await
    }

    async fn stop(&self, inv: &Invocation) -> Result<(), AgentError> {
        self.exec(inv).await
    }

    async fn status(&self, _depth: u32, inv: &Invocation) -> Result<(), AgentError> {
        // The depth travels in OCF_CHECK_LEVEL.
        self.exec(inv).await
    }
}
