//! A small async QMP client: one JSON object per line over a unix socket.
//!
//! ```text
//!   connect ──> greeting {"QMP": {...}} ──> qmp_capabilities ──> {"return": {}}
//!   execute: {"execute": CMD, "arguments": {...}, "id": N}
//!            <── events {"event": ...} (logged, skipped)
//!            <── {"return": ..., "id": N} | {"error": {"class", "desc"}, "id": N}
//! ```
//!
//! Every read is bounded in time and size, so a wedged or hostile QEMU cannot hang or
//! bloat the daemon.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tracing::debug;

/// Longest QMP line we accept (query-migrate and query-status are far smaller).
const MAX_LINE: usize = 1 << 20;

/// Why a QMP conversation failed.
#[derive(Debug)]
pub enum QmpError {
    /// The socket could not be connected (QEMU gone, or another client holds it).
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading or writing failed.
    Io(io::Error),
    /// QEMU did not answer in time.
    Timeout {
        /// What we waited for.
        waiting_for: String,
        /// How long, in ms.
        after_ms: u64,
    },
    /// QEMU closed the connection (it exited).
    Closed,
    /// QEMU sent something that is not QMP.
    Protocol(String),
    /// QEMU refused the command.
    Command {
        /// The command.
        command: String,
        /// QMP's error class (`GenericError`, `CommandNotFound`...).
        class: String,
        /// QEMU's message.
        desc: String,
    },
}

impl fmt::Display for QmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QmpError::Connect { path, source } => {
                write!(f, "cannot connect to {}: {source}", path.display())
            }
            QmpError::Io(e) => write!(f, "i/o error: {e}"),
            QmpError::Timeout {
                waiting_for,
                after_ms,
            } => write!(f, "no answer to {waiting_for} within {after_ms} ms"),
            QmpError::Closed => write!(f, "qemu closed the connection"),
            QmpError::Protocol(what) => write!(f, "not a qmp message: {what}"),
            QmpError::Command {
                command,
                class,
                desc,
            } => write!(f, "{command} failed: {desc} ({class})"),
        }
    }
}

impl std::error::Error for QmpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QmpError::Connect { source, .. } | QmpError::Io(source) => Some(source),
            _ => None,
        }
    }
}

/// A connected QMP session in command mode.
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    timeout: Duration,
    line: Vec<u8>,
}

impl Qmp {
    /// Connects, reads the greeting and negotiates capabilities. `timeout` bounds the
    /// connection and every later answer.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| QmpError::Timeout {
                waiting_for: format!("connect to {}", path.display()),
                after_ms: millis(timeout),
            })?
            .map_err(|source| QmpError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let (r, w) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            timeout,
            line: Vec::new(),
        };
        let greeting = qmp.read_message("the greeting").await?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!(
                "greeting without QMP: {greeting}"
            )));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// Runs a command and returns its `return` value.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await.map_err(map_io)?;
        loop {
            let reply = self.read_message(command).await?;
            if let Some(event) = reply.get("event") {
                debug!(%command, %event, "qmp event");
                continue;
            }
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                debug!(%command, %reply, "qmp reply for another command skipped");
                continue;
            }
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                return Err(QmpError::Command {
                    command: command.to_string(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            return Err(QmpError::Protocol(format!(
                "reply without return or error: {reply}"
            )));
        }
    }

    async fn read_message(&mut self, waiting_for: &str) -> Result<Value, QmpError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.read_line())
            .await
            .map_err(|_| QmpError::Timeout {
                waiting_for: waiting_for.to_string(),
                after_ms: millis(timeout),
            })??;
        let value: Value = serde_json::from_slice(&self.line).map_err(|e| {
            QmpError::Protocol(format!("{e} in {:?}", String::from_utf8_lossy(&self.line)))
        })?;
        if !value.is_object() {
            return Err(QmpError::Protocol(format!("not an object: {value}")));
        }
        Ok(value)
    }

    /// Reads one line into `self.line`, at most [`MAX_LINE`] bytes.
    async fn read_line(&mut self) -> Result<(), QmpError> {
        self.line.clear();
        loop {
            let buf = self.reader.fill_buf().await.map_err(map_io)?;
            if buf.is_empty() {
                return Err(QmpError::Closed);
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            self.line.extend_from_slice(&buf[..take]);
            self.reader.consume(take);
            if self.line.len() > MAX_LINE {
                return Err(QmpError::Protocol(format!(
                    "line longer than {MAX_LINE} bytes"
                )));
            }
            if done {
                return Ok(());
            }
        }
    }
}

fn map_io(e: io::Error) -> QmpError {
    match e.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => QmpError::Closed,
        _ => QmpError::Io(e),
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    fn sock(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("qmp-{tag}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    /// A fake QEMU: sends `script` lines, answering each request line with the next one.
    async fn fake(listener: UnixListener, greeting: &str, replies: Vec<String>) {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(greeting.as_bytes()).await.unwrap();
        let mut buf = [0u8; 4096];
        for reply in replies {
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(reply.as_bytes()).await.unwrap();
        }
        let _ = s.read(&mut buf).await;
    }

    #[tokio::test]
    async fn events_are_skipped_and_errors_carry_class_and_desc() {
        let path = sock("events");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(fake(
            listener,
            "{\"QMP\": {\"version\": {}}}\r\n",
            vec![
                "{\"return\": {}, \"id\": 1}\r\n".into(),
                "{\"event\": \"STOP\"}\r\n{\"return\": {\"status\": \"paused\"}, \"id\": 2}\r\n"
                    .into(),
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, \"id\": 3}\n"
                    .into(),
            ],
        ));
        let mut q = Qmp::connect(&path, Duration::from_secs(10)).await.unwrap();
        let st = q.execute("query-status", None).await.unwrap();
        assert_eq!(st["status"], "paused");
        let e = q
            .execute("migrate", Some(json!({"uri": "x"})))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "migrate failed: nope (GenericError)");
        drop(q);
        server.await.unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_peer_that_is_not_qmp_is_a_protocol_error() {
        let path = sock("notqmp");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(fake(listener, "hello there\n", vec![]));
        let e = Qmp::connect(&path, Duration::from_secs(10))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, QmpError::Protocol(_)), "{e}");
        server.await.unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let path = sock("silent");
        let listener = UnixListener::bind(&path).unwrap();
        let e = Qmp::connect(&path, Duration::from_millis(200))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, QmpError::Timeout { .. }), "{e}");
        drop(listener);
        let _ = std::fs::remove_file(&path);
    }
}
