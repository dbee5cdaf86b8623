//! A minimal WebSocket client of robind: prints every notification.
//!
//! ```sh
//! cargo run --example ws_client -- ws://127.0.0.1:5042/ws [SINCE]
//! ```
//! With SINCE it asks for the replay of everything after that sequence number first.
use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:5042/ws".into());
    let url = match args.next() {
        Some(since) => format!("{base}?since={since}"),
        None => base,
    };
    let host = url.trim_start_matches("ws://").split('/').next().unwrap_or("127.0.0.1:5042").to_string();
    smol::block_on(async {
        let stream = match smol::net::TcpStream::connect(host.as_str()).await {
            Ok(stream) => stream,
            Err(err) => return eprintln!("cannot connect to {host}: {err} (is robind running?)"),
        };
        let (mut client, _) = async_tungstenite::client_async(url.as_str(), stream).await.expect("handshake");
        while let Some(Ok(message)) = client.next().await {
            match message {
                // {"type": ..., "data": ..., "seq": N}: remember N to reconnect with ?since=N.
                Message::Text(text) => println!("{text}"),
                Message::Close(frame) => return println!("closed: {frame:?}"),
                _ => {}
            }
        }
    });
}
