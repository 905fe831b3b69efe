//! A network partition between one process and a server, for tests: a TCP proxy the process
//! connects through, which can be cut (bytes stop flowing both ways; connections stay open
//! and silent, as when packets are dropped on the way, not refused) and healed (they flow
//! again, as TCP's retransmissions would deliver them).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct CutProxy {
    addr: String,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    /// A proxy on a free loopback port to `target` (`HOST:PORT`).
    pub fn start(target: &str) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (target, cut2, stop2) = (target.to_owned(), cut.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (cut, stop) = (cut2.clone(), stop2.clone());
                    std::thread::spawn(move || pump(from, to, &cut, &stop));
                }
            }
        });
        CutProxy { addr, cut, stop }
    }

    /// `HOST:PORT` to connect to instead of the target.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool, stop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // While cut nothing is read (so nothing is acknowledged beyond the socket buffers)
        // and nothing is delivered.
        while cut.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                while cut.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
