//! The PNG side of `kava-train plot`: the figure's items rasterized onto an RGB canvas (lines
//! with a square brush, a 5×7 bitmap font scaled to the text size) and encoded by the `png`
//! crate. Deliberately plain: curves you can read, not anti-aliased typography.

use super::{figure, Anchor, Item, H, W};

/// Renders the metrics JSONL text to PNG bytes; errors name the bad line.
pub fn render_png(jsonl: &str) -> Result<Vec<u8>, String> {
    let canvas = rasterize(&figure(jsonl)?, (2.0 * W) as usize, H as usize);
    canvas.encode()
}

/// An RGB image, row-major, white to start with.
pub(super) struct Canvas {
    pub w: usize,
    pub h: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas { w, h, rgb: vec![255; w * h * 3] }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    #[cfg(test)]
    fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.w + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// A square brush of side `width` (at least 1 px) centred on (x, y).
    fn brush(&mut self, x: f64, y: f64, width: f64, c: [u8; 3]) {
        let r = (width.max(1.0) - 1.0) / 2.0;
        let (x0, x1) = ((x - r).round() as i64, (x + r).round() as i64);
        let (y0, y1) = ((y - r).round() as i64, (y + r).round() as i64);
        for yy in y0..=y1 {
            for xx in x0..=x1 {
                self.set(xx, yy, c);
            }
        }
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), width: f64, c: [u8; 3]) {
        let n = (x2 - x1).abs().max((y2 - y1).abs()).ceil().max(1.0) as usize;
        for i in 0..=n {
            let t = i as f64 / n as f64;
            self.brush(x1 + t * (x2 - x1), y1 + t * (y2 - y1), width, c);
        }
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut enc = ::png::Encoder::new(&mut out, self.w as u32, self.h as u32);
        enc.set_color(::png::ColorType::Rgb);
        enc.set_depth(::png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
        writer.write_image_data(&self.rgb).map_err(|e| format!("PNG: {e}"))?;
        writer.finish().map_err(|e| format!("PNG: {e}"))?;
        Ok(out)
    }
}

/// `#rgb`, `#rrggbb`; anything else is black.
pub(super) fn color(s: &str) -> [u8; 3] {
    let hex = |t: &str| u8::from_str_radix(t, 16).ok();
    let s = s.trim_start_matches('#');
    let c = match s.len() {
        3 => (0..3).map(|i| hex(&s[i..i + 1]).map(|v| v * 17)).collect::<Option<Vec<u8>>>(),
        6 => (0..3).map(|i| hex(&s[2 * i..2 * i + 2])).collect::<Option<Vec<u8>>>(),
        _ => None,
    };
    c.map(|v| [v[0], v[1], v[2]]).unwrap_or([0, 0, 0])
}

pub(super) fn rasterize(items: &[Item], w: usize, h: usize) -> Canvas {
    let mut c = Canvas::new(w, h);
    for item in items {
        match item {
            Item::Rect { x, y, w, h, stroke } => {
                let k = color(stroke);
                let (x2, y2) = (x + w, y + h);
                c.line((*x, *y), (x2, *y), 1.0, k);
                c.line((x2, *y), (x2, y2), 1.0, k);
                c.line((x2, y2), (*x, y2), 1.0, k);
                c.line((*x, y2), (*x, *y), 1.0, k);
            }
            Item::Line { x1, y1, x2, y2, color: k, width } => c.line((*x1, *y1), (*x2, *y2), *width, color(k)),
            Item::Polyline { points, color: k, width } => {
                for p in points.windows(2) {
                    c.line(p[0], p[1], width.round(), color(k));
                }
            }
            Item::Dot { x, y, r, color: k } => {
                let k = color(k);
                let ri = r.ceil() as i64;
                for dy in -ri..=ri {
                    for dx in -ri..=ri {
                        if ((dx * dx + dy * dy) as f64) <= r * r {
                            c.set(x.round() as i64 + dx, y.round() as i64 + dy, k);
                        }
                    }
                }
            }
            Item::Text { x, y, size, anchor, bold, vertical, text } => draw_text(&mut c, *x, *y, *size, *anchor, *bold, *vertical, text),
        }
    }
    c
}

/// Glyph cells are 5×7 pixels with one pixel of spacing, scaled by an integer for larger sizes.
#[allow(clippy::too_many_arguments)]
fn draw_text(c: &mut Canvas, x: f64, y: f64, size: f64, anchor: Anchor, bold: bool, vertical: bool, text: &str) {
    let scale = if size >= 13.0 { 2 } else { 1 };
    let advance = 6 * scale;
    let width = (text.chars().count() * advance).saturating_sub(scale) as f64;
    let start = match anchor {
        Anchor::Start => 0.0,
        Anchor::Middle => -width / 2.0,
        Anchor::End => -width,
    };
    let black = [0, 0, 0];
    for (i, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        for (gy, row) in rows.iter().enumerate() {
            for (gx, px) in row.bytes().enumerate() {
                if px != b'#' {
                    continue;
                }
                for sy in 0..scale {
                    for sx in 0..scale {
                        for b in 0..if bold { 2 } else { 1 } {
                            // Offsets from the anchor along the text (dx) and from the baseline (dy).
                            let dx = start + (i * advance + gx * scale + sx + b) as f64;
                            let dy = sy as f64 - ((7 - gy) * scale) as f64;
                            let (px, py) = if vertical { (x + dy, y - dx) } else { (x + dx, y + dy) };
                            c.set(px.round() as i64, py.round() as i64, black);
                        }
                    }
                }
            }
        }
    }
}

/// The 5×7 rows of a character: digits, lower-case letters (upper case drawn as lower case) and
/// the punctuation the figure uses; anything else is a hollow box.
fn glyph(ch: char) -> [&'static str; 7] {
    match ch.to_ascii_lowercase() {
        ' ' => [".....", ".....", ".....", ".....", ".....", ".....", "....."],
        '0' => [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."],
        '1' => ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."],
        '2' => [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"],
        '3' => ["#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."],
        '4' => ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."],
        '5' => ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."],
        '6' => ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."],
        '7' => ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."],
        '8' => [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."],
        '9' => [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."],
        'a' => [".....", ".....", ".###.", "....#", ".####", "#...#", ".####"],
        'b' => ["#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."],
        'c' => [".....", ".....", ".###.", "#....", "#....", "#...#", ".###."],
        'd' => ["....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"],
        'e' => [".....", ".....", ".###.", "#...#", "#####", "#....", ".###."],
        'f' => ["..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."],
        'g' => [".....", ".####", "#...#", ".####", "....#", "#...#", ".###."],
        'h' => ["#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"],
        'i' => ["..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."],
        'j' => ["...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."],
        'k' => ["#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."],
        'l' => [".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."],
        'm' => [".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"],
        'n' => [".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"],
        'o' => [".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."],
        'p' => [".....", ".....", "####.", "#...#", "####.", "#....", "#...."],
        'q' => [".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"],
        'r' => [".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."],
        's' => [".....", ".....", ".###.", "#....", ".###.", "....#", "####."],
        't' => [".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."],
        'u' => [".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"],
        'v' => [".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."],
        'w' => [".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."],
        'x' => [".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"],
        'y' => [".....", ".....", "#...#", "#...#", ".####", "....#", ".###."],
        'z' => [".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"],
        '.' => [".....", ".....", ".....", ".....", ".....", ".##..", ".##.."],
        ',' => [".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."],
        '-' => [".....", ".....", ".....", "#####", ".....", ".....", "....."],
        '_' => [".....", ".....", ".....", ".....", ".....", ".....", "#####"],
        '+' => [".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."],
        '%' => ["##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"],
        ':' => [".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."],
        '/' => [".....", "....#", "...#.", "..#..", ".#...", "#....", "....."],
        '(' => ["...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."],
        ')' => [".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."],
        _ => ["#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "{\"step\":1,\"loss\":3.0,\"ce_student\":1.0,\"ce_teacher\":2.0,\"codi\":0.0,\"kv\":0.0}\n{\"step\":2,\"loss\":2.0,\"ce_student\":0.5,\"ce_teacher\":1.5,\"codi\":0.0,\"kv\":0.0}\n{\"step\":2,\"eval\":\"latent\",\"accuracy\":0.25}\n";

    #[test]
    fn the_png_is_a_decodable_image_with_the_curves_in_their_colours() {
        let bytes = render_png(METRICS).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (2 * W as u32, H as u32));
        // Every series colour is on the canvas (the ce_teacher curve is orange), no kv red.
        let count = |c: [u8; 3]| buf.chunks(3).filter(|p| *p == c).count();
        assert!(count(color("#ff7f0e")) > 50, "ce_teacher curve");
        assert!(count(color("#1f77b4")) > 50, "ce_student curve and the latent accuracy dot");
        assert_eq!(count(color("#d62728")), 0, "the all-zero kv term is left out");
        assert!(count([0, 0, 0]) > 500, "text and the loss curve");
        assert!(render_png("{\"step\":1}\nnot json\n").unwrap_err().starts_with("line 2"));
    }

    #[test]
    fn glyphs_are_five_by_seven_and_text_lands_where_anchored() {
        for ch in "0123456789abcdefghijklmnopqrstuvwxyz.,-_+%:/() ?".chars() {
            assert!(glyph(ch).iter().all(|r| r.len() == 5 && r.bytes().all(|b| b == b'#' || b == b'.')), "{ch:?}");
        }
        let mut c = Canvas::new(40, 20);
        draw_text(&mut c, 20.0, 10.0, 10.0, Anchor::End, false, false, "1");
        // "1" is 5 px wide ending at x = 20, its top 7 px above the baseline at y = 10.
        let inked: Vec<(usize, usize)> = (0..20).flat_map(|y| (0..40).map(move |x| (x, y))).filter(|&(x, y)| c.get(x, y) == [0, 0, 0]).collect();
        assert!(inked.iter().all(|&(x, y)| (15..20).contains(&x) && (3..10).contains(&y)), "{inked:?}");
        assert_eq!(inked.len(), glyph('1').iter().map(|r| r.matches('#').count()).sum::<usize>());
        assert_eq!(color("#abc"), [0xaa, 0xbb, 0xcc]);
        assert_eq!(color("#1f77b4"), [0x1f, 0x77, 0xb4]);
    }
}
