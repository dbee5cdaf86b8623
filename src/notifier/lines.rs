//! Notifications as newline-delimited JSON, for control-socket subscribers.
//!
//! The hub keeps every message as a ready WebSocket frame; a line subscriber gets the frame's
//! payload (the JSON text) and a newline instead. It shares the hub's replay, bounds and
//! counters with WebSocket clients.
use std::os::unix::net::UnixStream;

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

use super::Limits;
use super::outbox::{Outbox, State};

/// Serves one subscriber until it closes the connection, falls too far behind, stops taking
/// bytes while behind, or the hub closes it.
pub(crate) async fn serve(outbox: &Outbox, stream: Async<UnixStream>, limits: &Limits) {
    let (write_timeout, grace) = (limits.write_timeout, limits.slow_client_grace);
    let write = async {
        while let Some(out) = outbox.pop().await {
            let Some(payload) = frame_payload(out.bytes()) else { continue };
            // Close frames (shutdown) have binary payloads: they end the stream instead.
            if out.bytes()[0] & 0x0F == 0x8 {
                return;
            }
            let mut line = Vec::with_capacity(payload.len() + 1);
            line.extend_from_slice(payload);
            line.push(b'\n');
            let started = std::time::Instant::now();
            let written = async { crate::runtime::timeout(write_timeout, (&stream).write_all(&line)).await }
                .or(async {
                    outbox.overflowed_or_stalled(started, grace).await;
                    None
                })
                .await;
            if !matches!(written, Some(Ok(()))) {
                log::debug!("ipc: a subscriber did not read within {write_timeout:?}; closing it");
                return;
            }
        }
        if outbox.state() == State::Overflowed {
            log::warn!("ipc: a subscriber is too far behind or stuck; closing it");
        }
    };
    // Anything the client sends now is ignored; its end of the stream ends the subscription.
    let read_until_eof = async {
        let mut sink = [0u8; 256];
        while matches!((&stream).read(&mut sink).await, Ok(n) if n > 0) {}
    };
    write.or(read_until_eof).await;
}

/// The payload of a complete server frame (unmasked, as the hub builds them).
pub(crate) fn frame_payload(frame: &[u8]) -> Option<&[u8]> {
    let start = match frame.get(1)? & 0x7F {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    frame.get(start..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::outbox::server_frame;

    #[test]
    fn payloads_come_out_of_every_frame_length() {
        for len in [0, 5, 125, 126, 200, 70_000] {
            let payload = vec![b'x'; len];
            assert_eq!(frame_payload(&server_frame(0x1, &payload)), Some(&payload[..]));
        }
    }
}
