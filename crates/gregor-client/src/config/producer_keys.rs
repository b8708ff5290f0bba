//! Producer properties (`acks`, `linger.ms`, `compression.type`, ...). Owned by the producer.

use super::{Property, Scope};
use crate::config::ClientConfig;
use crate::error::Result;

#[allow(unused_imports)]
use super::{Kind, Support};

const _: Scope = Scope::Producer;

/// The producer's properties.
pub(crate) const PRODUCER: &[Property] = &[];

/// Cross-key checks for producer settings.
pub(crate) fn validate(_config: &ClientConfig) -> Result<()> {
    Ok(())
}
