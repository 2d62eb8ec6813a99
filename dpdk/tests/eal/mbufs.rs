//! Mbuf, burst, mempool and ring behaviour.

use dpdk::{ring, AllocError, Burst, Mbuf, MbufError, Mempool, SocketId};

use crate::Ctx;

pub(crate) fn mbuf_lengths(ctx: &Ctx) {
    let in_use = ctx.pool.in_use();
    let mut m = ctx.pool.alloc().expect("alloc");
    assert_eq!(ctx.pool.in_use(), in_use + 1);
    assert_eq!((m.len(), m.pkt_len(), m.refcnt(), m.segments()), (0, 0, 1, 1));
    assert!(m.is_empty());
    assert_eq!(m.headroom(), usize::from(Mempool::HEADROOM));
    let room = m.tailroom();
    assert_eq!(room, usize::from(Mempool::DEFAULT_DATA_ROOM - Mempool::HEADROOM));

    m.append(10).expect("append").copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    m.extend_from_slice(&[11, 12]).unwrap();
    assert_eq!(m.data(), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(m.tailroom(), room - 12);

    m.prepend(2).expect("prepend").copy_from_slice(&[0xaa, 0xbb]);
    assert_eq!(m.len(), 14);
    assert_eq!(m.headroom(), usize::from(Mempool::HEADROOM) - 2);
    assert_eq!(&m.data()[..3], &[0xaa, 0xbb, 1]);

    m.adj(3).unwrap();
    assert_eq!(m.data()[0], 2);
    m.trim(2).unwrap();
    assert_eq!(m.data(), &[2, 3, 4, 5, 6, 7, 8, 9, 10]);
    m.truncate(4);
    assert_eq!(m.data(), &[2, 3, 4, 5]);
    m.data_mut()[0] = 0x42;
    assert_eq!(m.as_ref()[0], 0x42);

    assert_eq!(m.trim(5), Err(MbufError::TooShort { requested: 5, len: 4 }));
    assert_eq!(m.adj(5), Err(MbufError::TooShort { requested: 5, len: 4 }));
    assert_eq!(m.len(), 4);
    assert!(m.append(room + 1).is_none());
    assert!(m.prepend(usize::from(Mempool::HEADROOM) + 10).is_none());
    assert!(matches!(m.extend_from_slice(&vec![0; room]), Err(MbufError::NoTailroom { .. })));
    assert_eq!(m.len(), 4);

    m.reset();
    assert_eq!((m.len(), m.headroom()), (0, usize::from(Mempool::HEADROOM)));

    // into_raw / from_raw round trip keeps ownership.
    let raw = m.into_raw();
    assert_eq!(ctx.pool.in_use(), in_use + 1);
    // SAFETY (test): raw came from into_raw just above and is owned here.
    let m = unsafe_round_trip(raw);
    drop(m);
    assert_eq!(ctx.pool.in_use(), in_use);
}

#[allow(unsafe_code)]
fn unsafe_round_trip(raw: *mut dpdk::raw::rte_mbuf) -> Mbuf {
    // SAFETY: raw came from Mbuf::into_raw and nobody else owns it.
    unsafe { Mbuf::from_raw(raw) }
}

pub(crate) fn burst_behaviour(ctx: &Ctx) {
    let in_use = ctx.pool.in_use();
    let mut b: Burst<4> = Burst::new();
    assert_eq!((b.len(), b.capacity(), b.spare()), (0, 4, 4));
    assert_eq!(ctx.pool.alloc_bulk(&mut b, 5), Err(AllocError::NoRoom { requested: 5, spare: 4 }));
    ctx.pool.alloc_bulk(&mut b, 3).unwrap();
    assert_eq!(b.len(), 3);
    for (i, m) in b.iter_mut().enumerate() {
        m.extend_from_slice(&[i as u8]).unwrap();
    }
    b.push(ctx.pool.alloc().unwrap()).unwrap();
    assert!(b.is_full());
    let extra = ctx.pool.alloc().unwrap();
    let back = b.push(extra).expect_err("full burst gives the mbuf back");
    drop(back);
    assert_eq!(ctx.pool.in_use(), in_use + 4);

    b.retain(|m| m.len() == 1 && m.data()[0] != 1);
    assert_eq!(b.iter().map(|m| m.data()[0]).collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!(ctx.pool.in_use(), in_use + 2);

    let drained: Vec<Mbuf> = b.drain().collect();
    assert_eq!(drained.len(), 2);
    assert!(b.is_empty());
    drop(drained);
    assert_eq!(ctx.pool.in_use(), in_use);

    // A partly consumed drain frees the rest.
    ctx.pool.alloc_bulk(&mut b, 4).unwrap();
    let first = b.drain().next();
    assert!(first.is_some());
    assert_eq!(ctx.pool.in_use(), in_use + 1);
    drop(first);

    ctx.pool.alloc_bulk(&mut b, 4).unwrap();
    assert!(b.pop().is_some());
    b.clear();
    assert!(b.is_empty());
    ctx.pool.alloc_bulk(&mut b, 2).unwrap();
    drop(b);
    assert_eq!(ctx.pool.in_use(), in_use);

    let default_burst: Burst = Burst::default();
    assert_eq!(default_burst.capacity(), dpdk::DEFAULT_BURST);
}

pub(crate) fn mempool_errors(ctx: &Ctx) {
    use dpdk::MempoolError;
    let small = Mempool::new(&ctx.eal, "tiny", 7, 0, 512, SocketId::ANY).expect("small pool");
    assert_eq!(small.size(), 7);
    assert!(matches!(Mempool::new(&ctx.eal, "tiny", 7, 0, 512, SocketId::ANY), Err(MempoolError::Create { .. })));
    let mut all: Burst<8> = Burst::new();
    assert_eq!(small.alloc_bulk(&mut all, 8), Err(AllocError::Exhausted { requested: 8 }));
    small.alloc_bulk(&mut all, 7).unwrap();
    assert!(small.alloc().is_none());
    assert_eq!((small.available(), small.in_use()), (0, 7));
    drop(all);
    assert_eq!(small.available(), 7);
    assert!(matches!(
        Mempool::new(&ctx.eal, "a_name_that_is_far_too_long_for_dpdk", 7, 0, 512, SocketId::ANY),
        Err(MempoolError::InvalidName { .. })
    ));
}

pub(crate) fn ring_between_lcores(ctx: &Ctx) {
    let in_use = ctx.pool.in_use();
    let (mut tx, mut rx) = ring::channel(&ctx.eal, "test_ring", 16, SocketId::ANY).unwrap();
    assert!(matches!(ring::channel(&ctx.eal, "test_ring", 16, SocketId::ANY), Err(dpdk::RingError::Create { .. })));
    assert_eq!(tx.free_count(), 16);

    // Ring full: what does not fit stays in the burst.
    let mut b: Burst<32> = Burst::new();
    ctx.pool.alloc_bulk(&mut b, 20).unwrap();
    for (i, m) in b.iter_mut().enumerate() {
        m.extend_from_slice(&[i as u8]).unwrap();
    }
    assert_eq!(tx.enqueue_burst(&mut b), 16);
    assert_eq!(b.len(), 4);
    assert_eq!(b.as_slice()[0].data(), &[16]);
    let last = b.pop().unwrap();
    let last = tx.enqueue(last).expect_err("ring full");
    drop((b, last));
    assert_eq!(rx.len(), 16);

    // The consumer end moves to the worker lcore, which checks order.
    let worker = ctx.eal.worker_lcores()[0];
    ctx.eal
        .launch(worker, move || {
            let mut got: Burst<32> = Burst::new();
            rx.dequeue_burst(&mut got);
            let ok = got.iter().enumerate().all(|(i, m)| m.data() == [i as u8]);
            let single = rx.dequeue();
            if ok && single.is_none() && rx.is_empty() {
                got.len() as i32
            } else {
                -1
            }
        })
        .unwrap();
    assert_eq!(ctx.eal.wait(worker), 16);
    assert_eq!(ctx.pool.in_use(), in_use);

    // Dropping the ends frees what is still queued.
    let (mut tx2, rx2) = ring::channel(&ctx.eal, "test_ring2", 8, SocketId::ANY).unwrap();
    tx2.enqueue(ctx.pool.alloc().unwrap()).unwrap();
    tx2.enqueue(ctx.pool.alloc().unwrap()).unwrap();
    assert_eq!(rx2.len(), 2);
    drop((tx2, rx2));
    assert_eq!(ctx.pool.in_use(), in_use);
}
