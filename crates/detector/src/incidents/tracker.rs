//! The life of incidents, round by round — a pure state machine over the causes found
//! in each evaluated round, tested here without a database:
//!
//! - a cause not allowed and not accepted extends the active incident with the same
//!   kind and key, or opens one (two causes in one round are two incidents);
//! - a cause that only names a group of features, in the minutes after an incident
//!   whose kind explains that group (the scan breadth remembers probes for ten
//!   minutes), is that incident's echo: linked, never extending it;
//! - an active incident whose cause is absent for `close_after` evaluated rounds
//!   closes; a new listener counts as present while its port listens, anomalous round
//!   or not, so a service that stays is one incident, not one per flare-up;
//! - an open incident present for `adapt_after` without anyone acknowledging it is
//!   accepted as drift, and said once;
//! - a round whose every cause is allowed or accepted counts as normal (trainable).

use std::collections::{HashMap, HashSet};

use portwatch_features::port_key;
use portwatch_store::incidents::{Incident, IncidentStatus, IncidentWrite};
use portwatch_store::rounds::RoundInfo;
use serde::Serialize;
use serde_json::{Value, json};

use super::cause::{Cause, Kind, SCAN_MEMORY, SHIFT, Subject};
use super::rules::Rule;
use super::summary::summarize;

/// How long (µs, by the rounds' clock) after an accepted new listener was last seen as
/// an incident the anomalies it still causes are taken as its: the model needs hours of
/// rounds to learn a new service, and meanwhile what it flags in a round where the
/// service listens (its connections' TIME_WAIT sockets, its process's traffic) is the
/// service, not a new incident.
pub const LEARNING_WINDOW: i64 = 24 * 3600 * 1_000_000;

/// How incidents live.
#[derive(Clone, Debug)]
pub struct Config {
    /// Evaluated rounds without the cause after which an incident closes.
    pub close_after: i64,
    /// Presence (µs) after which an unacknowledged incident is accepted as drift; None:
    /// never.
    pub adapt_after: Option<i64>,
    /// How long (µs) after an incident's last round a group-only cause is its echo.
    pub echo_window: i64,
}

/// What happened to an incident in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Opened,
    Updated,
    Closed,
    /// Accepted automatically as drift.
    Adapted,
}

/// One round, as the tracker sees it.
pub struct Observation<'a> {
    pub round: &'a RoundInfo,
    pub score: Option<f32>,
    pub threshold: f32,
    pub anomalous: bool,
    /// The round before this one was over the threshold too.
    pub follows_anomaly: bool,
    /// The round's causes: those of an anomalous round, and in any round the new
    /// programs that talked in it.
    pub causes: Vec<Cause>,
    /// Ports listening in the round (`port_key`s).
    pub listening: &'a [u32],
}

struct Tracked {
    inc: Incident,
    new: bool,
    dirty: bool,
    rounds: Vec<(i64, Option<f32>)>,
    events: Vec<EventKind>,
}

/// Incidents being tracked through one run.
pub struct Tracker {
    cfg: Config,
    rules: Vec<Rule>,
    /// Accepted causes, and until when (µs, rounds' clock) the acceptance holds: for
    /// ever, except for a surge of new clients or an upload ([`acceptance_until`]).
    accepted: HashMap<(String, String), i64>,
    /// Accepted new listeners being learnt: port key, process, and until when.
    learning: Vec<(u32, Option<String>, i64)>,
    tracked: Vec<Tracked>,
    now: String,
    /// See [`Tracker::held_by_actor`].
    held_by_actor: bool,
}

impl Tracker {
    /// Starts from the incidents that may still move (active ones, and closed ones
    /// recent enough to have echoes), the allow rules, and the accepted incidents.
    /// `now` is the run's time as stored text.
    pub fn new(
        cfg: Config,
        known: Vec<Incident>,
        rules: Vec<Rule>,
        accepted: Vec<Incident>,
        now: &str,
    ) -> Self {
        let learning = accepted
            .iter()
            .filter(|i| i.kind == Kind::NewListener.as_str())
            .filter_map(|i| {
                let process = i.details.get("process").and_then(Value::as_str);
                Some((
                    listener_key(&i.cause)?,
                    process.map(str::to_string),
                    i.end.saturating_add(LEARNING_WINDOW),
                ))
            })
            .collect();
        Tracker {
            cfg,
            rules,
            accepted: accepted
                .into_iter()
                .map(|i| {
                    let until = acceptance_until(&i);
                    ((i.kind, i.cause), until)
                })
                .collect(),
            learning,
            tracked: known
                .into_iter()
                .map(|inc| Tracked {
                    inc,
                    new: false,
                    dirty: false,
                    rounds: Vec::new(),
                    events: Vec::new(),
                })
                .collect(),
            now: now.to_string(),
            held_by_actor: false,
        }
    }

    /// Whether a cause is normal in round `r` by an allow rule or an accepted incident.
    pub fn is_allowed(&self, c: &Cause, r: &RoundInfo) -> bool {
        self.accepted
            .get(&(c.kind.as_str().to_string(), c.key.clone()))
            .is_some_and(|&until| r.start <= until)
            || self.rules.iter().any(|r| r.allows(&c.subject))
    }

    /// Whether a cause is an accepted new service still being learnt: a group of
    /// features, or its own process, in a round where its port listens.
    fn is_learning(&self, c: &Cause, o: &Observation<'_>) -> bool {
        self.learning.iter().any(|(key, process, until)| {
            o.round.start <= *until
                && o.listening.contains(key)
                && match &c.subject {
                    Subject::None => matches!(c.kind, Kind::Features | Kind::Sustained),
                    Subject::Process(p) => process.as_deref() == Some(p.as_str()),
                    _ => false,
                }
        })
    }

    /// Whether the round observed last was held by an incident that names an actor, or
    /// had a cause naming one that a rule or an accept let through: its excess over the
    /// usual score is that actor's.
    pub fn held_by_actor(&self) -> bool {
        self.held_by_actor
    }

    /// Takes one evaluated round (in time order); returns true when the round counts as
    /// normal although anomalous (every cause allowed or accepted).
    pub fn observe(&mut self, o: Observation<'_>) -> bool {
        let names_actor =
            |kind: &str| kind != Kind::Features.as_str() && kind != Kind::Sustained.as_str();
        self.held_by_actor = o.causes.iter().any(|c| names_actor(c.kind.as_str()));
        let mut touched: HashSet<usize> = HashSet::new();
        let live: Vec<Cause> = o
            .causes
            .iter()
            .filter(|c| !self.is_allowed(c, o.round) && !self.is_learning(c, &o))
            .cloned()
            .collect();
        let suppressed = o.anomalous && !o.causes.is_empty() && live.is_empty();
        // A round that is not anomalous brings only causes found by presence (a new
        // program talking), which count as much as any.
        for c in live {
            let echo = match c.kind {
                Kind::Features => Some(c.group),
                Kind::Sustained => Some(SHIFT),
                _ => None,
            };
            // A group that already has an incident of its own, opened before the actor
            // it would echo was named (a desktop's unusual SSH sockets, then the stolen
            // key's upload through them), goes on being that incident: split, one
            // session was three incidents.
            let own = self.active(c.kind, &c.key);
            let predates = |t: usize| {
                own.is_some_and(|o| {
                    o != t
                        && self.tracked[o].inc.first_round_id < self.tracked[t].inc.first_round_id
                })
            };
            if let Some(group) = echo
                && let Some(t) = self.echo_target(group, o.round)
                && !predates(t)
            {
                self.held_by_actor |= names_actor(&self.tracked[t].inc.kind);
                self.link(t, o.round.id, o.score);
                continue;
            }
            let t = match own.or_else(|| self.naming(&c)) {
                Some(t) => {
                    self.extend(t, &o, &c.details);
                    t
                }
                None if is_guess(&c) && !clear(&o) => continue,
                None => self.open(&o, &c),
            };
            touched.insert(t);
        }
        // A new listener is present while its port listens; a vanished one while its
        // port does not.
        for t in 0..self.tracked.len() {
            if touched.contains(&t) {
                continue;
            }
            let inc = &self.tracked[t].inc;
            let listens = listener_key(&inc.cause).map(|k| o.listening.contains(&k));
            let present = match inc.kind.as_str() {
                k if k == Kind::NewListener.as_str() => listens == Some(true),
                k if k == Kind::VanishedListener.as_str() => listens == Some(false),
                _ => false,
            };
            if inc.status.is_active() && present {
                self.extend(t, &o, &Value::Null);
                touched.insert(t);
            }
        }
        self.held_by_actor |= touched
            .iter()
            .any(|&t| names_actor(&self.tracked[t].inc.kind));
        for t in 0..self.tracked.len() {
            if !self.tracked[t].inc.status.is_active() {
                continue;
            }
            if touched.contains(&t) {
                self.maybe_adapt(t, o.round);
            } else {
                self.quiet(t);
            }
        }
        suppressed
    }

    /// The incidents written by this run and what happened to each, in the order
    /// they were first seen.
    pub fn finish(self) -> (Vec<IncidentWrite>, Vec<Vec<EventKind>>) {
        let mut writes = Vec::new();
        let mut events = Vec::new();
        for t in self.tracked.into_iter().filter(|t| t.dirty) {
            writes.push(IncidentWrite {
                incident: t.inc,
                new: t.new,
                rounds: t.rounds,
            });
            events.push(t.events);
        }
        (writes, events)
    }

    /// For a new program: the active incident of another kind that names it — as its
    /// process (a DNS tunnel's queries attributed to it), or among its
    /// `new_programs` (one without traffic of its own, in the tunnel's rounds). Its
    /// later rounds are that incident's, not a second one.
    fn naming(&self, c: &Cause) -> Option<usize> {
        if c.kind != Kind::NewProgram {
            return None;
        }
        let key = Some(c.key.as_str());
        self.tracked.iter().position(|t| {
            let d = &t.inc.details;
            t.inc.status.is_active()
                && t.inc.kind != Kind::NewProgram.as_str()
                && (d.get("process").and_then(Value::as_str) == key
                    || d.get("new_programs")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|p| p.as_str() == key)))
        })
    }

    fn active(&self, kind: Kind, key: &str) -> Option<usize> {
        self.tracked.iter().position(|t| {
            t.inc.status.is_active() && t.inc.kind == kind.as_str() && t.inc.cause == key
        })
    }

    /// The most recent incident (active, or ended within the echo window) whose kind
    /// explains `group`.
    fn echo_target(&self, group: &str, r: &RoundInfo) -> Option<usize> {
        self.tracked
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                let kind_explains = [
                    Kind::NewListener,
                    Kind::VanishedListener,
                    Kind::RemoteSource,
                    Kind::LocalProcess,
                    Kind::NewProgram,
                    Kind::Dns,
                ]
                .iter()
                .any(|k| k.as_str() == t.inc.kind && k.echoes().contains(&group))
                    // A slow scan no source stands out in is its own group's incident.
                    || (group == SCAN_MEMORY
                        && t.inc.kind == Kind::Features.as_str()
                        && t.inc.cause == "scan");
                kind_explains
                    && t.inc.status != IncidentStatus::Accepted
                    && r.start - t.inc.end <= self.cfg.echo_window
            })
            .max_by_key(|(_, t)| t.inc.end)
            .map(|(i, _)| i)
    }

    fn link(&mut self, t: usize, round_id: i64, score: Option<f32>) {
        let tr = &mut self.tracked[t];
        tr.rounds.push((round_id, score));
        tr.dirty = true;
    }

    fn open(&mut self, o: &Observation<'_>, c: &Cause) -> usize {
        let score = o.score.map_or(0.0, f64::from);
        let mut details = c.details.clone();
        set_peak(&mut details, o.score, o.threshold);
        let mut inc = Incident {
            id: 0,
            kind: c.kind.as_str().to_string(),
            cause: c.key.clone(),
            first_round_id: o.round.id,
            last_round_id: o.round.id,
            start: o.round.start,
            end: o.round.end,
            peak_score: score,
            status: IncidentStatus::Open,
            quiet_rounds: 0,
            rounds: 1,
            summary: String::new(),
            details,
            opened_at: self.now.clone(),
            updated_at: self.now.clone(),
            acknowledged_at: None,
            accepted_at: None,
            accepted_by: None,
            closed_at: None,
            note: None,
        };
        inc.summary = summarize(&inc);
        self.tracked.push(Tracked {
            inc,
            new: true,
            dirty: true,
            rounds: vec![(o.round.id, o.score)],
            events: vec![EventKind::Opened],
        });
        self.tracked.len() - 1
    }

    fn extend(&mut self, t: usize, o: &Observation<'_>, details: &Value) {
        let now = self.now.clone();
        let tr = &mut self.tracked[t];
        let inc = &mut tr.inc;
        if inc.last_round_id != o.round.id {
            inc.rounds += 1;
        }
        inc.last_round_id = o.round.id;
        inc.end = inc.end.max(o.round.end);
        inc.quiet_rounds = 0;
        if let Some(s) = o.score
            && o.anomalous
        {
            inc.peak_score = inc.peak_score.max(f64::from(s));
            set_peak(&mut inc.details, Some(s), o.threshold);
        }
        merge(&mut inc.details, details);
        inc.summary = summarize(inc);
        inc.updated_at = now;
        tr.rounds.push((o.round.id, o.score));
        tr.dirty = true;
        if !tr.new && !tr.events.contains(&EventKind::Updated) {
            tr.events.push(EventKind::Updated);
        }
    }

    fn quiet(&mut self, t: usize) {
        let now = self.now.clone();
        let close_after = self.cfg.close_after;
        let tr = &mut self.tracked[t];
        tr.inc.quiet_rounds += 1;
        tr.dirty = true;
        if tr.inc.quiet_rounds >= close_after {
            tr.inc.status = IncidentStatus::Closed;
            tr.inc.closed_at = Some(now.clone());
            tr.inc.updated_at = now;
            tr.events.push(EventKind::Closed);
        }
    }

    fn maybe_adapt(&mut self, t: usize, r: &RoundInfo) {
        let Some(after) = self.cfg.adapt_after else {
            return;
        };
        let now = self.now.clone();
        let tr = &mut self.tracked[t];
        if tr.inc.status != IncidentStatus::Open || r.end - tr.inc.start < after {
            return;
        }
        tr.inc.status = IncidentStatus::Accepted;
        tr.inc.accepted_at = Some(now.clone());
        tr.inc.accepted_by = Some("drift".into());
        let line = format!(
            "accepted as drift: present for {} without acknowledgement",
            humantime::format_duration(std::time::Duration::from_secs(
                u64::try_from(after / 1_000_000).unwrap_or(0)
            ))
        );
        tr.inc.note = Some(match tr.inc.note.take() {
            Some(n) => format!("{n}; {line}"),
            None => line,
        });
        tr.inc.updated_at = now;
        tr.dirty = true;
        tr.events.push(EventKind::Adapted);
        let until = acceptance_until(&tr.inc);
        self.accepted
            .insert((tr.inc.kind.clone(), tr.inc.cause.clone()), until);
    }
}

/// A round's score over the threshold by this factor opens an incident that names no
/// actor (a `features` cause) at once; below it, only when the round before was over
/// the threshold too — Prometheus's `for:` for the one kind of alert that has nothing
/// else to stand on. A single round just over the line with no actor is the threshold's
/// own false-alarm rate (it is set for about one anomalous round a day), and nothing an
/// operator can act on: workstation seed 914 opened four such incidents in a week,
/// each one round at 1.3–1.7× as a package update's two helper processes started. A
/// scan or a burst is over the threshold for round after round, or far over it.
pub const FEATURES_MARGIN: f32 = 2.0;

/// Whether a cause names no actor, or one only for sending the round's most bytes:
/// a remote network's or a known local program's "unusual traffic", which any busy
/// minute has one of. Both open an incident only past [`FEATURES_MARGIN`] or on a
/// second anomalous round in a row. Workstation seed 930 opened six such incidents in
/// a week without any event near them, each one round at 1.0–1.3× the threshold naming
/// that minute's busiest Google, Fastly or Microsoft network (seed 908 three, 906 one);
/// servers 915 and 921 one each naming their own nginx, at 1.0× and 1.1×. A program
/// never seen before is [`Kind::NewProgram`], named for being new, and opens at once.
fn is_guess(c: &Cause) -> bool {
    match c.kind {
        Kind::Features => true,
        Kind::RemoteSource | Kind::LocalProcess => c.details["activity"] == "traffic",
        _ => false,
    }
}

/// Whether a round's guessed cause may open an incident ([`FEATURES_MARGIN`]).
fn clear(o: &Observation<'_>) -> bool {
    o.follows_anomaly || o.score.is_some_and(|s| s >= FEATURES_MARGIN * o.threshold)
}

/// Until when an accepted incident's (kind, cause) holds. A surge of new clients at a
/// port (`new clients tcp/443`) says those clients were fine — their rounds are learnt,
/// so the networks become known and the port's ceiling rises to the surge — not that
/// any later crowd of strangers at the port is; likewise a program's upload over its
/// ceiling (a `local_process` whose details have one) says that upload was fine, and
/// the ceiling rises to it, not that anything the program sends is: both hold for a
/// [`LEARNING_WINDOW`] after the incident ended. Any other, for ever.
fn acceptance_until(i: &Incident) -> i64 {
    let bounded = i.cause.starts_with("new clients ")
        || (i.kind == Kind::LocalProcess.as_str() && i.details.get("ceiling").is_some());
    if bounded {
        i.end.saturating_add(LEARNING_WINDOW)
    } else {
        i64::MAX
    }
}

/// The port key of a `new_listener` or `vanished_listener` cause (`tcp/4444`).
fn listener_key(cause: &str) -> Option<u32> {
    let (proto, port) = cause.split_once('/')?;
    Some(port_key(proto == "tcp", port.parse().ok()?))
}

fn set_peak(details: &mut Value, score: Option<f32>, threshold: f32) {
    if let (Some(s), Value::Object(m)) = (score, details) {
        let ratio = f64::from(s) / f64::from(threshold.max(f32::MIN_POSITIVE));
        let old = m.get("peak_ratio").and_then(Value::as_f64).unwrap_or(0.0);
        if ratio > old {
            m.insert("peak_ratio".into(), json!((ratio * 100.0).round() / 100.0));
        }
    }
}

/// Folds a later round's details into an incident's: counts add up, breadths keep
/// their maximum, lists are united, the first time stays, the last time moves.
fn merge(into: &mut Value, new: &Value) {
    let (Value::Object(a), Value::Object(b)) = (into, new) else {
        return;
    };
    for (k, v) in b {
        match (k.as_str(), a.get_mut(k), v) {
            (
                "packets" | "bytes" | "packets_in" | "bytes_in" | "syns" | "queries"
                | "connections" | "datagrams" | "answers" | "unanswered",
                Some(Value::Number(x)),
                Value::Number(y),
            ) => {
                *a.get_mut(k).unwrap_or(&mut Value::Null) =
                    json!(x.as_i64().unwrap_or(0) + y.as_i64().unwrap_or(0));
            }
            (
                "ports" | "destinations" | "names" | "new_names" | "sources" | "round_peak"
                | "networks" | "answering" | "domains",
                Some(Value::Number(x)),
                Value::Number(y),
            ) => {
                let m = x.as_i64().unwrap_or(0).max(y.as_i64().unwrap_or(0));
                a.insert(k.clone(), json!(m));
            }
            // The latest round's busiest peers, each keeping the server name an earlier
            // round saw (a connection's ClientHello is in its first round only).
            ("peers", Some(Value::Array(x)), Value::Array(y)) => {
                let named: Vec<Value> = y
                    .iter()
                    .map(|p| {
                        let mut p = p.clone();
                        let same =
                            |o: &&Value| o["address"] == p["address"] && o["port"] == p["port"];
                        if p["server_name"].is_null()
                            && let Some(name) =
                                x.iter().find(same).map(|o| o["server_name"].clone())
                            && let Value::Object(m) = &mut p
                        {
                            m.insert("server_name".into(), name);
                        }
                        p
                    })
                    .collect();
                *x = named;
            }
            (
                "addresses" | "examples" | "new_programs" | "subnets",
                Some(Value::Array(x)),
                Value::Array(y),
            ) => {
                for item in y {
                    if x.len() < 10 && !x.contains(item) {
                        x.push(item.clone());
                    }
                }
            }
            ("first" | "peak_ratio", Some(_), _) => {}
            (_, _, v) if !v.is_null() => {
                a.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn round(i: i64) -> RoundInfo {
        RoundInfo {
            id: i,
            start: i * MIN,
            end: i * MIN + 55_000_000,
            scan_interval: Some(5.0),
            first_packet_id: None,
            last_packet_id: None,
        }
    }

    fn cause(kind: Kind, key: &str, group: &'static str, subject: Subject) -> Cause {
        Cause {
            kind,
            key: key.into(),
            subject,
            group,
            details: json!({"packets": 10, "ports": 3}),
        }
    }

    fn scan() -> Cause {
        cause(
            Kind::RemoteSource,
            "203.0.113.0/24",
            "scan",
            Subject::Remote(vec!["203.0.113.7".parse().unwrap()]),
        )
    }

    fn listener() -> Cause {
        cause(
            Kind::NewListener,
            "tcp/4444",
            "sockets",
            Subject::Listener {
                tcp: true,
                port: 4444,
                process: Some("nc".into()),
            },
        )
    }

    fn cfg() -> Config {
        Config {
            close_after: 5,
            adapt_after: Some(24 * 60 * MIN),
            echo_window: 15 * MIN,
        }
    }

    fn tracker() -> Tracker {
        Tracker::new(cfg(), Vec::new(), Vec::new(), Vec::new(), "now")
    }

    /// Runs rounds `from..to`; `f(i)` gives (anomalous, causes, listening).
    fn run(
        t: &mut Tracker,
        rounds: std::ops::Range<i64>,
        f: impl Fn(i64) -> (bool, Vec<Cause>, Vec<u32>),
    ) -> Vec<bool> {
        rounds
            .map(|i| {
                let r = round(i);
                let (anomalous, causes, listening) = f(i);
                t.observe(Observation {
                    round: &r,
                    score: Some(if anomalous { 20.0 } else { 1.0 }),
                    threshold: 10.0,
                    anomalous,
                    follows_anomaly: false,
                    causes,
                    listening: &listening,
                })
            })
            .collect()
    }

    /// The spans (first, last round) of the incidents `c` opens over the rounds of
    /// `scores`, (round, score, whether the round before was anomalous).
    fn spans_of(c: &Cause, scores: &[(i64, f32, bool)]) -> Vec<(i64, i64)> {
        let mut t = tracker();
        for &(i, score, follows_anomaly) in scores {
            let r = round(i);
            t.observe(Observation {
                round: &r,
                score: Some(score),
                threshold: 10.0,
                anomalous: score > 10.0,
                follows_anomaly,
                causes: if score > 10.0 {
                    vec![c.clone()]
                } else {
                    vec![]
                },
                listening: &[],
            });
        }
        let (writes, _) = t.finish();
        writes
            .iter()
            .map(|w| (w.incident.first_round_id, w.incident.last_round_id))
            .collect()
    }

    #[test]
    fn a_cause_without_an_actor_just_over_the_line_needs_a_second_round() {
        // One round at 1.5×, alone; two in a row, then extended at 1.1×; far over the
        // line at once.
        let mut scores = vec![(0, 15.0, false), (1, 1.0, true)];
        scores.extend([(50, 15.0, false), (51, 12.0, true), (52, 11.0, true)]);
        scores.extend((53..60).map(|i| (i, 1.0, i == 53)));
        scores.push((100, 25.0, false));
        let sockets = cause(Kind::Features, "sockets", "sockets", Subject::None);
        assert_eq!(spans_of(&sockets, &scores), vec![(51, 52), (100, 100)]);
        // A remote network named only for sending the most bytes is no better.
        let busiest = Cause {
            details: json!({"activity": "traffic", "packets": 300}),
            ..cause(
                Kind::RemoteSource,
                "142.250.185.0/24",
                "traffic",
                Subject::Remote(vec!["142.250.185.99".parse().unwrap()]),
            )
        };
        assert_eq!(spans_of(&busiest, &scores), vec![(51, 52), (100, 100)]);
        // Nor is the host's own main service named as the round's heaviest sender.
        let nginx = Cause {
            details: json!({"activity": "traffic", "process": "nginx", "packets": 432}),
            ..cause(
                Kind::LocalProcess,
                "nginx",
                "traffic",
                Subject::Process("nginx".into()),
            )
        };
        assert_eq!(spans_of(&nginx, &scores), vec![(51, 52), (100, 100)]);
        // What a known program did beyond sending the most (an upload over its
        // ceiling) names it for that: its one round is an incident.
        let upload = Cause {
            details: json!({"activity": "upload", "process": "celery"}),
            ..nginx.clone()
        };
        assert_eq!(spans_of(&upload, &scores[..2]), vec![(0, 0)]);
        // A scanner is named for what it did: its one round is an incident.
        assert_eq!(spans_of(&scan(), &scores[..2]), vec![(0, 0)]);
    }

    #[test]
    fn rounds_a_listener_holds_are_held_by_an_actor_and_a_shift_alone_is_not() {
        let mut t = tracker();
        let key = port_key(true, 4444);
        let held: Vec<bool> = (0..8)
            .map(|i| {
                // Opened by its cause, then held while its port listens.
                let (causes, listening) = match i {
                    2 => (vec![listener()], vec![key]),
                    3..=5 => (vec![], vec![key]),
                    _ => (vec![], vec![]),
                };
                run(&mut t, i..i + 1, |_| {
                    (i == 2, causes.clone(), listening.clone())
                });
                t.held_by_actor()
            })
            .collect();
        let expected: Vec<bool> = (0..8).map(|i| (2..=5).contains(&i)).collect();
        assert_eq!(held, expected);
        // A shift right after a scanner is its echo, held by it.
        let shift = cause(Kind::Sustained, "scores", SHIFT, Subject::None);
        let mut t = tracker();
        run(&mut t, 0..1, |_| (true, vec![scan()], vec![]));
        run(&mut t, 1..2, |_| (true, vec![shift.clone()], vec![]));
        assert!(t.held_by_actor());
        // A shift with no actor near it holds nothing.
        let mut t = tracker();
        run(&mut t, 0..3, |_| (true, vec![shift.clone()], vec![]));
        assert!(!t.held_by_actor());
    }

    #[test]
    fn a_fifteen_minute_backdoor_is_one_incident_that_closes_after_five_quiet_rounds() {
        let mut t = tracker();
        let key = port_key(true, 4444);
        run(&mut t, 0..40, |i| {
            let on = (10..25).contains(&i);
            // Anomalous only now and then while it listens: still one incident.
            let anomalous = on && i % 4 == 2;
            (
                anomalous,
                if anomalous { vec![listener()] } else { vec![] },
                if on { vec![key] } else { vec![] },
            )
        });
        let (writes, events) = t.finish();
        assert_eq!(writes.len(), 1, "{writes:#?}");
        let inc = &writes[0].incident;
        assert_eq!((inc.first_round_id, inc.last_round_id), (10, 24));
        assert_eq!(inc.status, IncidentStatus::Closed);
        assert_eq!(inc.rounds, 15);
        assert_eq!(events[0], vec![EventKind::Opened, EventKind::Closed]);
        assert!(inc.summary.contains("tcp/4444"), "{}", inc.summary);
    }

    #[test]
    fn two_causes_in_one_round_are_two_incidents_and_echoes_do_not_extend() {
        let mut t = tracker();
        let echo = cause(Kind::Features, "scan", "scan", Subject::None);
        run(&mut t, 0..30, |i| match i {
            5..=7 => (true, vec![scan(), listener()], vec![port_key(true, 4444)]),
            // Ten more minutes of scan breadth, but no scanner in the traffic.
            8..=17 => (true, vec![echo.clone()], vec![]),
            _ => (false, vec![], vec![]),
        });
        let (writes, _) = t.finish();
        assert_eq!(writes.len(), 2, "{writes:#?}");
        let s = writes
            .iter()
            .find(|w| w.incident.kind == "remote_source")
            .unwrap();
        assert_eq!(
            s.incident.last_round_id, 7,
            "the echo does not extend the scan"
        );
        assert_eq!(s.incident.status, IncidentStatus::Closed);
        assert!(
            s.rounds.iter().any(|(r, _)| *r == 12),
            "echo rounds are linked"
        );
        assert!(!writes.iter().any(|w| w.incident.kind == "features"));
    }

    #[test]
    fn a_group_with_an_incident_of_its_own_is_not_a_later_actors_echo() {
        let mut t = tracker();
        let sockets = cause(Kind::Features, "sockets", "sockets", Subject::None);
        run(&mut t, 0..40, |i| match i {
            // Unusual sockets from the start of a session, its actor named at round 8.
            5..=7 | 9..=25 => (true, vec![sockets.clone()], vec![]),
            8 => (true, vec![sockets.clone(), scan()], vec![]),
            _ => (false, vec![], vec![]),
        });
        let (writes, _) = t.finish();
        let spans: Vec<(&str, i64, i64)> = writes
            .iter()
            .map(|w| {
                let i = &w.incident;
                (i.kind.as_str(), i.first_round_id, i.last_round_id)
            })
            .collect();
        assert_eq!(
            spans,
            [("features", 5, 25), ("remote_source", 8, 8)],
            "{writes:#?}"
        );
    }

    fn program(name: &str) -> Cause {
        cause(
            Kind::NewProgram,
            name,
            "traffic",
            Subject::Process(name.into()),
        )
    }

    #[test]
    fn a_new_program_is_one_incident_in_rounds_no_score_flags() {
        let mut t = tracker();
        // A beacon: one call most minutes for an hour, a minute skipped now and then;
        // no round scores over the threshold.
        let normal = run(&mut t, 0..80, |i| {
            let calls = (10..70).contains(&i) && i % 7 != 5;
            (
                false,
                if calls {
                    vec![program("kworker-upd")]
                } else {
                    vec![]
                },
                vec![],
            )
        });
        assert!(
            normal.iter().all(|n| !n),
            "nothing anomalous was made normal"
        );
        let (writes, events) = t.finish();
        assert_eq!(writes.len(), 1, "{writes:#?}");
        let inc = &writes[0].incident;
        assert_eq!(inc.kind, "new_program");
        assert_eq!((inc.first_round_id, inc.last_round_id), (10, 69));
        assert_eq!(inc.status, IncidentStatus::Closed);
        assert_eq!(events[0], vec![EventKind::Opened, EventKind::Closed]);
        assert!(
            inc.summary.starts_with("new program kworker-upd"),
            "{}",
            inc.summary
        );
    }

    #[test]
    fn the_memory_of_a_slow_scan_and_a_shift_after_an_upload_are_echoes() {
        let mut t = tracker();
        let scan = cause(Kind::Features, "scan", "scan", Subject::None);
        let memory = cause(Kind::Features, "scan", SCAN_MEMORY, Subject::None);
        run(&mut t, 0..40, |i| match i {
            // A slow scan no source stands out in, then ten minutes of its breadth.
            5..=14 => (true, vec![scan.clone()], vec![]),
            15..=24 => (true, vec![memory.clone()], vec![]),
            _ => (false, vec![], vec![]),
        });
        let (writes, _) = t.finish();
        assert_eq!(writes.len(), 1, "{writes:#?}");
        assert_eq!(writes[0].incident.last_round_id, 14, "ends with the scan");

        let mut t = tracker();
        let mut shift = cause(Kind::Sustained, "scores", "traffic", Subject::None);
        shift.details = json!({"what": "round scores well above their usual level"});
        run(&mut t, 0..60, |i| match i {
            5..=24 => (true, vec![program("curl")], vec![]),
            // The lasting-shift test stays up a while after the upload…
            25..=34 => (true, vec![shift.clone()], vec![]),
            // …and a shift long after it is something else.
            50..=54 => (true, vec![shift.clone()], vec![]),
            _ => (false, vec![], vec![]),
        });
        let (writes, _) = t.finish();
        let kinds: Vec<&str> = writes.iter().map(|w| w.incident.kind.as_str()).collect();
        assert_eq!(kinds, vec!["new_program", "sustained"], "{writes:#?}");
        assert_eq!(writes[0].incident.last_round_id, 24);
        assert_eq!(writes[1].incident.first_round_id, 50);
    }

    #[test]
    fn a_new_program_another_incident_names_is_that_incident() {
        for named in [
            json!({"queries": 400, "new_names": 300, "process": "iodine"}),
            json!({"queries": 400, "new_names": 300, "new_programs": ["iodine"]}),
        ] {
            let mut t = tracker();
            let mut tunnel = cause(Kind::Dns, "evil.example", "dns", Subject::None);
            tunnel.details = named;
            run(&mut t, 0..20, |i| match i {
                0..=9 => (true, vec![tunnel.clone(), program("iodine")], vec![]),
                // Its socket outlives the queries by a round.
                10 => (false, vec![program("iodine")], vec![]),
                _ => (false, vec![], vec![]),
            });
            let (writes, _) = t.finish();
            assert_eq!(writes.len(), 1, "{writes:#?}");
            assert_eq!(writes[0].incident.kind, "dns");
            assert_eq!(writes[0].incident.last_round_id, 10);
        }
        // Another program is its own incident beside it.
        let mut t = tracker();
        let mut tunnel = cause(Kind::Dns, "evil.example", "dns", Subject::None);
        tunnel.details = json!({"new_programs": ["iodine"]});
        run(&mut t, 0..3, |_| {
            (true, vec![tunnel.clone(), program("curl")], vec![])
        });
        assert_eq!(t.finish().0.len(), 2);
    }

    #[test]
    fn allowed_and_accepted_causes_open_nothing_and_the_round_counts_as_normal() {
        let rules = vec![Rule::parse("cidr", "203.0.113.0/24").unwrap()];
        let mut accepted = tracker();
        run(&mut accepted, 100..101, |_| {
            (true, vec![listener()], vec![])
        });
        let (mut w, _) = accepted.finish();
        let mut listener_inc = w.remove(0).incident;
        listener_inc.status = IncidentStatus::Accepted;
        let mut t = Tracker::new(cfg(), Vec::new(), rules, vec![listener_inc], "now");
        let suppressed = run(&mut t, 0..3, |i| match i {
            0 => (true, vec![scan()], vec![]),
            1 => (true, vec![listener()], vec![port_key(true, 4444)]),
            _ => (
                true,
                vec![
                    scan(),
                    cause(
                        Kind::Dns,
                        "evil.example",
                        "dns",
                        Subject::Domain {
                            domain: "evil.example".into(),
                            names: vec!["x.evil.example".into()],
                        },
                    ),
                ],
                vec![],
            ),
        });
        assert_eq!(suppressed, vec![true, true, false]);
        let (writes, _) = t.finish();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].incident.kind, "dns");
    }

    #[test]
    fn an_accepted_surge_of_new_clients_or_upload_holds_for_a_day_only() {
        let surge = || {
            cause(
                Kind::RemoteSource,
                "new clients tcp/443",
                "traffic",
                Subject::Remote(vec!["198.51.100.4".parse().unwrap()]),
            )
        };
        let upload = || {
            let mut c = cause(
                Kind::LocalProcess,
                "celery",
                "traffic",
                Subject::Process("celery".into()),
            );
            c.details = json!({"activity": "upload", "round_peak": 9_000_000, "ceiling": 40_000});
            c
        };
        // The heaviest sender, no ceiling gone over: accepting it holds for ever.
        let heavy = || {
            cause(
                Kind::LocalProcess,
                "nginx",
                "traffic",
                Subject::Process("nginx".into()),
            )
        };
        for (make, bounded) in [
            (&surge as &dyn Fn() -> Cause, true),
            (&upload, true),
            (&heavy, false),
        ] {
            let mut first = tracker();
            run(&mut first, 0..10, |_| (true, vec![make()], vec![]));
            let (mut w, _) = first.finish();
            let mut inc = w.remove(0).incident;
            inc.status = IncidentStatus::Accepted;
            let day = 24 * 60;
            let mut t = Tracker::new(cfg(), Vec::new(), Vec::new(), vec![inc], "now");
            // Within a day of its end the same crowd (upload) is the accepted one; two
            // days later a crowd of strangers at the port (another upload) is news again.
            let suppressed = run(&mut t, 20..21, |_| (true, vec![make()], vec![]));
            assert_eq!(suppressed, vec![true]);
            let suppressed = run(&mut t, 2 * day..2 * day + 1, |_| {
                (true, vec![make()], vec![])
            });
            assert_eq!(suppressed, vec![!bounded], "{}", make().key);
            let (writes, _) = t.finish();
            assert_eq!(writes.len(), usize::from(bounded));
        }
    }

    #[test]
    fn a_change_that_stays_is_announced_once_then_adapted_after_a_day() {
        let mut t = tracker();
        let key = port_key(true, 4444);
        let day = 24 * 60;
        let suppressed = run(&mut t, 0..day + 120, |_| {
            (true, vec![listener()], vec![key])
        });
        let (writes, events) = t.finish();
        assert_eq!(writes.len(), 1);
        assert_eq!(events[0], vec![EventKind::Opened, EventKind::Adapted]);
        let inc = &writes[0].incident;
        assert_eq!(inc.status, IncidentStatus::Accepted);
        assert_eq!(inc.accepted_by.as_deref(), Some("drift"));
        assert!(inc.note.as_deref().unwrap_or("").contains("drift"));
        // After the adaptation the same cause is normal.
        assert!(!suppressed[day as usize - 10]);
        assert!(suppressed[day as usize + 10]);
    }

    #[test]
    fn peers_keep_the_server_name_an_earlier_round_saw() {
        let mut d = json!({"peers": [
            {"address": "198.51.100.80", "port": 443, "server_name": "transfer.sh", "packets": 9},
        ]});
        merge(
            &mut d,
            &json!({"peers": [
                {"address": "198.51.100.80", "port": 443, "server_name": null, "packets": 20},
                {"address": "192.0.2.7", "port": 443, "server_name": null, "packets": 3},
            ]}),
        );
        assert_eq!(d["peers"][0]["server_name"], "transfer.sh");
        assert_eq!(d["peers"][0]["packets"], 20, "the latest round's figures");
        assert!(d["peers"][1]["server_name"].is_null());
    }

    #[test]
    fn an_acknowledged_incident_is_not_adapted_and_an_update_is_said_once() {
        let mut known = tracker();
        run(&mut known, 0..1, |_| (true, vec![scan()], vec![]));
        let (mut writes, _) = known.finish();
        let mut inc = writes.remove(0).incident;
        inc.id = 7;
        inc.status = IncidentStatus::Acknowledged;
        let mut cfg = cfg();
        cfg.adapt_after = Some(MIN);
        let mut t = Tracker::new(cfg, vec![inc], Vec::new(), Vec::new(), "later");
        run(&mut t, 1..10, |_| (true, vec![scan()], vec![]));
        let (writes, events) = t.finish();
        assert_eq!(writes.len(), 1);
        assert!(!writes[0].new);
        assert_eq!(writes[0].incident.status, IncidentStatus::Acknowledged);
        assert_eq!(events[0], vec![EventKind::Updated]);
        assert_eq!(
            writes[0].incident.details["packets"], 100,
            "counts add up over rounds"
        );
    }

    #[test]
    fn an_accepted_service_explains_what_it_still_moves_while_it_is_learnt() {
        let mut accepted = tracker();
        run(&mut accepted, 0..1, |_| (true, vec![listener()], vec![]));
        let (mut w, _) = accepted.finish();
        let mut inc = w.remove(0).incident;
        inc.status = IncidentStatus::Accepted;
        inc.details["process"] = json!("nc");
        let mut t = Tracker::new(cfg(), Vec::new(), Vec::new(), vec![inc], "now");
        let key = port_key(true, 4444);
        let sockets = cause(Kind::Features, "sockets", "sockets", Subject::None);
        let nc = cause(
            Kind::LocalProcess,
            "nc",
            "traffic",
            Subject::Process("nc".into()),
        );
        let day = 24 * 60;
        let suppressed = run(&mut t, 1..day + 10, |i| match i {
            5 => (true, vec![sockets.clone(), nc.clone()], vec![key]),
            // Without the service listening, the same group is an incident.
            6 => (true, vec![sockets.clone()], vec![]),
            i if i == day + 5 => (true, vec![sockets.clone()], vec![key]),
            _ => (false, vec![], vec![key]),
        });
        assert!(suppressed[4], "the service's own sockets and process");
        assert!(!suppressed[5], "no service in the round");
        assert!(!suppressed[day as usize + 4], "past the learning window");
        let (writes, _) = t.finish();
        assert_eq!(writes.len(), 2, "{writes:#?}");
    }

    #[test]
    fn a_service_gone_is_one_incident_until_it_listens_again() {
        let mut t = tracker();
        let key = port_key(true, 5432);
        let mut gone = cause(
            Kind::VanishedListener,
            "tcp/5432",
            "sockets",
            Subject::Listener {
                tcp: true,
                port: 5432,
                process: Some("postgres".into()),
            },
        );
        gone.details = json!({"protocol": "tcp", "port": 5432, "process": "postgres"});
        run(&mut t, 0..50, |i| match i {
            10 => (true, vec![gone.clone()], vec![]),
            // Down for 30 minutes; anomalous only now and then.
            11..=39 => (i % 7 == 0, vec![], vec![]),
            _ => (false, vec![], vec![key]),
        });
        let (writes, events) = t.finish();
        assert_eq!(writes.len(), 1, "{writes:#?}");
        let inc = &writes[0].incident;
        assert_eq!((inc.first_round_id, inc.last_round_id), (10, 39));
        assert_eq!(events[0], vec![EventKind::Opened, EventKind::Closed]);
        assert!(
            inc.summary
                .starts_with("tcp/5432 (postgres) stopped listening"),
            "{}",
            inc.summary
        );
    }
}
