//! Dequantization of ggml's k-quants (Q4_K, Q5_K, Q6_K: 256-element super-blocks with 6- or
//! 8-bit sub-block scales), following `dequantize_row_q{4,5,6}_K` in `ggml-quants.c`.

use super::dequant::f16_at;

/// Super-block size of the k-quants (`QK_K` in ggml).
pub(super) const QK_K: usize = 256;

/// ggml's `get_scale_min_k4`: the j-th 6-bit (scale, min) pair of the 12 packed scale bytes of a
/// Q4_K / Q5_K super-block. Pairs 0..4 are the low 6 bits of bytes j and j+4; pairs 4..8 take
/// their low 4 bits from byte j+4 and their top 2 bits from the spare bits of bytes j-4 and j.
fn scale_min_k4(j: usize, s: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

fn scales12(b: &[u8], at: usize) -> [u8; 12] {
    let mut s = [0u8; 12];
    if let Some(src) = b.get(at..at + 12) {
        s.copy_from_slice(src);
    }
    s
}

/// `dequantize_row_q4_K`: d, dmin (f16), 12 bytes of packed 6-bit scales/mins, 128 bytes of
/// nibbles. Each 64 elements use one 32-byte run: low nibbles with pair 2i, high with pair 2i+1;
/// y = d * scale * q - dmin * min.
pub(super) fn q4_k(b: &[u8; 144], y: &mut [f32; QK_K]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let s = scales12(b, 4);
    for i in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * i, &s);
        let (sc2, m2) = scale_min_k4(2 * i + 1, &s);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            let q = b[16 + 32 * i + l];
            y[64 * i + l] = d1 * (q & 0x0F) as f32 - m1;
            y[64 * i + 32 + l] = d2 * (q >> 4) as f32 - m2;
        }
    }
}

/// `dequantize_row_q5_K`: as Q4_K plus 32 bytes `qh` whose bit pair (2i, 2i+1) gives the 5th bit
/// of the low / high nibbles of run i.
pub(super) fn q5_k(b: &[u8; 176], y: &mut [f32; QK_K]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let s = scales12(b, 4);
    for i in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * i, &s);
        let (sc2, m2) = scale_min_k4(2 * i + 1, &s);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        let (u1, u2) = (1u8 << (2 * i), 2u8 << (2 * i));
        for l in 0..32 {
            let (ql, qh) = (b[48 + 32 * i + l], b[16 + l]);
            let hi1 = if qh & u1 != 0 { 16.0 } else { 0.0 };
            let hi2 = if qh & u2 != 0 { 16.0 } else { 0.0 };
            y[64 * i + l] = d1 * ((ql & 0x0F) as f32 + hi1) - m1;
            y[64 * i + 32 + l] = d2 * ((ql >> 4) as f32 + hi2) - m2;
        }
    }
}

/// `dequantize_row_q6_K`: ql[128] (low 4 bits), qh[64] (high 2 bits), 16 signed 8-bit scales, d
/// (f16) last. Each half (128 elements) uses 64 bytes of ql, 32 of qh and 8 scales; y = d * scale
/// * (q - 32).
pub(super) fn q6_k(b: &[u8; 210], y: &mut [f32; QK_K]) {
    let d = f16_at(b, 208);
    for n in 0..2 {
        let (ql, qh, sc, out) = (64 * n, 128 + 32 * n, 192 + 8 * n, 128 * n);
        for l in 0..32 {
            let is = l / 16;
            let h = b[qh + l];
            let q1 = ((b[ql + l] & 0x0F) | ((h & 3) << 4)) as i32 - 32;
            let q2 = ((b[ql + l + 32] & 0x0F) | (((h >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) as i32 - 32;
            let scale = |k: usize| d * (b[sc + is + k] as i8) as f32;
            y[out + l] = scale(0) * q1 as f32;
            y[out + l + 32] = scale(2) * q2 as f32;
            y[out + l + 64] = scale(4) * q3 as f32;
            y[out + l + 96] = scale(6) * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::dequant::{dequantize, GgmlType::*};

    fn h(x: f32) -> [u8; 2] {
        half::f16::from_f32(x).to_le_bytes()
    }

    fn deq(ty: crate::gguf::GgmlType, data: &[u8]) -> Vec<f32> {
        dequantize("t", ty, QK_K, data).expect("dequantize")
    }

    /// Packs 8 (scale, min) 6-bit pairs the way ggml's `make_qkx2_quants` callers do, the inverse
    /// of `get_scale_min_k4`.
    fn pack_scales(sc: [u8; 8], mn: [u8; 8]) -> [u8; 12] {
        let mut s = [0u8; 12];
        for j in 0..8 {
            if j < 4 {
                s[j] = sc[j];
                s[j + 4] = mn[j];
            } else {
                s[j + 4] = (sc[j] & 0x0F) | ((mn[j] & 0x0F) << 4);
                s[j - 4] |= (sc[j] >> 4) << 6;
                s[j] |= (mn[j] >> 4) << 6;
            }
        }
        s
    }

    #[test]
    fn scale_min_k4_unpacks_six_bit_pairs() {
        let sc = [1, 2, 63, 4, 33, 17, 63, 48];
        let mn = [5, 0, 62, 7, 50, 1, 63, 16];
        let s = pack_scales(sc, mn);
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &s), (sc[j], mn[j]), "pair {j}");
        }
    }

    #[test]
    fn q4_k_block_dequantizes_to_d_scale_q_minus_dmin_min() {
        let sc = [1, 2, 3, 4, 40, 50, 60, 63];
        let mn = [0, 1, 2, 3, 36, 20, 10, 5];
        let mut b = [h(0.5), h(0.25)].concat();
        b.extend(pack_scales(sc, mn));
        // run i: byte l has low nibble (l % 16), high nibble 15 - (l % 16)
        for _ in 0..4 {
            b.extend((0..32u8).map(|l| (l % 16) | ((15 - l % 16) << 4)));
        }
        let y = deq(Q4_K, &b);
        for i in 0..4 {
            for l in 0..32 {
                let lo = (l % 16) as f32;
                let want_lo = 0.5 * sc[2 * i] as f32 * lo - 0.25 * mn[2 * i] as f32;
                let want_hi =
                    0.5 * sc[2 * i + 1] as f32 * (15.0 - lo) - 0.25 * mn[2 * i + 1] as f32;
                assert_eq!(y[64 * i + l], want_lo, "i {i} l {l}");
                assert_eq!(y[64 * i + 32 + l], want_hi, "i {i} l {l}");
            }
        }
    }

    #[test]
    fn q5_k_block_adds_16_for_each_qh_bit() {
        let sc = [1, 1, 2, 2, 3, 3, 4, 4];
        let mn = [0; 8];
        let mut b = [h(1.0), h(0.0)].concat();
        b.extend(pack_scales(sc, mn));
        // qh[l]: bit 2i set for even l (low nibbles of run i), bit 2i+1 set for l == 5
        b.extend((0..32u8).map(|l| {
            if l % 2 == 0 {
                0x55
            } else if l == 5 {
                0xAA
            } else {
                0
            }
        }));
        b.extend([0x97u8; 128]); // low nibble 7, high nibble 9
        let y = deq(Q5_K, &b);
        for i in 0..4 {
            for l in 0..32 {
                let lo = 7.0 + if l % 2 == 0 { 16.0 } else { 0.0 };
                let hi = 9.0 + if l == 5 { 16.0 } else { 0.0 };
                assert_eq!(y[64 * i + l], sc[2 * i] as f32 * lo);
                assert_eq!(y[64 * i + 32 + l], sc[2 * i + 1] as f32 * hi);
            }
        }
    }

    #[test]
    fn q6_k_block_dequantizes_to_d_scale_q_minus_32() {
        let mut b = Vec::new();
        // ql: first half 0x21 (low 1, high 2), second half 0x43 (low 3, high 4)
        b.extend([0x21u8; 64]);
        b.extend([0x43u8; 64]);
        // qh: bits (1,0) -> q1, (3,2) -> q2, (5,4) -> q3, (7,6) -> q4: high bits 0,1,2,3
        b.extend([0b11_10_01_00u8; 64]);
        let scales: [i8; 16] = [1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -8];
        b.extend(scales.iter().map(|&s| s as u8));
        b.extend(h(0.5));
        let y = deq(Q6_K, &b);
        for n in 0..2 {
            let (lo, hi) = if n == 0 { (1, 2) } else { (3, 4) };
            for l in 0..32 {
                let is = 8 * n + l / 16;
                let q = [lo - 32, lo + 16 - 32, hi + 32 - 32, hi + 48 - 32];
                for k in 0..4 {
                    let want = 0.5 * scales[is + 2 * k] as f32 * q[k] as f32;
                    assert_eq!(y[128 * n + 32 * k + l], want, "n {n} l {l} k {k}");
                }
            }
        }
    }
}
