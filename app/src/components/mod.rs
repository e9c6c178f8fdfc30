//! Reusable pieces of the dashboard's UI.

pub mod layout;
