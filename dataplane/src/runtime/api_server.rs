//! The switch API server: the `rpc` crate's blocking server (a thread per connection) with a
//! [`Handler`] that gets each request's receipt time on the dataplane's clock. The handler
//! serializes changes.

use std::io;
use std::path::Path;
use std::sync::Arc;

use switch_api::{Request, Response, SwitchApi};

use super::clock::now_ns;

/// Answers requests. Called from connection threads, concurrently.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request received at `received_ns`.
    fn handle(&self, req: Request, received_ns: u64) -> Response;
}

/// Stamps each request with its receipt time before the handler sees it.
struct Stamped(Arc<dyn Handler>);

impl rpc::Handler<SwitchApi> for Stamped {
    fn handle(&self, req: Request) -> Response {
        self.0.handle(req, now_ns())
    }
}

/// Binds `path` (mode 0660; a stale socket file is replaced, the directory created) and
/// serves the switch API until the returned server is dropped.
pub fn start(path: &Path, handler: Arc<dyn Handler>) -> io::Result<rpc::Server> {
    rpc::Server::start::<SwitchApi>(path, 0o660, Arc::new(Stamped(handler)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switch_api::client::Client;
    use switch_api::{ApiError, RequestBody, ResponseBody, Timing};

    struct Echo;
    impl Handler for Echo {
        fn handle(&self, req: Request, received_ns: u64) -> Response {
            let body = match req.body {
                RequestBody::Sessions { .. } => ResponseBody::Sessions(Box::default()),
                _ => ResponseBody::Pong { generation: 0 },
            };
            Response { id: req.id, result: Ok(body), timing: Timing { received_ns, ..Timing::default() } }
        }
    }

    #[test]
    fn serves_the_switch_api_with_receipt_times() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(&dir.path().join("api.sock"), Arc::new(Echo)).unwrap();
        let mut c = Client::connect(server.path()).unwrap();
        let before = now_ns();
        let resp = c.call(RequestBody::Ping).unwrap();
        assert_eq!(resp.result, Ok(ResponseBody::Pong { generation: 0 }));
        assert!(resp.timing.received_ns >= before && resp.timing.received_ns <= now_ns());
        assert_eq!(c.sessions(None, 10).unwrap(), switch_api::Sessions::default());
    }

    #[test]
    fn versions_old_requests_answered_new_bodies_need_their_version() {
        use rpc::frame::{read_frame, write_frame};
        use switch_api::{API_VERSION, MAX_FRAME};
        let dir = tempfile::tempdir().unwrap();
        let server = start(&dir.path().join("api.sock"), Arc::new(Echo)).unwrap();
        let mut s = std::os::unix::net::UnixStream::connect(server.path()).unwrap();
        let mut ask = |version: u16, body: RequestBody| -> Result<ResponseBody, ApiError> {
            write_frame(&mut s, &Request { id: 9, version, body }, MAX_FRAME).unwrap();
            read_frame::<_, Response>(&mut s, MAX_FRAME).unwrap().result
        };
        let sessions = || RequestBody::Sessions { service: None, limit: 10 };
        // A version-1 client keeps working; version 2 has Sessions.
        assert_eq!(ask(1, RequestBody::Ping), Ok(ResponseBody::Pong { generation: 0 }));
        assert_eq!(ask(API_VERSION, RequestBody::Ping), Ok(ResponseBody::Pong { generation: 0 }));
        assert_eq!(ask(2, sessions()), Ok(ResponseBody::Sessions(Box::default())));
        // Sessions claimed as version 1 and unknown versions are refused by number.
        assert_eq!(ask(1, sessions()), Err(ApiError::Version { got: 1 }));
        assert_eq!(ask(0, RequestBody::Ping), Err(ApiError::Version { got: 0 }));
        assert_eq!(ask(API_VERSION + 1, RequestBody::Ping), Err(ApiError::Version { got: API_VERSION + 1 }));
        // Garbage in a frame is answered as malformed.
        std::io::Write::write_all(&mut s, b"\x00\x00\x00\x03abc").unwrap();
        let garbage = read_frame::<_, Response>(&mut s, MAX_FRAME).unwrap();
        assert!(matches!(garbage.result, Err(ApiError::Malformed(_))), "{garbage:?}");
    }
}
