use std::fmt;

/// What went wrong, so that the CLI can pick an exit status and callers can
/// tell bad input from an unsupported model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file could not be read or written.
    Io,
    /// The bytes are not a valid model, config or dataset.
    Malformed,
    /// Valid, but asks for something mlsec does not do (an op, a dtype).
    Unsupported,
    /// The inputs do not fit the model (shape, classes, value range).
    Mismatch,
}

/// A one-line, user-facing error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ModelError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ModelError {
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
    pub fn mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Mismatch, message)
    }
    pub fn io(path: &std::path::Path, err: &std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("{}: {err}", path.display()))
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ModelError {}

impl From<mlsec_data::DataError> for ModelError {
    fn from(e: mlsec_data::DataError) -> Self {
        let kind = match e.kind {
            mlsec_data::ErrorKind::Io => ErrorKind::Io,
            mlsec_data::ErrorKind::Unsupported => ErrorKind::Unsupported,
            _ => ErrorKind::Malformed,
        };
        ModelError::new(kind, e.to_string())
    }
}

impl From<mlsec_onnx::OnnxError> for ModelError {
    fn from(e: mlsec_onnx::OnnxError) -> Self {
        let kind = if e.unsupported {
            ErrorKind::Unsupported
        } else {
            ErrorKind::Malformed
        };
        ModelError::new(kind, e.message)
    }
}

pub type Result<T> = std::result::Result<T, ModelError>;
