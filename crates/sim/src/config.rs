//! What a `simulate` call is asked to do: span, seed, rate and the events to inject.
//!
//! [`Inject`] parses the CLI form `KIND@HOUR` so that `collector simulate --inject` and
//! tests share one parser.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Parameters of one [`crate::simulate`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Simulated hours to append (one round per minute).
    pub hours: f64,
    /// Seed of every random choice; the same seed on the same database state gives
    /// identical rows.
    pub seed: u64,
    /// Mean packets per second of the host's traffic over a week (the daily rhythm
    /// moves it up and down). Rounds capture `round_secs` of each minute, so a round
    /// holds about `rate × round_secs` packets on average.
    pub rate: f64,
    /// Events to inject, at hours relative to the start of this call's span.
    pub inject: Vec<Inject>,
    /// Seconds between scanner samples.
    pub scan_interval_secs: u32,
    /// Length of a round's capture; the rest of the minute is a gap, as under cron.
    pub round_secs: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            hours: 24.0,
            seed: 0,
            rate: 100.0,
            inject: Vec::new(),
            scan_interval_secs: 5,
            round_secs: 55,
        }
    }
}

impl SimConfig {
    /// Rejects values that would make an empty, endless or nonsensical run.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::Config(what.to_owned()));
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= 24.0 * 366.0) {
            return bad("hours must be a number in (0, 8784]");
        }
        if !(self.rate.is_finite() && self.rate >= 0.0 && self.rate <= 1_000_000.0) {
            return bad("rate must be a number of packets per second in [0, 1000000]");
        }
        if self.scan_interval_secs == 0 || self.round_secs == 0 || self.round_secs > 60 {
            return bad("scan interval must be > 0 and round length in 1..=60 seconds");
        }
        if self.scan_interval_secs > self.round_secs {
            return bad("scan interval must not exceed the round length");
        }
        for i in &self.inject {
            if !(i.hour.is_finite() && i.hour >= 0.0 && i.hour < self.hours) {
                return Err(Error::InjectOutOfSpan {
                    inject: i.to_string(),
                    hours: self.hours,
                });
            }
        }
        Ok(())
    }
}

/// One event to inject: what, and when (hours after the start of the call's span).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inject {
    pub kind: EventKind,
    pub hour: f64,
}

impl fmt::Display for Inject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind, self.hour)
    }
}

impl FromStr for Inject {
    type Err = Error;

    /// Parses `KIND@HOUR`, e.g. `portscan@5.5`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidInject(s.to_owned());
        let (kind, hour) = s.split_once('@').ok_or_else(bad)?;
        let kind: EventKind = kind.trim().parse()?;
        let hour: f64 = hour.trim().parse().map_err(|_| bad())?;
        if !hour.is_finite() || hour < 0.0 {
            return Err(bad());
        }
        Ok(Inject { kind, hour })
    }
}

/// The kinds of injected events, with their CLI names (also written to `labels.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// One remote address sends bare SYNs to hundreds of local ports within minutes.
    Portscan,
    /// One port every 10 s for an hour (hard: a few extra packets per minute).
    Slowscan,
    /// A new process listens on a new port and an outside host talks to it.
    Backdoor,
    /// Like [`EventKind::Backdoor`], but the port shares its hash bucket with an
    /// existing listener and the process calls itself `sshd` (hard).
    BackdoorCollide,
    /// A large connection burst to the HTTPS service.
    Burst,
    /// DNS tunnelling: hundreds of long random names per minute under one domain.
    Dnstunnel,
    /// DNS tunnelling at the host's normal query rate (hard).
    DnstunnelSlow,
}

impl EventKind {
    /// Every kind, in CLI order.
    pub const ALL: [EventKind; 7] = [
        EventKind::Portscan,
        EventKind::Slowscan,
        EventKind::Backdoor,
        EventKind::BackdoorCollide,
        EventKind::Burst,
        EventKind::Dnstunnel,
        EventKind::DnstunnelSlow,
    ];

    /// The CLI name, as written to `labels.kind`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Portscan => "portscan",
            EventKind::Slowscan => "slowscan",
            EventKind::Backdoor => "backdoor",
            EventKind::BackdoorCollide => "backdoor-collide",
            EventKind::Burst => "burst",
            EventKind::Dnstunnel => "dnstunnel",
            EventKind::DnstunnelSlow => "dnstunnel-slow",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EventKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::UnknownKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_parses_cli_form() {
        let i: Inject = "portscan@5.5".parse().unwrap();
        assert_eq!(i.kind, EventKind::Portscan);
        assert_eq!(i.hour, 5.5);
        let i: Inject = "dnstunnel-slow@30".parse().unwrap();
        assert_eq!(i.kind, EventKind::DnstunnelSlow);
        assert_eq!(i.hour, 30.0);
        for k in EventKind::ALL {
            assert_eq!(k.name().parse::<EventKind>().unwrap(), k);
        }
    }

    #[test]
    fn inject_rejects_bad_input() {
        assert!(matches!(
            "portscan".parse::<Inject>(),
            Err(Error::InvalidInject(_))
        ));
        assert!(matches!(
            "portscan@x".parse::<Inject>(),
            Err(Error::InvalidInject(_))
        ));
        assert!(matches!(
            "portscan@-1".parse::<Inject>(),
            Err(Error::InvalidInject(_))
        ));
        assert!(matches!(
            "nmap@1".parse::<Inject>(),
            Err(Error::UnknownKind(_))
        ));
    }

    #[test]
    fn validate_rejects_inject_outside_span() {
        let cfg = SimConfig {
            hours: 2.0,
            inject: vec!["burst@2".parse().unwrap()],
            ..SimConfig::default()
        };
        assert!(matches!(cfg.validate(), Err(Error::InjectOutOfSpan { .. })));
        assert!(SimConfig::default().validate().is_ok());
    }
}
