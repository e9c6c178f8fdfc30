//! One module per page of the dashboard (spec: "Pages").

pub mod home;
pub mod not_found;
