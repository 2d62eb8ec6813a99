//! The transport with a small test API: a version-1 and a version-2 request.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::frame::{read_frame, split_frame, write_frame};
use crate::serve::incoming;
use crate::*;

struct TestApi;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Body {
    Ping,
    Echo(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Response {
    id: u64,
    result: Result<String, TestError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
enum TestError {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("version {0}")]
    Version(u16),
}

impl Protocol for TestApi {
    type Body = Body;
    type Response = Response;
    type Error = TestError;
    const PEER: &'static str = "test server";
    const VERSION: u16 = 2;
    const MIN_VERSION: u16 = 1;
    const MAX_FRAME: usize = 1 << 10;
    const CALL_TIMEOUT: Duration = Duration::from_secs(5);

    fn body_version(body: &Body) -> u16 {
        match body {
            Body::Ping => 1,
            Body::Echo(_) => 2,
        }
    }

    fn response_id(response: &Response) -> u64 {
        response.id
    }

    fn reject(id: u64, why: Reject) -> Response {
        let e = match why {
            Reject::Malformed(m) => TestError::Malformed(m),
            Reject::Version { got } => TestError::Version(got),
        };
        Response { id, result: Err(e) }
    }
}

struct Echo;

impl Handler<TestApi> for Echo {
    fn handle(&self, req: Request<Body>) -> Response {
        let text = match req.body {
            Body::Ping => "pong".to_string(),
            Body::Echo(t) => t,
        };
        Response { id: req.id, result: Ok(text) }
    }
}

fn serve() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start::<TestApi>(&dir.path().join("run/api.sock"), 0o600, Arc::new(Echo)).unwrap();
    (dir, server)
}

#[test]
fn client_calls_and_the_server_answers() {
    let (_dir, server) = serve();
    let mut c = Client::<TestApi>::connect(server.path()).unwrap();
    assert_eq!(c.call(Body::Ping).unwrap(), Response { id: 1, result: Ok("pong".into()) });
    assert_eq!(c.call(Body::Echo("hi".into())).unwrap(), Response { id: 2, result: Ok("hi".into()) });
    assert_eq!(server.counters.requests.load(Ordering::Relaxed), 2);
}

#[test]
fn connect_names_the_peer_and_connect_wait_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let e = Client::<TestApi>::connect_wait(&path, Duration::from_millis(120)).err().unwrap();
    assert!(matches!(e, CallError::Connect { peer: "test server", .. }), "{e:?}");
    assert!(e.to_string().starts_with("cannot connect to the test server at "), "{e}");
}

#[test]
fn versions_old_requests_answered_new_bodies_need_their_version() {
    let (_dir, server) = serve();
    let mut s = UnixStream::connect(server.path()).unwrap();
    let mut ask = |version: u16, body: Body| -> Result<String, TestError> {
        write_frame(&mut s, &Request { id: 9, version, body }, 1 << 10).unwrap();
        let r: Response = read_frame(&mut s, 1 << 10).unwrap();
        assert_eq!(r.id, 9);
        r.result
    };
    assert_eq!(ask(1, Body::Ping), Ok("pong".into()));
    assert_eq!(ask(2, Body::Ping), Ok("pong".into()));
    assert_eq!(ask(2, Body::Echo("x".into())), Ok("x".into()));
    assert_eq!(ask(1, Body::Echo("x".into())), Err(TestError::Version(1)));
    assert_eq!(ask(0, Body::Ping), Err(TestError::Version(0)));
    assert_eq!(ask(3, Body::Ping), Err(TestError::Version(3)));
    assert_eq!(server.counters.wrong_version.load(Ordering::Relaxed), 3);
}

#[test]
fn garbage_is_answered_counted_and_the_server_goes_on() {
    let (_dir, server) = serve();
    let answer = |s: &mut UnixStream| read_frame::<_, Response>(s, 1 << 10).unwrap();
    // A bad document in a good frame: answered, and the connection goes on.
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(b"\x00\x00\x00\x05hello").unwrap();
    assert!(matches!(answer(&mut s).result, Err(TestError::Malformed(_))));
    write_frame(&mut s, &Request { id: 4, version: 1, body: Body::Ping }, 1 << 10).unwrap();
    assert_eq!(answer(&mut s).result, Ok("pong".into()));
    // A frame too large: answered, then closed.
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(b"\xff\xff\xff\xff\x01\x02").unwrap();
    assert!(matches!(answer(&mut s).result, Err(TestError::Malformed(m)) if m.contains("exceeds")));
    // Closed (a reset, as the rest of the frame is left unread).
    assert!(!matches!(s.read(&mut [0u8; 8]), Ok(n) if n > 0), "closed after a bad frame");
    // Closed mid-frame.
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(b"\x00\x00").unwrap();
    drop(s);
    let mut c = Client::<TestApi>::connect(server.path()).unwrap();
    assert_eq!(c.call(Body::Ping).unwrap().result, Ok("pong".into()));
    assert!(server.counters.malformed.load(Ordering::Relaxed) >= 2);
}

#[test]
fn a_response_to_another_request_is_unexpected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liar.sock");
    let listener = server::bind(&path, 0o600).unwrap();
    let liar = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = crate::frame::read_frame_bytes(&mut s, 1 << 10).unwrap();
        write_frame(&mut s, &Response { id: 42, result: Ok(String::new()) }, 1 << 10).unwrap();
    });
    let e = Client::<TestApi>::connect(&path).unwrap().call(Body::Ping).unwrap_err();
    assert!(matches!(&e, CallError::Unexpected(m) if m.contains("42")), "{e:?}");
    liar.join().unwrap();
}

proptest::proptest! {
    /// The decoder meets arbitrary bytes: an error or a request, never a panic (what the
    /// `rpc_frame` fuzz target runs).
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        crate::fuzzing::frames::<TestApi>(&bytes);
    }

    /// Valid frames survive any split into reads.
    #[test]
    fn a_framed_request_decodes_from_any_prefix(text in ".{0,40}", cut in 0usize..80) {
        let frame = crate::frame::encode(&Request { id: 3, version: 2, body: Body::Echo(text.clone()) }, 1 << 10).unwrap();
        let cut = cut.min(frame.len());
        let partial = split_frame(&frame[..cut], 1 << 10).unwrap();
        proptest::prop_assert_eq!(partial.is_some(), cut == frame.len());
        let (body, used) = split_frame(&frame, 1 << 10).unwrap().unwrap();
        proptest::prop_assert_eq!(used, frame.len());
        match incoming::<TestApi>(body) {
            Incoming::Call(r) => proptest::prop_assert_eq!(r.body, Body::Echo(text)),
            Incoming::Rejected { why, .. } => proptest::prop_assert!(false, "{why}"),
        }
    }
}
