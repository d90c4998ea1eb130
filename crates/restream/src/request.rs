//! RTSP/1.0 messages on the wire: parsing what a client sends (requests,
//! and interleaved `$` frames such as RTCP receiver reports) and writing
//! responses.
//!
//! The parser never panics and never grows without bound: a head larger
//! than [`MAX_HEAD`], a body larger than [`MAX_BODY`] or more than
//! [`MAX_HEADERS`] headers is an error, and the connection is closed after
//! answering it (its framing can no longer be trusted).

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body accepted (RTSP requests here carry none, or tiny
/// `GET_PARAMETER` bodies).
pub const MAX_BODY: usize = 4 * 1024;
/// Most headers accepted in one request.
pub const MAX_HEADERS: usize = 64;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Upper-case method token, e.g. `DESCRIBE`.
    pub method: String,
    /// The request URI as sent (`rtsp://host/path`, `/path` or `*`).
    pub uri: String,
    /// `RTSP/1.0`.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The session id of the `Session` header, without parameters.
    pub fn session(&self) -> Option<&str> {
        self.header("Session")
            .map(|s| s.split(';').next().unwrap_or("").trim())
            .filter(|s| !s.is_empty())
    }
}

/// One message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Request(Request),
    /// An interleaved binary frame (`$`, channel, 16-bit length): RTCP
    /// receiver reports and the like. Its payload is skipped.
    Interleaved {
        channel: u8,
        len: usize,
    },
}

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Head, body or header count over the limits.
    TooLarge,
    /// Not an RTSP request; the text says what is wrong.
    Malformed(&'static str),
    /// Not RTSP/1.0 (answered with 505).
    Version,
}

/// Parses one message from the start of `buf`. `Ok(None)`: more bytes are
/// needed. On success returns the message and how many bytes it used
/// (including any stray CR/LF before it).
pub fn parse(buf: &[u8]) -> Result<Option<(Incoming, usize)>, ParseError> {
    // Stray line ends between messages (some clients send bare CRLF
    // keepalives).
    let skip = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[skip..];
    if rest.is_empty() {
        return Ok(None);
    }
    if rest[0] == b'$' {
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if rest.len() < 4 + len {
            return Ok(None);
        }
        return Ok(Some((
            Incoming::Interleaved {
                channel: rest[1],
                len,
            },
            skip + 4 + len,
        )));
    }
    let Some((head_len, sep_len)) = find_head_end(rest) else {
        if rest.len() > MAX_HEAD {
            return Err(ParseError::TooLarge);
        }
        // Reject obvious garbage early instead of waiting for 8 KiB of it.
        if !rest[..rest.len().min(32)]
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\r' || b == b'\n' || b == b'\t')
        {
            return Err(ParseError::Malformed(
                "binary data where a request was expected",
            ));
        }
        return Ok(None);
    };
    if head_len > MAX_HEAD {
        return Err(ParseError::TooLarge);
    }
    let head = std::str::from_utf8(&rest[..head_len])
        .map_err(|_| ParseError::Malformed("request head is not UTF-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed("bad request line"));
    };
    if method.len() > 32
        || !method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
    {
        return Err(ParseError::Malformed("bad method"));
    }
    if !version.starts_with("RTSP/") {
        return Err(ParseError::Malformed("not an RTSP request"));
    }
    if version != "RTSP/1.0" {
        return Err(ParseError::Version);
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            // Obsolete line folding: continue the previous header.
            let Some(last) = headers.last_mut() else {
                return Err(ParseError::Malformed("continuation line without a header"));
            };
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError::Malformed("header line without a colon"));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::Malformed("bad header name"));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooLarge);
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let body_len = match headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
    {
        None => 0,
        Some((_, v)) => v
            .parse::<usize>()
            .map_err(|_| ParseError::Malformed("bad Content-Length"))?,
    };
    if body_len > MAX_BODY {
        return Err(ParseError::TooLarge);
    }
    let start = head_len + sep_len;
    if rest.len() < start + body_len {
        return Ok(None);
    }
    let body = rest[start..start + body_len].to_vec();
    Ok(Some((
        Incoming::Request(Request {
            method: method.to_owned(),
            uri: uri.to_owned(),
            version: version.to_owned(),
            headers,
            body,
        }),
        skip + start + body_len,
    )))
}

/// Where the head ends: (length of the head, length of the blank-line
/// separator). Accepts CRLF CRLF and bare LF LF.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let limit = buf.len().min(MAX_HEAD + 4);
    for i in 0..limit {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
    }
    None
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Response {
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body;
        self
    }

    /// The bytes on the wire, echoing the request's `CSeq`.
    pub fn to_bytes(&self, cseq: Option<&str>) -> Vec<u8> {
        let mut s = format!("RTSP/1.0 {} {}\r\n", self.status, reason(self.status));
        if let Some(c) = cseq {
            s.push_str(&format!("CSeq: {}\r\n", sanitize(c)));
        }
        s.push_str("Server: Porchlight\r\n");
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}: {}\r\n", sanitize(v)));
        }
        if !self.body.is_empty() {
            s.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        s.push_str("\r\n");
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Header values never carry line breaks into the response (a CSeq is
/// echoed from the client).
fn sanitize(v: &str) -> String {
    v.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

/// The reason phrase of a status code (RFC 2326 section 7.1.1).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        _ => "Unknown",
    }
}

/// What a request URI names: the stream path (`front-door`,
/// `demo/front-door`) and, for per-track URIs, the track number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: String,
    pub track: Option<u32>,
}

/// Splits a request URI into path and track: `rtsp://host:8554/a/b/trackID=0?x`
/// → (`a/b`, Some(0)). `*` and an empty path give an empty path.
pub fn target(uri: &str) -> Option<Target> {
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    let rest = if lower.starts_with("rtsp://") {
        &uri[7..]
    } else if lower.starts_with("rtsps://") {
        &uri[8..]
    } else if uri == "*" {
        ""
    } else if let Some(r) = uri.strip_prefix('/') {
        // Put the slash back so the authority-stripping below is uniform.
        return target(&format!("rtsp://-/{r}"));
    } else {
        return None;
    };
    let path = match rest.find('/') {
        Some(i) => &rest[i + 1..],
        None => "",
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = path.trim_end_matches('/');
    let (path, track) = match path.rsplit_once('/') {
        Some((p, last)) if last.starts_with("trackID=") => {
            (p, Some(last["trackID=".len()..].parse::<u32>().ok()?))
        }
        _ => match path.strip_prefix("trackID=") {
            Some(n) => ("", Some(n.parse::<u32>().ok()?)),
            None => (path, None),
        },
    };
    if path.split('/').any(|seg| seg == ".." || seg == ".") {
        return None;
    }
    Some(Target {
        path: path.to_owned(),
        track,
    })
}

/// The interleaved channels of an acceptable `Transport` header: the
/// first alternative that is RTP over the RTSP connection. `None`:
/// nothing acceptable (UDP or multicast only), answered with 461.
pub fn tcp_transport(header: &str) -> Option<(u8, u8)> {
    for alt in header.split(',') {
        let mut params = alt.split(';').map(str::trim);
        let proto = params.next().unwrap_or("");
        if !proto.eq_ignore_ascii_case("RTP/AVP/TCP") {
            continue;
        }
        let mut channels = (0u8, 1u8);
        let mut ok = true;
        for p in params {
            if p.eq_ignore_ascii_case("multicast") {
                ok = false;
            }
            if let Some(v) = p.strip_prefix("interleaved=") {
                let parsed = match v.split_once('-') {
                    Some((a, b)) => a.parse::<u8>().ok().zip(b.parse::<u8>().ok()),
                    None => v.parse::<u8>().ok().map(|a| (a, a.wrapping_add(1))),
                };
                match parsed {
                    Some((a, b)) if a != b => channels = (a, b),
                    _ => ok = false,
                }
            }
        }
        if ok {
            return Some(channels);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Request {
        match parse(s.as_bytes()).unwrap().unwrap() {
            (Incoming::Request(r), n) => {
                assert_eq!(n, s.len());
                r
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_a_request() {
        let r = req("DESCRIBE rtsp://127.0.0.1:8554/front-door RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n");
        assert_eq!(r.method, "DESCRIBE");
        assert_eq!(r.uri, "rtsp://127.0.0.1:8554/front-door");
        assert_eq!(r.header("cseq"), Some("2"));
        assert_eq!(r.header("ACCEPT"), Some("application/sdp"));
        assert!(r.body.is_empty());
    }

    #[test]
    fn parses_bodies_bare_newlines_and_stray_line_ends() {
        let s = "\r\n\r\nGET_PARAMETER rtsp://h/x RTSP/1.0\nCSeq: 9\nSession: abc;timeout=60\nContent-Length: 4\n\npingOPTIONS";
        let (m, n) = parse(s.as_bytes()).unwrap().unwrap();
        let Incoming::Request(r) = m else { panic!() };
        assert_eq!(r.body, b"ping");
        assert_eq!(r.session(), Some("abc"));
        assert_eq!(&s[n..], "OPTIONS");
    }

    #[test]
    fn waits_for_more_bytes() {
        let full = "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 3\r\n\r\nabc";
        for cut in 0..full.len() {
            assert_eq!(parse(&full.as_bytes()[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse(full.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn skips_interleaved_frames() {
        let mut b = vec![b'$', 1, 0, 3, 9, 9, 9];
        b.extend_from_slice(b"OPTIONS * RTSP/1.0\r\n\r\n");
        let (m, n) = parse(&b).unwrap().unwrap();
        assert_eq!(m, Incoming::Interleaved { channel: 1, len: 3 });
        assert_eq!(n, 7);
        assert_eq!(parse(&b[..5]), Ok(None));
        assert_eq!(parse(&b[..2]), Ok(None));
    }

    #[test]
    fn rejects_malformed_input() {
        let bad: &[&[u8]] = &[
            b"HELLO\r\n\r\n",
            b"describe rtsp://x RTSP/1.0\r\n\r\n",
            b"DESCRIBE rtsp://x HTTP/1.1\r\n\r\n",
            b"DESCRIBE rtsp://x RTSP/1.0 extra\r\n\r\n",
            b"DESCRIBE rtsp://x RTSP/1.0\r\nno colon here\r\n\r\n",
            b"DESCRIBE rtsp://x RTSP/1.0\r\n continued\r\n\r\n",
            b"DESCRIBE rtsp://x RTSP/1.0\r\nContent-Length: -1\r\n\r\n",
            b"DESCRIBE rtsp://x RTSP/1.0\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"DESCRIBE rtsp://x RTSP/1.0\r\nX: \xff\xfe\r\n\r\n",
            b"\x00\x01\x02\x03garbage",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ];
        for b in bad {
            assert!(
                matches!(parse(b), Err(ParseError::Malformed(_))),
                "{:?} → {:?}",
                String::from_utf8_lossy(b),
                parse(b)
            );
        }
        assert_eq!(
            parse(b"DESCRIBE rtsp://x RTSP/2.0\r\n\r\n"),
            Err(ParseError::Version)
        );
    }

    #[test]
    fn enforces_limits() {
        let mut big = b"DESCRIBE rtsp://x RTSP/1.0\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert_eq!(parse(&big), Err(ParseError::TooLarge));
        let body = format!(
            "SET_PARAMETER rtsp://x RTSP/1.0\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(parse(body.as_bytes()), Err(ParseError::TooLarge));
        let mut many = String::from("OPTIONS * RTSP/1.0\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(parse(many.as_bytes()), Err(ParseError::TooLarge));
    }

    #[test]
    fn never_panics_on_random_bytes() {
        // A small deterministic fuzz: random bytes and mutated requests.
        let seed = b"SETUP rtsp://127.0.0.1:8554/front-door/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nContent-Length: 2\r\n\r\nab";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut b = seed.to_vec();
            for _ in 0..(next() % 8) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            let cut = (next() as usize) % (b.len() + 1);
            let _ = parse(&b[..cut]);
            let junk: Vec<u8> = (0..(next() % 64)).map(|_| next() as u8).collect();
            let _ = parse(&junk);
        }
    }

    #[test]
    fn targets() {
        let t = |u: &str| target(u).map(|t| (t.path, t.track));
        assert_eq!(
            t("rtsp://h:1/front-door"),
            Some(("front-door".into(), None))
        );
        assert_eq!(
            t("rtsp://u:p@h:1/demo/front-door/trackID=0"),
            Some(("demo/front-door".into(), Some(0)))
        );
        assert_eq!(t("RTSP://h/front-door/"), Some(("front-door".into(), None)));
        assert_eq!(t("rtsp://h/x?y=1"), Some(("x".into(), None)));
        assert_eq!(t("/front-door"), Some(("front-door".into(), None)));
        assert_eq!(t("*"), Some(("".into(), None)));
        assert_eq!(t("rtsp://h"), Some(("".into(), None)));
        assert_eq!(t("rtsp://h/trackID=0"), Some(("".into(), Some(0))));
        assert_eq!(t("rtsp://h/x/trackID=zz"), None);
        assert_eq!(t("rtsp://h/../etc"), None);
        assert_eq!(t("http://h/x"), None);
    }

    #[test]
    fn transports() {
        assert_eq!(
            tcp_transport("RTP/AVP/TCP;unicast;interleaved=0-1"),
            Some((0, 1))
        );
        assert_eq!(
            tcp_transport("RTP/AVP/TCP;unicast;interleaved=2-3"),
            Some((2, 3))
        );
        assert_eq!(tcp_transport("RTP/AVP/TCP;unicast"), Some((0, 1)));
        assert_eq!(
            tcp_transport(
                "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1"
            ),
            Some((0, 1))
        );
        assert_eq!(tcp_transport("RTP/AVP;unicast;client_port=5000-5001"), None);
        assert_eq!(
            tcp_transport("RTP/AVP/UDP;unicast;client_port=5000-5001"),
            None
        );
        assert_eq!(tcp_transport("RTP/AVP/TCP;interleaved=x-y"), None);
        assert_eq!(tcp_transport(""), None);
    }

    #[test]
    fn responses_echo_cseq_without_injection() {
        let r = Response::new(401).header("WWW-Authenticate", "Basic realm=\"Porchlight\"");
        let s = String::from_utf8(r.to_bytes(Some("5\r\nX-Evil: 1"))).unwrap();
        assert!(
            s.starts_with("RTSP/1.0 401 Unauthorized\r\nCSeq: 5X-Evil: 1\r\n"),
            "{s}"
        );
        assert!(s.ends_with("\r\n\r\n"));
        let r = Response::new(200).body("application/sdp", b"v=0\r\n".to_vec());
        let s = String::from_utf8(r.to_bytes(Some("1"))).unwrap();
        assert!(s.contains("Content-Length: 5\r\n\r\nv=0\r\n"), "{s}");
    }
}
