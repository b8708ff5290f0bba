//! Consumer properties (`group.id`, `auto.offset.reset`, `fetch.min.bytes`, ...). Owned by the consumer.

use super::{Property, Scope};
use crate::config::ClientConfig;
use crate::error::Result;

#[allow(unused_imports)]
use super::{Kind, Support};

const _: Scope = Scope::Consumer;

/// The consumer's properties.
pub(crate) const CONSUMER: &[Property] = &[];

/// Cross-key checks for consumer settings.
pub(crate) fn validate(_config: &ClientConfig) -> Result<()> {
    Ok(())
}
