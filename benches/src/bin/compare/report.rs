//! What the comparison prints and writes: the table, `target/bench/compare.json` and the markdown table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::args::Options;
use crate::orchestrate::Outcome;
use crate::plan::{baseline_workload, row_workload};
use crate::spec::{Client, RunResult};
use crate::stats::{self, Cell, Ratio, Summary};

/// The async-nats cell `cell` is compared with, if it ran.
fn baseline<'a>(cells: &'a [Cell], cell: &Cell) -> Option<&'a Cell> {
    let workload = baseline_workload(cell.workload);
    cells.iter().find(|b| {
        b.client == Client::AsyncNats && b.workload == workload && b.size == cell.size && b.pinned == cell.pinned
    })
}

/// `cell` against its baseline.
fn ratio_of(cells: &[Cell], cell: &Cell) -> Option<Ratio> {
    stats::ratio(cell, baseline(cells, cell)?)
}

/// The row label: the workload, with `1cpu` for pinned rows.
fn label(cell: &Cell) -> String {
    let pinned = if cell.pinned { " 1cpu" } else { "" };
    format!("{}{pinned}", cell.workload.name())
}

/// A rate with an SI suffix: `5.21M`.
fn si(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// `median (min–max)` with `fmt` for each figure, or `-`.
fn spread(s: Option<Summary>, fmt: impl Fn(f64) -> String) -> String {
    s.map_or("-".into(), |s| format!("{} ({}–{})", fmt(s.median), fmt(s.min), fmt(s.max)))
}

/// `median [min–max]` of the ratios paired by round, with `open`/`close` around the spread; the ratio of the
/// medians, marked `unpaired`, when no round had both clean.
fn ratio_text(r: Option<Ratio>, (open, close): (&str, &str)) -> String {
    match r {
        Some(Ratio { paired: Some(p), .. }) => format!("{:.2} {open}{:.2}–{:.2}{close}", p.median, p.min, p.max),
        Some(Ratio { of_medians, paired: None, .. }) => format!("{of_medians:.2} {open}unpaired{close}"),
        None => "-".into(),
    }
}

/// Peak RSS in MiB, the largest over the clean runs.
fn rss_mib(cell: &Cell) -> Option<f64> {
    cell.summary(|r| r.peak_rss_kib.map(|k| k as f64)).map(|s| s.max / 1024.0)
}

/// Prints the table on stdout.
pub(crate) fn print_table(cells: &[Cell]) {
    println!(
        "{:<12} {:>6} {:<14} {:>24} {:>26} {:>8} {:>7} {:>8} {:>20} {:>8} {:>6}",
        "workload",
        "size",
        "client",
        "msgs/s (min–max)",
        "p50 µs (min–max)",
        "p99 µs",
        "cpu ns",
        "RSS MiB",
        "ratio [paired]",
        "dropped",
        "clean"
    );
    for cell in cells {
        let latency = cell.workload.is_latency();
        let ratio = ratio_text(ratio_of(cells, cell), ("[", "]")) + if latency { " ↓" } else { "" };
        println!(
            "{:<12} {:>6} {:<14} {:>24} {:>26} {:>8} {:>7} {:>8} {:>20} {:>8} {:>6}",
            label(cell),
            cell.size,
            cell.client.name(),
            spread(cell.summary(|r| Some(r.msgs_per_s)), si),
            if latency { spread(cell.summary(|r| r.p50_us), |x| format!("{x:.1}")) } else { "-".into() },
            cell.summary(|r| r.p99_us).map_or("-".into(), |s| format!("{:.1}", s.median)),
            cell.summary(|r| r.cpu_ns_per_msg).map_or("-".into(), |s| format!("{:.0}", s.median)),
            rss_mib(cell).map_or("-".into(), |m| format!("{m:.1}")),
            ratio,
            cell.summary(|r| Some(r.dropped as f64)).map_or("-".into(), |s| format!("{:.0}", s.max)),
            format!("{}/{}", cell.clean_runs(), cell.runs.len()),
        );
    }
    println!(
        "\nmedians over clean runs; ratio to async-nats: median [min–max] of the ratios paired by round; \
         ↓ = p50 ratio (lower is better), else msgs/s (higher is better); RSS and dropped: the largest"
    );
}

/// min/median/max as JSON.
fn summary_json(s: Option<Summary>) -> Value {
    s.map_or(Value::Null, |s| json!({ "min": s.min, "median": s.median, "max": s.max }))
}

/// One cell as JSON: its statistics, its ratio and every run.
fn cell_json(cells: &[Cell], cell: &Cell) -> Value {
    let metric = |f: fn(&RunResult) -> Option<f64>| summary_json(cell.summary(f));
    let ratio = ratio_of(cells, cell).map(|r| {
        json!({
            "of": if cell.workload.is_latency() { "p50_us (lower is better)" } else { "msgs_per_s (higher is better)" },
            "of_medians": r.of_medians,
            "paired": summary_json(r.paired),
            "pairs": r.pairs,
        })
    });
    let runs: Vec<Value> = cell
        .runs
        .iter()
        .map(|run| match &run.outcome {
            Ok(r) => json!({ "round": run.round, "clean": run.clean, "others_cores": r.others_cores, "result": r.to_value() }),
            Err(e) => json!({ "round": run.round, "clean": false, "others_cores": null, "error": e }),
        })
        .collect();
    json!({
        "workload": cell.workload.name(),
        "size": cell.size,
        "pinned": cell.pinned,
        "client": cell.client.name(),
        "messages": cell.messages,
        "clean_runs": cell.clean_runs(),
        "attempts": cell.runs.len(),
        "stats": {
            "msgs_per_s": metric(|r| Some(r.msgs_per_s)),
            "p50_us": metric(|r| r.p50_us),
            "p99_us": metric(|r| r.p99_us),
            "cpu_ns_per_msg": metric(|r| r.cpu_ns_per_msg),
            "peak_rss_kib": metric(|r| r.peak_rss_kib.map(|k| k as f64)),
            "dropped": metric(|r| Some(r.dropped as f64)),
            "others_cores": metric(|r| r.others_cores),
        },
        "ratio_vs_async_nats": ratio,
        "runs": runs,
    })
}

/// Writes everything to `target/bench/compare.json` in the workspace; the path written.
pub(crate) fn write_json(outcome: &Outcome, options: &Options, command: &str) -> std::io::Result<PathBuf> {
    let m = &outcome.machine;
    let doc = json!({
        "command": command,
        "machine": { "nproc": m.nproc, "model": m.model, "kernel": m.kernel },
        "server_version": outcome.server_version,
        "settings": {
            "quick": options.quick,
            "runs": options.runs,
            "max_attempts": options.max_attempts,
            "threshold_cores": options.threshold,
            "max_wait_s": options.max_wait.as_secs_f64(),
            "pinned_rows": outcome.taskset,
        },
        "cells": outcome.cells.iter().map(|c| cell_json(&outcome.cells, c)).collect::<Vec<_>>(),
    });
    // The workspace's target dir, whatever CARGO_TARGET_DIR the binary was built with (as the old tool had it).
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    let dir = workspace.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("compare.json");
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    Ok(path)
}

/// The markdown columns, in order.
const COLUMNS: [Client; 5] =
    [Client::Raw, Client::AsyncNats, Client::NatsSync, Client::OursBlocking, Client::OursTokio];

/// A README-ready markdown table: a row per (workload, size, pinned), a column per client; async-nats shows its
/// absolute figure, the others their ratio to it with the paired spread; memory rows add the peak RSS.
pub(crate) fn markdown(cells: &[Cell], command: &str) -> String {
    let mut rows: Vec<(String, Vec<&Cell>)> = vec![];
    for cell in cells {
        let w = row_workload(cell.workload);
        let pinned = if cell.pinned { ", 1 CPU" } else { "" };
        let key = format!("{} {}{pinned}", w.name(), size_text(cell.size));
        match rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, row)) => row.push(cell),
            None => rows.push((key, vec![cell])),
        }
    }
    let mut out = String::from("| workload |");
    for c in COLUMNS {
        let _ = write!(out, " {} |", c.name());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(COLUMNS.len()));
    for (key, row) in rows {
        let latency = row.first().is_some_and(|c| c.workload.is_latency());
        let _ = write!(out, "\n| {key}{} |", if latency { " (p50, lower is better)" } else { "" });
        for client in COLUMNS {
            let text = row.iter().find(|c| c.client == client).map_or("".into(), |c| markdown_cell(cells, c));
            let _ = write!(out, " {text} |");
        }
    }
    let _ = write!(
        out,
        "\n\nRatios to async-nats, paired round by round over clean runs: median (min–max); the async-nats column \
         is its median. Produced by `{command}`.\n"
    );
    out
}

/// One markdown cell: the figure or ratio, and the RSS on memory rows.
fn markdown_cell(cells: &[Cell], cell: &Cell) -> String {
    let main = if cell.client == Client::AsyncNats {
        if cell.workload.is_latency() {
            cell.summary(|r| r.p50_us).map_or("-".into(), |s| format!("{:.1} µs", s.median))
        } else {
            cell.summary(|r| Some(r.msgs_per_s)).map_or("-".into(), |s| format!("{} msgs/s", si(s.median)))
        }
    } else {
        ratio_text(ratio_of(cells, cell), ("(", ")"))
    };
    match (cell.workload.is_rss(), rss_mib(cell)) {
        (true, Some(mib)) => format!("{main}, {mib:.0} MiB"),
        _ => main,
    }
}

/// `16 B`, `1 KiB`, `16 KiB`.
fn size_text(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Workload;
    use crate::stats::Run;

    fn cell(workload: Workload, client: Client, rates: &[f64]) -> Cell {
        let runs = rates
            .iter()
            .enumerate()
            .map(|(round, &r)| Run {
                round,
                clean: true,
                outcome: Ok(RunResult { msgs_per_s: r, peak_rss_kib: Some(2048), ..RunResult::default() }),
            })
            .collect();
        Cell { workload, size: 16, pinned: false, client, messages: 1, runs }
    }

    #[test]
    fn formats() {
        assert_eq!(si(5_210_000.0), "5.21M");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(999.0), "999");
        assert_eq!(size_text(16), "16 B");
        assert_eq!(size_text(16 * 1024), "16 KiB");
    }

    #[test]
    fn raw_publish_is_compared_with_async_nats_publish() {
        let cells = vec![
            cell(Workload::Publish, Client::AsyncNats, &[10.0, 20.0]),
            cell(Workload::RawPublish, Client::Raw, &[30.0, 40.0]),
        ];
        let r = ratio_of(&cells, &cells[1]).unwrap();
        assert_eq!(r.of_medians, 35.0 / 15.0);
        let md = markdown(&cells, "compare");
        // One row: raw's paired ratio and async-nats's figure side by side.
        assert!(md.contains("| publish 16 B | 2.50 (2.00–3.00) | 15 msgs/s |"), "{md}");
    }

    #[test]
    fn memory_rows_show_mib() {
        let cells = vec![
            cell(Workload::PublishRss, Client::AsyncNats, &[10.0]),
            cell(Workload::PublishRss, Client::OursTokio, &[20.0]),
        ];
        assert_eq!(markdown_cell(&cells, &cells[1]), "2.00 (2.00–2.00), 2 MiB");
    }
}
