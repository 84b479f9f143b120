//! Bad clients, stale sockets and limits: the server keeps serving everyone else.

mod common;

use clusterio::{socket_path, ClientError, IpcClient, Limits, Server, ServerError};
use common::{Daemon, Ev, Req, Resp, TempDir, TIMEOUT};
use libcluster::ipc::{ErrorCode, Frame, FrameDecoder, IPC_VERSION};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

type Client = IpcClient<Req, Resp, Ev>;

/// Writes raw bytes on a fresh connection, then reads everything until the server closes.
/// Runs on a blocking thread so the server keeps running meanwhile.
async fn raw_exchange(path: &std::path::Path, bytes: Vec<u8>) -> Vec<Frame<(), Resp, Ev>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut stream = UnixStream::connect(&path).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.write_all(&bytes).unwrap();
        let mut got = Vec::new();
        // A read error (reset) counts as closed too: the server may close before reading all.
        let _ = stream.read_to_end(&mut got);
        let mut decoder = FrameDecoder::default();
        decoder.push(&got);
        std::iter::from_fn(|| decoder.next_frame().ok().flatten()).collect()
    })
    .await
    .unwrap()
}

fn error_code(frames: &[Frame<(), Resp, Ev>]) -> Option<ErrorCode> {
    match frames {
        [Frame::Error { id: 0, code, .. }] => Some(*code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_only_that_connection() {
    let dir = TempDir::new("garbage");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let mut good = Client::connect(&daemon.path).await.unwrap();
    assert_eq!(
        good.call(&Req::Add(1, 1), TIMEOUT).await.unwrap(),
        Resp::Sum(2)
    );
    let frames = raw_exchange(&daemon.path, b"GET / HTTP/1.0\r\n\r\n".to_vec()).await;
    assert_eq!(
        error_code(&frames),
        Some(ErrorCode::BAD_REQUEST),
        "{frames:?}"
    );
    assert_eq!(
        good.call(&Req::Add(2, 2), TIMEOUT).await.unwrap(),
        Resp::Sum(4)
    );
    let mut fresh = Client::connect(&daemon.path).await.unwrap();
    assert_eq!(
        fresh.call(&Req::Add(3, 3), TIMEOUT).await.unwrap(),
        Resp::Sum(6)
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_version_is_answered_with_unsupported_version_and_closed() {
    let dir = TempDir::new("version");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let mut bytes = Frame::<Req, (), ()>::Request {
        id: 1,
        body: Req::GetValue,
    }
    .encode()
    .unwrap();
    bytes[4] = IPC_VERSION + 1;
    let frames = raw_exchange(&daemon.path, bytes).await;
    assert_eq!(
        error_code(&frames),
        Some(ErrorCode::UNSUPPORTED_VERSION),
        "{frames:?}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frame_is_refused_before_its_body_is_read() {
    let dir = TempDir::new("oversize");
    let limits = Limits {
        max_frame_len: 4096,
        ..Limits::default()
    };
    let daemon = Daemon::start_with(&socket_path(dir.path(), "toyd"), limits, 8).await;
    // Only the header is sent: the refusal cannot depend on the 4 GiB announced.
    let frames = raw_exchange(&daemon.path, vec![0xff, 0xff, 0xff, 0xff, IPC_VERSION, 1]).await;
    assert_eq!(
        error_code(&frames),
        Some(ErrorCode::BAD_REQUEST),
        "{frames:?}"
    );
    // A real request over the limit from the client library is refused the same way.
    let mut client = Client::connect(&daemon.path).await.unwrap();
    match client.call(&Req::Echo("x".repeat(5000)), TIMEOUT).await {
        Err(ClientError::Daemon { code, message }) => {
            assert_eq!(code, ErrorCode::BAD_REQUEST);
            assert!(message.contains("exceeds the limit"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut client = Client::connect(&daemon.path).await.unwrap();
    assert_eq!(
        client
            .call(&Req::Echo("small".into()), TIMEOUT)
            .await
            .unwrap(),
        Resp::Echo("small".into())
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_does_not_decode_is_answered_and_the_connection_goes_on() {
    let dir = TempDir::new("badbody");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    // Request id 9 with variant index 99, which the toy Req enum does not have.
    let mut bytes = vec![7, 0, 0, 0, IPC_VERSION, 1, 9, 0, 0, 0, 99];
    bytes.extend(
        Frame::<Req, (), ()>::Request {
            id: 10,
            body: Req::Add(5, 5),
        }
        .encode()
        .unwrap(),
    );
    let path = daemon.path.clone();
    let frames = tokio::task::spawn_blocking(move || {
        let mut stream = UnixStream::connect(&path).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.write_all(&bytes).unwrap();
        let mut decoder = FrameDecoder::default();
        let mut frames = Vec::new();
        let mut buf = [0u8; 4096];
        while frames.len() < 2 {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {frames:?}");
            decoder.push(&buf[..n]);
            while let Some(frame) = decoder.next_frame::<(), Resp, Ev>().unwrap() {
                frames.push(frame);
            }
        }
        frames
    })
    .await
    .unwrap();
    assert!(
        matches!(
            &frames[0],
            Frame::Error {
                id: 9,
                code: ErrorCode::BAD_REQUEST,
                ..
            }
        ),
        "{frames:?}"
    );
    assert_eq!(
        frames[1],
        Frame::Response {
            id: 10,
            body: Resp::Sum(10)
        }
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() {
    let dir = TempDir::new("stale");
    let path = socket_path(dir.path(), "toyd");
    // A socket file nobody listens on, as a crashed daemon leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let daemon = Daemon::start(&path).await;
    let mut client = Client::connect(&path).await.unwrap();
    assert_eq!(
        client.call(&Req::GetValue, TIMEOUT).await.unwrap(),
        Resp::Value(0)
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_live_socket_is_refused_and_left_working() {
    let dir = TempDir::new("live");
    let path = socket_path(dir.path(), "toyd");
    let daemon = Daemon::start(&path).await;
    let second = Server::<Req, Resp, Ev>::bind(&path, Limits::default()).await;
    assert!(
        matches!(second, Err(ServerError::AlreadyRunning { .. })),
        "{second:?}"
    );
    let mut client = Client::connect(&path).await.unwrap();
    assert_eq!(
        client.call(&Req::GetValue, TIMEOUT).await.unwrap(),
        Resp::Value(0)
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_never_removed() {
    let dir = TempDir::new("notsock");
    let path = socket_path(dir.path(), "toyd");
    std::fs::write(&path, b"precious").unwrap();
    let bound = Server::<Req, Resp, Ev>::bind(&path, Limits::default()).await;
    assert!(
        matches!(bound, Err(ServerError::NotASocket { .. })),
        "{bound:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[tokio::test]
async fn socket_is_open_to_all_and_a_missing_runtime_dir_is_created_0755() {
    let dir = TempDir::new("modes");
    let runtime = dir.path().join("run").join("cluster");
    let path = socket_path(&runtime, "toyd");
    let daemon = Daemon::start(&path).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&runtime), 0o755);
    assert_eq!(mode(&path), 0o666);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_told_busy() {
    let dir = TempDir::new("limit");
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let daemon = Daemon::start_with(&socket_path(dir.path(), "toyd"), limits, 8).await;
    let mut first = Client::connect(&daemon.path).await.unwrap();
    let mut second = Client::connect(&daemon.path).await.unwrap();
    // Both are served (so both were accepted) before the third arrives.
    first.call(&Req::GetValue, TIMEOUT).await.unwrap();
    second.call(&Req::GetValue, TIMEOUT).await.unwrap();
    let frames = raw_exchange(&daemon.path, Vec::new()).await;
    assert_eq!(error_code(&frames), Some(ErrorCode::BUSY), "{frames:?}");
    // The client library reports the reason, not the broken pipe of writing to a closed socket.
    for _ in 0..20 {
        let mut over = Client::connect(&daemon.path).await.unwrap();
        match over.call(&Req::GetValue, TIMEOUT).await {
            Err(ClientError::Daemon {
                code: ErrorCode::BUSY,
                ..
            }) => {}
            other => panic!("expected busy, got {other:?}"),
        }
    }
    drop(first);
    // The slot frees once the server notices the close; retry until then.
    let mut served = false;
    for _ in 0..200 {
        let mut third = Client::connect(&daemon.path).await.unwrap();
        match third.call(&Req::GetValue, TIMEOUT).await {
            Ok(_) => {
                served = true;
                break;
            }
            Err(
                ClientError::Daemon {
                    code: ErrorCode::BUSY,
                    ..
                }
                | ClientError::Closed,
            ) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(served, "a freed slot was never reused");
    daemon.stop().await;
}
