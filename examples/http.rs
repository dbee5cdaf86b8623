//! The outbound client: timeouts, retries and a bounded join_all, against a server on loopback
//! that this example starts (it answers 503 once, then 200).
//!
//! ```sh
//! cargo run --example http
//! ```
use std::io::{Read, Write};
use std::time::Duration;

use robin::outbound::{Client, Settings, join_all_bounded};
use robin::runtime::Spawner;
use serde_json::Value;

fn main() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().map_while(Result::ok).enumerate() {
            let mut stream = stream;
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let reply: &[u8] = if n == 0 {
                b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}"
            };
            let _ = stream.write_all(reply);
        }
    });

    let ex = Spawner::new();
    let client = Client::new(Settings { timeout: Duration::from_secs(5), ..Settings::default() });
    ex.block_on(async {
        // Retried after the 503, honouring Retry-After.
        let first: Value = client.get_json(&url).await.expect("retried to success");
        println!("first: {first}");
        // Ten requests, at most three at once, results in order.
        let all = join_all_bounded((0..10).map(|_| client.get_json::<Value>(&url)), 3).await;
        println!("{} of 10 succeeded", all.iter().filter(|r| r.is_ok()).count());
    });
}
