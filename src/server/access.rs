//! Who may use the HTTP listener: Host, Origin and API-token checks.
//!
//! robin listens on loopback, but any web page the user opens can make their browser send
//! requests there. Four checks stop that: the `Host` header must name this machine (a DNS
//! rebinding attack sends the attacker's host name), a browser's `Origin` must be on an
//! allow-list (empty by default), a request a page on another site made without an `Origin`
//! (an `<img>`, a `<script>`, a plain link: `Sec-Fetch-Site` says so) is refused, and, when
//! configured, a bearer token must be presented.
//!
//! An allowed origin on this host (`http://localhost:5173`) is only as trustworthy as whoever
//! serves it: any local user can serve a page on a free loopback port. [`Access::local_origin`]
//! picks such origins out, and the listener then asks the kernel who listens on that port
//! (`admission::check_origin_server`).
use std::net::{IpAddr, SocketAddr};

use super::{Request, Response};

/// The access policy of one listener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Origins allowed to call: exact (`http://localhost:5173`) or patterns where `*` stands
    /// for any run of characters (`app://*`), or for a port number when it ends the pattern
    /// after a colon (`http://localhost:*`). The configuration's default is
    /// [`DEFAULT_WS_ORIGINS`](crate::config::DEFAULT_WS_ORIGINS).
    pub allowed_origins: Vec<String>,
    /// When set, `/ws` and `/api/1/*` need `Authorization: Bearer <token>` or `?token=<token>`.
    pub api_token: Option<String>,
    /// The listener's own IP when it is not loopback or a wildcard, which `Host` may also name.
    pub listen_ip: Option<String>,
}

impl Access {
    /// The default policy for a listener bound to `addr`.
    pub fn for_listener(addr: SocketAddr) -> Access {
        let ip = addr.ip();
        let listen_ip = (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string());
        Access { listen_ip, ..Access::default() }
    }

    /// Checks Host and Origin, and the token when `needs_token`; the error is the response.
    pub fn check(&self, request: &Request, needs_token: bool) -> Result<(), Response> {
        if let Some(host) = request.header("host") {
            if !self.host_allowed(host) {
                let reason = format!(
                    "Host '{host}' is not allowed: robin only answers to localhost, 127.0.0.1 or [::1]"
                );
                return Err(Response::error(403, &reason));
            }
        }
        // A browser tells where a request comes from. `<img src=.../api/1/messages>` on another
        // site sends no Origin, but `Sec-Fetch-Site: cross-site`: without this check such a
        // GET would drain the messages or take a task's result.
        let fetched_from_elsewhere = matches!(request.header("sec-fetch-site"), Some(site) if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site"));
        if fetched_from_elsewhere && request.header("origin").is_none() {
            let reason = "a page on another site may not use robin's API (Sec-Fetch-Site without an Origin)";
            return Err(Response::error(403, reason));
        }
        if let Some(origin) = request.header("origin") {
            let origin = origin.trim_end_matches('/');
            if !same_origin(request, origin) && !self.origin_allowed(origin) {
                let reason = format!("Origin '{origin}' is not allowed; allow it with --ws-origin {origin}");
                return Err(Response::error(403, &reason));
            }
        }
        if let (true, Some(expected)) = (needs_token, &self.api_token) {
            let bearer =
                request.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
            let presented = bearer.or_else(|| request.query_param("token"));
            if !presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes())) {
                let reason =
                    "missing or wrong API token: send 'Authorization: Bearer <token>' or '?token=<token>'";
                return Err(Response::error(401, reason).with_header("WWW-Authenticate", "Bearer"));
            }
        }
        Ok(())
    }

    /// The `Origin` to name in `Access-Control-Allow-Origin`: a page of another, allowed
    /// origin (robind's own page needs no CORS).
    pub fn cors_origin(&self, request: &Request) -> Option<String> {
        let origin = request.header("origin")?.trim_end_matches('/');
        (!same_origin(request, origin) && self.origin_allowed(origin)).then(|| origin.to_string())
    }

    /// The request's `Origin` when it is allowed, not robind's own page, and a web page on this
    /// host (http or https on `localhost`, `*.localhost`, a loopback or unspecified address):
    /// such an origin may only be honoured when one of the users robind serves listens on its
    /// port. `app://localhost` and other non-network schemes are not served over TCP, so they
    /// are not returned.
    pub fn local_origin(&self, request: &Request) -> Option<LocalOrigin> {
        let origin = request.header("origin")?.trim_end_matches('/');
        if same_origin(request, origin) || !self.origin_allowed(origin) {
            return None;
        }
        let url = url::Url::parse(origin).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let on_this_host = match url.host()? {
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                name == "localhost" || name.ends_with(".localhost")
            }
            url::Host::Ipv4(ip) => ip.is_loopback() || ip.is_unspecified(),
            url::Host::Ipv6(ip) => {
                let ip = IpAddr::V6(ip).to_canonical();
                ip.is_loopback() || ip.is_unspecified()
            }
        };
        let port = url.port_or_known_default()?;
        on_this_host.then(|| LocalOrigin { origin: origin.to_string(), port })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|allowed| matches_pattern(allowed.trim_end_matches('/'), origin))
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(name, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }
            }),
        };
        let name = name.to_ascii_lowercase();
        matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1")
            || self.listen_ip.as_deref() == Some(name.as_str())
    }
}

/// An allowed page origin served on this host: who listens on `port` decides whether it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalOrigin {
    /// The origin as the browser sent it, for the refusal.
    pub origin: String,
    /// The TCP port that serves it (80 or 443 when the origin names none).
    pub port: u16,
}

/// robind's own status page: the same origin as the (already checked) Host.
fn same_origin(request: &Request, origin: &str) -> bool {
    request.header("host").is_some_and(|host| origin == format!("http://{host}"))
}

/// Whether `origin` matches `pattern`, where `*` stands for any run of characters and the rest
/// must match exactly (ASCII case aside), over the whole origin. A `*` that ends the pattern
/// after a colon is a port: one to five digits. So `http://localhost:*` takes
/// `http://localhost:5173` but not `http://localhost.evil.example`,
/// `http://localhost:5173.evil.example` or `http://localhost:80@evil.example`.
pub fn matches_pattern(pattern: &str, origin: &str) -> bool {
    match pattern.strip_suffix(":*") {
        Some(host) => origin.rsplit_once(':').is_some_and(|(origin_host, port)| {
            (1..=5).contains(&port.len())
                && port.bytes().all(|b| b.is_ascii_digit())
                && glob(host, origin_host)
        }),
        None => glob(pattern, origin),
    }
}

/// `*` stands for any run of characters, the rest matches exactly (ASCII case aside).
fn glob(pattern: &str, origin: &str) -> bool {
    let (pattern, origin) = (pattern.as_bytes(), origin.as_bytes());
    // Iterative glob matching with one backtrack point: linear for patterns with a single `*`,
    // and never exponential.
    let (mut p, mut o, mut star, mut resume) = (0, 0, None, 0);
    while o < origin.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            resume = o;
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&origin[o]) {
            p += 1;
            o += 1;
        } else if let Some(at) = star {
            p = at + 1;
            resume += 1;
            o = resume;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Compares secrets without an early exit, so timing does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], query: Option<&str>) -> Request {
        Request {
            method: "GET".into(),
            path: "/ws".into(),
            query: query.map(str::to_string),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            ..Request::default()
        }
    }

    #[test]
    fn hosts_must_name_this_machine() {
        let access = Access::for_listener("127.0.0.1:5042".parse().unwrap());
        for ok in ["localhost", "localhost:5042", "127.0.0.1:5042", "[::1]:5042", "[::1]", "LOCALHOST"] {
            assert!(access.check(&request(&[("host", ok)], None), false).is_ok(), "{ok}");
        }
        for bad in ["evil.example", "evil.example:5042", "127.0.0.1.evil.example", "localhost.evil:5042"] {
            assert_eq!(
                access.check(&request(&[("host", bad)], None), false).unwrap_err().status,
                403,
                "{bad}"
            );
        }
        let lan = Access::for_listener("192.168.1.5:5042".parse().unwrap());
        assert!(lan.check(&request(&[("host", "192.168.1.5:5042")], None), false).is_ok());
    }

    #[test]
    fn origins_need_the_allow_list() {
        let mut access = Access::default();
        let from_page = request(&[("origin", "http://localhost:5173")], None);
        assert_eq!(access.check(&from_page, false).unwrap_err().status, 403);
        access.allowed_origins.push("http://localhost:5173/".into());
        assert!(access.check(&from_page, false).is_ok());
        assert!(access.check(&request(&[], None), false).is_ok(), "no Origin: not a browser");
        let own_page = request(&[("host", "127.0.0.1:5042"), ("origin", "http://127.0.0.1:5042")], None);
        assert!(Access::default().check(&own_page, false).is_ok(), "robind's own page");
        let other_port = request(&[("host", "127.0.0.1:5042"), ("origin", "http://127.0.0.1:8080")], None);
        assert_eq!(Access::default().check(&other_port, false).unwrap_err().status, 403);
    }

    #[test]
    fn requests_a_page_elsewhere_made_without_an_origin_are_refused() {
        let access = Access { allowed_origins: vec!["http://localhost:5173".into()], ..Access::default() };
        let image = request(&[("sec-fetch-site", "cross-site"), ("sec-fetch-dest", "image")], None);
        assert_eq!(access.check(&image, false).unwrap_err().status, 403);
        let sibling = request(&[("sec-fetch-site", "same-site")], None);
        assert_eq!(access.check(&sibling, false).unwrap_err().status, 403);
        let typed = request(&[("sec-fetch-site", "none")], None);
        assert!(access.check(&typed, false).is_ok(), "the user typed the address");
        let ui = request(&[("sec-fetch-site", "cross-site"), ("origin", "http://localhost:5173")], None);
        assert!(access.check(&ui, false).is_ok(), "an allowed page's fetch carries its Origin");
    }

    #[test]
    fn origin_patterns_match_whole_origins() {
        for (pattern, origin, expected) in [
            ("app://*", "app://localhost", true),
            ("app://localhost", "app://localhost", true),
            ("http://localhost:*", "http://localhost:5173", true),
            ("http://localhost:*", "http://localhost.evil.example", false),
            ("http://localhost:*", "http://localhost:5173.evil.example", false),
            ("http://localhost:*", "http://localhost:80@evil.example", false),
            ("http://localhost:*", "http://localhost:", false),
            ("http://localhost:*", "http://localhost:123456", false),
            ("http://[::1]:*", "http://[::1]:8000", true),
            ("http://*:*", "http://127.0.0.1:8000", true),
            ("http://localhost:*", "https://localhost:5173", false),
            ("http://*.example", "http://a.b.example", true),
            ("http://*.example", "http://example", false),
            ("HTTP://LOCALHOST:*", "http://localhost:1", true),
            ("*", "anything", true),
        ] {
            assert_eq!(matches_pattern(pattern, origin), expected, "{pattern} ~ {origin}");
        }
    }

    #[test]
    fn allowed_origins_on_this_host_are_picked_out_with_their_port() {
        let access = Access {
            allowed_origins: vec![
                "http://localhost:*".into(),
                "http://*.localhost:*".into(),
                "app://*".into(),
                "https://127.0.0.1".into(),
                "http://[::1]:*".into(),
                "http://example.com:*".into(),
            ],
            ..Access::default()
        };
        let local = |origin: &str| {
            access
                .local_origin(&request(&[("host", "127.0.0.1:5042"), ("origin", origin)], None))
                .map(|o| o.port)
        };
        assert_eq!(local("http://localhost:8000"), Some(8000));
        assert_eq!(local("http://app.localhost:5173"), Some(5173));
        assert_eq!(local("https://127.0.0.1"), Some(443), "the scheme's default port");
        assert_eq!(local("http://[::1]:8080"), Some(8080));
        assert_eq!(local("app://localhost"), None, "not served over TCP");
        assert_eq!(local("http://example.com:8000"), None, "not on this host");
        assert_eq!(local("http://localhost.evil.example"), None, "not allowed at all");
        let own = request(&[("host", "127.0.0.1:5042"), ("origin", "http://127.0.0.1:5042")], None);
        assert_eq!(Access::default().local_origin(&own), None, "robind's own page");
    }

    #[test]
    fn cors_names_an_allowed_other_origin_only() {
        let access = Access { allowed_origins: vec!["app://*".into()], ..Access::default() };
        let app = request(&[("host", "127.0.0.1:5042"), ("origin", "app://localhost")], None);
        assert_eq!(access.cors_origin(&app).as_deref(), Some("app://localhost"));
        let own = request(&[("host", "127.0.0.1:5042"), ("origin", "http://127.0.0.1:5042")], None);
        assert_eq!(access.cors_origin(&own), None);
        let other = request(&[("host", "127.0.0.1:5042"), ("origin", "http://evil.example")], None);
        assert_eq!(access.cors_origin(&other), None);
    }

    #[test]
    fn token_by_header_or_query() {
        let access = Access { api_token: Some("s3cret".into()), ..Access::default() };
        assert!(access.check(&request(&[("authorization", "Bearer s3cret")], None), true).is_ok());
        assert!(access.check(&request(&[], Some("since=1&token=s3cret")), true).is_ok());
        assert_eq!(
            access.check(&request(&[("authorization", "Bearer nope")], None), true).unwrap_err().status,
            401
        );
        assert_eq!(access.check(&request(&[], None), true).unwrap_err().status, 401);
        assert!(access.check(&request(&[], None), false).is_ok(), "routes outside the API need none");
    }
}
