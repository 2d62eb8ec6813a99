//! Connection images: a connection rebuilt from its image (through JSON, as the control plane
//! stores it) behaves byte for byte like the original from then on.

use std::time::{Duration, Instant};

use cli::auth::{hash_password_with, Cost};
use cli::image::{ConnectionImage, StateImage};
use cli::telnet::{DO, IAC, OPT_ECHO, OPT_NAWS, OPT_SGA, SB, SE, WILL};
use cli::{Connection, Credentials, FakeBackend, ServerSettings, SlbConfig};

fn settings() -> ServerSettings {
    let h = hash_password_with("acm-lab", b"image-test-salt", Cost::TEST).unwrap();
    let creds = Credentials::new([("admin".to_string(), h.clone())], Some(h)).unwrap();
    ServerSettings::new(creds)
}

fn through_json(img: &ConnectionImage) -> ConnectionImage {
    serde_json::from_slice(&serde_json::to_vec(img).unwrap()).unwrap()
}

/// Both connections get the same input; their outputs must be identical.
fn same(a: &mut Connection, b: &mut Connection, input: &[u8], now: Instant, cfg: &SlbConfig) -> Vec<u8> {
    let (mut ca, mut cb) = (cfg.clone(), cfg.clone());
    let oa = a.on_input(input, now, &mut ca, &mut FakeBackend::default());
    let ob = b.on_input(input, now, &mut cb, &mut FakeBackend::default());
    assert_eq!(
        String::from_utf8_lossy(&oa),
        String::from_utf8_lossy(&ob),
        "after {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(a.image(now), b.image(now));
    oa
}

#[test]
fn restored_connection_continues_a_half_typed_line_in_config_mode() {
    let t0 = Instant::now();
    let mut cfg = SlbConfig::default();
    let mut be = FakeBackend::default();
    let mut c = Connection::new(settings(), t0);
    c.start(t0);
    let mut input = vec![IAC, DO, OPT_ECHO, IAC, DO, OPT_SGA, IAC, WILL, OPT_NAWS];
    input.extend_from_slice(&[IAC, SB, OPT_NAWS, 0, 80, 0, 30, IAC, SE]);
    input.extend_from_slice(
        b"admin\r\nacm-lab\r\nenable\r\nacm-lab\r\nconfigure terminal\r\nserver real rs1 10.0.1.11\r\n",
    );
    // Half a line, with an edit and the cursor moved left.
    input.extend_from_slice(b"port httpx\x08\x02");
    c.on_input(&input, t0, &mut cfg, &mut be);
    let img = through_json(&c.image(t0 + Duration::from_millis(5)));
    assert_eq!(img.state, StateImage::Shell);
    assert_eq!(img.editor.line, "port http");
    assert_eq!(img.editor.cursor, 8);
    assert_eq!(img.height, 30);
    let mut r = Connection::from_image(settings(), &img, t0 + Duration::from_millis(5)).unwrap();
    assert!(r.logged_in());
    assert_eq!(r.session().mode(), c.session().mode());
    let now = t0 + Duration::from_millis(10);
    // Cursor to the end, Enter: the line executes in the real server's mode.
    let out = same(&mut c, &mut r, b"\x05\r\n", now, &cfg);
    let text = String::from_utf8_lossy(&out);
    assert!(text.ends_with("(config-rs-rs1)#"), "{text:?}");
    same(&mut c, &mut r, b"exit\r\nshow running-config\r\n", now, &cfg);
}

#[test]
fn restored_connection_keeps_the_pager_and_login_prompts() {
    let t0 = Instant::now();
    let mut cfg = SlbConfig::default();
    let mut be = FakeBackend::default();
    let mut c = Connection::new(settings(), t0);
    c.start(t0);
    c.on_input(b"adm", t0, &mut cfg, &mut be);
    let mut r = Connection::from_image(settings(), &through_json(&c.image(t0)), t0).unwrap();
    same(&mut c, &mut r, b"in\r\n", t0, &cfg);
    let img = through_json(&c.image(t0));
    assert_eq!(img.state, StateImage::Password { user: "admin".into() });
    let mut r = Connection::from_image(settings(), &img, t0).unwrap();
    same(&mut c, &mut r, b"acm-lab\r\nterminal length 3\r\nshow version\r\n", t0, &cfg);
}

#[test]
fn bad_images_are_errors() {
    let t0 = Instant::now();
    let mut c = Connection::new(settings(), t0);
    c.start(t0);
    let good = c.image(t0);
    let mut bad = good.clone();
    bad.editor.cursor = 3;
    assert!(Connection::from_image(settings(), &bad, t0).is_err());
    let mut bad = good.clone();
    bad.editor.line = "x\u{7}".into();
    assert!(Connection::from_image(settings(), &bad, t0).is_err());
    let mut bad = good.clone();
    bad.codec.sb = vec![0; 1000];
    assert!(Connection::from_image(settings(), &bad, t0).is_err());
    let mut bad = good.clone();
    bad.session.history = vec!["x".into(); 1000];
    assert!(Connection::from_image(settings(), &bad, t0).is_err());
    let mut bad = good;
    bad.editor.hist = Some(4);
    assert!(Connection::from_image(settings(), &bad, t0).is_err());
}
