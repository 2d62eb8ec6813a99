//! HTTP/1.1 request parsing and deterministic response heads (sans-IO). A
//! response head is a pure function of the recorded request and file
//! metadata, so a new generation regenerates byte-identical heads.

use std::path::{Component, Path, PathBuf};

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub head_only: bool,
    pub path: Vec<u8>,
    pub keep_alive: bool,
    /// `bytes=a-b` / `bytes=a-` as `(a, b)`, or a suffix `bytes=-n` as `(n, None)` with `suffix`.
    pub range: Option<(u64, Option<u64>)>,
    pub suffix: bool,
    /// Bytes of head + body.
    pub len: usize,
    /// Parse problem to answer with 400/405/501.
    pub error: Option<u16>,
}

/// Find a complete request in `buf`. `Ok(None)` if more bytes are needed,
/// `Err(())` if the head exceeds `max`.
pub(crate) fn parse(buf: &[u8], max: usize) -> Result<Option<Request>, ()> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= max { Err(()) } else { Ok(None) };
    };
    let head = &buf[..end];
    let mut lines = head.split(|&c| c == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or(b"");
    let mut parts = first.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let method = parts.next().unwrap_or(b"");
    let target = parts.next().unwrap_or(b"");
    let version = parts.next().unwrap_or(b"");
    let mut req = Request {
        head_only: method == b"HEAD",
        path: target.to_vec(),
        keep_alive: version == b"HTTP/1.1",
        range: None,
        suffix: false,
        len: end + 4,
        error: None,
    };
    if !version.starts_with(b"HTTP/1.") || target.is_empty() {
        req.error = Some(400);
        req.keep_alive = false;
    } else if method != b"GET" && method != b"HEAD" {
        req.error = Some(405);
    }
    let mut content_length = 0usize;
    for l in lines {
        let Some(colon) = l.iter().position(|&c| c == b':') else { continue };
        let name = l[..colon].to_ascii_lowercase();
        let value = trim(&l[colon + 1..]);
        match name.as_slice() {
            b"connection" => {
                let v = value.to_ascii_lowercase();
                if v == b"close" {
                    req.keep_alive = false;
                } else if v == b"keep-alive" {
                    req.keep_alive = true;
                }
            }
            b"range" => {
                if let Some((r, suffix)) = parse_range(value) {
                    req.range = Some(r);
                    req.suffix = suffix;
                }
            }
            b"content-length" => match std::str::from_utf8(value).ok().and_then(|v| v.parse::<usize>().ok()) {
                Some(n) => content_length = n,
                None => req.error = Some(400),
            },
            b"transfer-encoding" => {
                req.error = Some(501);
                req.keep_alive = false;
            }
            _ => {}
        }
    }
    req.len += content_length;
    if req.len > max {
        return Err(());
    }
    if buf.len() < req.len {
        return Ok(None);
    }
    Ok(Some(req))
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(v.len());
    let e = v.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(s, |e| e + 1);
    &v[s..e]
}

fn parse_range(v: &[u8]) -> Option<((u64, Option<u64>), bool)> {
    let v = std::str::from_utf8(v).ok()?.strip_prefix("bytes=")?;
    if v.contains(',') {
        return None;
    }
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return Some(((b.parse().ok()?, None), true));
    }
    let a = a.parse().ok()?;
    if b.is_empty() {
        return Some(((a, None), false));
    }
    Some(((a, Some(b.parse().ok()?)), false))
}

/// Map a request target to a file under `root`, refusing `..`.
pub(crate) fn resolve(root: &Path, target: &[u8]) -> Option<PathBuf> {
    let t = std::str::from_utf8(target).ok()?;
    let t = t.split(['?', '#']).next()?;
    let decoded = percent_decode(t)?;
    let rel = Path::new(decoded.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut p = root.join(rel);
    if p.is_dir() {
        p.push("index.html");
    }
    Some(p)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.contains('\0')).then_some(s)
}

/// The body range to send for a request and file size: `(status, start, len)`.
pub(crate) fn body_range(range: Option<(u64, Option<u64>)>, suffix: bool, size: u64) -> (u16, u64, u64) {
    match range {
        None => (200, 0, size),
        Some((n, None)) if suffix => {
            if n == 0 {
                (416, 0, 0)
            } else {
                let n = n.min(size);
                (206, size - n, n)
            }
        }
        Some((a, b)) => {
            if a >= size {
                return (416, 0, 0);
            }
            let end = b.unwrap_or(size - 1).min(size - 1);
            if end < a {
                return (416, 0, 0);
            }
            (206, a, end - a + 1)
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        501 => "Not Implemented",
        _ => "Internal Server Error",
    }
}

fn content_type(path: &[u8]) -> &'static str {
    let p = String::from_utf8_lossy(path).to_ascii_lowercase();
    let p = p.split('?').next().unwrap_or("").to_string();
    if p.ends_with(".html") || p.ends_with('/') {
        "text/html"
    } else if p.ends_with(".txt") {
        "text/plain"
    } else if p.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// Build the response head. Deterministic in its arguments.
#[allow(clippy::too_many_arguments)]
pub(crate) fn head(
    status: u16,
    path: &[u8],
    size: u64,
    mtime: i64,
    start: u64,
    len: u64,
    keep_alive: bool,
    date_secs: u64,
) -> Vec<u8> {
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nServer: zlr-httpd\r\nDate: {}\r\n",
        reason(status),
        http_date(date_secs as i64)
    );
    match status {
        200 | 206 => {
            h += &format!(
                "Content-Type: {}\r\nLast-Modified: {}\r\nAccept-Ranges: bytes\r\n",
                content_type(path),
                http_date(mtime)
            );
            if status == 206 {
                h += &format!("Content-Range: bytes {start}-{}/{size}\r\n", start + len - 1);
            }
            h += &format!("Content-Length: {len}\r\n");
        }
        416 => h += &format!("Content-Range: bytes */{size}\r\nContent-Length: 0\r\n"),
        _ => h += "Content-Length: 0\r\n",
    }
    h += if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" };
    h.into_bytes()
}

/// RFC 7231 IMF-fixdate.
pub(crate) fn http_date(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[days.rem_euclid(7) as usize],
        d,
        MO[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n", 8192), Ok(None));
        let r = parse(b"GET /a.bin HTTP/1.1\r\nRange: bytes=10-19\r\n\r\nGET", 8192).unwrap().unwrap();
        assert_eq!(r.len, 43);
        assert_eq!(r.range, Some((10, Some(19))));
        assert!(r.keep_alive);
        let r = parse(b"HEAD / HTTP/1.0\r\n\r\n", 8192).unwrap().unwrap();
        assert!(r.head_only && !r.keep_alive);
        assert_eq!(parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", 8192), Ok(None));
        assert_eq!(parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 8192).unwrap().unwrap().error, Some(405));
        assert!(parse(&[b'a'; 9000], 8192).is_err());
    }

    #[test]
    fn ranges_and_dates() {
        assert_eq!(body_range(None, false, 100), (200, 0, 100));
        assert_eq!(body_range(Some((90, None)), false, 100), (206, 90, 10));
        assert_eq!(body_range(Some((10, None)), true, 100), (206, 90, 10));
        assert_eq!(body_range(Some((100, None)), false, 100), (416, 0, 0));
        assert_eq!(body_range(Some((5, Some(500))), false, 100), (206, 5, 95));
        assert_eq!(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(resolve(Path::new("/srv"), b"/../etc/passwd").is_none());
        assert_eq!(resolve(Path::new("/srv"), b"/a%20b?x=1").unwrap(), Path::new("/srv/a b"));
    }
}
