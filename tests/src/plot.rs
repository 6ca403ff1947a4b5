//! One run's timeline as a picture: each client's operation latencies over
//! time, the agents' start and stop spans, and the windows in which an
//! address was down, on one time axis, written as SVG (plotters; no
//! browser, no fonts needed: the text is SVG text).

use std::time::{Duration, SystemTime};

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::timeline::Event;

/// What marks a plot's line on a guest's console.
const MARK: &str = "HANDOFF-PLOT ";

/// Everything one plot shows; times in seconds from the plot's start.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Plot {
    /// The file's name (without `.svg`).
    pub name: String,
    /// The caption.
    pub title: String,
    /// One line per client: its label and [seconds, latency in ms].
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// An agent's action: label, from, to.
    pub spans: Vec<(String, f64, f64)>,
    /// A shaded window (an address down): label, from, to.
    pub windows: Vec<(String, f64, f64)>,
}

/// Seconds from `t0` to `at` (negative before it).
fn secs(t0: SystemTime, at: SystemTime) -> f64 {
    match at.duration_since(t0) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

impl Plot {
    /// An empty plot.
    pub fn new(name: &str, title: &str) -> Plot {
        Plot {
            name: name.to_owned(),
            title: title.to_owned(),
            ..Plot::default()
        }
    }

    /// A client loop's latencies ([Unix ms, ms], as the loops print them).
    pub fn series(&mut self, t0: SystemTime, label: &str, points: &serde_json::Value) {
        let pts = points
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_f64()?)))
            .map(|(unix, ms)| {
                let at = SystemTime::UNIX_EPOCH + Duration::from_millis(unix);
                (secs(t0, at), ms)
            })
            .filter(|(s, _)| *s >= 0.0)
            .collect();
        self.series.push((label.to_owned(), pts));
    }

    /// The start and stop actions among `events` of the instances whose
    /// name begins with `instance_prefix` (e.g. "a_"), from the agents' own
    /// "start succeeded in N ms" lines.
    pub fn spans(&mut self, t0: SystemTime, events: &[Event], instance_prefix: &str) {
        for e in events {
            let Some(instance) = e
                .who
                .split_once('(')
                .and_then(|(_, i)| i.strip_suffix(')'))
                .filter(|i| i.starts_with(instance_prefix))
            else {
                continue;
            };
            let Some((action, ms)) = e
                .what
                .split_once(" succeeded in ")
                .and_then(|(a, rest)| Some((a, rest.strip_suffix(" ms")?.parse::<f64>().ok()?)))
                .filter(|(a, _)| matches!(*a, "start" | "stop"))
            else {
                continue;
            };
            let end = secs(t0, e.at);
            self.spans.push((
                format!("{} {instance} {action} ({ms:.0} ms)", e.node),
                end - ms / 1000.0,
                end,
            ));
        }
    }

    /// A shaded window from `from` to `to`.
    pub fn window(&mut self, t0: SystemTime, label: &str, from: SystemTime, to: SystemTime) {
        self.windows
            .push((label.to_owned(), secs(t0, from), secs(t0, to)));
    }

    /// The picture, as SVG text.
    pub fn svg(&self) -> Result<String, String> {
        let mut out = String::new();
        self.draw(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn draw(&self, out: &mut String) -> Result<(), Box<dyn std::error::Error + '_>> {
        let end = self
            .series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(s, ms)| s + ms / 1000.0))
            .chain(self.spans.iter().map(|s| s.2))
            .chain(self.windows.iter().map(|w| w.2))
            .fold(1.0f64, f64::max)
            * 1.02;
        // Pings on a bridge take microseconds: the axis reaches below them.
        let low_ms = self
            .series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.1))
            .filter(|ms| *ms > 0.0)
            .fold(1.0f64, f64::min)
            / 2.0;
        let top_ms = self
            .series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.1))
            .fold(10.0f64, f64::max)
            * 2.0;
        let rows = self.spans.len().max(1);
        let height = 460 + 22 * rows as u32;
        let root = SVGBackend::with_string(out, (1100, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (upper, lower) = root.split_vertically(420);
        let shade = RGBColor(230, 60, 60).mix(0.15);

        let mut chart = ChartBuilder::on(&upper)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..end, (low_ms..top_ms).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("operation latency (ms, log)")
            .y_label_formatter(&|ms| {
                if *ms >= 1.0 {
                    format!("{ms:.0}")
                } else {
                    format!("{ms:.2}")
                }
            })
            .draw()?;
        for (label, from, to) in &self.windows {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(*from, low_ms), (*to, top_ms)],
                    shade.filled(),
                )))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], shade.filled())
                });
        }
        for (k, (label, points)) in self.series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            chart
                // Each operation from its start to its end at its latency:
                // a stall is a plateau that ends where the client resumed.
                .draw_series(LineSeries::new(
                    points.iter().flat_map(|(s, ms)| {
                        let ms = ms.max(low_ms);
                        [(*s, ms), (s + ms / 1000.0, ms)]
                    }),
                    color.stroke_width(2),
                ))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;

        let mut bars = ChartBuilder::on(&lower)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..end, 0.0..rows as f64)?;
        bars.configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("seconds (the agents' start and stop actions, from their own log)")
            .draw()?;
        for (_, from, to) in &self.windows {
            bars.draw_series(std::iter::once(Rectangle::new(
                [(*from, 0.0), (*to, rows as f64)],
                shade.filled(),
            )))?;
        }
        for (k, (label, from, to)) in self.spans.iter().enumerate() {
            let y = (rows - 1 - k) as f64;
            let color = if label.contains(" stop ") {
                RGBColor(200, 120, 20)
            } else {
                RGBColor(30, 140, 60)
            };
            // A span of a few ms still shows.
            let to = to.max(from + end / 400.0);
            bars.draw_series(std::iter::once(Rectangle::new(
                [(*from, y + 0.15), (to, y + 0.85)],
                color.filled(),
            )))?;
            bars.draw_series(std::iter::once(Text::new(
                label.clone(),
                (to + end / 200.0, y + 0.75),
                ("sans-serif", 12),
            )))?;
        }
        root.present()?;
        Ok(())
    }

    /// The console line a guest prints for the host to draw.
    pub fn line(&self) -> String {
        format!("{MARK}{}", serde_json::to_string(self).unwrap_or_default())
    }

    /// Every plot a guest printed on its console.
    pub fn in_log(log: &str) -> Vec<Plot> {
        log.lines()
            .filter_map(|l| l.split_once(MARK))
            .filter_map(|(_, j)| serde_json::from_str(j).ok())
            .collect()
    }

    /// Write every plot a guest printed in `log` as `dir/PREFIX-NAME.svg`;
    /// for each, its name and the path or why not.
    pub fn write_all_in_log(
        log: &str,
        prefix: &str,
        dir: &std::path::Path,
    ) -> Vec<(String, Result<std::path::PathBuf, String>)> {
        Plot::in_log(log)
            .into_iter()
            .map(|mut plot| {
                plot.name = format!("{prefix}-{}", plot.name);
                let written = plot.write(dir);
                (plot.name, written)
            })
            .collect()
    }

    /// Write it as `dir/NAME.svg`; the path, or why not.
    pub fn write(&self, dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
        let svg = self.svg()?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.svg", self.name));
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_come_from_the_agents_succeeded_lines() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ev = |secs: u64, who: &str, what: &str| Event {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            node: "n1".into(),
            who: who.into(),
            what: what.into(),
        };
        let events = [
            ev(1002, "vip(a_vip)", "stop succeeded in 500.0 ms"),
            ev(1003, "vip(b_vip)", "stop succeeded in 10.0 ms"),
            ev(1004, "fs(a_fs)", "monitor succeeded in 3.0 ms"),
            ev(1005, "fs(a_fs)", "start succeeded in 2000.0 ms"),
        ];
        let mut p = Plot::new("t", "t");
        p.spans(t0, &events, "a_");
        assert_eq!(
            p.spans,
            vec![
                ("n1 a_vip stop (500 ms)".to_owned(), 1.5, 2.0),
                ("n1 a_fs start (2000 ms)".to_owned(), 3.0, 5.0),
            ]
        );
        p.series(
            t0,
            "A",
            &serde_json::json!([[999_000, 5.0], [1_001_000, 7.5], [1_002_500, 9000.0]]),
        );
        assert_eq!(p.series[0].1, vec![(1.0, 7.5), (2.5, 9000.0)]);
        p.window(
            t0,
            "A's address down",
            t0 + Duration::from_secs(2),
            t0 + Duration::from_secs(5),
        );
        let svg = p.svg().unwrap_or_default();
        assert!(
            svg.starts_with("<svg") && svg.contains("a_vip stop"),
            "{svg}"
        );
    }
}
