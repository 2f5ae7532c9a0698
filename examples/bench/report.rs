//! Figures: each beside its baseline, the ratio and the target; printed as a table, written as JSON.

use serde::Serialize;
use serde_json::{Value, json};

/// What a figure measures, which says how to print it and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Nanoseconds, printed as µs; lower is better.
    Nanos,
    /// Per second; higher is better.
    PerSecond,
    /// KiB; lower is better.
    KiB,
    /// A count (of failed calls); lower is better.
    Count,
}

/// A target: on the ratio to the baseline, or on the figure itself.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// cluster / baseline ≤ value.
    RatioAtMost { value: f64 },
    /// cluster / baseline ≥ value.
    RatioAtLeast { value: f64 },
    /// cluster ≤ value (in the figure's unit).
    AtMost { value: f64 },
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub id: String,
    pub label: String,
    pub unit: Unit,
    pub cluster: f64,
    pub baseline: Option<f64>,
    pub ratio: Option<f64>,
    pub target: Option<Target>,
    pub met: Option<bool>,
    /// Anything the reader should know (lost items, errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Figure {
    pub fn new(id: &str, label: &str, unit: Unit, cluster: f64, baseline: Option<f64>) -> Self {
        let ratio = baseline.filter(|b| *b > 0.0).map(|b| cluster / b);
        Figure {
            id: id.to_owned(),
            label: label.to_owned(),
            unit,
            cluster,
            baseline,
            ratio,
            target: None,
            met: None,
            note: None,
        }
    }

    pub fn target(mut self, target: Target) -> Self {
        self.met = match target {
            Target::RatioAtMost { value } => self.ratio.map(|r| r <= value),
            Target::RatioAtLeast { value } => self.ratio.map(|r| r >= value),
            Target::AtMost { value } => Some(self.cluster <= value),
        };
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }
}

fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Nanos if v >= 1e6 => format!("{:.2} ms", v / 1e6),
        Unit::Nanos => format!("{:.1} µs", v / 1000.0),
        Unit::PerSecond if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
        Unit::PerSecond if v >= 1e3 => format!("{:.1} k/s", v / 1e3),
        Unit::PerSecond => format!("{v:.0} /s"),
        Unit::KiB if v >= 10.0 * 1024.0 => format!("{:.1} MiB", v / 1024.0),
        Unit::KiB => format!("{v:.1} KiB"),
        Unit::Count => format!("{v:.0}"),
    }
}

fn target_text(unit: Unit, target: Option<Target>) -> String {
    match target {
        None => String::new(),
        Some(Target::RatioAtMost { value: v }) => format!("≤ {v}×"),
        Some(Target::RatioAtLeast { value: v }) => format!("≥ {v}×"),
        Some(Target::AtMost { value: v }) => format!("≤ {}", value(unit, v)),
    }
}

/// The table: figure | cluster-client | raw baseline | ratio | target | met?
pub fn table(figures: &[Figure]) -> String {
    let header = [
        "figure",
        "cluster-client",
        "raw baseline",
        "ratio",
        "target",
        "met?",
    ];
    let rows: Vec<[String; 6]> = figures
        .iter()
        .map(|f| {
            [
                f.label.clone(),
                value(f.unit, f.cluster),
                f.baseline.map_or("-".to_owned(), |b| value(f.unit, b)),
                f.ratio.map_or("-".to_owned(), |r| format!("{r:.2}×")),
                target_text(f.unit, f.target),
                match f.met {
                    Some(true) => "yes".to_owned(),
                    Some(false) => "NO".to_owned(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..6).map(width).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = " ".repeat(w - c.chars().count());
                if i == 0 {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut out = String::new();
    out.push_str(&line(&header.map(str::to_owned)));
    out.push('\n');
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                "-".repeat(*w)
            } else {
                format!("{}:", "-".repeat(w.saturating_sub(1)))
            }
        })
        .collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    for f in figures.iter().filter(|f| f.note.is_some()) {
        out.push_str(&format!(
            "note ({}): {}\n",
            f.label,
            f.note.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// What a run reports.
#[derive(Debug, Default)]
pub struct Results {
    pub figures: Vec<Figure>,
    pub costs: Vec<CostRow>,
}

/// What one call cost, on average over a measurement window (CPU time from `/proc` in 10 ms ticks,
/// context switches of every thread).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cost {
    pub calls: u64,
    /// The leader, or the raw server.
    pub server_cpu_us: f64,
    /// The followers, or the raw clients.
    pub clients_cpu_us: f64,
    pub server_switches: f64,
    pub clients_switches: f64,
}

/// The cost of a call through cluster-client and through the raw baseline.
#[derive(Debug, Clone, Serialize)]
pub struct CostRow {
    pub label: String,
    pub ours: Cost,
    pub raw: Cost,
}

/// The per-call cost table.
pub fn cost_table(rows: &[CostRow]) -> String {
    let mut out = String::from(
        "per call (whole window)                | leader CPU | follower CPU | leader cs | follower cs || raw server CPU | raw client CPU | server cs | client cs\n",
    );
    out.push_str(
        "  (CPU time from /proc/PID/stat in 10 ms ticks, cs = context switches of all threads, both divided\n   by the calls or items of the whole window, warm-up and turn-taking bookkeeping included)\n",
    );
    for row in rows {
        let (o, r) = (row.ours, row.raw);
        out.push_str(&format!(
            "{:<38} | {:>7.2} µs | {:>9.2} µs | {:>9.2} | {:>11.2} || {:>11.2} µs | {:>11.2} µs | {:>9.2} | {:>9.2}\n",
            row.label,
            o.server_cpu_us,
            o.clients_cpu_us,
            o.server_switches,
            o.clients_switches,
            r.server_cpu_us,
            r.clients_cpu_us,
            r.server_switches,
            r.clients_switches,
        ));
    }
    out
}

/// The JSON document `--json` writes.
pub fn document(results: &Results, config: Value, machine: Value) -> Value {
    json!({
        "config": config,
        "machine": machine,
        "figures": results.figures,
        "per_call_costs": results.costs,
    })
}
