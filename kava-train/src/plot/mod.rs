//! `kava-train plot`: `metrics.jsonl` → one figure with the loss terms per step (left) and the
//! evaluation accuracy per step (right), as SVG (plain text, opens in any browser) or PNG (drawn
//! by [`png`]'s small rasterizer with a built-in 5×7 font: no plotting or font dependency). Both
//! render the same list of drawing items.

use std::fmt::Write;

mod png;

pub use self::png::render_png;

/// One named series of (step, value) points.
struct Series {
    name: &'static str,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

const W: f64 = 520.0;
const H: f64 = 320.0;
const PAD: f64 = 48.0;

/// Where a text's x sits: its start, middle or end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Anchor {
    Start,
    Middle,
    End,
}

/// What a figure is drawn from; [`to_svg`] and [`png::rasterize`] both render it.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    /// `y` is the baseline; `vertical` turns it -90° about (x, y).
    Text { x: f64, y: f64, size: f64, anchor: Anchor, bold: bool, vertical: bool, text: String },
    Rect { x: f64, y: f64, w: f64, h: f64, stroke: &'static str },
    Line { x1: f64, y1: f64, x2: f64, y2: f64, color: &'static str, width: f64 },
    Polyline { points: Vec<(f64, f64)>, color: &'static str, width: f64 },
    Dot { x: f64, y: f64, r: f64, color: &'static str },
}

fn text(x: f64, y: f64, size: f64, anchor: Anchor, text: String) -> Item {
    Item::Text { x, y, size, anchor, bold: false, vertical: false, text }
}

/// A panel with axes, ticks and the series; `x0` is its left edge.
fn panel(items: &mut Vec<Item>, x0: f64, title: &str, ylabel: &str, series: &[Series]) {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if xmin > xmax {
        (xmin, xmax, ymin, ymax) = (0.0, 1.0, 0.0, 1.0);
    }
    ymin = ymin.min(0.0);
    if ymax <= ymin {
        ymax = ymin + 1.0;
    }
    if xmax <= xmin {
        xmax = xmin + 1.0;
    }
    let sx = |x: f64| x0 + PAD + (x - xmin) / (xmax - xmin) * (W - 1.5 * PAD);
    let sy = |y: f64| H - PAD + -(y - ymin) / (ymax - ymin) * (H - 2.0 * PAD);
    items.push(Item::Text { x: x0 + PAD, y: 20.0, size: 14.0, anchor: Anchor::Start, bold: true, vertical: false, text: title.into() });
    items.push(Item::Rect { x: x0 + PAD, y: PAD, w: W - 1.5 * PAD, h: H - 2.0 * PAD, stroke: "#888" });
    for i in 0..=4 {
        let y = ymin + (ymax - ymin) * i as f64 / 4.0;
        let x = xmin + (xmax - xmin) * i as f64 / 4.0;
        items.push(text(x0 + PAD - 4.0, sy(y) + 3.0, 10.0, Anchor::End, format!("{y:.3}")));
        items.push(text(sx(x), H - PAD + 14.0, 10.0, Anchor::Middle, format!("{x:.0}")));
    }
    items.push(text(x0 + PAD + (W - 1.5 * PAD) / 2.0, H - 10.0, 11.0, Anchor::Middle, "step".into()));
    items.push(Item::Text { x: x0 + 12.0, y: H / 2.0, size: 11.0, anchor: Anchor::Middle, bold: false, vertical: true, text: ylabel.into() });
    for (k, s) in series.iter().enumerate() {
        let points = s.points.iter().map(|&(x, y)| (sx(x), sy(y))).collect();
        items.push(Item::Polyline { points, color: s.color, width: 1.5 });
        if s.points.len() == 1 {
            let (x, y) = s.points[0];
            items.push(Item::Dot { x: sx(x), y: sy(y), r: 3.0, color: s.color });
        }
        let ly = PAD + 14.0 + 14.0 * k as f64;
        let lx = x0 + W - 1.5 * PAD - 70.0 + PAD;
        items.push(Item::Line { x1: lx, y1: ly - 3.0, x2: lx + 14.0, y2: ly - 3.0, color: s.color, width: 2.0 });
        items.push(text(lx + 18.0, ly, 10.0, Anchor::Start, s.name.into()));
    }
}

/// The figure of a metrics JSONL text (losses left, accuracy right); errors name the bad line.
fn figure(jsonl: &str) -> Result<Vec<Item>, String> {
    let names: [(&str, &str); 5] = [
        ("loss", "#000"),
        ("ce_student", "#1f77b4"),
        ("ce_teacher", "#ff7f0e"),
        ("codi", "#2ca02c"),
        ("kv", "#d62728"),
    ];
    let mut losses: Vec<Series> = names
        .iter()
        .map(|&(name, color)| Series {
            name,
            color,
            points: vec![],
        })
        .collect();
    let mut acc: Vec<Series> = vec![];
    let mut records = 0;
    for (i, line) in jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let step = v["step"]
            .as_f64()
            .ok_or_else(|| format!("line {}: no `step`", i + 1))?;
        records += 1;
        if let Some(mode) = v["eval"].as_str() {
            let a = v["accuracy"]
                .as_f64()
                .ok_or_else(|| format!("line {}: eval without `accuracy`", i + 1))?;
            let name: &'static str = match mode {
                "latent" => "latent",
                "cot" => "cot",
                "nocot" => "nocot",
                _ => "other",
            };
            if !acc.iter().any(|s| s.name == name) {
                let color = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"][acc.len() % 4];
                acc.push(Series {
                    name,
                    color,
                    points: vec![],
                });
            }
            acc.iter_mut()
                .find(|s| s.name == name)
                .expect("pushed")
                .points
                .push((step, 100.0 * a));
            continue;
        }
        for s in &mut losses {
            if let Some(y) = v[s.name].as_f64() {
                s.points.push((step, y));
            }
        }
    }
    if records == 0 {
        return Err("no metrics records (an empty file?)".into());
    }
    // Terms the method does not have are all zero: leave them out.
    losses.retain(|s| s.points.iter().any(|&(_, y)| y != 0.0));
    let mut items = Vec::new();
    panel(&mut items, 0.0, "training loss", "loss", &losses);
    panel(&mut items, W, "validation accuracy", "accuracy %", &acc);
    Ok(items)
}

/// Renders the metrics JSONL text to SVG; errors name the bad line.
pub fn render(jsonl: &str) -> Result<String, String> {
    Ok(to_svg(&figure(jsonl)?))
}

fn to_svg(items: &[Item]) -> String {
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{H}" font-family="sans-serif">"#, 2.0 * W);
    svg.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    for item in items {
        let _ = match item {
            Item::Text { x, y, size, anchor, bold, vertical, text } => {
                let anchor = match anchor {
                    Anchor::Start => "",
                    Anchor::Middle => r#" text-anchor="middle""#,
                    Anchor::End => r#" text-anchor="end""#,
                };
                let weight = if *bold { r#" font-weight="bold""# } else { "" };
                let rotate = if *vertical { format!(r#" transform="rotate(-90 {x:.1} {y:.1})""#) } else { String::new() };
                write!(svg, r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}"{weight}{rotate}{anchor}>{text}</text>"#)
            }
            Item::Rect { x, y, w, h, stroke } => {
                write!(svg, r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="{stroke}"/>"#)
            }
            Item::Line { x1, y1, x2, y2, color, width } => {
                write!(svg, r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{color}" stroke-width="{width}"/>"#)
            }
            Item::Polyline { points, color, width } => {
                let path: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                write!(svg, r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{}"/>"#, path.join(" "))
            }
            Item::Dot { x, y, r, color } => write!(svg, r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{color}"/>"#),
        };
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_losses_and_accuracy_and_names_bad_lines() {
        let text = "{\"step\":1,\"loss\":3.0,\"ce_student\":1.0,\"ce_teacher\":2.0,\"codi\":0.0,\"kv\":0.0}\n{\"step\":2,\"loss\":2.0,\"ce_student\":0.5,\"ce_teacher\":1.5,\"codi\":0.0,\"kv\":0.0}\n{\"step\":2,\"eval\":\"latent\",\"accuracy\":0.25}\n";
        let svg = render(text).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("ce_teacher") && svg.contains(">latent<"));
        assert!(!svg.contains(">kv<"), "all-zero terms are left out");
        assert_eq!(svg.matches("<polyline").count(), 4);
        let err = render("{\"step\":1}\nnot json\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }
}
