//! One WebSocket client, after the HTTP upgrade.
//!
//! tungstenite reads and checks the client's frames (masking, reserved bits and opcodes,
//! control-frame rules, UTF-8, sizes) and answers pings and closes. It writes through
//! [`Transport`], which only appends to the client's [`Outbox`]; a separate writer drains the
//! outbox onto the socket. So broadcast frames, encoded once for everyone, and this client's
//! own frames share one FIFO and never interleave mid-frame.
use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, FutureExt, StreamExt};

use super::outbox::{Out, Outbox, State, close_frame};
use super::{IncomingHandler, Limits, Notifier};

/// How long a closing client gets to take its last frames (the close frame included).
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The close code for a client whose queue overflowed: "Try Again Later".
pub const CLOSE_TOO_SLOW: u16 = 1013;

/// Runs the session until the client leaves, misbehaves or falls too far behind.
pub(crate) async fn run(
    notifier: Rc<Notifier>,
    socket: Async<TcpStream>,
    leftover: Vec<u8>,
    since: Option<u64>,
) {
    let socket = Rc::new(socket);
    let (id, outbox) = notifier.hub.subscribe(since);
    let transport = Transport { socket: socket.clone(), outbox: outbox.clone() };
    let config = websocket_config(&notifier.limits);
    let mut ws = WebSocketStream::from_partially_read(transport, leftover, Role::Server, Some(config)).await;
    let handler = notifier.incoming.borrow().clone();

    let reader = async {
        read_loop(&mut ws, &notifier.limits, &handler).await;
        outbox.drain();
        // The writer now flushes what is queued; a client that does not take it is cut off.
        Timer::after(CLOSE_GRACE).await;
    };
    write_loop(&socket, &outbox).or(reader).await;
    notifier.hub.unsubscribe(id);
    let _ = socket.get_ref().shutdown(Shutdown::Both);
}

/// tungstenite's limits for one client; its defaults (64 MiB messages, unbounded buffers) are
/// far too generous for a local notification socket.
fn websocket_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0) // the transport never blocks: hand frames over at once
        .max_write_buffer_size(limits.max_incoming_message * 2)
        .max_message_size(Some(limits.max_incoming_message))
        .max_frame_size(Some(limits.max_incoming_message))
        .accept_unmasked_frames(false)
}

async fn read_loop(ws: &mut WebSocketStream<Transport>, limits: &Limits, handler: &IncomingHandler) {
    let mut pinged_at: Option<Instant> = None;
    loop {
        let event = async { Some(ws.next().await) }
            .or(async {
                Timer::after(limits.ping_interval).await;
                None
            })
            .await;
        match event {
            // Quiet for a whole interval: ping, or give up on a client that ignored the last ping.
            None => match pinged_at {
                Some(at) if at.elapsed() >= limits.pong_timeout => {
                    log::info!(
                        "notifier: client did not answer a ping within {:?}; closing",
                        limits.pong_timeout
                    );
                    return;
                }
                Some(_) => {}
                None => {
                    let _ = ws.send(Message::Ping(Default::default())).await;
                    pinged_at = Some(Instant::now());
                }
            },
            Some(None) => return,
            Some(Some(Ok(message))) => {
                pinged_at = None;
                if let Message::Text(text) = message {
                    if let Some(reply) = handler(text.as_str().to_owned()).await {
                        let _ = ws.send(Message::text(reply)).await;
                    }
                }
            }
            Some(Some(Err(err))) => {
                if let Some((code, reason)) = close_for(&err) {
                    log::debug!("notifier: closing client with {code}: {err}");
                    let _ = ws.close(Some(CloseFrame { code, reason: reason.into() })).await;
                }
                return;
            }
        }
    }
}

/// The close code RFC 6455 asks for after each kind of client error.
fn close_for(err: &WsError) -> Option<(CloseCode, &'static str)> {
    match err {
        WsError::Protocol(_) => Some((CloseCode::Protocol, "protocol error")),
        WsError::Utf8(_) => Some((CloseCode::Invalid, "invalid UTF-8")),
        WsError::Capacity(_) => Some((CloseCode::Size, "message too big")),
        _ => None,
    }
}

/// Writes the outbox to the socket until it drains, overflows or the socket fails.
async fn write_loop(socket: &Async<TcpStream>, outbox: &Outbox) {
    while let Some(out) = outbox.pop().await {
        if !write_frame(socket, outbox, out.bytes()).await {
            return;
        }
    }
    if outbox.state() == State::Overflowed {
        let close = close_frame(CLOSE_TOO_SLOW, "client too slow");
        let _ = within(CLOSE_GRACE, async { (&*socket).write_all(&close).await }).await;
    }
}

/// Writes one frame. If the outbox overflows meanwhile, the frame is still finished (within
/// the grace period) so that the close frame starts on a frame boundary. False on failure.
async fn write_frame(socket: &Async<TcpStream>, outbox: &Outbox, frame: &[u8]) -> bool {
    let mut written = 0;
    while written < frame.len() {
        let step = async { Some((&*socket).write(&frame[written..]).await) }
            .or(async {
                outbox.overflowed().await;
                None
            })
            .await;
        match step {
            Some(Ok(0)) | Some(Err(_)) => return false,
            Some(Ok(n)) => written += n,
            None => {
                let rest = &frame[written..];
                return matches!(
                    within(CLOSE_GRACE, async { (&*socket).write_all(rest).await }).await,
                    Some(Ok(()))
                );
            }
        }
    }
    true
}

async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    async { Some(future.await) }
        .or(async {
            Timer::after(limit).await;
            None
        })
        .await
}

/// What tungstenite reads from and writes to: the socket for reading, the outbox for writing.
#[derive(Debug)]
pub(crate) struct Transport {
    /// The client's socket (shared with the writer).
    socket: Rc<Async<TcpStream>>,
    /// The client's queue; writes land here.
    outbox: Rc<Outbox>,
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // Bounded like broadcasts: a client that floods us with pings or echoes but never reads
        // overflows its queue and is closed, instead of growing it forever.
        if !self.outbox.push(Out::Owned(buf.to_vec())) && self.outbox.state() == State::Overflowed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "client queue overflowed")));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
