//! hread semantics on TCP, UDP and Unix sockets, in both modes, including
//! handover to a "next generation" (a new reader on the same descriptor).
mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

use restart::hread::{HoldCtl, HoldSlab, HoldingReader, HreadError, HreadMode};
use restart::region::record::Record;
use restart::region::{LayoutSpec, Region, RegionOptions, TableKind};

fn slab_region() -> (Region, String) {
    let name = common::unique("hread");
    let layout = LayoutSpec {
        name: "hread-test".into(),
        version: 1,
        tables: vec![(1, TableKind::Records, HoldCtl::SIZE as u32, 4), (2, TableKind::Raw, 4096, 4)],
    };
    let opts = RegionOptions { hugetlbfs: "/nonexistent".into(), ..RegionOptions::default() };
    (Region::create(&name, &layout, &opts).unwrap(), name)
}

fn slab(r: &Region, index: u32) -> HoldSlab {
    HoldSlab { region: r.clone(), ctl_table: 1, data_table: 2, index }
}

/// Read until `n` bytes or a timeout (the socket is non-blocking for hread).
fn read_n(r: &mut HoldingReader, fd: BorrowedFd<'_>, n: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < n {
        let mut buf = vec![0u8; n - out.len()];
        match r.read(fd, &mut buf) {
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(HreadError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "timed out reading");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    out
}

fn read_dgram(r: &mut HoldingReader, fd: BorrowedFd<'_>) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut buf = vec![0u8; 1500];
        match r.read(fd, &mut buf) {
            Ok(k) => return buf[..k].to_vec(),
            Err(HreadError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "timed out reading");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// The common stream scenario: read 5, read 6, delete 5; a new generation
/// re-reads what was not deleted; more data arrives and is read after it.
fn stream_scenario(mut client: impl Write, server: BorrowedFd<'_>, mode: HreadMode, slab: Option<HoldSlab>) {
    client.write_all(b"hello world").unwrap();
    let mut r = HoldingReader::open(server, mode, slab.clone()).unwrap();
    assert_eq!(r.mode(), mode);
    assert_eq!(read_n(&mut r, server, 5), b"hello");
    assert_eq!(read_n(&mut r, server, 6), b" world");
    assert_eq!(r.held(), 11);
    let mut buf = [0u8; 16];
    // hread(fd, buf, 0, 5): delete only.
    assert_eq!(r.hread(server, &mut buf, 0, 5).unwrap(), 0);
    assert_eq!(r.held(), 6);
    assert!(matches!(r.delete(server, 100), Err(HreadError::DeleteBeyondRead { .. })));
    drop(r); // the generation dies
    let mut r2 = HoldingReader::resume(server, mode, slab.clone(), 0).unwrap();
    assert_eq!(read_n(&mut r2, server, 6), b" world", "next generation re-reads undeleted bytes");
    client.write_all(b"!!").unwrap();
    assert_eq!(read_n(&mut r2, server, 2), b"!!");
    drop(r2);
    // Skip what the caller knows it processed.
    let mut r3 = HoldingReader::resume(server, mode, slab, 3).unwrap();
    assert_eq!(read_n(&mut r3, server, 5), b"rld!!");
    r3.delete(server, 8).unwrap();
    assert_eq!(r3.held(), 0);
}

#[test]
fn tcp_peek_off() {
    let (c, s) = tcp_pair();
    let s0 = restart::sys::tcp_positions(s.as_fd()).unwrap();
    let c0 = restart::sys::tcp_positions(c.as_fd()).unwrap();
    stream_scenario(&c, s.as_fd(), HreadMode::PeekOff, None);
    // The kernel consumed exactly the deleted bytes.
    let pos = restart::sys::tcp_positions(s.as_fd()).unwrap();
    assert_eq!(pos.consumed - s0.consumed, 13);
    assert_eq!(restart::sys::tcp_positions(c.as_fd()).unwrap().written - c0.written, 13);
}

#[test]
fn tcp_fallback() {
    let (region, _name) = slab_region();
    let (c, s) = tcp_pair();
    stream_scenario(&c, s.as_fd(), HreadMode::Fallback, Some(slab(&region, 0)));
    Region::remove(&_name, &RegionOptions { hugetlbfs: "/nonexistent".into(), ..RegionOptions::default() });
}

#[test]
fn tcp_fallback_interrupted_move_is_exact() {
    let (region, name) = slab_region();
    let (mut c, s) = tcp_pair();
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let sl = slab(&region, 1);
    // Crash after the intent was recorded but before the kernel consume.
    region.raw_write(2, 1, 0, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mark = restart::sys::tcp_positions(s.as_fd()).unwrap().consumed;
    region.write(1, 1, &HoldCtl { head: 0, tail: 0, pending_end: 18, kernel_mark: mark }).unwrap();
    let mut r = HoldingReader::resume(s.as_fd(), HreadMode::Fallback, Some(sl.clone()), 0).unwrap();
    assert_eq!(region.read::<HoldCtl>(1, 1).unwrap().unwrap().tail, 0, "not consumed: intent dropped");
    assert_eq!(read_n(&mut r, s.as_fd(), 18), b"GET / HTTP/1.1\r\n\r\n");
    r.delete(s.as_fd(), 18).unwrap();
    drop(r);
    // Same request again; this time the crash is after the kernel consume.
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let ctl = region.read::<HoldCtl>(1, 1).unwrap().unwrap();
    let mark = restart::sys::tcp_positions(s.as_fd()).unwrap().consumed;
    region.raw_write(2, 1, (ctl.tail % 4096) as usize, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    region.write(1, 1, &HoldCtl { pending_end: ctl.tail + 18, kernel_mark: mark, ..ctl }).unwrap();
    restart::sys::tcp_discard(s.as_fd(), 18).unwrap();
    let mut r = HoldingReader::resume(s.as_fd(), HreadMode::Fallback, Some(sl), 0).unwrap();
    assert_eq!(read_n(&mut r, s.as_fd(), 18), b"GET / HTTP/1.1\r\n\r\n", "consumed: intent completed, bytes not lost");
    Region::remove(&name, &RegionOptions { hugetlbfs: "/nonexistent".into(), ..RegionOptions::default() });
}

#[test]
fn unix_stream_both_modes() {
    let (c, s) = UnixStream::pair().unwrap();
    stream_scenario(&c, s.as_fd(), HreadMode::PeekOff, None);
    let (region, name) = slab_region();
    let (c, s) = UnixStream::pair().unwrap();
    stream_scenario(&c, s.as_fd(), HreadMode::Fallback, Some(slab(&region, 2)));
    Region::remove(&name, &RegionOptions { hugetlbfs: "/nonexistent".into(), ..RegionOptions::default() });
}

fn dgram_scenario(send: &dyn Fn(&[u8]), server: BorrowedFd<'_>, mode: HreadMode, slab: Option<HoldSlab>) {
    send(b"a1");
    send(b"bb2");
    send(b"ccc3");
    let mut r = HoldingReader::open(server, mode, slab.clone()).unwrap();
    assert_eq!(read_dgram(&mut r, server), b"a1");
    assert_eq!(read_dgram(&mut r, server), b"bb2");
    // Delete the first datagram only.
    assert_eq!(r.delete(server, 2).unwrap(), 2);
    drop(r);
    let mut r2 = HoldingReader::resume(server, mode, slab, 0).unwrap();
    assert_eq!(read_dgram(&mut r2, server), b"bb2", "undeleted datagram read again");
    assert_eq!(read_dgram(&mut r2, server), b"ccc3");
    assert_eq!(r2.delete(server, 7).unwrap(), 7);
    send(b"d");
    assert_eq!(read_dgram(&mut r2, server), b"d");
}

#[test]
fn udp_both_modes() {
    for mode in [HreadMode::PeekOff, HreadMode::Fallback] {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect(s.local_addr().unwrap()).unwrap();
        let (region, name) = slab_region();
        let sl = (mode == HreadMode::Fallback).then(|| slab(&region, 3));
        dgram_scenario(&|b| assert_eq!(c.send(b).unwrap(), b.len()), s.as_fd(), mode, sl);
        Region::remove(&name, &RegionOptions { hugetlbfs: "/nonexistent".into(), ..RegionOptions::default() });
    }
}

#[test]
fn unix_datagram_both_modes() {
    for mode in [HreadMode::PeekOff, HreadMode::Fallback] {
        let (c, s) = UnixDatagram::pair().unwrap();
        let (region, name) = slab_region();
        let sl = (mode == HreadMode::Fallback).then(|| slab(&region, 0));
        dgram_scenario(&|b| assert_eq!(c.send(b).unwrap(), b.len()), s.as_fd(), mode, sl);
        Region::remove(&name, &RegionOptions { hugetlbfs: "/nonexistent".into(), ..RegionOptions::default() });
    }
}

#[test]
fn detect_mode_on_this_kernel() {
    let (_c, s) = tcp_pair();
    // Kernel 6.18: TCP has SO_PEEK_OFF.
    assert_eq!(restart::hread::detect_mode(s.as_fd()), HreadMode::PeekOff);
    // A pipe has no peek at all: only the fallback can hold its bytes.
    let (p, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(restart::hread::detect_mode(p.as_fd()), HreadMode::Fallback);
}

#[test]
fn tcp_positions_are_absolute() {
    // Positions are counted from a per-connection base (the handshake may
    // count one sequence number), so callers record the base at accept.
    let (mut c, s) = tcp_pair();
    let c0 = restart::sys::tcp_positions(c.as_fd()).unwrap();
    let s0 = restart::sys::tcp_positions(s.as_fd()).unwrap();
    c.write_all(&vec![7u8; 100_000]).unwrap();
    // Written counts bytes still queued (unacked or unsent) exactly.
    assert_eq!(restart::sys::tcp_positions(c.as_fd()).unwrap().written - c0.written, 100_000);
    let mut buf = vec![0u8; 30_000];
    let mut got = 0;
    while got < 30_000 {
        got += std::io::Read::read(&mut &s, &mut buf[got..]).unwrap();
    }
    assert_eq!(restart::sys::tcp_positions(s.as_fd()).unwrap().consumed - s0.consumed, 30_000);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(restart::sys::tcp_positions(c.as_fd()).unwrap().written - c0.written, 100_000);
}
