//! Unit tests of the grammar engine and table.

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
fn string_arguments_are_printable_and_quotable() {
    let g = g();
    assert!(g.parse(ModeKind::RealServer, "port http url \"HEAD /x y\"").is_ok());
    for bad in ["port http url E\"", "port http url a\u{1}b", "port http url \"GET /\0\"", "port http url \"\""] {
        assert!(g.parse(ModeKind::RealServer, bad).is_err(), "{bad:?} accepted");
    }
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
