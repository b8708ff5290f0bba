//! Codecs for payloads that are already text or bytes.

use gregor_event::Headers;

use crate::codec::{BoxFuture, Codec, Context, Deserializer, Serializer};
use crate::error::{Error, Result};

/// UTF-8 text as is. Invalid UTF-8 on the way in is [`Error::Utf8`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StringCodec;

impl Serializer<String> for StringCodec {
    fn serialize<'a>(
        &'a self,
        _ctx: &'a Context<'a>,
        _headers: &'a mut Headers,
        value: &'a String,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        let out = value.as_bytes().to_vec();
        Box::pin(async move { Ok(out) })
    }
}

impl Deserializer<String> for StringCodec {
    fn deserialize<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        _headers: &'a Headers,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<String>> {
        let out = std::str::from_utf8(payload)
            .map(str::to_owned)
            .map_err(|source| Error::Utf8 {
                at: ctx.location(),
                source,
            });
        Box::pin(async move { out })
    }
}

impl Codec<String> for StringCodec {
    fn name(&self) -> &str {
        "string"
    }
}

/// Raw bytes, unchanged both ways.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Serializer<Vec<u8>> for BytesCodec {
    fn serialize<'a>(
        &'a self,
        _ctx: &'a Context<'a>,
        _headers: &'a mut Headers,
        value: &'a Vec<u8>,
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        let out = value.clone();
        Box::pin(async move { Ok(out) })
    }
}

impl Deserializer<Vec<u8>> for BytesCodec {
    fn deserialize<'a>(
        &'a self,
        _ctx: &'a Context<'a>,
        _headers: &'a Headers,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>>> {
        let out = payload.to_vec();
        Box::pin(async move { Ok(out) })
    }
}

impl Codec<Vec<u8>> for BytesCodec {
    fn name(&self) -> &str {
        "bytes"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::block_on;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn strings_and_bytes_round_trip(text in ".{0,64}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let ctx = Context::new("t");
            let mut h = Headers::new();
            let enc = block_on(StringCodec.serialize(&ctx, &mut h, &text)).unwrap();
            prop_assert_eq!(block_on(StringCodec.deserialize(&ctx, &h, &enc)).unwrap(), text);
            let enc = block_on(BytesCodec.serialize(&ctx, &mut h, &bytes)).unwrap();
            prop_assert_eq!(&block_on(BytesCodec.deserialize(&ctx, &h, &enc)).unwrap(), &bytes);
            // Arbitrary bytes as text: a value or Utf8, never a panic.
            match block_on(StringCodec.deserialize(&ctx, &h, &bytes)) {
                Ok(s) => prop_assert_eq!(s.as_bytes(), bytes.as_slice()),
                Err(e) => prop_assert!(matches!(e, Error::Utf8 { .. }), "{}", e),
            }
        }
    }
}
