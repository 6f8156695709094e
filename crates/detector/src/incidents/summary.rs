//! One line per incident, naming the actor first: what an operator reads in a cron
//! mail and acts on.

use portwatch_store::incidents::Incident;
use portwatch_store::time::format_micros;
use serde_json::Value;

/// The incident's one-line summary, from its kind and details.
pub fn summarize(i: &Incident) -> String {
    let d = &i.details;
    let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    let n = |k: &str| d.get(k).and_then(Value::as_i64).unwrap_or(0);
    let span = span(i);
    let peak = d
        .get("peak_ratio")
        .and_then(Value::as_f64)
        .map(|r| format!(", peak {r:.1}× threshold"))
        .unwrap_or_default();
    let body = match i.kind.as_str() {
        "new_listener" if s("activity").as_deref() == Some("new executable") => format!(
            "{}/{} served by an executable never seen serving it: {}{}; before: {}",
            s("protocol").unwrap_or_default(),
            n("port"),
            s("process").unwrap_or_default(),
            identity(d),
            s("before").unwrap_or_default()
        ),
        "new_listener" => {
            let owner = match s("process") {
                Some(p) => format!(" by {p}{}", identity(d)),
                None => " (owner not visible)".into(),
            };
            format!("new listener {}{owner}", i.cause)
        }
        "vanished_listener" => {
            let owner = s("process").map(|p| format!(" ({p})")).unwrap_or_default();
            format!("{}{owner} stopped listening", i.cause)
        }
        "remote_source" => {
            let net = s("network").unwrap_or_else(|| i.cause.clone());
            let who = match s("top_address") {
                Some(a) if net.starts_with(&a) => a,
                Some(a) => format!("{net} ({a})"),
                None => net,
            };
            match s("activity").as_deref() {
                Some("new resolver") => format!(
                    "DNS answered by {} ({}), a resolver never seen answering: {} answers, {} names",
                    s("address").unwrap_or_default(),
                    s("network").unwrap_or_else(|| i.cause.clone()),
                    n("answers"),
                    n("names")
                ),
                Some("icmp") => format!(
                    "ICMP from {}: {} packets, {} in; {} packets, {} back",
                    s("address").unwrap_or_default(),
                    n("packets_in"),
                    bytes(n("bytes_in")),
                    n("packets"),
                    bytes(n("bytes"))
                ),
                Some("udp flood") => format!(
                    "UDP flood at {} from {} addresses: {} datagrams to {} ports where nothing listens",
                    s("address").unwrap_or_default(),
                    n("sources"),
                    n("datagrams"),
                    n("ports")
                ),
                Some("flood") => format!(
                    "SYN flood at tcp/{} from {} addresses: {} connection attempts",
                    n("port"),
                    n("sources"),
                    n("syns")
                ),
                Some("repeated connections") => {
                    let by = s("process").map(|p| format!(" ({p})")).unwrap_or_default();
                    format!(
                        "repeated connections from {who} to tcp/{}{by}: {} connections, up to {} in a round (usual at most {})",
                        n("port"),
                        n("connections"),
                        n("round_peak"),
                        n("ceiling")
                    )
                }
                Some("large transfer") => {
                    let by = s("process").map(|p| format!(" ({p})")).unwrap_or_default();
                    format!(
                        "large transfer from {who}, a network never seen at tcp/{}{by}: {} in a round (new networks sent at most {}), {} packets",
                        n("port"),
                        bytes(n("round_bytes")),
                        bytes(n("ceiling")),
                        n("packets")
                    )
                }
                Some("new clients") => {
                    let by = s("process").map(|p| format!(" ({p})")).unwrap_or_default();
                    format!(
                        "clients from new networks at tcp/{}{by}: up to {} networks never seen before in a round (usual at most {}), {} connections, e.g. {}",
                        n("port"),
                        n("networks"),
                        n("ceiling"),
                        n("connections"),
                        s("top_address").unwrap_or_default()
                    )
                }
                Some("port scan") => format!(
                    "port scan from {who}: {} ports, {} packets",
                    n("ports"),
                    n("packets")
                ),
                _ => format!(
                    "unusual traffic from {who}: {} packets, {} to {} ports",
                    n("packets"),
                    bytes(n("bytes")),
                    n("ports")
                ),
            }
        }
        "local_process" if s("activity").as_deref() == Some("new destination port") => {
            let who = format!("{}{}", s("process").unwrap_or_default(), identity(d));
            format!(
                "{who} connected to tcp/{} for the first time: {} in {} packets to {}",
                n("port"),
                bytes(n("bytes")),
                n("packets"),
                peers(d, n("destinations"))
            )
        }
        "local_process" if s("activity").as_deref() == Some("first connections out") => {
            let who = format!("{}{}", s("process").unwrap_or_default(), identity(d));
            let ports: Vec<String> = d
                .get("ports")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_u64)
                        .map(|p| format!("tcp/{p}"))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{who}, a server that never connected out, connected to {}: {} in {} packets to {}",
                ports.join(", "),
                bytes(n("bytes")),
                n("packets"),
                peers(d, n("destinations"))
            )
        }
        "local_process" if s("activity").as_deref() == Some("upload") => {
            let who = format!("{}{}", i.cause, identity(d));
            format!(
                "{who} sent up to {} to one address in a round (usual at most {}): {} in {} packets to {}",
                bytes(n("round_peak")),
                bytes(n("ceiling")),
                bytes(n("bytes")),
                n("packets"),
                peers(d, n("destinations"))
            )
        }
        "local_process" if s("activity").as_deref() == Some("ping sweep") => {
            let nets = strings(d, "subnets");
            format!(
                "{} pings up to {} addresses a round across {} ({}), no process named (a raw socket: a ping sweep): {} packets out, up to {} addresses answered",
                s("source").unwrap_or_default(),
                n("destinations"),
                match nets.len() {
                    1 => "one network".to_string(),
                    k => format!("{k} networks"),
                },
                nets.join(", "),
                n("packets"),
                n("answering")
            )
        }
        "local_process" if s("activity").as_deref() == Some("icmp") => format!(
            "{} sends ICMP to {} ({}), no process named (a raw socket: ping, or a tunnel): {} packets, {} out; {} packets, {} back",
            s("source").unwrap_or_default(),
            s("address").unwrap_or_default(),
            s("network").unwrap_or_default(),
            n("packets"),
            bytes(n("bytes")),
            n("packets_in"),
            bytes(n("bytes_in"))
        ),
        "local_process" if s("activity").as_deref() == Some("held channel") => {
            let who = format!("{}{}", s("process").unwrap_or_default(), identity(d));
            let to = match (s("address"), d.get("port").and_then(Value::as_u64)) {
                (Some(a), Some(p)) if a.contains(':') => format!("[{a}]:{p}"),
                (Some(a), Some(p)) => format!("{a}:{p}"),
                (a, _) => a.unwrap_or_default(),
            };
            let name = s("server_name")
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let last = d
                .get("round_packets")
                .and_then(Value::as_array)
                .and_then(|v| v.last())
                .and_then(Value::as_u64)
                .unwrap_or(0);
            format!(
                "{who} keeps a channel open to {to}{name}, a network it never reached before: {} rounds in a row, {last} packets in the last",
                n("rounds")
            )
        }
        "local_process" => {
            let who = format!("{}{}", i.cause, identity(d));
            scan_of_hosts(&who, d).unwrap_or_else(|| {
                format!(
                    "{who} sent {} in {} packets to {} destinations",
                    bytes(n("bytes")),
                    n("packets"),
                    n("destinations")
                )
            })
        }
        "new_program" => {
            let who = format!("new program {}{}", i.cause, identity(d));
            scan_of_hosts(&who, d).unwrap_or_else(|| match n("packets") {
                0 => format!("{who} on the network: sockets, no traffic attributed"),
                p => format!(
                    "{who} on the network: {} in {p} packets to {}",
                    bytes(n("bytes")),
                    peers(d, n("destinations"))
                ),
            })
        }
        "dns" if s("activity").as_deref() == Some("generated names") => {
            let by = s("process").map(|p| format!(" by {p}")).unwrap_or_default();
            format!(
                "DNS: {} lookups{by} of never-seen domains that do not resolve (a domain-generation algorithm): {} names unanswered, up to {} domains a round, e.g. {}",
                n("queries"),
                n("unanswered"),
                n("domains"),
                strings(d, "examples").join(", ")
            )
        }
        "dns" if s("activity").as_deref() == Some("new domains") => {
            let by = s("process").map(|p| format!(" by {p}")).unwrap_or_default();
            format!(
                "DNS: {} lookups{by} under never-seen domains, up to {} of them a round, e.g. {}",
                n("queries"),
                n("domains"),
                strings(d, "examples").join(", ")
            )
        }
        "dns" => {
            let by = s("process").map(|p| format!(" by {p}")).unwrap_or_default();
            format!(
                "DNS: {} queries under {}{by}, {} names never seen",
                n("queries"),
                i.cause,
                n("new_names")
            )
        }
        "sustained" => format!("sustained deviation: {}", s("what").unwrap_or_default()),
        _ => {
            let top = d
                .get("top_features")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|f| f.get("feature"))
                .and_then(Value::as_str)
                .map(|f| format!(" (mostly {f})"))
                .unwrap_or_default();
            format!("unusual {}{top}", i.cause)
        }
    };
    let programs: Vec<&str> = d
        .get("new_programs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let with = match programs.as_slice() {
        [] => String::new(),
        [one] => format!(", with new program {one}"),
        many => format!(", with new programs {}", many.join(", ")),
    };
    format!("{body}{with}; {span}{peak}")
}

/// A local process scanning other hosts: a sweep of one network, or many ports.
fn scan_of_hosts(who: &str, d: &Value) -> Option<String> {
    if d.get("activity").and_then(Value::as_str) != Some("scan of other hosts") {
        return None;
    }
    let n = |k: &str| d.get(k).and_then(Value::as_i64).unwrap_or(0);
    Some(match d.get("network").and_then(Value::as_str) {
        Some(net) => format!(
            "{who} swept {} hosts of {net} ({} ports)",
            n("destinations"),
            n("ports")
        ),
        None => format!(
            "{who} scanned {} ports on {} hosts",
            n("ports"),
            n("destinations")
        ),
    })
}

/// `x1.example (203.0.113.7:443) and 2 more`: a new program's busiest peer, by server
/// name where one was seen.
fn peers(d: &Value, destinations: i64) -> String {
    let Some(p) = d
        .get("peers")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    else {
        return match destinations {
            1 => "1 destination".into(),
            n => format!("{n} destinations"),
        };
    };
    let addr = p.get("address").and_then(Value::as_str).unwrap_or("?");
    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
    let endpoint = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(_)) => format!("[{addr}]:{port}"),
        _ => format!("{addr}:{port}"),
    };
    let first = match p.get("server_name").and_then(Value::as_str) {
        Some(name) => format!("{name} ({endpoint})"),
        None => endpoint,
    };
    match destinations - 1 {
        more if more > 0 => format!("{first} and {more} more"),
        _ => first,
    }
}

/// ` (pid 4242, /dev/shm/.x, user www-data)`: what identifies a local process beyond
/// the name it gives itself, as far as it was visible.
fn identity(d: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(pid) = d.get("pid").and_then(Value::as_i64) {
        parts.push(format!("pid {pid}"));
    }
    if let Some(exe) = d.get("exe").and_then(Value::as_str) {
        parts.push(exe.to_string());
    }
    match (
        d.get("user").and_then(Value::as_str),
        d.get("uid").and_then(Value::as_i64),
    ) {
        (Some(u), _) => parts.push(format!("user {u}")),
        (None, Some(uid)) => parts.push(format!("uid {uid}")),
        _ => {}
    }
    // A container's (or another network namespace's) service says where it runs.
    match (
        d.get("container").and_then(Value::as_str),
        d.get("netns").and_then(Value::as_i64),
    ) {
        (Some(c), _) => parts.push(format!("container {c}")),
        (None, Some(ns)) => parts.push(format!("netns {ns}")),
        _ => {}
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// `from 10:00 to 10:14 (15 rounds)`, with the date when it spans days.
/// The strings of the array at `key` in `d` (none when absent).
fn strings<'a>(d: &'a Value, key: &str) -> Vec<&'a str> {
    d.get(key)
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn span(i: &Incident) -> String {
    let (a, b) = (format_micros(i.start), format_micros(i.end));
    let short = |t: &str| t.get(11..16).unwrap_or(t).to_string();
    let day = |t: &str| t.get(..10).unwrap_or(t).to_string();
    let rounds = if i.rounds == 1 {
        "1 round".to_string()
    } else {
        format!("{} rounds", i.rounds)
    };
    if day(&a) == day(&b) {
        format!("{} {}–{} UTC ({rounds})", day(&a), short(&a), short(&b))
    } else {
        format!(
            "{} {} – {} {} UTC ({rounds})",
            day(&a),
            short(&a),
            day(&b),
            short(&b)
        )
    }
}

/// Bytes for people: `812 B`, `4.2 kB`, `17.3 MB`, `1.2 GB`.
pub fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    match n {
        x if x < 1e3 => format!("{x:.0} B"),
        x if x < 1e6 => format!("{:.1} kB", x / 1e3),
        x if x < 1e9 => format!("{:.1} MB", x / 1e6),
        x => format!("{:.1} GB", x / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use portwatch_store::incidents::IncidentStatus;
    use serde_json::json;

    use super::*;

    fn incident(kind: &str, cause: &str, details: Value) -> Incident {
        Incident {
            id: 1,
            kind: kind.into(),
            cause: cause.into(),
            first_round_id: 1,
            last_round_id: 3,
            start: 1_767_571_200_000_000,
            end: 1_767_571_200_000_000 + 175_000_000,
            peak_score: 9.0,
            status: IncidentStatus::Open,
            quiet_rounds: 0,
            rounds: 3,
            summary: String::new(),
            details,
            opened_at: String::new(),
            updated_at: String::new(),
            acknowledged_at: None,
            accepted_at: None,
            accepted_by: None,
            closed_at: None,
            note: None,
        }
    }

    #[test]
    fn the_actor_comes_first() {
        let scan = incident(
            "remote_source",
            "203.0.113.0/24",
            json!({"activity": "port scan", "top_address": "203.0.113.7", "ports": 512,
                   "packets": 1030, "peak_ratio": 4.25}),
        );
        assert_eq!(
            summarize(&scan),
            "port scan from 203.0.113.0/24 (203.0.113.7): 512 ports, 1030 packets; \
             2026-01-05 00:00–00:02 UTC (3 rounds), peak 4.2× threshold"
        );
        let guess = incident(
            "remote_source",
            "198.18.7.0/24 tcp/22",
            json!({"activity": "repeated connections", "top_address": "198.18.7.9",
                   "network": "198.18.7.0/24",
                   "port": 22, "process": "sshd", "connections": 41, "round_peak": 17,
                   "ceiling": 2}),
        );
        assert_eq!(
            summarize(&guess),
            "repeated connections from 198.18.7.0/24 (198.18.7.9) to tcp/22 (sshd): \
             41 connections, up to 17 in a round (usual at most 2); \
             2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let transfer = incident(
            "remote_source",
            "203.0.113.0/24 tcp/22",
            json!({"activity": "large transfer", "top_address": "203.0.113.9",
                   "network": "203.0.113.0/24", "port": 22, "process": "sshd",
                   "round_bytes": 3_400_000, "ceiling": 12_000, "packets": 2_900,
                   "connections": 0}),
        );
        assert_eq!(
            summarize(&transfer),
            "large transfer from 203.0.113.0/24 (203.0.113.9), a network never seen at \
             tcp/22 (sshd): 3.4 MB in a round (new networks sent at most 12.0 kB), 2900 \
             packets; 2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let surge = incident(
            "remote_source",
            "new clients tcp/443",
            json!({"activity": "new clients", "top_address": "198.51.100.4",
                   "port": 443, "process": "nginx", "networks": 61, "ceiling": 12,
                   "connections": 3868}),
        );
        assert_eq!(
            summarize(&surge),
            "clients from new networks at tcp/443 (nginx): up to 61 networks never seen \
             before in a round (usual at most 12), 3868 connections, e.g. 198.51.100.4; \
             2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let mail = incident(
            "local_process",
            "gunicorn tcp/25",
            json!({"activity": "new destination port", "process": "gunicorn", "pid": 1291,
                   "exe": "/usr/bin/gunicorn", "port": 25, "bytes": 48_000, "packets": 90,
                   "destinations": 4,
                   "peers": [{"address": "203.0.113.25", "port": 25, "packets": 30}]}),
        );
        assert_eq!(
            summarize(&mail),
            "gunicorn (pid 1291, /usr/bin/gunicorn) connected to tcp/25 for the first time: \
             48.0 kB in 90 packets to 203.0.113.25:25 and 3 more; \
             2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let proxy = incident(
            "local_process",
            "nginx outbound",
            json!({"activity": "first connections out", "process": "nginx", "pid": 1036,
                   "exe": "/usr/sbin/nginx", "ports": [80, 443], "bytes": 2_400_000,
                   "packets": 2100, "destinations": 41,
                   "peers": [{"address": "203.0.113.80", "port": 443, "packets": 120,
                              "server_name": "www.example.shop"}]}),
        );
        assert_eq!(
            summarize(&proxy),
            "nginx (pid 1036, /usr/sbin/nginx), a server that never connected out, connected \
             to tcp/80, tcp/443: 2.4 MB in 2100 packets to www.example.shop \
             (203.0.113.80:443) and 40 more; 2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let held = incident(
            "local_process",
            "gunicorn 203.0.113.0/24",
            json!({"activity": "held channel", "process": "gunicorn", "pid": 1291,
                   "exe": "/usr/bin/gunicorn", "address": "203.0.113.7", "port": 443,
                   "server_name": "d3k9x2.cloudfront.net", "rounds": 5,
                   "round_packets": [9, 6, 41, 6, 7]}),
        );
        assert_eq!(
            summarize(&held),
            "gunicorn (pid 1291, /usr/bin/gunicorn) keeps a channel open to 203.0.113.7:443 \
             (d3k9x2.cloudfront.net), a network it never reached before: 5 rounds in a row, \
             7 packets in the last; 2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        // ICMP: the host sending through pings, or pinged; no process either way.
        let tunnel = incident(
            "local_process",
            "icmp 203.0.113.0/24",
            json!({"activity": "icmp", "address": "203.0.113.50", "network": "203.0.113.0/24",
                   "source": "10.0.2.15", "packets": 2_400, "bytes": 1_900_000,
                   "packets_in": 2_400, "bytes_in": 310_000}),
        );
        assert_eq!(
            summarize(&tunnel),
            "10.0.2.15 sends ICMP to 203.0.113.50 (203.0.113.0/24), no process named (a raw \
             socket: ping, or a tunnel): 2400 packets, 1.9 MB out; 2400 packets, 310.0 kB back; \
             2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let sweep = incident(
            "local_process",
            "icmp sweep",
            json!({"activity": "ping sweep", "source": "10.0.2.15", "destinations": 253,
                   "subnets": ["10.0.2.0/24", "10.0.3.0/24"], "packets": 1_004,
                   "answering": 9}),
        );
        assert_eq!(
            summarize(&sweep),
            "10.0.2.15 pings up to 253 addresses a round across 2 networks (10.0.2.0/24, \
             10.0.3.0/24), no process named (a raw socket: a ping sweep): 1004 packets out, up \
             to 9 addresses answered; 2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let rogue = incident(
            "remote_source",
            "203.0.113.0/24",
            json!({"activity": "new resolver", "address": "203.0.113.53",
                   "network": "203.0.113.0/24", "answers": 240, "names": 31}),
        );
        assert_eq!(
            summarize(&rogue),
            "DNS answered by 203.0.113.53 (203.0.113.0/24), a resolver never seen answering: \
             240 answers, 31 names; 2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let pinged = incident(
            "remote_source",
            "198.51.100.0/24",
            json!({"activity": "icmp", "address": "198.51.100.7", "network": "198.51.100.0/24",
                   "source": "10.0.2.15", "packets": 100, "bytes": 9_800,
                   "packets_in": 52_000, "bytes_in": 76_000_000}),
        );
        assert_eq!(
            summarize(&pinged),
            "ICMP from 198.51.100.7: 52000 packets, 76.0 MB in; 100 packets, 9.8 kB back; \
             2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let udp = incident(
            "remote_source",
            "flood udp",
            json!({"activity": "udp flood", "address": "10.0.2.15", "sources": 41_200,
                   "datagrams": 41_257, "ports": 30_000, "bytes": 11_000_000}),
        );
        assert_eq!(
            summarize(&udp),
            "UDP flood at 10.0.2.15 from 41200 addresses: 41257 datagrams to 30000 ports \
             where nothing listens; 2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let exfil = incident(
            "local_process",
            "celery",
            json!({"activity": "upload", "process": "celery", "pid": 1402,
                   "exe": "/usr/bin/python3.11", "round_peak": 26_100_000, "ceiling": 180_000,
                   "bytes": 52_500_000, "packets": 36_000, "destinations": 3,
                   "peers": [{"address": "198.51.100.80", "port": 443,
                              "server_name": "drop.example", "packets": 35_000}]}),
        );
        assert_eq!(
            summarize(&exfil),
            "celery (pid 1402, /usr/bin/python3.11) sent up to 26.1 MB to one address in a \
             round (usual at most 180.0 kB): 52.5 MB in 36000 packets to \
             drop.example (198.51.100.80:443) and 2 more; 2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let swapped = incident(
            "new_listener",
            "tcp/22 /var/tmp/.ssh/sshd",
            json!({"activity": "new executable", "protocol": "tcp", "port": 22,
                   "process": "sshd", "pid": 31337, "exe": "/var/tmp/.ssh/sshd", "uid": 0,
                   "user": "root", "before": "/usr/sbin/sshd"}),
        );
        assert_eq!(
            summarize(&swapped),
            "tcp/22 served by an executable never seen serving it: sshd (pid 31337, \
             /var/tmp/.ssh/sshd, user root); before: /usr/sbin/sshd; \
             2026-01-05 00:00–00:02 UTC (3 rounds)"
        );
        let l = incident(
            "new_listener",
            "tcp/4444",
            json!({"process": "nc", "pid": 4242}),
        );
        assert!(summarize(&l).starts_with("new listener tcp/4444 by nc (pid 4242); "));
        let l = incident(
            "new_listener",
            "tcp/4444",
            json!({"process": "sshd", "pid": 4242, "exe": "/dev/shm/.sshd", "uid": 33,
                   "user": "www-data"}),
        );
        assert!(
            summarize(&l).starts_with(
                "new listener tcp/4444 by sshd (pid 4242, /dev/shm/.sshd, user www-data); "
            ),
            "{}",
            summarize(&l)
        );
        // A container's listener says which container; another namespace's, which one.
        let l = incident(
            "new_listener",
            "tcp/8080",
            json!({"process": "nginx", "pid": 5151, "uid": 0, "user": "root",
                   "netns": 4_026_532_281i64, "container": "docker:3f4e1c2a9b8d/web-1"}),
        );
        assert!(
            summarize(&l).starts_with(
                "new listener tcp/8080 by nginx (pid 5151, user root, container docker:3f4e1c2a9b8d/web-1); "
            ),
            "{}",
            summarize(&l)
        );
        let l = incident(
            "new_listener",
            "tcp/8080",
            json!({"process": "python3", "pid": 5152, "netns": 4_026_532_281i64}),
        );
        assert!(
            summarize(&l)
                .starts_with("new listener tcp/8080 by python3 (pid 5152, netns 4026532281); "),
            "{}",
            summarize(&l)
        );
        let l = incident("new_listener", "udp/53", json!({"uid": 0}));
        assert!(summarize(&l).starts_with("new listener udp/53 (owner not visible); "));
        let p = incident(
            "local_process",
            "curl",
            json!({"pid": 77, "bytes": 52_000_000, "packets": 40_000, "destinations": 1}),
        );
        assert!(summarize(&p).starts_with("curl (pid 77) sent 52.0 MB in 40000 packets"));
        let beacon = incident(
            "new_program",
            "kworker-upd",
            json!({"activity": "new program", "pid": 23456, "exe": "/dev/shm/.kworker-upd",
                   "user": "www-data", "bytes": 5400, "packets": 18, "destinations": 2,
                   "peers": [{"address": "198.51.100.7", "port": 443,
                              "server_name": "q8x0k2m1.xyz", "packets": 16, "bytes": 5000}]}),
        );
        assert!(
            summarize(&beacon).starts_with(
                "new program kworker-upd (pid 23456, /dev/shm/.kworker-upd, user www-data) \
                 on the network: 5.4 kB in 18 packets to q8x0k2m1.xyz (198.51.100.7:443) \
                 and 1 more; "
            ),
            "{}",
            summarize(&beacon)
        );
        let nmap = incident(
            "new_program",
            "nmap",
            json!({"activity": "scan of other hosts", "network": "10.0.5.0/24",
                   "destinations": 254, "ports": 3}),
        );
        assert!(
            summarize(&nmap)
                .starts_with("new program nmap swept 254 hosts of 10.0.5.0/24 (3 ports); ")
        );
        let v6 = json!({"peers": [{"address": "2001:db8::1", "port": 443}]});
        assert_eq!(peers(&v6, 1), "[2001:db8::1]:443");
        assert_eq!(peers(&json!({}), 3), "3 destinations");
        let tunnel = incident(
            "dns",
            "updates-cloud.com",
            json!({"queries": 3924, "new_names": 543, "new_programs": ["iodine"]}),
        );
        assert!(
            summarize(&tunnel).starts_with(
                "DNS: 3924 queries under updates-cloud.com, 543 names never seen, \
                 with new program iodine; "
            ),
            "{}",
            summarize(&tunnel)
        );
        let dga = incident(
            "dns",
            "generated names",
            json!({"activity": "generated names", "queries": 1800, "unanswered": 1790,
                   "domains": 44, "examples": ["abqzkfe.biz", "kqplrmxw.ru"]}),
        );
        assert!(
            summarize(&dga).starts_with(
                "DNS: 1800 lookups of never-seen domains that do not resolve (a domain-generation \
                 algorithm): 1790 names unanswered, up to 44 domains a round, e.g. abqzkfe.biz, \
                 kqplrmxw.ru; "
            ),
            "{}",
            summarize(&dga)
        );
        let relay = incident(
            "dns",
            "new domains",
            json!({"activity": "new domains", "queries": 640, "unanswered": 0,
                   "domains": 23, "examples": ["www.kqplrmx.shop", "www.abqzk.io"]}),
        );
        assert!(
            summarize(&relay).starts_with(
                "DNS: 640 lookups under never-seen domains, up to 23 of them a round, e.g. \
                 www.kqplrmx.shop, www.abqzk.io; "
            ),
            "{}",
            summarize(&relay)
        );
        let quiet = incident(
            "new_program",
            "iodine",
            json!({"activity": "new program", "pid": 4040, "packets": 0, "bytes": 0}),
        );
        assert!(
            summarize(&quiet).starts_with(
                "new program iodine (pid 4040) on the network: sockets, no traffic attributed; "
            ),
            "{}",
            summarize(&quiet)
        );
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1_200_000_000), "1.2 GB");
    }
}
