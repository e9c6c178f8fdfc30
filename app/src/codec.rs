//! How every server function's arguments and results travel.
//!
//! - Arguments: a URL-encoded form body, exactly as with server_fn's default `PostUrl` (same
//!   serde_qs, same nesting depth), except that arguments that do not decode are reported by
//!   name (``argument `query`: …``), with what the caller sent cut short.
//! - Results (and errors): JSON, as with server_fn's default `Json`, written by serde_json and
//!   read by [`crate::json`], which keeps serde_json's parser out of the browser bundles.
//!
//! Every `#[server]` names both:
//! `#[server(prefix = "/api", endpoint = "…", input = crate::codec::Form, output = crate::codec::Json)]`.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::clip;

/// The input encoding of every server function.
pub type Form = Post<FormCodec>;

/// The output encoding of every server function.
pub type Json = Post<JsonCodec>;

/// JSON (`application/json`): serde_json writes it, [`crate::json`] reads it.
pub struct JsonCodec;

impl ContentType for JsonCodec {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonCodec {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonCodec {
    type Error = serde_json::Error;

    fn encode(value: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(value).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonCodec {
    type Error = crate::json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        crate::json::from_slice(&bytes)
    }
}

/// serde_qs as server_fn's `PostUrl` uses it, with the failing argument's path in its errors.
pub struct FormCodec;

/// How deep `a[b][c]` keys may nest (server_fn's own setting for `PostUrl`).
const MAX_DEPTH: usize = 5;

/// How every message about arguments that did not decode begins; [`crate::error::AppError`]
/// recognizes it.
pub const MALFORMED: &str = "malformed arguments";

impl ContentType for FormCodec {
    const CONTENT_TYPE: &'static str = "application/x-www-form-urlencoded";
}

impl FormatType for FormCodec {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for FormCodec {
    type Error = serde_qs::Error;

    fn encode(value: &T) -> Result<Bytes, Self::Error> {
        serde_qs::to_string(value).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for FormCodec {
    type Error = ArgumentError;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        decode(&bytes)
    }
}

/// Arguments that did not decode; every message starts with [`MALFORMED`], names the argument
/// when there is one, and is clipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// The body is not a form at all (not UTF-8, or not `key=value&…`).
    #[error("malformed arguments: the body is not a URL-encoded form ({0})")]
    Form(String),
    /// A required argument (or a required part of one) is absent.
    #[error("malformed arguments: argument `{0}` is missing")]
    Missing(String),
    /// An argument is there but is not what the function takes.
    #[error("malformed arguments: argument `{argument}`: {message}")]
    Invalid {
        /// Its path: `query`, `query.sort`, `input.vcpus`.
        argument: String,
        /// What is wrong with it (serde's words, clipped).
        message: String,
    },
}

/// Decodes a server function's arguments from a form body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ArgumentError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ArgumentError::Form("it is not UTF-8 text".to_owned()))?;
    let config = serde_qs::Config::new(MAX_DEPTH, false);
    let deserializer = serde_qs::Deserializer::with_config(&config, text.as_bytes())
        .map_err(|e| ArgumentError::Form(clip(&e.to_string())))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let at_root = path == ".";
        if let Some(field) = missing_field(&message) {
            let argument = if at_root {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            ArgumentError::Missing(clip(&argument))
        } else if at_root {
            ArgumentError::Form(clip(&message))
        } else {
            ArgumentError::Invalid {
                argument: clip(&path),
                message: clip(&plain_words(&message)),
            }
        }
    })
}

/// serde_qs's messages about a value of the wrong shape, in words for a client (they otherwise
/// name its internals and dump the value).
fn plain_words(message: &str) -> String {
    let shape = |level: &str| match level {
        "Map" => "a structure (`name[key]=…`)",
        "Sequence" | "OrderedSequence" | "OrderedSeq" => "a list (`name[]=…`)",
        _ => "a plain value (`name=…`)",
    };
    if let Some(rest) = message.strip_prefix("could not convert ") {
        let level = rest.split('(').next().unwrap_or_default();
        return format!("expected a structure (`name[key]=…`), got {}", shape(level));
    }
    if let Some(rest) = message.strip_prefix("Expected: ")
        && let Some((expected, got)) = rest.split_once(", got a")
    {
        let got = got.trim_start_matches('n').trim();
        return format!(
            "expected {}, got {}",
            expected.trim_matches('"'),
            shape(got)
        );
    }
    message.to_owned()
}

/// The field serde's "missing field `x`" names.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .strip_suffix('`')
        .filter(|field| !field.contains('`'))
}

/// How a resource's value travels from the server's render to the browser's hydration: JSON,
/// read by [`crate::json`] as server functions' results are ([`JsonCodec`]), so each result
/// type's deserializer is compiled into the bundle once.
pub struct ResourceJson;

impl<T: Serialize> leptos::server::codee::Encoder<T> for ResourceJson {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, Self::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> leptos::server::codee::Decoder<T> for ResourceJson {
    type Error = crate::json::Error;
    type Encoded = str;

    fn decode(value: &str) -> Result<T, Self::Error> {
        crate::json::from_slice(value.as_bytes())
    }
}

/// A resource as every page declares it: [`ResourceJson`] for its hydration.
pub type Resource<T> = leptos::prelude::Resource<T, ResourceJson>;

/// Creates a [`Resource`] (as `Resource::new` would, with [`ResourceJson`]).
#[track_caller]
pub fn resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        sort: String,
        limit: Option<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Args {
        query: Inner,
        id: i64,
    }

    fn err(body: &str) -> String {
        decode::<Args>(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn a_well_formed_body_decodes_as_with_post_url() {
        let args: Args = decode(b"query[sort]=Newest&query[limit]=3&id=7").unwrap();
        assert_eq!(
            args,
            Args {
                query: Inner {
                    sort: "Newest".to_owned(),
                    limit: Some(3)
                },
                id: 7
            }
        );
    }

    #[test]
    fn a_plain_value_where_a_struct_belongs_names_the_argument_and_is_not_echoed() {
        let body = format!("query={}&id=1", "a".repeat(2 * 1024 * 1024));
        let message = err(&body);
        assert_eq!(
            message,
            "malformed arguments: argument `query`: expected a structure (`name[key]=…`), \
             got a plain value (`name=…`)"
        );
    }

    #[test]
    fn a_missing_argument_is_named_with_its_path() {
        assert_eq!(
            err("id=1"),
            "malformed arguments: argument `query` is missing"
        );
        assert_eq!(
            err("query[limit]=1&id=1"),
            "malformed arguments: argument `query.sort` is missing"
        );
    }

    #[test]
    fn a_number_out_of_range_names_its_argument() {
        let message = err("query[sort]=x&query[limit]=300&id=1");
        assert!(
            message.starts_with("malformed arguments: argument `query.limit`: "),
            "{message}"
        );
        let message = err("query[sort]=x&id=99999999999999999999999");
        assert!(
            message.starts_with("malformed arguments: argument `id`: "),
            "{message}"
        );
    }

    #[test]
    fn a_structure_or_a_list_where_a_plain_value_belongs_names_the_argument() {
        assert_eq!(
            err("query[sort]=x&id[a]=1"),
            "malformed arguments: argument `id`: expected i64, got a structure (`name[key]=…`)"
        );
        assert_eq!(
            err("query[sort]=x&id[]=1&id[]=2"),
            "malformed arguments: argument `id`: expected i64, got a list (`name[]=…`)"
        );
    }

    #[test]
    fn every_server_function_declares_both_codecs() {
        fn scan(dir: &std::path::Path, found: &mut usize) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    scan(&path, found);
                    continue;
                }
                let source = std::fs::read_to_string(&path).unwrap();
                for (i, line) in source.lines().enumerate() {
                    if !line.trim_start().starts_with("#[server(prefix") {
                        continue;
                    }
                    *found += 1;
                    assert!(
                        line.contains("input = crate::codec::Form")
                            && line.contains("output = crate::codec::Json"),
                        "{}:{}: a #[server] without `input = crate::codec::Form, output = \
                         crate::codec::Json` (without the output codec, serde_json's parser is \
                         back in the browser bundles)",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
        let mut found = 0;
        scan(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(found > 40, "the scan found only {found} server functions");
    }

    #[test]
    fn a_body_that_is_not_text_is_not_a_form() {
        let message = decode::<Args>(&[0xff, 0xfe, 0x00]).unwrap_err().to_string();
        assert!(message.contains("not UTF-8"), "{message}");
    }
}
