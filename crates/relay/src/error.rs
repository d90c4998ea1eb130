//! The crate's one error type, shared by the hub-side client and the relay
//! server. Every variant's message says what was refused and why, in words
//! an operator or a household can act on.

use crate::token::TokenError;

/// Everything that can go wrong talking to or running a relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The tunnel is down right now (the client keeps retrying).
    #[error("not connected to the relay{}", .0.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    NotConnected(Option<String>),
    /// The relay refused: enrolment, authentication, a control request, or
    /// a limit. The text is the relay's own explanation.
    #[error("the relay refused: {0}")]
    Refused(String),
    /// The peer spoke something other than the relay protocol.
    #[error("relay protocol error: {0}")]
    Protocol(String),
    /// The relay's certificate is not the one pinned from the token.
    #[error("the relay's key does not match the fingerprint from the enrolment token (expected {expected}, got {got}); this is not the relay you enrolled with")]
    WrongRelayKey { expected: String, got: String },
    /// A malformed enrolment token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// TLS setup or handshake.
    #[error("TLS: {0}")]
    Tls(String),
    /// Reading or writing the relay's data folder.
    #[error("{what}: {source}")]
    Storage {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Network I/O, with what was being done.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Took too long.
    #[error("timed out {0}")]
    Timeout(String),
}

impl RelayError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RelayError {
        let what = what.into();
        move |source| RelayError::Io { what, source }
    }

    pub(crate) fn storage(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RelayError {
        let what = what.into();
        move |source| RelayError::Storage { what, source }
    }
}
