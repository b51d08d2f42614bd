//! ggml tensor types (block sizes and byte sizes) and their dequantization to f32, following
//! the block layouts of ggml's `ggml-common.h` and `dequantize_row_*` in `ggml-quants.c` exactly.
//! The 32-element block types are here; the 256-element k-quants are in `kquants.rs`.

use super::kquants::{q4_k, q5_k, q6_k, QK_K};
use super::{GgufError, Result};

/// A ggml tensor type, with the numeric id it has in GGUF files.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
}

use GgmlType::*;

/// (type, name, elements per block, bytes per block), as in ggml's `type_traits` table. Types
/// that ggml removed (4, 5, 31..=33, 36..=38) are absent, so their ids are unknown.
const TRAITS: [(GgmlType, &str, u64, u64); 32] = [
    (F32, "F32", 1, 4),
    (F16, "F16", 1, 2),
    (Q4_0, "Q4_0", 32, 18),
    (Q4_1, "Q4_1", 32, 20),
    (Q5_0, "Q5_0", 32, 22),
    (Q5_1, "Q5_1", 32, 24),
    (Q8_0, "Q8_0", 32, 34),
    (Q8_1, "Q8_1", 32, 36),
    (Q2_K, "Q2_K", 256, 84),
    (Q3_K, "Q3_K", 256, 110),
    (Q4_K, "Q4_K", 256, 144),
    (Q5_K, "Q5_K", 256, 176),
    (Q6_K, "Q6_K", 256, 210),
    (Q8_K, "Q8_K", 256, 292),
    (IQ2_XXS, "IQ2_XXS", 256, 66),
    (IQ2_XS, "IQ2_XS", 256, 74),
    (IQ3_XXS, "IQ3_XXS", 256, 98),
    (IQ1_S, "IQ1_S", 256, 50),
    (IQ4_NL, "IQ4_NL", 32, 18),
    (IQ3_S, "IQ3_S", 256, 110),
    (IQ2_S, "IQ2_S", 256, 82),
    (IQ4_XS, "IQ4_XS", 256, 136),
    (I8, "I8", 1, 1),
    (I16, "I16", 1, 2),
    (I32, "I32", 1, 4),
    (I64, "I64", 1, 8),
    (F64, "F64", 1, 8),
    (IQ1_M, "IQ1_M", 256, 56),
    (BF16, "BF16", 1, 2),
    (TQ1_0, "TQ1_0", 256, 54),
    (TQ2_0, "TQ2_0", 256, 66),
    (MXFP4, "MXFP4", 32, 17),
];

impl GgmlType {
    /// The type with GGUF id `id`, or `None` for ids ggml does not define (or removed).
    pub fn from_id(id: u32) -> Option<Self> {
        TRAITS.iter().find(|t| t.0 as u32 == id).map(|t| t.0)
    }

    fn traits(self) -> (GgmlType, &'static str, u64, u64) {
        // Every variant has a row in TRAITS (checked by a test); F32's row is a safe fallback.
        TRAITS
            .iter()
            .copied()
            .find(|t| t.0 == self)
            .unwrap_or(TRAITS[0])
    }

    /// The numeric id stored in GGUF files.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// ggml's name for the type, e.g. `"Q4_K"`.
    pub fn name(self) -> &'static str {
        self.traits().1
    }

    /// Elements per block (1 for plain float types, 32 or 256 for quantized ones).
    pub fn block_size(self) -> u64 {
        self.traits().2
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        self.traits().3
    }

    /// Whether [`dequantize`] supports this type.
    pub fn can_dequantize(self) -> bool {
        matches!(
            self,
            F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4_K | Q5_K | Q6_K
        )
    }

    /// Bytes taken by `n` elements, or `None` when `n` is not a whole number of blocks or the
    /// size overflows.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let (_, _, block, size) = self.traits();
        if !n.is_multiple_of(block) {
            return None;
        }
        (n / block).checked_mul(size)
    }
}

/// Dequantizes `data`, rows of `row_len` elements of type `ty`, to f32. `tensor` names the tensor
/// in errors. Fails when `row_len` is not a multiple of the type's block size, when `data` is not
/// a whole number of rows, or when the type has no dequantizer here.
pub fn dequantize(tensor: &str, ty: GgmlType, row_len: usize, data: &[u8]) -> Result<Vec<f32>> {
    let bad = |reason: String| GgufError::BadShape {
        tensor: tensor.to_string(),
        shape: vec![row_len as u64],
        reason,
    };
    if !(row_len as u64).is_multiple_of(ty.block_size()) {
        return Err(bad(format!(
            "row length {row_len} is not a multiple of the {} block size {}",
            ty.name(),
            ty.block_size()
        )));
    }
    // No data is zero rows, whatever the row length (a [huge, 0] tensor is legal and empty).
    if data.is_empty() {
        return Ok(Vec::new());
    }
    // A row whose byte size overflows cannot divide non-empty data.
    let row_bytes = ty.bytes_for(row_len as u64).unwrap_or(0);
    if row_bytes == 0 || !(data.len() as u64).is_multiple_of(row_bytes) {
        return Err(bad(format!(
            "{} data bytes are not a whole number of rows of {row_len} {} elements",
            data.len(),
            ty.name()
        )));
    }
    let n_blocks = data.len() as u64 / ty.type_size();
    // The count is bounded by data.len() times at most 32 elements per byte, so it fits in memory
    // terms of the input; the multiplication is still checked for 32-bit targets.
    let n = usize::try_from(n_blocks.saturating_mul(ty.block_size()))
        .map_err(|_| bad(format!("{n_blocks} blocks do not fit in memory")))?;
    let mut out = Vec::with_capacity(n);
    match ty {
        F32 => blocks::<4, 1>(data, &mut out, |b, y| y[0] = f32::from_le_bytes(*b)),
        F16 => blocks::<2, 1>(data, &mut out, |b, y| {
            y[0] = half::f16::from_le_bytes(*b).to_f32()
        }),
        BF16 => blocks::<2, 1>(data, &mut out, |b, y| {
            y[0] = half::bf16::from_le_bytes(*b).to_f32()
        }),
        Q4_0 => blocks::<18, 32>(data, &mut out, q4_0),
        Q4_1 => blocks::<20, 32>(data, &mut out, q4_1),
        Q5_0 => blocks::<22, 32>(data, &mut out, q5_0),
        Q5_1 => blocks::<24, 32>(data, &mut out, q5_1),
        Q8_0 => blocks::<34, 32>(data, &mut out, q8_0),
        Q4_K => blocks::<144, QK_K>(data, &mut out, q4_k),
        Q5_K => blocks::<176, QK_K>(data, &mut out, q5_k),
        Q6_K => blocks::<210, QK_K>(data, &mut out, q6_k),
        _ => {
            return Err(GgufError::UnsupportedType {
                tensor: tensor.to_string(),
                type_name: ty.name(),
            })
        }
    }
    Ok(out)
}

/// Runs `f` on each `N`-byte block of `data`, appending its `B` values to `out`. The caller has
/// checked that `data.len()` is a multiple of `N`.
fn blocks<const N: usize, const B: usize>(
    data: &[u8],
    out: &mut Vec<f32>,
    f: impl Fn(&[u8; N], &mut [f32; B]),
) {
    let mut y = [0f32; B];
    for chunk in data.chunks_exact(N) {
        if let Ok(block) = <&[u8; N]>::try_from(chunk) {
            f(block, &mut y);
            out.extend_from_slice(&y);
        }
    }
}

/// The little-endian f16 at `b[at..at + 2]` as f32 (ggml's `GGML_FP16_TO_FP32`).
pub(super) fn f16_at(b: &[u8], at: usize) -> f32 {
    match b.get(at..at + 2) {
        Some(&[lo, hi]) => half::f16::from_le_bytes([lo, hi]).to_f32(),
        _ => 0.0,
    }
}

/// `dequantize_row_q4_0`: d (f16), 16 bytes of nibbles; low nibbles are elements 0..16, high
/// nibbles 16..32; y = (q - 8) * d.
fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

/// `dequantize_row_q4_1`: d, m (f16), 16 bytes of nibbles; y = q * d + m.
fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for j in 0..16 {
        let q = b[4 + j];
        y[j] = (q & 0x0F) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// `dequantize_row_q5_0`: d (f16), qh (u32, the 5th bit of each element), 16 bytes of nibbles;
/// y = (q - 16) * d.
fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for j in 0..16 {
        let q = b[6 + j] as u32;
        let xh0 = ((qh >> j) << 4) & 0x10;
        let xh1 = (qh >> (j + 12)) & 0x10;
        y[j] = (((q & 0x0F) | xh0) as i32 - 16) as f32 * d;
        y[j + 16] = (((q >> 4) | xh1) as i32 - 16) as f32 * d;
    }
}

/// `dequantize_row_q5_1`: d, m (f16), qh (u32), 16 bytes of nibbles; y = q * d + m.
fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for j in 0..16 {
        let q = b[8 + j] as u32;
        let xh0 = ((qh >> j) << 4) & 0x10;
        let xh1 = (qh >> (j + 12)) & 0x10;
        y[j] = ((q & 0x0F) | xh0) as f32 * d + m;
        y[j + 16] = ((q >> 4) | xh1) as f32 * d + m;
    }
}

/// `dequantize_row_q8_0`: d (f16), 32 signed bytes; y = q * d.
fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    for j in 0..32 {
        y[j] = b[2 + j] as i8 as f32 * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: f32) -> [u8; 2] {
        half::f16::from_f32(x).to_le_bytes()
    }

    fn deq(ty: GgmlType, row_len: usize, data: &[u8]) -> Vec<f32> {
        dequantize("t", ty, row_len, data).expect("dequantize")
    }

    #[test]
    fn every_type_has_traits_and_ids_round_trip() {
        for (ty, name, block, size) in TRAITS {
            assert_eq!(GgmlType::from_id(ty.id()), Some(ty));
            assert_eq!(
                (ty.name(), ty.block_size(), ty.type_size()),
                (name, block, size)
            );
        }
        for removed in [4, 5, 31, 32, 33, 36, 37, 38, 40, 1000] {
            assert_eq!(GgmlType::from_id(removed), None);
        }
    }

    #[test]
    fn plain_float_types_decode_little_endian() {
        let f32s: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(deq(F32, 2, &f32s), vec![1.5, -2.0]);
        let f16s: Vec<u8> = [0.25f32, -3.0].iter().flat_map(|&x| h(x)).collect();
        assert_eq!(deq(F16, 2, &f16s), vec![0.25, -3.0]);
        let bf16s: Vec<u8> = [1.0f32, -0.5]
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect();
        assert_eq!(deq(BF16, 1, &bf16s), vec![1.0, -0.5]);
    }

    #[test]
    fn q4_0_block_dequantizes_to_d_times_q_minus_8() {
        let mut b = h(0.5).to_vec();
        // byte j: low nibble j (element j), high nibble 15 - j (element j + 16)
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = deq(Q4_0, 32, &b);
        for j in 0..16 {
            assert_eq!(y[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(y[j + 16], (7.0 - j as f32) * 0.5);
        }
    }

    #[test]
    fn q4_1_block_dequantizes_to_d_times_q_plus_m() {
        let mut b = [h(2.0), h(-1.0)].concat();
        b.extend((0..16u8).map(|j| j | (3 << 4)));
        let y = deq(Q4_1, 32, &b);
        for j in 0..16 {
            assert_eq!(y[j], 2.0 * j as f32 - 1.0);
            assert_eq!(y[j + 16], 5.0);
        }
    }

    #[test]
    fn q5_0_block_takes_the_fifth_bit_from_qh() {
        // qh bit j -> element j, bit j + 16 -> element j + 16; set bits 0 and 17.
        let qh: u32 = 1 | (1 << 17);
        let mut b = h(1.0).to_vec();
        b.extend(qh.to_le_bytes());
        b.extend([0x21u8; 16]); // low nibble 1, high nibble 2
        let y = deq(Q5_0, 32, &b);
        assert_eq!(y[0], (1 + 16 - 16) as f32); // 17 - 16
        assert_eq!(y[1], 1.0 - 16.0);
        assert_eq!(y[16], 2.0 - 16.0);
        assert_eq!(y[17], 18.0 - 16.0);
    }

    #[test]
    fn q5_1_block_dequantizes_to_d_times_q_plus_m() {
        let qh: u32 = 1 << 31; // 5th bit of element 31
        let mut b = [h(0.5), h(10.0)].concat();
        b.extend(qh.to_le_bytes());
        b.extend([0xF3u8; 16]); // low nibble 3, high nibble 15
        let y = deq(Q5_1, 32, &b);
        assert_eq!(y[0], 3.0 * 0.5 + 10.0);
        assert_eq!(y[16], 15.0 * 0.5 + 10.0);
        assert_eq!(y[31], 31.0 * 0.5 + 10.0);
    }

    #[test]
    fn q8_0_block_dequantizes_to_d_times_signed_q() {
        let mut b = h(0.25).to_vec();
        b.extend((0..32i8).map(|j| (j * 4 - 64) as u8));
        let y = deq(Q8_0, 32, &b);
        for (j, v) in y.iter().enumerate() {
            assert_eq!(*v, (j as f32 * 4.0 - 64.0) * 0.25);
        }
    }

    #[test]
    fn rows_that_are_not_whole_blocks_are_rejected() {
        let err = dequantize("blk.0.x", Q4_0, 33, &[0; 36]).unwrap_err();
        assert!(
            matches!(err, GgufError::BadShape { ref tensor, .. } if tensor == "blk.0.x"),
            "{err}"
        );
        let err = dequantize("t", Q8_0, 32, &[0; 35]).unwrap_err();
        assert!(matches!(err, GgufError::BadShape { .. }), "{err}");
    }

    #[test]
    fn empty_data_is_zero_rows_even_for_a_huge_row_length() {
        assert_eq!(deq(F32, usize::MAX / 2 + 1, &[]), Vec::<f32>::new());
        assert_eq!(deq(Q4_K, 0, &[]), Vec::<f32>::new());
        let err = dequantize("t", F32, usize::MAX / 2 + 1, &[0; 4]).unwrap_err();
        assert!(matches!(err, GgufError::BadShape { .. }), "{err}");
    }

    #[test]
    fn types_without_a_dequantizer_are_named_in_the_error() {
        let err = dequantize("w", Q2_K, 256, &[0; 84]).unwrap_err();
        assert!(
            matches!(
                err,
                GgufError::UnsupportedType {
                    type_name: "Q2_K",
                    ..
                }
            ),
            "{err}"
        );
    }
}
