//! Runtime overhead of the framework's building blocks, measured:
//! hread (peek + delete) against a plain read on a loopback TCP socket,
//! crash-atomic state record updates, and the fd-keeping message.
#![allow(missing_docs, reason = "criterion_group! generates an undocumented pub fn")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
#[allow(unused_imports)]
use std::os::fd::AsRawFd;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use restart::hread::{HoldCtl, HoldSlab, HoldingReader, HreadMode};
use restart::region::record::{Reader, Record, RecordError, Writer};
use restart::region::{LayoutSpec, Region, RegionOptions, TableKind};

const REQ: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n";

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nodelay(true).unwrap();
    (c, s)
}

/// Time only the server side of reading 32 queued requests (the client's
/// writes and the loopback wake-ups are outside the timed section).
fn timed_reads(
    iters: u64,
    cl: &mut TcpStream,
    sv: &TcpStream,
    mut read_one: impl FnMut(&TcpStream) -> usize,
) -> std::time::Duration {
    const K: usize = 32;
    let burst: Vec<u8> = REQ.repeat(K);
    let mut total = std::time::Duration::ZERO;
    for _ in 0..iters.div_ceil(K as u64) {
        cl.write_all(&burst).unwrap();
        while (rustix::io::ioctl_fionread(sv).unwrap() as usize) < burst.len() {
            std::hint::spin_loop();
        }
        let t = std::time::Instant::now();
        for _ in 0..K {
            let mut got = 0;
            while got < REQ.len() {
                got += read_one(sv);
            }
        }
        total += t.elapsed();
    }
    total.mul_f64(iters as f64 / (iters.div_ceil(K as u64) * K as u64) as f64)
}

fn bench_hread(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_request");
    g.throughput(Throughput::Elements(1));
    // Baseline: a consuming read of each request.
    {
        let (mut cl, sv) = pair();
        let mut buf = [0u8; 4096];
        g.bench_function("read", |b| {
            b.iter_custom(|n| timed_reads(n, &mut cl, &sv, |s| (&*s).read(&mut buf[..REQ.len()]).unwrap()))
        });
    }
    // hread, peek-off mode: peek each request, delete every `batch` requests.
    for batch in [1u64, 64] {
        let (mut cl, sv) = pair();
        let mut r = HoldingReader::open(sv.as_fd(), HreadMode::PeekOff, None).unwrap();
        let mut buf = [0u8; 4096];
        let mut pending = 0u64;
        g.bench_with_input(BenchmarkId::new("hread_peek_off_delete_every", batch), &batch, |b, &batch| {
            b.iter_custom(|n| {
                timed_reads(n, &mut cl, &sv, |s| {
                    let k = r.read(s.as_fd(), &mut buf[..REQ.len()]).unwrap();
                    pending += k as u64;
                    if pending >= batch * REQ.len() as u64 {
                        r.delete(s.as_fd(), pending).unwrap();
                        pending = 0;
                    }
                    k
                })
            })
        });
    }
    // hread, fallback mode: bytes moved into a region hold buffer.
    {
        let name = format!("bench-hread-{}", std::process::id());
        let layout = LayoutSpec {
            name: "bench".into(),
            version: 1,
            tables: vec![(1, TableKind::Records, HoldCtl::SIZE as u32, 1), (2, TableKind::Raw, 8192, 1)],
        };
        let region = Region::create(&name, &layout, &RegionOptions::default()).unwrap();
        let (mut cl, sv) = pair();
        let slab = HoldSlab { region: region.clone(), ctl_table: 1, data_table: 2, index: 0 };
        let mut r = HoldingReader::open(sv.as_fd(), HreadMode::Fallback, Some(slab)).unwrap();
        let mut buf = [0u8; 4096];
        g.bench_function("hread_fallback_delete_every_1", |b| {
            b.iter_custom(|n| {
                timed_reads(n, &mut cl, &sv, |s| {
                    let k = r.read(s.as_fd(), &mut buf[..REQ.len()]).unwrap();
                    r.delete(s.as_fd(), k as u64).unwrap();
                    k
                })
            })
        });
        Region::remove(&name, &RegionOptions::default());
    }
    g.finish();
}

struct Big([u8; 360]);
impl Record for Big {
    const SIZE: usize = 384;
    fn encode(&self, w: &mut Writer<'_>) {
        w.bytes(&self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let mut a = [0u8; 360];
        a.copy_from_slice(r.bytes(360)?);
        Ok(Big(a))
    }
}

fn bench_state(c: &mut Criterion) {
    let name = format!("bench-state-{}", std::process::id());
    let layout = LayoutSpec {
        name: "bench".into(),
        version: 1,
        tables: vec![
            (1, TableKind::Records, HoldCtl::SIZE as u32, 1024),
            (2, TableKind::Records, Big::SIZE as u32, 1024),
        ],
    };
    let region = Region::create(&name, &layout, &RegionOptions::default()).unwrap();
    let mut g = c.benchmark_group("state_update");
    let mut i = 0u64;
    g.bench_function("record_32B", |b| {
        b.iter(|| {
            i += 1;
            region.write(1, (i % 1024) as u32, &HoldCtl { head: i, tail: i, pending_end: i, kernel_mark: i }).unwrap();
        })
    });
    let big = Big([7u8; 360]);
    g.bench_function("record_384B_conn_stage", |b| {
        b.iter(|| {
            i += 1;
            region.write(2, (i % 1024) as u32, &big).unwrap();
        })
    });
    g.bench_function("read_384B", |b| {
        b.iter(|| {
            i += 1;
            region.read::<Big>(2, (i % 1024) as u32).unwrap()
        })
    });
    g.finish();
    Region::remove(&name, &RegionOptions::default());
}

fn bench_keep(c: &mut Criterion) {
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let (_cl, sv) = pair();
    let msg = br#"{"op":"keep","name":"conn:123456"}"#;
    let mut buf = Vec::new();
    c.bench_function("keep_message_with_fd_send_recv", |bch| {
        bch.iter(|| {
            restart::fdpass::send(a.as_fd(), msg, &[sv.as_fd()]).unwrap();
            let fds = restart::fdpass::recv(b.as_fd(), &mut buf, false).unwrap().unwrap();
            drop(fds);
        })
    });
}

criterion_group!(benches, bench_hread, bench_state, bench_keep);
criterion_main!(benches);
