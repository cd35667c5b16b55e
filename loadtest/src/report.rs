//! A run's result: JSON for machines, a Markdown summary for people, and an SVG chart (latency
//! percentiles and deliveries per second over time).

use crate::latency::Percentiles;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub settings: serde_json::Value,
    pub figures: Vec<(String, f64, String)>,
    pub latency_ms: Option<Percentiles>,
    pub deliveries_per_second: Vec<u64>,
}

impl Report {
    pub fn figure(&mut self, name: &str, value: f64, unit: &str) {
        self.figures.push((name.to_owned(), value, unit.to_owned()));
    }

    pub fn markdown(&self, chart: Option<&str>) -> String {
        let mut out = format!(
            "## {}\n\nSettings: `{}`\n\n| figure | value |\n|---|---|\n",
            self.scenario, self.settings
        );
        for (name, value, unit) in &self.figures {
            let _ = writeln!(out, "| {name} | {} {unit} |", format_value(*value));
        }
        if let Some(p) = &self.latency_ms {
            let _ = writeln!(
                out,
                "| latency p50 / p90 / p99 / p99.9 / max | {:.2} / {:.2} / {:.2} / {:.2} / {:.2} ms |",
                p.p50, p.p90, p.p99, p.p999, p.max
            );
        }
        if let Some(chart) = chart {
            let _ = write!(out, "\n![{}]({chart})\n", self.scenario);
        }
        out
    }

    /// Two panels: latency percentiles (bars) and deliveries per second over time (a line).
    pub fn svg(&self) -> String {
        let (w, h) = (720.0, 260.0);
        let mut s = format!(
            "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' fill='white'/>\n"
        );
        let _ = writeln!(s, "<text x='10' y='16' font-size='13'>{}</text>", self.scenario);
        if let Some(p) = &self.latency_ms {
            let bars = [
                ("p50", p.p50),
                ("p90", p.p90),
                ("p99", p.p99),
                ("p99.9", p.p999),
                ("max", p.max),
            ];
            let top = bars.iter().map(|b| b.1).fold(0.001, f64::max);
            let _ = writeln!(s, "<text x='10' y='36'>latency (ms)</text>");
            for (i, (name, v)) in bars.iter().enumerate() {
                let bh = v / top * 170.0;
                let x = 20.0 + i as f64 * 60.0;
                let _ = writeln!(
                    s,
                    "<rect x='{x}' y='{}' width='40' height='{bh:.1}' fill='#4a7fc1'/><text x='{x}' y='248'>{name}</text><text x='{x}' y='{}'>{v:.2}</text>",
                    230.0 - bh,
                    226.0 - bh
                );
            }
        }
        if self.deliveries_per_second.len() > 1 {
            let top = *self.deliveries_per_second.iter().max().unwrap_or(&1) as f64;
            let n = self.deliveries_per_second.len() as f64;
            let points: Vec<String> = self
                .deliveries_per_second
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    format!(
                        "{:.1},{:.1}",
                        360.0 + i as f64 / (n - 1.0) * 340.0,
                        230.0 - *v as f64 / top.max(1.0) * 170.0
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "<text x='360' y='36'>deliveries/s over time (max {})</text>",
                format_value(top)
            );
            let _ = writeln!(
                s,
                "<polyline fill='none' stroke='#c1574a' stroke-width='2' points='{}'/>",
                points.join(" ")
            );
            let _ = writeln!(s, "<line x1='360' y1='230' x2='700' y2='230' stroke='#999'/>");
        }
        s.push_str("</svg>\n");
        s
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
