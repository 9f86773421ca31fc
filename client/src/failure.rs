//! A failed command and the exit code it maps to: 2 for usage and request errors, 3 when
//! the daemon is not running (or stopped answering). Every command returns
//! `Result<u8, Failure>`; `main` prints the message and exits with the code.

/// A failure, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        if s.code() == tonic::Code::Unavailable {
            Failure::new(3, format!("the daemon stopped answering: {}", s.message()))
        } else {
            Failure::new(2, s.message().to_string())
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(2, e.to_string())
    }
}
