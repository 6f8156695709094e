//! Where frames come from: one [`PacketSource`] trait for live capture and files, so the
//! collector has one capture loop and tests can feed a fake source.
//!
//! The libpcap-backed implementations ([`FileSource`], [`LiveSource`]) need the `pcap`
//! feature; the trait, [`Frame`], [`Stats`] and [`copy_payload`] do not.

use crate::error::Error;
use crate::packet::Packet;

/// One captured frame, borrowed from the source until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Capture time, microseconds since the Unix epoch (UTC).
    pub ts_micros: i64,
    /// Length on the wire (the frame may hold fewer bytes: snaplen).
    pub wire_len: u32,
    pub data: &'a [u8],
}

/// libpcap's counters for a live capture (`pcap_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    /// Dropped by the kernel for lack of buffer space.
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub if_dropped: u64,
}

/// A source of frames: a live interface or a capture file.
pub trait PacketSource {
    /// The next frame. `Ok(None)`: a live read timed out with nothing to deliver, so the
    /// caller can check its stop flag and call again. `Err(Error::Eof)`: a file has no
    /// more frames. Any other error ends the source (for a file, after the frames before
    /// the failure were delivered).
    fn next(&mut self) -> Result<Option<Frame<'_>>, Error>;

    /// The libpcap link type (DLT) of the frames, for [`crate::Parser::parse`].
    fn linktype(&self) -> i32;

    /// libpcap's counters, for live sources; `None` for files.
    fn stats(&mut self) -> Option<Stats>;

    /// How far into a file reading has got, in bytes (for a progress bar; ahead of the
    /// frames delivered by at most libpcap's read buffer); `None` for live sources and
    /// for files that are not regular files.
    fn position(&self) -> Option<u64> {
        None
    }
}

/// Fills `packet.payload` with at most `max` bytes of the transport payload of `frame`
/// (as located by the parser in `packet.payload_range`). Does nothing when `max` is 0,
/// the default: payload bytes are a privacy choice.
pub fn copy_payload(packet: &mut Packet, frame: &[u8], max: usize) {
    packet.payload.clear();
    if max == 0 {
        return;
    }
    if let Some((start, end)) = packet.payload_range {
        let end = end.min(frame.len()).min(start.saturating_add(max));
        if let Some(bytes) = frame.get(start..end) {
            packet.payload.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_payload_takes_at_most_max_bytes() {
        let frame = b"headerPAYLOAD";
        let mut p = Packet {
            payload_range: Some((6, 13)),
            ..Packet::default()
        };
        copy_payload(&mut p, frame, 0);
        assert!(p.payload.is_empty(), "0 means none");
        copy_payload(&mut p, frame, 3);
        assert_eq!(p.payload, b"PAY");
        copy_payload(&mut p, frame, 100);
        assert_eq!(p.payload, b"PAYLOAD");
        // A range past the captured bytes is clamped.
        p.payload_range = Some((6, 40));
        copy_payload(&mut p, frame, 100);
        assert_eq!(p.payload, b"PAYLOAD");
        p.payload_range = None;
        copy_payload(&mut p, frame, 100);
        assert!(p.payload.is_empty());
    }
}

#[cfg(feature = "pcap")]
pub use self::libpcap::{FileSource, LiveConfig, LiveSource, check_filter, default_device};

#[cfg(feature = "pcap")]
mod libpcap {
    use std::os::fd::{AsFd, IntoRawFd};
    use std::path::{Path, PathBuf};

    use pcap::{Active, Capture, Device, Offline, Precision};

    use super::{Frame, PacketSource, Stats};
    use crate::error::Error;

    /// The device libpcap would pick (`pcap_lookupdev`'s successor: the first of
    /// `pcap_findalldevs`).
    pub fn default_device() -> Result<String, Error> {
        match Device::lookup() {
            Ok(Some(d)) => Ok(d.name),
            Ok(None) => Err(Error::NoDevice),
            Err(e) => Err(Error::Pcap(e.to_string())),
        }
    }

    /// stdio's buffer for a capture file (see [`FileSource::open`]).
    const FILE_BUF: usize = 1 << 16;

    /// A pcap or pcapng file. libpcap detects the format from the magic bytes, whatever
    /// the extension; timestamps are read at nanosecond precision and converted, so
    /// nanosecond files (magic `a1b23c4d`) come out right.
    pub struct FileSource {
        // Declared before `_buf`: the handle (and its `FILE`) is closed first.
        cap: Capture<Offline>,
        /// The `FILE`'s buffer (see [`FileSource::open`]): a `Vec`, whose heap block
        /// stays where the `FILE` points when the vector is moved into `Self`.
        _buf: Vec<u8>,
        name: String,
        frames: u64,
        done: bool,
    }

    impl std::fmt::Debug for FileSource {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("FileSource")
                .field("name", &self.name)
                .field("frames", &self.frames)
                .finish()
        }
    }

    impl FileSource {
        /// Opens the file for libpcap through a `FILE` with a buffer of `FILE_BUF`:
        /// libpcap reads each record with `fread`, and with stdio's default buffer
        /// (the file system's block, 4 KiB) that was a `read` call every 4 KiB,
        /// 190,000 for the 800 MB mix (`strace -c`). 64 KiB took the reading thread's
        /// CPU down by 15 %; 1 MiB made it slower than 4 KiB (the buffer no longer
        /// stays in the core's cache between the kernel's copy and libpcap's).
        pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
            unsafe extern "C" {
                fn pcap_fopen_offline_with_tstamp_precision(
                    fp: *mut libc::FILE,
                    precision: std::ffi::c_uint,
                    errbuf: *mut std::ffi::c_char,
                ) -> *mut std::ffi::c_void;
            }
            let path = path.as_ref();
            let fail = |message: String| Error::OpenFile {
                path: PathBuf::from(path),
                message,
            };
            // `-` is the standard input, as for libpcap and tcpdump's `-r -`.
            let file = if path == Path::new("-") {
                std::io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .map(std::fs::File::from)
            } else {
                std::fs::File::open(path)
            };
            let fd = file.map_err(|e| fail(e.to_string()))?.into_raw_fd();
            // SAFETY: `fd` is ours and open; on success the FILE owns it.
            let fp = unsafe { libc::fdopen(fd, c"rb".as_ptr()) };
            if fp.is_null() {
                let e = std::io::Error::last_os_error();
                // SAFETY: not adopted by a FILE, so still ours to close.
                unsafe { libc::close(fd) };
                return Err(fail(e.to_string()));
            }
            let mut buf = vec![0u8; FILE_BUF];
            // SAFETY: no I/O has been done on `fp` yet (setvbuf must come first); the
            // buffer outlives the FILE (`FileSource` drops `cap` before `_buf`). Should
            // setvbuf refuse, stdio keeps its own buffer: slower, as correct.
            unsafe { libc::setvbuf(fp, buf.as_mut_ptr().cast(), libc::_IOFBF, buf.len()) };
            let mut err = [0 as std::ffi::c_char; 256]; // PCAP_ERRBUF_SIZE
            // SAFETY: `fp` is a readable FILE and `err` has PCAP_ERRBUF_SIZE bytes.
            let handle = unsafe {
                pcap_fopen_offline_with_tstamp_precision(
                    fp,
                    Precision::Nano as std::ffi::c_uint,
                    err.as_mut_ptr(),
                )
            };
            let Some(handle) = std::ptr::NonNull::new(handle) else {
                // SAFETY: libpcap does not close a FILE it was given and failed on.
                unsafe { libc::fclose(fp) };
                // SAFETY: libpcap wrote a NUL-terminated message into `err`.
                let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
                return Err(fail(msg.to_string_lossy().into_owned()));
            };
            Ok(FileSource {
                // The handle now owns `fp`: closing it closes the file.
                cap: Capture::from(handle.cast()),
                _buf: buf,
                name: path.display().to_string(),
                frames: 0,
                done: false,
            })
        }

        /// Frames delivered so far.
        pub fn frames(&self) -> u64 {
            self.frames
        }
    }

    /// The record's time in microseconds; `nanos` when the capture was opened with
    /// nanosecond precision (then `tv_usec` holds nanoseconds).
    // time_t and suseconds_t are i64 here but i32 on some targets.
    #[allow(clippy::useless_conversion)]
    fn header_micros(h: &pcap::PacketHeader, nanos: bool) -> i64 {
        ts_micros(i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec), nanos)
    }

    fn ts_micros(sec: i64, frac: i64, nanos: bool) -> i64 {
        let frac = if nanos { frac.div_euclid(1000) } else { frac };
        sec.saturating_mul(1_000_000).saturating_add(frac)
    }

    impl PacketSource for FileSource {
        fn next(&mut self) -> Result<Option<Frame<'_>>, Error> {
            if self.done {
                return Err(Error::Eof);
            }
            match self.cap.next_packet() {
                Ok(p) => {
                    self.frames += 1;
                    Ok(Some(Frame {
                        ts_micros: header_micros(p.header, true),
                        wire_len: p.header.len,
                        data: p.data,
                    }))
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.done = true;
                    Err(Error::Eof)
                }
                Err(e) => {
                    self.done = true;
                    Err(Error::Read {
                        source_name: self.name.clone(),
                        frames: self.frames,
                        message: e.to_string(),
                    })
                }
            }
        }

        fn linktype(&self) -> i32 {
            self.cap.get_datalink().0
        }

        fn stats(&mut self) -> Option<Stats> {
            None
        }

        fn position(&self) -> Option<u64> {
            unsafe extern "C" {
                // libpcap: for a savefile, the descriptor of the file being read.
                fn pcap_fileno(p: *mut std::ffi::c_void) -> std::ffi::c_int;
            }
            // SAFETY: the handle is alive as long as `self.cap`; pcap_fileno only reads
            // it. lseek with SEEK_CUR and offset 0 moves nothing: it reports where the
            // stdio buffer's reads have got (a pipe answers -1, hence None).
            let fd = unsafe { pcap_fileno(self.cap.as_ptr().cast()) };
            if fd < 0 {
                return None;
            }
            let at = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
            u64::try_from(at).ok()
        }
    }

    /// Settings of a live capture.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LiveConfig {
        /// `None`: libpcap's default device. `"any"` captures on all (Linux SLL2).
        pub interface: Option<String>,
        /// A BPF filter, as tcpdump takes it.
        pub filter: Option<String>,
        /// Off by default: this is a host tool.
        pub promiscuous: bool,
        pub snaplen: i32,
        /// Kernel ring size in bytes. The ring is mapped into the process and counts in
        /// its resident memory whole, so it is sized for the load rather than generous:
        /// 8 MiB kept 0 drops at 100k packets/s on loopback (BENCHMARKS.md).
        pub buffer_size: i32,
        /// How long a read waits before returning `Ok(None)`, so the caller can check
        /// its stop flag.
        pub read_timeout_ms: i32,
    }

    impl Default for LiveConfig {
        fn default() -> Self {
            LiveConfig {
                interface: None,
                filter: None,
                promiscuous: false,
                snaplen: 262_144,
                buffer_size: 8 << 20,
                read_timeout_ms: 20,
            }
        }
    }

    /// A live capture on one interface (or `any`).
    pub struct LiveSource {
        cap: Capture<Active>,
        interface: String,
        /// The capture is non-blocking: libpcap's read timeout on Linux (TPACKET_V3)
        /// only starts with the first packet, so a quiet interface would block a read
        /// for ever. Once a read finds nothing, we `poll` the descriptor with our own
        /// timeout before reading again.
        drained: bool,
        timeout_ms: i32,
    }

    impl std::fmt::Debug for LiveSource {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("LiveSource")
                .field("interface", &self.interface)
                .finish()
        }
    }

    /// Compiles `filter` for Ethernet without opening a device, so that a filter that
    /// does not parse is refused before anything is created or written. (A filter that
    /// parses but does not fit the interface's link type is still refused at open.)
    pub fn check_filter(filter: &str) -> Result<(), Error> {
        let bad = |e: pcap::Error| Error::Filter {
            filter: filter.to_owned(),
            message: e.to_string(),
        };
        Capture::dead(pcap::Linktype::ETHERNET)
            .map_err(bad)?
            .compile(filter, true)
            .map(drop)
            .map_err(bad)
    }

    impl LiveSource {
        pub fn open(config: &LiveConfig) -> Result<Self, Error> {
            let interface = match &config.interface {
                Some(i) => i.clone(),
                None => default_device()?,
            };
            let inactive = Capture::from_device(interface.as_str())
                .map_err(|e| Error::from_open_message(&interface, e.to_string()))?;
            let mut cap = inactive
                .promisc(config.promiscuous)
                .snaplen(config.snaplen)
                .buffer_size(config.buffer_size)
                .timeout(config.read_timeout_ms)
                .open()
                .map_err(|e| Error::from_open_message(&interface, e.to_string()))?;
            if let Some(filter) = &config.filter {
                cap.filter(filter, true).map_err(|e| Error::Filter {
                    filter: filter.clone(),
                    message: e.to_string(),
                })?;
            }
            let cap = cap
                .setnonblock()
                .map_err(|e| Error::from_open_message(&interface, e.to_string()))?;
            Ok(LiveSource {
                cap,
                interface,
                drained: false,
                timeout_ms: config.read_timeout_ms.max(1),
            })
        }

        /// The interface captured on (the default device resolved).
        pub fn interface(&self) -> &str {
            &self.interface
        }
    }

    impl PacketSource for LiveSource {
        fn next(&mut self) -> Result<Option<Frame<'_>>, Error> {
            if self.drained {
                use std::os::fd::AsRawFd;
                let mut fds = libc::pollfd {
                    fd: self.cap.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, owned by this frame, for the call's duration.
                let n = unsafe { libc::poll(&mut fds, 1, self.timeout_ms) };
                if n <= 0 {
                    // Timeout, or EINTR from a signal: let the caller check its flags.
                    return Ok(None);
                }
                self.drained = false;
            }
            match self.cap.next_packet() {
                Ok(p) => Ok(Some(Frame {
                    ts_micros: header_micros(p.header, false),
                    wire_len: p.header.len,
                    data: p.data,
                })),
                Err(pcap::Error::TimeoutExpired) => {
                    self.drained = true;
                    Ok(None)
                }
                Err(e) => Err(Error::Read {
                    source_name: self.interface.clone(),
                    frames: 0,
                    message: e.to_string(),
                }),
            }
        }

        fn linktype(&self) -> i32 {
            self.cap.get_datalink().0
        }

        fn stats(&mut self) -> Option<Stats> {
            self.cap.stats().ok().map(|s| Stats {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                if_dropped: u64::from(s.if_dropped),
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn timestamp_conversion() {
            assert_eq!(ts_micros(1, 500_000, false), 1_500_000);
            assert_eq!(ts_micros(1, 500_000_999, true), 1_500_000);
            assert_eq!(ts_micros(0, 999, true), 0);
        }
    }
}
