//! The crate's one error type. Every message is written for a human and never contains a secret:
//! callers build messages from redacted data only (see [`crate::secret::Secret`]).

use std::fmt;

/// Coarse class of an error; maps one-to-one onto the C `lakebase_result` codes. New kinds may
/// be added: match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A NULL pointer, invalid UTF-8, or a malformed options string from the caller.
    InvalidArgument,
    /// The caller's buffer is too small (only produced by the FFI layer).
    InsufficientSize,
    /// The configuration is missing, contradictory or unreadable (profile, host, auth type...).
    Config,
    /// The workspace rejected the credentials, or no auth method could produce a token.
    Auth,
    /// The workspace answered with an API error (4xx/5xx with an error body) or an unusable body.
    Api,
    /// Connection refused/reset, DNS, TLS handshake or timeout.
    Network,
    /// A bug: a caught panic or a broken invariant.
    Internal,
}

/// An error with its class, a human message and, for API errors, the HTTP status and error code.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    error_code: Option<String>,
    retry_after: Option<std::time::Duration>,
}

impl Error {
    /// An error of `kind` with a message (never put a secret into it).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), status: None, error_code: None, retry_after: None }
    }
    /// An [`ErrorKind::InvalidArgument`] error.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    /// An [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    /// An [`ErrorKind::Auth`] error.
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, message)
    }
    /// An [`ErrorKind::Api`] error.
    pub fn api(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Api, message)
    }
    /// An [`ErrorKind::Network`] error.
    pub fn network(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Network, message)
    }
    /// An [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Attach the HTTP status and API `error_code` of the response that caused this error.
    pub fn with_http(mut self, status: u16, error_code: Option<String>) -> Self {
        self.status = Some(status);
        self.error_code = error_code;
        self
    }
    /// Attach the server's `Retry-After`.
    pub fn with_retry_after(mut self, d: Option<std::time::Duration>) -> Self {
        self.retry_after = d;
        self
    }
    /// The same error with another kind.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Prefix the message with context, e.g. `"oauth-m2m auth: "`.
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message: what failed, why, and what to set (never a secret).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The HTTP status of the response that caused the error, if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
    /// The API's `error_code` (e.g. `RESOURCE_DOES_NOT_EXIST`), if any.
    pub fn error_code(&self) -> Option<&str> {
        self.error_code.as_deref()
    }
    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Whether retrying the same request later may succeed (throttling, unavailability, network).
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Network => true,
            ErrorKind::Api | ErrorKind::Auth => matches!(self.status, Some(429 | 502 | 503 | 504)),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}: {})", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
