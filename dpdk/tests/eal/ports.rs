//! Ports on net_null and net_ring, queue handles, lcore launch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpdk::{
    ring, Burst, Direction, Mbuf, Mempool, Port, PortConfig, PortConfigError, PortStateError, QueueError, SocketId,
    LCORE_PANICKED,
};

use crate::Ctx;

pub(crate) fn net_null_two_ports(ctx: &Ctx) {
    let ids = [ctx.eal.port_by_name("net_null0").unwrap(), ctx.eal.port_by_name("net_null1").unwrap()];
    let cfg = PortConfig::new(ctx.pool.clone()).descriptors(256, 256);
    let mut ports: Vec<Port> = ids.iter().map(|&id| Port::configure(&ctx.eal, id, &cfg).expect("configure")).collect();
    assert!(matches!(Port::configure(&ctx.eal, ids[0], &cfg), Err(PortConfigError::AlreadyConfigured { .. })));

    for p in &mut ports {
        p.start().expect("start");
        let link = p.wait_link_up(Duration::from_secs(2)).unwrap();
        assert!(link.up, "{} link down: {link:?}", p.name());
        let info = p.info().unwrap();
        assert_eq!(info.driver_name, "net_null");
        assert!(info.max_rx_queues >= 1 && info.max_tx_queues >= 1);
        p.mac_addr().unwrap();
        p.reset_stats().unwrap();
    }

    let mut rx = ports[0].rx_queue(0).unwrap();
    let mut tx = ports[1].tx_queue(0).unwrap();
    assert!(matches!(ports[0].rx_queue(0), Err(QueueError::Taken { direction: Direction::Rx, .. })));
    assert!(matches!(ports[0].rx_queue(1), Err(QueueError::OutOfRange { .. })));

    let mut burst: Burst = Burst::new();
    let mut received = 0;
    let mut sent = 0;
    for _ in 0..10 {
        received += rx.rx_burst(&mut burst);
        assert!(burst.iter().all(|m| m.len() == 64), "net_null makes 64-byte packets");
        sent += tx.tx_burst(&mut burst);
        burst.clear();
    }
    assert!(received >= 10, "net_null rx gave {received} packets");
    assert_eq!(sent, received, "net_null tx accepts everything");

    // net_null1 was created with size=128.
    let mut rx1 = ports[1].rx_queue(0).unwrap();
    assert!(rx1.rx_burst(&mut burst) > 0);
    assert!(burst.iter().all(|m| m.len() == 128));
    burst.clear();

    let s0 = ports[0].stats().unwrap();
    let s1 = ports[1].stats().unwrap();
    assert!(s0.ipackets >= received as u64, "{s0:?}");
    assert!(s1.opackets >= sent as u64, "{s1:?}");
    let xs = ports[0].xstats().unwrap();
    assert!(!xs.is_empty());
    assert!(xs.iter().any(|(name, v)| name == "rx_good_packets" && *v >= received as u64), "{xs:?}");

    // No stop while a queue handle is out.
    assert!(matches!(ports[0].stop(), Err(PortStateError::QueuesInUse { rx: 1, tx: 0, .. })));
    drop((rx, rx1, tx));
    for mut p in ports {
        p.stop().unwrap();
        assert!(!p.is_started());
        p.close().unwrap();
    }
    assert!(ctx.eal.port_by_name("net_null0").is_err(), "closed port is released");
}

pub(crate) fn net_null_rss(ctx: &Ctx) {
    // net_null advertises RSS (and a 40-byte key): spread over 2 rx queues
    // with a caller-supplied (symmetric) key.
    let id = ctx.eal.port_by_name("net_null2").unwrap();
    let mut cfg = PortConfig::new(ctx.pool.clone()).queues(2, 2).descriptors(64, 64);
    cfg.rss_key = Some([0x6d, 0x5a].repeat(20));
    let mut port = Port::configure(&ctx.eal, id, &cfg).expect("net_null with 2 RSS queues");
    let info = port.info().unwrap();
    assert_ne!(info.rss_offloads, 0, "{info:?}");
    assert_eq!((port.rx_queue_count(), port.tx_queue_count()), (2, 2));
    port.start().unwrap();
    let mut b: Burst = Burst::new();
    for q in 0..2 {
        let mut rx = port.rx_queue(q).unwrap();
        assert!(rx.rx_burst(&mut b) > 0, "rx queue {q} gives packets");
        let mut tx = port.tx_queue(q).unwrap();
        assert_eq!(tx.tx_burst_or_drop(&mut b).1, 0);
    }
    let mut bad = cfg.clone();
    bad.rss_key = Some(vec![0; 3]);
    assert!(matches!(Port::configure(&ctx.eal, id, &bad), Err(PortConfigError::AlreadyConfigured { .. })));
    drop(port); // dropping the Port stops and closes the device
    assert!(ctx.eal.port_by_name("net_null2").is_err(), "dropped Port closes the device");

    // net_ring has no RSS: two rx queues are refused, with a clear error.
    let ring_id = ctx.eal.port_by_name("net_ring0").unwrap();
    let cfg = PortConfig::new(ctx.pool.clone()).queues(2, 1).descriptors(128, 128);
    match Port::configure(&ctx.eal, ring_id, &cfg) {
        Err(e @ PortConfigError::RssUnsupported { rx_queues: 2, .. }) => assert!(e.to_string().contains("RSS")),
        other => panic!("net_ring has no RSS, expected RssUnsupported, got {other:?}"),
    }
    // The failed attempt left the port free for the next step.
    assert!(ctx.eal.port_by_name("net_ring0").is_ok());
}

/// A 60-byte frame with recognisable bytes.
fn test_frame(tag: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = tag.wrapping_add(i as u8);
    }
    f
}

fn build(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("alloc");
    m.extend_from_slice(bytes).expect("fits");
    m
}

fn rx_until<const N: usize>(rx: &mut dpdk::RxQueue, burst: &mut Burst<N>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while burst.len() < want && Instant::now() < deadline {
        if rx.rx_burst(burst) == 0 {
            dpdk::pause();
        }
    }
}

pub(crate) fn net_ring_loopback(ctx: &mut Ctx) {
    let id = ctx.eal.port_by_name("net_ring0").unwrap();
    let cfg = PortConfig::new(ctx.pool.clone()).descriptors(256, 256);
    let mut port = Port::configure(&ctx.eal, id, &cfg).expect("configure net_ring0");
    port.start().unwrap();
    assert!(port.wait_link_up(Duration::from_secs(2)).unwrap().up);

    // Main lcore: tx a built frame, rx it back, compare bytes exactly.
    let frame = test_frame(7);
    {
        let mut rx = port.rx_queue(0).unwrap();
        let mut tx = port.tx_queue(0).unwrap();
        let mut out: Burst = Burst::new();
        out.push(build(&ctx.pool, &frame)).unwrap();
        assert_eq!(tx.tx_burst(&mut out), 1);
        assert!(out.is_empty());
        let mut got: Burst = Burst::new();
        rx_until(&mut rx, &mut got, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got.as_slice()[0].data(), frame.as_slice());
    }

    // Worker lcore: owns both queue handles, echoes packets with byte 14
    // incremented until told to stop; returns how many it echoed.
    let worker = ctx.eal.worker_lcores()[0];
    let rx = port.rx_queue(0).unwrap();
    let tx = port.tx_queue(0).unwrap();
    let (mut to_worker, mut from_main) = ring::channel(&ctx.eal, "to_worker", 64, SocketId::ANY).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_w = Arc::clone(&stop);
    ctx.eal
        .launch(worker, move || {
            assert_eq!(dpdk::current_lcore(), Some(1));
            let (mut rx, mut tx) = (rx, tx);
            let mut echoed = 0;
            let mut b: Burst = Burst::new();
            while !stop_w.load(Ordering::Acquire) {
                // Packets handed over by the main lcore go out on the port...
                from_main.dequeue_burst(&mut b);
                tx.tx_burst(&mut b);
                // ...come back in through the ring PMD, and are echoed once more.
                let n = rx.rx_burst(&mut b);
                for m in b.iter_mut() {
                    m.data_mut()[14] = m.data()[14].wrapping_add(1);
                }
                echoed += n as i32;
                let _ = tx.tx_burst_or_drop(&mut b);
                if n == 0 {
                    dpdk::pause();
                }
            }
            echoed
        })
        .expect("launch");
    assert!(ctx.eal.is_running(worker));
    assert!(matches!(ctx.eal.launch(worker, || 0), Err(dpdk::LaunchError::Busy { .. })));
    assert!(matches!(ctx.eal.launch(0, || 0), Err(dpdk::LaunchError::NotAWorker { .. })));

    // The worker loops packets forever (tx -> rx -> tx ...), incrementing
    // byte 14 each pass; let a few through, then stop it.
    let mut b: Burst = Burst::new();
    for tag in 0..4 {
        b.push(build(&ctx.pool, &test_frame(tag * 10))).unwrap();
    }
    assert_eq!(to_worker.enqueue_burst(&mut b), 4);
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Release);
    let echoed = ctx.eal.wait(worker);
    assert!(echoed >= 4, "worker echoed {echoed}");
    drop(to_worker);

    // Packets still looping are in the ring PMD; take them back on main.
    let mut rx = port.rx_queue(0).expect("handle returned by the worker");
    let mut back: Burst = Burst::new();
    rx_until(&mut rx, &mut back, 4);
    assert_eq!(back.len(), 4, "all 4 packets survive the loop");
    for m in back.iter() {
        assert_eq!(m.len(), 60);
        assert_eq!(&m.data()[..14], &test_frame(0)[..14]);
    }
    drop((rx, back));

    // A panicking closure: caught, logged, reported, the process survives.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let deliberate = info.payload().downcast_ref::<&str>().is_some_and(|m| m.starts_with("deliberate"));
        if deliberate {
            println!("(worker lcore panicked on purpose)");
        } else {
            default_hook(info);
        }
    }));
    ctx.eal.launch(worker, || panic!("deliberate test panic on a worker lcore")).unwrap();
    assert_eq!(ctx.eal.wait(worker), LCORE_PANICKED);
    ctx.eal.launch(worker, || 7).unwrap();
    assert_eq!(ctx.eal.wait_all(), vec![(worker, 7)]);

    port.stop().unwrap();
    port.close().unwrap();
}
