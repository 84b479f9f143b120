//! The built `clustat` and `clusvcadm` end to end: against no daemon, against a stand-in
//! cmand alone (rgmanagerd not running), and against stand-ins for both, each the real
//! clusterio server in a temporary runtime directory answering canned values.

use clusterio::{EventPublisher, Incoming, Limits, Server};
use libcluster::ipc::cman::{
    CmanEvent, CmanNode, CmanRequest, CmanResponse, CmanStatus, MembershipState, NodeState,
};
use libcluster::ipc::rgmanager::{RgEvent, RgMember, RgRequest, RgResponse, RgService, RgStatus};
use libcluster::ipc::{ApiRequest, ErrorCode, ErrorReply};
use libcluster::rgmanager::{Request, ServiceState};
use libcluster::NodeId;
use serde::{de::DeserializeOwned, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::watch;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rgtools-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stand-in daemon: the real server; `answer` replies from the test's closure and every
/// request is recorded.
struct Stub<Req> {
    asked: Arc<Mutex<Vec<Req>>>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

type Answer<Req, Resp> = Box<dyn Fn(&Req) -> Result<Resp, ErrorReply> + Send>;

impl<Req> Stub<Req>
where
    Req: ApiRequest + DeserializeOwned + Clone + Send + 'static,
{
    fn start<Resp, Ev>(socket: PathBuf, answer: Answer<Req, Resp>) -> Stub<Req>
    where
        Resp: Serialize + Send + 'static,
        Ev: Serialize + Send + Sync + Clone + 'static,
    {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        // Writes are for root or the admin group: make ours the admin group.
        let gid = std::fs::metadata(socket.parent().unwrap()).unwrap().gid();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (ready_tx, ready) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::<Req, Resp, Ev>::bind(&socket, Limits::default())
                    .await
                    .expect("bind");
                let (tx, mut requests) = tokio::sync::mpsc::channel::<Incoming<Req, Resp>>(8);
                let publisher = EventPublisher::<Ev>::new(8);
                let (_admin, admin_rx) = watch::channel(Some(gid));
                let served = tokio::spawn(server.run(tx, publisher.feed(), admin_rx, shutdown_rx));
                ready_tx.send(()).unwrap();
                while let Some(incoming) = requests.recv().await {
                    log.lock().unwrap().push(incoming.request.clone());
                    let reply = answer(&incoming.request);
                    incoming.respond(reply);
                }
                served.await.unwrap();
            });
        });
        ready.recv().expect("the stand-in started");
        Stub {
            asked,
            shutdown,
            thread: Some(thread),
        }
    }

    fn asked(&self) -> Vec<Req> {
        self.asked.lock().unwrap().clone()
    }
}

impl<Req> Drop for Stub<Req> {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn cman_status() -> CmanStatus {
    CmanStatus {
        config_version: 2,
        cluster_name: "dom0cluster1".into(),
        cluster_id: 4711,
        state: MembershipState::ClusterMember,
        generation: 12,
        coordinator: Some(1),
        members: vec![1, 2],
        expected_votes: 3,
        qdisk_votes: Some(1),
        total_votes: 3,
        node_votes: 1,
        quorum: 2,
        quorate: true,
        active_subsystems: 3,
        two_node: false,
        disallowed: vec![],
        node_name: "station200.example.com".into(),
        node_id: 1,
        incarnation: 1,
        multicast_addresses: vec![],
        node_addresses: vec![],
        uptime_s: 10,
        counters: Default::default(),
    }
}

fn cman_node(id: u32, name: &str, state: NodeState) -> CmanNode {
    CmanNode {
        id,
        name: name.into(),
        state,
        incarnation: 1,
        joined_unix_s: None,
        votes: 1,
        expected_votes: 3,
        addresses: vec![],
    }
}

fn start_cman(dir: &Path) -> Stub<CmanRequest> {
    let socket = clusterio::socket_path(dir, libcluster::ipc::cman::DAEMON);
    Stub::start::<CmanResponse, CmanEvent>(
        socket,
        Box::new(|r| match r {
            CmanRequest::Status => Ok(CmanResponse::Status(Box::new(cman_status()))),
            CmanRequest::Nodes => Ok(CmanResponse::Nodes(vec![
                cman_node(0, "/dev/mpath/quorumpl", NodeState::Member),
                cman_node(1, "station200.example.com", NodeState::Member),
                cman_node(2, "station201.example.com", NodeState::Dead),
            ])),
            _ => Err(ErrorReply::new(ErrorCode::BAD_REQUEST, "not scripted")),
        }),
    )
}

fn rg_member(name: &str, id: u32, local: bool) -> RgMember {
    RgMember {
        name: name.into(),
        id,
        online: true,
        local,
        rgmanager: true,
        master: local,
        qdisk: false,
        estranged: false,
    }
}

fn rg_status() -> RgStatus {
    let mut guest = RgService::new("vm:guest1");
    guest.record.state = ServiceState::Started;
    guest.record.owner = Some(NodeId(1));
    let mut web = RgService::new("service:web");
    web.record.state = ServiceState::Disabled;
    RgStatus {
        cluster_name: "dom0cluster1".into(),
        cluster_id: 4711,
        generation: 12,
        quorate: true,
        local_node_id: 1,
        locked: false,
        members: vec![
            rg_member("station200.example.com", 1, true),
            rg_member("station201.example.com", 2, false),
        ],
        services: vec![guest, web],
    }
}

fn start_rg(dir: &Path) -> Stub<RgRequest> {
    let socket = clusterio::socket_path(dir, libcluster::ipc::rgmanager::DAEMON);
    Stub::start::<RgResponse, RgEvent>(
        socket,
        Box::new(|r| match r {
            RgRequest::Status => Ok(RgResponse::Status(Box::new(rg_status()))),
            RgRequest::Lock => Ok(RgResponse::Locked(true)),
            RgRequest::Unlock => Ok(RgResponse::Locked(false)),
            RgRequest::QueryLock => Ok(RgResponse::Locked(false)),
            RgRequest::Action {
                request: Request::Enable { .. },
                ..
            } => Ok(RgResponse::ActionResult {
                code: 0,
                owner_after: Some("station200.example.com".into()),
            }),
            RgRequest::Action {
                request: Request::Freeze,
                ..
            } => Ok(RgResponse::ActionResult {
                code: -11,
                owner_after: None,
            }),
            RgRequest::Action { .. } => Ok(RgResponse::ActionResult {
                code: 0,
                owner_after: Some("station201.example.com".into()),
            }),
            _ => Ok(RgResponse::ActionResult {
                code: -8,
                owner_after: None,
            }),
        }),
    )
}

fn run(bin: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("CLUSTER_RUNTIME_DIR", dir)
        .env("TZ", "UTC")
        .output()
        .expect("the binary runs")
}

fn clustat(dir: &Path, args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_clustat"), dir, args)
}

fn clusvcadm(dir: &Path, args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_clusvcadm"), dir, args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn without_cmand_clustat_cannot_connect_and_exits_one() {
    let dir = TempDir::new("none");
    for args in [&[][..], &["-Q"], &["-I"], &["-x"]] {
        let o = clustat(&dir.0, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&o).starts_with("Could not connect to CMAN: "),
            "{}",
            stderr(&o)
        );
    }
    // -v needs no daemon.
    let o = clustat(&dir.0, &["-v"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("clustat version "));
}

#[test]
fn without_rgmanagerd_clustat_shows_cmand_members_only() {
    let dir = TempDir::new("cman");
    let _cman = start_cman(&dir.0);
    let o = clustat(&dir.0, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let body: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(
        body,
        [
            "Member Status: Quorate",
            "",
            " Member Name                             ID   Status",
            " ------ ----                             ---- ------",
            " station200.example.com                      1 Online, Local",
            " station201.example.com                      2 Offline",
            " /dev/mpath/quorumpl                         0 Online, Quorum Disk",
            "",
        ]
    );
    assert_eq!(clustat(&dir.0, &["-Q"]).status.code(), Some(0));
    assert_eq!(stdout(&clustat(&dir.0, &["-I"])), "0x00000001\n");
    assert_eq!(
        clustat(&dir.0, &["-m", "station201.example.com"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        clustat(&dir.0, &["-s", "vm:guest1"]).status.code(),
        Some(255)
    );
}

#[test]
fn with_rgmanagerd_clustat_shows_services_and_exits_by_state() {
    let dir = TempDir::new("both");
    let _cman = start_cman(&dir.0);
    let rg = start_rg(&dir.0);
    let o = clustat(&dir.0, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(" station200.example.com                      1 Online, Local, rgmanager\n")
    );
    assert!(out.contains(
        " vm:guest1                      station200.example.com         started       \n"
    ));
    assert_eq!(clustat(&dir.0, &["-s", "guest1"]).status.code(), Some(0));
    assert_eq!(clustat(&dir.0, &["-s", "web"]).status.code(), Some(119));
    let x = stdout(&clustat(
        &dir.0,
        &["-x", "--runtime-dir", dir.0.to_str().unwrap()],
    ));
    assert!(
        x.contains("<quorum quorate=\"1\" groupmember=\"1\"/>"),
        "{x}"
    );
    let j = stdout(&clustat(&dir.0, &["--json"]));
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["services"][1]["owner"], "station200.example.com");
    assert!(rg.asked().iter().all(|r| *r == RgRequest::Status));
}

#[test]
fn clusvcadm_without_daemons_cannot_connect_to_the_cluster_service() {
    let dir = TempDir::new("svc-none");
    let o = clusvcadm(&dir.0, &["-e", "vm:guest1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "Could not connect to cluster service\n");
    let o = clusvcadm(&dir.0, &["-l"]);
    assert_eq!(
        stdout(&o),
        "Could not connect to cluster service\nLock operation failed\n"
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn clusvcadm_without_rgmanagerd_prints_progress_then_cannot_connect() {
    let dir = TempDir::new("svc-cman");
    let _cman = start_cman(&dir.0);
    let o = clusvcadm(&dir.0, &["-d", "web"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "Local machine disabling service:web...Could not connect to resource group manager\n"
    );
}

#[test]
fn clusvcadm_enable_on_a_closest_match_sends_the_member_id() {
    let dir = TempDir::new("svc-enable");
    let rg = start_rg(&dir.0);
    let o = clusvcadm(&dir.0, &["-e", "guest1", "-m", "station201"]);
    assert_eq!(
        stdout(&o),
        "'station201' not in membership list\n\
         Closest match: 'station201.example.com'\n\
         Member station201.example.com trying to enable vm:guest1...Success\n\
         Warning: vm:guest1 is now running on station200.example.com\n"
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        rg.asked().last(),
        Some(&RgRequest::Action {
            service: "vm:guest1".into(),
            request: Request::Enable {
                target: Some(NodeId(2))
            },
            follow_domain: false,
        })
    );
}

#[test]
fn clusvcadm_plain_enable_targets_the_local_node_and_f_the_domain() {
    let dir = TempDir::new("svc-local");
    let rg = start_rg(&dir.0);
    let o = clusvcadm(&dir.0, &["-e", "vm:guest1"]);
    assert_eq!(
        stdout(&o),
        "Local machine trying to enable vm:guest1...Success\n\
         vm:guest1 is now running on station200.example.com\n"
    );
    let o = clusvcadm(&dir.0, &["-F", "-e", "vm:guest1"]);
    assert_eq!(o.status.code(), Some(0));
    let actions: Vec<_> = rg
        .asked()
        .into_iter()
        .filter_map(|r| match r {
            RgRequest::Action {
                request,
                follow_domain,
                ..
            } => Some((request, follow_domain)),
            _ => None,
        })
        .collect();
    assert_eq!(
        actions,
        [
            (
                Request::Enable {
                    target: Some(NodeId(1))
                },
                false
            ),
            (Request::Enable { target: None }, true),
        ]
    );
}

#[test]
fn clusvcadm_failures_print_the_result_string_and_exit_with_its_low_byte() {
    let dir = TempDir::new("svc-fail");
    let _rg = start_rg(&dir.0);
    let o = clusvcadm(&dir.0, &["-Z", "vm:guest1"]);
    assert_eq!(
        stdout(&o),
        "Local machine freezing vm:guest1...Failure: Service is frozen\n"
    );
    assert_eq!(o.status.code(), Some(245));
    let o = clusvcadm(&dir.0, &["-c", "vm:guest1"]);
    assert_eq!(
        stdout(&o),
        "Local machine convalescing vm:guest1...Invalid operation for resource\n"
    );
    assert_eq!(o.status.code(), Some(248));
    // Migration to a member nobody matches gives up before asking.
    let o = clusvcadm(&dir.0, &["-M", "vm:guest1", "-m", "zeus"]);
    assert_eq!(
        stdout(&o),
        "'zeus' not in membership list\nNo matches for 'zeus' found\n"
    );
    assert_eq!(o.status.code(), Some(1));
    // -q: nothing on stdout, the exit code stays.
    let o = clusvcadm(&dir.0, &["-q", "-Z", "vm:guest1"]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("", Some(245)));
}

#[test]
fn clusvcadm_lock_commands_report_the_lock_state() {
    let dir = TempDir::new("svc-lock");
    let _rg = start_rg(&dir.0);
    let o = clusvcadm(&dir.0, &["-l"]);
    assert_eq!(
        (stdout(&o).as_str(), o.status.code()),
        ("Resource groups locked\n", Some(0))
    );
    let o = clusvcadm(&dir.0, &["-u"]);
    assert_eq!(stdout(&o), "Resource groups unlocked\n");
    let o = clusvcadm(&dir.0, &["-S"]);
    assert_eq!(stdout(&o), "Resource groups unlocked\n");
}
