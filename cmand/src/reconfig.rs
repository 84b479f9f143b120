//! cluster.conf updates: `ccs_tool update` (ConfigUpdate), `cman_tool version -r`
//! (ReloadConfig), and writing what the cluster distributed.
//!
//! ```text
//!  ConfigUpdate{text} ─┐ parse+validate, same cluster name, this node listed,
//!  ReloadConfig (file)─┴ version > running ──▶ core: ClientRequest::ConfigUpdate (ordered)
//!                                                      │ every member, in order (and laggards
//!                                                      ▼ by state transfer)
//!  Action::ConfigUpdate ──▶ validate again ──▶ write the config path atomically ──▶ log,
//!                           ConfigChanged event + history ──▶ apply what reloads at runtime
//! ```
//!
//! Applied at runtime: `<cman admin_group>` (the IPC permission check) and
//! `<cman expected_votes>` (the view's coordinator submits it as `cman_tool expected` would,
//! so every member applies it in order). Everything the membership core was built from
//! (nodes, votes, two_node, token, quorum_dev_poll, max_queued, port, key file, cluster id)
//! takes effect when cmand restarts; the daemon says so in a warning.

use crate::api::answer;
use crate::shell::{AfterOk, ReplyTx, Shell};
use cmand::codes;
use libcluster::config::{self, ClusterConf};
use libcluster::files::write_atomic;
use libcluster::history::Event;
use libcluster::ipc::cman::{CmanEvent, CmanResponse};
use libcluster::ipc::ErrorReply;
use libcluster::membership::ClientRequest;
use std::os::unix::fs::PermissionsExt;
use tracing::{error, info, warn};

impl Shell {
    /// `ccs_tool update`: check the text, then distribute it in order.
    pub(crate) fn update_config(&mut self, text: String, reply: ReplyTx) {
        match self.check_new_config(&text, "cluster.conf (update)") {
            Ok(version) => self.distribute(version, text, reply),
            Err(e) => answer(reply, Err(e)),
        }
    }

    /// `cman_tool version -r`: re-read this node's file; distribute it when it is newer.
    pub(crate) fn reload_config(&mut self, reply: ReplyTx) {
        let path = self.config_path.clone();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("cannot read {}: {e}", path.display());
                return answer(reply, Err(ErrorReply::new(codes::CONFIG_INVALID, msg)));
            }
        };
        let running = self.core.status().config_version;
        let on_disk = config::parse(&text, &path.display().to_string())
            .map(|p| u64::from(p.config.config_version));
        if on_disk.is_ok_and(|v| v == running) {
            info!(
                version = running,
                "reload: the file holds the running version"
            );
            return answer(reply, Ok(CmanResponse::ConfigVersion(running)));
        }
        match self.check_new_config(&text, &path.display().to_string()) {
            Ok(version) => self.distribute(version, text, reply),
            Err(e) => answer(reply, Err(e)),
        }
    }

    fn distribute(&mut self, version: u64, text: String, reply: ReplyTx) {
        info!(view = %self.view_str(), version, "distributing cluster.conf");
        self.submit(
            ClientRequest::ConfigUpdate { version, text },
            Some(reply),
            CmanResponse::ConfigVersion(version),
            AfterOk::Nothing,
            "config update",
        );
    }

    /// A new text is acceptable: it validates, names the same cluster, still lists this
    /// node, and its config_version is greater than the running one. Returns that version.
    fn check_new_config(&self, text: &str, file: &str) -> Result<u64, ErrorReply> {
        let parsed = config::parse(text, file).map_err(|d| {
            let n = d.errors().count();
            let more = if n > 1 {
                format!(" (and {} more)", n - 1)
            } else {
                String::new()
            };
            ErrorReply::new(codes::CONFIG_INVALID, format!("{}{more}", d.first_error()))
        })?;
        let new = &parsed.config;
        let version = u64::from(new.config_version);
        let running = self.core.status().config_version;
        if version <= running {
            let msg = format!(
                "config_version {version} is not greater than the running config_version \
                 {running}; increase config_version in the new file"
            );
            return Err(ErrorReply::new(codes::CONFIG_NOT_NEWER, msg));
        }
        unchanged_identity(&self.conf, new, &self.me_name)
            .map_err(|msg| ErrorReply::new(codes::CONFIG_INVALID, msg))?;
        Ok(version)
    }

    /// The cluster delivered a newer cluster.conf (through ordered messaging or state
    /// transfer): validate it again, write it, tell the local daemons, apply what can be.
    pub(crate) fn apply_config(&mut self, version: u64, text: String) {
        let path = self.config_path.clone();
        let parsed = match config::parse(&text, &path.display().to_string()) {
            Ok(p) => p,
            Err(d) => {
                error!(version, error = %d.first_error(), "received cluster.conf does not validate; not written");
                return;
            }
        };
        let new = parsed.config;
        if u64::from(new.config_version) != version {
            error!(
                version,
                file_version = new.config_version,
                "received cluster.conf carries another config_version; not written"
            );
            return;
        }
        if let Err(msg) = unchanged_identity(&self.conf, &new, &self.me_name) {
            error!(version, "received cluster.conf refused: {msg}");
            return;
        }
        let mode = std::fs::metadata(&path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        if let Err(e) = write_atomic(&path, text.as_bytes(), mode) {
            error!(version, path = %path.display(), error = %e, "cannot write the new cluster.conf");
            return;
        }
        info!(view = %self.view_str(), version, path = %path.display(), "cluster.conf updated");
        self.publish(CmanEvent::ConfigChanged { version });
        self.record(Event::ConfigChanged { version });
        self.reload_runtime(new);
    }

    fn reload_runtime(&mut self, new: ClusterConf) {
        if new.cman.admin_group != self.conf.cman.admin_group {
            let gid = new
                .cman
                .admin_group
                .as_deref()
                .and_then(clusterio::group_id);
            info!(group = ?new.cman.admin_group, gid = ?gid, "admin group changed");
            self.admin_gid.send_replace(gid);
        }
        let expected = new.expected_votes();
        let coordinator = self.view.is_some_and(|v| v.coordinator == self.sender.me);
        if expected != self.conf.expected_votes() && coordinator {
            info!(view = %self.view_str(), expected, "applying expected votes from the new cluster.conf");
            self.submit(
                ClientRequest::SetExpected(expected),
                None,
                CmanResponse::Done,
                AfterOk::Nothing,
                "expected votes from cluster.conf",
            );
        }
        let later = needs_restart(&self.boot_conf, &new);
        if !later.is_empty() {
            warn!(settings = %later.join(", "),
                  "these cluster.conf changes take effect when cmand restarts");
        }
        self.conf = new;
    }
}

/// An update may not rename the cluster or drop this node.
fn unchanged_identity(old: &ClusterConf, new: &ClusterConf, me: &str) -> Result<(), String> {
    if new.name != old.name {
        return Err(format!(
            "cluster name {} differs from the running cluster's {}; a cluster cannot be \
             renamed by an update",
            new.name, old.name
        ));
    }
    if new.node(me).is_none() {
        return Err(format!(
            "this node ({me}) is not in the new configuration; remove a node from its own \
             cluster.conf only after it left"
        ));
    }
    Ok(())
}

/// The settings the membership core or the socket were built from that differ.
pub fn needs_restart(boot: &ClusterConf, new: &ClusterConf) -> Vec<&'static str> {
    let nodes = |c: &ClusterConf| -> Vec<(u32, String, u32)> {
        let mut v: Vec<_> = c
            .clusternodes
            .iter()
            .map(|n| (n.nodeid.0, n.name.to_ascii_lowercase(), n.votes))
            .collect();
        v.sort();
        v
    };
    let mut changed = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("clusternodes", nodes(boot) != nodes(new));
    check("two_node", boot.two_node() != new.two_node());
    check("totem token", boot.token_ms() != new.token_ms());
    check(
        "quorum_dev_poll",
        boot.quorum_dev_poll_ms() != new.quorum_dev_poll_ms(),
    );
    check("max_queued", boot.cman.max_queued != new.cman.max_queued);
    check("port", boot.cman.port != new.cman.port);
    check("keyfile", boot.cman.keyfile != new.cman.keyfile);
    check("cluster_id", boot.cluster_id() != new.cluster_id());
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(body: &str) -> ClusterConf {
        let text = format!(
            "<cluster name=\"c\" config_version=\"1\">{body}<clusternodes>\
             <clusternode name=\"n1\" nodeid=\"1\"/><clusternode name=\"n2\" nodeid=\"2\"/>\
             </clusternodes></cluster>"
        );
        config::parse(&text, "t").unwrap().config
    }

    #[test]
    fn runtime_settings_do_not_ask_for_a_restart_but_core_settings_do() {
        let a = conf("<cman expected_votes=\"2\"/>");
        let b = conf("<cman expected_votes=\"5\" admin_group=\"wheel\"/>");
        assert!(needs_restart(&a, &b).is_empty());
        let c = conf("<cman port=\"6000\"/><totem token=\"3000\"/>");
        assert_eq!(
            needs_restart(&a, &c),
            vec!["totem token", "quorum_dev_poll", "port"]
        );
        let mut d = a.clone();
        d.clusternodes[1].votes = 3;
        assert_eq!(needs_restart(&a, &d), vec!["clusternodes"]);
    }

    #[test]
    fn an_update_may_not_rename_the_cluster_or_drop_this_node() {
        let a = conf("");
        assert!(unchanged_identity(&a, &a, "n2").is_ok());
        let mut renamed = a.clone();
        renamed.name = "d".into();
        assert!(unchanged_identity(&a, &renamed, "n1")
            .unwrap_err()
            .contains("renamed"));
        assert!(unchanged_identity(&a, &a, "n3").unwrap_err().contains("n3"));
    }
}
