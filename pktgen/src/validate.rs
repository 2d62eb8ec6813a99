//! Receive-side validation: is this frame exactly what the device under test should have
//! made of a packet we sent?
//!
//! * **Forward** (client → real server, received on the server side): parses (the parser
//!   checks the IPv4 header checksum), the transport checksum is verified over the whole
//!   segment, the source is one of our client endpoints, and the destination is a real
//!   server bound to the VIP ([`Expect::Nat`]) or still the VIP ([`Expect::Io`], for a
//!   forwarder that rewrites nothing, such as `dpdk-testpmd` in io mode). With
//!   [`Expect::Nat`] the TTL must have been decremented once.
//! * **Reverse** (real server → client, received on the client side): same checks, with the
//!   source back to VIP:vport and the destination one of our client endpoints.

use std::net::Ipv4Addr;

use dataplane::wire::checksum::{pseudo_header_v4, verify};
use dataplane::wire::{parse, Parsed, TcpFlags, L3, L4};

use crate::flows::FlowSpace;
use crate::packet::{read_ts, L4Proto};

/// What the device under test is expected to do to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Destination NAT to a bound real server and back (the dataplane).
    Nat,
    /// Nothing rewritten (an io forwarder: the reference).
    Io,
}

/// Why a received frame failed validation. Each is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
    /// The parser refused it (truncated, bad IPv4 header or header checksum, ...).
    Malformed,
    /// Not the transport protocol we send.
    WrongProtocol,
    /// The TCP/UDP checksum does not verify.
    BadL4Checksum,
    /// The client endpoint is not one of ours.
    UnknownClient,
    /// Forward: the destination is not a real server of the VIP (or, for io, not the VIP).
    WrongDestination,
    /// Reverse: the source is not VIP:vport.
    WrongSource,
    /// The TTL is not what one hop makes of ours.
    WrongTtl,
    /// No timestamp where the payload should hold one.
    NoTimestamp,
}

impl Invalid {
    /// Every reason, in counter order.
    pub const ALL: [Invalid; 8] = [
        Invalid::Malformed,
        Invalid::WrongProtocol,
        Invalid::BadL4Checksum,
        Invalid::UnknownClient,
        Invalid::WrongDestination,
        Invalid::WrongSource,
        Invalid::WrongTtl,
        Invalid::NoTimestamp,
    ];

    /// Counter index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Invalid::Malformed => "malformed",
            Invalid::WrongProtocol => "wrong_protocol",
            Invalid::BadL4Checksum => "bad_l4_checksum",
            Invalid::UnknownClient => "unknown_client",
            Invalid::WrongDestination => "wrong_destination",
            Invalid::WrongSource => "wrong_source",
            Invalid::WrongTtl => "wrong_ttl",
            Invalid::NoTimestamp => "no_timestamp",
        }
    }
}

/// The real servers bound to the VIP: address and port → dense index.
#[derive(Debug, Clone, Default)]
pub struct Servers {
    list: Vec<(Ipv4Addr, u16)>,
    index: hashbrown::HashMap<u64, u16, ahash::RandomState>,
}

impl Servers {
    /// From a list (duplicates ignored; at most 65535).
    pub fn new(list: &[(Ipv4Addr, u16)]) -> Servers {
        let mut s = Servers::default();
        for &(ip, port) in list.iter().take(usize::from(u16::MAX)) {
            let k = key(u32::from(ip), port);
            if !s.index.contains_key(&k) {
                s.index.insert(k, s.list.len() as u16);
                s.list.push((ip, port));
            }
        }
        s
    }

    /// The index of a server.
    #[inline]
    pub fn get(&self, ip: u32, port: u16) -> Option<u16> {
        self.index.get(&key(ip, port)).copied()
    }

    /// The servers in index order.
    pub fn list(&self) -> &[(Ipv4Addr, u16)] {
        &self.list
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[inline]
fn key(ip: u32, port: u16) -> u64 {
    u64::from(ip) << 16 | u64::from(port)
}

/// Which of the run's flow spaces a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// The long-lived flows.
    Established,
    /// The new-connection endpoints.
    New,
}

/// A valid received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rx {
    /// Which flow space.
    pub space: Space,
    /// Flow index in it.
    pub flow: u32,
    /// Real-server index (forward with [`Expect::Nat`]), else `u16::MAX`.
    pub server: u16,
    /// Sequence number we sent.
    pub seq: u32,
    /// Timestamp we sent (48 bits).
    pub ts: u64,
    /// An opening packet: a TCP SYN, or a UDP datagram marked as one.
    pub syn: bool,
    /// IPv4 header offset and transport header offset (for [`crate::packet::reflect`]).
    pub l3: u16,
    /// Transport header offset.
    pub l4: u16,
}

/// What a received frame is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Received {
    /// Ours and correct.
    Valid(Rx),
    /// Ours (or looks like it) and wrong.
    Invalid(Invalid),
    /// An ARP request (to answer on the server side), with its parse.
    ArpRequest(Parsed),
    /// Anything else (ARP replies, gratuitous ARP, other traffic): ignored.
    Other,
}

/// What [`Validator::forward`] and [`Validator::reverse`] both read from a frame.
struct Fields {
    rx: Rx,
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    ttl: u8,
}

/// The checks of a run.
#[derive(Debug, Clone)]
pub struct Validator {
    /// TCP or UDP.
    pub proto: L4Proto,
    /// The VIP.
    pub vip: Ipv4Addr,
    /// The virtual port.
    pub vport: u16,
    /// The bound real servers.
    pub servers: Servers,
    /// Long-lived flows.
    pub established: FlowSpace,
    /// New-connection endpoints.
    pub new: Option<FlowSpace>,
    /// What the device does.
    pub expect: Expect,
    /// TTL we send.
    pub ttl: u8,
}

impl Validator {
    #[inline]
    fn client(&self, ip: u32, port: u16) -> Option<(Space, u32)> {
        if let Some(i) = self.established.index(ip, port) {
            return Some((Space::Established, i));
        }
        self.new.and_then(|s| s.index(ip, port)).map(|i| (Space::New, i))
    }

    #[inline]
    fn common(&self, frame: &[u8]) -> Result<Fields, Option<Received>> {
        let p = match parse(frame) {
            Ok(p) => p,
            Err(_) => return Err(Some(Received::Invalid(Invalid::Malformed))),
        };
        let ip = match p.l3 {
            L3::Ipv4(ip) => ip,
            L3::Arp(a) if a.op == 1 => return Err(Some(Received::ArpRequest(p))),
            _ => return Err(None),
        };
        let (sport, dport, seq, syn, payload) = match (self.proto, ip.l4) {
            (L4Proto::Tcp, L4::Tcp(t)) => (
                t.src_port,
                t.dst_port,
                t.seq,
                t.flags.contains(TcpFlags::SYN),
                usize::from(t.offset) + usize::from(t.header_len),
            ),
            (L4Proto::Udp, L4::Udp(u)) => {
                let pl = usize::from(u.offset) + 8;
                let (seq, open) = frame
                    .get(pl + 6..pl + 11)
                    .map_or((0, false), |b| (u32::from_be_bytes([b[0], b[1], b[2], b[3]]), b[4] == 1));
                (u.src_port, u.dst_port, seq, open, pl)
            }
            _ => return Err(Some(Received::Invalid(Invalid::WrongProtocol))),
        };
        let end = usize::from(ip.offset) + usize::from(ip.total_len);
        let Some(seg) = frame.get(ip.l4_offset()..end) else { return Err(Some(Received::Invalid(Invalid::Malformed))) };
        if !verify(pseudo_header_v4(ip.src, ip.dst, ip.protocol, seg.len() as u16), seg) {
            return Err(Some(Received::Invalid(Invalid::BadL4Checksum)));
        }
        let Some(ts) = read_ts(frame, payload).filter(|_| payload + 6 <= end) else {
            return Err(Some(Received::Invalid(Invalid::NoTimestamp)));
        };
        let rx = Rx {
            space: Space::Established,
            flow: 0,
            server: u16::MAX,
            seq,
            ts,
            syn,
            l3: ip.offset,
            l4: ip.l4_offset() as u16,
        };
        Ok(Fields { rx, src: u32::from(ip.src), sport, dst: u32::from(ip.dst), dport, ttl: ip.ttl })
    }

    /// Checks a frame received on the server side.
    #[inline]
    pub fn forward(&self, frame: &[u8]) -> Received {
        let Fields { mut rx, src, sport, dst, dport, ttl } = match self.common(frame) {
            Ok(v) => v,
            Err(r) => return r.unwrap_or(Received::Other),
        };
        let Some((space, flow)) = self.client(src, sport) else { return Received::Invalid(Invalid::UnknownClient) };
        match self.expect {
            Expect::Nat => {
                let Some(s) = self.servers.get(dst, dport) else { return Received::Invalid(Invalid::WrongDestination) };
                if ttl != self.ttl.wrapping_sub(1) {
                    return Received::Invalid(Invalid::WrongTtl);
                }
                rx.server = s;
            }
            Expect::Io => {
                if dst != u32::from(self.vip) || dport != self.vport {
                    return Received::Invalid(Invalid::WrongDestination);
                }
                if ttl != self.ttl {
                    return Received::Invalid(Invalid::WrongTtl);
                }
            }
        }
        rx.space = space;
        rx.flow = flow;
        Received::Valid(rx)
    }

    /// Checks a frame received on the client side (a server's answer, back through the
    /// device).
    #[inline]
    pub fn reverse(&self, frame: &[u8]) -> Received {
        let Fields { mut rx, src, sport, dst, dport, .. } = match self.common(frame) {
            Ok(v) => v,
            Err(Some(Received::ArpRequest(_))) => return Received::Other,
            Err(r) => return r.unwrap_or(Received::Other),
        };
        if src != u32::from(self.vip) || sport != self.vport {
            return Received::Invalid(Invalid::WrongSource);
        }
        let Some((space, flow)) = self.client(dst, dport) else { return Received::Invalid(Invalid::UnknownClient) };
        rx.space = space;
        rx.flow = flow;
        Received::Valid(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{reflect, Template, TemplateSpec};
    use dataplane::wire::checksum::{update16, update32};

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

    fn setup(expect: Expect) -> (Template, Validator) {
        let t = Template::new(&TemplateSpec {
            proto: L4Proto::Tcp,
            frame_size: 64,
            src_mac: dataplane::wire::MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: dataplane::wire::MacAddr([2, 0, 0, 0, 0, 2]),
            dst: VIP,
            dst_port: 80,
            ttl: 64,
        })
        .unwrap();
        let v = Validator {
            proto: L4Proto::Tcp,
            vip: VIP,
            vport: 80,
            servers: Servers::new(&[(Ipv4Addr::new(198, 19, 0, 11), 8080), (Ipv4Addr::new(198, 19, 0, 12), 8080)]),
            established: FlowSpace::new(Ipv4Addr::new(198, 18, 1, 0), 1024, 100, 1000).unwrap(),
            new: Some(FlowSpace::new(Ipv4Addr::new(198, 18, 128, 0), 1024, 100, 1000).unwrap()),
            expect,
            ttl: 64,
        };
        (t, v)
    }

    /// What the dataplane does to a client packet: destination to a server, TTL - 1,
    /// checksums adjusted incrementally.
    fn nat(frame: &mut [u8], rip: Ipv4Addr, rport: u16) {
        let old_ip = u32::from_be_bytes(frame[30..34].try_into().unwrap());
        let new_ip = u32::from(rip);
        frame[30..34].copy_from_slice(&rip.octets());
        let ipc = u16::from_be_bytes([frame[24], frame[25]]);
        let ipc = update32(ipc, old_ip, new_ip);
        let old_ttl = u16::from_be_bytes([frame[22], frame[23]]);
        frame[22] -= 1;
        let ipc = update16(ipc, old_ttl, u16::from_be_bytes([frame[22], frame[23]]));
        frame[24..26].copy_from_slice(&ipc.to_be_bytes());
        let old_port = u16::from_be_bytes([frame[36], frame[37]]);
        frame[36..38].copy_from_slice(&rport.to_be_bytes());
        let c = u16::from_be_bytes([frame[50], frame[51]]);
        let c = update16(update32(c, old_ip, new_ip), old_port, rport);
        frame[50..52].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn a_correct_rewrite_is_valid_and_identifies_flow_and_server() {
        let (t, v) = setup(Expect::Nat);
        let (ip, port) = v.established.endpoint(250);
        let mut f = vec![0u8; t.len()];
        t.write(&mut f, ip, port, 42, false, 777);
        nat(&mut f, Ipv4Addr::new(198, 19, 0, 12), 8080);
        let Received::Valid(rx) = v.forward(&f) else { panic!("{:?}", v.forward(&f)) };
        assert_eq!((rx.space, rx.flow, rx.server, rx.seq, rx.ts, rx.syn), (Space::Established, 250, 1, 42, 777, false));
        // The server's answer as the device sends it to the client: from VIP:80.
        let mut back = [0u8; 60];
        let ipf =
            dataplane::wire::build::Ipv4Frame { src: VIP, dst: Ipv4Addr::from(ip), ttl: 62, ..Default::default() };
        let seg = dataplane::wire::build::TcpSegment {
            src_port: 80,
            dst_port: port,
            seq: 42,
            flags: TcpFlags::ACK,
            ..Default::default()
        };
        let n = dataplane::wire::build::tcp_frame(&mut back, &ipf, &seg, &[], &[0, 0, 0, 0, 3, 9]).unwrap();
        let Received::Valid(r) = v.reverse(&back[..n]) else { panic!("{:?}", v.reverse(&back[..n])) };
        assert_eq!(r.ts, 0x309);
        assert_eq!((r.flow, r.seq), (250, 42));
    }

    #[test]
    fn the_dataplanes_own_rewrite_validates() {
        let (t, v) = setup(Expect::Nat);
        for i in [0u32, 1, 999] {
            let (ip, port) = v.established.endpoint(i);
            let mut f = vec![0u8; t.len()];
            t.write(&mut f, ip, port, i * 7919, i == 1, 0x1234_5678_9abc);
            let p = parse(&f).unwrap();
            dataplane::nat::rewrite_dst(&mut f, &p, Ipv4Addr::new(198, 19, 0, 11), 8080).unwrap();
            dataplane::nat::decrement_ttl(&mut f, &p).unwrap();
            assert!(matches!(v.forward(&f), Received::Valid(_)), "flow {i}: {:?}", v.forward(&f));
        }
    }

    #[test]
    fn new_connection_space_is_recognised() {
        let (t, v) = setup(Expect::Io);
        let (ip, port) = v.new.unwrap().endpoint(7);
        let mut f = vec![0u8; t.len()];
        t.write(&mut f, ip, port, 1, true, 1);
        let Received::Valid(rx) = v.forward(&f) else { panic!() };
        assert_eq!((rx.space, rx.flow, rx.syn), (Space::New, 7, true));
    }

    #[test]
    fn wrong_rewrites_are_caught() {
        let (t, v) = setup(Expect::Nat);
        let (ip, port) = v.established.endpoint(1);
        let mut f = vec![0u8; t.len()];
        t.write(&mut f, ip, port, 1, false, 1);
        // Not rewritten at all.
        assert_eq!(v.forward(&f), Received::Invalid(Invalid::WrongDestination));
        // Rewritten to a server that is not bound.
        let mut g = f.clone();
        nat(&mut g, Ipv4Addr::new(198, 19, 0, 99), 8080);
        assert_eq!(v.forward(&g), Received::Invalid(Invalid::WrongDestination));
        // Rewritten right but the transport checksum not adjusted.
        let mut g = f.clone();
        nat(&mut g, Ipv4Addr::new(198, 19, 0, 11), 8080);
        g[51] ^= 1;
        assert_eq!(v.forward(&g), Received::Invalid(Invalid::BadL4Checksum));
        // IP header checksum broken.
        let mut g = f.clone();
        g[25] ^= 1;
        assert_eq!(v.forward(&g), Received::Invalid(Invalid::Malformed));
        // Unknown client.
        let mut g = vec![0u8; t.len()];
        t.write(&mut g, u32::from(Ipv4Addr::new(1, 2, 3, 4)), 5, 1, false, 1);
        nat(&mut g, Ipv4Addr::new(198, 19, 0, 11), 8080);
        assert_eq!(v.forward(&g), Received::Invalid(Invalid::UnknownClient));
        // Reverse with the source not rewritten back.
        let mut g = f.clone();
        nat(&mut g, Ipv4Addr::new(198, 19, 0, 11), 8080);
        reflect(&mut g, 14, 34);
        assert_eq!(v.reverse(&g), Received::Invalid(Invalid::WrongSource));
        // Io expectation: the unmodified packet is right, a rewritten one is not.
        let (_, io) = setup(Expect::Io);
        assert!(matches!(io.forward(&f), Received::Valid(_)));
        let mut g = f.clone();
        nat(&mut g, Ipv4Addr::new(198, 19, 0, 11), 8080);
        assert_eq!(io.forward(&g), Received::Invalid(Invalid::WrongDestination));
    }

    #[test]
    fn arp_requests_are_reported_for_answering() {
        let (_, v) = setup(Expect::Nat);
        let mut buf = [0u8; 64];
        let n = dataplane::nat::build_arp_request(
            &mut buf,
            dataplane::wire::MacAddr([2, 0, 0, 0, 0, 9]),
            Ipv4Addr::new(198, 19, 0, 1),
            Ipv4Addr::new(198, 19, 0, 11),
            None,
        )
        .unwrap();
        assert!(matches!(v.forward(&buf[..n]), Received::ArpRequest(_)));
        assert_eq!(v.reverse(&buf[..n]), Received::Other);
    }
}
