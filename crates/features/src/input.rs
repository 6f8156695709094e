//! What the round builder reads of the stored rows: one socket row of a scanner sample
//! and one packet. The store crate produces them from `rounds_ports` and `packets`; they
//! are plain structs here so this crate needs no SQLite, and the simulator or a test
//! can feed the builder without a database.

/// One `rounds_ports` row (produced by the store crate).
#[derive(Clone, Debug)]
pub struct SockRow {
    /// Sample time (µs).
    pub ts: i64,
    /// Local port.
    pub port: u16,
    /// TCP (else UDP).
    pub tcp: bool,
    /// Socket state as stored (`LISTEN`, `UNCONN`, …).
    pub state: String,
    /// Sockets in this row.
    pub sockets: i64,
    /// Owning process.
    pub process: Option<String>,
}

/// The `packets` columns features use (produced by the store crate). Borrowed, so
/// reading one packet row allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct PktRow<'a> {
    /// Capture time (µs).
    pub ts: i64,
    /// Layer stack, e.g. `eth:ipv4:udp:dns` (the `Display` of
    /// [`portwatch_capture::Layers`]).
    pub protocols: &'a str,
    /// DNS question name.
    pub qry_name: Option<&'a str>,
    /// Whether the DNS answer section is present.
    pub has_resp: bool,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// Source address.
    pub src: Option<&'a str>,
    /// Destination address.
    pub dst: Option<&'a str>,
    /// Wire length.
    pub length: i64,
    /// TCP flags.
    pub tcp_flags: Option<i64>,
    /// 0 query, 1 response, None when not DNS.
    pub dns_qr: Option<i64>,
    /// The local process the packet was attributed to. Not a feature: the detector
    /// uses it to leave an incident's process out of what it learns.
    pub process: Option<&'a str>,
}
