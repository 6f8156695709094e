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
            let who = match s("top_address") {
                Some(a) if i.cause.starts_with(&a) => a,
                Some(a) => format!("{} ({a})", i.cause),
                None => i.cause.clone(),
            };
            match s("activity").as_deref() {
                Some("flood") => format!(
                    "SYN flood at tcp/{} from {} addresses: {} connection attempts",
                    n("port"),
                    n("sources"),
                    n("syns")
                ),
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
        "local_process" => {
            let who = format!("{}{}", i.cause, identity(d));
            match s("activity").as_deref() {
                Some("scan of other hosts") => match s("network") {
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
                },
                _ => format!(
                    "{who} sent {} in {} packets to {} destinations",
                    bytes(n("bytes")),
                    n("packets"),
                    n("destinations")
                ),
            }
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
    format!("{body}; {span}{peak}")
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
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// `from 10:00 to 10:14 (15 rounds)`, with the date when it spans days.
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
        let l = incident("new_listener", "udp/53", json!({"uid": 0}));
        assert!(summarize(&l).starts_with("new listener udp/53 (owner not visible); "));
        let p = incident(
            "local_process",
            "curl",
            json!({"pid": 77, "bytes": 52_000_000, "packets": 40_000, "destinations": 1}),
        );
        assert!(summarize(&p).starts_with("curl (pid 77) sent 52.0 MB in 40000 packets"));
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1_200_000_000), "1.2 GB");
    }
}
