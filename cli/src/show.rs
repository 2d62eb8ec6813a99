//! Renderers of the `show` commands: dense tables in the device's words.

use acm::{BindingInfo, BindingState};

use crate::backend::Backend;
use crate::config::SlbConfig;
use crate::grammar::port_name;
use crate::stats::TelnetStats;

/// Rank of binding states when several bindings summarise into one word (best first).
fn rank(s: BindingState) -> u8 {
    match s {
        BindingState::Active => 0,
        BindingState::Testing => 1,
        BindingState::Draining => 2,
        BindingState::Failed => 3,
        BindingState::Disabled => 4,
    }
}

fn best(states: impl Iterator<Item = BindingState>) -> Option<BindingState> {
    states.min_by_key(|s| rank(*s))
}

/// `show server real [NAME]`.
pub fn server_real(cfg: &SlbConfig, backend: &mut dyn Backend, name: Option<&str>) -> Vec<String> {
    let list = backend.list();
    let mut out = vec!["Real Servers Info".to_string()];
    if let Some(n) = name {
        if cfg.real(n).is_none() {
            return vec![format!("Error - real server {n} does not exist")];
        }
    }
    out.push(format!(
        "{:<16} {:<15} {:<5} {:>6} {:>8} {:<4} {:>5}",
        "Name", "IP", "State", "Weight", "MaxConn", "SNAT", "Ports"
    ));
    for r in cfg.reals.iter().filter(|r| name.is_none() || name == Some(r.name.as_str())) {
        let mine: Vec<&BindingInfo> = list.iter().filter(|b| b.key.real.rip == r.ip).collect();
        let state = best(mine.iter().map(|b| b.state)).map_or("ENB", |s| s.abbrev());
        out.push(format!(
            "{:<16} {:<15} {:<5} {:>6} {:>8} {:<4} {:>5}",
            r.name,
            r.ip.to_string(),
            state,
            r.weight,
            r.max_conn,
            if r.source_nat { "yes" } else { "no" },
            r.ports.len()
        ));
        if !r.ports.is_empty() {
            out.push(format!(
                "  {:<8} {:<5} {:>7} {:>8} {:>10} {:>10}  {}",
                "Port", "State", "CurConn", "TotConn", "PktsIn", "PktsOut", "Health check"
            ));
        }
        for p in &r.ports {
            let bs: Vec<&&BindingInfo> = mine.iter().filter(|b| b.key.real.rport == p.port).collect();
            let state = if p.disabled { "DIS" } else { best(bs.iter().map(|b| b.state)).map_or("UNB", |s| s.abbrev()) };
            let mut c = acm::BindingCounters::default();
            for b in &bs {
                c.add(&b.counters);
            }
            let mut check = if p.l4_check_only {
                "L4".to_string()
            } else if let Some(u) = &p.url {
                format!("L7 \"{u}\"")
            } else {
                "L4".to_string()
            };
            if p.keepalive {
                check.push_str(" keepalive");
            }
            if let Some((a, b)) = p.status_codes {
                check.push_str(&format!(" status {a}-{b}"));
            }
            out.push(format!(
                "  {:<8} {:<5} {:>7} {:>8} {:>10} {:>10}  {}",
                port_name(p.port),
                state,
                c.active_flows,
                c.new_flows,
                c.packets_in,
                c.packets_out,
                check
            ));
        }
    }
    out
}

/// `show server virtual [NAME]`.
pub fn server_virtual(cfg: &SlbConfig, backend: &mut dyn Backend, name: Option<&str>) -> Vec<String> {
    if let Some(n) = name {
        if cfg.virtual_server(n).is_none() {
            return vec![format!("Error - virtual server {n} does not exist")];
        }
    }
    let list = backend.list();
    let mut out = vec!["Virtual Servers Info".to_string()];
    out.push(format!("{:<16} {:<15} {:<20} {:>5}", "Name", "VIP", "Predictor", "Ports"));
    for v in cfg.virtuals.iter().filter(|v| name.is_none() || name == Some(v.name.as_str())) {
        out.push(format!(
            "{:<16} {:<15} {:<20} {:>5}",
            v.name,
            v.vip.to_string(),
            cfg.predictor_of(v).name(),
            v.ports.len()
        ));
        if !v.ports.is_empty() {
            out.push(format!(
                "  {:<8} {:<5} {:>5} {:>8} {:>7} {:>8} {:>10} {:>10}",
                "Port", "State", "Binds", "DropFrac", "CurConn", "TotConn", "PktsIn", "PktsOut"
            ));
        }
        for p in &v.ports {
            let svc = v.service(p.port);
            let bs: Vec<&BindingInfo> = list.iter().filter(|b| b.key.service == svc).collect();
            let state = if p.disabled {
                "DIS"
            } else if bs.iter().any(|b| b.state == BindingState::Active) {
                "ACT"
            } else {
                "ENB"
            };
            let mut c = acm::BindingCounters::default();
            for b in &bs {
                c.add(&b.counters);
            }
            out.push(format!(
                "  {:<8} {:<5} {:>5} {:>8} {:>7} {:>8} {:>10} {:>10}",
                port_name(p.port),
                state,
                v.binds.iter().filter(|b| b.vport == p.port).count(),
                p.drop_fraction,
                c.active_flows,
                c.new_flows,
                c.packets_in,
                c.packets_out
            ));
        }
    }
    out
}

/// `show server bind`: each virtual server, its ports, and the real servers bound with their
/// state. Bindings still draining on the switch after `no bind` are listed too (GDN).
pub fn server_bind(cfg: &SlbConfig, backend: &mut dyn Backend) -> Vec<String> {
    let list = backend.list();
    let mut out = vec!["Bind info".to_string()];
    for v in &cfg.virtuals {
        out.push(String::new());
        out.push(format!("Virtual server: {:<20} Status: enabled  IP: {}", v.name, v.vip));
        for p in &v.ports {
            let svc = v.service(p.port);
            let mut rows: Vec<String> = Vec::new();
            let mut shown = Vec::new();
            for b in v.binds.iter().filter(|b| b.vport == p.port) {
                let Some(r) = cfg.real(&b.real) else { continue };
                let key = cfg.bind_key(v, b);
                let state = if !cfg.bind_live(v, b) {
                    "DIS"
                } else {
                    list.iter().find(|i| Some(i.key) == key).map_or("UNB", |i| i.state.abbrev())
                };
                shown.extend(key);
                rows.push(format!("{}: {}, {} ({state})", r.name, r.ip, port_name(b.rport)));
            }
            for i in list.iter().filter(|i| i.key.service == svc && !shown.contains(&i.key)) {
                let name = cfg.real_name_by_ip(i.key.real.rip).unwrap_or("(deleted)");
                rows.push(format!(
                    "{name}: {}, {} ({})",
                    i.key.real.rip,
                    port_name(i.key.real.rport),
                    i.state.abbrev()
                ));
            }
            let head = format!("        {:<5}-------> ", port_name(p.port));
            if rows.is_empty() {
                out.push(format!("{head}(none)"));
            }
            for (n, row) in rows.iter().enumerate() {
                if n == 0 {
                    out.push(format!("{head}{row}"));
                } else {
                    out.push(format!("{}{row}", " ".repeat(head.len())));
                }
            }
        }
    }
    out
}

/// `show server sessions`: the switch's flow table, one flow a line.
pub fn server_sessions(backend: &mut dyn Backend) -> Vec<String> {
    let t = backend.sessions();
    let shown = t.rows.len() as u64;
    let mut out = vec![if t.total > shown {
        format!("Sessions: {} ({shown} shown)", t.total)
    } else {
        format!("Sessions: {}", t.total.max(shown))
    }];
    if let Some(note) = t.note {
        out.push(format!("Note - {note}"));
    }
    out.push(format!(
        "{:<5} {:<21} {:<21} {:<21} {:<5} {:>7} {:>7}",
        "Proto", "Client", "VIP", "Real", "State", "Idle(s)", "Left(s)"
    ));
    for r in t.rows {
        out.push(format!(
            "{:<5} {:<21} {:<21} {:<21} {:<5} {:>7} {:>7}",
            r.proto.to_string().to_uppercase(),
            format!("{}:{}", r.client, r.client_port),
            format!("{}:{}", r.vip, r.vport),
            format!("{}:{}", r.real, r.rport),
            r.state,
            r.idle_s,
            r.expires_s
        ));
    }
    out
}

/// `show telnet`: the telnet server's sessions, logins and bad input.
pub fn telnet(stats: Option<TelnetStats>) -> Vec<String> {
    let Some(t) = stats else {
        return vec!["Telnet counters are not available here (not a telnet session).".to_string()];
    };
    let pairs: [(&str, u64, &str, u64); 5] = [
        ("Sessions open", t.open(), "Refused", t.refused),
        ("Opened", t.opened, "Closed", t.closed),
        ("Logins", t.logins, "Failed logins", t.failed_logins),
        ("Login timeouts", t.login_timeouts, "Idle timeouts", t.idle_timeouts),
        ("Bad IAC", t.bad_telnet, "Long lines", t.long_lines),
    ];
    let mut out = vec!["Telnet server".to_string()];
    out.extend(pairs.iter().map(|(a, x, b, y)| format!("{:<27} {b:<14} = {y}", format!("{a:<14} = {x}"))));
    out
}

/// `show server traffic`, with the device's field names.
pub fn server_traffic(backend: &mut dyn Backend) -> Vec<String> {
    let t = backend.traffic();
    let pairs: [(&str, u64, &str, u64); 7] = [
        ("Client->Server", t.client_to_server, "Server->Client", t.server_to_client),
        ("Drops", t.drops, "Aged", t.aged),
        ("Fw_drops", t.fw_drops, "Rev_drops", t.rev_drops),
        ("FIN_or_RST", t.fin_or_rst, "old-conn", t.old_conn),
        ("Disable_drop", t.disable_drop, "Exceed_drop", t.exceed_drop),
        ("Stale_drop", t.stale_drop, "Unsuccessful", t.unsuccessful),
        ("TCP SYN-DEF RST", t.syn_def_rst, "Server Resets", t.server_resets),
    ];
    let mut out: Vec<String> =
        pairs.iter().map(|(a, x, b, y)| format!("{:<27} {b:<14} = {y}", format!("{a:<14} = {x}"))).collect();
    out.push(format!("{:<14} = {}", "Out of Memory", t.out_of_memory));
    out
}

/// `show acm latency`: the control plane's configuration-latency histograms.
pub fn acm_latency(backend: &mut dyn Backend) -> Vec<String> {
    let rows = backend.latency();
    let mut out = vec![format!(
        "{:<13} {:<12} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "Primitive", "Switch", "Count", "p50(us)", "p90(us)", "p99(us)", "max(us)"
    )];
    for r in rows {
        out.push(format!(
            "{:<13} {:<12} {:>8} {:>9} {:>9} {:>9} {:>9}",
            r.primitive, r.switch, r.count, r.p50_us, r.p90_us, r.p99_us, r.max_us
        ));
    }
    out
}

/// `show version`.
pub fn version(backend: &mut dyn Backend) -> Vec<String> {
    let mut out = vec![format!("  ServerIron-compatible CLI, cli {}", env!("CARGO_PKG_VERSION"))];
    out.extend(backend.version().lines().map(|l| format!("  {l}")));
    out
}

/// `show statistics`: totals over every binding.
pub fn statistics(cfg: &SlbConfig, backend: &mut dyn Backend) -> Vec<String> {
    let list = backend.list();
    let mut c = acm::BindingCounters::default();
    for b in &list {
        c.add(&b.counters);
    }
    let count = |s: BindingState| list.iter().filter(|b| b.state == s).count();
    vec![
        "SLB statistics".to_string(),
        format!("  Real servers         : {}", cfg.reals.len()),
        format!("  Virtual servers      : {}", cfg.virtuals.len()),
        format!(
            "  Bindings             : {} (ACT {}, TST {}, GDN {}, FAL {}, DIS {})",
            list.len(),
            count(BindingState::Active),
            count(BindingState::Testing),
            count(BindingState::Draining),
            count(BindingState::Failed),
            count(BindingState::Disabled)
        ),
        format!("  Current connections  : {}", c.active_flows),
        format!("  Total connections    : {}", c.new_flows),
        format!("  Client->Server       : {} packets, {} bytes", c.packets_in, c.bytes_in),
        format!("  Server->Client       : {} packets, {} bytes", c.packets_out, c.bytes_out),
    ]
}
