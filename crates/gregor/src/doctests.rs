//! The Rust blocks of the guides in `docs/`, compiled as doctests (`cargo test -p gregor
//! --doc`) so the guides cannot drift from the API. Blocks that need a broker are `no_run`:
//! they are compiled, not run. Nothing here is part of the library.

/// `docs/getting-started.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/getting-started.md")]
pub struct GettingStarted;

/// `docs/guides/partitioning.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guides/partitioning.md")]
pub struct Partitioning;

/// `docs/guides/consumer-groups.md`.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guides/consumer-groups.md")]
pub struct ConsumerGroups;
