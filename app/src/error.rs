//! The one error type every `#[server]` function returns, shared by server and browser.
//!
//! Each variant has one meaning; the server maps its domain errors into these in one place
//! (`server::error`), and the UI shows them next to what caused them.

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
    type Encoder = crate::codec::JsonCodec;

    /// A failed call, in words safe to show and to log: arguments that did not decode keep the
    /// form codec's message (which names the argument); every message is [`clip`]ped, so a
    /// hostile value is never echoed back whole.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let message = match value {
            ServerFnErrorErr::Deserialization(message)
                if message.starts_with(crate::codec::MALFORMED) =>
            {
                message
            }
            // On the server, the only thing deserialized is the request (the body could not be
            // read: too large, cut off); in the browser it is the server's answer.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(message) => {
                format!(
                    "{}: the body could not be read ({message})",
                    crate::codec::MALFORMED
                )
            }
            // In the browser: the request failed or its answer was cut off (the network, or the
            // server going away). Said plainly, whatever the browser reported (release bundles
            // could not write its `Debug` anyway). The server's own calls never send these.
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                "Nest could not be reached: check your connection, then try again.".to_owned()
            }
            other => other.to_string(),
        };
        Self::Transport(clip(&message))
    }
}

/// Longest message [`clip`] keeps, in characters.
pub const MAX_MESSAGE: usize = 240;

/// Longest quoted value (`"…"` or `` `…` ``) [`clip`] keeps, in characters.
pub const MAX_QUOTED: usize = 40;

/// `text` made safe to echo: quoted values cut to [`MAX_QUOTED`] characters, control and
/// bidirectional-formatting characters written as `\u{…}` escapes, and the whole cut to
/// [`MAX_MESSAGE`] characters. Decoders quote what they were sent (serde_qs even prints a whole
/// 2 MB value), so every error message about input passes through here.
pub fn clip(text: &str) -> String {
    let mut out = String::new();
    let mut kept = 0;
    let mut quote: Option<char> = None;
    let mut quoted = 0;
    let mut escaped = false;
    for c in text.chars() {
        if kept >= MAX_MESSAGE {
            out.push('…');
            break;
        }
        match quote {
            Some(q) if c == q && !escaped => {
                quote = None;
                if quoted > MAX_QUOTED {
                    out.push('…');
                }
            }
            Some(_) => {
                escaped = c == '\\' && !escaped;
                quoted += 1;
                if quoted > MAX_QUOTED {
                    continue;
                }
            }
            None if c == '"' || c == '`' => {
                quote = Some(c);
                quoted = 0;
                escaped = false;
            }
            None => {}
        }
        if is_unsafe(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
        kept += 1;
    }
    if quote.is_some() && quoted > MAX_QUOTED && kept < MAX_MESSAGE {
        out.push('…');
    }
    out
}

/// Characters that must not reach a log line or a page raw: controls, and the invisible
/// formatting characters that reorder or hide text (bidi overrides, zero-width marks).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{061c}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn clip_keeps_a_short_message_as_it_is() {
        assert_eq!(
            clip("missing field `sort`"),
            "missing field `sort`".to_owned()
        );
    }

    #[test]
    fn clip_cuts_a_long_quoted_value_to_a_short_prefix() {
        let long = format!("could not convert Flat(\"{}\") to it", "a".repeat(100_000));
        let clipped = clip(&long);
        assert_eq!(
            clipped,
            format!(
                "could not convert Flat(\"{}…\") to it",
                "a".repeat(MAX_QUOTED)
            )
        );
    }

    #[test]
    fn clip_cuts_a_long_message_and_escapes_invisible_characters() {
        let clipped = clip(&"b".repeat(10_000));
        assert_eq!(clipped.chars().count(), MAX_MESSAGE + 1);
        assert_eq!(
            clip("a\u{202e}b\u{0}c\nd"),
            "a\\u{202e}b\\u{0000}c\\u{000a}d"
        );
    }

    #[test]
    fn a_server_fn_failure_becomes_a_clipped_transport_error() {
        let err = AppError::from_server_fn_error(ServerFnErrorErr::Args(format!(
            "invalid type: string \"{}\"",
            "x".repeat(1_000_000)
        )));
        let AppError::Transport(message) = err else {
            panic!("{err:?}")
        };
        assert!(message.len() < 400, "{message}");
        let err = AppError::from_server_fn_error(ServerFnErrorErr::Deserialization(
            "malformed arguments: argument `query` is missing".to_owned(),
        ));
        assert_eq!(
            err,
            AppError::Transport("malformed arguments: argument `query` is missing".to_owned())
        );
    }

    #[test]
    fn a_request_that_failed_on_the_way_says_so_in_words() {
        for err in [
            ServerFnErrorErr::Request("JsValue(TypeError: Failed to fetch)".to_owned()),
            ServerFnErrorErr::Response("body stream cut off".to_owned()),
        ] {
            assert_eq!(
                AppError::from_server_fn_error(err),
                AppError::Transport(
                    "Nest could not be reached: check your connection, then try again.".to_owned()
                )
            );
        }
    }
}
