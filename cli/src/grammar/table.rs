//! The command table: every command's spec, keyword help texts, argument kinds, port and
//! predictor names. Adding a command is adding a line here and a handler in the session.

use super::{Arg, Grammar};
use crate::mode::ModeKind;

/// What a command does: the grammar's leaves. The session executes these.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Enable,
    Disable,
    Exit,
    End,
    ConfigureTerminal,
    WriteMemory,
    SkipPageDisplay,
    PageDisplay,
    TerminalLength,
    ShowServerReal,
    ShowServerVirtual,
    ShowServerBind,
    ShowServerSessions,
    ShowServerTraffic,
    ShowAcmLatency,
    ShowRunningConfig,
    ShowVersion,
    ShowStatistics,
    ShowTelnet,
    ShowHistory,
    Hostname,
    NoHostname,
    ServerReal,
    NoServerReal,
    ServerVirtual,
    NoServerVirtual,
    ForceDelete,
    NoForceDelete,
    ServerPredictor,
    NoServerPredictor,
    RsPort,
    RsNoPort,
    RsPortUrl,
    RsNoPortUrl,
    RsPortKeepalive,
    RsNoPortKeepalive,
    RsPortStatusCode,
    RsNoPortStatusCode,
    RsPortL4CheckOnly,
    RsNoPortL4CheckOnly,
    RsPortDisable,
    RsNoPortDisable,
    Weight,
    NoWeight,
    MaxConn,
    NoMaxConn,
    SourceNat,
    NoSourceNat,
    VsPort,
    VsNoPort,
    VsPortDisable,
    VsNoPortDisable,
    VsDropFraction,
    VsNoDropFraction,
    Bind,
    NoBind,
    Predictor,
    NoPredictor,
}

/// Well-known port names, as the device spells them. `http` is also the default port name
/// shown for 80 in the running-config.
pub const PORT_NAMES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("telnet", 23),
    ("smtp", 25),
    ("dns", 53),
    ("http", 80),
    ("pop3", 110),
    ("nntp", 119),
    ("imap4", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("ssl", 443),
    ("https", 443),
];

/// The name the running-config uses for a port number.
pub fn port_name(port: u16) -> String {
    PORT_NAMES.iter().find(|(_, p)| *p == port).map_or_else(|| port.to_string(), |(n, _)| (*n).to_string())
}

/// Predictor method names accepted by `predictor` and `server predictor`.
pub const PREDICTORS: &[(&str, &str)] = &[
    ("maglev-hash", "Consistent Maglev hash of the client flow (default)"),
    ("round-robin", "Each real server in turn"),
    ("weighted", "Weighted by the real servers' weights"),
    ("weighted-round-robin", "Round robin in proportion to weight"),
    ("least-conn", "Fewest active connections"),
];

/// Typed argument tokens usable in specs: token → (kind, how `?` shows it, help).
pub fn arg_kind(token: &str) -> Option<(Arg, &'static str, &'static str)> {
    Some(match token {
        "RS" => (Arg::Name, "NAME", "Real server name"),
        "VS" => (Arg::Name, "NAME", "Virtual server name"),
        "HOST" => (Arg::Name, "NAME", "Host name of this system"),
        "IP" => (Arg::Ip, "A.B.C.D", "Real server IP address"),
        "VIP" => (Arg::Ip, "A.B.C.D", "Virtual IP address"),
        "PORT" => (Arg::Port, "<1-65535>", "Port number, or a well-known port name"),
        "WEIGHT" => (Arg::Num(0, acm::MAX_WEIGHT), "<0-65000>", "Weight"),
        "MAXCONN" => (Arg::Num(1, 2_000_000), "<1-2000000>", "Maximum connections"),
        "CODE" => (Arg::Num(100, 599), "<100-599>", "HTTP status code"),
        "LINES" => (Arg::Num(0, 512), "<0-512>", "Lines per page (0: no paging)"),
        "URL" => (Arg::Str, "\"STRING\"", "Health check request, e.g. \"HEAD /\""),
        "FRAC" => (Arg::Fraction, "<0.0-1.0>", "Fraction of new connections dropped"),
        _ => return None,
    })
}

/// Help text of a keyword.
pub(super) fn kw_help(kw: &str) -> &'static str {
    match kw {
        "enable" => "Enter privileged mode",
        "disable" => "Leave privileged mode",
        "exit" => "Exit current level",
        "quit" => "End the session",
        "end" => "End configuration mode",
        "configure" => "Enter configuration mode",
        "terminal" => "Terminal settings / configure from the terminal",
        "length" => "Lines per page",
        "write" => "Write the running configuration",
        "memory" => "Save to the startup-config",
        "skip-page-display" => "Disable page display mode",
        "page-display" => "Enable page display mode",
        "show" => "Display system information",
        "server" => "Server load balancing",
        "real" | "real-name" => "Real server",
        "virtual" | "virtual-name-or-ip" => "Virtual server",
        "bind" => "Bind a virtual port to real server ports",
        "sessions" => "Session (flow) table",
        "traffic" => "Traffic counters",
        "acm" => "Active Connection Management",
        "latency" => "Configuration latency histograms",
        "running-config" => "Current configuration",
        "version" => "Software version",
        "statistics" => "Statistics",
        "history" => "Command history",
        "telnet" => "Telnet server: sessions, logins and bad input",
        "hostname" => "Set the system name",
        "no" => "Negate a command or set its defaults",
        "force-delete" => "Removals end existing connections at once",
        "predictor" => "Load balancing method",
        "port" => "Application port",
        "url" => "URL for the HTTP health check",
        "keepalive" => "Periodic layer 7 health checks",
        "status-code" => "Healthy HTTP status code range",
        "l4-check-only" => "Layer 4 health check only",
        "weight" => "Server weight",
        "max-conn" => "Maximum connections",
        "source-nat" => "Translate the client source address",
        "drop-fraction" => "Drop a fraction of new connections (ACM Drop)",
        _ => PREDICTORS.iter().find(|(n, _)| *n == kw).map_or("", |(_, h)| *h),
    }
}

const SHOW: &[(&str, Cmd)] = &[
    ("show server real", Cmd::ShowServerReal),
    ("show server real RS", Cmd::ShowServerReal),
    ("show server virtual", Cmd::ShowServerVirtual),
    ("show server virtual VS", Cmd::ShowServerVirtual),
    ("show server bind", Cmd::ShowServerBind),
    ("show server sessions", Cmd::ShowServerSessions),
    ("show server traffic", Cmd::ShowServerTraffic),
    ("show acm latency", Cmd::ShowAcmLatency),
    ("show version", Cmd::ShowVersion),
    ("show statistics", Cmd::ShowStatistics),
    ("show telnet", Cmd::ShowTelnet),
    ("show history", Cmd::ShowHistory),
];

const PAGING: &[(&str, Cmd)] = &[
    ("skip-page-display", Cmd::SkipPageDisplay),
    ("page-display", Cmd::PageDisplay),
    ("terminal length LINES", Cmd::TerminalLength),
];

const PRIV_EXTRA: &[(&str, Cmd)] =
    &[("show running-config", Cmd::ShowRunningConfig), ("write memory", Cmd::WriteMemory)];

const USER: &[(&str, Cmd)] = &[("enable", Cmd::Enable), ("exit", Cmd::Exit), ("quit", Cmd::Exit)];

const PRIV: &[(&str, Cmd)] = &[
    ("configure terminal", Cmd::ConfigureTerminal),
    ("disable", Cmd::Disable),
    ("exit", Cmd::Exit),
    ("quit", Cmd::Exit),
];

const CONFIG: &[(&str, Cmd)] = &[
    ("end", Cmd::End),
    ("exit", Cmd::Exit),
    ("hostname HOST", Cmd::Hostname),
    ("no hostname", Cmd::NoHostname),
    ("server real RS IP", Cmd::ServerReal),
    ("server real-name RS IP", Cmd::ServerReal),
    ("no server real RS", Cmd::NoServerReal),
    ("no server real-name RS", Cmd::NoServerReal),
    ("server virtual VS VIP", Cmd::ServerVirtual),
    ("server virtual-name-or-ip VS VIP", Cmd::ServerVirtual),
    ("no server virtual VS", Cmd::NoServerVirtual),
    ("no server virtual-name-or-ip VS", Cmd::NoServerVirtual),
    ("server force-delete", Cmd::ForceDelete),
    ("no server force-delete", Cmd::NoForceDelete),
    ("no server predictor", Cmd::NoServerPredictor),
    ("server predictor maglev-hash", Cmd::ServerPredictor),
    ("server predictor round-robin", Cmd::ServerPredictor),
    ("server predictor weighted", Cmd::ServerPredictor),
    ("server predictor weighted-round-robin", Cmd::ServerPredictor),
    ("server predictor least-conn", Cmd::ServerPredictor),
];

const REAL: &[(&str, Cmd)] = &[
    ("end", Cmd::End),
    ("exit", Cmd::Exit),
    ("port PORT", Cmd::RsPort),
    ("no port PORT", Cmd::RsNoPort),
    ("port PORT url URL", Cmd::RsPortUrl),
    ("no port PORT url", Cmd::RsNoPortUrl),
    ("no port PORT url URL", Cmd::RsNoPortUrl),
    ("port PORT keepalive", Cmd::RsPortKeepalive),
    ("no port PORT keepalive", Cmd::RsNoPortKeepalive),
    ("port PORT status-code CODE CODE", Cmd::RsPortStatusCode),
    ("no port PORT status-code", Cmd::RsNoPortStatusCode),
    ("port PORT l4-check-only", Cmd::RsPortL4CheckOnly),
    ("no port PORT l4-check-only", Cmd::RsNoPortL4CheckOnly),
    ("port PORT disable", Cmd::RsPortDisable),
    ("no port PORT disable", Cmd::RsNoPortDisable),
    ("weight WEIGHT", Cmd::Weight),
    ("no weight", Cmd::NoWeight),
    ("max-conn MAXCONN", Cmd::MaxConn),
    ("no max-conn", Cmd::NoMaxConn),
    ("source-nat", Cmd::SourceNat),
    ("no source-nat", Cmd::NoSourceNat),
];

const VIRTUAL: &[(&str, Cmd)] = &[
    ("end", Cmd::End),
    ("exit", Cmd::Exit),
    ("port PORT", Cmd::VsPort),
    ("no port PORT", Cmd::VsNoPort),
    ("port PORT disable", Cmd::VsPortDisable),
    ("no port PORT disable", Cmd::VsNoPortDisable),
    ("port PORT drop-fraction FRAC", Cmd::VsDropFraction),
    ("no port PORT drop-fraction", Cmd::VsNoDropFraction),
    ("bind PORT RS PORT +2", Cmd::Bind),
    ("no bind PORT RS PORT +2", Cmd::NoBind),
    ("no predictor", Cmd::NoPredictor),
    ("predictor maglev-hash", Cmd::Predictor),
    ("predictor round-robin", Cmd::Predictor),
    ("predictor weighted", Cmd::Predictor),
    ("predictor weighted-round-robin", Cmd::Predictor),
    ("predictor least-conn", Cmd::Predictor),
];

impl Default for Grammar {
    fn default() -> Self {
        Self::new()
    }
}

impl Grammar {
    /// The ServerIron command set.
    pub fn new() -> Grammar {
        let mut g = Grammar::empty();
        let privileged = [ModeKind::Privileged, ModeKind::Config];
        for (spec, cmd) in USER.iter().chain(SHOW).chain(PAGING) {
            g.add(ModeKind::User, spec, *cmd);
        }
        for m in privileged {
            for (spec, cmd) in SHOW.iter().chain(PAGING).chain(PRIV_EXTRA) {
                g.add(m, spec, *cmd);
            }
        }
        for (spec, cmd) in PRIV {
            g.add(ModeKind::Privileged, spec, *cmd);
        }
        for (spec, cmd) in CONFIG {
            g.add(ModeKind::Config, spec, *cmd);
        }
        for (spec, cmd) in REAL {
            g.add(ModeKind::RealServer, spec, *cmd);
        }
        for (spec, cmd) in VIRTUAL {
            g.add(ModeKind::VirtualServer, spec, *cmd);
        }
        g
    }
}
