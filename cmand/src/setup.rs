//! Everything cmand decides before its loop starts: the configuration, which node this is,
//! the peers' addresses, the key, the incarnation and the membership core.

use crate::error::DaemonError;
use crate::io::hosts::Resolver;
use crate::io::incarnation;
use libcluster::config::{self, ClusterConf, ClusterNode};
use libcluster::membership::{Membership, MembershipConfig, NodeConf};
use libcluster::wire::ClusterKey;
use libcluster::NodeId;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// The command line and environment, resolved to values.
#[derive(Clone, Debug)]
pub struct Options {
    /// cluster.conf path (`--config`, `CLUSTER_CONF`).
    pub config: PathBuf,
    /// This node's name (`--node`, `CLUSTER_NODE_NAME`); else the host name.
    pub node: Option<String>,
    /// Runtime directory (socket, incarnation file).
    pub runtime_dir: PathBuf,
    /// Key file given on the command line or in `CLUSTER_KEYFILE`.
    pub keyfile: Option<PathBuf>,
    /// History file (`--history`, `CLUSTER_HISTORY`).
    pub history: Option<PathBuf>,
    /// `--insecure-no-key`.
    pub insecure_no_key: bool,
}

/// What the loop starts from.
#[derive(Debug)]
pub struct Setup {
    /// The configuration as loaded.
    pub conf: ClusterConf,
    /// Where it came from (and where updates are written).
    pub config_path: PathBuf,
    /// This node.
    pub me: NodeId,
    /// Its configured name.
    pub name: String,
    /// Every configured node's name.
    pub names: BTreeMap<NodeId, String>,
    /// Addresses resolved so far (this node's is always there).
    pub addrs: BTreeMap<NodeId, IpAddr>,
    /// How to resolve the rest later.
    pub resolver: Resolver,
    /// The cluster key.
    pub key: ClusterKey,
    /// This start's incarnation.
    pub incarnation: u64,
    /// The membership core.
    pub core: Membership,
}

/// Loads and checks everything; logs the warnings worth knowing.
pub fn prepare(opts: &Options) -> Result<Setup, DaemonError> {
    let (conf, text) = load_config(&opts.config)?;
    let node = identify(&conf, opts.node.as_deref(), &opts.config)?.clone();
    let names: BTreeMap<NodeId, String> = conf
        .clusternodes
        .iter()
        .map(|n| (n.nodeid, n.name.clone()))
        .collect();
    let resolver = Resolver::from_env();
    let all: Vec<String> = names.values().cloned().collect();
    let found = resolver
        .resolve_all(&all)
        .map_err(|source| match &resolver {
            Resolver::HostsFile(path) => DaemonError::Hosts {
                path: path.clone(),
                source,
            },
            Resolver::System => DaemonError::Runtime(source),
        })?;
    let addrs: BTreeMap<NodeId, IpAddr> = names
        .iter()
        .filter_map(|(id, n)| found.get(n).map(|a| (*id, *a)))
        .collect();
    if !addrs.contains_key(&node.nodeid) {
        return Err(DaemonError::Unresolved { name: node.name });
    }
    for (id, n) in &names {
        if !addrs.contains_key(id) {
            warn!(peer = %n, "cannot resolve the node's address yet; retrying");
        }
    }
    let key = load_key(opts, &conf)?;
    let (incarnation, written) = incarnation::take(&opts.runtime_dir);
    if let Err(e) = written {
        warn!(path = %incarnation::path(&opts.runtime_dir).display(), error = %e,
              "cannot record the incarnation; a restart within the same microsecond could reuse it");
    }
    let core = Membership::new(membership_config(&conf, node.nodeid, incarnation, text))
        .map_err(DaemonError::Core)?;
    Ok(Setup {
        me: node.nodeid,
        name: node.name,
        conf,
        config_path: opts.config.clone(),
        names,
        addrs,
        resolver,
        key,
        incarnation,
        core,
    })
}

/// Reads and validates cluster.conf; warnings are logged.
pub fn load_config(path: &Path) -> Result<(ClusterConf, String), DaemonError> {
    let text = std::fs::read_to_string(path).map_err(|source| DaemonError::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    let parsed = config::parse(&text, &path.display().to_string()).map_err(|diagnostics| {
        DaemonError::Config {
            path: path.to_path_buf(),
            diagnostics,
        }
    })?;
    for w in &parsed.warnings {
        warn!("{w}");
    }
    Ok((parsed.config, text))
}

/// The clusternode this daemon is: the one named `wanted` (given on the command line or in
/// the environment), else the one whose name matches the host name, in full or by the
/// short name (up to the first dot) on either side.
pub fn identify<'a>(
    conf: &'a ClusterConf,
    wanted: Option<&str>,
    path: &Path,
) -> Result<&'a ClusterNode, DaemonError> {
    if let Some(name) = wanted {
        return conf.node(name).ok_or_else(|| DaemonError::WhoAmI {
            name: name.to_string(),
            from_hostname: false,
            path: path.to_path_buf(),
        });
    }
    let host = nix::unistd::gethostname()
        .map_err(|e| DaemonError::Hostname(e.into()))?
        .to_string_lossy()
        .into_owned();
    by_host_name(conf, &host).ok_or_else(|| DaemonError::WhoAmI {
        name: host,
        from_hostname: true,
        path: path.to_path_buf(),
    })
}

/// The node whose name is `host`, or failing that whose short name is `host`'s short name.
pub fn by_host_name<'a>(conf: &'a ClusterConf, host: &str) -> Option<&'a ClusterNode> {
    let short = |s: &str| s.split('.').next().unwrap_or(s).to_ascii_lowercase();
    conf.node(host).or_else(|| {
        let mut matching = conf
            .clusternodes
            .iter()
            .filter(|n| short(&n.name) == short(host));
        let first = matching.next()?;
        // Two nodes with the same short name: guessing would be wrong half the time.
        matching.next().is_none().then_some(first)
    })
}

/// The key file in force: `--keyfile` / `CLUSTER_KEYFILE`, else `<cman keyfile>`.
pub fn key_path(opts: &Options, conf: &ClusterConf) -> PathBuf {
    opts.keyfile
        .clone()
        .unwrap_or_else(|| PathBuf::from(&conf.cman.keyfile))
}

/// The development key of `--insecure-no-key`: SHA-256 of `"insecure:" + cluster name`.
/// Anyone who knows the cluster name can forge traffic with it.
pub fn insecure_key(cluster_name: &str) -> ClusterKey {
    let digest = Sha256::digest(format!("insecure:{cluster_name}").as_bytes());
    match ClusterKey::from_bytes(digest.to_vec()) {
        Ok(k) => k,
        Err(e) => unreachable!("a 32-byte digest is a valid key: {e}"),
    }
}

fn load_key(opts: &Options, conf: &ClusterConf) -> Result<ClusterKey, DaemonError> {
    if opts.insecure_no_key {
        warn!(
            cluster = %conf.name,
            "--insecure-no-key: traffic is authenticated with a key derived from the cluster \
             name; anyone who knows the name can forge membership. Never use this in production"
        );
        return Ok(insecure_key(&conf.name));
    }
    let path = key_path(opts, conf);
    let key = ClusterKey::load(&path).map_err(|source| DaemonError::Key {
        path: path.clone(),
        source,
    })?;
    info!(path = %path.display(), "cluster key loaded");
    Ok(key)
}

/// The core's configuration from cluster.conf.
pub fn membership_config(
    conf: &ClusterConf,
    me: NodeId,
    incarnation: u64,
    text: String,
) -> MembershipConfig {
    let nodes = conf
        .clusternodes
        .iter()
        .map(|n| NodeConf {
            id: n.nodeid,
            votes: n.votes,
        })
        .collect();
    MembershipConfig {
        expected_votes: conf.expected_votes(),
        two_node: conf.two_node(),
        token_ms: u64::from(conf.token_ms()),
        quorum_dev_poll_ms: u64::from(conf.quorum_dev_poll_ms()),
        max_queued: usize::try_from(conf.cman.max_queued).unwrap_or(usize::MAX),
        config_version: u64::from(conf.config_version),
        config_text: text,
        ..MembershipConfig::new(me, incarnation, nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"<cluster name="lab" config_version="3">
  <cman expected_votes="5"/>
  <totem token="2000"/>
  <clusternodes>
    <clusternode name="n1.example.com" nodeid="1" votes="2"/>
    <clusternode name="n2" nodeid="2"/>
    <clusternode name="n3.a" nodeid="3"/>
    <clusternode name="n3.b" nodeid="4"/>
  </clusternodes>
</cluster>"#;

    fn conf() -> ClusterConf {
        config::parse(CONF, "t").unwrap().config
    }

    #[test]
    fn the_host_name_matches_in_full_or_by_short_name_but_never_ambiguously() {
        let c = conf();
        let id = |h: &str| by_host_name(&c, h).map(|n| n.nodeid.0);
        assert_eq!(id("n1.example.com"), Some(1));
        assert_eq!(id("N1"), Some(1));
        assert_eq!(id("n2.lab.local"), Some(2));
        assert_eq!(id("n3.a"), Some(3));
        assert_eq!(id("n3"), None);
        assert_eq!(id("n9"), None);
    }

    #[test]
    fn a_given_name_must_be_configured() {
        let c = conf();
        let p = Path::new("/etc/cluster/cluster.conf");
        assert_eq!(identify(&c, Some("n2"), p).unwrap().nodeid, NodeId(2));
        let e = identify(&c, Some("nope"), p).unwrap_err().to_string();
        assert!(
            e.contains("nope") && e.contains("/etc/cluster/cluster.conf"),
            "{e}"
        );
    }

    #[test]
    fn the_core_gets_votes_expected_token_and_version_from_the_file() {
        let m = membership_config(&conf(), NodeId(2), 77, CONF.into());
        assert_eq!((m.me, m.incarnation), (NodeId(2), 77));
        assert_eq!(m.nodes.len(), 4);
        assert_eq!(m.nodes[0].votes, 2);
        assert_eq!(m.expected_votes, 5);
        assert_eq!((m.token_ms, m.quorum_dev_poll_ms), (2000, 2000));
        assert_eq!(m.config_version, 3);
        assert!(Membership::new(m).is_ok());
    }

    #[test]
    fn the_insecure_key_depends_on_the_cluster_name_only() {
        assert_eq!(insecure_key("a"), insecure_key("a"));
        assert_ne!(insecure_key("a"), insecure_key("b"));
    }

    #[test]
    fn the_key_file_option_beats_the_config() {
        let mut opts = Options {
            config: "c".into(),
            node: None,
            runtime_dir: "r".into(),
            keyfile: None,
            history: None,
            insecure_no_key: false,
        };
        let c = conf();
        assert_eq!(
            key_path(&opts, &c),
            PathBuf::from("/etc/cluster/cman_authkey")
        );
        opts.keyfile = Some("/tmp/k".into());
        assert_eq!(key_path(&opts, &c), PathBuf::from("/tmp/k"));
    }
}
