//! Nothing to link against: this package holds the examples that need real
//! components (an HTTP server and client, Prometheus, tracing), their
//! end-to-end tests over loopback, and the README's Rust snippets, compiled
//! and run as doctests against the same dependencies a user would add.

/// The README's examples, compiled and run as doctests so that a dependency
/// line or an API that drifts fails the tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
