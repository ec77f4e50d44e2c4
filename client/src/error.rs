//! The client's one error type.

use std::fmt;

/// Why a call failed.
#[derive(Debug)]
pub enum Error {
    /// The connection failed or broke.
    Io(std::io::Error),
    /// The server answered with an error reply (its text, e.g. `ERR …`).
    Server(String),
    /// The server sent something this client does not understand.
    Protocol(String),
    /// No answer within the configured time.
    Timeout,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "connection error: {e}"),
            Error::Server(msg) => write!(f, "server error: {msg}"),
            Error::Protocol(msg) => write!(f, "protocol error: {msg}"),
            Error::Timeout => write!(f, "timed out"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// Results of client calls.
pub type Result<T> = std::result::Result<T, Error>;
