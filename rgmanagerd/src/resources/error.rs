//! Errors of the resource group executor, one enum per layer: compiling a `<service>`
//! ([`ResourceError`]), one agent operation ([`AgentError`]), a whole group ([`GroupError`]).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// A `<service>` could not be compiled into a resource group. Nothing was run.
#[derive(Debug)]
pub enum ResourceError {
    /// cluster.conf has no `<service>` with that id.
    NoSuchService {
        /// The id asked for (`service:NAME`).
        service: String,
    },
    /// A resource lacks an attribute its agent needs.
    MissingAttr {
        /// `service:NAME`.
        service: String,
        /// The resource, as `<type primary="value">` (or `<type>`).
        resource: String,
        /// The attribute.
        attr: &'static str,
    },
    /// An attribute (or an `<action>` override's attribute) has an unusable value.
    BadAttr {
        /// `service:NAME`.
        service: String,
        /// The resource, as `<type primary="value">`.
        resource: String,
        /// The attribute (`address`, `action interval`...).
        attr: String,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// `ref=` names no resource of that type in `<resources>`.
    UnknownRef {
        /// `service:NAME`.
        service: String,
        /// The element type.
        kind: String,
        /// The `ref` value.
        reference: String,
        /// The attribute the global resource would be found by (`name`, `address`).
        primary_attr: &'static str,
    },
    /// No native agent handles the type and no `<type>.sh` was found.
    NoAgent {
        /// `service:NAME`.
        service: String,
        /// The resource.
        resource: String,
        /// The type.
        kind: String,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },
    /// Resources nest deeper than we walk (a guard against a crafted file).
    TooDeep {
        /// `service:NAME`.
        service: String,
        /// The resource at the limit.
        resource: String,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceError::NoSuchService { service } => {
                write!(f, "{service}: no such service in cluster.conf")
            }
            ResourceError::MissingAttr {
                service,
                resource,
                attr,
            } => write!(f, "{service}: {resource} has no {attr}"),
            ResourceError::BadAttr {
                service,
                resource,
                attr,
                value,
                reason,
            } => write!(f, "{service}: {resource}: {attr} `{value}`: {reason}"),
            ResourceError::UnknownRef {
                service,
                kind,
                reference,
                primary_attr,
            } => write!(
                f,
                "{service}: <{kind} ref=\"{reference}\"> refers to no <{kind} {primary_attr}=\"{reference}\"> in <resources>"
            ),
            ResourceError::NoAgent {
                service,
                resource,
                kind,
                searched,
            } => {
                let dirs: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
                write!(
                    f,
                    "{service}: {resource}: no agent for resource type `{kind}`: {kind}.sh is not in {} (set {} to search elsewhere)",
                    dirs.join(":"),
                    super::AGENT_PATH_VAR
                )
            }
            ResourceError::TooDeep {
                service,
                resource,
                max,
            } => write!(
                f,
                "{service}: {resource}: resources nest more than {max} levels deep"
            ),
        }
    }
}

impl std::error::Error for ResourceError {}

/// One agent operation failed. What the resource's state is depends on the operation: a
/// failed start may have left it partly up (the group is stopped for recovery), a failed
/// stop leaves it in an unknown state (the service becomes `failed`).
#[derive(Debug)]
pub enum AgentError {
    /// The program could not be run.
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The program ran and failed.
    Exit {
        /// The command, shell-like.
        command: String,
        /// `exit code N` or `killed by signal N`.
        status: String,
        /// The end of what it wrote to stderr (or stdout when stderr was empty).
        output: String,
    },
    /// The operation did not finish in time; its process group was killed.
    TimedOut {
        /// The resource or command.
        what: String,
        /// `start`, `stop`, `status`.
        op: &'static str,
        /// The bound.
        after: Duration,
        /// Whether the bound was the action timeout (`__enforce_timeouts`) or our safety bound.
        enforced: bool,
    },
    /// A file or directory operation failed.
    Io {
        /// What we were doing (`creating the mountpoint`, `reading /proc/self/mounts`).
        what: String,
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A start was refused before anything changed (no interface for the address,
    /// mountpoint busy with another device...).
    Refused {
        /// Why, in a sentence.
        reason: String,
    },
    /// A status check found the resource down.
    Down {
        /// What is missing, in a sentence.
        reason: String,
    },
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Spawn { program, source } => {
                write!(f, "cannot run {}: {source}", program.display())
            }
            AgentError::Exit {
                command,
                status,
                output,
            } if output.is_empty() => write!(f, "`{command}` failed with {status}"),
            AgentError::Exit {
                command,
                status,
                output,
            } => write!(f, "`{command}` failed with {status}: {output}"),
            AgentError::TimedOut {
                what,
                op,
                after,
                enforced,
            } => {
                let bound = if *enforced {
                    "its action timeout (__enforce_timeouts)"
                } else {
                    "the safety bound"
                };
                write!(
                    f,
                    "{op} of {what} did not finish within {} s, {bound}; its processes were killed",
                    after.as_secs_f64()
                )
            }
            AgentError::Io { what, path, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            AgentError::Refused { reason } => write!(f, "refused: {reason}"),
            AgentError::Down { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentError::Spawn { source, .. } | AgentError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An operation on a whole group failed.
#[derive(Debug)]
pub enum GroupError {
    /// The group could not be compiled from cluster.conf; nothing was run.
    Config(ResourceError),
    /// A resource failed to start. Resources before it in start order are up, the
    /// failed one may be partly up, later ones were not tried: stop the group to recover.
    Start {
        /// `service:NAME`.
        service: String,
        /// The resource (`type:primary`).
        resource: String,
        /// Why.
        source: AgentError,
    },
    /// Some resources failed to stop (every resource was tried). Their state is unknown.
    Stop {
        /// `service:NAME`.
        service: String,
        /// Each failed resource with its error, in stop order.
        failures: Vec<(String, AgentError)>,
    },
    /// A resource's status check failed (this run or, sticky, the last one).
    Status {
        /// `service:NAME`.
        service: String,
        /// The resource.
        resource: String,
        /// Depth of the check that failed.
        depth: u32,
        /// Why (a reused failure repeats its message).
        reason: String,
    },
    /// A group without resources is up only while marked started here, and it is not.
    NotStarted {
        /// `service:NAME`.
        service: String,
    },
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Config(e) => write!(f, "{e}"),
            GroupError::Start {
                service,
                resource,
                source,
            } => write!(f, "{service}: start of {resource} failed: {source}"),
            GroupError::Stop { service, failures } => {
                write!(f, "{service}: stop failed for")?;
                for (i, (resource, e)) in failures.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{resource} ({e})")?;
                }
                Ok(())
            }
            GroupError::Status {
                service,
                resource,
                depth,
                reason,
            } => write!(
                f,
                "{service}: status of {resource} (depth {depth}) failed: {reason}"
            ),
            GroupError::NotStarted { service } => {
                write!(f, "{service}: has no resources and is not started here")
            }
        }
    }
}

impl std::error::Error for GroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GroupError::Config(e) => Some(e),
            GroupError::Start { source, .. } => Some(source),
            _ => None,
        }
    }
}
