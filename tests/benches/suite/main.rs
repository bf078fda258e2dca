//! `make bench`: one suite, every figure beside a baseline measured in the same run
//! and the goal of issue 11, printed as one table at the end and written to
//! `target/bench/results.json`. Release binaries, private engines (run under
//! `nova-stack test-env`), nothing asserted about speed.
//!
//! One module per goal: `latency` (G3 on_publish and the storm, G4 GetStream and
//! REST), `fanout` (G2 join → every socket), `memory` (G1 memory per socket and
//! sockets per process), `sessions` (G5 session calls and WebSocket connects),
//! `seed` (G6 100 streams through nginx-rtmp and 10k viewers over two edges, CPU and
//! memory per tier), `startup` (G7 publish → playable playlist, viewer page → first
//! frame), `origin` (G8, issue 13: signed playback at the media origin against public
//! URLs). `sockets` is the WebSocket crowd they share, `procstat` reads /proc,
//! `table` prints and writes the results.
//!
//! `NOVA_BENCH_ONLY=g2,g1` runs only those goals (g3 and g4 are one module). Sizes
//! are moderate by default (the box is shared); the `NOVA_BENCH_*` variables of each
//! module raise them (see docs/benchmarks.md for the full-size command).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs,
    unreachable_pub
)]

/// The services' allocator (see their `main.rs`), for the control plane this
/// process hosts and the client crowds it runs; the baseline server is a binary of
/// its own on the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod fanout;
mod latency;
mod memory;
mod origin;
mod procstat;
mod seed;
mod sessions;
mod sockets;
mod stack;
mod startup;
mod table;

use std::{future::Future, time::Instant};

use table::{Row, Rows};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(1).as_str() {
        "--ws-clients" => runtime.block_on(sockets::client_process(
            arg(2),
            arg(3).parse().unwrap(),
            arg(4).parse().unwrap(),
        )),
        _ if args.iter().any(|a| a == "--bench") => runtime.block_on(suite()),
        _ => {}
    }
}

/// Tells whether `goal` (e.g. `g2`) is selected by `NOVA_BENCH_ONLY`.
fn selected(goal: &str) -> bool {
    std::env::var("NOVA_BENCH_ONLY").map_or(true, |only| {
        only.split(',').any(|g| g.trim().eq_ignore_ascii_case(goal))
    })
}

/// Runs one goal's module on its own task; a panic becomes a row saying so, and the
/// rows the module already added stay.
async fn goal<F, Fut>(rows: &Rows, name: &str, module: F)
where
    F: FnOnce(Rows) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    println!("\n== {name}");
    let outcome = tokio::spawn(module(rows.clone())).await;
    if let Err(err) = outcome {
        let message = err
            .try_into_panic()
            .ok()
            .and_then(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            })
            .unwrap_or_else(|| "cancelled".into());
        rows.push(
            Row::new(
                format!("{name}.failed"),
                format!("{name} did not finish"),
                "",
            )
            .note(message),
        );
    }
    println!("== {name} took {:.0} s", started.elapsed().as_secs_f64());
}

async fn suite() {
    let started = Instant::now();
    let rows = Rows::default();
    if selected("g3") || selected("g4") {
        goal(&rows, "G3/G4", |r| async move { latency::run(&r).await }).await;
    }
    if selected("g2") {
        goal(&rows, "G2", |r| async move { fanout::run(&r).await }).await;
    }
    if selected("g1") {
        goal(&rows, "G1", |r| async move { memory::run(&r).await }).await;
    }
    if selected("g5") {
        goal(&rows, "G5", |r| async move { sessions::run(&r).await }).await;
    }
    if selected("g6") {
        goal(&rows, "G6", |r| async move { seed::run(&r).await }).await;
    }
    if selected("g7") {
        goal(&rows, "G7", |r| async move { startup::run(&r).await }).await;
    }
    if selected("g8") {
        goal(&rows, "G8", |r| async move { origin::run(&r).await }).await;
    }
    let mut all = rows.all();
    all.sort_by_key(|r| order(&r.id));
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("\n{}", table::render(&all, &date, profile));
    println!("(suite took {:.0} s)", started.elapsed().as_secs_f64());
    let settings: serde_json::Value = std::env::vars()
        .filter(|(k, _)| k.starts_with("NOVA_BENCH_"))
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let dir = nova_tests::tools::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("results.json");
    let json = table::json(&all, &date, profile, settings);
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    std::fs::write(dir.join("results.md"), table::render(&all, &date, profile)).unwrap();
    println!("written to {} (and results.md)", path.display());
}

/// Orders rows by goal (G1 first), keeping each goal's rows in insertion order.
fn order(id: &str) -> u8 {
    id.strip_prefix('G')
        .and_then(|r| r.chars().next())
        .and_then(|c| c.to_digit(10))
        .map_or(99, |d| d as u8)
}
