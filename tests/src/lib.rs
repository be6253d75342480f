//! Shared helpers for the cross-crate test suites in `tests/tests/`.
pub mod director;
pub mod frames;
pub mod netns;
