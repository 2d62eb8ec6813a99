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

use crate::mode::ModeKind;

mod table;
#[cfg(test)]
mod tests;

use table::kw_help;
pub use table::{arg_kind, port_name, Cmd, PORT_NAMES, PREDICTORS};

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
    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A string argument (a health check's request line): printable, and no `"`, which the
/// running-config could not quote (found by the `startup_config` fuzz target: `url E"` was
/// stored, written as `"E""` and refused at the next boot). Control characters would also
/// end up inside the HTTP request the health checker sends.
fn valid_string(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(|c| c == '"' || c.is_control())
}

impl Grammar {
    pub(super) fn empty() -> Grammar {
        let mut g = Grammar { nodes: Vec::new(), roots: [0; 5] };
        for r in 0..5 {
            g.roots[r] = g.nodes.len();
            g.nodes.push(Node { arg: Arg::Kw(""), shown: "", help: "", next: Vec::new(), cmd: None });
        }
        g
    }

    /// Adds one spec to a mode. Panics on a malformed spec: specs are compile-time constants
    /// checked by the tests, never input.
    pub(super) fn add(&mut self, mode: ModeKind, spec: &'static str, cmd: Cmd) {
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
            let existing =
                self.nodes[cur].next.iter().copied().find(|&n| self.nodes[n].arg == arg && self.nodes[n].help == help);
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
            if let Some(&(n, k)) = prefixed.iter().find(|(_, k)| prefixed.iter().all(|(_, o)| o.starts_with(k))) {
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
                Arg::Str if valid_string(&word.text) => Some(Value::Str(word.text.clone())),
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
                Step::None => return Err(ParseError::Invalid { rest: line[w.start..].trim_end().into(), word: i }),
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
            return ParseError::Invalid {
                rest: line[last.map_or(line.len(), |w| w.start)..].trim_end().into(),
                word: 0,
            }
            .lines();
        }
        let width = entries.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(20) + 2;
        let mut out: Vec<String> =
            entries.into_iter().map(|(n, h)| format!("  {n:<width$}{h}").trim_end().to_string()).collect();
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
    c.iter().find(|(n, _)| c.iter().all(|(o, _)| o.starts_with(n))).map(|(_, p)| *p)
}
