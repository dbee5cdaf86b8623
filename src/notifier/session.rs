//! One WebSocket client, after the HTTP upgrade.
//!
//! tungstenite reads and checks the client's frames (masking, reserved bits and opcodes,
//! control-frame rules, UTF-8, sizes) and answers pings and closes. It writes through
//! [`Transport`], which only appends to the client's [`Outbox`]; a separate writer drains the
//! outbox onto the socket. So broadcast frames, encoded once for everyone, and this client's
//! own frames share one FIFO and never interleave mid-frame.
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, FutureExt, StreamExt};

use super::outbox::{Out, Outbox, State, close_frame};
use super::{IncomingHandler, Limits, Subscription};
use crate::runtime::timeout;

/// How long a closing client gets to take its last frames (the close frame included).
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The close code for a client past its queue's hard bounds, or stuck past its soft bounds:
/// "Try Again Later".
pub const CLOSE_TOO_SLOW: u16 = 1013;

/// Runs the session until the client leaves, misbehaves or falls too far behind.
pub(crate) async fn run(
    subscription: &Subscription,
    socket: Async<TcpStream>,
    leftover: Vec<u8>,
    handler: IncomingHandler,
) {
    let (notifier, outbox) = (&subscription.notifier, &subscription.outbox);
    let socket = Rc::new(socket);
    let transport = Transport { socket: socket.clone(), outbox: outbox.clone() };
    let config = websocket_config(&notifier.limits);
    let mut ws = WebSocketStream::from_partially_read(transport, leftover, Role::Server, Some(config)).await;

    let reader = async {
        read_loop(&mut ws, &notifier.limits, &handler).await;
        outbox.drain();
        // The writer now flushes what is queued; a client that does not take it is cut off.
        Timer::after(CLOSE_GRACE).await;
    };
    write_loop(&socket, outbox, &notifier.limits).or(reader).await;
    let _ = socket.get_ref().shutdown(Shutdown::Both);
}

/// tungstenite's limits for one client; its defaults (64 MiB messages, unbounded buffers) are
/// far too generous for a local notification socket.
///
/// The read buffer is small because clients rarely send anything and tungstenite zero-fills
/// the whole buffer on every read, so its size is resident memory for every idle client; it
/// grows for the occasional large message.
fn websocket_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
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

/// Most frames handed to one `writev(2)`.
const MAX_BATCH_FRAMES: usize = 128;
/// Most bytes the writer takes out of the queue at once (a larger first frame is taken
/// alone): what it holds outside the queue's bounds.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Writes the outbox to the socket until it drains, overflows or the socket fails.
///
/// Whatever is queued when the writer runs goes out in one `writev`: under load a client
/// costs one syscall per batch instead of one per message.
async fn write_loop(socket: &Async<TcpStream>, outbox: &Outbox, limits: &Limits) {
    let mut batch = Vec::with_capacity(MAX_BATCH_FRAMES);
    while let Some(first) = outbox.pop().await {
        let mut bytes = first.bytes().len();
        batch.push(first);
        while batch.len() < MAX_BATCH_FRAMES && bytes < MAX_BATCH_BYTES {
            match outbox.try_pop() {
                Some(out) => {
                    bytes += out.bytes().len();
                    batch.push(out);
                }
                None => break,
            }
        }
        let written = write_batch(socket, outbox, &batch, limits).await;
        batch.clear();
        if !written {
            return;
        }
    }
    if outbox.state() == State::Overflowed {
        let close = close_frame(CLOSE_TOO_SLOW, "client too slow");
        let _ = timeout(CLOSE_GRACE, async { (&*socket).write_all(&close).await }).await;
    }
}

/// Writes a batch of frames. If the outbox overflows meanwhile (past its hard bounds, or
/// behind and stuck for the grace period), only the frame in progress is finished (within
/// [`CLOSE_GRACE`]) so that the close frame starts on a frame boundary. False when the socket
/// failed, the client took nothing for `write_timeout`, or the batch was cut short.
async fn write_batch(socket: &Async<TcpStream>, outbox: &Outbox, batch: &[Out], limits: &Limits) -> bool {
    let (write_timeout, grace) = (limits.write_timeout, limits.slow_client_grace);
    let total: usize = batch.iter().map(|out| out.bytes().len()).sum();
    let mut written = 0;
    while written < total {
        let slices = slices_from(batch, written, total);
        // The socket nearly always has room: try it first, without the timers and clock reads
        // a blocked write needs (three `clock_gettime` per `writev` otherwise).
        match socket.get_ref().write_vectored(&slices) {
            Ok(0) => return false,
            Ok(n) => {
                written += n;
                continue;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        // Full. The grace counts from here: the client took bytes just now, or it took the whole
        // previous batch and the writer found this one queued.
        let progress = Instant::now();
        let step = async { Some(timeout(write_timeout, (&*socket).write_vectored(&slices)).await) }
            .or(async {
                outbox.overflowed_or_stalled(progress, grace).await;
                None
            })
            .await;
        match step {
            Some(None) => {
                log::info!("notifier: a client took nothing for {write_timeout:?}; closing it");
                return false;
            }
            Some(Some(Ok(0))) | Some(Some(Err(_))) => return false,
            Some(Some(Ok(n))) => written += n,
            None => {
                let boundary = frame_boundary_at_or_after(batch, written);
                return timeout(CLOSE_GRACE, write_range(socket, batch, written, boundary)).await
                    == Some(true);
            }
        }
    }
    true
}

/// Writes bytes `from..to` of the concatenated batch.
async fn write_range(socket: &Async<TcpStream>, batch: &[Out], mut from: usize, to: usize) -> bool {
    while from < to {
        match (&*socket).write_vectored(&slices_from(batch, from, to)).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => from += n,
        }
    }
    true
}

/// `IoSlice`s over bytes `from..to` of the batch, as if its frames were one buffer.
fn slices_from(batch: &[Out], from: usize, to: usize) -> Vec<IoSlice<'_>> {
    let mut slices = Vec::with_capacity(batch.len());
    let mut offset = 0;
    for out in batch {
        let bytes = out.bytes();
        let (start, end) = (offset, offset + bytes.len());
        offset = end;
        if end <= from || start >= to {
            continue;
        }
        slices.push(IoSlice::new(&bytes[from.max(start) - start..to.min(end) - start]));
    }
    slices
}

/// The end of the frame that contains byte `position` (or `position` if a frame ends there).
fn frame_boundary_at_or_after(batch: &[Out], position: usize) -> usize {
    let mut end = 0;
    for out in batch {
        if end >= position {
            return end;
        }
        end += out.bytes().len();
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Vec<Out> {
        vec![Out::Owned(b"abc".to_vec()), Out::Owned(b"de".to_vec()), Out::Owned(b"fgh".to_vec())]
    }

    #[test]
    fn slices_cover_exactly_the_requested_range() {
        let batch = batch();
        let flat =
            |from, to| slices_from(&batch, from, to).iter().flat_map(|s| s.to_vec()).collect::<Vec<u8>>();
        assert_eq!(flat(0, 8), b"abcdefgh");
        assert_eq!(flat(2, 8), b"cdefgh");
        assert_eq!(flat(3, 5), b"de");
        assert_eq!(flat(4, 7), b"efg");
        assert!(flat(8, 8).is_empty());
    }

    #[test]
    fn frame_boundaries() {
        let batch = batch();
        assert_eq!(frame_boundary_at_or_after(&batch, 0), 0);
        assert_eq!(frame_boundary_at_or_after(&batch, 1), 3);
        assert_eq!(frame_boundary_at_or_after(&batch, 3), 3);
        assert_eq!(frame_boundary_at_or_after(&batch, 4), 5);
        assert_eq!(frame_boundary_at_or_after(&batch, 7), 8);
    }
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
    /// Reads only once the reactor has reported the socket readable. The reader shares its task
    /// with the writer, so it is polled each time a broadcast wakes the writer; reading first,
    /// as `Async::poll_read` does, would cost a `recvfrom` that fails with `EAGAIN` per batch
    /// per client (as many as the `writev`s, measured with `strace -c`). The readiness
    /// registration is one-shot and reports a socket that is readable when it is re-armed, so
    /// no data is missed.
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.socket.poll_readable(cx))?;
            match self.socket.get_ref().read(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // Bounded like broadcasts: a client that floods us with pings or echoes but never reads
        // overflows its queue and is closed, instead of growing it forever.
        if !self.outbox.push_own(buf.to_vec()) && self.outbox.state() == State::Overflowed {
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
