//! Requests, answers and events over real sockets.

mod common;

use clusterio::{call_blocking, socket_path, BlockingClient, ClientError, IpcClient, Limits};
use common::{Daemon, Ev, Req, Resp, TempDir, TIMEOUT, TOY_ERROR};
use std::time::Duration;

type Client = IpcClient<Req, Resp, Ev>;

#[tokio::test]
async fn request_gets_its_response() {
    let dir = TempDir::new("roundtrip");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let mut client = Client::connect(&daemon.path).await.unwrap();
    assert_eq!(
        client
            .call(&Req::Echo("hello".into()), TIMEOUT)
            .await
            .unwrap(),
        Resp::Echo("hello".into())
    );
    assert_eq!(
        client.call(&Req::Add(40, 2), TIMEOUT).await.unwrap(),
        Resp::Sum(42)
    );
    // Root (the tests' user) may write, and the write is seen by the next read.
    assert_eq!(
        client.call(&Req::SetValue(7), TIMEOUT).await.unwrap(),
        Resp::Done
    );
    assert_eq!(
        client.call(&Req::GetValue, TIMEOUT).await.unwrap(),
        Resp::Value(7)
    );
    daemon.stop().await;
}

#[tokio::test]
async fn daemon_errors_arrive_with_their_code() {
    let dir = TempDir::new("error");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let mut client = Client::connect(&daemon.path).await.unwrap();
    match client.call(&Req::Fail, TIMEOUT).await {
        Err(ClientError::Daemon { code, message }) => {
            assert_eq!(code, TOY_ERROR);
            assert!(message.contains("on purpose"), "{message}");
        }
        other => panic!("expected a daemon error, got {other:?}"),
    }
    // The connection is still good after an error answer.
    assert_eq!(
        client.call(&Req::GetValue, TIMEOUT).await.unwrap(),
        Resp::Value(0)
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_works_without_a_runtime_of_its_own() {
    let dir = TempDir::new("blocking");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let path = daemon.path.clone();
    let answers = tokio::task::spawn_blocking(move || {
        let one: Resp = call_blocking(&path, &Req::Add(1, 2), TIMEOUT).unwrap();
        let mut client = BlockingClient::<Req, Resp>::connect(&path).unwrap();
        let two = client.call(&Req::Echo("a".into()), TIMEOUT).unwrap();
        let three = client.call(&Req::Echo("b".into()), TIMEOUT).unwrap();
        (one, two, three)
    })
    .await
    .unwrap();
    assert_eq!(
        answers,
        (Resp::Sum(3), Resp::Echo("a".into()), Resp::Echo("b".into()))
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_times_out_and_its_late_answer_is_skipped() {
    let dir = TempDir::new("timeout");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let mut client = Client::connect(&daemon.path).await.unwrap();
    let short = Duration::from_millis(200);
    // The core holds Stall until released, so this can only time out.
    assert!(matches!(
        client.call(&Req::Stall, short).await,
        Err(ClientError::Timeout { .. })
    ));
    let path = daemon.path.clone();
    let blocking =
        tokio::task::spawn_blocking(move || call_blocking::<Req, Resp>(&path, &Req::Stall, short));
    assert!(matches!(
        blocking.await.unwrap(),
        Err(ClientError::Timeout { .. })
    ));
    let mut other = Client::connect(&daemon.path).await.unwrap();
    assert_eq!(
        other.call(&Req::Release, TIMEOUT).await.unwrap(),
        Resp::Done
    );
    // The late `Done` for the stalled call arrives first and must not be taken for this answer.
    assert_eq!(
        client.call(&Req::Add(1, 2), TIMEOUT).await.unwrap(),
        Resp::Sum(3)
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_mid_write_leaves_the_connection_unusable() {
    let dir = TempDir::new("torn");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let mut client = Client::connect(&daemon.path).await.unwrap();
    let short = Duration::from_millis(200);
    // While Stall is pending the server reads nothing more from this connection, so a
    // request larger than the socket buffers cannot be written whole.
    assert!(matches!(
        client.call(&Req::Stall, short).await,
        Err(ClientError::Timeout { .. })
    ));
    let big = Req::Echo("x".repeat(900 * 1024));
    assert!(matches!(
        client.call(&big, short).await,
        Err(ClientError::Timeout { .. })
    ));
    assert!(matches!(
        client.call(&Req::GetValue, TIMEOUT).await,
        Err(ClientError::Torn)
    ));
    let mut other = Client::connect(&daemon.path).await.unwrap();
    assert_eq!(
        other.call(&Req::Release, TIMEOUT).await.unwrap(),
        Resp::Done
    );
    daemon.stop().await;
}

#[tokio::test]
async fn connecting_to_a_missing_daemon_says_cannot_connect() {
    let dir = TempDir::new("missing");
    let path = socket_path(dir.path(), "absent");
    assert!(matches!(
        Client::connect(&path).await,
        Err(ClientError::Connect { .. })
    ));
    let blocking = call_blocking::<Req, Resp>(&path, &Req::GetValue, TIMEOUT);
    assert!(matches!(blocking, Err(ClientError::Connect { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients_each_get_their_own_answers() {
    let dir = TempDir::new("concurrent");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..64u32 {
        let path = daemon.path.clone();
        clients.spawn(async move {
            let mut client = Client::connect(&path).await.unwrap();
            for i in 0..20u32 {
                let got = client.call(&Req::Add(c, i), TIMEOUT).await.unwrap();
                assert_eq!(got, Resp::Sum(u64::from(c + i)));
            }
            c
        });
    }
    let mut done = Vec::new();
    while let Some(c) = clients.join_next().await {
        done.push(c.unwrap());
    }
    done.sort_unstable();
    assert_eq!(done, (0..64).collect::<Vec<_>>());
    daemon.stop().await;
}

#[tokio::test]
async fn subscribers_receive_every_event_in_order() {
    let dir = TempDir::new("events");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(
            Client::connect(&daemon.path)
                .await
                .unwrap()
                .subscribe(TIMEOUT)
                .await
                .unwrap(),
        );
    }
    let mut client = Client::connect(&daemon.path).await.unwrap();
    client
        .call(&Req::Publish { count: 10, size: 3 }, TIMEOUT)
        .await
        .unwrap();
    for sub in &mut subs {
        for index in 0..10 {
            let event = tokio::time::timeout(TIMEOUT, sub.next_event())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(event.seq, u64::from(index) + 1);
            assert_eq!(
                event.body,
                Ev::Note {
                    index,
                    padding: "xxx".into()
                }
            );
        }
    }
    daemon.stop().await;
}

#[tokio::test]
async fn a_lagging_subscriber_is_disconnected_while_the_daemon_keeps_serving() {
    let dir = TempDir::new("lag");
    let limits = Limits {
        write_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let daemon = Daemon::start_with(&socket_path(dir.path(), "toyd"), limits, 4).await;
    let mut slow = Client::connect(&daemon.path)
        .await
        .unwrap()
        .subscribe(TIMEOUT)
        .await
        .unwrap();
    let mut client = Client::connect(&daemon.path).await.unwrap();
    // 300 events of 64 KiB overflow both the socket buffers and the 4-event backlog, and
    // publishing them must not wait for the subscriber, which reads nothing yet.
    let published = 300;
    client
        .call(
            &Req::Publish {
                count: published,
                size: 64 * 1024,
            },
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        client.call(&Req::Add(2, 2), TIMEOUT).await.unwrap(),
        Resp::Sum(4)
    );
    let mut received = 0;
    while let Some(_event) = tokio::time::timeout(TIMEOUT, slow.next_event())
        .await
        .unwrap()
        .unwrap()
    {
        received += 1;
    }
    assert!(
        received < published,
        "the subscriber was kept despite lagging ({received} events)"
    );
    assert_eq!(
        client.call(&Req::GetValue, TIMEOUT).await.unwrap(),
        Resp::Value(0)
    );
    daemon.stop().await;
}

#[tokio::test]
async fn stopping_the_server_removes_its_socket() {
    let dir = TempDir::new("stop");
    let daemon = Daemon::start(&socket_path(dir.path(), "toyd")).await;
    let path = daemon.path.clone();
    let mut sub = Client::connect(&path)
        .await
        .unwrap()
        .subscribe(TIMEOUT)
        .await
        .unwrap();
    daemon.stop().await;
    assert!(!path.exists());
    // A subscriber sees the end of the stream rather than hanging.
    assert!(tokio::time::timeout(TIMEOUT, sub.next_event())
        .await
        .unwrap()
        .unwrap()
        .is_none());
}
