//! restartd's control socket: accepting connections from service processes
//! and restartctl, reading their requests (with passed descriptors), and
//! answering them — registration, keeping and releasing descriptors, status,
//! and planned restarts and upgrades.

use super::*;

impl Daemon {
    pub(super) fn on_accept(&mut self) {
        loop {
            match fdpass::accept(self.listener.as_fd()) {
                Ok(fd) => {
                    let t = CONN_BASE + self.next_conn;
                    self.next_conn += 1;
                    if let Err(e) =
                        self.poll.registry().register(&mut SourceFd(&fd.as_raw_fd()), Token(t), Interest::READABLE)
                    {
                        warn!("register control connection: {e}");
                        continue;
                    }
                    self.conns.insert(t, Conn { fd, role: None });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!("accept on control socket: {e}");
                    return;
                }
            }
        }
    }

    /// Read every queued message of a connection. Returns false at EOF.
    pub(super) fn on_conn(&mut self, t: usize) -> bool {
        let mut buf = Vec::new();
        loop {
            let Some(c) = self.conns.get(&t) else { return false };
            match fdpass::recv(c.fd.as_fd(), &mut buf, true) {
                Ok(Some(fds)) => match serde_json::from_slice::<Request>(&buf) {
                    Ok(req) => self.on_request(t, req, fds),
                    Err(e) => {
                        warn!("bad control message: {e}");
                        let _ = self.send(t, &Reply::Error { message: format!("bad request: {e}") }, &[]);
                    }
                },
                Ok(None) => {
                    self.drop_conn(t);
                    return false;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) => {
                    warn!("control connection: {e}");
                    self.drop_conn(t);
                    return false;
                }
            }
        }
    }

    pub(super) fn drop_conn(&mut self, t: usize) {
        if let Some(c) = self.conns.remove(&t) {
            let _ = self.poll.registry().deregister(&mut SourceFd(&c.fd.as_raw_fd()));
            if let Some(r) = c.role.and_then(|id| self.roles.get_mut(&id)) {
                if r.conn == Some(t) {
                    r.conn = None;
                }
            }
        }
    }

    fn on_request(&mut self, t: usize, req: Request, mut fds: Vec<OwnedFd>) {
        let bound = self.conns.get(&t).and_then(|c| c.role);
        match req {
            Request::Hello { child_id } => {
                let peer = self.conns.get(&t).and_then(|c| fdpass::peer_pid(&c.fd).ok());
                let Some(role) = self.roles.get_mut(&child_id) else {
                    let _ = self.send(t, &Reply::Error { message: format!("no role {child_id}") }, &[]);
                    return;
                };
                let pid = role.child.as_ref().map(|c| c.id());
                if pid.is_none() || peer != pid {
                    let m = format!("pid {peer:?} is not the running generation of role {child_id} (pid {pid:?})");
                    warn!("{m}");
                    let _ = self.send(t, &Reply::Error { message: m }, &[]);
                    return;
                }
                role.conn = Some(t);
                let info = RegInfo {
                    service: self.name.clone(),
                    child_id,
                    generation: role.generation,
                    previous_exit: role.last_exit.clone(),
                    registration: role.reg.clone(),
                    kept: role.kept.len(),
                };
                if let Some(c) = self.conns.get_mut(&t) {
                    c.role = Some(child_id);
                }
                let role = &self.roles[&child_id];
                let names: Vec<&String> = role.kept.keys().collect();
                let mut res = self.send(t, &Reply::RegInfo(info), &[]);
                let batches: Vec<_> = names.chunks(fdpass::MAX_FDS).collect();
                if batches.is_empty() && res.is_ok() {
                    res = self.send(t, &Reply::Fds { names: vec![], last: true }, &[]);
                }
                for (i, b) in batches.iter().enumerate() {
                    if res.is_err() {
                        break;
                    }
                    let fds: Vec<BorrowedFd<'_>> = b.iter().map(|n| role.kept[*n].as_fd()).collect();
                    let reply =
                        Reply::Fds { names: b.iter().map(|s| s.to_string()).collect(), last: i + 1 == batches.len() };
                    res = self.send(t, &reply, &fds);
                }
                if let Err(e) = res {
                    warn!("handing descriptors to role {child_id}: {e}");
                }
            }
            Request::Keep { name } => {
                let (Some(id), Some(fd)) = (bound, fds.pop()) else {
                    warn!("keep {name:?} without hello or without a descriptor");
                    return;
                };
                if let Some(r) = self.roles.get_mut(&id) {
                    r.kept.insert(name, fd);
                }
            }
            Request::Release { name } => {
                if let Some(r) = bound.and_then(|id| self.roles.get_mut(&id)) {
                    r.kept.remove(&name);
                }
            }
            Request::Layout(l) => {
                if let Some(r) = bound.and_then(|id| self.roles.get_mut(&id)) {
                    info!(role = bound, "layout {} v{}", l.name, l.version);
                    r.layout = Some(l);
                }
            }
            Request::Ready => {
                if let Some(r) = bound.and_then(|id| self.roles.get_mut(&id)) {
                    r.ready = true;
                    if let Some(at) = r.exit_seen.take() {
                        let ms = at.elapsed().as_secs_f64() * 1e3;
                        r.last_restart_ms = Some(ms);
                        info!(
                            role = bound,
                            generation = r.generation,
                            "serving again {ms:.2} ms after the previous generation ended"
                        );
                    }
                }
            }
            Request::Register(reg) => {
                let id = reg.child_id;
                let existing = self.roles.get_mut(&id);
                match existing {
                    Some(r) => r.reg = reg,
                    None => {
                        self.roles.insert(id, new_role(reg));
                        if let Err(e) = self.spawn(id) {
                            error!("{e:#}");
                        }
                    }
                }
            }
            Request::Status => {
                let r = Reply::Status(self.status());
                let _ = self.send(t, &r, &[]);
            }
            Request::Restart { child_id } => {
                let r = self.plan(child_id, "restart", None);
                let _ = self.send(t, &r, &[]);
            }
            Request::Upgrade { child_id, path } => {
                let r = self.plan(child_id, "upgrade", Some(path));
                let _ = self.send(t, &r, &[]);
            }
        }
    }
}
