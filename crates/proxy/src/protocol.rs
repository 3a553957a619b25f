//! Postgres wire messages the proxy reads from clients and writes to them.
//!
//! The startup parser ([`parse_startup`]) takes untrusted bytes: it is bounded, never panics and is
//! fuzzed (`fuzz/fuzz_targets/startup.rs`). Frontend messages sent upstream (passwords, SASL) are
//! encoded with `postgres-protocol`.

use bytes::{BufMut, BytesMut};

/// PostgreSQL's own limit on a startup packet (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;
/// At most this many parameters in a StartupMessage.
pub const MAX_STARTUP_PARAMS: usize = 64;

pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;
pub const CANCEL_REQUEST: u32 = 80_877_102;

/// The longest cancel key accepted (protocol 3.2 allows up to 256 bytes).
pub const MAX_CANCEL_KEY: usize = 256;

#[derive(Debug, PartialEq, Eq)]
pub enum Startup {
    Ssl,
    GssEnc,
    Cancel {
        pid: u32,
        key: Vec<u8>,
    },
    /// A StartupMessage: protocol version (major << 16 | minor) and parameters in order.
    Startup {
        version: u32,
        params: Vec<(String, String)>,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum StartupError {
    /// Length outside 8..=MAX_STARTUP_LEN.
    BadLength(u32),
    /// Protocol major version other than 3.
    UnsupportedVersion(u32),
    /// Anything else malformed.
    Malformed(&'static str),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::BadLength(n) => write!(f, "invalid length of startup packet ({n} bytes)"),
            StartupError::UnsupportedVersion(v) => {
                write!(f, "unsupported frontend protocol {}.{}: the proxy supports 3.x", v >> 16, v & 0xffff)
            }
            StartupError::Malformed(what) => write!(f, "malformed startup packet: {what}"),
        }
    }
}

/// Check a startup packet's length word (which counts itself).
pub fn check_startup_len(len: u32) -> Result<usize, StartupError> {
    let l = len as usize;
    if !(8..=MAX_STARTUP_LEN).contains(&l) {
        return Err(StartupError::BadLength(len));
    }
    Ok(l - 4)
}

/// Parse a startup packet after its length word: `body` = version/request code + payload.
pub fn parse_startup(body: &[u8]) -> Result<Startup, StartupError> {
    if body.len() < 4 || body.len() + 4 > MAX_STARTUP_LEN {
        return Err(StartupError::BadLength((body.len() + 4) as u32));
    }
    let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let rest = &body[4..];
    match code {
        SSL_REQUEST | GSSENC_REQUEST => {
            if !rest.is_empty() {
                return Err(StartupError::Malformed("encryption request with a payload"));
            }
            Ok(if code == SSL_REQUEST { Startup::Ssl } else { Startup::GssEnc })
        }
        CANCEL_REQUEST => {
            if rest.len() < 8 || rest.len() > 4 + MAX_CANCEL_KEY {
                return Err(StartupError::Malformed("cancel request of the wrong length"));
            }
            let pid = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            Ok(Startup::Cancel { pid, key: rest[4..].to_vec() })
        }
        v if v >> 16 == 3 => Ok(Startup::Startup { version: v, params: parse_params(rest)? }),
        v => Err(StartupError::UnsupportedVersion(v)),
    }
}

fn parse_params(mut rest: &[u8]) -> Result<Vec<(String, String)>, StartupError> {
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        let (name, r) = cstr(rest)?;
        rest = r;
        if name.is_empty() {
            if !rest.is_empty() {
                return Err(StartupError::Malformed("bytes after the parameter list"));
            }
            return Ok(params);
        }
        let (value, r) = cstr(rest)?;
        rest = r;
        if params.len() == MAX_STARTUP_PARAMS {
            return Err(StartupError::Malformed("too many parameters"));
        }
        if params.iter().any(|(n, _)| n == name) {
            return Err(StartupError::Malformed("a parameter given twice"));
        }
        params.push((name.to_string(), value.to_string()));
    }
}

fn cstr(b: &[u8]) -> Result<(&str, &[u8]), StartupError> {
    let nul = b.iter().position(|&c| c == 0).ok_or(StartupError::Malformed("unterminated string"))?;
    let s = std::str::from_utf8(&b[..nul]).map_err(|_| StartupError::Malformed("a parameter is not UTF-8"))?;
    Ok((s, &b[nul + 1..]))
}

/// Encode a StartupMessage with the given protocol version.
pub fn startup_message(version: u32, params: &[(String, String)], buf: &mut BytesMut) {
    let start = buf.len();
    buf.put_u32(0);
    buf.put_u32(version);
    for (k, v) in params {
        buf.put_slice(k.as_bytes());
        buf.put_u8(0);
        buf.put_slice(v.as_bytes());
        buf.put_u8(0);
    }
    buf.put_u8(0);
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A CancelRequest for an upstream backend (its key may be longer than 4 bytes under 3.2).
pub fn cancel_request(pid: u32, key: &[u8], buf: &mut BytesMut) {
    buf.put_u32((12 + key.len()) as u32);
    buf.put_u32(CANCEL_REQUEST);
    buf.put_u32(pid);
    buf.put_slice(key);
}

/// Tracks message boundaries of a client's stream after startup, to see a Terminate ('X').
/// Fed every byte the relay reads from the client; constant memory; gives up (never panics) on
/// a length below 4.
#[derive(Default)]
pub struct Framing {
    head: [u8; 5],
    have: usize,
    remaining: u64,
    pub terminated: bool,
    lost: bool,
}

impl Framing {
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() && !self.lost {
            if self.remaining > 0 {
                let n = (self.remaining as usize).min(b.len());
                self.remaining -= n as u64;
                b = &b[n..];
                continue;
            }
            let n = (5 - self.have).min(b.len());
            self.head[self.have..self.have + n].copy_from_slice(&b[..n]);
            self.have += n;
            b = &b[n..];
            if self.have == 5 {
                let len = u32::from_be_bytes([self.head[1], self.head[2], self.head[3], self.head[4]]) as u64;
                if len < 4 {
                    self.lost = true;
                    return;
                }
                if self.head[0] == b'X' {
                    self.terminated = true;
                }
                self.remaining = len - 4;
                self.have = 0;
            }
        }
    }
}

/// SQLSTATEs the proxy itself reports.
pub mod sqlstate {
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const UNABLE_TO_CONNECT: &str = "08001";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
}

/// A FATAL ErrorResponse from the proxy itself.
pub fn error_response(code: &str, message: &str, hint: Option<&str>) -> BytesMut {
    let mut b = BytesMut::with_capacity(64 + message.len());
    b.put_u8(b'E');
    b.put_u32(0);
    let mut field = |t: u8, v: &str| {
        b.put_u8(t);
        // A NUL inside a field would end it early; the proxy's own texts have none, but be safe.
        b.extend(v.bytes().filter(|&c| c != 0));
        b.put_u8(0);
    };
    field(b'S', "FATAL");
    field(b'V', "FATAL");
    field(b'C', code);
    field(b'M', message);
    if let Some(h) = hint {
        field(b'H', h);
    }
    b.put_u8(0);
    let len = (b.len() - 1) as u32;
    b[1..5].copy_from_slice(&len.to_be_bytes());
    b
}

pub fn auth_ok(buf: &mut BytesMut) {
    buf.put_u8(b'R');
    buf.put_u32(8);
    buf.put_u32(0);
}

pub fn backend_key_data(pid: u32, key: &[u8], buf: &mut BytesMut) {
    buf.put_u8(b'K');
    buf.put_u32((8 + key.len()) as u32);
    buf.put_u32(pid);
    buf.put_slice(key);
}

/// The fields of an ErrorResponse/NoticeResponse body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
}

impl ServerError {
    pub fn parse(body: &[u8]) -> ServerError {
        let mut e = ServerError::default();
        let mut rest = body;
        while let Some((&t, r)) = rest.split_first() {
            if t == 0 {
                break;
            }
            let nul = r.iter().position(|&c| c == 0).unwrap_or(r.len());
            let v = String::from_utf8_lossy(&r[..nul]).into_owned();
            match t {
                b'V' => e.severity = v,
                b'S' if e.severity.is_empty() => e.severity = v,
                b'C' => e.code = v,
                b'M' => e.message = v,
                _ => {}
            }
            rest = r.get(nul + 1..).unwrap_or(&[]);
        }
        e
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (SQLSTATE {})", self.severity, self.message, self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn parses_each_kind_of_startup_packet() {
        assert_eq!(parse_startup(&packet(SSL_REQUEST, b"")), Ok(Startup::Ssl));
        assert_eq!(parse_startup(&packet(GSSENC_REQUEST, b"")), Ok(Startup::GssEnc));
        let mut c = 7u32.to_be_bytes().to_vec();
        c.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(parse_startup(&packet(CANCEL_REQUEST, &c)), Ok(Startup::Cancel { pid: 7, key: vec![1, 2, 3, 4] }));
        let s = parse_startup(&packet(196608, b"user\0alice\0database\0db\0\0")).unwrap();
        assert_eq!(
            s,
            Startup::Startup { version: 196608, params: vec![("user".into(), "alice".into()), ("database".into(), "db".into())] }
        );
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(check_startup_len(7), Err(StartupError::BadLength(7)));
        assert_eq!(check_startup_len(10_001), Err(StartupError::BadLength(10_001)));
        assert_eq!(check_startup_len(8), Ok(4));
        assert!(matches!(parse_startup(&packet(196608, b"user\0alice\0")), Err(StartupError::Malformed(_))));
        assert!(matches!(parse_startup(&packet(196608, b"user\0alice")), Err(StartupError::Malformed(_))));
        assert!(matches!(parse_startup(&packet(196608, b"user\0a\0user\0b\0\0")), Err(StartupError::Malformed(_))));
        assert!(matches!(parse_startup(&packet(196608, b"user\0\xff\0\0")), Err(StartupError::Malformed(_))));
        assert!(matches!(parse_startup(&packet(196608, b"\0junk")), Err(StartupError::Malformed(_))));
        assert_eq!(parse_startup(&packet(131072, b"")), Err(StartupError::UnsupportedVersion(131072)));
        assert!(matches!(parse_startup(&packet(SSL_REQUEST, b"x")), Err(StartupError::Malformed(_))));
        assert!(matches!(parse_startup(&packet(CANCEL_REQUEST, b"1234")), Err(StartupError::Malformed(_))));
        let many: Vec<u8> = (0..65).flat_map(|i| format!("k{i}\0v\0").into_bytes()).chain([0]).collect();
        assert!(matches!(parse_startup(&packet(196608, &many)), Err(StartupError::Malformed(_))));
    }

    #[test]
    fn encodes_what_it_parses() {
        let params = vec![("user".to_string(), "u".to_string()), ("application_name".to_string(), "x".to_string())];
        let mut b = BytesMut::new();
        startup_message(196610, &params, &mut b);
        let len = check_startup_len(u32::from_be_bytes(b[..4].try_into().unwrap())).unwrap();
        assert_eq!(len, b.len() - 4);
        assert_eq!(parse_startup(&b[4..]), Ok(Startup::Startup { version: 196610, params }));
    }

    #[test]
    fn framing_sees_terminate_across_chunks() {
        let mut f = Framing::default();
        let q = b"Q\0\0\0\x0dselect 1\0";
        f.feed(&q[..3]);
        f.feed(&q[3..]);
        assert!(!f.terminated);
        // 'X' inside a query body is not a Terminate.
        f.feed(b"Q\0\0\0\x06X\0");
        assert!(!f.terminated);
        f.feed(b"X\0\0");
        f.feed(b"\0\x04");
        assert!(f.terminated);
    }

    #[test]
    fn error_responses_round_trip() {
        let b = error_response("08001", "no\0pe", Some("hint"));
        assert_eq!(b[0], b'E');
        assert_eq!(u32::from_be_bytes(b[1..5].try_into().unwrap()) as usize, b.len() - 1);
        let e = ServerError::parse(&b[5..]);
        assert_eq!((e.severity.as_str(), e.code.as_str(), e.message.as_str()), ("FATAL", "08001", "nope"));
        assert_eq!(ServerError::parse(b"Sx"), ServerError { severity: "x".into(), ..Default::default() });
    }
}
