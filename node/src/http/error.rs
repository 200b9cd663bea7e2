//! How the API answers a failure: the error body (`{"error": {"code", "message", "value"?}}`),
//! whose `code` is the [`Outcome`] the request ended with, and the one mapping from an outcome
//! to its HTTP status (`status_of`).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::grid::dispatch::GridError;
use crate::jobs::Refused;
use continuum_core::runtime::CallError;
use continuum_core::Outcome;

/// An error answer: `{"error": {"code", "message", "value"?}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// How the request ended (`denied`, `unknown-command`, `invalid-params`, `command-error`, …).
    pub code: Outcome,
    /// For a person: what was wrong and how to fix it.
    pub message: String,
    /// The command's own error value, for `command-error`; a grid call's attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub value: Option<Value>,
}

/// Where an outcome arose: on this node, or on a peer that a grid call asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// This node decided it.
    Local,
    /// A peer answered with it (or could not be reached): this node is only the gateway.
    Peer,
}

/// The HTTP status of a request that ended with `outcome` (which arose at `origin`).
fn status_of(outcome: Outcome, origin: Origin) -> StatusCode {
    match (origin, outcome) {
        (Origin::Peer, Outcome::Denied) => StatusCode::FORBIDDEN,
        (Origin::Peer, Outcome::Unreachable | Outcome::Timeout) => StatusCode::GATEWAY_TIMEOUT,
        (Origin::Peer, _) => StatusCode::BAD_GATEWAY,
        (Origin::Local, outcome) => match outcome {
            Outcome::Ok => StatusCode::OK,
            Outcome::UnknownCommand | Outcome::NoPeer | Outcome::NotFound => StatusCode::NOT_FOUND,
            Outcome::InvalidParams | Outcome::BadRequest => StatusCode::BAD_REQUEST,
            Outcome::CommandError
            | Outcome::Deadline
            | Outcome::MemoryLimit
            | Outcome::OutputLimit
            | Outcome::TransferLimit
            | Outcome::StackOverflow
            | Outcome::HostCallLimit
            | Outcome::DepthExceeded => StatusCode::UNPROCESSABLE_ENTITY,
            Outcome::Trap | Outcome::Malformed | Outcome::Quorum => StatusCode::BAD_GATEWAY,
            Outcome::Denied => StatusCode::FORBIDDEN,
            Outcome::Unauthenticated => StatusCode::UNAUTHORIZED,
            Outcome::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Outcome::BudgetExhausted => StatusCode::TOO_MANY_REQUESTS,
            Outcome::Cancelled | Outcome::Interrupted => StatusCode::CONFLICT,
            Outcome::Lost => StatusCode::GATEWAY_TIMEOUT,
            // Locally, only a request body arrives late; a peer that never answers is a gateway's timeout.
            Outcome::Timeout => StatusCode::REQUEST_TIMEOUT,
            Outcome::Unreachable => StatusCode::GATEWAY_TIMEOUT,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::WrongHost => StatusCode::MISDIRECTED_REQUEST,
            Outcome::HostError | Outcome::Other => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

/// An error response: its status follows from its outcome (and where that arose).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// A failure this node decided, with a message for a person.
    pub(crate) fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self::answer(outcome, Origin::Local, message.into(), None)
    }

    /// A failure that arose at `origin`, with its detail `value` if any.
    fn answer(outcome: Outcome, origin: Origin, message: String, value: Option<Value>) -> Self {
        ApiError {
            status: status_of(outcome, origin),
            body: ErrorBody { error: ErrorDetail { code: outcome, message, value } },
        }
    }

    /// The host failed (500 `host-error`).
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(Outcome::HostError, e.to_string())
    }

    /// The request is wrong (400 `bad-request`).
    pub(crate) fn bad(e: anyhow::Error) -> Self {
        Self::new(Outcome::BadRequest, format!("{e:#}"))
    }

    /// The node is at capacity (503 `busy`, sent with `Retry-After: 1`).
    pub(crate) fn busy(message: &str) -> Self {
        Self::new(Outcome::Busy, message)
    }
}

impl ApiError {
    /// The error body this error answers with (the last event of a failed stream).
    pub(crate) fn into_body(self) -> ErrorBody {
        self.body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Only this node's own capacity refusals (503) say when to retry; a peer's `busy`
        // relayed as 502 does not.
        let busy = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = (self.status, Json(self.body)).into_response();
        if busy {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        let value = match &e {
            CallError::CommandFailed { error, .. } => Some(error.clone()),
            _ => None,
        };
        Self::answer(e.outcome(), Origin::Local, e.to_string(), value)
    }
}

impl From<Refused> for ApiError {
    fn from(e: Refused) -> Self {
        Self::new(e.outcome, e.message)
    }
}

impl From<GridError> for ApiError {
    fn from(e: GridError) -> Self {
        let (origin, value) = match &e {
            GridError::Peer { attempts, .. } => (Origin::Peer, serde_json::to_value(attempts).ok()),
            GridError::Quorum { attempts, .. } => (Origin::Local, serde_json::to_value(attempts).ok()),
            _ => (Origin::Local, None),
        };
        Self::answer(e.outcome(), origin, e.to_string(), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome an API error can carry keeps the status the API has always answered with.
    #[test]
    fn outcomes_keep_their_statuses() {
        for (outcome, status) in [
            (Outcome::UnknownCommand, 404),
            (Outcome::NotFound, 404),
            (Outcome::NoPeer, 404),
            (Outcome::InvalidParams, 400),
            (Outcome::BadRequest, 400),
            (Outcome::CommandError, 422),
            (Outcome::Deadline, 422),
            (Outcome::DepthExceeded, 422),
            (Outcome::Trap, 502),
            (Outcome::Quorum, 502),
            (Outcome::Denied, 403),
            (Outcome::Unauthenticated, 401),
            (Outcome::Busy, 503),
            (Outcome::BudgetExhausted, 429),
            (Outcome::Timeout, 408),
            (Outcome::TooLarge, 413),
            (Outcome::WrongHost, 421),
            (Outcome::HostError, 500),
        ] {
            assert_eq!(status_of(outcome, Origin::Local).as_u16(), status, "{outcome}");
        }
        for (outcome, status) in [
            (Outcome::Denied, 403),
            (Outcome::Unreachable, 504),
            (Outcome::Timeout, 504),
            (Outcome::UnknownCommand, 502),
            (Outcome::CommandError, 502),
        ] {
            assert_eq!(status_of(outcome, Origin::Peer).as_u16(), status, "a peer's {outcome}");
        }
    }
}
