//! Entry points shared by the fuzz targets (`dataplane/fuzz`, nightly + cargo-fuzz) and the
//! property tests that run them on stable in `cargo test`. Each must never panic.

use std::net::Ipv4Addr;
use std::sync::Arc;

use acm::{BindingKey, BindingParams, Primitive};

use crate::config::{PortAddr, TimeoutsNs};
use crate::control::Control;
use crate::counters::WorkerCounters;
use crate::generation::{Generation, PortView};
use crate::pipeline::{Worker, WorkerConfig};
use crate::wire::{parse, MacAddr};

/// Parses `data` as a frame and, when it is IPv4, applies every in-place rewrite.
pub fn parse_and_rewrite(data: &[u8]) {
    let mut frame = data.to_vec();
    if let Ok(p) = parse(&frame) {
        let ip = Ipv4Addr::new(10, 9, 8, 7);
        let _ = crate::nat::rewrite_dst(&mut frame, &p, ip, 8080);
        let _ = crate::nat::rewrite_src(&mut frame, &p, ip, 4242);
        let _ = crate::nat::decrement_ttl(&mut frame, &p);
        let _ = crate::nat::set_macs(&mut frame, MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let mut f2 = data.to_vec();
        let _ = crate::nat::tcp_rst_in_place(&mut f2, &p);
        let mut f3 = data.to_vec();
        let _ = crate::nat::icmp_echo_reply_in_place(&mut f3, &p);
        let mut f4 = data.to_vec();
        let _ = crate::nat::build_arp_reply_in_place(&mut f4, &p, MacAddr([2, 0, 0, 0, 0, 3]));
    }
}

/// A worker with a VIP 10.0.0.100:80 bound to two servers, for [`pipeline`].
pub struct Target {
    gen: Arc<Generation>,
    worker: Worker,
    now: u64,
}

impl Default for Target {
    fn default() -> Self {
        Self::new()
    }
}

impl Target {
    /// A fresh worker and generation.
    pub fn new() -> Target {
        let ports = vec![
            PortView {
                addr: PortAddr::parse("10.0.0.1/24").expect("valid"),
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                gateway: None,
            },
            PortView {
                addr: PortAddr::parse("10.0.1.1/24").expect("valid"),
                mac: MacAddr([2, 0, 0, 0, 0, 2]),
                gateway: None,
            },
        ];
        let mut c = Control::new(ports, 16, 4, 251);
        for (i, snat) in [(11u8, false), (12, true)] {
            let key = BindingKey {
                service: "10.0.0.100:80".parse().expect("valid"),
                real: acm::RealServer { rip: Ipv4Addr::new(10, 0, 1, i), rport: 80 },
            };
            let _ = c.apply(&Primitive::Add { key, params: BindingParams { weight: 1, source_nat: snat } });
            c.learn_neighbor(Ipv4Addr::new(10, 0, 1, i), MacAddr([2, 0x5e, 0, 0, 0, i]));
        }
        let gen = c.publish();
        let cfg = WorkerConfig {
            index: 0,
            workers: 1,
            flow_capacity: 1024,
            timeouts: TimeoutsNs::default(),
            snat_ports: (10000, 10999),
            seed: 1,
        };
        let mut worker =
            Worker::new(cfg, Arc::new(WorkerCounters::new(16, 4)), Arc::new(crossbeam::queue::ArrayQueue::new(16)));
        worker.adopt(&gen);
        Target { gen, worker, now: 1_000_000_000 }
    }

    /// Runs one frame through the pipeline on `port` (0–2; 2 does not exist).
    pub fn run(&mut self, port: u16, data: &[u8]) {
        let mut frame = data.to_vec();
        self.now += 1000;
        let _ = self.worker.process(&self.gen, self.now, port % 3, &mut frame);
        let _ = self.worker.outbox.drain().count();
        self.worker.maintain(&self.gen, self.now, 16);
    }
}

/// Runs `data` through a fresh worker's pipeline: the first byte picks the port, the rest
/// is split into frames at 0xFF 0x00 markers.
pub fn pipeline(data: &[u8]) {
    let mut t = Target::new();
    let port = data.first().copied().unwrap_or(0) as u16;
    let rest = data.get(1..).unwrap_or(&[]);
    let mut start = 0;
    for i in 0..rest.len().saturating_sub(1) {
        if rest[i] == 0xff && rest[i + 1] == 0x00 {
            t.run(port, &rest[start..i]);
            start = i + 2;
        }
    }
    t.run(port, &rest[start.min(rest.len())..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build::{icmp_echo_frame, tcp_frame, udp_frame, Ipv4Frame, TcpSegment};
    use crate::wire::TcpFlags;
    use proptest::prelude::*;

    /// A client's TCP segment to the VIP from port 40000.
    fn client_tcp(flags: TcpFlags, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let seg = TcpSegment { src_port: 40000, dst_port: 80, seq, ack, flags, window: 65535 };
        let mss = [2, 4, 0x05, 0xb4];
        let opts: &[u8] = if flags == TcpFlags::SYN { &mss } else { &[] };
        let n = tcp_frame(&mut buf, &Ipv4Frame::default(), &seg, opts, payload).expect("fits");
        buf[..n].to_vec()
    }

    /// The seeds of the `packet_parse` and `pipeline` fuzz targets (`fuzz/seeds/`), built
    /// with the frame builders; each must parse, and the connection must open a flow.
    #[test]
    fn fuzz_seeds() {
        let syn = client_tcp(TcpFlags::SYN, 1000, 0, &[]);
        let get = client_tcp(TcpFlags::ACK | TcpFlags::PSH, 1001, 5001, b"GET / HTTP/1.1\r\nHost: v\r\n\r\n");
        let fin = client_tcp(TcpFlags::FIN | TcpFlags::ACK, 1029, 5001, &[]);
        let mut buf = [0u8; 256];
        let n = udp_frame(&mut buf, &Ipv4Frame::default(), 5353, 53, b"query", true).expect("fits");
        let udp = buf[..n].to_vec();
        let ping = Ipv4Frame { dst: Ipv4Addr::new(10, 0, 0, 1), ..Ipv4Frame::default() };
        let n = icmp_echo_frame(&mut buf, &ping, true, 7, 1, b"ping").expect("fits");
        let icmp = buf[..n].to_vec();
        for (name, f) in [("tcp-syn", &syn), ("tcp-data", &get), ("tcp-fin", &fin), ("udp", &udp), ("icmp-echo", &icmp)]
        {
            assert!(parse(f).is_ok(), "{name}");
            labtest::fuzz_seed("packet_parse", name, f);
        }
        // One connection on port 0: the frames behind the port byte, split by 0xFF 0x00.
        let mut conn = vec![0u8];
        for f in [&syn, &get, &fin] {
            conn.extend_from_slice(f);
            conn.extend_from_slice(&[0xff, 0x00]);
        }
        conn.truncate(conn.len() - 2);
        let mut t = Target::new();
        t.run(0, &syn);
        assert_eq!(t.worker.flow_count(), 1, "the seed's SYN opens a flow");
        pipeline(&conn);
        labtest::fuzz_seed("pipeline", "connection", &conn);
    }

    proptest! {
        #[test]
        fn fuzz_parse_and_rewrite(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            parse_and_rewrite(&data);
        }

        #[test]
        fn fuzz_pipeline(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            pipeline(&data);
        }
    }
}
