//! The relay protocol on the wire, shared by both ends.
//!
//! Control connection (TLS 1.3, relay's pinned key):
//!
//! 1. relay → hub: [`Challenge`] (a fresh 32-byte nonce);
//! 2. hub → relay: [`Hello`] (public key, signature, optional enrolment
//!    token, optional LAN address);
//! 3. relay → hub: [`Verdict`] — `Welcome` (hub-id, domain) or `Refused`
//!    (a sentence saying why; the relay then closes);
//! 4. yamux over the same TLS stream, the hub as client. Streams the relay
//!    opens carry one browser connection each: a PROXY protocol v2 header,
//!    then raw bytes. Streams the hub opens carry one [`Request`] and its
//!    [`Response`].
//!
//! Frames before yamux and on control streams are a 4-byte big-endian
//! length and that many bytes of JSON, at most [`MAX_FRAME`].
//!
//! Invariants: the signed message is domain-separated ([`AUTH_CONTEXT`]),
//! and binds the nonce, the TLS exporter value of this very connection and
//! the public key; a frame larger than [`MAX_FRAME`] is refused before it
//! is read.

use std::net::{IpAddr, SocketAddr};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::RelayError;

/// Protocol version spoken by this build.
pub const VERSION: u32 = 1;
/// Largest JSON frame either side accepts.
pub const MAX_FRAME: usize = 16 * 1024;
/// Domain separation for the hub's signature.
pub const AUTH_CONTEXT: &[u8] = b"porchlight-relay hub authentication v1\0";
/// TLS exporter label (RFC 8446 section 7.5) for the channel binding.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-porchlight-relay-hub-auth";

#[derive(Debug, Serialize, Deserialize)]
pub struct Challenge {
    pub version: u32,
    /// 32 random bytes, hex.
    pub nonce: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Signature over [`signed_message`], hex.
    pub signature: String,
    /// The enrolment token's text, for a key the relay does not know yet.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub lan_addr: Option<SocketAddr>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Welcome {
        hub_id: String,
        domain: String,
        /// This connection enrolled the key (the token is now spent).
        enrolled_now: bool,
    },
    Refused {
        reason: String,
    },
}

/// A hub's control request, one per hub-opened stream.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Replace the TXT records of `name`, which must be
    /// `_acme-challenge.<own hub-id>.<domain>`. Empty `values` clears.
    SetTxt { name: String, values: Vec<String> },
    /// The LAN address for `lan.<hub-id>.<domain>`.
    SetLan { addr: Option<IpAddr> },
    /// Liveness check; answered with `Ok`.
    Ping,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Refused { reason: String },
}

/// The bytes the hub signs.
pub fn signed_message(nonce: &[u8; 32], exporter: &[u8; 32], public_key: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(AUTH_CONTEXT.len() + 96);
    m.extend_from_slice(AUTH_CONTEXT);
    m.extend_from_slice(nonce);
    m.extend_from_slice(exporter);
    m.extend_from_slice(public_key);
    m
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), RelayError> {
    let body = serde_json::to_vec(msg).map_err(|e| RelayError::Protocol(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(RelayError::Protocol(format!(
            "a message of {} bytes is over the limit of {MAX_FRAME}",
            body.len()
        )));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)
        .await
        .map_err(RelayError::io("sending a relay protocol message"))?;
    w.flush()
        .await
        .map_err(RelayError::io("sending a relay protocol message"))
}

/// Reads one frame of type `T`.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    what: &str,
) -> Result<T, RelayError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)
        .await
        .map_err(RelayError::io(format!("reading the {what}")))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(RelayError::Protocol(format!(
            "the {what} is {len} bytes, over the limit of {MAX_FRAME}"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .await
        .map_err(RelayError::io(format!("reading the {what}")))?;
    serde_json::from_slice(&body)
        .map_err(|e| RelayError::Protocol(format!("the {what} is malformed: {e}")))
}

/// Parses 32 bytes of hex.
pub fn hex32(s: &str, what: &str) -> Result<[u8; 32], RelayError> {
    let v = hex_decode(s).ok_or_else(|| RelayError::Protocol(format!("the {what} is not hex")))?;
    v.try_into()
        .map_err(|_| RelayError::Protocol(format!("the {what} is not 32 bytes")))
}

pub fn hex64(s: &str, what: &str) -> Result<[u8; 64], RelayError> {
    let v = hex_decode(s).ok_or_else(|| RelayError::Protocol(format!("the {what} is not hex")))?;
    v.try_into()
        .map_err(|_| RelayError::Protocol(format!("the {what} is not 64 bytes")))
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()
}

pub fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

/// PROXY protocol v2 (haproxy's proxy-protocol.txt, section 2.2): the
/// 12-byte signature, version 2 + command PROXY, TCP over IPv4 or IPv6.
pub mod proxy {
    use super::*;

    pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
    /// Longest address block accepted (addresses plus TLVs).
    pub const MAX_ADDR_LEN: usize = 512;

    /// The header for a TCP connection from `src` to `dst`. Mixed families
    /// are written as IPv6 (IPv4-mapped).
    pub fn encode(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
        let mut h = SIGNATURE.to_vec();
        h.push(0x21); // version 2, PROXY
        match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => {
                h.push(0x11); // TCP over IPv4
                h.extend_from_slice(&12u16.to_be_bytes());
                h.extend_from_slice(&s.ip().octets());
                h.extend_from_slice(&d.ip().octets());
                h.extend_from_slice(&s.port().to_be_bytes());
                h.extend_from_slice(&d.port().to_be_bytes());
            }
            _ => {
                let v6 = |a: SocketAddr| match a.ip() {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                h.push(0x21); // TCP over IPv6
                h.extend_from_slice(&36u16.to_be_bytes());
                h.extend_from_slice(&v6(src).octets());
                h.extend_from_slice(&v6(dst).octets());
                h.extend_from_slice(&src.port().to_be_bytes());
                h.extend_from_slice(&dst.port().to_be_bytes());
            }
        }
        h
    }

    /// Reads exactly one header from `r` and returns the source address.
    /// Nothing after the header is consumed.
    pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Result<SocketAddr, RelayError> {
        let bad = |why: &str| RelayError::Protocol(format!("PROXY v2 header: {why}"));
        let mut fixed = [0u8; 16];
        r.read_exact(&mut fixed)
            .await
            .map_err(RelayError::io("reading the PROXY header"))?;
        if fixed[..12] != SIGNATURE {
            return Err(bad("wrong signature"));
        }
        if fixed[12] != 0x21 {
            return Err(bad("not version 2 with command PROXY"));
        }
        let len = u16::from_be_bytes([fixed[14], fixed[15]]) as usize;
        if len > MAX_ADDR_LEN {
            return Err(bad("address block too long"));
        }
        let mut rest = vec![0u8; len];
        r.read_exact(&mut rest)
            .await
            .map_err(RelayError::io("reading the PROXY header"))?;
        match fixed[13] {
            0x11 if len >= 12 => {
                let ip: [u8; 4] = rest[0..4].try_into().unwrap_or_default();
                let port = u16::from_be_bytes([rest[8], rest[9]]);
                Ok(SocketAddr::new(IpAddr::from(ip), port))
            }
            0x21 if len >= 36 => {
                let ip: [u8; 16] = rest[0..16].try_into().unwrap_or_default();
                let port = u16::from_be_bytes([rest[32], rest[33]]);
                let ip = std::net::Ipv6Addr::from(ip);
                let ip = ip
                    .to_ipv4_mapped()
                    .map(IpAddr::V4)
                    .unwrap_or(IpAddr::V6(ip));
                Ok(SocketAddr::new(ip, port))
            }
            _ => Err(bad("not TCP over IPv4 or IPv6")),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn round_trip() {
            for (s, d) in [
                ("203.0.113.7:51234", "127.0.0.1:443"),
                ("[2001:db8::1]:40000", "[::1]:443"),
                ("198.51.100.2:1", "[::1]:443"),
            ] {
                let (s, d): (SocketAddr, SocketAddr) = (s.parse().unwrap(), d.parse().unwrap());
                let mut h = encode(s, d);
                h.extend_from_slice(b"after");
                let mut r = &h[..];
                assert_eq!(read(&mut r).await.unwrap(), s);
                assert_eq!(r, b"after");
            }
            let mut junk = &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..];
            assert!(read(&mut junk).await.is_err());
        }
    }
}
