//! The client's address, as every part of the server names it (throttles, audit events,
//! heartbeats, the request log): the TCP peer, unless the peer is one of the
//! `trusted_proxies`, in which case the address comes from the proxy's
//! `X-Forwarded-For` (or, without it, RFC 7239 `Forwarded: for=`).
//!
//! The forwarded list is read right to left, skipping trusted addresses: the first one
//! that is not a trusted proxy is the client (a client can prepend anything it likes, but
//! it cannot change what the proxies appended). From an untrusted peer both headers are
//! ignored, so nobody can pick the address a throttle counts against.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed (`trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parse a comma-separated list of addresses and CIDR ranges (`10.0.0.0/8, ::1`).
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("`{item}` is not an IP address or CIDR range"))?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// Whether no proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The client's address for a connection from `peer` with these headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &header::HeaderMap) -> IpAddr {
        if self.is_empty() || !self.contains(&peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = match headers.get("x-forwarded-for") {
            Some(v) => v
                .to_str()
                .unwrap_or("")
                .split(',')
                .filter_map(|s| parse_node(s.trim()))
                .collect(),
            None => headers
                .get(header::FORWARDED)
                .and_then(|v| v.to_str().ok())
                .map(forwarded_for)
                .unwrap_or_default(),
        };
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.contains(ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer)
    }
}

/// The `for=` addresses of an RFC 7239 `Forwarded` header, in order.
fn forwarded_for(value: &str) -> Vec<IpAddr> {
    value
        .split(',')
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("for")
                .then(|| parse_node(v.trim().trim_matches('"')))?
        })
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[::1]`, `[::1]:5678`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.rsplit_once(':')?.0.parse().ok()
}

/// The client's address of `req` (see the module documentation); `None` only for a
/// request without a peer (a test request).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(match req.app_data::<TrustedProxies>() {
        Some(t) => t.client_ip(peer, req.headers()),
        None => peer,
    })
}

/// [`client_ip`] as text, `unknown` without a peer.
pub fn client_ip_string(req: &HttpRequest) -> String {
    ip_text(client_ip(req))
}

/// An address as the logs and throttles name it: its text, or `unknown`.
pub fn ip_text(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".into(), address_text)
}

/// `ip` as its `Display` text, an IPv4 address without the formatter's machinery.
pub fn address_text(ip: IpAddr) -> String {
    let mut out = Vec::with_capacity(15);
    // Writing into a Vec cannot fail, and the digits, dots and colons are ASCII.
    let _ = write_ip(&mut out, ip);
    String::from_utf8(out).unwrap_or_else(|_| ip.to_string())
}

/// Write `ip` as its `Display` text (the access log's line): IPv4 octet by octet through
/// `itoa` (the formatter's padding machinery cost more than the rest of the line), IPv6 by
/// `Display`.
pub fn write_ip(out: &mut impl std::io::Write, ip: IpAddr) -> std::io::Result<()> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let mut buf = itoa::Buffer::new();
            out.write_all(buf.format(a).as_bytes())?;
            for octet in [b, c, d] {
                out.write_all(b".")?;
                out.write_all(buf.format(octet).as_bytes())?;
            }
            Ok(())
        }
        IpAddr::V6(_) => write!(out, "{ip}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn headers_count_only_from_trusted_peers() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let xff = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.1.1")]);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        // The rightmost untrusted hop: the client cannot forge what the proxies appended.
        assert_eq!(t.client_ip(proxy, &xff).to_string(), "203.0.113.7");
        assert_eq!(t.client_ip(stranger, &xff), stranger, "untrusted peer");
        assert_eq!(TrustedProxies::default().client_ip(proxy, &xff), proxy);
        let fwd = headers(&[(
            "forwarded",
            r#"for="[2001:db8::1]:4711";proto=https, for=10.2.2.2"#,
        )]);
        assert_eq!(t.client_ip(proxy, &fwd).to_string(), "2001:db8::1");
        let junk = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(t.client_ip(proxy, &junk), proxy);
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.example").is_err());
    }

    #[test]
    fn ips_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "192.0.2.255",
            "10.20.3.4",
            "::1",
            "2001:db8::7",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ip(&mut out, ip).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }
}
