//! A minimal client of robind's control socket: one request line, one response line.
//!
//! ```sh
//! cargo run --example ipc_client -- $XDG_RUNTIME_DIR/robin/robind.sock status
//! ```
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(socket), Some(method)) = (args.next(), args.next()) else {
        eprintln!("usage: ipc_client SOCKET METHOD");
        std::process::exit(2);
    };
    let stream = UnixStream::connect(&socket)?;
    // The protocol: one JSON object per line; the daemon echoes `id` in its answer.
    writeln!(&stream, r#"{{"id":1,"method":"{method}","params":{{}}}}"#)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply)?;
    print!("{reply}");
    Ok(())
}
