//! A failed command and the exit code it maps to: 2 for usage and request errors, 3 when
//! the daemon is not running (or stopped answering: its `UNAVAILABLE`, or a broken
//! connection). Every command returns
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

/// Whether `s` says the daemon went away (it stopped, or the connection broke) rather than
/// answering with an error.
pub fn daemon_went_away(s: &tonic::Status) -> bool {
    // tonic reports a connection that broke mid-stream as this, without its cause.
    const BROKEN_CONNECTION: &str = "h2 protocol error:";
    if s.code() == tonic::Code::Unavailable || s.message().starts_with(BROKEN_CONNECTION) {
        return true;
    }
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        if e.is::<tonic::transport::Error>() || e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// What went wrong, with the causes a bare "transport error" would hide.
pub fn describe(s: &tonic::Status) -> String {
    let mut text = s.message().to_string();
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = e.source();
    }
    text
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        if daemon_went_away(&s) {
            Failure::new(3, format!("the daemon stopped answering: {}", describe(&s)))
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
