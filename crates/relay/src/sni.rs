//! Reads the server name (SNI) from a TLS ClientHello **without
//! terminating TLS**: just enough of the record layer and the handshake
//! message to find the `server_name` extension (RFC 8446 4.1.2, RFC 6066
//! section 3).
//!
//! Invariants:
//! * At most [`MAX_HELLO`] bytes are read (a ClientHello may span several
//!   records; real ones, post-quantum key shares included, are under
//!   2 KiB). The caller bounds the time.
//! * Every byte read is returned, so the caller can forward the hello
//!   unchanged; nothing is written to the client.
//! * Malformed input is an error naming what was wrong, never a panic.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The most bytes read while looking for the SNI.
pub const MAX_HELLO: usize = 16 * 1024 + 5;

/// The result of peeking at a connection.
pub struct Peeked {
    /// Everything read from the client so far (to forward first).
    pub bytes: Vec<u8>,
    /// The server name, lowercase, if the hello carried one.
    pub sni: Option<String>,
}

/// Reads records until the ClientHello is complete and returns its SNI.
pub async fn read_client_hello<R: AsyncRead + Unpin>(r: &mut R) -> Result<Peeked, String> {
    let mut bytes = Vec::with_capacity(2048);
    let mut handshake = Vec::with_capacity(2048);
    loop {
        let start = bytes.len();
        if start + 5 > MAX_HELLO {
            return Err(format!(
                "no complete ClientHello in the first {MAX_HELLO} bytes"
            ));
        }
        bytes.resize(start + 5, 0);
        r.read_exact(&mut bytes[start..])
            .await
            .map_err(|e| format!("the client closed before a ClientHello: {e}"))?;
        let hdr = &bytes[start..start + 5];
        if hdr[0] != 22 {
            return Err(format!(
                "not TLS: the first record has content type {} (a handshake is 22){}",
                hdr[0],
                if hdr[0].is_ascii_alphabetic() {
                    "; plain HTTP?"
                } else {
                    ""
                }
            ));
        }
        if hdr[1] != 3 {
            return Err(format!("not TLS: record version {}.{}", hdr[1], hdr[2]));
        }
        let len = u16::from_be_bytes([hdr[3], hdr[4]]) as usize;
        if len == 0 || len > 16 * 1024 + 256 {
            return Err(format!("a TLS record of {len} bytes is out of bounds"));
        }
        if bytes.len() + len > MAX_HELLO {
            return Err(format!(
                "no complete ClientHello in the first {MAX_HELLO} bytes"
            ));
        }
        let body = bytes.len();
        bytes.resize(body + len, 0);
        r.read_exact(&mut bytes[body..])
            .await
            .map_err(|e| format!("the client closed in the middle of its ClientHello: {e}"))?;
        handshake.extend_from_slice(&bytes[body..]);
        if handshake.len() >= 4 {
            if handshake[0] != 1 {
                return Err(format!(
                    "the first handshake message is type {}, not a ClientHello (1)",
                    handshake[0]
                ));
            }
            let need =
                4 + u32::from_be_bytes([0, handshake[1], handshake[2], handshake[3]]) as usize;
            if need > MAX_HELLO {
                return Err(format!("a ClientHello of {need} bytes is over the limit"));
            }
            if handshake.len() >= need {
                let sni = parse_sni(&handshake[4..need])?;
                return Ok(Peeked { bytes, sni });
            }
        }
    }
}

/// A cursor over a byte slice that fails with a description, never panics.
struct Cur<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err(format!("the ClientHello is truncated in its {}", self.what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<usize, String> {
        Ok(self.take(1)?[0] as usize)
    }
    fn u16(&mut self) -> Result<usize, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }
}

/// The SNI of a ClientHello body (after the 4-byte handshake header).
pub fn parse_sni(body: &[u8]) -> Result<Option<String>, String> {
    let mut c = Cur {
        b: body,
        what: "version and random",
    };
    c.take(2 + 32)?;
    c.what = "session id";
    let n = c.u8()?;
    c.take(n)?;
    c.what = "cipher suites";
    let n = c.u16()?;
    c.take(n)?;
    c.what = "compression methods";
    let n = c.u8()?;
    c.take(n)?;
    if c.b.is_empty() {
        return Ok(None); // no extensions at all
    }
    c.what = "extensions";
    let n = c.u16()?;
    let mut ext = Cur {
        b: c.take(n)?,
        what: "extensions",
    };
    while !ext.b.is_empty() {
        let ty = ext.u16()?;
        let len = ext.u16()?;
        let data = ext.take(len)?;
        if ty != 0 {
            continue;
        }
        let mut list = Cur {
            b: data,
            what: "server_name extension",
        };
        let n = list.u16()?;
        let mut names = Cur {
            b: list.take(n)?,
            what: "server_name list",
        };
        while !names.b.is_empty() {
            let kind = names.u8()?;
            let n = names.u16()?;
            let name = names.take(n)?;
            if kind == 0 {
                let s = std::str::from_utf8(name)
                    .map_err(|_| "the server name is not ASCII".to_owned())?;
                if s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
                {
                    return Err("the server name is not a host name".to_owned());
                }
                return Ok(Some(s.to_ascii_lowercase()));
            }
        }
        return Ok(None);
    }
    Ok(None)
}
