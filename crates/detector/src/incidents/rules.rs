//! Allow rules: what an operator said is normal. Matching activity opens no incident
//! and counts as normal for training.
//!
//! | kind | value | matches |
//! |---|---|---|
//! | `port` | `tcp/8080`, `udp/53`, `8080` | a new listener on that port (either protocol without one) |
//! | `process` | `backup-agent` | a local process by its stored name |
//! | `dns` | `example.com` | that domain and its subdomains |
//! | `cidr` | `203.0.113.0/24`, `2001:db8::/32`, `192.0.2.7` | a remote address in it |

use std::net::IpAddr;

use portwatch_store::incidents::AllowRule;

use super::cause::Subject;

/// One rule, checked and parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A listening port; `tcp` None for both protocols.
    Port { tcp: Option<bool>, port: u16 },
    /// A process name.
    Process(String),
    /// A DNS suffix, lower case, without a trailing dot.
    Dns(String),
    /// A network.
    Cidr { net: IpAddr, prefix: u8 },
}

impl Rule {
    /// Parses `kind` and `value` as `detector allow add` takes them; the error says
    /// what a good value looks like.
    pub fn parse(kind: &str, value: &str) -> Result<Rule, String> {
        let v = value.trim();
        match kind {
            "port" => {
                let (tcp, port) = match v.split_once('/') {
                    Some((p, n)) => match p.to_ascii_lowercase().as_str() {
                        "tcp" => (Some(true), n),
                        "udp" => (Some(false), n),
                        _ => {
                            return Err(format!("port {v:?}: expected tcp/PORT, udp/PORT or PORT"));
                        }
                    },
                    None => (None, v),
                };
                let port = port.parse::<u16>().map_err(|_| {
                    format!("port {v:?}: expected tcp/PORT, udp/PORT or PORT (0-65535)")
                })?;
                Ok(Rule::Port { tcp, port })
            }
            "process" if !v.is_empty() => Ok(Rule::Process(v.to_string())),
            "process" => Err("process: expected a process name".into()),
            "dns" => {
                let d = v.trim_end_matches('.').to_ascii_lowercase();
                if d.is_empty() || d.contains(char::is_whitespace) || d.starts_with('.') {
                    return Err(format!("dns {v:?}: expected a domain such as example.com"));
                }
                Ok(Rule::Dns(d))
            }
            "cidr" => {
                let (addr, prefix) = match v.split_once('/') {
                    Some((a, p)) => (a, Some(p)),
                    None => (v, None),
                };
                let net: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("cidr {v:?}: expected ADDRESS[/PREFIX]"))?;
                let max = if net.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => max,
                    Some(p) => p
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= max)
                        .ok_or_else(|| format!("cidr {v:?}: the prefix must be 0-{max}"))?,
                };
                Ok(Rule::Cidr { net, prefix })
            }
            other => Err(format!(
                "unknown rule kind {other:?}: expected port, process, dns or cidr"
            )),
        }
    }

    /// The value as stored: normalised, so the same rule is stored once.
    pub fn value(&self) -> String {
        match self {
            Rule::Port {
                tcp: Some(true),
                port,
            } => format!("tcp/{port}"),
            Rule::Port {
                tcp: Some(false),
                port,
            } => format!("udp/{port}"),
            Rule::Port { tcp: None, port } => port.to_string(),
            Rule::Process(p) => p.clone(),
            Rule::Dns(d) => d.clone(),
            Rule::Cidr { net, prefix } => format!("{}/{prefix}", mask(*net, *prefix)),
        }
    }

    /// The stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Rule::Port { .. } => "port",
            Rule::Process(_) => "process",
            Rule::Dns(_) => "dns",
            Rule::Cidr { .. } => "cidr",
        }
    }

    /// Whether this rule covers `subject`.
    pub fn allows(&self, subject: &Subject) -> bool {
        match (self, subject) {
            (
                Rule::Port { tcp, port },
                Subject::Listener {
                    tcp: t, port: p, ..
                },
            ) => port == p && tcp.is_none_or(|x| x == *t),
            (Rule::Process(name), Subject::Process(p)) => name == p,
            (
                Rule::Process(name),
                Subject::Listener {
                    process: Some(p), ..
                },
            ) => name == p,
            // The registered domain under the suffix, or every name queried under it.
            (Rule::Dns(suffix), Subject::Domain { domain, names }) => {
                let under = |n: &str| {
                    let n = n.trim_end_matches('.').to_ascii_lowercase();
                    n == *suffix || n.ends_with(&format!(".{suffix}"))
                };
                under(domain) || (!names.is_empty() && names.iter().all(|n| under(n)))
            }
            (Rule::Cidr { net, prefix }, Subject::Remote(addrs)) => {
                !addrs.is_empty()
                    && addrs.iter().all(|a| {
                        a.is_ipv4() == net.is_ipv4() && mask(*a, *prefix) == mask(*net, *prefix)
                    })
            }
            _ => false,
        }
    }
}

/// `addr` with all but its first `prefix` bits cleared.
pub fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// The rules in the database, parsed; a stored rule that no longer parses is skipped
/// (the CLI checks values before storing them).
pub fn load(rows: &[AllowRule]) -> Vec<Rule> {
    rows.iter()
        .filter_map(|r| Rule::parse(&r.kind, &r.value).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(tcp: bool, port: u16, process: Option<&str>) -> Subject {
        Subject::Listener {
            tcp,
            port,
            process: process.map(str::to_string),
        }
    }

    #[test]
    fn values_are_checked_and_normalised() {
        assert_eq!(Rule::parse("port", "TCP/8080").unwrap().value(), "tcp/8080");
        assert_eq!(Rule::parse("port", "53").unwrap().value(), "53");
        assert!(Rule::parse("port", "tcp/70000").is_err());
        assert!(Rule::parse("port", "sctp/1").is_err());
        assert_eq!(
            Rule::parse("dns", "Example.COM.").unwrap().value(),
            "example.com"
        );
        assert!(Rule::parse("dns", "").is_err());
        assert_eq!(
            Rule::parse("cidr", "203.0.113.77/24").unwrap().value(),
            "203.0.113.0/24"
        );
        assert_eq!(
            Rule::parse("cidr", "2001:db8::1").unwrap().value(),
            "2001:db8::1/128"
        );
        assert!(Rule::parse("cidr", "10.0.0.0/33").is_err());
        assert!(Rule::parse("cidr", "example").is_err());
        assert!(Rule::parse("colour", "red").is_err());
    }

    #[test]
    fn rules_match_their_subjects_only() {
        let p = Rule::parse("port", "tcp/8080").unwrap();
        assert!(p.allows(&listener(true, 8080, None)));
        assert!(!p.allows(&listener(false, 8080, None)));
        assert!(
            Rule::parse("port", "8080")
                .unwrap()
                .allows(&listener(false, 8080, None))
        );
        let domain = |d: &str, names: &[&str]| Subject::Domain {
            domain: d.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        let d = Rule::parse("dns", "example.com").unwrap();
        assert!(d.allows(&domain("example.com", &["api.Example.com"])));
        assert!(!d.allows(&domain("badexample.com", &["badexample.com"])));
        let deeper = Rule::parse("dns", "t.example.com").unwrap();
        assert!(deeper.allows(&domain(
            "example.com",
            &["a1.t.example.com", "b2.t.example.com"]
        )));
        assert!(!deeper.allows(&domain(
            "example.com",
            &["a1.t.example.com", "www.example.com"]
        )));
        let c = Rule::parse("cidr", "203.0.113.0/24").unwrap();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(c.allows(&Subject::Remote(vec![a("203.0.113.7"), a("203.0.113.9")])));
        assert!(!c.allows(&Subject::Remote(vec![a("203.0.113.7"), a("198.51.100.1")])));
        assert!(!c.allows(&Subject::Remote(vec![a("2001:db8::1")])));
        let pr = Rule::parse("process", "backup-agent").unwrap();
        assert!(pr.allows(&Subject::Process("backup-agent".into())));
        assert!(pr.allows(&listener(true, 9000, Some("backup-agent"))));
        assert!(!pr.allows(&Subject::Process("backup".into())));
        assert!(!pr.allows(&Subject::None));
    }
}
