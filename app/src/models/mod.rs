//! Typed models shared by the browser and the server: domain enums, parsed newtypes and DTOs.
//!
//! Everything here compiles to WASM. Under the `ssr` feature the domain enums and newtypes also
//! implement SeaORM's value traits, so the server's entities store them as plain strings.

mod admin;
mod costs;
mod enums;
pub mod health;
mod invoice;
mod job;
mod lifecycle;
mod newtypes;
mod organization;
mod reconcile;
pub mod rfc3339;
mod signup;
mod system;
mod vps;

pub use admin::*;
pub use costs::*;
pub use enums::*;
pub use invoice::*;
pub use job::*;
pub use lifecycle::*;
pub use newtypes::*;
pub use organization::*;
pub use reconcile::*;
pub use signup::*;
pub use system::*;
pub use vps::*;
