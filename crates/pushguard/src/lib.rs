//! Where a Web Push may go: the address rule for push endpoints, shared by
//! the hub (`porchlight-notify`) and the neighborhood server (issue 14
//! item 12). A browser hands the server an endpoint URL and the server
//! POSTs to it, so an endpoint is a request the server makes on someone's
//! behalf; left unchecked it would let any signed-in user make the server
//! call services on its own machine or LAN (a blind SSRF: the router's
//! admin page, a NAS, a cloud metadata service at 169.254.169.254).
//!
//! The rule: a push service is on the public internet. An endpoint is
//! refused when its host **is or resolves to** an address that is not
//! globally routable — loopback, private (RFC 1918, IPv6 unique local),
//! link-local, carrier-grade NAT, unspecified, multicast, documentation,
//! benchmarking or reserved ([`refused_address`]), IPv4 inside IPv6
//! (mapped, NAT64, 6to4) judged by the IPv4 address it carries. A name
//! with several addresses is refused if any of them is.
//!
//! When it is checked:
//!
//! * **at subscription** ([`check_endpoint`]): the scheme, an IP-literal
//!   host, and every address the host name resolves to;
//! * **at every send**, because DNS answers change (DNS rebinding: a name
//!   that resolved to a public address when the browser subscribed can
//!   resolve to 10.0.0.1 an hour later): [`check_url`] before the request,
//!   and [`Guarded`] as the HTTP client's only resolver. The check and the
//!   connection share **one** resolution: `Guarded` resolves the name once,
//!   checks every address, and hands exactly those addresses to the
//!   connector, so no second lookup can swap them between check and
//!   connect. IP literals never reach a resolver; [`check_url`] judges them
//!   (with the same WHATWG URL parser the HTTP client uses, so `127.1` or
//!   `2130706433` are judged as the 127.0.0.1 they are). The client
//!   ([`client`]) has no proxy (a proxy would resolve the name itself),
//!   follows no redirects and **keeps no idle connection**: a pooled
//!   connection would carry the next push to the address an earlier
//!   lookup gave, past the resolver, so every send resolves and is judged
//!   afresh.
//!
//! The one exception is a push service on this machine, for tests
//! ([`LocalPush`]): off by default; the hub's `[web]
//! push_allow_loopback_http` and the neighborhood's push options turn on
//! [`LocalPush::LoopbackLiterals`].

//!
//! [`send`] is the rest of sending one push, also shared: the check again,
//! RFC 8291 encryption, the VAPID JWT, the request.

#![forbid(unsafe_code)]

pub mod send;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// The error type of [`Resolve`] futures.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which push services on this machine are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalPush {
    /// None (the default): push services are on the public internet.
    #[default]
    Off,
    /// Also `http://` or `https://` to a loopback IP literal
    /// (`127.0.0.0/8`, `[::1]`): a push service standing in on this
    /// machine, as the browser tests run one. Names, even `localhost`, are
    /// still judged by their addresses and refused if those are loopback.
    LoopbackLiterals,
    /// Tests only: every push stays on this machine. Loopback literals, and
    /// names (with a test resolver) only when every address they resolve
    /// to is loopback; `http://` to either. Everything else is refused,
    /// public addresses included.
    LoopbackOnly,
}

/// Why `ip` cannot be a push service's address, or `None` when it is a
/// globally routable unicast address.
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "an unspecified (\"this network\") address",
        (127, ..) => "a loopback address",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (169, 254, _) => "a link-local address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (192, 0, 0) => "a reserved (IETF protocol) address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, ..) => "a multicast address",
        (240..=255, ..) => "a reserved or broadcast address",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) reach the
    // IPv4 address they carry; 6to4 (2002:aabb:ccdd::) routes to it.
    if (s[..5] == [0; 5] && s[5] == 0xffff) || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refused_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return refused_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        _ if s[..6] == [0; 6] => "an IPv4-compatible (deprecated) address",
        0x0064 if s[1] == 0xff9b && s[2] == 1 => "a private (local-use NAT64) address",
        0x0100 if s[1..4] == [0, 0, 0] => "a discard-only address",
        0x2001 if s[1] == 0 => "a Teredo tunnel address",
        0x2001 if s[1] == 0x0db8 => "a documentation address",
        0x2001 if s[1] < 0x0200 => "a reserved (IETF protocol) address",
        x if x & 0xfe00 == 0xfc00 => "a unique local (private) address",
        x if x & 0xffc0 == 0xfe80 => "a link-local address",
        x if x & 0xffc0 == 0xfec0 => "a site-local (private) address",
        x if x & 0xff00 == 0xff00 => "a multicast address",
        x if x & 0xe000 != 0x2000 => "an address outside the global unicast range",
        _ => return None,
    })
}

/// `127.0.0.0/8` or `::1` (not IPv4-mapped forms).
fn loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

const HTTPS_ONLY: &str = "endpoint must be an https:// URL of a push service";
const HTTPS_OR_LOOPBACK: &str =
    "endpoint must be an https:// URL of a push service (http:// is allowed only to 127.0.0.1 or [::1] on this server)";
const LOCAL_ONLY: &str = "only push services on this machine are allowed (a test setting)";

/// Checks what needs no lookup: the scheme and an IP-literal host. Returns
/// the host name still to resolve, or `None` for an IP literal (which is
/// then fully checked).
pub fn check_url(url: &Url, local: LocalPush) -> Result<Option<String>, String> {
    let http = match url.scheme() {
        "https" => false,
        "http" => true,
        _ => return Err(HTTPS_ONLY.into()),
    };
    let http_refusal = || match local {
        LocalPush::Off => HTTPS_ONLY.to_string(),
        _ => HTTPS_OR_LOOPBACK.to_string(),
    };
    let ip = match url.host() {
        None => return Err("endpoint has no host".into()),
        Some(url::Host::Domain("")) => return Err("endpoint has no host".into()),
        Some(url::Host::Domain(name)) => {
            if http && local != LocalPush::LoopbackOnly {
                return Err(http_refusal());
            }
            return Ok(Some(name.to_string()));
        }
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if local != LocalPush::Off && loopback(ip) {
        return Ok(None);
    }
    if local == LocalPush::LoopbackOnly {
        return Err(format!(
            "endpoint host {ip} is not on this machine: {LOCAL_ONLY}"
        ));
    }
    if http {
        return Err(http_refusal());
    }
    match refused_address(ip) {
        Some(why) => Err(format!(
            "endpoint host {ip} is {why}; push services are on the public internet"
        )),
        None => Ok(None),
    }
}

/// Checks the addresses `host` resolved to.
pub fn check_resolved(host: &str, addrs: &[IpAddr], local: LocalPush) -> Result<(), String> {
    if addrs.is_empty() {
        return Err(format!("endpoint host {host} has no address"));
    }
    for ip in addrs {
        if local == LocalPush::LoopbackOnly {
            if !loopback(*ip) {
                return Err(format!(
                    "endpoint host {host} resolves to {ip}: {LOCAL_ONLY}"
                ));
            }
        } else if let Some(why) = refused_address(*ip) {
            return Err(format!(
                "endpoint host {host} resolves to {ip}, {why}; push services are on the public internet"
            ));
        }
    }
    Ok(())
}

/// The subscription-time check: scheme, literal host, and every address
/// the name resolves to (through `resolver`, the one the sends use).
pub async fn check_endpoint(
    endpoint: &str,
    local: LocalPush,
    resolver: &Arc<dyn Resolve>,
) -> Result<(), String> {
    let url = Url::parse(endpoint).map_err(|_| "endpoint is not a URL".to_string())?;
    let Some(host) = check_url(&url, local)? else {
        return Ok(());
    };
    let addrs = lookup(resolver.as_ref(), &host).await?;
    check_resolved(&host, &addrs, local)
}

async fn lookup(resolver: &dyn Resolve, host: &str) -> Result<Vec<IpAddr>, String> {
    let name: Name = host
        .parse()
        .map_err(|_| format!("endpoint host {host:?} is not a host name"))?;
    let addrs = resolver
        .resolve(name)
        .await
        .map_err(|e| format!("cannot resolve the endpoint host {host}: {e}"))?;
    Ok(addrs.map(|a| a.ip()).collect())
}

/// A push refused by the address rule at send time (inside the HTTP
/// client's connector); [`refusal_in`] finds it in a request error.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The address-rule refusal behind a request error, if that is what it was.
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.0.clone());
        }
        cur = err.source();
    }
    None
}

/// The HTTP client's resolver: one lookup through `inner`, every address
/// checked, exactly the checked addresses returned to the connector.
pub struct Guarded {
    pub inner: Arc<dyn Resolve>,
    pub local: LocalPush,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = self.inner.clone();
        let local = self.local;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = inner.resolve(name).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            if let Err(why) = check_resolved(&host, &ips, local) {
                return Err(Box::new(Refused(why)) as BoxError);
            }
            Ok::<Addrs, BoxError>(Box::new(addrs.into_iter()))
        })
    }
}

/// The system's resolver (`getaddrinfo`, on a blocking thread).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok::<Addrs, BoxError>(Box::new(addrs.into_iter()))
        })
    }
}

/// A fixed name → addresses table (tests: no lookup leaves the machine).
/// Unknown names fail; answers can change while in use (to play a DNS
/// rebinding), and lookups are counted per name.
#[derive(Debug, Default)]
pub struct FixedResolver {
    table: Mutex<HashMap<String, Vec<IpAddr>>>,
    lookups: Mutex<HashMap<String, usize>>,
}

impl FixedResolver {
    pub fn new() -> FixedResolver {
        FixedResolver::default()
    }

    /// From now on, `name` resolves to `addrs`.
    pub fn set(&self, name: &str, addrs: &[IpAddr]) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_ascii_lowercase(), addrs.to_vec());
    }

    /// How many times `name` was looked up.
    pub fn lookups(&self, name: &str) -> usize {
        let l = self.lookups.lock().unwrap_or_else(|p| p.into_inner());
        l.get(&name.to_ascii_lowercase()).copied().unwrap_or(0)
    }
}

impl Resolve for FixedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        *self
            .lookups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host.clone())
            .or_default() += 1;
        let found = self
            .table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&host)
            .cloned();
        Box::pin(async move {
            match found {
                Some(ips) => {
                    let addrs: Vec<SocketAddr> =
                        ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
                    Ok::<Addrs, BoxError>(Box::new(addrs.into_iter()))
                }
                None => Err(format!("{host}: no such host in the test resolver").into()),
            }
        })
    }
}

/// The HTTP client pushes go through: `resolver` behind [`Guarded`], no
/// proxy, no redirects, no idle connections kept.
pub fn client(
    resolver: Arc<dyn Resolve>,
    local: LocalPush,
    user_agent: &str,
    timeout: std::time::Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        // Every send resolves and checks again (see the module docs).
        .pool_max_idle_per_host(0)
        .dns_resolver(Arc::new(Guarded {
            inner: resolver,
            local,
        }))
        .user_agent(user_agent)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_global_unicast_addresses_are_push_services() {
        for ok in [
            "8.8.8.8",
            "1.1.1.1",
            "142.250.74.106",
            "2a00:1450:4001:82b::200a",
            "2606:4700::6810:84e5",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(refused_address(ip(ok)), None, "{ok}");
        }
        for (bad, why) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.7", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fd00::1", "private"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:192.168.1.1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("64:ff9b::a00:1", "private"),
            ("2002:a00:1::1", "private"),
            ("::10.0.0.1", "IPv4-compatible"),
            ("2001::1", "Teredo"),
        ] {
            let got = refused_address(ip(bad));
            assert!(got.is_some_and(|w| w.contains(why)), "{bad}: {got:?}");
        }
    }

    #[test]
    fn urls_are_judged_as_the_http_client_parses_them() {
        let check = |u: &str, l| check_url(&Url::parse(u).unwrap(), l);
        // Decimal, short and hex forms of 127.0.0.1 are 127.0.0.1.
        for u in [
            "https://2130706433/x",
            "https://127.1/x",
            "https://0x7f.0.0.1/x",
            "https://[::ffff:7f00:1]/x",
        ] {
            let e = check(u, LocalPush::Off).unwrap_err();
            assert!(e.contains("loopback"), "{u}: {e}");
        }
        assert_eq!(
            check("https://push.example.net/x", LocalPush::Off),
            Ok(Some("push.example.net".into()))
        );
        assert_eq!(check("https://8.8.8.8/x", LocalPush::Off), Ok(None));
        assert!(check("ftp://push.example.net/x", LocalPush::Off)
            .unwrap_err()
            .contains("https://"));
        assert!(
            check("http://push.example.net/x", LocalPush::LoopbackLiterals)
                .unwrap_err()
                .contains("127.0.0.1")
        );
        assert_eq!(
            check("http://127.0.0.1:9/x", LocalPush::LoopbackLiterals),
            Ok(None)
        );
        assert_eq!(
            check("https://[::1]:9/x", LocalPush::LoopbackLiterals),
            Ok(None)
        );
        assert!(check("https://8.8.8.8/x", LocalPush::LoopbackOnly).is_err());
        assert_eq!(
            check("http://push.test:9/x", LocalPush::LoopbackOnly),
            Ok(Some("push.test".into()))
        );
    }
}
