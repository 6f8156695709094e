//! The workstation profile: a desktop or laptop and its user, one minute at a time.
//!
//! What makes it unlike the server, and worth a profile of its own: traffic is
//! outbound (a browser's TLS and QUIC to many destinations, each page pulling in
//! third-party hosts, with DNS lookups on cache misses), it follows a working day (busy
//! 09:00–18:00 on weekdays with a lunch dip, light evenings and weekends, nearly idle at
//! night), a package update runs once a day in the morning, almost nothing listens
//! (sshd, cupsd and systemd-resolved on loopback, avahi's mDNS socket), and on most
//! nights the machine is suspended for hours: no traffic, no sockets and no rounds at
//! all, so the history has gaps as a real laptop's does. Nobody on the internet can
//! reach it (it sits behind NAT); its inbound traffic is the LAN's multicast chatter.
//!
//! Everything a minute holds comes from that minute's own stream, as for the server;
//! the sleep calendar and the update time come from per-day streams.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portwatch_capture::{Layer, Layers, Packet, Transport};
use portwatch_scan::Socket;

use crate::host::{DAY, Host, MINUTE, Role, ephemeral, random_public_v4, weekday};
use crate::net::{Flow, Owner, SEC, Sock, TcpSession, family, quic_flow};
use crate::rng::{Rng, stream};

const HOUR: i64 = 3600 * SEC;

/// Mean packets a minute that do not follow the rhythm (the push connection's
/// keepalives, mDNS, ARP, NTP), taken off the rhythm's budget as on the server.
pub(crate) const FIXED_PER_MINUTE: f64 = 4.5;
/// Mean packets of one page load (the page's connections, its third-party hosts and
/// the lookups of cache misses), measured by `page_load_packets_match_the_constant`.
const PKTS_PAGE: f64 = 100.0;
/// Mean lookups of one page load: a miss (35 %) on each of its 1 + 2 hosts on average.
const LOOKUPS_PAGE: f64 = 0.35 * 3.0;
/// Lookups per rhythm-following packet: what `dnstunnel-slow` imitates here.
pub(crate) const LOOKUPS_PER_PACKET: f64 = LOOKUPS_PAGE / PKTS_PAGE;

/// A destination of the browser (the name borrowed, so a generated one fits too).
struct Site<'a> {
    name: &'a str,
    addr: Ipv4Addr,
    addr6: Option<Ipv6Addr>,
    quic: bool,
}

const fn site(name: &'static str, a: [u8; 4], v6: Option<[u16; 2]>, quic: bool) -> Site<'static> {
    Site {
        name,
        addr: Ipv4Addr::new(a[0], a[1], a[2], a[3]),
        addr6: match v6 {
            // A provider's prefix and a host part: enough to be a distinct address.
            Some([p, h]) => Some(Ipv6Addr::new(0x2a00, p, 0x4000, 0, 0, 0, 0, h)),
            None => None,
        },
        quic,
    }
}

/// Sites the user opens, most visited first (Zipf-like popularity).
const SITES: [Site<'static>; 24] = [
    site(
        "mail.google.com",
        [142, 250, 185, 101],
        Some([0x1450, 0x2005]),
        true,
    ),
    site("github.com", [140, 82, 121, 4], None, false),
    site(
        "www.google.com",
        [142, 250, 186, 36],
        Some([0x1450, 0x2004]),
        true,
    ),
    site("app.slack.com", [3, 66, 189, 23], None, false),
    site(
        "stackoverflow.com",
        [104, 18, 32, 7],
        Some([0x1c00, 0x6812]),
        true,
    ),
    site(
        "docs.google.com",
        [142, 250, 184, 206],
        Some([0x1450, 0x200e]),
        true,
    ),
    site(
        "www.youtube.com",
        [142, 250, 181, 238],
        Some([0x1450, 0x200f]),
        true,
    ),
    site("docs.rs", [18, 66, 102, 41], None, false),
    site(
        "en.wikipedia.org",
        [185, 15, 59, 224],
        Some([0x0862, 0x0001]),
        false,
    ),
    site(
        "outlook.office.com",
        [52, 97, 146, 178],
        Some([0x0f00, 0x2201]),
        false,
    ),
    site(
        "teams.microsoft.com",
        [52, 113, 194, 132],
        Some([0x0f00, 0x2202]),
        false,
    ),
    site("news.ycombinator.com", [209, 216, 230, 207], None, false),
    site(
        "www.reddit.com",
        [151, 101, 1, 140],
        Some([0x1450, 0x1840]),
        true,
    ),
    site(
        "chatgpt.com",
        [104, 18, 33, 45],
        Some([0x1c00, 0x6813]),
        true,
    ),
    site("crates.io", [18, 66, 102, 73], None, false),
    site(
        "www.linkedin.com",
        [13, 107, 42, 14],
        Some([0x0f00, 0x0142]),
        false,
    ),
    site(
        "drive.google.com",
        [142, 250, 185, 78],
        Some([0x1450, 0x200a]),
        true,
    ),
    site(
        "www.bbc.co.uk",
        [151, 101, 64, 81],
        Some([0x1450, 0x1841]),
        true,
    ),
    site("www.amazon.com", [54, 239, 28, 85], None, false),
    site(
        "meet.google.com",
        [142, 250, 186, 110],
        Some([0x1450, 0x2011]),
        true,
    ),
    site(
        "gitlab.com",
        [172, 65, 251, 78],
        Some([0x1c00, 0x0a41]),
        true,
    ),
    site(
        "www.nytimes.com",
        [151, 101, 129, 164],
        Some([0x1450, 0x1842]),
        true,
    ),
    site("zoom.us", [170, 114, 52, 2], None, false),
    site(
        "calendar.google.com",
        [142, 250, 185, 142],
        Some([0x1450, 0x200d]),
        true,
    ),
];

/// Hosts pages pull in: fonts, scripts, images, analytics.
const THIRD: [Site<'static>; 14] = [
    site(
        "fonts.gstatic.com",
        [142, 250, 186, 67],
        Some([0x1450, 0x2003]),
        true,
    ),
    site(
        "www.gstatic.com",
        [142, 250, 185, 99],
        Some([0x1450, 0x2023]),
        true,
    ),
    site(
        "fonts.googleapis.com",
        [142, 250, 185, 74],
        Some([0x1450, 0x200a]),
        true,
    ),
    site(
        "cdn.jsdelivr.net",
        [151, 101, 1, 229],
        Some([0x1450, 0x1843]),
        true,
    ),
    site(
        "avatars.githubusercontent.com",
        [185, 199, 108, 133],
        None,
        false,
    ),
    site(
        "www.googletagmanager.com",
        [142, 250, 186, 40],
        Some([0x1450, 0x2028]),
        true,
    ),
    site(
        "cdnjs.cloudflare.com",
        [104, 17, 24, 14],
        Some([0x1c00, 0x6811]),
        true,
    ),
    site(
        "i.ytimg.com",
        [142, 250, 185, 118],
        Some([0x1450, 0x2016]),
        true,
    ),
    site(
        "upload.wikimedia.org",
        [185, 15, 59, 240],
        Some([0x0862, 0x0002]),
        false,
    ),
    site("a.slack-edge.com", [18, 155, 173, 92], None, false),
    site("static.licdn.com", [13, 107, 42, 15], None, false),
    site("js-agent.newrelic.com", [162, 247, 243, 29], None, false),
    site(
        "sb-ssl.google.com",
        [142, 250, 186, 46],
        Some([0x1450, 0x2012]),
        true,
    ),
    site(
        "incoming.telemetry.mozilla.org",
        [34, 120, 208, 123],
        None,
        false,
    ),
];

const WORDS: [&str; 12] = [
    "cdn", "static", "img", "assets", "media", "edge", "api", "widget", "track", "cache",
    "content", "ads",
];
const DOMAINS: [&str; 10] = [
    "cloudfront.net",
    "akamaized.net",
    "fastly.net",
    "azureedge.net",
    "b-cdn.net",
    "doubleclick.net",
    "hotjar.com",
    "segment.io",
    "intercom.io",
    "optimizely.com",
];

/// apt's mirrors: Ubuntu's archive and security pockets over HTTP, ESM over HTTPS.
const ARCHIVE: (&str, Ipv4Addr) = ("archive.ubuntu.com", Ipv4Addr::new(91, 189, 91, 83));
const SECURITY: (&str, Ipv4Addr) = ("security.ubuntu.com", Ipv4Addr::new(185, 125, 190, 36));
const ESM: (&str, Ipv4Addr) = ("esm.ubuntu.com", Ipv4Addr::new(185, 125, 188, 58));

/// The workstation's own processes and neighbours.
pub(crate) struct Desk {
    /// `firefox` or `chrome` (its network process, which owns the sockets).
    pub browser: Owner,
    pub avahi: Owner,
    pub network_manager: Owner,
    /// The browser's push service: a connection kept open while the machine is up.
    push: (&'static str, IpAddr, u16),
    /// LAN devices that chatter over mDNS (a printer, phones, a TV, colleagues).
    lan_devices: Vec<IpAddr>,
}

impl Host {
    /// The workstation: addresses on a home or office LAN behind NAT, its listeners,
    /// its browser.
    pub(crate) fn workstation(seed: u64, rate: f64) -> Host {
        let mut r = Rng::new(seed, stream::ADDRESSES, 1);
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        let addr4 = v4(192, 168, 1, 23);
        let any4 = v4(0, 0, 0, 0);
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let firefox = r.chance(0.5);
        let browser = Owner::new(
            r.between(2_500, 9_000) as u32,
            if firefox { "firefox" } else { "chrome" },
        );
        let push = if firefox {
            ("push.services.mozilla.com", v4(34, 107, 243, 93), 443)
        } else {
            ("mtalk.google.com", v4(142, 250, 102, 188), 5228)
        };
        let lan_devices = (0..r.between(3, 6))
            .map(|_| v4(192, 168, 1, 100 + r.below(100) as u8))
            .collect();
        let sshd = Owner::new(1021, "sshd");
        let resolved = Owner::new(612, "systemd-resolve");
        let cupsd = Owner::new(1187, "cupsd");
        let avahi = Owner::new(845, "avahi-daemon");
        let network_manager = Owner::new(790, "NetworkManager");
        let chronyd = Owner::new(733, "chronyd");
        use Transport::{Tcp, Udp};
        let l = |t, addr: IpAddr, port, state, o: &Owner| Socket {
            transport: t,
            family: family(addr),
            local_addr: addr,
            local_port: port,
            remote_addr: if addr.is_ipv4() { any4 } else { any6 },
            remote_port: 0,
            state,
            uid: o.uid,
            inode: 0,
            pid: Some(o.pid),
            process: Some(o.process.clone()),
            exe: Some(o.exe.clone()),
            netns: None,
            container: None,
        };
        let listeners = vec![
            l(Tcp, any4, 22, "LISTEN", &sshd),
            l(Tcp, any6, 22, "LISTEN", &sshd),
            l(Tcp, v4(127, 0, 0, 53), 53, "LISTEN", &resolved),
            l(Tcp, v4(127, 0, 0, 54), 53, "LISTEN", &resolved),
            l(Tcp, v4(127, 0, 0, 1), 631, "LISTEN", &cupsd),
            l(Tcp, lo6, 631, "LISTEN", &cupsd),
            l(Udp, v4(127, 0, 0, 53), 53, "UNCONN", &resolved),
            l(Udp, v4(127, 0, 0, 54), 53, "UNCONN", &resolved),
            l(Udp, addr4, 68, "UNCONN", &network_manager),
            l(Udp, v4(127, 0, 0, 1), 323, "UNCONN", &chronyd),
            l(Udp, lo6, 323, "UNCONN", &chronyd),
            l(Udp, any4, 5353, "UNCONN", &avahi),
            l(Udp, any6, 5353, "UNCONN", &avahi),
        ];
        let norm = (0..7 * 1440).map(|m| shape(m as i64 * MINUTE)).sum::<f64>() / (7.0 * 1440.0);
        Host {
            seed,
            rate,
            addr4,
            addr6: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x77, 1, 0, 0, 0, 0x23)),
            resolver: v4(192, 168, 1, 1),
            listeners,
            norm,
            role: Role::Workstation(Desk {
                browser,
                avahi,
                network_manager,
                push,
                lan_devices,
            }),
        }
    }

    /// Sockets that stay up while the machine is: the browser's push connection,
    /// re-made each day (a resume or a NAT timeout breaks it).
    pub(crate) fn desk_standing(&self, d: &Desk, t: i64, out: &mut Vec<Socket>) {
        if self.asleep(t) {
            return;
        }
        if let Some(s) = d
            .push_flow(self, t)
            .sock(t, t + 1, "ESTABLISHED", false)
            .at(t)
        {
            out.push(s);
        }
    }

    /// The workstation's minute: nothing while asleep; otherwise page loads on the
    /// working-day rhythm, the LAN's chatter, the wake-up burst after a sleep and the
    /// day's package update.
    pub(crate) fn desk_minute(
        &self,
        d: &Desk,
        t: i64,
        socks: &mut Vec<Sock>,
        out: &mut Vec<Packet>,
    ) {
        if self.asleep(t) {
            return;
        }
        let mut r = Rng::new(self.seed, stream::MINUTE, t / MINUTE);
        // A person is burstier than a crowd of web clients: wider noise than the
        // server's, around the same kind of slow drift.
        let slow = Rng::new(self.seed, stream::SLOW_NOISE, t.div_euclid(10 * MINUTE)).normal();
        let e = self.expected_packets(t) * (0.3 * slow + 0.35 * r.normal()).exp();
        for _ in 0..r.poisson(e / PKTS_PAGE) {
            let ts = t + r.below(MINUTE as u64) as i64;
            self.page_load(d, &mut r, ts, socks, out);
        }
        self.chatter(d, &mut r, t, out);
        if self.asleep(t - MINUTE) {
            self.wake_up(d, &mut r, t, out);
        }
        self.apt(&mut r, t, socks, out);
    }

    /// One page: the site itself and 0–4 hosts it pulls in, each a TLS connection or a
    /// QUIC flow from the browser, with a lookup when the cache missed.
    fn page_load(
        &self,
        d: &Desk,
        r: &mut Rng,
        ts: i64,
        socks: &mut Vec<Sock>,
        out: &mut Vec<Packet>,
    ) {
        let site = &SITES[r.zipf(SITES.len(), 2.0)];
        socks.push(self.browse(d, r, ts, site, true, out));
        let mut name = String::new();
        for _ in 0..r.between(0, 4) {
            let at = ts + r.between(80_000, 2_000_000) as i64;
            if r.chance(0.15) {
                // A host never seen before: the long tail of CDNs and trackers.
                name.clear();
                let word = *r.pick(&WORDS);
                name.push_str(word);
                name.push_str(&r.below(100).to_string());
                name.push('.');
                let domain = *r.pick(&DOMAINS);
                name.push_str(domain);
                let addr = match random_public_v4(r) {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => Ipv4Addr::new(151, 101, 2, 1),
                };
                let fresh = Site {
                    name: &name,
                    addr,
                    addr6: None,
                    quic: false,
                };
                socks.push(self.browse(d, r, at, &fresh, false, out));
            } else {
                let third = &THIRD[r.zipf(THIRD.len(), 1.6)];
                socks.push(self.browse(d, r, at, third, false, out));
            }
        }
    }

    /// One connection of the browser to `site`: QUIC when the site speaks it (most of
    /// the time), else TLS over TCP; IPv6 half the time when the site has it. A page's
    /// own host (`main`) sends more than the hosts it pulls in. Returns the socket.
    fn browse(
        &self,
        d: &Desk,
        r: &mut Rng,
        ts: i64,
        site: &Site<'_>,
        main: bool,
        out: &mut Vec<Packet>,
    ) -> Sock {
        let name = site.name;
        let mut start = ts;
        if r.chance(0.35) {
            self.lookup(r, ts, name, out);
            start += r.between(2_000, 40_000) as i64;
        }
        let remote = match site.addr6 {
            Some(a) if r.chance(0.5) => IpAddr::V6(a),
            _ => IpAddr::V4(site.addr),
        };
        let quic = site.quic && r.chance(0.7);
        let flow = Flow {
            transport: if quic { Transport::Udp } else { Transport::Tcp },
            local: self.local_for(remote),
            local_port: ephemeral(r),
            remote,
            remote_port: 443,
            owner: Some(d.browser.clone()),
        };
        let median = if main { 30.0 } else { 10.0 };
        if quic {
            let n = r.lognormal(median, 0.9).min(1500.0) as u32;
            let dur = (r.lognormal(8.0, 1.0).min(110.0) * SEC as f64) as i64;
            quic_flow(&flow, start, dur, n, name, r, out)
        } else {
            let s = TcpSession {
                start,
                // Browsers keep idle connections up to about two minutes.
                duration: (r.lognormal(15.0, 0.9).min(115.0) * SEC as f64) as i64,
                rtt: (r.lognormal(25.0, 0.5) * 1000.0) as i64,
                local_is_client: true,
                sni: Some(name),
                data: r.lognormal(median, 0.9).min(1500.0) as u32,
                client_share: 0.15,
                local_closes: r.chance(0.5),
            };
            s.emit(&flow, r, out)
        }
    }

    /// What happens whether the user works or not: keepalives on the push connection,
    /// mDNS from the LAN's devices (and avahi's answers), ARP and NTP.
    fn chatter(&self, d: &Desk, r: &mut Rng, t: i64, out: &mut Vec<Packet>) {
        let in_minute = |r: &mut Rng| t + r.below(MINUTE as u64) as i64;
        if r.chance(0.25) {
            let push = d.push_flow(self, t);
            let ts = in_minute(r);
            out.push(push.packet(ts, false, 97, Some(0x18), Some(Layer::Tls)));
            out.push(push.packet(ts + 40_000, true, 66, Some(0x10), None));
        }
        for _ in 0..r.poisson(2.0) {
            let mdns = mdns_flow(d, *r.pick(&d.lan_devices));
            out.push(mdns.packet(in_minute(r), false, r.between(80, 400) as u32, None, None));
        }
        if r.chance(0.3) {
            let mdns = mdns_flow(d, self.addr4);
            out.push(mdns.packet(in_minute(r), true, r.between(120, 300) as u32, None, None));
        }
        for _ in 0..r.poisson(1.5) {
            out.push(arp(in_minute(r), if r.chance(0.5) { 42 } else { 60 }));
        }
        if r.chance(0.06) {
            let ts = in_minute(r);
            self.ntp(r, ts, out);
        }
    }

    /// After a resume: NetworkManager renews the DHCP lease, chrony steps the clock,
    /// avahi announces the host again, and the neighbours are re-learnt.
    fn wake_up(&self, d: &Desk, r: &mut Rng, t: i64, out: &mut Vec<Packet>) {
        let dhcp = Flow {
            transport: Transport::Udp,
            local: self.addr4,
            local_port: 68,
            remote: self.resolver,
            remote_port: 67,
            owner: Some(d.network_manager.clone()),
        };
        let ts = t + r.below(5 * SEC as u64) as i64;
        out.push(dhcp.packet(ts, true, 342, None, None));
        out.push(dhcp.packet(ts + 4_000, false, 342, None, None));
        for k in 0..4 {
            self.ntp(r, ts + SEC + k * 2 * SEC, out);
        }
        let mdns = mdns_flow(d, self.addr4);
        for k in 0..3 {
            out.push(mdns.packet(ts + 2 * SEC + k * SEC, true, 250, None, None));
        }
        for k in 0..3 {
            out.push(arp(ts + k * 300_000, 42));
        }
    }

    fn ntp(&self, r: &mut Rng, ts: i64, out: &mut Vec<Packet>) {
        let f = Flow {
            transport: Transport::Udp,
            local: self.addr4,
            local_port: ephemeral(r),
            remote: IpAddr::V4(Ipv4Addr::new(185, 125, 190, 56 + r.below(3) as u8)),
            remote_port: 123,
            owner: None,
        };
        out.push(f.packet(ts, true, 90, None, None));
        out.push(f.packet(ts + 20_000, false, 90, None, None));
    }

    /// The day's package update (apt-daily: a persistent timer, so when the machine
    /// slept through its time it runs a few minutes after waking): `apt update` over
    /// HTTP to the archive and security mirrors and HTTPS to ESM, then a few minutes of
    /// downloads. Its volume follows `--rate`, as the server's backup does, so the
    /// burst stands out by the same factor whatever the rate. apt's download methods
    /// are the processes `http` and `https`, as `ss -p` shows them.
    fn apt(&self, r: &mut Rng, t: i64, socks: &mut Vec<Sock>, out: &mut Vec<Packet>) {
        let day = t.div_euclid(DAY);
        let plan = self.apt_plan(day);
        let since = t - plan.at;
        if !(0..i64::from(plan.minutes) * MINUTE).contains(&since) {
            return;
        }
        let http = Owner::new(plan.pid, "http");
        let conn = |r: &mut Rng, mirror: (&str, Ipv4Addr), port: u16, owner: &Owner| Flow {
            transport: Transport::Tcp,
            local: self.addr4,
            local_port: ephemeral(r),
            remote: IpAddr::V4(mirror.1),
            remote_port: port,
            owner: Some(owner.clone()),
        };
        if since == 0 {
            let https = Owner::new(plan.pid + 1, "https");
            for (k, (mirror, port, owner)) in [
                (ARCHIVE, 80, &http),
                (SECURITY, 80, &http),
                (ESM, 443, &https),
            ]
            .into_iter()
            .enumerate()
            {
                let ts = t + SEC + k as i64 * 150_000;
                self.lookup(r, ts, mirror.0, out);
                let s = TcpSession {
                    start: ts + 20_000,
                    duration: (r.uniform(2.0, 8.0) * SEC as f64) as i64,
                    rtt: 30_000,
                    local_is_client: true,
                    sni: (port == 443).then_some(mirror.0),
                    data: r.between(20, 80) as u32,
                    client_share: 0.05,
                    local_closes: true,
                };
                socks.push(s.emit(&conn(r, mirror, port, owner), r, out));
            }
            return;
        }
        // Downloads: a connection or two a minute to the mirrors, mostly inbound.
        let per_minute = plan.volume / f64::from(plan.minutes - 1);
        let conns = r.between(1, 2);
        for _ in 0..conns {
            let mirror = if r.chance(0.6) { ARCHIVE } else { SECURITY };
            let s = TcpSession {
                start: t + r.below(10 * SEC as u64) as i64,
                duration: (r.uniform(20.0, 50.0) * SEC as f64) as i64,
                rtt: 30_000,
                local_is_client: true,
                sni: None,
                data: (per_minute / conns as f64 * r.uniform(0.7, 1.3)) as u32,
                client_share: 0.03,
                local_closes: true,
            };
            socks.push(s.emit(&conn(r, mirror, 80, &http), r, out));
        }
    }

    /// When the day's update starts, how long it lasts and how much it downloads.
    fn apt_plan(&self, day: i64) -> AptPlan {
        let mut r = Rng::new(self.seed, stream::DAY, day ^ 0xa97);
        let mut at = day * DAY + 7 * HOUR + 30 * MINUTE + r.below(180) as i64 * MINUTE;
        let late = r.between(2, 10) as i64 * MINUTE;
        if let Role::Workstation(d) = &self.role
            && let Some((_, wake)) = d.night(self.seed, day - 1)
            && at < wake
        {
            at = wake + late;
        }
        AptPlan {
            at,
            minutes: r.between(2, 6) as u32,
            volume: (self.rate * 60.0 * r.uniform(1.0, 3.0)).max(300.0),
            pid: r.between(40_000, 60_000) as u32,
        }
    }
}

/// The day's package update.
struct AptPlan {
    at: i64,
    /// The update's minute plus the download minutes.
    minutes: u32,
    /// Data segments downloaded in all.
    volume: f64,
    pid: u32,
}

impl Desk {
    /// The LAN devices that chatter over mDNS.
    pub(crate) fn lan_devices(&self) -> &[IpAddr] {
        &self.lan_devices
    }

    /// The suspended span of the night that starts on `day`'s evening, if the machine
    /// sleeps that night (four nights in five): from 22:30–01:30 until 06:30–08:30 on a
    /// working day, 08:00–10:30 on a weekend.
    fn night(&self, seed: u64, day: i64) -> Option<(i64, i64)> {
        let mut r = Rng::new(seed, stream::DAY, day ^ 0x51ee9);
        if !r.chance(0.8) {
            return None;
        }
        let start = day * DAY + 22 * HOUR + 30 * MINUTE + r.below(180) as i64 * MINUTE;
        let next = (day + 1) * DAY;
        let wake = if weekday(next) < 5 {
            6 * HOUR + 30 * MINUTE + r.below(120) as i64 * MINUTE
        } else {
            8 * HOUR + r.below(150) as i64 * MINUTE
        };
        Some((start, next + wake))
    }

    /// Whether the machine is suspended at `t` (last night's sleep or tonight's).
    pub(crate) fn asleep(&self, seed: u64, t: i64) -> bool {
        let day = t.div_euclid(DAY);
        [day - 1, day].into_iter().any(|n| {
            self.night(seed, n)
                .is_some_and(|(from, to)| (from..to).contains(&t))
        })
    }

    /// A device on the workstation's LAN (not the router, not the workstation).
    pub(crate) fn neighbour(&self, r: &mut Rng) -> IpAddr {
        let last = loop {
            let x = r.between(2, 254) as u8;
            if x != 23 {
                break x;
            }
        };
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, last))
    }

    /// The push connection at `t`: one local port per day, changing at 05:00 (while
    /// the machine usually sleeps).
    fn push_flow(&self, host: &Host, t: i64) -> Flow {
        let key = (t - 5 * HOUR).div_euclid(DAY);
        let port = Rng::new(host.seed, stream::DAY, key ^ 0x9054).between(32_768, 60_999) as u16;
        Flow {
            transport: Transport::Tcp,
            local: host.addr4,
            local_port: port,
            remote: self.push.1,
            remote_port: self.push.2,
            owner: Some(self.browser.clone()),
        }
    }
}

/// mDNS to the multicast group, from `from` (a LAN device, or the host itself when
/// avahi answers). Outbound packets are the host's.
fn mdns_flow(d: &Desk, from: IpAddr) -> Flow {
    Flow {
        transport: Transport::Udp,
        local: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)),
        local_port: 5353,
        remote: from,
        remote_port: 5353,
        owner: Some(d.avahi.clone()),
    }
}

fn arp(ts: i64, length: u32) -> Packet {
    let mut layers = Layers::default();
    layers.push(Layer::Eth);
    layers.push(Layer::Arp);
    Packet {
        ts_micros: ts,
        length,
        layers,
        ..Packet::default()
    }
}

/// Relative load of the workstation over the week: office hours on weekdays (a dip at
/// lunch), light evenings, a light weekend day, near nothing at night. Piecewise linear
/// between the hours listed.
pub(crate) fn shape(t: i64) -> f64 {
    const WEEKDAY: [(f64, f64); 13] = [
        (0.0, 0.03),
        (6.5, 0.03),
        (8.0, 0.25),
        (9.0, 1.0),
        (12.0, 1.0),
        (12.5, 0.55),
        (13.5, 0.55),
        (14.0, 1.0),
        (17.5, 1.0),
        (18.5, 0.3),
        (22.5, 0.25),
        (23.5, 0.03),
        (24.0, 0.03),
    ];
    const WEEKEND: [(f64, f64); 6] = [
        (0.0, 0.03),
        (8.5, 0.03),
        (10.5, 0.15),
        (22.0, 0.15),
        (23.5, 0.03),
        (24.0, 0.03),
    ];
    let h = t.rem_euclid(DAY) as f64 / HOUR as f64;
    let points: &[(f64, f64)] = if weekday(t) >= 5 { &WEEKEND } else { &WEEKDAY };
    for w in points.windows(2) {
        let ((h0, v0), (h1, v1)) = (w[0], w[1]);
        if h >= h0 && h < h1 {
            return v0 + (v1 - v0) * (h - h0) / (h1 - h0);
        }
    }
    0.03
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Profile;

    const MONDAY: i64 = 20_458 * DAY;

    #[test]
    fn working_day_rhythm() {
        let at = |d: i64, h: f64| shape(MONDAY + d * DAY + (h * HOUR as f64) as i64);
        assert!(at(0, 10.0) > 20.0 * at(0, 3.0));
        assert!(at(0, 10.0) > 3.0 * at(0, 20.0));
        assert!(at(0, 12.9) < at(0, 11.0));
        assert!(at(5, 14.0) < 0.2 * at(0, 14.0));
    }

    #[test]
    fn sleeps_most_nights_for_hours() {
        let host = Host::new(3, 5.0, Profile::Workstation);
        let mut nights = 0;
        for d in 0..28 {
            let asleep = (0..24 * 60)
                .filter(|m| host.asleep(MONDAY + d * DAY + 12 * HOUR + m * MINUTE))
                .count();
            if asleep > 0 {
                nights += 1;
                assert!((5 * 60..=12 * 60).contains(&asleep), "{d}: {asleep}");
            }
            // Never asleep in office hours.
            assert!(!host.asleep(MONDAY + d * DAY + 11 * HOUR));
        }
        assert!((16..=27).contains(&nights), "{nights}");
    }

    #[test]
    fn weekly_mean_is_the_asked_rate() {
        let host = Host::new(1, 10.0, Profile::Workstation);
        let week: f64 = (0..7 * 1440)
            .map(|m| host.expected_packets(m * MINUTE) + FIXED_PER_MINUTE)
            .sum();
        let pps = week / (7.0 * 86_400.0);
        assert!((pps - 10.0).abs() < 0.2, "{pps}");
    }

    // PKTS_PAGE is what a page load makes on average; the rate depends on it.
    #[test]
    fn page_load_packets_match_the_constant() {
        let host = Host::new(5, 10.0, Profile::Workstation);
        let Role::Workstation(d) = &host.role else {
            panic!("not a workstation");
        };
        let mut r = Rng::new(1, 99, 0);
        let (mut socks, mut out) = (Vec::new(), Vec::new());
        let n = 20_000;
        for i in 0..n {
            host.page_load(d, &mut r, i * SEC, &mut socks, &mut out);
        }
        let mean = out.len() as f64 / n as f64;
        assert!((mean - PKTS_PAGE).abs() < 0.05 * PKTS_PAGE, "{mean}");
        let queries = out
            .iter()
            .filter(|p| p.dns == Some(portwatch_capture::DnsKind::Query))
            .count() as f64;
        // A lookup is an A query and, half the time, an AAAA one.
        let lookups = queries / 1.5 / n as f64;
        assert!((lookups - LOOKUPS_PAGE).abs() < 0.1, "{lookups}");
    }

    #[test]
    fn apt_runs_once_a_day_in_the_morning_and_after_waking() {
        let host = Host::new(2, 5.0, Profile::Workstation);
        for d in 0..14 {
            let day = 20_458 + d;
            let plan = host.apt_plan(day);
            assert!(!host.asleep(plan.at), "{d}");
            let h = (plan.at - day * DAY) as f64 / HOUR as f64;
            assert!((7.0..11.5).contains(&h), "{d}: {h}");
        }
    }
}
