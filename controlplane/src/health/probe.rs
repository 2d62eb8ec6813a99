//! The probes: L2 (ARP resolves), L3 (ICMP echo), L4 (TCP connect), L7 (HTTP request).
//! Each returns a [`Verdict`] within its timeout and never panics.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use acm::RealServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fsm::Verdict;

/// Which check, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Probe {
    /// No probing: bindings are taken as healthy (reports still take them out).
    None,
    /// L2: the real server's address resolves with ARP.
    Arp,
    /// L3: the real server answers an ICMP echo.
    Icmp,
    /// L4: a TCP connection to the real port opens.
    Tcp,
    /// L7: an HTTP GET answers with an accepted status.
    Http(HttpCheck),
}

/// The L7 check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpCheck {
    /// Request path (`/`).
    pub path: String,
    /// Host header (default: the real server's address).
    pub host: Option<String>,
    /// Accepted status codes, as inclusive ranges (default 200–399).
    pub accept: Vec<(u16, u16)>,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck { path: "/".into(), host: None, accept: vec![(200, 399)] }
    }
}

impl HttpCheck {
    /// Is `status` accepted?
    pub fn accepts(&self, status: u16) -> bool {
        self.accept.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// Parses accepted statuses: `"200"`, `"200-399"`.
pub fn parse_status_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let p = |x: &str| x.trim().parse::<u16>().ok().filter(|v| (100..=599).contains(v));
    match (p(lo), p(hi)) {
        (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
        _ => Err(format!("{s:?}: want a status (100-599) or a range like 200-399")),
    }
}

impl Probe {
    /// Runs the probe against `real` within `timeout`, out of interface `iface` if given.
    pub async fn run(&self, real: RealServer, timeout: Duration, iface: Option<&str>) -> Verdict {
        let owned = iface.map(str::to_string);
        let r = match self {
            Probe::None => return Verdict::Pass,
            Probe::Arp => {
                let ip = real.rip;
                tokio::task::spawn_blocking(move || arp(ip, timeout))
                    .await
                    .unwrap_or_else(|e| Verdict::Soft(e.to_string()))
            }
            Probe::Icmp => {
                let ip = real.rip;
                tokio::task::spawn_blocking(move || icmp_echo(ip, timeout, owned.as_deref()))
                    .await
                    .unwrap_or_else(|e| Verdict::Soft(e.to_string()))
            }
            Probe::Tcp => match tokio::time::timeout(timeout, connect(real, iface)).await {
                Ok(Ok(_)) => Verdict::Pass,
                Ok(Err(v)) => v,
                Err(_) => Verdict::Soft(format!("TCP connect timed out after {timeout:?}")),
            },
            Probe::Http(h) => match tokio::time::timeout(timeout, http(real, h, iface)).await {
                Ok(v) => v,
                Err(_) => Verdict::Soft(format!("HTTP check timed out after {timeout:?}")),
            },
        };
        r
    }
}

fn connect_error(e: &std::io::Error) -> Verdict {
    match e.kind() {
        ErrorKind::ConnectionRefused | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            Verdict::Hard(format!("connect: {e}"))
        }
        _ => Verdict::Soft(format!("connect: {e}")),
    }
}

async fn connect(real: RealServer, iface: Option<&str>) -> Result<TcpStream, Verdict> {
    let s = tokio::net::TcpSocket::new_v4().map_err(|e| Verdict::Soft(format!("socket: {e}")))?;
    if let Some(i) = iface {
        s.bind_device(Some(i.as_bytes())).map_err(|e| Verdict::Soft(format!("interface {i}: {e}")))?;
    }
    s.connect(SocketAddrV4::new(real.rip, real.rport).into()).await.map_err(|e| connect_error(&e))
}

async fn http(real: RealServer, h: &HttpCheck, iface: Option<&str>) -> Verdict {
    let mut s = match connect(real, iface).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let host = h.host.clone().unwrap_or_else(|| real.rip.to_string());
    let req = format!("GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: acm-health\r\nConnection: close\r\n\r\n", h.path);
    if let Err(e) = s.write_all(req.as_bytes()).await {
        return Verdict::Soft(format!("HTTP write: {e}"));
    }
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 1024 {
        match s.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Verdict::Hard(format!("HTTP read: {e}")),
            Err(e) => return Verdict::Soft(format!("HTTP read: {e}")),
        }
    }
    match parse_status_line(&buf) {
        Some(code) if h.accepts(code) => Verdict::Pass,
        Some(code) => Verdict::Soft(format!("HTTP status {code}")),
        None => {
            Verdict::Soft(format!("no HTTP status line in {:?}", String::from_utf8_lossy(&buf[..buf.len().min(40)])))
        }
    }
}

/// The status code of `HTTP/1.x NNN ...`.
pub fn parse_status_line(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

/// L2: poke the address (one UDP datagram to the discard port makes the kernel resolve it),
/// then wait for a complete ARP entry in /proc/net/arp.
fn arp(ip: Ipv4Addr, timeout: Duration) -> Verdict {
    let end = Instant::now() + timeout;
    if let Ok(s) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) {
        let _ = s.send_to(b"", (ip, 9));
    }
    loop {
        if let Ok(text) = std::fs::read_to_string("/proc/net/arp") {
            if arp_complete(&text, ip) {
                return Verdict::Pass;
            }
        }
        if Instant::now() >= end {
            return Verdict::Soft(format!("{ip} does not resolve (ARP)"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether /proc/net/arp lists `ip` as complete (flag ATF_COM 0x2).
pub fn arp_complete(text: &str, ip: Ipv4Addr) -> bool {
    let want = ip.to_string();
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 4
            && f[0] == want
            && u32::from_str_radix(f[2].trim_start_matches("0x"), 16).is_ok_and(|fl| fl & 0x2 != 0)
            && f[3] != "00:00:00:00:00:00"
    })
}

fn icmp_checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP echo request with this id and sequence number.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"acm-health-check");
    let c = icmp_checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// Is `pkt` (ICMP, or IPv4 + ICMP from a raw socket) an echo reply to `seq`?
pub fn is_echo_reply(pkt: &[u8], seq: u16, raw: bool) -> bool {
    let icmp = if raw {
        let ihl = usize::from(pkt.first().map_or(0, |b| b & 0x0f)) * 4;
        pkt.get(ihl..).unwrap_or(&[])
    } else {
        pkt
    };
    icmp.len() >= 8 && icmp[0] == 0 && icmp[6..8] == seq.to_be_bytes()
}

/// L3: one ICMP echo, through an unprivileged ping socket or, failing that, a raw socket.
fn icmp_echo(ip: Ipv4Addr, timeout: Duration, iface: Option<&str>) -> Verdict {
    use socket2::{Domain, Protocol, Socket, Type};
    let (sock, raw) = match Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)) {
        Ok(s) => (s, false),
        Err(_) => match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
            Ok(s) => (s, true),
            Err(e) => return Verdict::Soft(format!("no ICMP socket: {e}")),
        },
    };
    if let Some(i) = iface {
        if let Err(e) = sock.bind_device(Some(i.as_bytes())) {
            return Verdict::Soft(format!("interface {i}: {e}"));
        }
    }
    let sock: UdpSocket = sock.into();
    let seq = (crate::client::random_u64() & 0xffff) as u16;
    let id = (std::process::id() & 0xffff) as u16;
    if let Err(e) = sock.send_to(&echo_request(id, seq), (ip, 0)) {
        return connect_error(&e);
    }
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return Verdict::Soft(format!("no ICMP echo reply from {ip} in {timeout:?}"));
        }
        match sock.recv_from(&mut buf) {
            Ok((n, std::net::SocketAddr::V4(from))) if *from.ip() == ip && is_echo_reply(&buf[..n], seq, raw) => {
                return Verdict::Pass
            }
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return connect_error(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\nServer: x\r\n"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 20"), None);
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b""), None);
        assert_eq!(parse_status_line(&[0xff, 0xfe]), None);
    }

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status_range("200-399"), Ok((200, 399)));
        assert_eq!(parse_status_range("204"), Ok((204, 204)));
        assert!(parse_status_range("399-200").is_err());
        assert!(parse_status_range("abc").is_err());
        let h = HttpCheck { accept: vec![(200, 204), (301, 301)], ..HttpCheck::default() };
        assert!(h.accepts(204) && h.accepts(301) && !h.accepts(302) && !h.accepts(500));
    }

    #[test]
    fn arp_table() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
                    10.0.1.11        0x1         0x2         02:aa:bb:cc:dd:01     *        t1\n\
                    10.0.1.12        0x1         0x0         00:00:00:00:00:00     *        t1\n";
        assert!(arp_complete(text, "10.0.1.11".parse().unwrap()));
        assert!(!arp_complete(text, "10.0.1.12".parse().unwrap()));
        assert!(!arp_complete(text, "10.0.1.13".parse().unwrap()));
    }

    #[test]
    fn echo_packets() {
        let p = echo_request(0x1234, 7);
        assert_eq!(icmp_checksum(&p), 0, "checksum over a packet with its checksum is zero");
        let mut reply = p.clone();
        reply[0] = 0;
        assert!(is_echo_reply(&reply, 7, false));
        assert!(!is_echo_reply(&reply, 8, false));
        assert!(!is_echo_reply(&p, 7, false), "a request is not a reply");
        let mut ip = vec![0x45; 1];
        ip.extend_from_slice(&[0; 19]);
        ip.extend_from_slice(&reply);
        assert!(is_echo_reply(&ip, 7, true));
        assert!(!is_echo_reply(&[0x4f], 7, true));
    }

    #[tokio::test]
    async fn tcp_and_http_against_local_sockets() {
        let t = Duration::from_secs(2);
        // Nothing listening: refused is a hard failure.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let real = RealServer { rip: Ipv4Addr::LOCALHOST, rport: port };
        assert!(matches!(Probe::Tcp.run(real, t, None).await, Verdict::Hard(_)));
        assert!(matches!(Probe::Http(HttpCheck::default()).run(real, t, None).await, Verdict::Hard(_)));
        // A tiny HTTP server answering 200 then 503.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let real = RealServer { rip: Ipv4Addr::LOCALHOST, rport: l.local_addr().unwrap().port() };
        tokio::spawn(async move {
            for status in ["200 OK", "503 Busy", "200 OK"] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut req = [0u8; 512];
                let _ = s.read(&mut req).await;
                let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let h = Probe::Http(HttpCheck::default());
        assert_eq!(h.run(real, t, None).await, Verdict::Pass);
        assert_eq!(h.run(real, t, None).await, Verdict::Soft("HTTP status 503".into()));
        assert_eq!(Probe::Tcp.run(real, t, None).await, Verdict::Pass);
        assert_eq!(Probe::None.run(real, t, None).await, Verdict::Pass);
    }
}
