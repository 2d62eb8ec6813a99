//! The declarative command grammar: one table drives parsing, unique-prefix abbreviation,
//! `?` help, Tab completion and error messages.
//!
//! Every command is one spec line such as `"server real RS IP"`: lower-case words are keywords,
//! upper-case words are typed arguments (see [`arg_kind`]), and a trailing `+N` lets the last `N`
//! tokens repeat (`bind PORT RS PORT +2` accepts several real-server/port pairs on one line). Specs are merged into
//! a token tree per [`ModeKind`]; walking the tree matches words in this order:
//!
//! 1. a keyword typed in full;
//! 2. a unique keyword prefix (when one candidate is a prefix of every other, as `real` of
//!    `real-name`, it wins; otherwise the input is ambiguous);
//! 3. a typed argument that accepts the word (address, number in range, port, fraction, string);
//! 4. a free-form name.

use std::net::Ipv4Addr;

use crate::session::ModeKind;

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

/// A typed argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg {
    /// A keyword.
    Kw(&'static str),
    /// A free-form name (letters, digits, `-_.`), up to 32 characters.
    Name,
    /// An IPv4 address.
    Ip,
    /// An unsigned number in a range.
    Num(u32, u32),
    /// A port: a well-known name ([`PORT_NAMES`]) or 1-65535.
    Port,
    /// A string, quoted (`"HEAD /"`) or one word.
    Str,
    /// A fraction 0.0-1.0.
    Fraction,
}

/// A matched token's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A keyword (its full spelling).
    Kw(&'static str),
    /// A name.
    Name(String),
    /// An address.
    Ip(Ipv4Addr),
    /// A number.
    Num(u32),
    /// A port.
    Port(u16),
    /// A string (quotes removed).
    Str(String),
    /// A fraction.
    Fraction(f64),
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
    PORT_NAMES
        .iter()
        .find(|(_, p)| *p == port)
        .map_or_else(|| port.to_string(), |(n, _)| (*n).to_string())
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
fn kw_help(kw: &str) -> &'static str {
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
        _ => PREDICTORS
            .iter()
            .find(|(n, _)| *n == kw)
            .map_or("", |(_, h)| *h),
    }
}

#[derive(Debug, Clone)]
struct Node {
    arg: Arg,
    shown: &'static str,
    help: &'static str,
    next: Vec<usize>,
    cmd: Option<Cmd>,
}

/// Why a line did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A word matched nothing; `rest` is the input from that word on.
    Invalid {
        /// Input from the bad word to the end of the line.
        rest: String,
        /// Index of the bad word.
        word: usize,
    },
    /// A word matched several keywords.
    Ambiguous {
        /// Input from the ambiguous word to the end of the line.
        rest: String,
        /// Index of the ambiguous word.
        word: usize,
    },
    /// The line stops before a command is complete.
    Incomplete,
}

impl ParseError {
    fn depth(&self) -> usize {
        match self {
            ParseError::Invalid { word, .. } | ParseError::Ambiguous { word, .. } => *word,
            ParseError::Incomplete => usize::MAX,
        }
    }

    /// The device's wording, one line per entry.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ParseError::Invalid { rest, .. } => {
                vec![format!("Invalid input -> {rest}"), "Type ? for a list".into()]
            }
            ParseError::Ambiguous { rest, .. } => {
                vec![format!("Ambiguous input -> {rest}"), "Type ? for a list".into()]
            }
            ParseError::Incomplete => vec!["Incomplete command.".into()],
        }
    }
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// What to do.
    pub cmd: Cmd,
    /// Every matched word's value, in order (keywords included).
    pub values: Vec<Value>,
    /// The grammar the line matched in (a sub-mode line may match the config grammar).
    pub mode: ModeKind,
}

impl Parsed {
    /// Whether keyword `kw` was matched.
    pub fn has(&self, kw: &str) -> bool {
        self.values.iter().any(|v| matches!(v, Value::Kw(k) if *k == kw))
    }
    /// The `i`-th name.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.values
            .iter()
            .filter_map(|v| match v {
                Value::Name(s) => Some(s.as_str()),
                _ => None,
            })
            .nth(i)
    }
    /// The first address.
    pub fn ip(&self) -> Option<Ipv4Addr> {
        self.values.iter().find_map(|v| match v {
            Value::Ip(a) => Some(*a),
            _ => None,
        })
    }
    /// Every number, in order.
    pub fn nums(&self) -> Vec<u32> {
        self.values
            .iter()
            .filter_map(|v| match v {
                Value::Num(n) => Some(*n),
                _ => None,
            })
            .collect()
    }
    /// Every port, in order.
    pub fn ports(&self) -> Vec<u16> {
        self.values
            .iter()
            .filter_map(|v| match v {
                Value::Port(p) => Some(*p),
                _ => None,
            })
            .collect()
    }
    /// The first string.
    pub fn string(&self) -> Option<&str> {
        self.values.iter().find_map(|v| match v {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
    }
    /// The first fraction.
    pub fn fraction(&self) -> Option<f64> {
        self.values.iter().find_map(|v| match v {
            Value::Fraction(f) => Some(*f),
            _ => None,
        })
    }
    /// The keyword matched at word `i`, if that word was a keyword.
    pub fn kw_at(&self, i: usize) -> Option<&'static str> {
        match self.values.get(i) {
            Some(Value::Kw(k)) => Some(k),
            _ => None,
        }
    }
}

/// One word of a line, with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word (quotes removed).
    pub text: String,
    /// Byte offset in the line.
    pub start: usize,
    /// Whether it was quoted.
    pub quoted: bool,
    /// A quote was opened and never closed.
    pub unterminated: bool,
}

/// Splits a line into words; double quotes group (`"HEAD /"`). An unterminated quote runs to the
/// end of the line.
pub fn tokenize(line: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            for (_, c) in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                text.push(c);
            }
            words.push(Word { text, start: i, quoted: true, unterminated: !closed });
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                text.push(c);
                chars.next();
            }
            words.push(Word { text, start: i, quoted: false, unterminated: false });
        }
    }
    words
}

/// The command tree of every mode.
#[derive(Debug, Clone)]
pub struct Grammar {
    nodes: Vec<Node>,
    roots: [usize; 5],
}

fn mode_index(m: ModeKind) -> usize {
    match m {
        ModeKind::User => 0,
        ModeKind::Privileged => 1,
        ModeKind::Config => 2,
        ModeKind::RealServer => 3,
        ModeKind::VirtualServer => 4,
    }
}

/// What matching one word against a node's children found.
enum Step {
    Node(usize, Value),
    Ambiguous,
    None,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Grammar {
    fn empty() -> Grammar {
        let mut g = Grammar { nodes: Vec::new(), roots: [0; 5] };
        for r in 0..5 {
            g.roots[r] = g.nodes.len();
            g.nodes.push(Node { arg: Arg::Kw(""), shown: "", help: "", next: Vec::new(), cmd: None });
        }
        g
    }

    /// Adds one spec to a mode. Panics on a malformed spec: specs are compile-time constants
    /// checked by the tests, never input.
    fn add(&mut self, mode: ModeKind, spec: &'static str, cmd: Cmd) {
        let mut cur = self.roots[mode_index(mode)];
        let mut path = Vec::new();
        let mut prev: Option<&str> = None;
        for tok in spec.split_whitespace() {
            if let Some(n) = tok.strip_prefix('+') {
                let n: usize = n.parse().expect("repeat count");
                let first = path[path.len() - n];
                if !self.nodes[cur].next.contains(&first) {
                    self.nodes[cur].next.push(first);
                }
                continue;
            }
            let (arg, shown, help) = match arg_kind(tok) {
                Some(a) => a,
                None if tok == "disable" && prev == Some("PORT") => (Arg::Kw(tok), tok, "Disable the port"),
                None => (Arg::Kw(tok), tok, kw_help(tok)),
            };
            prev = Some(tok);
            let existing = self.nodes[cur]
                .next
                .iter()
                .copied()
                .find(|&n| self.nodes[n].arg == arg && self.nodes[n].help == help);
            cur = match existing {
                Some(n) => n,
                None => {
                    let n = self.nodes.len();
                    self.nodes.push(Node { arg, shown, help, next: Vec::new(), cmd: None });
                    self.nodes[cur].next.push(n);
                    n
                }
            };
            path.push(cur);
        }
        assert!(self.nodes[cur].cmd.is_none() || self.nodes[cur].cmd == Some(cmd), "{spec}");
        self.nodes[cur].cmd = Some(cmd);
    }

    fn step(&self, node: usize, word: &Word) -> Step {
        if word.unterminated {
            return Step::None;
        }
        let next = &self.nodes[node].next;
        let w = word.text.to_ascii_lowercase();
        if !word.quoted {
            // 1. exact keyword
            for &n in next {
                if let Arg::Kw(k) = self.nodes[n].arg {
                    if k == w {
                        return Step::Node(n, Value::Kw(k));
                    }
                }
            }
            // 2. keyword prefix
            let prefixed: Vec<(usize, &'static str)> = next
                .iter()
                .filter_map(|&n| match self.nodes[n].arg {
                    Arg::Kw(k) if !w.is_empty() && k.starts_with(&w) => Some((n, k)),
                    _ => None,
                })
                .collect();
            if let Some(&(n, k)) = prefixed
                .iter()
                .find(|(_, k)| prefixed.iter().all(|(_, o)| o.starts_with(k)))
            {
                return Step::Node(n, Value::Kw(k));
            }
            if prefixed.len() > 1 {
                return Step::Ambiguous;
            }
        }
        // 3. typed arguments
        for &n in next {
            let v = match self.nodes[n].arg {
                Arg::Ip if !word.quoted => w.parse::<Ipv4Addr>().ok().map(Value::Ip),
                Arg::Num(lo, hi) if !word.quoted => {
                    w.parse::<u32>().ok().filter(|x| (lo..=hi).contains(x)).map(Value::Num)
                }
                Arg::Port if !word.quoted => parse_port(&w).map(Value::Port),
                Arg::Fraction if !word.quoted => w
                    .parse::<f64>()
                    .ok()
                    .filter(|f| (0.0..=1.0).contains(f) && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
                    .map(Value::Fraction),
                Arg::Str => Some(Value::Str(word.text.clone())),
                _ => None,
            };
            if let Some(v) = v {
                return Step::Node(n, v);
            }
        }
        // 4. names
        for &n in next {
            if self.nodes[n].arg == Arg::Name && !word.quoted && valid_name(&word.text) {
                return Step::Node(n, Value::Name(word.text.clone()));
            }
        }
        Step::None
    }

    /// Walks `words` from a mode's root.
    fn walk(&self, mode: ModeKind, line: &str, words: &[Word]) -> Result<(usize, Vec<Value>), ParseError> {
        let mut cur = self.roots[mode_index(mode)];
        let mut values = Vec::new();
        for (i, w) in words.iter().enumerate() {
            match self.step(cur, w) {
                Step::Node(n, v) => {
                    cur = n;
                    values.push(v);
                }
                Step::Ambiguous => {
                    return Err(ParseError::Ambiguous { rest: line[w.start..].trim_end().into(), word: i })
                }
                Step::None => {
                    return Err(ParseError::Invalid { rest: line[w.start..].trim_end().into(), word: i })
                }
            }
        }
        Ok((cur, values))
    }

    /// The grammars tried for a mode: its own, then (in a sub-mode) the config grammar.
    fn modes(mode: ModeKind) -> &'static [ModeKind] {
        match mode {
            ModeKind::RealServer => &[ModeKind::RealServer, ModeKind::Config],
            ModeKind::VirtualServer => &[ModeKind::VirtualServer, ModeKind::Config],
            ModeKind::User => &[ModeKind::User],
            ModeKind::Privileged => &[ModeKind::Privileged],
            ModeKind::Config => &[ModeKind::Config],
        }
    }

    /// Parses a non-empty line. `Ok(None)` for a blank line.
    pub fn parse(&self, mode: ModeKind, line: &str) -> Result<Option<Parsed>, ParseError> {
        let words = tokenize(line);
        if words.is_empty() {
            return Ok(None);
        }
        let mut best: Option<ParseError> = None;
        for &m in Self::modes(mode) {
            let err = match self.walk(m, line, &words) {
                Ok((node, values)) => match self.nodes[node].cmd {
                    Some(cmd) => return Ok(Some(Parsed { cmd, values, mode: m })),
                    None => ParseError::Incomplete,
                },
                Err(e) => e,
            };
            if !matches!(&best, Some(b) if err.depth() <= b.depth()) {
                best = Some(err);
            }
        }
        Err(best.unwrap_or(ParseError::Incomplete))
    }

    /// `?` help for the text before the `?`: what may come next (`line` ends in a space or is
    /// empty), or the keywords the last partial word may start. The lines are ready to print.
    pub fn help(&self, mode: ModeKind, line: &str) -> Vec<String> {
        let words = tokenize(line);
        let partial = !line.is_empty() && !line.ends_with(char::is_whitespace);
        let (done, last) = match (partial, words.split_last()) {
            (true, Some((last, done))) => (done, Some(last)),
            _ => (&words[..], None),
        };
        let mut entries: Vec<(String, &'static str)> = Vec::new();
        let mut cr = false;
        let mut err: Option<ParseError> = None;
        let mut any = false;
        for &m in Self::modes(mode) {
            let node = match self.walk(m, line, done) {
                Ok((n, _)) => n,
                Err(e) => {
                    if !matches!(&err, Some(b) if e.depth() <= b.depth()) {
                        err = Some(e);
                    }
                    continue;
                }
            };
            any = true;
            match last {
                None => {
                    cr |= self.nodes[node].cmd.is_some();
                    for &n in &self.nodes[node].next {
                        let nd = &self.nodes[n];
                        if nd.arg == Arg::Port {
                            for (p, _) in PORT_NAMES {
                                push_entry(&mut entries, (*p).to_string(), "Well-known port");
                            }
                        }
                        push_entry(&mut entries, nd.shown.to_string(), nd.help);
                    }
                }
                Some(w) => {
                    let lw = w.text.to_ascii_lowercase();
                    for &n in &self.nodes[node].next {
                        let nd = &self.nodes[n];
                        match nd.arg {
                            Arg::Kw(k) if k.starts_with(&lw) => push_entry(&mut entries, k.into(), nd.help),
                            Arg::Port => {
                                for (p, _) in PORT_NAMES.iter().filter(|(p, _)| p.starts_with(&lw)) {
                                    push_entry(&mut entries, (*p).to_string(), "Well-known port");
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        if !any {
            return err.map_or_else(Vec::new, |e| e.lines());
        }
        if entries.is_empty() && !cr {
            return ParseError::Invalid { rest: line[last.map_or(line.len(), |w| w.start)..].trim_end().into(), word: 0 }
                .lines();
        }
        let width = entries.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(20) + 2;
        let mut out: Vec<String> = entries
            .into_iter()
            .map(|(n, h)| format!("  {n:<width$}{h}").trim_end().to_string())
            .collect();
        if cr {
            out.push("  <cr>".into());
        }
        out
    }

    /// Tab completion of the last partial word: the text to append, or `None` (beep) when there
    /// is no unique completion. A unique keyword gets a trailing space.
    pub fn complete(&self, mode: ModeKind, line: &str) -> Option<String> {
        if line.is_empty() || line.ends_with(char::is_whitespace) {
            return None;
        }
        let words = tokenize(line);
        let (last, done) = words.split_last()?;
        if last.quoted {
            return None;
        }
        let lw = last.text.to_ascii_lowercase();
        let mut cands: Vec<&'static str> = Vec::new();
        for &m in Self::modes(mode) {
            let Ok((node, _)) = self.walk(m, line, done) else { continue };
            for &n in &self.nodes[node].next {
                match self.nodes[n].arg {
                    Arg::Kw(k) if k.starts_with(&lw) => cands.push(k),
                    Arg::Port => cands.extend(PORT_NAMES.iter().map(|(p, _)| *p).filter(|p| p.starts_with(&lw))),
                    _ => {}
                }
            }
        }
        cands.sort_unstable();
        cands.dedup();
        let pick = cands.iter().find(|k| cands.iter().all(|o| o.starts_with(**k)));
        match pick {
            Some(k) if cands.len() == 1 || **k == lw => Some(format!("{} ", &k[lw.len()..])),
            _ => {
                // Longest common prefix beyond what is typed.
                let first = cands.first()?;
                let mut n = first.len();
                for c in &cands[1..] {
                    n = n.min(first.bytes().zip(c.bytes()).take_while(|(a, b)| a == b).count());
                }
                (n > lw.len()).then(|| first[lw.len()..n].to_string())
            }
        }
    }
}

fn push_entry(entries: &mut Vec<(String, &'static str)>, name: String, help: &'static str) {
    if !entries.iter().any(|(n, _)| *n == name) {
        entries.push((name, help));
    }
}

/// A port name (unique prefix of a well-known name) or a number 1-65535.
pub fn parse_port(w: &str) -> Option<u16> {
    if let Ok(n) = w.parse::<u16>() {
        return (n != 0).then_some(n);
    }
    if w.is_empty() {
        return None;
    }
    let c: Vec<&(&str, u16)> = PORT_NAMES.iter().filter(|(n, _)| n.starts_with(w)).collect();
    c.iter()
        .find(|(n, _)| c.iter().all(|(o, _)| o.starts_with(n)))
        .map(|(_, p)| *p)
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
    ("show history", Cmd::ShowHistory),
];

const PAGING: &[(&str, Cmd)] = &[
    ("skip-page-display", Cmd::SkipPageDisplay),
    ("page-display", Cmd::PageDisplay),
    ("terminal length LINES", Cmd::TerminalLength),
];

const PRIV_EXTRA: &[(&str, Cmd)] = &[
    ("show running-config", Cmd::ShowRunningConfig),
    ("write memory", Cmd::WriteMemory),
];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn g() -> Grammar {
        Grammar::new()
    }

    fn cmd(mode: ModeKind, line: &str) -> Cmd {
        g().parse(mode, line).unwrap_or_else(|e| panic!("{line}: {e:?}")).unwrap().cmd
    }

    #[test]
    fn abbreviations() {
        assert_eq!(cmd(ModeKind::Privileged, "show server bind"), Cmd::ShowServerBind);
        assert_eq!(cmd(ModeKind::Privileged, "sh ser bi"), Cmd::ShowServerBind);
        assert_eq!(cmd(ModeKind::Privileged, "SH SER BI"), Cmd::ShowServerBind);
        assert_eq!(cmd(ModeKind::Privileged, "conf t"), Cmd::ConfigureTerminal);
        assert_eq!(cmd(ModeKind::Privileged, "wr m"), Cmd::WriteMemory);
        assert_eq!(cmd(ModeKind::Config, "ser r rs1 10.0.0.1"), Cmd::ServerReal, "real wins over real-name");
        assert_eq!(cmd(ModeKind::Config, "ser real-n rs1 10.0.0.1"), Cmd::ServerReal);
        assert_eq!(cmd(ModeKind::VirtualServer, "pred w"), Cmd::Predictor, "weighted is a prefix of weighted-round-robin");
        assert_eq!(cmd(ModeKind::RealServer, "po ht keep"), Cmd::RsPortKeepalive);
        assert_eq!(cmd(ModeKind::RealServer, "so"), Cmd::SourceNat);
    }

    #[test]
    fn errors() {
        let e = g().parse(ModeKind::Privileged, "show servr bind").unwrap_err();
        assert_eq!(e.lines(), ["Invalid input -> servr bind", "Type ? for a list"]);
        let e = g().parse(ModeKind::Privileged, "s").unwrap_err();
        assert_eq!(e.lines()[0], "Ambiguous input -> s");
        let e = g().parse(ModeKind::Privileged, "show server").unwrap_err();
        assert_eq!(e, ParseError::Incomplete);
        // In a sub-mode the deeper of the two errors is reported.
        let e = g().parse(ModeKind::RealServer, "server real rs1 bad").unwrap_err();
        assert_eq!(e.lines()[0], "Invalid input -> bad");
        assert_eq!(g().parse(ModeKind::User, "   "), Ok(None));
    }

    #[test]
    fn values() {
        let p = g().parse(ModeKind::VirtualServer, "bind http rs1 8080 rs2 ssl").unwrap().unwrap();
        assert_eq!(p.ports(), [80, 8080, 443]);
        assert_eq!(p.name(0), Some("rs1"));
        assert_eq!(p.name(1), Some("rs2"));
        let p = g().parse(ModeKind::RealServer, "port http url \"HEAD /index.html\"").unwrap().unwrap();
        assert_eq!(p.string(), Some("HEAD /index.html"));
        let p = g().parse(ModeKind::VirtualServer, "port 8080 drop-fraction .25").unwrap().unwrap();
        assert_eq!(p.fraction(), Some(0.25));
        assert!(g().parse(ModeKind::VirtualServer, "port 8080 drop-fraction 1e-3").is_err());
        assert!(g().parse(ModeKind::VirtualServer, "port 8080 drop-fraction NaN").is_err());
        assert!(g().parse(ModeKind::Config, "server real rs/1 10.0.0.1").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("http"), Some(80));
        assert_eq!(parse_port("h"), Some(80), "http is a prefix of https");
        assert_eq!(parse_port("https"), Some(443));
        assert_eq!(parse_port("s"), None, "smtp/snmp/ssl");
        assert_eq!(parse_port("0"), None);
        assert_eq!(parse_port("65535"), Some(65535));
        assert_eq!(port_name(80), "http");
        assert_eq!(port_name(443), "ssl");
        assert_eq!(port_name(8080), "8080");
    }

    #[test]
    fn tokenizer() {
        let w = tokenize("  port http url \"HEAD /\"  x");
        let t: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(t, ["port", "http", "url", "HEAD /", "x"]);
        assert!(tokenize("url \"open").last().unwrap().unterminated);
    }

    #[test]
    fn completion() {
        let g = g();
        assert_eq!(g.complete(ModeKind::Privileged, "sh"), Some("ow ".into()));
        assert_eq!(g.complete(ModeKind::Privileged, "show ser"), Some("ver ".into()));
        assert_eq!(g.complete(ModeKind::Privileged, "show server b"), Some("ind ".into()));
        assert_eq!(g.complete(ModeKind::Privileged, "s"), None);
        assert_eq!(g.complete(ModeKind::Privileged, "show "), None);
        assert_eq!(g.complete(ModeKind::Config, "server real-"), Some("name ".into()));
        assert_eq!(g.complete(ModeKind::Config, "server vir"), Some("tual".into()), "common prefix of virtual*");
        assert_eq!(g.complete(ModeKind::RealServer, "port ht"), Some("tp".into()));
        assert_eq!(g.complete(ModeKind::RealServer, "no server re"), Some("al".into()), "falls back to config");
    }

    #[test]
    fn help() {
        let g = g();
        let h = g.help(ModeKind::Privileged, "show server real ");
        assert_eq!(h, ["  NAME                  Real server name", "  <cr>"]);
        let h = g.help(ModeKind::Privileged, "sh");
        assert_eq!(h.len(), 1);
        assert!(h[0].starts_with("  show"));
        let h = g.help(ModeKind::Privileged, "bogus ");
        assert_eq!(h[0], "Invalid input -> bogus");
        let h = g.help(ModeKind::Privileged, "zz");
        assert_eq!(h[0], "Invalid input -> zz");
    }
}
