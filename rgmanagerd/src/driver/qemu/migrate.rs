//! Live migration, source side: `migrate`, then `query-migrate` until it settles.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::{info, warn};

use super::args::VmPaths;
use super::QemuDriver;
use crate::driver::qmp::millis;
use crate::driver::{DriverError, MigrationStats, VmState};

/// The figures QEMU's `query-migrate` reports for a completed migration.
pub fn stats_of(info: &Value) -> MigrationStats {
    let ms = |k: &str| info.get(k).and_then(Value::as_u64);
    MigrationStats {
        total_ms: ms("total-time").unwrap_or(0),
        downtime_ms: ms("downtime"),
        setup_ms: ms("setup-time"),
        transferred_bytes: info
            .get("ram")
            .and_then(|r| r.get("transferred"))
            .and_then(Value::as_u64),
    }
}

/// The port QEMU listens on for an incoming migration (`query-migrate` on the target).
pub(super) fn incoming_port(info: &Value) -> Option<u16> {
    let addr = info.get("socket-address")?.as_array()?.first()?;
    match addr.get("port")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        _ => None,
    }
}

impl QemuDriver {
    pub(super) async fn migrate_locked(
        &self,
        name: &str,
        paths: &VmPaths,
        pid: u32,
        target: &str,
    ) -> Result<MigrationStats, DriverError> {
        let qmp_err = |source| DriverError::Qmp {
            vm: name.to_string(),
            source,
        };
        let mut q = self.qmp(name, &paths.qmp).await?;
        let failed = |reason: String, source_state: VmState| DriverError::MigrationFailed {
            vm: name.to_string(),
            reason,
            source_state,
        };
        if let Err(e) = q.execute("migrate", Some(json!({ "uri": target }))).await {
            let state = self.query_state(name, paths).await?;
            return Err(failed(e.to_string(), state));
        }
        let deadline = Instant::now() + self.opts.migrate_timeout;
        loop {
            let info = q.execute("query-migrate", None).await.map_err(qmp_err)?;
            let status = info.get("status").and_then(Value::as_str).unwrap_or("");
            match status {
                "completed" => {
                    let stats = stats_of(&info);
                    drop(q);
                    info!(vm = %name, %target, total_ms = stats.total_ms,
                          downtime_ms = stats.downtime_ms, "migration completed");
                    self.destroy(name, paths, pid).await?;
                    return Ok(stats);
                }
                "failed" | "cancelled" => {
                    let reason = info
                        .get("error-desc")
                        .and_then(Value::as_str)
                        .unwrap_or(status)
                        .to_string();
                    let state = self.query_state(name, paths).await?;
                    warn!(vm = %name, %target, %reason, %state, "migration failed");
                    return Err(failed(reason, state));
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                let _ = q.execute("migrate_cancel", None).await;
                // Cancelling takes a moment; wait for QEMU to settle before reporting.
                for _ in 0..500 {
                    let info = q.execute("query-migrate", None).await.map_err(qmp_err)?;
                    let st = info.get("status").and_then(Value::as_str).unwrap_or("");
                    if !matches!(st, "active" | "setup" | "cancelling" | "device") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let state = self.query_state(name, paths).await?;
                return Err(failed(
                    format!(
                        "not finished within {} ms, cancelled",
                        millis(self.opts.migrate_timeout)
                    ),
                    state,
                ));
            }
            tokio::time::sleep(self.opts.migrate_poll).await;
        }
    }
}
