//! RFC 6455 conformance of `/ws`, as raw-socket tests against the real daemon: the cases of
//! the Autobahn suite that apply to a server (Autobahn itself needs Python 2).
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::{Daemon, Sandbox};

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

struct Raw {
    stream: TcpStream,
    _daemon: Daemon,
    _sandbox: Sandbox,
}

impl Raw {
    fn connect() -> Raw {
        let sandbox = Sandbox::new();
        let daemon = Daemon::start(sandbox.command());
        let (stream, head) = support::raw_websocket(daemon.http_addr());
        // RFC 6455's own example key and accept value.
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{head}");
        Raw { stream, _daemon: daemon, _sandbox: sandbox }
    }

    /// Sends one frame. `masked` is what every client must do; tests turn it off on purpose.
    fn send(&mut self, fin: bool, rsv: u8, opcode: u8, payload: &[u8], masked: bool) {
        let mut frame = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => frame.push(mask_bit | n as u8),
            n @ 126..=0xFFFF => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(mask_bit | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        self.stream.write_all(&frame).unwrap();
    }

    fn send_text(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.send(fin, 0, opcode, payload, true);
    }

    /// Reads one server frame: (fin, opcode, payload). Server frames must be unmasked.
    fn read(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).ok()?;
        assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
        assert_eq!(head[0] & 0x70, 0, "server frames have no reserved bits");
        let len = match head[1] & 0x7F {
            126 => {
                let mut ext = [0u8; 2];
                self.stream.read_exact(&mut ext).ok()?;
                u16::from_be_bytes(ext) as usize
            }
            127 => {
                let mut ext = [0u8; 8];
                self.stream.read_exact(&mut ext).ok()?;
                u64::from_be_bytes(ext) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).ok()?;
        Some((head[0] & 0x80 != 0, head[0] & 0x0F, payload))
    }

    /// Reads until a close frame and returns its code; then the server must end the TCP stream.
    fn expect_close(&mut self) -> u16 {
        loop {
            let (_, opcode, payload) = self.read().expect("a close frame before EOF");
            if opcode == CLOSE {
                let code =
                    if payload.len() >= 2 { u16::from_be_bytes([payload[0], payload[1]]) } else { 1005 };
                let rest = support::read_until_closed(&mut self.stream, std::time::Duration::from_secs(3));
                assert!(rest.is_empty(), "nothing after the close frame");
                return code;
            }
        }
    }
}

#[test]
fn unmasked_client_frame_is_a_protocol_error() {
    let mut ws = Raw::connect();
    ws.send(true, 0, TEXT, b"hello", false);
    assert_eq!(ws.expect_close(), 1002);
}

#[test]
fn reserved_bits_are_a_protocol_error() {
    for rsv in [0b100, 0b010, 0b001] {
        let mut ws = Raw::connect();
        ws.send(true, rsv, TEXT, b"hello", true);
        assert_eq!(ws.expect_close(), 1002, "rsv {rsv:03b}");
    }
}

#[test]
fn reserved_opcodes_are_a_protocol_error() {
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        let mut ws = Raw::connect();
        ws.send_text(true, opcode, b"x");
        assert_eq!(ws.expect_close(), 1002, "opcode {opcode:#x}");
    }
}

#[test]
fn fragmented_control_frame_is_a_protocol_error() {
    let mut ws = Raw::connect();
    ws.send_text(false, PING, b"part");
    assert_eq!(ws.expect_close(), 1002);
}

#[test]
fn oversized_control_frame_is_a_protocol_error() {
    let mut ws = Raw::connect();
    ws.send_text(true, PING, &[b'p'; 126]);
    assert_eq!(ws.expect_close(), 1002);
}

#[test]
fn invalid_utf8_text_closes_with_1007() {
    let mut ws = Raw::connect();
    ws.send_text(true, TEXT, &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xff, 0xfe]);
    assert_eq!(ws.expect_close(), 1007);
}

#[test]
fn invalid_utf8_in_fragmented_text_closes_with_1007() {
    let mut ws = Raw::connect();
    ws.send_text(false, TEXT, b"ok so far ");
    ws.send_text(true, CONTINUATION, &[0xed, 0xa0, 0x80]); // a UTF-16 surrogate: not UTF-8
    assert_eq!(ws.expect_close(), 1007);
}

#[test]
fn invalid_utf8_in_close_reason_closes_with_1007() {
    let mut ws = Raw::connect();
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0xff, 0xfe]);
    ws.send_text(true, CLOSE, &payload);
    assert_eq!(ws.expect_close(), 1007);
}

#[test]
fn invalid_close_codes_are_answered_with_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut ws = Raw::connect();
        ws.send_text(true, CLOSE, &code.to_be_bytes());
        assert_eq!(ws.expect_close(), 1002, "close code {code}");
    }
}

#[test]
fn one_byte_close_payload_is_a_protocol_error() {
    let mut ws = Raw::connect();
    ws.send_text(true, CLOSE, &[0x03]);
    assert_eq!(ws.expect_close(), 1002);
}

#[test]
fn valid_close_codes_are_echoed_in_the_close_handshake() {
    for code in [1000u16, 1001, 1003, 1007, 1011, 3000, 4999] {
        let mut ws = Raw::connect();
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        ws.send_text(true, CLOSE, &payload);
        assert_eq!(ws.expect_close(), code, "close code {code}");
    }
}

#[test]
fn empty_close_is_answered_and_the_connection_ends() {
    let mut ws = Raw::connect();
    ws.send_text(true, CLOSE, b"");
    let (_, opcode, payload) = ws.read().unwrap();
    assert_eq!(opcode, CLOSE);
    assert!(payload.is_empty() || payload[..2] == 1000u16.to_be_bytes());
    let rest = support::read_until_closed(&mut ws.stream, std::time::Duration::from_secs(3));
    assert!(rest.is_empty(), "nothing after the close frame, then the end of the stream");
}

#[test]
fn fragmented_message_is_reassembled() {
    let mut ws = Raw::connect();
    ws.send_text(false, TEXT, b"Hel");
    ws.send_text(false, CONTINUATION, b"lo ");
    ws.send_text(true, CONTINUATION, b"robin");
    assert_eq!(ws.read().unwrap(), (true, TEXT, b"Hello robin".to_vec()));
}

#[test]
fn ping_between_fragments_is_answered_and_the_message_completes() {
    let mut ws = Raw::connect();
    ws.send_text(false, TEXT, b"frag");
    ws.send_text(true, PING, b"are you there");
    ws.send_text(true, CONTINUATION, b"ments");
    assert_eq!(ws.read().unwrap(), (true, PONG, b"are you there".to_vec()));
    assert_eq!(ws.read().unwrap(), (true, TEXT, b"fragments".to_vec()));
}

#[test]
fn continuation_without_a_start_is_a_protocol_error() {
    let mut ws = Raw::connect();
    ws.send_text(true, CONTINUATION, b"orphan");
    assert_eq!(ws.expect_close(), 1002);
}

#[test]
fn new_message_inside_a_fragmented_one_is_a_protocol_error() {
    let mut ws = Raw::connect();
    ws.send_text(false, TEXT, b"first");
    ws.send_text(true, TEXT, b"second");
    assert_eq!(ws.expect_close(), 1002);
}

#[test]
fn ping_gets_a_pong_with_the_same_payload() {
    let mut ws = Raw::connect();
    ws.send_text(true, PING, &[0xff, 0x00, 0x7f]);
    assert_eq!(ws.read().unwrap(), (true, PONG, vec![0xff, 0x00, 0x7f]));
}

#[test]
fn unsolicited_pong_is_ignored() {
    let mut ws = Raw::connect();
    ws.send_text(true, PONG, b"unasked");
    ws.send_text(true, TEXT, b"still here");
    assert_eq!(ws.read().unwrap(), (true, TEXT, b"still here".to_vec()));
}

#[test]
fn large_message_up_to_the_limit_is_accepted() {
    let mut ws = Raw::connect();
    let payload = vec![b'a'; 60 * 1024];
    ws.send_text(true, TEXT, &payload);
    assert_eq!(ws.read().unwrap(), (true, TEXT, payload));
}

#[test]
fn message_over_the_limit_closes_with_1009() {
    let mut ws = Raw::connect();
    ws.send_text(false, TEXT, &vec![b'a'; 40 * 1024]);
    ws.send_text(true, CONTINUATION, &vec![b'a'; 40 * 1024]);
    assert_eq!(ws.expect_close(), 1009);
}
