//! Golden transcript tests of the sans-IO language.
//!
//! Each `tests/golden/*.txt` is a transcript: `> LINE` is typed at the session; the lines after
//! it are what the CLI printed, then the prompt shown next. Primitives the command sent to the
//! (fake) switch appear as `%% PRIMITIVE` lines. A line ending in `?` asks for help instead of
//! executing (the prompt is then reprinted with the typed text). `>! finish-drains` ends every
//! drain on the fake switch. Lines starting with `## ` are comments.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the files from the actual output (then review the diff).

use std::path::Path;

use acm::Primitive;
use cli::auth::{hash_password_with, Cost};
use cli::backend::{LatencyRow, SessionRow, TrafficCounters};
use cli::{FakeBackend, Session, SessionOptions, SlbConfig};

fn fake() -> FakeBackend {
    FakeBackend {
        traffic: TrafficCounters {
            client_to_server: 1200,
            server_to_client: 1100,
            drops: 3,
            aged: 40,
            fin_or_rst: 57,
            exceed_drop: 2,
            ..Default::default()
        },
        sessions: vec![SessionRow {
            client: "10.0.0.2".parse().unwrap(),
            client_port: 40112,
            vip: "10.0.0.100".parse().unwrap(),
            vport: 80,
            real: "10.0.1.14".parse().unwrap(),
            rport: 80,
            proto: acm::Proto::Tcp,
            state: "EST".into(),
            idle_s: 12,
            expires_s: 288,
        }],
        latency: vec![LatencyRow {
            primitive: "add".into(),
            switch: "local".into(),
            count: 12,
            p50_us: 85,
            p90_us: 120,
            p99_us: 300,
            max_us: 410,
        }],
        ..Default::default()
    }
}

fn prim(p: &Primitive) -> String {
    match p {
        Primitive::Add { key, params } => {
            format!("%% add {key} weight={} source-nat={}", params.weight, params.source_nat)
        }
        Primitive::Remove { key } => format!("%% remove {key}"),
        Primitive::ForceRemove { key } => format!("%% force-remove {key}"),
        Primitive::Drop { service, fraction } => format!("%% drop {service} {fraction}"),
        Primitive::List => "%% list".into(),
    }
}

fn new_session() -> Session {
    let secret = hash_password_with("acm-lab", b"golden-salt", Cost::TEST).unwrap();
    Session::new(SessionOptions { enable_secret: Some(secret), privileged: false })
}

/// Runs a transcript's inputs and renders the actual transcript.
fn run(text: &str) -> String {
    let mut cfg = SlbConfig::default();
    let mut backend = fake();
    let mut s = new_session();
    let mut out = String::new();
    let push = |out: &mut String, l: &str| {
        out.push_str(l);
        out.push('\n');
    };
    push(&mut out, &s.prompt(&cfg));
    for line in text.lines() {
        if line.starts_with("## ") || line == "##" {
            push(&mut out, line);
            continue;
        }
        let Some(input) = line.strip_prefix('>') else { continue };
        if let Some(directive) = input.strip_prefix("! ") {
            push(&mut out, line);
            match directive.trim() {
                "finish-drains" => backend.finish_drains(),
                other => panic!("unknown directive {other}"),
            }
            continue;
        }
        let input = input.strip_prefix(' ').unwrap_or(input);
        push(&mut out, &format!("> {input}"));
        if let Some(partial) = input.strip_suffix('?') {
            for l in s.help(partial) {
                push(&mut out, &l);
            }
            push(&mut out, &format!("{}{partial}", s.prompt(&cfg)));
            continue;
        }
        let o = s.execute(input, &mut cfg, &mut backend);
        for l in &o.lines {
            push(&mut out, l.trim_end());
        }
        for p in backend.take_applied() {
            push(&mut out, &prim(&p));
        }
        if o.quit {
            push(&mut out, "%% session ended");
            s = new_session();
        }
        push(&mut out, &s.prompt(&cfg));
    }
    out
}

#[test]
fn golden_transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    for f in &files {
        let want = std::fs::read_to_string(f).unwrap();
        let got = run(&want);
        if got != want {
            if update {
                std::fs::write(f, &got).unwrap();
                continue;
            }
            let (n, (w, g)) = want
                .lines()
                .chain(std::iter::repeat("<EOF>"))
                .zip(got.lines().chain(std::iter::repeat("<EOF>")))
                .enumerate()
                .find(|(_, (w, g))| w != g)
                .unwrap();
            failures.push(format!(
                "{}:{}:\n  want: {w:?}\n  got:  {g:?}\n--- full actual transcript ---\n{got}",
                f.display(),
                n + 1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
