//! `bench-report`: turns the pktgen runs of `make bench` (one `--json` summary per run,
//! named `io-*` for the reference forwarder and `dp-*` for the dataplane) into
//! `report.json`, `report.md` and SVG plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use pktgen::summary::Summary;
use pktgen::svg::{Chart, Series};
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(about = "Writes the benchmark report from pktgen run summaries")]
struct Args {
    /// Directory of `<run>.json` summaries.
    #[arg(long)]
    runs: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// 1 for the quick benchmark.
    #[arg(long, default_value = "0")]
    quick: String,
    /// Machine description.
    #[arg(long, default_value = "")]
    machine: String,
    /// Load average before.
    #[arg(long, default_value = "")]
    load_before: String,
    /// Load average after.
    #[arg(long, default_value = "")]
    load_after: String,
    /// Core assignment.
    #[arg(long, default_value = "")]
    cores: String,
    /// Seconds the benchmark took.
    #[arg(long, default_value_t = 0)]
    seconds: u64,
}

fn lat(s: &Summary) -> Value {
    let l = &s.forward.latency_us;
    json!({"p50": l.p50, "p99": l.p99, "min": l.min, "max": l.max})
}

fn invalid(s: &Summary) -> u64 {
    s.forward.invalid.values().sum::<u64>() + s.reverse.as_ref().map_or(0, |r| r.invalid.values().sum())
}

/// One dataplane run against its reference.
fn entry(dp: &Summary, io: Option<&Summary>, limit: f64) -> Value {
    let io_mpps = io.map_or(limit, |i| i.forward.mpps);
    json!({
        "mpps": dp.forward.mpps,
        "io_mpps": io_mpps,
        "ratio_to_io_limit": if io_mpps > 0.0 { dp.forward.mpps / io_mpps } else { 0.0 },
        "gbps": dp.forward.gbps,
        "latency_us": lat(dp),
        "io_latency_us": io.map(lat),
        "lost": dp.forward.lost,
        "invalid": invalid(dp),
        "reorder": dp.forward.reorder,
        "frame_size": dp.frame_size,
        "flows": dp.flows,
        "setup_missing": dp.setup.missing,
        "dataplane": dp.dataplane,
    })
}

/// One pair of a repeated measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pair {
    io_mpps: f64,
    dp_mpps: f64,
    ratio: f64,
}

/// Splits `NAME.rN` into `(NAME, N)`.
fn repeat_of(name: &str) -> Option<(&str, u32)> {
    let (base, n) = name.rsplit_once(".r")?;
    Some((base, n.parse().ok()?))
}

/// Folds repeated runs (`dp-X.rN` with `io-X.rN`, measured in that alternating order) into
/// `dp-X` and `io-X`: the pair with the median ratio stands for the scenario (for an even
/// count, the lower of the two middle ones). Returns every pair by scenario `X`, in run order.
/// A repeat without its partner is left out.
fn fold_repeats(runs: &mut BTreeMap<String, Summary>) -> BTreeMap<String, Vec<Pair>> {
    let mut groups: BTreeMap<String, Vec<(u32, Summary, Summary)>> = BTreeMap::new();
    let names: Vec<String> = runs.keys().filter(|k| repeat_of(k).is_some()).cloned().collect();
    for k in &names {
        let Some((base, n)) = repeat_of(k) else { continue };
        let Some(scenario) = base.strip_prefix("dp-") else { continue };
        let (Some(dp), Some(io)) = (runs.get(k), runs.get(&format!("io-{scenario}.r{n}"))) else { continue };
        groups.entry(scenario.to_string()).or_default().push((n, dp.clone(), io.clone()));
    }
    for k in names {
        runs.remove(&k);
    }
    let mut out = BTreeMap::new();
    for (scenario, mut v) in groups {
        v.sort_by_key(|(n, _, _)| *n);
        let ratio =
            |dp: &Summary, io: &Summary| if io.forward.mpps > 0.0 { dp.forward.mpps / io.forward.mpps } else { 0.0 };
        let pairs: Vec<Pair> = v
            .iter()
            .map(|(_, dp, io)| Pair { io_mpps: io.forward.mpps, dp_mpps: dp.forward.mpps, ratio: ratio(dp, io) })
            .collect();
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| pairs[a].ratio.total_cmp(&pairs[b].ratio));
        let median = order[(v.len() - 1) / 2];
        let (_, dp, io) = v.swap_remove(median);
        runs.insert(format!("dp-{scenario}"), dp);
        runs.insert(format!("io-{scenario}"), io);
        out.insert(scenario, pairs);
    }
    out
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut runs: BTreeMap<String, Summary> = BTreeMap::new();
    for e in std::fs::read_dir(&args.runs).with_context(|| format!("reading {}", args.runs.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "json") {
            match serde_json::from_str::<Summary>(&std::fs::read_to_string(&p)?) {
                Ok(s) => {
                    runs.insert(p.file_stem().unwrap_or_default().to_string_lossy().into_owned(), s);
                }
                Err(e) => eprintln!("bench-report: skipping {} (not a pktgen summary: {e})", p.display()),
            }
        }
    }
    let repeats = fold_repeats(&mut runs);
    let get = |k: &str| runs.get(k);
    let limit = get("io-est-100000").map_or(0.0, |s| s.forward.mpps);
    let mut scen = serde_json::Map::new();
    let mut targets = Vec::new();
    let mut target = |name: &str, value: f64, goal: &str, met: bool| {
        targets.push(json!({"target": name, "value": value, "goal": goal, "met": met}))
    };

    // 1. Established flows by flow count; the headline is 100k.
    let mut by_flows = Vec::new();
    for f in [1000u32, 100_000, 1_000_000] {
        if let Some(dp) = get(&format!("dp-est-{f}")) {
            by_flows.push(entry(dp, get(&format!("io-est-{f}")), limit));
        }
    }
    if let Some(dp) = get("dp-est-100000") {
        let mut e = entry(dp, get("io-est-100000"), limit);
        e["by_flows"] = json!(by_flows);
        let r = e["ratio_to_io_limit"].as_f64().unwrap_or(0.0);
        target("established 64 B, 100k flows, ratio to io", r, ">= 0.70", r >= 0.7);
        scen.insert("established".into(), e);
    }
    if let Some(dp) = get("dp-est-1000000") {
        let e = entry(dp, get("io-est-1000000"), limit);
        let r = e["ratio_to_io_limit"].as_f64().unwrap_or(0.0);
        target("established 64 B, 1M flows, ratio to io", r, ">= 0.60", r >= 0.6);
    }
    // 2. New connections.
    if let Some(dp) = get("dp-syn") {
        let mut e = entry(dp, get("io-syn"), limit);
        e["new_conn_per_s"] = json!(dp.new_conn_per_s);
        target("new connections per second, one worker", dp.new_conn_per_s, ">= 1e6", dp.new_conn_per_s >= 1e6);
        scen.insert("new_connections".into(), e);
    }
    // 3. Churn.
    if let Some(dp) = get("dp-churn") {
        let mut e = entry(dp, None, get("io-est-1000000").map_or(limit, |s| s.forward.mpps));
        let est_lost = dp.dataplane.as_ref().and_then(|d| d["established_lost"].as_i64()).unwrap_or(dp.forward.lost);
        // Drops the dataplane counted because a transmit ring was full (the generator did not
        // drain it in time) are the link's, not the config change's.
        let tx_full = dp.dataplane.as_ref().and_then(|d| d["drops"]["tx_full"].as_i64()).unwrap_or(0);
        e["lost"] = json!(est_lost);
        e["lost_tx_full"] = json!(tx_full);
        e["lost_to_config_changes"] = json!((est_lost - tx_full).max(0));
        e["dataplane_drops"] = dp.dataplane.as_ref().map_or(Value::Null, |d| d["drops"].clone());
        e["offered_pps"] = json!(dp.rate_pps);
        // The generator shares core 0 with the side that makes the changes: how long it was
        // off its core, and the receive ring that had to hold the device's output meanwhile.
        e["generator_stalls"] = json!(dp.generator_stalls);
        e["maglev"] = dp.dataplane.as_ref().map_or(Value::Null, |d| d["maglev"].clone());
        if let Some(c) = &dp.churn {
            e["config_latency_us"] =
                json!({"p50": c.config_latency_us.p50, "p99": c.config_latency_us.p99, "max": c.config_latency_us.max});
            e["config_rtt_us"] = json!({"p50": c.rtt_us.p50, "p99": c.rtt_us.p99});
            e["changes"] = json!(c.changes);
            e["changes_per_s"] = json!(c.rate);
            e["change_errors"] = json!(c.errors);
            target("churn: established packets lost", est_lost as f64, "0", est_lost == 0);
            target(
                "churn: config latency p99 (µs)",
                c.config_latency_us.p99,
                "<= 500",
                c.config_latency_us.p99 <= 500.0,
            );
        }
        scen.insert("churn".into(), e);
    }
    // 4. Disruption.
    if let Some(dp) = get("dp-disruption") {
        if let Some(d) = &dp.disruption {
            let bound = d.ideal + 0.01;
            target(
                "disruption: fraction of flows moved",
                d.fraction_moved,
                &format!("<= 1/N + 1% = {bound:.4}"),
                d.fraction_moved <= bound,
            );
            scen.insert("disruption".into(), json!({
                "servers": d.servers, "removed": d.removed, "flows": d.flows, "moved": d.moved, "on_removed": d.on_removed,
                "fraction_moved": d.fraction_moved, "ideal": d.ideal, "bound": bound, "invalid": invalid(dp),
            }));
        }
    }
    // 5. Frame sizes.
    let mut sizes = Vec::new();
    for s in [64u16, 128, 256, 512, 1024, 1280, 1518] {
        let (dpk, iok) = if s == 64 {
            ("dp-est-100000".to_string(), "io-est-100000".to_string())
        } else {
            (format!("dp-size-{s}"), format!("io-size-{s}"))
        };
        if let Some(dp) = get(&dpk) {
            sizes.push(entry(dp, get(&iok), limit));
        }
    }
    if sizes.len() > 1 {
        scen.insert("frame_sizes".into(), json!({"by_size": sizes}));
    }
    for (k, io) in [("bidirectional", "io-bidir"), ("mixed", "io-est-100000")] {
        let dk = if k == "bidirectional" { "dp-bidir" } else { "dp-mixed" };
        if let Some(dp) = get(dk) {
            let mut e = entry(dp, get(io), limit);
            if let (Some(r), Some(i)) = (&dp.reverse, get(io).and_then(|s| s.reverse.as_ref())) {
                e["reverse_mpps"] = json!(r.mpps);
                e["io_reverse_mpps"] = json!(i.mpps);
                e["reverse_latency_rtt_us"] = json!({"p50": r.latency_us.p50, "p99": r.latency_us.p99});
            }
            e["new_conn_per_s"] = json!(dp.new_conn_per_s);
            scen.insert(k.into(), e);
        }
    }

    let report = json!({
        "generated_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "quick": args.quick == "1",
        "machine": args.machine,
        "cores": args.cores,
        "load_before": args.load_before,
        "load_after": args.load_after,
        "seconds": args.seconds,
        "io_limit_mpps": limit,
        "scenarios": scen,
        "targets": targets,
        "repeats": repeats.iter().map(|(k, v)| (k.clone(), json!(v.iter().map(|p| json!({
            "io_mpps": p.io_mpps, "mpps": p.dp_mpps, "ratio_to_io_limit": p.ratio,
        })).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>(),
        "runs": runs.iter().map(|(k, s)| (k.clone(), json!({
            "tx_mpps": s.forward.tx_mpps, "mpps": s.forward.mpps, "lost": s.forward.lost, "invalid": invalid(s),
            "latency_us": lat(s), "setup": s.setup, "new_conn_per_s": s.new_conn_per_s,
        }))).collect::<serde_json::Map<_, _>>(),
    });
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("report.json"), serde_json::to_string_pretty(&report)? + "\n")?;

    // Plots.
    let pts = |prefix: &str| -> Vec<(f64, f64)> {
        [1000u32, 100_000, 1_000_000]
            .iter()
            .filter_map(|f| get(&format!("{prefix}-est-{f}")).map(|s| (f64::from(*f), s.forward.mpps)))
            .collect()
    };
    let mut plots = Vec::new();
    if pts("dp").len() > 1 {
        let c = Chart {
            title: "Established flows, 64 B, one worker".into(),
            x_label: "concurrent flows".into(),
            y_label: "Mpps forwarded".into(),
            log_x: true,
            y_from_zero: true,
            series: vec![
                Series { name: "dataplane (NAT)".into(), points: pts("dp") },
                Series { name: "testpmd io (limit)".into(), points: pts("io") },
            ],
        };
        std::fs::write(args.out.join("throughput_vs_flows.svg"), c.render())?;
        plots.push(("Throughput vs flows", "throughput_vs_flows.svg"));
    }
    let mut cdf = Vec::new();
    for (name, k) in [
        ("dataplane 100k flows", "dp-est-100000"),
        ("testpmd io 100k flows", "io-est-100000"),
        ("dataplane 1M flows", "dp-est-1000000"),
    ] {
        if let Some(s) = get(k) {
            cdf.push(Series { name: name.into(), points: s.latency_cdf_us.clone() });
        }
    }
    if !cdf.is_empty() {
        let c = Chart {
            title: "Forward latency CDF at line rate, 64 B".into(),
            x_label: "latency (µs, log)".into(),
            y_label: "fraction ≤".into(),
            log_x: true,
            y_from_zero: true,
            series: cdf,
        };
        std::fs::write(args.out.join("latency_cdf.svg"), c.render())?;
        plots.push(("Latency CDF", "latency_cdf.svg"));
    }
    let size_pts = |prefix: &str| -> Vec<(f64, f64)> {
        [64u16, 128, 256, 512, 1024, 1280, 1518]
            .iter()
            .filter_map(|s| {
                let k = if *s == 64 { format!("{prefix}-est-100000") } else { format!("{prefix}-size-{s}") };
                get(&k).map(|r| (f64::from(*s), r.forward.gbps))
            })
            .collect()
    };
    if size_pts("dp").len() > 1 {
        let c = Chart {
            title: "Frame-size sweep, 100k flows".into(),
            x_label: "frame size (bytes)".into(),
            y_label: "Gbit/s forwarded".into(),
            log_x: false,
            y_from_zero: true,
            series: vec![
                Series { name: "dataplane (NAT)".into(), points: size_pts("dp") },
                Series { name: "testpmd io (limit)".into(), points: size_pts("io") },
            ],
        };
        std::fs::write(args.out.join("frame_sizes.svg"), c.render())?;
        plots.push(("Frame-size sweep", "frame_sizes.svg"));
    }

    // Markdown.
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmark report{}\n", if args.quick == "1" { " (quick)" } else { "" });
    let _ = writeln!(
        md,
        "Command: `{}make bench` · {} · {} · load average before {} / after {} · {} s\n",
        if args.quick == "1" { "BENCH_QUICK=1 " } else { "" },
        args.machine,
        args.cores,
        args.load_before,
        args.load_after,
        args.seconds
    );
    let _ = writeln!(md, "Links: `net_memif` (device under test = memif server, pktgen = client). Reference: `dpdk-testpmd --forward-mode=io` on the same links and cores, driven by the same pktgen. **I/O limit: {limit:.3} Mpps** (64 B, 100k flows).\n");
    let _ = writeln!(
        md,
        "| run | frame | flows | dataplane Mpps | io Mpps | ratio | lat p50 µs | lat p99 µs | lost | invalid |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (k, s) in runs.iter().filter(|(k, s)| k.starts_with("dp-") && s.disruption.is_none()) {
        let io_key = k.replacen("dp-", "io-", 1);
        let io = get(&io_key).map_or(limit, |i| i.forward.mpps);
        // A run at a fixed rate below the limit (churn) has no ratio to it.
        let (io, ratio) = if s.rate_pps > 0.0 {
            ("—".to_string(), "—".to_string())
        } else {
            (format!("{io:.3}"), format!("{:.2}", if io > 0.0 { s.forward.mpps / io } else { 0.0 }))
        };
        let _ = writeln!(
            md,
            "| {k}{} | {} | {} | {:.3} | {} | {} | {:.1} | {:.1} | {} | {} |",
            if s.rate_pps > 0.0 { format!(" (offered {:.2} Mpps)", s.rate_pps / 1e6) } else { String::new() },
            s.frame_size,
            s.flows,
            s.forward.mpps,
            io,
            ratio,
            s.forward.latency_us.p50,
            s.forward.latency_us.p99,
            s.forward.lost,
            invalid(s)
        );
    }
    if !repeats.is_empty() {
        let _ = writeln!(
            md,
            "\nRepeated scenarios were measured in alternating pairs (reference, then dataplane, each on a freshly started device); the table shows the pair with the median ratio, and every pair is listed here as ratio (dataplane / reference Mpps):\n"
        );
        for (k, v) in &repeats {
            let pairs: Vec<String> =
                v.iter().map(|p| format!("{:.2} ({:.2} / {:.2})", p.ratio, p.dp_mpps, p.io_mpps)).collect();
            let _ = writeln!(md, "- {k}: {}", pairs.join(", "));
        }
    }
    if let Some(e) = report["scenarios"].get("new_connections") {
        let _ = writeln!(
            md,
            "\nNew connections: **{:.3} M/s** (every SYN a new flow through Maglev and a flow-table insert).",
            e["new_conn_per_s"].as_f64().unwrap_or(0.0) / 1e6
        );
    }
    if let Some(e) = report["scenarios"].get("churn") {
        let _ = writeln!(
            md,
            "\nConfig churn: {} changes at {:.0}/s on a VIP with 100 real servers while forwarding {} established flows at {:.2} Mpps offered: established packets lost **{}** ({} of them transmit-ring-full drops, {} to the config changes; dataplane drops {}), config latency p50 {:.1} µs, p99 **{:.1} µs**.",
            e["changes"], e["changes_per_s"].as_f64().unwrap_or(0.0), e["flows"], e["offered_pps"].as_f64().unwrap_or(0.0) / 1e6, e["lost"], e["lost_tx_full"], e["lost_to_config_changes"], e["dataplane_drops"], e["config_latency_us"]["p50"].as_f64().unwrap_or(0.0), e["config_latency_us"]["p99"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(m) = report["scenarios"].get("churn").map(|e| &e["maglev"]).filter(|m| m.is_object()) {
        let _ = writeln!(
            md,
            "Each change took effect at its acknowledgement (interim correction of the Maglev table); the exact tables followed off the change path: {} build rounds for {} tables, a round {:.0} µs on average (longest {} µs), and a change waited {:.0} µs on average for its exact table (longest {} µs).",
            m["rounds"], m["tables_built"], m["build_us_mean"].as_f64().unwrap_or(0.0), m["build_us_max"], m["exact_after_us_mean"].as_f64().unwrap_or(0.0), m["exact_after_us_max"]
        );
    }
    if let Some(g) = report["scenarios"].get("churn").map(|e| &e["generator_stalls"]).filter(|g| !g.is_null()) {
        let _ = writeln!(
            md,
            "Meanwhile pktgen (which shares core 0 with the control side making the changes) stopped polling {} times for over {:.0} µs, {:.0} ms in all, longest {:.0} µs; its receive ring from the device holds {} frames.",
            g["count"], g["threshold_us"].as_f64().unwrap_or(0.0), g["total_ms"].as_f64().unwrap_or(0.0), g["max_us"].as_f64().unwrap_or(0.0), g["ring_slots"]
        );
    }
    if let Some(d) = report["scenarios"].get("disruption") {
        let _ = writeln!(md, "\nMaglev disruption: removing 1 of {} real servers moved **{:.2} %** of {} new flows (ideal 1/N = {:.2} %, bound {:.2} %).", d["servers"], d["fraction_moved"].as_f64().unwrap_or(0.0) * 100.0, d["flows"], d["ideal"].as_f64().unwrap_or(0.0) * 100.0, d["bound"].as_f64().unwrap_or(0.0) * 100.0);
    }
    let _ = writeln!(md, "\n## Targets\n\n| target | value | goal | met |\n|---|---:|---|---|");
    for t in report["targets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {} | {:.4} | {} | {} |",
            t["target"].as_str().unwrap_or(""),
            t["value"].as_f64().unwrap_or(0.0),
            t["goal"].as_str().unwrap_or(""),
            if t["met"].as_bool() == Some(true) { "yes" } else { "**no**" }
        );
    }
    for (title, file) in &plots {
        let _ = writeln!(md, "\n## {title}\n\n![{title}]({file})");
    }
    let _ = writeln!(md, "\nLatency is measured at line rate (queues full), from a TSC timestamp in the payload; it is dominated by ring occupancy, not by processing.");
    std::fs::write(args.out.join("report.md"), &md)?;
    print!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mpps: f64) -> Summary {
        let mut s = Summary::default();
        s.forward.mpps = mpps;
        s
    }

    #[test]
    fn repeats_fold_into_the_median_pair() {
        let mut runs = BTreeMap::new();
        // Ratios 0.5, 0.9, 0.7: the median pair is the third.
        for (n, io, dp) in [(1, 10.0, 5.0), (2, 10.0, 9.0), (3, 12.0, 8.4)] {
            runs.insert(format!("io-est-100000.r{n}"), run(io));
            runs.insert(format!("dp-est-100000.r{n}"), run(dp));
        }
        // A repeat without its partner, and a plain run, are left as they are.
        runs.insert("dp-syn.r1".into(), run(1.0));
        runs.insert("dp-est-1000".into(), run(3.0));
        let pairs = fold_repeats(&mut runs);
        assert_eq!(pairs.len(), 1);
        let p = &pairs["est-100000"];
        assert_eq!(p.len(), 3);
        assert!((p[0].ratio - 0.5).abs() < 1e-9 && (p[2].ratio - 0.7).abs() < 1e-9);
        assert_eq!(runs["dp-est-100000"].forward.mpps, 8.4);
        assert_eq!(runs["io-est-100000"].forward.mpps, 12.0);
        assert!(runs.keys().all(|k| repeat_of(k).is_none()));
        assert_eq!(runs["dp-est-1000"].forward.mpps, 3.0);
        // Even count: the lower middle.
        let mut runs = BTreeMap::new();
        for (n, io, dp) in [(1, 10.0, 6.0), (2, 10.0, 8.0)] {
            runs.insert(format!("io-x.r{n}"), run(io));
            runs.insert(format!("dp-x.r{n}"), run(dp));
        }
        fold_repeats(&mut runs);
        assert_eq!(runs["dp-x"].forward.mpps, 6.0);
    }

    #[test]
    fn repeat_names() {
        assert_eq!(repeat_of("dp-est-100000.r2"), Some(("dp-est-100000", 2)));
        assert_eq!(repeat_of("dp-est-100000"), None);
        assert_eq!(repeat_of("dp-x.rx"), None);
    }
}
