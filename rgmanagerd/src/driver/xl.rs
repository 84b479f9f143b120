//! The xl driver: Xen through the `xl` toolstack, for parity with the reference
//! deployment (which used `xm`; `xl` replaced it and reads the same guest files).
//!
//! | op | command |
//! |---|---|
//! | start | `xl create FILE on_poweroff="destroy" on_reboot="destroy" on_crash="destroy"` |
//! | stop | `xl shutdown -w NAME` bounded by the timeout, then `xl destroy NAME` |
//! | status | `xl list NAME` (not found: stopped) |
//! | list | `xl list` |
//! | migrate | `xl migrate [OPTS] NAME HOST` (always live; xm's `-l` has no xl equivalent) |
//!
//! Like vm.sh's xm mode, start overrides the lifecycle actions with `destroy`, so a guest
//! that powers off, reboots or crashes disappears and rgmanager's recovery policy decides.
//! Untested on real Xen: only command construction, output parsing and the flows against
//! a scripted runner are tested.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::cmd::{Cmd, Output, Runner, SystemRunner};
use super::qmp::millis;
use super::{
    Driver, DriverError, IncomingHandle, MigrationStats, Running, StopOptions, StopOutcome, VmState,
};
use crate::vmdef::{DefFormat, VmDef};

/// Settings of the xl driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XlOptions {
    /// The xl program.
    pub xl: String,
    /// `migrate_options`, split on whitespace.
    pub migrate_options: Vec<String>,
    /// Bound on quick commands (list, create, destroy).
    pub command_timeout: Duration,
    /// Bound on a migrate command.
    pub migrate_timeout: Duration,
}

impl Default for XlOptions {
    fn default() -> XlOptions {
        XlOptions {
            xl: "xl".to_string(),
            migrate_options: Vec::new(),
            command_timeout: Duration::from_secs(60),
            migrate_timeout: Duration::from_secs(600),
        }
    }
}

/// Xen through xl.
pub struct XlDriver<R: Runner = SystemRunner> {
    opts: XlOptions,
    runner: R,
}

/// The state column of `xl list` (`r-----`, `-b----`, `--p---`...): r running, b blocked,
/// p paused, s shut down, c crashed, d dying.
pub fn parse_state_flags(flags: &str) -> VmState {
    let has = |c| flags.contains(c);
    if has('c') {
        VmState::Failed("crashed".to_string())
    } else if has('s') || has('d') {
        // Still a domain, on its way out: not safe to start elsewhere yet.
        VmState::Failed(format!("shutting down ({flags})"))
    } else if has('p') {
        VmState::Paused
    } else {
        VmState::Running
    }
}

/// The domains of `xl list`, Domain-0 left out, sorted.
pub fn parse_list(stdout: &str) -> Result<Vec<(String, VmState)>, String> {
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or("");
    if !header.trim_start().starts_with("Name") {
        return Err(format!("unexpected header {header:?}"));
    }
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        // Name ID Mem VCPUs State Time(s) [more columns in newer xl]
        let [name, _id, _mem, _vcpus, state, ..] = words[..] else {
            return Err(format!("unexpected line {line:?}"));
        };
        if name != "Domain-0" {
            out.push((name.to_string(), parse_state_flags(state)));
        }
    }
    out.sort();
    Ok(out)
}

fn is_not_found(stderr: &str) -> bool {
    ["invalid domain identifier", "does not exist", "not found"]
        .iter()
        .any(|m| stderr.contains(m))
}

impl XlDriver<SystemRunner> {
    /// A driver running the real xl.
    pub fn new(opts: XlOptions) -> XlDriver<SystemRunner> {
        XlDriver::with_runner(opts, SystemRunner)
    }
}

impl<R: Runner> XlDriver<R> {
    /// A driver with its own command runner (tests).
    pub fn with_runner(opts: XlOptions, runner: R) -> XlDriver<R> {
        XlDriver { opts, runner }
    }

    /// The runner.
    pub fn runner(&self) -> &R {
        &self.runner
    }

    /// `xl create FILE` with vm.sh's lifecycle overrides.
    pub fn create_cmd(&self, file: &str) -> Cmd {
        Cmd::new(
            &self.opts.xl,
            [
                "create",
                file,
                "on_poweroff=\"destroy\"",
                "on_reboot=\"destroy\"",
                "on_crash=\"destroy\"",
            ],
        )
    }

    /// `xl shutdown -w NAME` (waits for the guest to go).
    pub fn shutdown_cmd(&self, name: &str) -> Cmd {
        Cmd::new(&self.opts.xl, ["shutdown", "-w", name])
    }

    /// `xl destroy NAME`.
    pub fn destroy_cmd(&self, name: &str) -> Cmd {
        Cmd::new(&self.opts.xl, ["destroy", name])
    }

    /// `xl list [NAME]`.
    pub fn list_cmd(&self, name: Option<&str>) -> Cmd {
        Cmd::new(&self.opts.xl, ["list"].into_iter().chain(name))
    }

    /// `xl migrate [OPTS] NAME HOST`.
    pub fn migrate_cmd(&self, name: &str, host: &str) -> Cmd {
        let mut args = vec!["migrate".to_string()];
        args.extend(self.opts.migrate_options.iter().cloned());
        args.push(name.to_string());
        args.push(host.to_string());
        Cmd::new(&self.opts.xl, args)
    }

    async fn run(&self, cmd: &Cmd, timeout: Duration) -> Result<Output, DriverError> {
        self.runner.run(cmd, timeout).await
    }
}

impl<R: Runner> Driver for XlDriver<R> {
    fn kind(&self) -> &'static str {
        "xl"
    }

    async fn start(&self, def: &VmDef) -> Result<Running, DriverError> {
        let state = self.status(&def.name).await?;
        if matches!(state, VmState::Running | VmState::Paused) {
            return Ok(Running {
                name: def.name.clone(),
                pid: None,
                state,
            });
        }
        let file = match (&def.source, def.format) {
            (Some(f), DefFormat::Xm) => f.display().to_string(),
            _ => {
                return Err(DriverError::Unsupported {
                    driver: "xl",
                    what: format!("start vm {} without an xm-style file", def.name),
                })
            }
        };
        let cmd = self.create_cmd(&file);
        let out = self.run(&cmd, self.opts.command_timeout).await?;
        if !out.success() {
            return Err(out.failure(&cmd));
        }
        Ok(Running {
            name: def.name.clone(),
            pid: None,
            state: self.status(&def.name).await?,
        })
    }

    async fn stop(&self, name: &str, opts: StopOptions) -> Result<StopOutcome, DriverError> {
        match self.status(name).await? {
            VmState::Stopped => return Ok(StopOutcome::WasStopped),
            VmState::Running => {
                let cmd = self.shutdown_cmd(name);
                match self.run(&cmd, opts.timeout).await {
                    Ok(out) if out.success() => return Ok(StopOutcome::ShutDown),
                    Ok(_) | Err(DriverError::CommandTimedOut { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            _ => {}
        }
        if opts.no_kill {
            return Err(DriverError::StopTimedOut {
                vm: name.to_string(),
                waited_ms: millis(opts.timeout),
            });
        }
        self.kill(name).await?;
        Ok(StopOutcome::Destroyed)
    }

    async fn kill(&self, name: &str) -> Result<(), DriverError> {
        let cmd = self.destroy_cmd(name);
        let out = self.run(&cmd, self.opts.command_timeout).await?;
        if out.success() || is_not_found(&out.stderr) {
            Ok(())
        } else {
            Err(out.failure(&cmd))
        }
    }

    async fn status(&self, name: &str) -> Result<VmState, DriverError> {
        let cmd = self.list_cmd(Some(name));
        let out = self.run(&cmd, self.opts.command_timeout).await?;
        if !out.success() {
            return if is_not_found(&out.stderr) {
                Ok(VmState::Stopped)
            } else {
                Err(out.failure(&cmd))
            };
        }
        let list = parse_list(&out.stdout).map_err(|reason| DriverError::BadOutput {
            command: cmd.to_string(),
            reason,
        })?;
        Ok(list
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or(VmState::Stopped, |(_, s)| s))
    }

    async fn list(&self) -> Result<Vec<(String, VmState)>, DriverError> {
        let cmd = self.list_cmd(None);
        let out = self.run(&cmd, self.opts.command_timeout).await?;
        if !out.success() {
            return Err(out.failure(&cmd));
        }
        parse_list(&out.stdout).map_err(|reason| DriverError::BadOutput {
            command: cmd.to_string(),
            reason,
        })
    }

    async fn prepare_incoming(
        &self,
        def: &VmDef,
        listen: SocketAddr,
    ) -> Result<IncomingHandle, DriverError> {
        // `xl migrate` starts the receiver on the target itself (over ssh).
        Ok(IncomingHandle {
            name: def.name.clone(),
            uri: listen.ip().to_string(),
            pid: None,
        })
    }

    async fn abort_incoming(&self, _name: &str) -> Result<(), DriverError> {
        Ok(())
    }

    async fn migrate(&self, name: &str, target: &str) -> Result<MigrationStats, DriverError> {
        let cmd = self.migrate_cmd(name, target);
        let started = Instant::now();
        let out = self.run(&cmd, self.opts.migrate_timeout).await?;
        if out.success() {
            return Ok(MigrationStats {
                total_ms: millis(started.elapsed()),
                ..MigrationStats::default()
            });
        }
        let source_state = self
            .status(name)
            .await
            .unwrap_or_else(|e| VmState::Failed(e.to_string()));
        if source_state == VmState::Stopped && is_not_found(&out.stderr) {
            return Err(DriverError::NotRunning {
                vm: name.to_string(),
            });
        }
        Err(DriverError::MigrationFailed {
            vm: name.to_string(),
            reason: out.stderr.lines().next().unwrap_or("").trim().to_string(),
            source_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::cmd::ScriptedRunner;
    use super::*;

    fn driver() -> XlDriver<ScriptedRunner> {
        XlDriver::with_runner(XlOptions::default(), ScriptedRunner::default())
    }

    const LIST: &str =
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
        Domain-0                                     0  1024     2     r-----     123.4\n\
        station182.example.com                       3   280     1     -b----      12.0\n\
        frozen                                       4   128     1     --p---       1.0\n\
        broken                                       5   128     1     ----c-       1.0\n";

    #[test]
    fn command_lines_match_xl_usage() {
        let d = driver();
        assert_eq!(
            d.create_cmd("/etc/sharedvm/vm1").to_string(),
            "xl create /etc/sharedvm/vm1 'on_poweroff=\"destroy\"' 'on_reboot=\"destroy\"' \
             'on_crash=\"destroy\"'"
        );
        assert_eq!(d.shutdown_cmd("vm1").to_string(), "xl shutdown -w vm1");
        assert_eq!(d.destroy_cmd("vm1").to_string(), "xl destroy vm1");
        assert_eq!(d.list_cmd(Some("vm1")).to_string(), "xl list vm1");
        assert_eq!(
            d.migrate_cmd("vm1", "node2").to_string(),
            "xl migrate vm1 node2"
        );
    }

    #[test]
    fn xl_list_output_parses_and_skips_domain_0() {
        assert_eq!(
            parse_list(LIST).unwrap(),
            [
                ("broken".to_string(), VmState::Failed("crashed".into())),
                ("frozen".to_string(), VmState::Paused),
                ("station182.example.com".to_string(), VmState::Running),
            ]
        );
        assert!(parse_list("oops\n").is_err());
        assert!(matches!(parse_state_flags("---s--"), VmState::Failed(_)));
        assert_eq!(parse_state_flags("------"), VmState::Running);
    }

    #[tokio::test]
    async fn start_needs_an_xm_file_and_skips_a_running_guest() {
        let d = driver();
        d.runner().expect(
            "xl list vm1",
            1,
            "",
            "vm1 is an invalid domain identifier\n",
        );
        let e = d.start(&VmDef::new("vm1")).await.unwrap_err();
        assert!(matches!(e, DriverError::Unsupported { .. }), "{e}");
        d.runner()
            .expect("xl list station182.example.com", 0, LIST, "");
        let r = d
            .start(&VmDef::new("station182.example.com"))
            .await
            .unwrap();
        assert_eq!(r.state, VmState::Running);
    }

    #[tokio::test]
    async fn a_shutdown_that_fails_is_followed_by_destroy() {
        let d = driver();
        d.runner()
            .expect("xl list station182.example.com", 0, LIST, "")
            .expect("xl shutdown -w station182.example.com", 1, "", "timeout\n")
            .expect("xl destroy station182.example.com", 0, "", "");
        let opts = StopOptions {
            timeout: Duration::from_secs(1),
            no_kill: false,
        };
        assert_eq!(
            d.stop("station182.example.com", opts).await.unwrap(),
            StopOutcome::Destroyed
        );
    }
}
