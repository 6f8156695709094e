//! What a `simulate` call is asked to do: span, seed, rate, the host's profile and the
//! events to inject.
//!
//! [`Inject`] parses the CLI form `KIND@HOUR` and [`Profile`] the CLI's profile name, so
//! that `collector simulate` and tests share one parser.

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
    /// Which kind of host to simulate. Calls appending to one database should keep
    /// the same profile: the simulator does not check, as a real host could change role.
    pub profile: Profile,
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
            profile: Profile::Server,
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

/// The kind of host whose life is simulated.
///
/// Two profiles because a detector tuned on one rhythm learns that rhythm: a server's
/// load is smooth and inbound, a workstation's is bursty, outbound, follows office hours
/// and disappears while the machine sleeps (history with gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// A small web server (nginx, an app, postgres, sshd, a nightly backup), up all
    /// the time; the crate's README has its table.
    #[default]
    Server,
    /// A desktop or laptop: a browser's TLS and QUIC to many places on a working-day
    /// rhythm, a daily package update, few listeners, and nights asleep (no rounds).
    Workstation,
}

impl Profile {
    /// Every profile, in CLI order.
    pub const ALL: [Profile; 2] = [Profile::Server, Profile::Workstation];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Server => "server",
            Profile::Workstation => "workstation",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::UnknownProfile(s.to_owned()))
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
    /// The host itself scans others: a local `nmap` connect scan of ~1,500 ports of one
    /// LAN host, or of port 22 or 445 on ~200 addresses of an internal /24, in ~5 min.
    /// Models a compromised host (or an insider) doing reconnaissance for lateral
    /// movement: the host turns from scanned into scanner.
    Outscan,
    /// Malware calling home: a new process opens a short TLS connection to one new
    /// external address every 60 s (±10 %) for 3 hours, with DNS lookups of a
    /// random-looking domain. Models command-and-control beaconing (Cobalt Strike,
    /// Sliver and most RATs poll on a jittered timer).
    Beacon,
    /// Exfiltration: `rclone` or `curl` sends 300 MB–1 GB over one TLS connection to one
    /// new external address in 10–20 minutes. Models data theft to a cloud drive or a
    /// file-drop site, the last step of most ransomware intrusions.
    Upload,
    /// A SYN flood: 5,000–20,000 spoofed SYNs a minute for 10 minutes at the host's
    /// inbound service, no handshake completed, SYN_RECV filling the listen backlog.
    /// Models a volumetric denial-of-service attack.
    Flood,
    /// A service of the host stops listening for 30 minutes and comes back. Models a
    /// crash or an outage (not an attack, but a change the operator wants to see).
    Outage,
    /// A legitimate new service (`api-server` on tcp/8443) deployed for good: it stays
    /// until the end of the call's span with steady client traffic. Models the benign
    /// change a detector must come to accept rather than alarm on forever.
    Deploy,
    /// An SSH password-guessing run from one remote address for an hour: 6–20
    /// connections a minute to sshd, each a forked `sshd` that closes after a few failed
    /// logins. Models the most common attack on an internet-facing host (Hydra, botnet
    /// scripts): the port and the process are known, only the rate and the source are
    /// new. Added after the incident rules were tuned, to be measured as a kind no rule
    /// was written for.
    Bruteforce,
    /// Spam from a compromised web application: for an hour, the app's own workers
    /// (`gunicorn` on the server; a `python3` script on the workstation) send 2–6 mails
    /// a minute straight to the recipients' mail exchangers, each after a lookup of
    /// its MX host: SMTP connections to port 25 of dozens of new addresses. Added after
    /// the rules were tuned on every other kind, to be measured as a kind no rule was
    /// written for.
    Spam,
    /// Credential stuffing from a botnet for an hour: 100–300 addresses (20–40 of the
    /// LAN on a workstation) each open a connection every 2–6 minutes to the host's
    /// login (nginx's HTTPS; sshd on a workstation) and try a few leaked passwords.
    /// Models account takeover through residential proxies: no address stands out.
    /// Written after every rule was final, and run once, as a kind none was written for.
    Stuffing,
    /// Exfiltration by a program the host already runs: the web application's worker
    /// (`gunicorn` or `celery` on a server; the browser on a workstation) sends 100–400
    /// MB over one TLS connection to port 443 of a new address in 10–20 minutes, after a
    /// lookup of a file-drop site. Models a compromised application (or a malicious
    /// extension) stealing data through a program and a port that are both ordinary.
    /// Written after the rules of the client-surge round were final, and run once, as
    /// a kind none was written for.
    Exfil,
    /// A command channel through a program the host runs anyway: the web application's
    /// worker (`gunicorn`) on a server, the browser on a workstation, holds one TLS
    /// connection to port 443 of a new address for 1–2 hours after one lookup — a
    /// heartbeat every 30 s (±20 %) of a few hundred bytes each way, and every 3–8
    /// minutes a command (1–3 kB in) and its output (5–50 kB out). Models a web shell
    /// or a malicious browser extension taking orders. Written after the upload-ceiling
    /// rule was final, and run once, as a kind none was written for.
    Implant,
    /// A UDP flood at the host: 20,000–60,000 datagrams a minute (64–512 bytes) for 10
    /// minutes from spoofed addresses to random ports where nothing listens; the
    /// host's firewall drops them without an answer. Models a volumetric attack that
    /// is not a SYN flood. Written with `implant`, run once as a kind none was
    /// written for.
    Udpflood,
    /// An ICMP tunnel (ptunnel, icmpsh) from the host to one new public address for
    /// 20–40 minutes: 1–4 echo requests a second carrying 150–1,400 bytes out, each
    /// answered by a reply of 60–250 bytes. No lookup (the peer is an address) and no
    /// TCP or UDP socket: the tool uses a raw socket, which the scanner does not list.
    /// Models exfiltration or a shell where egress is filtered to ping. Written after
    /// every rule was final, and run once, as a kind none was written for.
    Icmptunnel,
    /// A cryptominer an intruder dropped: a new process, named like a kernel thread or
    /// a daemon, runs from a world-writable directory and holds one plain-TCP stratum
    /// connection to a mining pool (looked up first) on the pool's own port for 30–45
    /// minutes: a new job from the pool every 20–90 s, a share submitted every 10–60 s,
    /// each a few hundred bytes. Written with `icmptunnel`, run once as a kind none was
    /// written for.
    Miner,
    /// A trojaned service: for 40–60 minutes sshd is a build of the intruder's (one that
    /// logs passwords), run as root from `/var/tmp/.ssh/sshd` under the same name, on
    /// the same port, serving the same clients. Only the executable of its sockets and
    /// its master's pid change. Written after the ICMP cause and the check on masked
    /// learning were final, and run once, as a kind none was written for.
    Hijack,
    /// A rogue resolver (DNSChanger-like: malware rewrote the resolver setting, or a
    /// rogue DHCP answer did): for 30–90 minutes every DNS query of the host goes to
    /// one public address instead of the usual resolver, and is answered from there.
    /// The names, the processes and every other connection are as before. Written
    /// after the new-executable rule was final, and run once, as a kind none was
    /// written for.
    Resolver,
    /// A ping sweep from the host (an intruder mapping the network, `fping -g` or
    /// `nmap -sn`): echo requests to every address of the host's /24, then of 0–3
    /// neighbouring /24s, 20–80 a second with one retry for silent addresses, 30 s to
    /// 3 minutes apart; the few live hosts answer. No socket the scanner lists (a raw
    /// socket). Written with `resolver`, run once as a kind none was written for.
    Pingsweep,
    /// A bot's domain-generation algorithm (Conficker, Necurs, Qakbot) looking for its
    /// rendezvous: a dropped process looks up 20–60 names a minute, each 8–20 random
    /// letters under a common top-level domain, for 30–60 minutes; none exists (the
    /// day's domains are not registered yet, or taken down), so every answer is
    /// NXDOMAIN and the bot never connects. Each lookup is its own UDP socket to the
    /// local stub resolver, open for the lookup's round trip. Written after the ping-
    /// sweep cause and the new-resolver rule were final, and run once, as a kind none
    /// was written for.
    Dga,
    /// Slowloris, a slow-header denial of service: one address holds 300–800
    /// connections to nginx's port 80 (on a workstation 60–150 to sshd, from the LAN,
    /// filling its unauthenticated slots) for 20–40 minutes, each kept alive by a few
    /// bytes of an unfinished request every 10–15 s until the server's header timeout
    /// (60–300 s; sshd's login grace time, 120 s) closes it, and reopened at once.
    /// Little traffic; many connections on one port from one address. Written with
    /// `dga`, run once as a kind none was written for.
    Slowloris,
    /// A program the host runs turned into a relay for strangers, for 30–60 minutes:
    /// on a server nginx as an open forward proxy (20–60 new client addresses send
    /// 10–40 requests a minute to port 80, and for each an nginx worker looks up and
    /// fetches a page from one of 30–150 new sites on port 80 or 443, passing it back);
    /// on a workstation a residential-proxy SDK inside the browser (the browser holds a
    /// TLS channel to the operator's gateway and fetches 5–20 pages a minute from 40–200
    /// new sites, sending each page up the channel). Models open-proxy abuse and
    /// proxyware. Written after the generated-names rule was final, and run once, as a
    /// kind none was written for.
    Proxy,
    /// A login with a stolen key, for 20–40 minutes: one SSH connection to sshd from an
    /// address never seen (a public one on a server, a LAN device on a workstation),
    /// typed into (keystrokes and their echo every 1–20 s, a command's output now and
    /// then), with a 1–5 MB upload of the intruder's tools through it in the first
    /// minutes. One connection at a known port to a known program: only its source and
    /// its shape are new. Written with `proxy`, run once as a kind none was written for.
    Stolenkey,
}

impl EventKind {
    /// Every kind, in CLI order.
    pub const ALL: [EventKind; 28] = [
        EventKind::Portscan,
        EventKind::Slowscan,
        EventKind::Backdoor,
        EventKind::BackdoorCollide,
        EventKind::Burst,
        EventKind::Dnstunnel,
        EventKind::DnstunnelSlow,
        EventKind::Outscan,
        EventKind::Beacon,
        EventKind::Upload,
        EventKind::Flood,
        EventKind::Outage,
        EventKind::Deploy,
        EventKind::Bruteforce,
        EventKind::Spam,
        EventKind::Stuffing,
        EventKind::Exfil,
        EventKind::Implant,
        EventKind::Udpflood,
        EventKind::Icmptunnel,
        EventKind::Miner,
        EventKind::Hijack,
        EventKind::Resolver,
        EventKind::Pingsweep,
        EventKind::Dga,
        EventKind::Slowloris,
        EventKind::Proxy,
        EventKind::Stolenkey,
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
            EventKind::Outscan => "outscan",
            EventKind::Beacon => "beacon",
            EventKind::Upload => "upload",
            EventKind::Flood => "flood",
            EventKind::Outage => "outage",
            EventKind::Deploy => "deploy",
            EventKind::Bruteforce => "bruteforce",
            EventKind::Spam => "spam",
            EventKind::Stuffing => "stuffing",
            EventKind::Exfil => "exfil",
            EventKind::Implant => "implant",
            EventKind::Udpflood => "udpflood",
            EventKind::Icmptunnel => "icmptunnel",
            EventKind::Miner => "miner",
            EventKind::Hijack => "hijack",
            EventKind::Resolver => "resolver",
            EventKind::Pingsweep => "pingsweep",
            EventKind::Dga => "dga",
            EventKind::Slowloris => "slowloris",
            EventKind::Proxy => "proxy",
            EventKind::Stolenkey => "stolenkey",
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
        let i: Inject = "deploy@0".parse().unwrap();
        assert_eq!(i.kind, EventKind::Deploy);
    }

    #[test]
    fn profile_parses_cli_names() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        assert_eq!(Profile::default(), Profile::Server);
        assert!(matches!(
            "laptop".parse::<Profile>(),
            Err(Error::UnknownProfile(_))
        ));
    }

    #[test]
    fn unknown_kind_message_lists_every_kind() {
        let msg = Error::UnknownKind("x".into()).to_string();
        for k in EventKind::ALL {
            assert!(msg.contains(k.name()), "{msg}");
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
