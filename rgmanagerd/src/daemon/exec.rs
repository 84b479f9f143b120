//! Local operations as tasks: the coordinator core asks (start, stop, prepare incoming,
//! migrate out, status), a task runs the hypervisor driver for a `vm:` or the resource group
//! executor (`rgmanagerd::resources`) for a `service:`, and the result comes back to the loop
//! as an [`ExecDone`].
//!
//! A `<service>` runs its resource tree: start in type order, stop in reverse, status checks
//! on the agents' schedules (docs/resources.md). A failed start is reported as such; the core
//! then stops the whole group for recovery, as rgmanager did.

use libcluster::config::ClusterConf;
use libcluster::history::Event;
use libcluster::rgmanager::coord::VmResult;
use libcluster::rgmanager::ServiceIndex;
use libcluster::NodeId;
use rgmanagerd::driver::{AnyDriver, Driver, DriverError, StopOptions, VmState};
use rgmanagerd::resources::{AgentConfig, Probe, ServiceGroups};
use rgmanagerd::vmdef;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// A finished operation.
pub enum ExecDone {
    /// A VM operation the core asked for, and the history record it makes.
    Vm {
        /// The service, as indexed when the operation began.
        service: ServiceIndex,
        /// Its name (the index may have moved since: a new configuration).
        name: String,
        /// Its result.
        result: VmResult,
        /// For the history file.
        record: Event,
    },
    /// A status check.
    Status {
        /// The service, as indexed when the check began.
        service: ServiceIndex,
        /// Its name.
        name: String,
        /// Whether it runs here.
        running: bool,
    },
}

/// The executor.
#[derive(Clone)]
pub struct Exec {
    driver: Arc<AnyDriver>,
    conf: Arc<ClusterConf>,
    listen: IpAddr,
    stop_timeout: Duration,
    /// The `<service>` resource groups of this node.
    groups: Arc<ServiceGroups>,
    tx: mpsc::Sender<ExecDone>,
}

/// `vm:NAME` → `NAME`; `None` for a `service:`.
fn vm_name(service: &str) -> Option<&str> {
    service.strip_prefix("vm:")
}

impl Exec {
    /// An executor sending results on `tx`. `listen` is where incoming migrations listen.
    pub fn new(
        driver: AnyDriver,
        conf: Arc<ClusterConf>,
        listen: IpAddr,
        tx: mpsc::Sender<ExecDone>,
    ) -> Exec {
        // How long a graceful shutdown may take before the VM is destroyed (vm.sh's 60 s
        // default; the lab's guests have no OS to answer ACPI and set a few seconds).
        let stop_timeout = std::env::var("RGMANAGER_STOP_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(60), Duration::from_secs);
        Exec {
            driver: Arc::new(driver),
            conf,
            listen,
            stop_timeout,
            // Agent directories from RGMANAGER_AGENT_PATH (default /usr/share/cluster).
            groups: Arc::new(ServiceGroups::new(AgentConfig::from_env())),
            tx,
        }
    }

    /// Replaces the configuration (after `ccs_tool update`).
    pub fn set_config(&mut self, conf: Arc<ClusterConf>) {
        self.conf = conf;
    }

    fn definition(&self, vm: &str) -> Result<vmdef::VmDef, String> {
        let id = format!("vm:{vm}");
        let res = self.conf.rm.vms.iter().find(|v| v.id() == id);
        let path = res
            .and_then(|v| v.path.clone())
            .unwrap_or_else(|| "/etc/cluster/vms:/etc/xen".to_string());
        vmdef::load_for_vm(vm, &path)
            .map(|p| {
                for w in &p.warnings {
                    warn!(vm, "{w}");
                }
                p.def
            })
            .map_err(|e| e.to_string())
    }

    fn send(&self, done: ExecDone) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(done).await;
        });
    }

    fn record(vm: &str, op: &str, ok: bool, started: Instant) -> Event {
        Event::Vm {
            vm: vm.to_string(),
            op: op.to_string(),
            ok,
            to: None,
            downtime_ms: None,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Starts (or stops) a `service:` through its resource group and reports it like a VM
    /// operation, history record included.
    async fn service_op(&self, service: ServiceIndex, name: &str, start: bool, t: Instant) {
        let (op, outcome) = if start {
            ("start", self.groups.start(&self.conf.rm, name).await)
        } else {
            ("stop", self.groups.stop(&self.conf.rm, name).await)
        };
        let ok = match outcome {
            Ok(()) => {
                info!(service = %name, op, "resource group done");
                true
            }
            Err(e) => {
                warn!(service = %name, error = %e, "{op} failed");
                false
            }
        };
        let result = match (start, ok) {
            (true, true) => VmResult::Started,
            (true, false) => VmResult::StartFailed,
            (false, true) => VmResult::Stopped,
            (false, false) => VmResult::StopFailed,
        };
        let record = Exec::record(name, op, ok, t);
        self.send(ExecDone::Vm {
            service,
            name: name.to_string(),
            result,
            record,
        });
    }

    /// Starts `service` here.
    pub fn start(&self, service: ServiceIndex, name: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let Some(vm) = vm_name(&name) else {
                me.service_op(service, &name, true, t).await;
                return;
            };
            let ok = match me.definition(vm) {
                Ok(def) => match me.driver.start(&def).await {
                    Ok(r) => {
                        info!(vm, pid = ?r.pid, "started");
                        true
                    }
                    Err(e) => {
                        warn!(vm, error = %e, "start failed");
                        false
                    }
                },
                Err(e) => {
                    warn!(vm, error = %e, "no usable definition");
                    false
                }
            };
            let result = if ok {
                VmResult::Started
            } else {
                VmResult::StartFailed
            };
            let record = Exec::record(vm, "start", ok, t);
            me.send(ExecDone::Vm {
                service,
                name: name.to_string(),
                result,
                record,
            });
        });
    }

    /// Stops `service` here (graceful, then destroyed after the stop timeout).
    pub fn stop(&self, service: ServiceIndex, name: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let Some(vm) = vm_name(&name) else {
                me.service_op(service, &name, false, t).await;
                return;
            };
            let opts = StopOptions {
                timeout: me.stop_timeout,
                no_kill: false,
            };
            let ok = match me.driver.stop(vm, opts).await {
                Ok(how) => {
                    info!(vm, ?how, "stopped");
                    true
                }
                Err(DriverError::NoSuchVm { .. }) => true,
                Err(e) => {
                    warn!(vm, error = %e, "stop failed");
                    false
                }
            };
            let result = if ok {
                VmResult::Stopped
            } else {
                VmResult::StopFailed
            };
            let record = Exec::record(vm, "stop", ok, t);
            me.send(ExecDone::Vm {
                service,
                name: name.to_string(),
                result,
                record,
            });
        });
    }

    /// Prepares an incoming migration of `service` here.
    pub fn prepare_incoming(&self, service: ServiceIndex, name: String, from: NodeId) {
        let me = self.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let vm = vm_name(&name).unwrap_or(&name).to_string();
            let result = match me.definition(&vm) {
                Ok(def) => {
                    match me
                        .driver
                        .prepare_incoming(&def, SocketAddr::new(me.listen, 0))
                        .await
                    {
                        Ok(h) => {
                            info!(vm, from = from.0, uri = %h.uri, "waiting for the incoming migration");
                            VmResult::Prepared { uri: h.uri }
                        }
                        Err(e) => {
                            warn!(vm, error = %e, "cannot prepare an incoming migration");
                            VmResult::PrepareFailed
                        }
                    }
                }
                Err(e) => {
                    warn!(vm, error = %e, "no usable definition");
                    VmResult::PrepareFailed
                }
            };
            let ok = matches!(result, VmResult::Prepared { .. });
            let record = Exec::record(&vm, "incoming", ok, t);
            me.send(ExecDone::Vm {
                service,
                name: name.to_string(),
                result,
                record,
            });
        });
    }

    /// Drops a prepared incoming VM (no answer).
    pub fn abort_incoming(&self, name: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let vm = vm_name(&name).unwrap_or(&name).to_string();
            if let Err(e) = me.driver.abort_incoming(&vm).await {
                warn!(vm, error = %e, "abort of the incoming VM failed");
            }
        });
    }

    /// Live-migrates `service` to `to` at `uri`.
    pub fn migrate_out(&self, service: ServiceIndex, name: String, to: NodeId, uri: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let vm = vm_name(&name).unwrap_or(&name).to_string();
            let (result, downtime) = match me.driver.migrate(&vm, &uri).await {
                Ok(stats) => {
                    info!(vm, to = to.0, total_ms = stats.total_ms, downtime_ms = ?stats.downtime_ms,
                          bytes = ?stats.transferred_bytes, "migrated");
                    (VmResult::Migrated, stats.downtime_ms)
                }
                Err(e) => {
                    let on_source = matches!(me.driver.status(&vm).await, Ok(VmState::Running));
                    warn!(vm, to = to.0, error = %e, on_source, "migration failed");
                    (VmResult::MigrateFailed { on_source }, None)
                }
            };
            let ok = result == VmResult::Migrated;
            let mut record = Exec::record(&vm, "migrate-out", ok, t);
            if let Event::Vm {
                to: rec_to,
                downtime_ms,
                ..
            } = &mut record
            {
                *rec_to = Some(to.0);
                *downtime_ms = downtime;
            }
            me.send(ExecDone::Vm {
                service,
                name: name.to_string(),
                result,
                record,
            });
        });
    }

    /// Checks whether `service` runs here.
    pub fn check_status(&self, service: ServiceIndex, name: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let running = match vm_name(&name) {
                None => match me.groups.status(&me.conf.rm, &name).await {
                    Ok(()) => true,
                    Err(e) => {
                        warn!(service = %name, error = %e, "status check failed");
                        false
                    }
                },
                Some(vm) => matches!(me.driver.status(vm).await, Ok(VmState::Running)),
            };
            let _ = me
                .tx
                .send(ExecDone::Status {
                    service,
                    name,
                    running,
                })
                .await;
        });
    }

    /// Whether `name` runs here, for re-adoption at daemon start-up: a VM the driver reports
    /// running, or a service every resource of which passes its status check (it is then
    /// adopted: later checks and the eventual stop use that tree). A service found partly
    /// up cannot be adopted and must not stay half-up while another node starts it, so its
    /// resources are stopped here (rgmanager stopped every service at start-up) and the
    /// answer is no.
    pub async fn probe_service(&self, name: &str) -> bool {
        if let Some(vm) = vm_name(name) {
            return match self.driver.status(vm).await {
                // A paused guest holds the VM too (the end of an outgoing migration the
                // last rgmanagerd did not see finish): adopted, the status check decides.
                Ok(VmState::Running | VmState::Paused) => true,
                Ok(VmState::Incoming) => {
                    warn!(vm, "an incoming migration nobody waits for; dropping it");
                    if let Err(e) = self.driver.abort_incoming(vm).await {
                        warn!(vm, error = %e, "cannot drop the incoming VM");
                    }
                    false
                }
                Ok(VmState::Failed(why)) => {
                    warn!(vm, why, "a VM in a bad state; stopping it");
                    let opts = StopOptions {
                        timeout: self.stop_timeout,
                        no_kill: false,
                    };
                    if let Err(e) = self.driver.stop(vm, opts).await {
                        warn!(vm, error = %e, "cannot stop it");
                    }
                    false
                }
                Ok(VmState::Stopped) | Err(_) => false,
            };
        }
        match self.groups.probe(&self.conf.rm, name).await {
            Ok(Probe::Running) => {
                info!(service = %name, "resource group is running here; adopted");
                true
            }
            Ok(Probe::Stopped) => false,
            Ok(Probe::Partial) => {
                warn!(service = %name, "resource group is partly up here; stopping what runs");
                if let Err(e) = self.groups.stop(&self.conf.rm, name).await {
                    warn!(service = %name, error = %e, "cleanup stop failed; resources may still be allocated");
                }
                false
            }
            Err(e) => {
                warn!(service = %name, error = %e, "cannot probe");
                false
            }
        }
    }
}
