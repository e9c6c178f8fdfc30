//! The one error type every `#[server]` function returns, shared by server and browser.
//!
//! Each variant has one meaning; the server maps its domain errors into these in one place
//! (`server::error`), and the UI shows them next to what caused them.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error a server function reports to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No valid session: the user must log in.
    #[error("please log in to continue")]
    Unauthenticated,
    /// Logged in, but not allowed to do this (not a platform admin, or not a superadmin).
    #[error("you are not allowed to do this: {0}")]
    Forbidden(String),
    /// The thing asked for does not exist.
    #[error("{0} was not found")]
    NotFound(String),
    /// An input was invalid; `field` names the form field it belongs to.
    #[error("{field}: {message}")]
    Validation {
        /// The input's name, so the UI can show the message beside it.
        field: String,
        /// What is wrong, in words for a person.
        message: String,
    },
    /// The request conflicts with the current state (duplicate slug, illegal transition, …).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; try again later.
    #[error("{0}")]
    RateLimited(String),
    /// The server is at capacity for this; try again after `retry_after_secs` (HTTP 503 with
    /// `Retry-After`).
    #[error("{message}")]
    Unavailable {
        /// What to tell the person.
        message: String,
        /// Suggested wait, in seconds.
        retry_after_secs: u64,
    },
    /// Something failed on the server; details are in the server log, not here.
    #[error("something went wrong on the server (reference {0})")]
    Internal(String),
    /// The call itself failed: network, encoding, or an unknown server function.
    #[error("the request failed: {0}")]
    Transport(String),
}

impl AppError {
    /// A validation error for `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The message for `field`, if this is a validation error about it.
    pub fn for_field(&self, field: &str) -> Option<String> {
        match self {
            Self::Validation { field: f, message } if f == field => Some(message.clone()),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Transport(value.to_string())
    }
}
