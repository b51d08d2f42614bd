//! `kava-train plot`: `metrics.jsonl` → one SVG with the loss terms per step (left) and the
//! evaluation accuracy per step (right). Plain SVG text: no plotting dependency, opens in any
//! browser.

use std::fmt::Write;

/// One named series of (step, value) points.
struct Series {
    name: &'static str,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

const W: f64 = 520.0;
const H: f64 = 320.0;
const PAD: f64 = 48.0;

/// A panel with axes, ticks and the series; `x0` is its left edge.
fn panel(svg: &mut String, x0: f64, title: &str, ylabel: &str, series: &[Series]) {
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
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="20" font-size="14" font-weight="bold">{title}</text>"#,
        x0 + PAD
    );
    let _ = write!(
        svg,
        r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
        x0 + PAD,
        PAD,
        W - 1.5 * PAD,
        H - 2.0 * PAD
    );
    for i in 0..=4 {
        let y = ymin + (ymax - ymin) * i as f64 / 4.0;
        let x = xmin + (xmax - xmin) * i as f64 / 4.0;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{y:.3}</text>"#,
            x0 + PAD - 4.0,
            sy(y) + 3.0
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{x:.0}</text>"#,
            sx(x),
            H - PAD + 14.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">step</text>"#,
        x0 + PAD + (W - 1.5 * PAD) / 2.0,
        H - 10.0
    );
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="11" transform="rotate(-90 {:.1} {:.1})" text-anchor="middle">{ylabel}</text>"#,
        x0 + 12.0,
        H / 2.0,
        x0 + 12.0,
        H / 2.0
    );
    for (k, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            s.color,
            path.join(" ")
        );
        if s.points.len() == 1 {
            let (x, y) = s.points[0];
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                sx(x),
                sy(y),
                s.color
            );
        }
        let ly = PAD + 14.0 + 14.0 * k as f64;
        let lx = x0 + W - 1.5 * PAD - 70.0 + PAD;
        let _ = write!(
            svg,
            r#"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
            ly - 3.0,
            lx + 14.0,
            ly - 3.0,
            s.color,
            lx + 18.0,
            ly,
            s.name
        );
    }
}

/// Renders the metrics JSONL text to SVG; errors name the bad line.
pub fn render(jsonl: &str) -> Result<String, String> {
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
    // Terms the method does not have are all zero: leave them out.
    losses.retain(|s| s.points.iter().any(|&(_, y)| y != 0.0));
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{H}" font-family="sans-serif">"#,
        2.0 * W
    );
    svg.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    panel(&mut svg, 0.0, "training loss", "loss", &losses);
    panel(&mut svg, W, "validation accuracy", "accuracy %", &acc);
    svg.push_str("</svg>\n");
    Ok(svg)
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
