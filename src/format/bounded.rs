//! A serde adapter that keeps bincode's decoder from allocating more than the payload holds.
//!
//! bincode 2 decodes an owned `String` or `Vec<u8>` by allocating `vec![0u8; len]` for the
//! claimed `len` and only then reading. Its guard is the configured limit, a const generic that
//! cannot follow the payload's runtime size, so a hostile length below the limit allocates it.
//! Its *borrowed* path does it the other way round: it takes `len` bytes from the input slice
//! (failing if fewer remain) and hands them over without allocating.
//!
//! [`Bounded`] wraps a deserializer and everything it hands out (visitors, seeds, sequence, map
//! and enum access) and routes `deserialize_string` / `deserialize_byte_buf` to
//! `deserialize_str` / `deserialize_bytes`; the owning visitor then copies exactly the bytes
//! that exist. Everything else is forwarded untouched. Sequences need no help: serde
//! preallocates at most 1 MiB whatever the claimed length, and each element consumes input.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// Wraps a serde deserializer, visitor, seed or access so that strings and byte buffers are read
/// through the borrowed path (see the module docs).
pub struct Bounded<T>(pub T);

/// Deserializes `T` through [`Bounded`]; pass to `bincode::serde::seed_decode_from_slice`.
pub struct BoundedSeed<T>(std::marker::PhantomData<T>);

impl<T> Default for BoundedSeed<T> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for BoundedSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(Bounded(deserializer))
    }
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Bounded(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Bounded<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any deserialize_bool
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_bytes
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    );

    /// The point of the adapter: read the bytes in place, then let the visitor copy them.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_str(Bounded(visitor))
    }

    /// As [`Self::deserialize_string`], for byte buffers.
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_bytes(Bounded(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Bounded(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Bounded(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Bounded(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Bounded(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Bounded(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Bounded(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Bounded<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit!(
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Bounded(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Bounded(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Bounded(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Bounded(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Bounded(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Bounded<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Bounded(deserializer))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Bounded(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Bounded(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(Bounded(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Bounded<A> {
    type Error = A::Error;
    type Variant = Bounded<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        self.0
            .variant_seed(Bounded(seed))
            .map(|(value, variant)| (value, Bounded(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Bounded<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Bounded(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Bounded(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Bounded(visitor))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::format::payload::encode_bincode as encode_payload;
    use crate::format::testutil::largest_allocation_during;

    /// Every serde shape, so a forwarding mistake shows up as a failed round trip.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Newtype(String),
        Tuple(u8, Vec<u8>),
        Struct { a: Option<Box<Shape>>, b: char },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Newtype(i128);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        flags: (bool, i8, i16, i32, i64, u16, u32, u64, u128, f32, f64),
        text: String,
        bytes: serde_bytes_like::ByteBuf,
        list: Vec<Shape>,
        map: BTreeMap<String, Vec<f32>>,
        newtype: Newtype,
        unit: Unit,
        nothing: Option<u8>,
    }

    /// A byte buffer serialised with `serialize_bytes` and read with `deserialize_byte_buf`
    /// (what the `serde_bytes` crate does), so that path is covered without the dependency.
    mod serde_bytes_like {
        use std::fmt;

        use serde::de::{Deserializer, Error, Visitor};
        use serde::{Deserialize, Serialize, Serializer};

        #[derive(Debug, PartialEq)]
        pub struct ByteBuf(pub Vec<u8>);

        impl Serialize for ByteBuf {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for ByteBuf {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = ByteBuf;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v.to_vec()))
                    }
                    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }

    fn everything() -> Everything {
        Everything {
            flags: (
                true,
                -1,
                -300,
                -70_000,
                i64::MIN,
                65535,
                7,
                u64::MAX,
                u128::MAX,
                1.5,
                -0.25,
            ),
            text: "héllo".into(),
            bytes: serde_bytes_like::ByteBuf(vec![0, 1, 255]),
            list: vec![
                Shape::Unit,
                Shape::Newtype("x".into()),
                Shape::Tuple(3, vec![9, 8]),
                Shape::Struct {
                    a: Some(Box::new(Shape::Unit)),
                    b: 'λ',
                },
            ],
            map: BTreeMap::from([("k".into(), vec![1.0, 2.0]), ("z".into(), vec![])]),
            newtype: Newtype(-5),
            unit: Unit,
            nothing: None,
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(
        bytes: &[u8],
    ) -> Result<(T, usize), bincode::error::DecodeError> {
        let config = bincode::config::standard().with_fixed_int_encoding();
        bincode::serde::seed_decode_from_slice(BoundedSeed::<T>::default(), bytes, config)
    }

    #[test]
    fn every_serde_shape_round_trips_through_the_adapter() {
        let bytes = encode_payload(&everything());
        let (back, used) = decode::<Everything>(&bytes).unwrap();
        assert_eq!(back, everything());
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn hostile_string_and_byte_lengths_allocate_nothing() {
        for claim in [1u64 << 20, 1 << 40, 1 << 50, u64::MAX] {
            let mut bytes = claim.to_le_bytes().to_vec();
            bytes.extend_from_slice(b"abc");
            let (r, peak) = largest_allocation_during(|| decode::<String>(&bytes));
            assert!(r.is_err());
            assert!(peak < 1024, "claim {claim}: allocated {peak}");
            let (r, peak) =
                largest_allocation_during(|| decode::<serde_bytes_like::ByteBuf>(&bytes));
            assert!(r.is_err());
            assert!(peak < 1024, "claim {claim}: allocated {peak}");
        }
        // Without the adapter, bincode allocates the claim first (shown at a harmless 1 MiB).
        let mut bytes = (1u64 << 20).to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let config = bincode::config::standard().with_fixed_int_encoding();
        let (r, peak) = largest_allocation_during(|| {
            bincode::serde::decode_from_slice::<String, _>(&bytes, config).map(|_| ())
        });
        assert!(r.is_err());
        assert!(peak >= 1 << 20, "bincode changed: {peak}");
    }
}
