//! From verdicts to incidents: the causes of each anomalous round of the batch (and the
//! new programs, repeated connections and programs' new services of every round), the incidents they open, extend or close, and what
//! that means for training.

use std::collections::HashMap;

use portwatch_features::Seen;
use portwatch_store::Db;
use portwatch_store::incidents::{Incident, IncidentFilter, IncidentStatus, IncidentWrite};
use portwatch_store::time::format_micros;
use serde::Serialize;

use super::mask::Actor;
use super::series::Loaded;
use super::sustained::ShiftWalk;
use super::verdict::Triage;
use super::{AnomalyReport, Options};
use crate::Result;
use crate::incidents::cause::{self, Cause, Kind, RoundView};
use crate::incidents::rules;
use crate::incidents::tracker::{Config, EventKind, Observation, Tracker};
use crate::incidents::{clients, programs};

/// How long after an incident's last round a cause that only names a group of features
/// is taken as its echo: the scan breadth remembers probes for ten minutes.
const ECHO_WINDOW: i64 = 15 * 60 * portwatch_features::SECOND;

/// What a run did to one incident.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentEvent {
    /// `opened`, `updated`, `closed` or `adapted`.
    pub event: EventKind,
    /// The incident after the run.
    pub incident: Incident,
}

/// The triage of the batch's rounds, and the incidents to write with the verdicts.
pub(super) struct Triaged {
    /// One per loaded round (context rounds keep the default).
    pub(super) triage: Vec<Triage>,
    pub(super) writes: Vec<IncidentWrite>,
    events: Vec<Vec<EventKind>>,
}

impl Triaged {
    /// The events, once the writes have ids (`ids` in the order of `writes`).
    pub(super) fn events(&self, ids: &[i64]) -> Vec<IncidentEvent> {
        let mut out = Vec::new();
        for ((w, ev), id) in self.writes.iter().zip(&self.events).zip(ids) {
            for e in ev {
                let mut incident = w.incident.clone();
                incident.id = *id;
                out.push(IncidentEvent {
                    event: *e,
                    incident,
                });
            }
        }
        out
    }
}

/// Adds what a remote did at one of the host's services (repeated connections, a large
/// transfer) to a round's causes, unless its network is already named for something
/// else (a scan). The same network named only as the round's busiest sender says less
/// and gives way: a stolen key's upload at 1.5× the threshold was such a guess, short
/// of its margin, and opened nothing (server week 931).
fn add_client_causes(causes: &mut Vec<Cause>, found: impl IntoIterator<Item = Cause>) {
    for c in found {
        let same = |o: &Cause| o.kind == c.kind && o.details["network"] == c.details["network"];
        causes.retain(|o| !(same(o) && o.details["activity"] == "traffic"));
        if !causes.iter().any(same) {
            causes.push(c);
        }
    }
}

/// Runs the batch's rounds (`batch`: their indices in `l`, in time order) through the
/// incident tracker. `sustained` walks the sum that flags rounds of a lasting shift
/// under the threshold; `explained` are the explanations of the anomalous rounds and
/// of those it may flag; `seen` is what
/// the model knows (ports and names outside it are new).
#[allow(clippy::too_many_arguments)]
pub(super) fn triage_rounds(
    db: &Db,
    l: &Loaded,
    batch: &[usize],
    scores: &[Option<f32>],
    mut sustained: ShiftWalk,
    threshold: f32,
    explained: &[AnomalyReport],
    seen: &Seen,
    opts: &Options,
) -> Result<Triaged> {
    let mut triage = vec![Triage::default(); l.rounds.len()];
    let Some(first) = batch.first().and_then(|&i| l.rounds.get(i)) else {
        return Ok(Triaged {
            triage,
            writes: Vec::new(),
            events: Vec::new(),
        });
    };
    // Every active incident, however long ago its cause was last seen (a listener
    // that stayed through a night without rounds is still the same incident), and the
    // closed ones recent enough to have echoes.
    let since = format_micros(first.start - ECHO_WINDOW);
    let mut known: Vec<Incident> = db.incidents(&IncidentFilter {
        active_only: true,
        since: None,
    })?;
    for i in db.incidents(&IncidentFilter {
        active_only: false,
        since: Some(&since),
    })? {
        if i.status == IncidentStatus::Closed && !known.iter().any(|k| k.id == i.id) {
            known.push(i);
        }
    }
    let mut tracker = Tracker::new(
        Config {
            close_after: opts.close_after.max(1),
            adapt_after: opts
                .adapt_after
                .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            echo_window: ECHO_WINDOW,
        },
        known,
        rules::load(&db.allow_rules()?),
        db.accepted_incidents()?,
        &format_micros(portwatch_store::time::now_micros()),
    );
    let by_round: HashMap<i64, &AnomalyReport> =
        explained.iter().map(|a| (a.round_id, a)).collect();
    // Rounds where a held channel that no rule allows was named.
    let mut channel_rounds = Vec::new();
    // Executables that served a port in a learnt round, as looked up in this run; none
    // before the cold start's rounds are learnt.
    let any_learnt = db.latest_trained_round()?.is_some();
    let mut executables = HashMap::new();
    // The held-channel rule's look back, read once per round.
    let mut talks = programs::Talks::default();
    for &i in batch {
        let r = &l.rounds[i];
        let over = scores[i].is_some_and(|s| s > threshold);
        let shifted = sustained.enter(scores[i]) && !over;
        let anomalous = over || shifted;
        let mut causes = match by_round.get(&r.id) {
            Some(a) if anomalous => cause::derive(
                db,
                &RoundView {
                    round: r,
                    keys: &l.keys[i],
                    top_features: &top_features(&a.explanation),
                    seen,
                    local: &l.local_addrs,
                    previous: i.checked_sub(1).map(|p| (&l.rounds[p], &l.keys[p])),
                    shift: shifted,
                },
            )?,
            _ => Vec::new(),
        };
        // A scan cause in a round where the widest scanner probed nothing is the scan
        // breadth's memory of a scan that is over (strays from elsewhere go on).
        if !l.steps[i].iter().any(|s| s.evidence.scan_fresh) {
            for c in causes
                .iter_mut()
                .filter(|c| c.kind == Kind::Features && c.group == "scan")
            {
                c.group = cause::SCAN_MEMORY;
            }
        }
        name_new_programs(db, l, i, seen, &mut causes)?;
        // A remote over a port's ceiling of connections or of what a stranger sends,
        // unless already named (a scanner of the same network); a known program's
        // first connections to a port.
        let every = cause::EveryRound {
            round: r,
            keys: &l.keys[i],
            seen,
            local: &l.local_addrs,
        };
        let repeated = clients::repeated_connections(db, &every)?;
        add_client_causes(
            &mut causes,
            repeated
                .into_iter()
                .chain(clients::transfers_in(db, &every)?),
        );
        // A SYN flood from spoofed sources is a crowd of new networks too: it is named
        // as the flood it is.
        for c in clients::client_surges(db, &every)? {
            if !causes
                .iter()
                .any(|o| o.details["activity"] == "flood" && o.details["port"] == c.details["port"])
            {
                causes.push(c);
            }
        }
        // A remote repeating connections (a burst at a service), a surge of new
        // clients, or a stranger's transfer, is what moved the round's scan, socket and traffic features: one
        // event, one incident.
        if causes.iter().any(|c| {
            matches!(
                c.details["activity"].as_str(),
                Some("repeated connections" | "new clients" | "large transfer")
            )
        }) {
            causes.retain(|c| {
                c.kind != Kind::Features
                    || !matches!(c.group, "scan" | "sockets" | "traffic" | cause::SCAN_MEMORY)
            });
        }
        causes.extend(programs::new_services(db, &every)?);
        causes.extend(cause::new_resolvers(db, &every)?);
        if any_learnt {
            causes.extend(cause::new_executables(db, &every, &mut executables)?);
        }
        // A known program's upload over its ceiling says more than "the heaviest
        // sender" of the same program: it takes that cause's place.
        for c in programs::large_uploads(db, &every)? {
            causes.retain(|o| !(o.kind == c.kind && o.key == c.key));
            causes.push(c);
        }
        let channels = programs::held_channels(db, &every, &mut talks)?;
        let named_channel = !channels.is_empty();
        causes.extend(channels);
        if shifted {
            // A lasting shift that no actor explains is one incident, whatever features
            // lead from round to round.
            for c in causes.iter_mut().filter(|c| c.kind == Kind::Features) {
                c.kind = Kind::Sustained;
                c.key = "scores".into();
                if let serde_json::Value::Object(m) = &mut c.details {
                    m.insert(
                        "what".into(),
                        format!(
                            "round scores well above their usual level (mostly {})",
                            c.group
                        )
                        .into(),
                    );
                }
            }
        }
        triage[i].normal = tracker.observe(Observation {
            round: r,
            score: scores[i],
            threshold,
            anomalous,
            // The round before, as scored in this run (a context round's too).
            follows_anomaly: i
                .checked_sub(1)
                .and_then(|p| scores[p])
                .is_some_and(|s| s > threshold),
            causes,
            listening: &l.keys[i].ports,
        });
        sustained.leave(tracker.held_by_actor());
        if named_channel && !triage[i].normal {
            channel_rounds.push(i);
        }
    }
    let (writes, events) = tracker.finish();
    // Rounds of incidents nobody accepted are held out of training as they are; they
    // are learnt later without the incidents' actors where every one names an actor.
    let index: HashMap<i64, usize> = l
        .rounds
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i))
        .collect();
    let mut unmaskable = vec![false; l.rounds.len()];
    for w in writes
        .iter()
        .filter(|w| w.incident.status != IncidentStatus::Accepted)
    {
        let actor = Actor::of(&w.incident.kind, &w.incident.cause).is_some();
        // An incident covers the rounds between its first and last in the batch too:
        // a beacon that skipped a minute is still going on in it.
        let at: Vec<usize> = w
            .rounds
            .iter()
            .filter_map(|(r, _)| index.get(r).copied())
            .collect();
        if let (Some(&lo), Some(&hi)) = (at.iter().min(), at.iter().max()) {
            for i in lo..=hi {
                triage[i].held = true;
                unmaskable[i] |= !actor;
            }
        }
    }
    // A held channel is named on its fifth round: its first four, which looked like
    // any others, are held with it where this run has them (not learnt, so the pair
    // stays new while the channel lasts).
    for &i in &channel_rounds {
        for j in i.saturating_sub(programs::HELD_ROUNDS - 1)..i {
            triage[j].held = true;
            unmaskable[j] = true;
        }
    }
    for (t, u) in triage.iter_mut().zip(unmaskable) {
        t.maskable = t.held && !u;
    }
    Ok(Triaged {
        triage,
        writes,
        events,
    })
}

/// Adds the round's new programs to its causes. A program never seen on the network
/// is named in every round it talks in; one with sockets but no traffic of its own (its
/// queries go through the local resolver, as a DNS tunnel's do) in a round another
/// actor explains is listed in that actor's cause (`new_programs`) instead.
fn name_new_programs(
    db: &Db,
    l: &Loaded,
    i: usize,
    seen: &Seen,
    causes: &mut Vec<cause::Cause>,
) -> Result<()> {
    let other_actor = |k: Kind| !matches!(k, Kind::Features | Kind::Sustained | Kind::NewProgram);
    let explained = causes.iter().any(|c| other_actor(c.kind));
    let mut silent = Vec::new();
    for p in l.keys[i].programs.iter().filter(|p| !seen.has_program(p)) {
        if causes
            .iter()
            .any(|c| c.kind == Kind::NewProgram && c.key == *p)
        {
            continue;
        }
        let c = programs::new_program(db, &l.rounds[i], p, &l.local_addrs)?;
        if explained && c.details["packets"].as_i64() == Some(0) {
            silent.push(p.clone());
        } else {
            causes.push(c);
        }
    }
    if !silent.is_empty() {
        for c in causes.iter_mut().filter(|c| other_actor(c.kind)) {
            if let serde_json::Value::Object(m) = &mut c.details {
                m.insert("new_programs".into(), serde_json::json!(silent));
            }
        }
    }
    Ok(())
}

/// `(feature, share)` of an explanation's top features.
fn top_features(e: &serde_json::Value) -> Vec<(String, f32)> {
    e.get("top_features")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((
                        t.get("feature")?.as_str()?.to_string(),
                        t.get("share")?.as_f64()? as f32,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::incidents::cause::Subject;

    fn remote(key: &str, activity: &str, network: &str) -> Cause {
        Cause {
            kind: Kind::RemoteSource,
            key: key.into(),
            subject: Subject::Remote(Vec::new()),
            group: "traffic",
            details: json!({"activity": activity, "network": network}),
        }
    }

    #[test]
    fn a_service_cause_replaces_a_guess_about_its_network_but_not_a_scan() {
        let net = "203.0.113.0/24";
        let transfer = remote("203.0.113.0/24 tcp/22", "large transfer", net);
        let mut causes = vec![
            remote(net, "traffic", net),
            remote("198.51.100.0/24", "traffic", "198.51.100.0/24"),
        ];
        add_client_causes(&mut causes, [transfer.clone()]);
        let keys: Vec<&str> = causes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["198.51.100.0/24", "203.0.113.0/24 tcp/22"]);
        let mut scanned = vec![remote(net, "port scan", net)];
        add_client_causes(&mut scanned, [transfer]);
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].details["activity"], "port scan");
    }
}
