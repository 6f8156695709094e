//! The crate's one error type. Callers branch on it: a permission error becomes a hint
//! about capabilities, the end of a file ends a round normally, a read error mid-file
//! ends it with a note after the frames before it were kept.

use std::path::PathBuf;

/// Errors from opening and reading packet sources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening a live capture without CAP_NET_RAW (libpcap's "You don't have permission
    /// to capture on that device" / "Operation not permitted").
    #[error(
        "no permission to capture on {interface} ({message}): run as root or grant the \
         capabilities with `setcap cap_net_raw,cap_net_admin=eip {exe}`"
    )]
    PermissionDenied {
        interface: String,
        message: String,
        /// The program to grant the capabilities to (this executable when known).
        exe: String,
    },
    /// The interface does not exist or cannot be opened for another reason.
    #[error("cannot capture on {interface}: {message}")]
    OpenInterface { interface: String, message: String },
    /// libpcap found no device to capture on.
    #[error("no capture device found (pass an interface name, or \"any\")")]
    NoDevice,
    /// The BPF filter does not compile.
    #[error("invalid capture filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    /// The file cannot be opened as pcap or pcapng.
    #[error("cannot open capture file {}: {message}", path.display())]
    OpenFile { path: PathBuf, message: String },
    /// A read failed part-way (e.g. a corrupt record header); frames before it were
    /// delivered.
    #[error("error reading {source_name} after {frames} frames: {message}")]
    Read {
        source_name: String,
        frames: u64,
        message: String,
    },
    /// The file has no more frames. Not a failure: the loop ends here.
    #[error("end of capture file")]
    Eof,
    /// Any other libpcap error.
    #[error("libpcap: {0}")]
    Pcap(String),
}

impl Error {
    /// Whether this is the normal end of a file.
    pub fn is_eof(&self) -> bool {
        matches!(self, Error::Eof)
    }

    /// Builds the error for a failed live open, recognising libpcap's permission
    /// messages.
    pub fn from_open_message(interface: &str, message: String) -> Self {
        let lower = message.to_ascii_lowercase();
        if lower.contains("permission") || lower.contains("operation not permitted") {
            let exe = std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "/path/to/collector".to_owned());
            Error::PermissionDenied {
                interface: interface.to_owned(),
                message,
                exe,
            }
        } else {
            Error::OpenInterface {
                interface: interface.to_owned(),
                message,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_message_names_the_fix() {
        let e = Error::from_open_message(
            "eth0",
            "eth0: You don't have permission to capture on that device \
             (socket: Operation not permitted)"
                .to_owned(),
        );
        assert!(matches!(e, Error::PermissionDenied { .. }));
        let s = e.to_string();
        assert!(s.contains("run as root"), "{s}");
        assert!(s.contains("setcap cap_net_raw,cap_net_admin=eip"), "{s}");
        let e = Error::from_open_message("any", "socket: Operation not permitted".into());
        assert!(matches!(e, Error::PermissionDenied { .. }));
        let e = Error::from_open_message("nope0", "No such device exists".into());
        assert!(matches!(e, Error::OpenInterface { .. }));
    }
}
