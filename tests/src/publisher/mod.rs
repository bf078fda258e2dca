//! A small RTMP publisher for tests: handshake, AMF0 connect / createStream /
//! publish, metadata, then real H.264 + AAC from an FLV file, looped with rewritten
//! timestamps and paced in real time.
//!
//! `chunk` splits and reassembles RTMP chunks, `amf0` encodes commands and decodes
//! answers, `flv` reads the fixture. The publisher answers the server's window
//! acknowledgements and pings while it streams, and notices at once when the server
//! hangs up (nginx refusing a key, or cutting a broadcaster off).

pub mod amf0;
pub mod chunk;
pub mod flv;

use std::{sync::Arc, time::Duration};

use amf0::Value;
use chunk::Message;
pub use flv::Flv;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{Mutex, mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};

/// Everything that can go wrong while publishing.
#[derive(Debug, thiserror::Error)]
pub enum RtmpError {
    /// A socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused with an error status.
    #[error("refused: {code} ({description})")]
    Refused {
        /// Status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// The server's description.
        description: String,
    },
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// A bounded wait expired.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server (or a file) sent something we cannot read.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Our outgoing chunk size.
const CHUNK_SIZE: usize = 4096;
/// How long each protocol step may take.
const STEP: Duration = Duration::from_secs(10);

/// A connection that is publishing.
pub struct Publisher {
    /// Write side, shared with the reader task (acknowledgements, pongs).
    writer: Arc<Mutex<OwnedWriteHalf>>,
    /// Commands and status messages from the server; closed when it hangs up.
    replies: mpsc::Receiver<Message>,
    /// The message stream id createStream gave us.
    stream: u32,
    /// Reads the socket.
    reader: JoinHandle<RtmpError>,
}

async fn send(writer: &Mutex<OwnedWriteHalf>, message: &Message) -> Result<(), RtmpError> {
    let mut bytes = Vec::with_capacity(message.payload.len() + 32);
    chunk::write(message, CHUNK_SIZE, &mut bytes);
    writer.lock().await.write_all(&bytes).await?;
    Ok(())
}

fn command(csid: u32, stream: u32, values: &[Value]) -> Message {
    Message {
        csid,
        timestamp: 0,
        kind: 20,
        stream,
        payload: amf0::encode_all(values),
    }
}

/// Reads the socket: answers acknowledgement windows and pings, forwards commands.
/// Returns why it stopped.
async fn read_loop(
    mut read: OwnedReadHalf,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    replies: mpsc::Sender<Message>,
) -> RtmpError {
    let mut reader = chunk::Reader::new();
    let mut buf = vec![0u8; 16 * 1024];
    let (mut received, mut acked, mut window) = (0u64, 0u64, u64::MAX);
    loop {
        let n = match read.read(&mut buf).await {
            // A reset is the server hanging up too.
            Ok(0) | Err(_) => return RtmpError::Closed,
            Ok(n) => n,
        };
        received += n as u64;
        reader.feed(&buf[..n]);
        loop {
            let message = match reader.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(err) => return err,
            };
            if matches!(message.kind, 18 | 20) {
                // Commands and status messages go to the publisher.
                if replies.send(message).await.is_err() {
                    return RtmpError::Closed;
                }
                continue;
            }
            match message.kind {
                5 if message.payload.len() >= 4 => {
                    window = u64::from(u32::from_be_bytes([
                        message.payload[0],
                        message.payload[1],
                        message.payload[2],
                        message.payload[3],
                    ]));
                }
                4 if message.payload.len() >= 6 && message.payload[1] == 6 => {
                    let mut pong = vec![0, 7];
                    pong.extend_from_slice(&message.payload[2..6]);
                    let reply = Message {
                        csid: 2,
                        timestamp: 0,
                        kind: 4,
                        stream: 0,
                        payload: pong,
                    };
                    if let Err(err) = send(&writer, &reply).await {
                        return err;
                    }
                }
                _ => {}
            }
        }
        if received - acked >= window / 2 {
            acked = received;
            let ack = Message {
                csid: 2,
                timestamp: 0,
                kind: 3,
                stream: 0,
                payload: (received as u32).to_be_bytes().to_vec(),
            };
            if let Err(err) = send(&writer, &ack).await {
                return err;
            }
        }
    }
}

impl Publisher {
    /// Waits for the answer to transaction `txn` (a `_result`), or an error status.
    async fn answer(&mut self, txn: f64, what: &'static str) -> Result<Vec<Value>, RtmpError> {
        loop {
            let message = tokio::time::timeout(STEP, self.replies.recv())
                .await
                .map_err(|_| RtmpError::Timeout(what))?
                .ok_or(RtmpError::Closed)?;
            let values = amf0::decode_all(&message.payload)?;
            match values.first().and_then(Value::as_str) {
                Some("_result") if values.get(1).and_then(Value::as_number) == Some(txn) => {
                    return Ok(values);
                }
                Some("_error") => return Err(refusal(&values)),
                Some("onStatus") => {
                    let info = values.get(3).cloned().unwrap_or(Value::Null);
                    let code = info
                        .get("code")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    if code == "NetStream.Publish.Start" && txn < 0.0 {
                        return Ok(values);
                    }
                    if info.get("level").and_then(Value::as_str) == Some("error") {
                        return Err(refusal(&values));
                    }
                }
                _ => {}
            }
        }
    }

    /// Why the reader stopped, once it has: the server closed the connection, or sent
    /// what the reader cannot parse.
    async fn hang_up(&mut self) -> RtmpError {
        match tokio::time::timeout(STEP, &mut self.reader).await {
            Ok(Ok(why)) => why,
            _ => RtmpError::Closed,
        }
    }

    /// Sends metadata, then the FLV's tags paced in real time, looping the file, for
    /// `duration` of media; fails as soon as the server hangs up.
    pub async fn stream_for(&mut self, flv: &Flv, duration: Duration) -> Result<(), RtmpError> {
        let started = Instant::now();
        let loop_ms = flv.duration().as_millis() as u64;
        let mut first_loop = true;
        let mut offset = 0u64;
        loop {
            for tag in &flv.tags {
                if !first_loop && (tag.is_sequence_header() || tag.kind == 18) {
                    continue;
                }
                let at = offset + u64::from(tag.timestamp);
                if at >= duration.as_millis() as u64 {
                    return Ok(());
                }
                let due = started + Duration::from_millis(at);
                // Sleep until the tag is due, but hear the server hang up meanwhile.
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => break,
                        reply = self.replies.recv() => match reply {
                            None => return Err(self.hang_up().await),
                            Some(m) => {
                                let values = amf0::decode_all(&m.payload).unwrap_or_default();
                                let info = values.get(3).cloned().unwrap_or(Value::Null);
                                if info.get("level").and_then(Value::as_str) == Some("error") {
                                    return Err(refusal(&values));
                                }
                            }
                        },
                    }
                }
                let payload = if tag.kind == 18 {
                    let mut p = amf0::encode_all(&[Value::Str("@setDataFrame".into())]);
                    p.extend_from_slice(&tag.data);
                    p
                } else {
                    tag.data.clone()
                };
                let csid = match tag.kind {
                    8 => 4,
                    9 => 6,
                    _ => 5,
                };
                let message = Message {
                    csid,
                    timestamp: at as u32,
                    kind: tag.kind,
                    stream: self.stream,
                    payload,
                };
                send(&self.writer, &message).await.map_err(|e| match e {
                    RtmpError::Io(_) => RtmpError::Closed,
                    other => other,
                })?;
            }
            first_loop = false;
            offset += loop_ms;
        }
    }

    /// Runs [`Publisher::stream_for`] on a task; the handle stops it or awaits its end.
    pub fn spawn(mut self, flv: Flv, duration: Duration) -> PublishTask {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let result = tokio::select! {
                r = self.stream_for(&flv, duration) => r,
                _ = stop_rx => Ok(()),
            };
            self.close().await;
            result
        });
        PublishTask {
            handle: Some(handle),
            stop: Some(stop_tx),
        }
    }

    /// Ends politely: deleteStream, then closes the connection.
    pub async fn close(self) {
        let bye = command(
            3,
            0,
            &[
                Value::Str("deleteStream".into()),
                Value::Number(0.0),
                Value::Null,
                Value::Number(f64::from(self.stream)),
            ],
        );
        let _ = send(&self.writer, &bye).await;
        let _ = self.writer.lock().await.shutdown().await;
        self.reader.abort();
    }
}

fn refusal(values: &[Value]) -> RtmpError {
    let info = values.get(3).cloned().unwrap_or(Value::Null);
    RtmpError::Refused {
        code: info
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        description: info
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// A publisher running on its own task.
pub struct PublishTask {
    /// The task; `None` once awaited.
    handle: Option<JoinHandle<Result<(), RtmpError>>>,
    /// Stops it.
    stop: Option<oneshot::Sender<()>>,
}

impl PublishTask {
    /// Stops publishing (closes the connection) and waits for the task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }

    /// Waits at most `timeout` for the task to end by itself; returns its result, or
    /// `Timeout` if it is still running.
    pub async fn ended_within(&mut self, timeout: Duration) -> Result<(), RtmpError> {
        let handle = self
            .handle
            .as_mut()
            .ok_or(RtmpError::Timeout("an already finished task"))?;
        let result = tokio::time::timeout(timeout, handle)
            .await
            .map_err(|_| RtmpError::Timeout("the publisher to end"))?;
        self.handle = None;
        result.map_err(|e| RtmpError::Protocol(format!("publisher task failed: {e}")))?
    }

    /// Tells whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

/// Connects to `url` (`rtmp://host:port/app/name`), handshakes, and publishes
/// `name`; returns once the server answered `NetStream.Publish.Start`.
pub async fn publish(url: &str) -> Result<Publisher, RtmpError> {
    let rest = url
        .strip_prefix("rtmp://")
        .ok_or_else(|| RtmpError::Protocol(format!("not an rtmp:// URL: {url}")))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| RtmpError::Protocol("URL without app".into()))?;
    let (app, name) = path
        .split_once('/')
        .ok_or_else(|| RtmpError::Protocol("URL without stream name".into()))?;
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:1935")
    };
    let tcp = tokio::time::timeout(STEP, TcpStream::connect(&host))
        .await
        .map_err(|_| RtmpError::Timeout("TCP connect"))??;
    tcp.set_nodelay(true)?;
    let (mut read, mut write) = tcp.into_split();

    // Handshake: C0 C1 → S0 S1 S2 → C2 (echo of S1).
    let mut c0c1 = vec![3u8; 1537];
    c0c1[1..9].fill(0);
    write.write_all(&c0c1).await?;
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    tokio::time::timeout(STEP, read.read_exact(&mut s0s1s2))
        .await
        .map_err(|_| RtmpError::Timeout("the handshake"))?
        .map_err(|_| RtmpError::Closed)?;
    write.write_all(&s0s1s2[1..1537]).await?;

    let writer = Arc::new(Mutex::new(write));
    let (tx, replies) = mpsc::channel(64);
    let reader = tokio::spawn(read_loop(read, writer.clone(), tx));
    let mut publisher = Publisher {
        writer,
        replies,
        stream: 0,
        reader,
    };

    let size = Message {
        csid: 2,
        timestamp: 0,
        kind: 1,
        stream: 0,
        payload: (CHUNK_SIZE as u32).to_be_bytes().to_vec(),
    };
    send(&publisher.writer, &size).await?;
    let tc_url = format!("rtmp://{host}/{app}");
    let connect = command(
        3,
        0,
        &[
            Value::Str("connect".into()),
            Value::Number(1.0),
            Value::Object(vec![
                ("app".into(), Value::Str(app.into())),
                ("type".into(), Value::Str("nonprivate".into())),
                (
                    "flashVer".into(),
                    Value::Str("FMLE/3.0 (compatible; nova-test)".into()),
                ),
                ("tcUrl".into(), Value::Str(tc_url)),
            ]),
        ],
    );
    send(&publisher.writer, &connect).await?;
    publisher.answer(1.0, "the connect answer").await?;
    send(
        &publisher.writer,
        &command(
            3,
            0,
            &[
                Value::Str("createStream".into()),
                Value::Number(2.0),
                Value::Null,
            ],
        ),
    )
    .await?;
    let created = publisher.answer(2.0, "the createStream answer").await?;
    publisher.stream = created.get(3).and_then(Value::as_number).unwrap_or(1.0) as u32;
    let publish = command(
        8,
        publisher.stream,
        &[
            Value::Str("publish".into()),
            Value::Number(3.0),
            Value::Null,
            Value::Str(name.into()),
            Value::Str("live".into()),
        ],
    );
    send(&publisher.writer, &publish).await?;
    publisher.answer(-1.0, "NetStream.Publish.Start").await?;
    Ok(publisher)
}
