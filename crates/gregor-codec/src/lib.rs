#![doc = include_str!("../README.md")]

pub mod avro;
mod codec;
mod error;
mod fastread;
mod fastwrite;
pub mod json;
mod plain;
mod prescan;
pub mod registry;
#[cfg(test)]
mod testutil;
mod topics;
pub mod wire;

pub use avro::{AvroCodec, AvroConfig, AvroRecord, SubjectNameStrategy};
pub use codec::{BoxFuture, Codec, Context, Deserializer, Serializer};
pub use error::{Error, Location, Result};
pub use json::{EnvelopeCodec, JsonCodec};
pub use plain::{BytesCodec, StringCodec};
pub use registry::{HttpRegistry, RegistryClient, RegistryError, RetryPolicy};
pub use topics::{CodecConfig, CodecRegistry, CodecSpec, RegistryConfig, SharedCodec, TopicRule};
