use proptest::prelude::*;

use super::*;

const US: u64 = 1_000;

/// Runs empty rounds from `start`, advancing the clock by each round's cost plus the sleep or
/// pause it was told to take, until `until`; returns the actions.
fn idle_rounds(p: &mut IdlePolicy, start: u64, round_ns: u64, until: u64) -> Vec<Action> {
    let mut now = start;
    let mut out = Vec::new();
    while now < until {
        let a = p.after_round(0, now);
        now += round_ns
            + match a {
                Action::Poll => 0,
                Action::Pause(ns) | Action::Sleep(ns) => ns,
            };
        out.push(a);
    }
    out
}

#[test]
fn polls_then_pauses_then_sleeps_growing_to_the_cap() {
    let mut p = IdlePolicy::new(IdleConfig::adaptive(1000 * US), 0);
    assert_eq!(p.after_round(0, 5 * US), Action::Poll);
    assert_eq!(p.after_round(0, 19 * US), Action::Poll);
    assert_eq!(p.after_round(0, 20 * US), Action::Pause(US));
    assert_eq!(p.after_round(0, 99 * US), Action::Pause(US));
    let sleeps: Vec<u64> = (0..10)
        .map(|i| match p.after_round(0, 100 * US + i) {
            Action::Sleep(ns) => ns / US,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sleeps, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
}

#[test]
fn work_returns_to_full_speed_polling_and_restarts_the_sleeps() {
    let mut p = IdlePolicy::new(IdleConfig::adaptive(1000 * US), 0);
    let t = 10_000 * US;
    assert!(matches!(p.after_round(0, t), Action::Sleep(_)));
    assert!(matches!(p.after_round(0, t + 1), Action::Sleep(n) if n == 20 * US));
    assert_eq!(p.after_round(3, t + 2), Action::Poll);
    assert_eq!(p.after_round(0, t + 3), Action::Poll);
    assert_eq!(p.after_round(0, t + 2 + 20 * US), Action::Pause(US));
    assert_eq!(p.after_round(0, t + 2 + 100 * US), Action::Sleep(10 * US));
}

#[test]
fn busy_never_pauses_nor_sleeps() {
    let mut p = IdlePolicy::new(IdleConfig::BUSY, 0);
    assert!(idle_rounds(&mut p, 0, 50, 10_000_000).iter().all(|a| *a == Action::Poll));
    assert_eq!(p.after_round(0, u64::MAX), Action::Poll);
}

#[test]
fn nap_sleeps_a_fixed_time_after_every_empty_round() {
    let mut p = IdlePolicy::new(IdleConfig::nap(50 * US), 0);
    assert_eq!(p.after_round(1, 0), Action::Poll);
    for t in [0, 1, 1_000_000] {
        assert_eq!(p.after_round(0, t), Action::Sleep(50 * US));
    }
}

#[test]
fn small_cap_bounds_the_first_sleep_too() {
    let c = IdleConfig::adaptive(4 * US);
    assert_eq!((c.min_sleep_ns, c.max_sleep_ns), (4 * US, 4 * US));
    let mut p = IdlePolicy::new(c, 0);
    assert_eq!(p.after_round(0, 200 * US), Action::Sleep(4 * US));
    assert_eq!(p.after_round(0, 300 * US), Action::Sleep(4 * US));
}

#[test]
fn config_from_the_appliance_file() {
    assert_eq!(IdleConfig::worker(IdleMode::Busy, 1000), IdleConfig::BUSY);
    assert_eq!(IdleConfig::worker(IdleMode::Adaptive, 500), IdleConfig::adaptive(500 * US));
    assert_eq!(IdleConfig::main_lcore(IdleMode::Busy, 1000), IdleConfig::nap(50 * US));
    assert_eq!(IdleConfig::main_lcore(IdleMode::Adaptive, 2000).max_sleep_ns, 2000 * US);
}

#[test]
fn a_clock_going_backwards_counts_as_no_idle_time() {
    let mut p = IdlePolicy::new(IdleConfig::adaptive(1000 * US), 1_000_000);
    assert_eq!(p.after_round(0, 0), Action::Poll);
}

proptest! {
    /// Whatever the traffic: never a sleep longer than the cap nor shorter than the first
    /// sleep; never a pause or sleep within `poll_ns` of work; every round with work polls;
    /// after work, the first sleep is the shortest.
    #[test]
    fn sleeps_are_bounded_and_reset_on_traffic(
        max_us in 10u64..20_000,
        rounds in proptest::collection::vec((0usize..3, 0u64..3_000_000), 1..400),
    ) {
        let cfg = IdleConfig::adaptive(max_us * US);
        let mut p = IdlePolicy::new(cfg, 0);
        let (mut now, mut last_work, mut since_work_sleeps) = (0u64, 0u64, 0u32);
        for (work, step) in rounds {
            now += step;
            let a = p.after_round(work, now);
            if work > 0 {
                prop_assert_eq!(a, Action::Poll);
                last_work = now;
                since_work_sleeps = 0;
                continue;
            }
            match a {
                Action::Poll => prop_assert!(now - last_work < cfg.poll_ns),
                Action::Pause(ns) => {
                    prop_assert!(now - last_work >= cfg.poll_ns && now - last_work < cfg.pause_until_ns);
                    prop_assert_eq!(ns, cfg.pause_ns);
                }
                Action::Sleep(ns) => {
                    prop_assert!(now - last_work >= cfg.pause_until_ns);
                    prop_assert!(ns <= cfg.max_sleep_ns && ns >= cfg.min_sleep_ns);
                    if since_work_sleeps == 0 {
                        prop_assert_eq!(ns, cfg.min_sleep_ns);
                    }
                    since_work_sleeps += 1;
                }
            }
        }
    }

    /// An idle loop spends most of its time asleep: over a second without traffic, the time
    /// not covered by sleeps (polls and pauses) is the first 100 µs plus the rounds' own cost.
    #[test]
    fn an_idle_second_is_mostly_sleep(max_us in 100u64..5_000, round_ns in 50u64..2_000) {
        let mut p = IdlePolicy::new(IdleConfig::adaptive(max_us * US), 0);
        let actions = idle_rounds(&mut p, 0, round_ns, 1_000_000_000);
        let slept: u64 = actions.iter().map(|a| if let Action::Sleep(n) = a { *n } else { 0 }).sum();
        let awake_rounds = actions.iter().filter(|a| !matches!(a, Action::Sleep(_))).count() as u64;
        prop_assert!(slept >= 1_000_000_000 - 100_000 - round_ns * actions.len() as u64 - max_us * US);
        prop_assert!(awake_rounds * round_ns <= 100_000 + round_ns);
    }
}
