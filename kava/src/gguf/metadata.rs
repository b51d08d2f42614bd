//! GGUF metadata: typed values (scalars, strings, possibly nested arrays) and the typed getters
//! on [`Gguf`] that name the key in their errors.

use super::reader::{Cursor, Gguf};
use super::{GgufError, Result};

/// Arrays nested deeper than this are rejected (no real file nests at all; it bounds recursion).
pub(super) const MAX_ARRAY_DEPTH: usize = 8;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array: all elements share one type, so each kind is stored compactly.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    /// The GGUF name of this value's type, e.g. `"u32"` or `"array<string>"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
            Value::Array(a) => a.type_name(),
        }
    }

    /// The value as an integer when it is one of the integer types.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(x) => x.into(),
            Value::I8(x) => x.into(),
            Value::U16(x) => x.into(),
            Value::I16(x) => x.into(),
            Value::U32(x) => x.into(),
            Value::I32(x) => x.into(),
            Value::U64(x) => x.into(),
            Value::I64(x) => x.into(),
            _ => return None,
        })
    }
}

impl Array {
    pub fn type_name(&self) -> &'static str {
        match self {
            Array::U8(_) => "array<u8>",
            Array::I8(_) => "array<i8>",
            Array::U16(_) => "array<u16>",
            Array::I16(_) => "array<i16>",
            Array::U32(_) => "array<u32>",
            Array::I32(_) => "array<i32>",
            Array::F32(_) => "array<f32>",
            Array::Bool(_) => "array<bool>",
            Array::String(_) => "array<string>",
            Array::Array(_) => "array<array>",
            Array::U64(_) => "array<u64>",
            Array::I64(_) => "array<i64>",
            Array::F64(_) => "array<f64>",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Gguf {
    fn get<'s>(&'s self, key: &str) -> Result<&'s Value> {
        self.metadata(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    fn wrong(key: &str, expected: &'static str, v: &Value) -> GgufError {
        GgufError::WrongType {
            key: key.to_string(),
            expected,
            found: v.type_name(),
        }
    }

    /// An integer key as u64; accepts any integer type holding a non-negative value.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.get(key)?;
        let i = v.as_i128().ok_or_else(|| Self::wrong(key, "integer", v))?;
        u64::try_from(i).map_err(|_| GgufError::BadValue {
            key: key.into(),
            reason: format!("{i} is negative"),
        })
    }

    /// An integer key as u32; accepts any integer type holding a value that fits.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let v = self.get_u64(key)?;
        u32::try_from(v).map_err(|_| GgufError::BadValue {
            key: key.into(),
            reason: format!("{v} does not fit in u32"),
        })
    }

    /// A float key (f32, or f64 narrowed); NaN, infinities and f64 values beyond f32's range are
    /// errors naming the key (every float of a model's metadata is a hyper-parameter).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let x = match self.get(key)? {
            Value::F32(x) => *x,
            Value::F64(x) => *x as f32,
            v => return Err(Self::wrong(key, "f32", v)),
        };
        if !x.is_finite() {
            return Err(GgufError::BadValue { key: key.into(), reason: format!("{x} is not a finite number") });
        }
        Ok(x)
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.get(key)? {
            Value::Bool(b) => Ok(*b),
            v => Err(Self::wrong(key, "bool", v)),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.get(key)? {
            Value::String(s) => Ok(s),
            v => Err(Self::wrong(key, "string", v)),
        }
    }

    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.get(key)? {
            Value::Array(Array::String(v)) => Ok(v),
            v => Err(Self::wrong(key, "array<string>", v)),
        }
    }

    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        match self.get(key)? {
            Value::Array(Array::I32(v)) => Ok(v),
            v => Err(Self::wrong(key, "array<i32>", v)),
        }
    }

    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.get(key)? {
            Value::Array(Array::F32(v)) => Ok(v),
            v => Err(Self::wrong(key, "array<f32>", v)),
        }
    }

    /// `Ok(None)` when `key` is absent; an error when present with the wrong type.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        self.metadata(key).map(|_| self.get_u32(key)).transpose()
    }

    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.metadata(key).map(|_| self.get_f32(key)).transpose()
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.metadata(key).map(|_| self.get_bool(key)).transpose()
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.metadata(key).map(|_| self.get_str(key)).transpose()
    }
}

/// Smallest encoded size of one value of GGUF type `t` (arrays: element type + count).
fn min_size(t: u32) -> Option<u64> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}

pub(super) fn read_value(c: &mut Cursor, key: &str, t: u32, type_at: u64) -> Result<Value> {
    Ok(match t {
        0 => Value::U8(u8::from_le_bytes(c.array(key)?)),
        1 => Value::I8(i8::from_le_bytes(c.array(key)?)),
        2 => Value::U16(u16::from_le_bytes(c.array(key)?)),
        3 => Value::I16(i16::from_le_bytes(c.array(key)?)),
        4 => Value::U32(u32::from_le_bytes(c.array(key)?)),
        5 => Value::I32(i32::from_le_bytes(c.array(key)?)),
        6 => Value::F32(f32::from_le_bytes(c.array(key)?)),
        7 => Value::Bool(c.array::<1>(key)?[0] != 0),
        8 => Value::String(c.string(key)?),
        9 => Value::Array(read_array(c, key, 1)?),
        10 => Value::U64(u64::from_le_bytes(c.array(key)?)),
        11 => Value::I64(i64::from_le_bytes(c.array(key)?)),
        12 => Value::F64(f64::from_le_bytes(c.array(key)?)),
        _ => {
            return Err(GgufError::BadValueType {
                what: key.to_string(),
                type_id: t,
                offset: type_at,
            })
        }
    })
}

/// Reads `n` fixed-size little-endian numbers in one bounds-checked slice.
fn numbers<const N: usize, T>(
    c: &mut Cursor,
    n: u64,
    key: &str,
    f: fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let b = c.take(n.saturating_mul(N as u64), key)?;
    Ok(b.chunks_exact(N)
        .map(|ch| f(<[u8; N]>::try_from(ch).unwrap_or([0; N])))
        .collect())
}

fn read_array(c: &mut Cursor, key: &str, depth: usize) -> Result<Array> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::NestingTooDeep {
            key: key.to_string(),
            max_depth: MAX_ARRAY_DEPTH,
        });
    }
    let type_at = c.pos as u64;
    let t = c.u32(key)?;
    let count = c.u64(key)?;
    let min = min_size(t).ok_or_else(|| GgufError::BadValueType {
        what: key.to_string(),
        type_id: t,
        offset: type_at,
    })?;
    // Every element takes at least `min` bytes, which bounds both the count and the allocation.
    if count > c.remaining() / min {
        return Err(GgufError::BadCount {
            what: format!("array {key:?} element"),
            count,
        });
    }
    Ok(match t {
        0 => Array::U8(c.take(count, key)?.to_vec()),
        1 => Array::I8(numbers(c, count, key, i8::from_le_bytes)?),
        2 => Array::U16(numbers(c, count, key, u16::from_le_bytes)?),
        3 => Array::I16(numbers(c, count, key, i16::from_le_bytes)?),
        4 => Array::U32(numbers(c, count, key, u32::from_le_bytes)?),
        5 => Array::I32(numbers(c, count, key, i32::from_le_bytes)?),
        6 => Array::F32(numbers(c, count, key, f32::from_le_bytes)?),
        7 => Array::Bool(c.take(count, key)?.iter().map(|&b| b != 0).collect()),
        8 => {
            let mut v = Vec::with_capacity(count as usize);
            for _ in 0..count {
                v.push(c.string(key)?);
            }
            Array::String(v)
        }
        9 => {
            let mut v = Vec::with_capacity(count as usize);
            for _ in 0..count {
                v.push(read_array(c, key, depth + 1)?);
            }
            Array::Array(v)
        }
        10 => Array::U64(numbers(c, count, key, u64::from_le_bytes)?),
        11 => Array::I64(numbers(c, count, key, i64::from_le_bytes)?),
        _ => Array::F64(numbers(c, count, key, f64::from_le_bytes)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::writer::{samples, GgufWriter};

    fn header(n_kv: u64) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        b
    }

    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    }

    #[test]
    fn every_metadata_type_round_trips_through_the_writer() {
        let bytes = samples::every_type();
        let g = Gguf::parse(&bytes).expect("parse");
        assert_eq!(g.version, 3);
        assert_eq!(g.metadata("u8"), Some(&Value::U8(200)));
        assert_eq!(g.metadata("i8"), Some(&Value::I8(-100)));
        assert_eq!(g.metadata("u16"), Some(&Value::U16(60000)));
        assert_eq!(g.metadata("i16"), Some(&Value::I16(-30000)));
        assert_eq!(g.get_u32("u32").unwrap(), 4_000_000_000);
        assert_eq!(g.metadata("i32"), Some(&Value::I32(-2_000_000_000)));
        assert_eq!(g.get_f32("f32").unwrap(), 1.5);
        assert!(g.get_bool("bool").unwrap());
        assert_eq!(g.get_str("string").unwrap(), "héllo");
        assert_eq!(g.get_u64("u64").unwrap(), u64::MAX);
        assert_eq!(g.metadata("i64"), Some(&Value::I64(i64::MIN)));
        assert_eq!(g.get_f32("f64").unwrap(), -2.25);
        assert_eq!(g.get_str_array("strings").unwrap(), ["a", "", "ü"]);
        assert_eq!(g.get_i32_array("i32s").unwrap(), [1, -2, 3]);
        let nested = Array::Array(vec![
            Array::U8(vec![1, 2]),
            Array::Array(vec![Array::F64(vec![0.5])]),
        ]);
        assert_eq!(g.metadata("nested"), Some(&Value::Array(nested)));
        assert_eq!(g.alignment(), 32);
        assert_eq!(g.data_offset() % 32, 0);
    }

    #[test]
    fn bad_value_types_duplicates_and_deep_nesting_are_rejected() {
        let mut b = header(1);
        string(&mut b, "k");
        b.extend(13u32.to_le_bytes());
        assert!(matches!(
            Gguf::parse(&b),
            Err(GgufError::BadValueType { type_id: 13, .. })
        ));
        let mut w = GgufWriter::new();
        w.add("k", Value::U8(1)).add("k", Value::U8(2));
        assert!(matches!(
            Gguf::parse(&w.to_bytes()),
            Err(GgufError::DuplicateKey { .. })
        ));
        let mut a = Array::U8(vec![]);
        for _ in 0..MAX_ARRAY_DEPTH {
            a = Array::Array(vec![a]);
        }
        let mut w = GgufWriter::new();
        w.add("deep", Value::Array(a));
        assert!(matches!(
            Gguf::parse(&w.to_bytes()),
            Err(GgufError::NestingTooDeep { .. })
        ));
        let mut b = header(1);
        string(&mut b, "k");
        b.extend(8u32.to_le_bytes());
        string(&mut b, "\u{1}");
        let last = b.len() - 1;
        b[last] = 0xFF;
        assert!(matches!(
            Gguf::parse(&b),
            Err(GgufError::InvalidUtf8 { .. })
        ));
    }

    #[test]
    fn typed_getters_name_the_missing_or_mistyped_key() {
        let bytes = samples::every_type();
        let g = Gguf::parse(&bytes).unwrap();
        assert!(
            matches!(g.get_u32("absent"), Err(GgufError::MissingKey { key }) if key == "absent")
        );
        let err = g.get_str("u8").unwrap_err();
        assert!(
            matches!(&err, GgufError::WrongType { key, expected: "string", found: "u8" } if key == "u8"),
            "{err}"
        );
        assert!(matches!(g.get_u32("u64"), Err(GgufError::BadValue { .. })));
        assert!(matches!(g.get_u32("i8"), Err(GgufError::BadValue { .. })));
        assert_eq!(g.get_u32("u16").unwrap(), 60000);
        assert_eq!(g.opt_u32("absent").unwrap(), None);
        assert!(g.opt_str("u8").is_err());
        assert!(matches!(
            g.get_str_array("i32s"),
            Err(GgufError::WrongType {
                found: "array<i32>",
                ..
            })
        ));
    }
}
