//! Health rules (placeholder until the health branch merges).

#![forbid(unsafe_code)]

mod outcome;

pub use outcome::Outcome;
