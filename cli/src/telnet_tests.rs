//! Unit tests of [`super`] (`telnet.rs`).

use super::*;

fn run(c: &mut TelnetCodec, input: &[u8]) -> (Vec<Event>, Vec<u8>) {
    let mut ev = Vec::new();
    let mut rep = Vec::new();
    c.decode(input, &mut ev, &mut rep);
    (ev, rep)
}

fn data(s: &[u8]) -> Vec<Event> {
    s.iter().map(|&b| Event::Data(b)).collect()
}

fn started() -> TelnetCodec {
    let mut c = TelnetCodec::new();
    let mut out = Vec::new();
    c.start(&mut out);
    assert_eq!(out, [IAC, WILL, OPT_ECHO, IAC, WILL, OPT_SGA, IAC, DO, OPT_NAWS], "opening negotiation");
    c
}

#[test]
fn client_agrees_no_further_replies() {
    let mut c = started();
    let (ev, rep) = run(&mut c, &[IAC, DO, OPT_ECHO, IAC, DO, OPT_SGA, IAC, WILL, OPT_NAWS]);
    assert!(ev.is_empty());
    assert!(rep.is_empty(), "answers to our own requests are not acknowledged again");
    assert!(c.local(OPT_ECHO).enabled());
    assert!(c.local(OPT_SGA).enabled());
    assert!(c.remote(OPT_NAWS).enabled());
    // Repeating a request that changes nothing gets no answer (no loop).
    let (_, rep) = run(&mut c, &[IAC, DO, OPT_ECHO, IAC, WILL, OPT_NAWS, IAC, DO, OPT_ECHO]);
    assert!(rep.is_empty());
}

#[test]
fn client_refuses_echo() {
    let mut c = started();
    let (_, rep) = run(&mut c, &[IAC, DONT, OPT_ECHO]);
    assert!(rep.is_empty(), "a refusal of our request is not answered");
    assert_eq!(c.local(OPT_ECHO), OptState::No);
    // A later DONT changes nothing either.
    let (_, rep) = run(&mut c, &[IAC, DONT, OPT_ECHO]);
    assert!(rep.is_empty());
    // Client later asks for it: we agree once.
    let (_, rep) = run(&mut c, &[IAC, DO, OPT_ECHO, IAC, DO, OPT_ECHO]);
    assert_eq!(rep, [IAC, WILL, OPT_ECHO]);
}

#[test]
fn linemode_and_unknown_options_refused_once() {
    let mut c = started();
    let (_, rep) = run(&mut c, &[IAC, WILL, OPT_LINEMODE]);
    assert_eq!(rep, [IAC, DONT, OPT_LINEMODE]);
    let (_, rep) = run(&mut c, &[IAC, WONT, OPT_LINEMODE]);
    assert!(rep.is_empty(), "WONT for a disabled option is not answered");
    let (_, rep) = run(&mut c, &[IAC, DO, 200, IAC, WILL, OPT_TTYPE]);
    assert_eq!(rep, [IAC, WONT, 200, IAC, DONT, OPT_TTYPE]);
    let (_, rep) = run(&mut c, &[IAC, DONT, 200]);
    assert!(rep.is_empty());
}

#[test]
fn enabled_option_turned_off_is_acknowledged() {
    let mut c = started();
    run(&mut c, &[IAC, WILL, OPT_NAWS]);
    let (_, rep) = run(&mut c, &[IAC, WONT, OPT_NAWS]);
    assert_eq!(rep, [IAC, DONT, OPT_NAWS]);
    let (_, rep) = run(&mut c, &[IAC, WONT, OPT_NAWS]);
    assert!(rep.is_empty());
}

#[test]
fn two_q_method_peers_never_loop() {
    // Our codec against a second instance playing the client: bounce bytes until quiet.
    let mut server = TelnetCodec::new();
    let mut client = TelnetCodec::new();
    let mut to_client = Vec::new();
    server.start(&mut to_client);
    let mut to_server = Vec::new();
    client.request_local(OPT_LINEMODE, true, &mut to_server);
    client.request_remote(OPT_ECHO, true, &mut to_server);
    let mut rounds = 0;
    while !(to_client.is_empty() && to_server.is_empty()) {
        rounds += 1;
        assert!(rounds < 10, "negotiation loop");
        let (mut ev, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        client.decode(&std::mem::take(&mut to_client), &mut ev, &mut a);
        server.decode(&std::mem::take(&mut to_server), &mut ev, &mut b);
        to_server = a;
        to_client = b;
    }
    assert!(server.local(OPT_ECHO).enabled());
    assert!(!server.remote(OPT_LINEMODE).enabled());
    assert!(!client.local(OPT_LINEMODE).enabled());
}

#[test]
fn enter_forms_are_one_enter() {
    let mut c = started();
    let (ev, _) = run(&mut c, b"a\r\nb\r\0c\nd\re");
    assert_eq!(ev, data(b"a\rb\rc\rd\re"));
    // CR at the end of one read, LF at the start of the next.
    let (ev, _) = run(&mut c, b"x\r");
    assert_eq!(ev, data(b"x\r"));
    let (ev, _) = run(&mut c, b"\ny");
    assert_eq!(ev, data(b"y"));
    // Two Enters.
    let (ev, _) = run(&mut c, b"\r\r\n\n");
    assert_eq!(ev, data(b"\r\r\r"));
}

#[test]
fn iac_iac_is_data_255() {
    let mut c = started();
    let (ev, _) = run(&mut c, &[b'a', IAC, IAC, b'b']);
    assert_eq!(ev, data(&[b'a', 255, b'b']));
}

#[test]
fn naws_parsed_only_when_agreed() {
    let mut c = TelnetCodec::new();
    let naws = [IAC, SB, OPT_NAWS, 0, 80, 0, 24, IAC, SE];
    let (ev, _) = run(&mut c, &naws);
    assert!(ev.is_empty(), "NAWS before WILL NAWS ignored");
    let mut c = started();
    run(&mut c, &[IAC, WILL, OPT_NAWS]);
    let (ev, _) = run(&mut c, &naws);
    assert_eq!(ev, [Event::Naws { width: 80, height: 24 }]);
    // 255 inside NAWS is doubled; split across reads.
    let (ev, _) = run(&mut c, &[IAC, SB, OPT_NAWS, 1, IAC]);
    assert!(ev.is_empty());
    let (ev, _) = run(&mut c, &[IAC, 0, 50, IAC, SE, b'z']);
    assert_eq!(ev, [Event::Naws { width: 0x1ff, height: 50 }, Event::Data(b'z')]);
}

#[test]
fn overlong_and_garbage_subnegotiation_discarded() {
    let mut c = started();
    run(&mut c, &[IAC, WILL, OPT_NAWS]);
    let mut bytes = vec![IAC, SB, OPT_NAWS];
    bytes.extend([7u8; 1000]);
    bytes.extend_from_slice(&[IAC, SE, b'k']);
    let (ev, _) = run(&mut c, &bytes);
    assert_eq!(ev, data(b"k"));
    // Wrong NAWS length.
    let (ev, _) = run(&mut c, &[IAC, SB, OPT_NAWS, 1, 2, IAC, SE]);
    assert!(ev.is_empty());
    // IAC + junk inside SB ends it.
    let (ev, _) = run(&mut c, &[IAC, SB, OPT_NAWS, 1, IAC, IP, b'q']);
    assert_eq!(ev, [Event::Interrupt, Event::Data(b'q')]);
}

#[test]
fn commands() {
    let mut c = started();
    let (ev, rep) = run(&mut c, &[IAC, NOP, IAC, GA, IAC, DM, IAC, SE, IAC, 17, b'x']);
    assert_eq!(ev, data(b"x"));
    assert!(rep.is_empty());
    let (ev, _) = run(&mut c, &[IAC, IP, IAC, BRK, IAC, EC, IAC, EL, IAC, AYT, IAC, AO]);
    assert_eq!(
        ev,
        [
            Event::Interrupt,
            Event::Interrupt,
            Event::EraseChar,
            Event::EraseLine,
            Event::AreYouThere,
            Event::AbortOutput
        ]
    );
}

#[test]
fn half_sequences_across_reads() {
    let mut c = started();
    let (ev, rep) = run(&mut c, &[IAC]);
    assert!(ev.is_empty() && rep.is_empty());
    let (ev, rep) = run(&mut c, &[DO]);
    assert!(ev.is_empty() && rep.is_empty());
    let (_, rep) = run(&mut c, &[OPT_TTYPE, b'a']);
    assert_eq!(rep, [IAC, WONT, OPT_TTYPE]);
}

#[test]
fn encode_doubles_iac_and_crlf() {
    let mut out = Vec::new();
    encode_text("a\nb\r\nc\rd", &mut out);
    assert_eq!(out, b"a\r\nb\r\nc\r\0d");
    let mut out = Vec::new();
    encode_bytes(&[1, 255, 2], &mut out);
    assert_eq!(out, [1, 255, 255, 2]);
}

#[test]
fn encode_then_decode_roundtrip() {
    let mut wire = Vec::new();
    encode_bytes(&[b'a', 255, b'b'], &mut wire);
    let mut c = started();
    let (ev, _) = run(&mut c, &wire);
    assert_eq!(ev, data(&[b'a', 255, b'b']));
}
