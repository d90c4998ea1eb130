//! Which host names this hub answers to: the defence against DNS
//! rebinding.
//!
//! A page on `http://evil.example` can have its name re-pointed at the
//! hub's address; the browser then sends the hub requests that it counts
//! as same-origin with the attacker's page — cookies aside, they can read
//! every answer. What gives such a request away is its `Host` header, which
//! names the attacker's domain. So every request, `/setup` and `/healthz`
//! included, passes [`guard`] first: a `Host` that is not in
//! [`AllowedHosts`] gets `421 Misdirected Request` with a message saying
//! how to add the name, and reaches no handler and no database.
//!
//! Allowed, by [`AllowedHosts::from_config`]:
//!
//! * `localhost` and loopback addresses (`127.0.0.0/8`, `[::1]`);
//! * the host of `web.public_url`;
//! * the address `web.listen` names, and — when that is a wildcard
//!   (`0.0.0.0`, `[::]`), so the hub answers on every address of the
//!   machine — any IP literal. An IP literal cannot be rebound: a browser
//!   sends it only for a page whose origin is that address itself;
//! * names added at start-up with [`AllowedHosts::add`] (say, the
//!   remote-access names, via `App::allow_hosts`).
//!
//! Names compare case-insensitively, without a trailing dot, and without
//! the port (rebinding is about the name; the CSRF guard still compares
//! `Origin` with `Host` port and all). A request without any `Host` (and
//! without an authority in its URI) passes: browsers always send one, so
//! such a request is not a browser being rebound.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use porchlight_config::WebConfig;

use crate::App;

/// The host names the hub answers to; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    names: BTreeSet<String>,
    /// Every IP literal (the hub listens on a wildcard address).
    any_ip: bool,
    /// Specific IP literals (besides loopback, always allowed).
    ips: BTreeSet<IpAddr>,
}

/// `Host`-header form → bare lower-case name: no port, no brackets, no
/// trailing dot. `None` when it is not a plausible host.
fn bare_host(host: &str) -> Option<String> {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        inside
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return None,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_' | '%'));
    ok.then_some(name)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

impl AllowedHosts {
    /// Loopback names only.
    pub fn loopback() -> AllowedHosts {
        let mut a = AllowedHosts::default();
        a.names.insert("localhost".into());
        a
    }

    /// Loopback, `web.public_url`'s host and `web.listen`'s address.
    pub fn from_config(web: &WebConfig) -> AllowedHosts {
        let mut a = AllowedHosts::loopback();
        if let Some(url) = &web.public_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or(url);
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            // The config crate has validated the URL; a host it let through
            // that is still odd is simply not added.
            let _ = a.add(authority);
        }
        let ip = web.listen.ip();
        if ip.is_unspecified() {
            a.any_ip = true;
        } else {
            a.ips.insert(ip);
        }
        a
    }

    /// Adds a name (or `name:port`, or an IP literal); refuses what is
    /// not a host name, saying why.
    pub fn add(&mut self, host: &str) -> Result<(), String> {
        let name = bare_host(host)
            .ok_or_else(|| format!("`{host}` is not a host name the hub can answer to"))?;
        match name.parse::<IpAddr>() {
            Ok(ip) => {
                self.ips.insert(ip);
            }
            Err(_) => {
                self.names.insert(name);
            }
        }
        Ok(())
    }

    /// Whether a request naming `host` (a `Host` header's value) is for
    /// this hub.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = bare_host(host) else {
            return false;
        };
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || self.any_ip || self.ips.contains(&ip),
            Err(_) => self.names.contains(&name),
        }
    }

    /// The names (not IP literals) allowed, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

/// The host a request names: its `Host` header, or else its URI's
/// authority (HTTP/2).
fn requested_host(req: &Request) -> Option<String> {
    if let Some(h) = req.headers().get(header::HOST) {
        // A `Host` that is not even text is named as such, and refused.
        return Some(h.to_str().unwrap_or("\u{fffd}").to_owned());
    }
    req.uri().authority().map(|a| a.as_str().to_owned())
}

/// Middleware: refuses requests for host names this hub does not answer to
/// (421), before anything else looks at them.
pub async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let Some(host) = requested_host(&req) else {
        return next.run(req).await;
    };
    if app.allowed_hosts.allows(&host) || app.remote.allows(&host) {
        return next.run(req).await;
    }
    tracing::info!(%host, "refused a request for a host name this hub does not answer to");
    let shown: String = host.chars().take(100).collect();
    let body = crate::pages::layout::bare(
        "Wrong address",
        maud::html! {
            h1 { "This hub does not answer to that name" }
            p.error { "The request was addressed to “" (shown) "”, which is not one of this hub's names, so it was refused (a page on another site may have tried to reach the hub through its own name)." }
            p { "If this is the name you use for the hub, set it as " code { "web.public_url" } " in the hub's configuration and restart it. Until then, open the hub by its address or as " code { "localhost" } " on the hub's own machine." }
        },
    );
    (StatusCode::MISDIRECTED_REQUEST, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(listen: &str, public_url: Option<&str>) -> WebConfig {
        WebConfig {
            listen: listen.parse().unwrap(),
            public_url: public_url.map(str::to_owned),
            ..WebConfig::default()
        }
    }

    #[test]
    fn names_from_the_config() {
        let a = AllowedHosts::from_config(&web("192.168.1.5:8080", Some("https://Hub.Example/")));
        for ok in [
            "hub.example",
            "HUB.example:443",
            "hub.example.",
            "localhost:8080",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
            "192.168.1.5:8080",
        ] {
            assert!(a.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "hub.example.evil.example",
            "192.168.1.6",
            "[fe80::1]:8080",
            "",
            "hub.example:http",
            "hub.example/x",
            "\u{fffd}",
        ] {
            assert!(!a.allows(bad), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_listener_answers_any_ip_literal_but_no_other_name() {
        let a = AllowedHosts::from_config(&web("0.0.0.0:8080", None));
        assert!(a.allows("10.0.0.7:8080"));
        assert!(a.allows("[2001:db8::1]:8080"));
        assert!(!a.allows("nas.local:8080"));
        let mut a = a;
        a.add("NAS.local").unwrap();
        assert!(a.allows("nas.local:8080"));
        assert!(a.add("not a name").is_err());
        assert_eq!(a.names().collect::<Vec<_>>(), ["localhost", "nas.local"]);
    }
}
