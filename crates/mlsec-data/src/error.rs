use std::fmt;
use std::io;

/// What kind of failure a [`DataError`] is; the CLI maps every kind to exit
/// code 2, but callers (the ingestion gate, the scanner) treat them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be opened or read.
    Io,
    /// The bytes are not a valid file of the format (truncated, corrupt, ragged…).
    Malformed,
    /// Valid, but a variant mlsec does not read (structured dtypes, …).
    Unsupported,
    /// Refused for safety: reading it would mean executing code (pickles).
    Refused,
    /// Over a configured size limit.
    TooLarge,
    /// A digest did not match the recorded one.
    Integrity,
}

/// A one-line, user-facing error naming the input and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    pub path: String,
    pub kind: ErrorKind,
    pub message: String,
}

impl DataError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DataError {
            path: String::new(),
            kind,
            message: message.into(),
        }
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn io(path: &str, err: &io::Error) -> Self {
        let message = match err.kind() {
            io::ErrorKind::NotFound => "no such file or directory".to_string(),
            io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => err.to_string(),
        };
        DataError {
            path: path.to_string(),
            kind: ErrorKind::Io,
            message,
        }
    }
    /// Names the input, unless a more precise path (an archive member) is set.
    pub fn at(mut self, path: &str) -> Self {
        if self.path.is_empty() {
            self.path = path.to_string();
        }
        self
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DataError {}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
