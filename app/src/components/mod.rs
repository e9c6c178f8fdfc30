//! Reusable pieces of the dashboard's UI.

pub mod form;
pub mod health;
pub mod job_progress;
pub mod layout;
pub mod live;
pub mod pager;
pub mod time;
pub mod typed;
