//! A minimal blocking telnet server around [`cli::Connection`] with the in-memory
//! [`cli::FakeBackend`]: try the CLI with a real telnet client, and see the embedding in ~60
//! lines. The control plane does the same with tokio and its real backend.
//!
//! ```text
//! cargo run -p cli --example telnet-lab -- 127.0.0.1:2323
//! telnet 127.0.0.1 2323        # admin / acm-lab, enable password acm-lab
//! ```
#![deny(unsafe_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cli::auth::{hash_password_with, Cost};
use cli::{Connection, Credentials, FakeBackend, ServerSettings, SlbConfig};

struct Shared {
    cfg: SlbConfig,
    backend: FakeBackend,
}

fn serve(mut sock: TcpStream, settings: ServerSettings, shared: Arc<Mutex<Shared>>) -> std::io::Result<()> {
    let mut conn = Connection::new(settings, Instant::now());
    sock.write_all(&conn.start(Instant::now()))?;
    let mut buf = [0u8; 4096];
    while !conn.is_closed() {
        // Wake up for the next deadline (login delay, timeouts) even without input.
        let wait =
            conn.next_deadline().map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(10)));
        sock.set_read_timeout(wait)?;
        let out = match sock.read(&mut buf) {
            Ok(0) => return Ok(()), // client went away: dropping `conn` is all there is to do
            Ok(n) => {
                let mut s = shared.lock().expect("lock");
                let Shared { cfg, backend } = &mut *s;
                conn.on_input(&buf[..n], Instant::now(), cfg, backend)
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                conn.on_timer(Instant::now())
            }
            Err(e) => return Err(e),
        };
        sock.write_all(&out)?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:2323".into());
    // Cheap hashes so the example starts instantly; the appliance uses `hash_password`.
    let h = hash_password_with("acm-lab", b"example-salt", Cost::TEST).expect("hash");
    let creds = Credentials::new([("admin".to_string(), h.clone())], Some(h)).expect("credentials");
    let settings = ServerSettings::new(creds);
    let shared = Arc::new(Mutex::new(Shared { cfg: SlbConfig::default(), backend: FakeBackend::default() }));
    let listener = TcpListener::bind(&addr)?;
    eprintln!("telnet-lab: listening on {addr} (admin / acm-lab)");
    for sock in listener.incoming() {
        let (sock, settings, shared) = (sock?, settings.clone(), shared.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve(sock, settings, shared) {
                eprintln!("telnet-lab: connection ended: {e}");
            }
        });
    }
    Ok(())
}
