//! [`ServerErrorsAsFailures`]: how an HTTP client's results count.

use http::{Response, StatusCode};

use crate::Outcome;
use crate::classify::Classify;

/// Counts an HTTP call as a failure when the server answered 5xx (and,
/// if asked, 429) or the call returned an error (no connection, a reset, a
/// timeout below the breaker); every other response, 4xx included, is a
/// success: the server is up and answering.
///
/// ```
/// use breakerbox::tower::ServerErrorsAsFailures;
/// use breakerbox::{Classify, Outcome};
/// use http::{Response, StatusCode};
///
/// let status = |code: u16| Ok::<_, std::io::Error>(Response::builder().status(code).body(()).unwrap());
/// assert_eq!(ServerErrorsAsFailures::new().classify(&status(503)), Outcome::Failure);
/// assert_eq!(ServerErrorsAsFailures::new().classify(&status(404)), Outcome::Success);
/// assert_eq!(ServerErrorsAsFailures::new().classify(&status(429)), Outcome::Success);
/// assert_eq!(ServerErrorsAsFailures::new().too_many_requests_as_failure().classify(&status(429)), Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServerErrorsAsFailures {
    too_many_requests: bool,
}

impl ServerErrorsAsFailures {
    /// 5xx and errors are failures; everything else is a success.
    pub const fn new() -> ServerErrorsAsFailures {
        ServerErrorsAsFailures { too_many_requests: false }
    }

    /// Also counts 429 Too Many Requests as a failure, for a downstream that
    /// sheds load that way.
    pub const fn too_many_requests_as_failure(self) -> ServerErrorsAsFailures {
        ServerErrorsAsFailures { too_many_requests: true }
    }

    /// How `status` counts.
    pub fn outcome_of(self, status: StatusCode) -> Outcome {
        if status.is_server_error() || (self.too_many_requests && status == StatusCode::TOO_MANY_REQUESTS) {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

impl<B, E> Classify<Response<B>, E> for ServerErrorsAsFailures {
    fn classify(self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => self.outcome_of(response.status()),
            Err(_) => Outcome::Failure,
        }
    }
}
