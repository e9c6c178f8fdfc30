//! One module per page of the dashboard (spec: "Pages"), each with its own `#[server]` functions.

pub mod account;
pub mod admins;
pub mod alerts;
pub mod audit;
pub mod billing;
pub mod home;
pub mod jobs;
pub mod login;
pub mod margins;
pub mod not_found;
pub mod organizations;
pub mod pending;
pub mod reconcile;
pub mod set_password;
pub mod setup;
pub mod signup;
pub mod tiers;
pub mod two_factor;
pub mod unauthorized;
pub mod vps_detail;
pub mod vpses;
pub mod waitlist;
