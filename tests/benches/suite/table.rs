//! The one results table: every row with its figure, the baseline measured in the
//! same run, and the goal from issue 11; printed at the end and written to
//! `target/bench/results.json`.

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// Stable id, e.g. `G2.p99@1000`.
    pub id: String,
    /// What was measured.
    pub what: String,
    /// The figure (`None`: not measured in this run; `note` says why).
    pub figure: Option<f64>,
    /// Unit of `figure` and of the baseline.
    pub unit: &'static str,
    /// The same-run baseline: what it is and its figure.
    pub baseline: Option<(String, f64)>,
    /// The goal, as the issue states it.
    pub goal: &'static str,
    /// Anything a reader needs beside the figure.
    pub note: String,
}

impl Row {
    /// Starts a row.
    pub fn new(id: impl Into<String>, what: impl Into<String>, unit: &'static str) -> Self {
        Self {
            id: id.into(),
            what: what.into(),
            figure: None,
            unit,
            baseline: None,
            goal: "",
            note: String::new(),
        }
    }

    /// Sets the figure.
    pub fn figure(mut self, figure: f64) -> Self {
        self.figure = Some(figure);
        self
    }

    /// Sets the baseline.
    pub fn baseline(mut self, what: impl Into<String>, figure: f64) -> Self {
        self.baseline = Some((what.into(), figure));
        self
    }

    /// Sets the goal.
    pub fn goal(mut self, goal: &'static str) -> Self {
        self.goal = goal;
        self
    }

    /// Sets the note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// The rows of this run, shared by every goal's module (a module that fails keeps
/// the rows it already added).
#[derive(Clone, Default)]
pub struct Rows(Arc<Mutex<Vec<Row>>>);

impl Rows {
    /// Adds a row and prints it at once (the table at the end repeats it).
    pub fn push(&self, row: Row) {
        println!("  -> {}", line(&row));
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(row);
    }

    /// Returns every row so far.
    pub fn all(&self) -> Vec<Row> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn number(value: f64) -> String {
    if value == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn figure(row: &Row) -> String {
    row.figure
        .map_or("—".to_owned(), |f| format!("{} {}", number(f), row.unit))
}

fn baseline(row: &Row) -> String {
    row.baseline.as_ref().map_or("—".to_owned(), |(what, f)| {
        format!("{} {} ({what})", number(*f), row.unit)
    })
}

fn line(row: &Row) -> String {
    format!(
        "{} {}: {} | baseline {} | goal {}{}",
        row.id,
        row.what,
        figure(row),
        baseline(row),
        if row.goal.is_empty() { "—" } else { row.goal },
        if row.note.is_empty() {
            String::new()
        } else {
            format!(" | {}", row.note)
        }
    )
}

/// Returns the table as Markdown (the form docs/benchmarks.md pastes).
pub fn render(rows: &[Row], date: &str, profile: &str) -> String {
    let mut out = format!("Nova Streaming benchmark suite, {date}, {profile} build\n\n");
    out.push_str("| row | what | figure | same-run baseline | goal | note |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.id,
            row.what,
            figure(row),
            baseline(row),
            if row.goal.is_empty() { "—" } else { row.goal },
            row.note
        );
    }
    out
}

/// Returns the machine-readable form written to `target/bench/results.json`.
pub fn json(rows: &[Row], date: &str, profile: &str, settings: Value) -> Value {
    json!({
        "date": date,
        "build_profile": profile,
        "settings": settings,
        "rows": rows.iter().map(|row| json!({
            "id": row.id,
            "what": row.what,
            "figure": row.figure,
            "unit": row.unit,
            "baseline": row.baseline.as_ref().map(|(what, f)| json!({"what": what, "figure": f, "unit": row.unit})),
            "goal": row.goal,
            "note": row.note,
        })).collect::<Vec<_>>(),
    })
}
