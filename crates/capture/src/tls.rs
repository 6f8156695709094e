//! TLS record recognition and the ClientHello `server_name` (SNI), hand-written and
//! bounds-checked: only a few fixed offsets are needed, and a TLS crate would want a
//! whole, reassembled handshake where we only ever see one TCP segment.

/// Whether `p` starts with a TLS record header: content type 20–23 (change cipher
/// spec, alert, handshake, application data) and a 0x03xx version (SSL 3.0 to TLS 1.3
/// record versions).
pub(crate) fn is_record(p: &[u8]) -> bool {
    matches!(p, [20..=23, 3, 0..=4, _, _, ..])
}

/// The SNI host name of a ClientHello at the start of `p` (a TLS record), as far as the
/// segment holds it.
pub(crate) fn client_hello_sni(p: &[u8]) -> Option<&[u8]> {
    if !is_record(p) || p[0] != 22 {
        return None;
    }
    // Handshake header: type 1 = ClientHello, 3-byte length.
    let hs = p.get(5..)?;
    if *hs.first()? != 1 {
        return None;
    }
    sni_from_client_hello_body(hs.get(4..)?)
}

/// The length of the ClientHello record that starts `p`, header included, when `p`
/// starts one: what a segment that holds less of it waits for.
pub(crate) fn client_hello_len(p: &[u8]) -> Option<usize> {
    if !is_record(p) || p[0] != 22 || *p.get(5)? != 1 {
        return None;
    }
    Some(5 + usize::from(u16::from_be_bytes([p[3], p[4]])))
}

/// The SNI from a ClientHello body (after the 4-byte handshake header). Shared with the
/// QUIC CRYPTO frame path, which carries the handshake without a record header.
pub(crate) fn sni_from_client_hello_body(b: &[u8]) -> Option<&[u8]> {
    let mut r = Reader { b, at: 0 };
    r.skip(2 + 32)?; // legacy_version, random
    let sid = r.u8()?;
    r.skip(usize::from(sid))?;
    let cs = r.u16()?;
    r.skip(usize::from(cs))?;
    let comp = r.u8()?;
    r.skip(usize::from(comp))?;
    let ext_len = usize::from(r.u16()?);
    let end = r.at.checked_add(ext_len)?.min(b.len());
    while r.at + 4 <= end {
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if ty == 0 {
            // server_name_list: 2-byte length, then (type, 2-byte length, name)*.
            let _list = r.u16()?;
            let name_type = r.u8()?;
            let n = usize::from(r.u16()?);
            if name_type != 0 {
                return None;
            }
            return r.take(n);
        }
        r.skip(len)?;
    }
    None
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_be_bytes([s[0], s[1]]))
    }
}

/// Test helper: a minimal TLS 1.2 ClientHello record carrying `sni`.
#[cfg(test)]
pub(crate) fn build_client_hello(sni: &[u8]) -> Vec<u8> {
    build_client_hello_with(sni, &[])
}

/// Test helper: a ClientHello with `before` — (extension type, length) of zero bytes —
/// ahead of its server name, as a browser that shuffles its extensions may send a
/// post-quantum key share (type 51, about 1,216 bytes) and padding (21) first.
#[cfg(test)]
pub(crate) fn build_client_hello_with(sni: &[u8], before: &[(u16, u16)]) -> Vec<u8> {
    let mut ext = Vec::new();
    // A non-SNI extension first (supported_groups), so the walk is exercised.
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d]);
    for &(ty, len) in before {
        ext.extend_from_slice(&ty.to_be_bytes());
        ext.extend_from_slice(&len.to_be_bytes());
        ext.resize(ext.len() + usize::from(len), 0);
    }
    let n = sni.len() as u16;
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&(n + 5).to_be_bytes());
    ext.extend_from_slice(&(n + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&n.to_be_bytes());
    ext.extend_from_slice(sni);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sni() {
        let r = build_client_hello(b"example.org");
        assert!(is_record(&r));
        assert_eq!(client_hello_sni(&r), Some(&b"example.org"[..]));
    }

    #[test]
    fn every_prefix_is_safe() {
        let r = build_client_hello(b"example.org");
        for n in 0..r.len() {
            assert_eq!(client_hello_sni(&r[..n]), None, "prefix {n}");
        }
    }

    #[test]
    fn not_tls() {
        assert!(!is_record(b"GET / HTTP/1.1\r\n"));
        assert!(!is_record(&[22, 3, 1, 0]));
        assert!(is_record(&[23, 3, 3, 0, 0]));
        assert_eq!(client_hello_sni(&[23, 3, 3, 0, 5, 1, 2, 3, 4, 5]), None);
    }
}
