//! Stripe: the simulator Nest talks to when no `STRIPE_SECRET_KEY` is configured.

pub mod simulator;
