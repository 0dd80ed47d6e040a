//! stir: one KDL manifest for ClickHouse models, schedules and PostgreSQL syncs.
//!
//! The pipeline, one module per stage, driven by `compile` (see docs/ARCHITECTURE.md):
//! `load` -> `manifest` (KDL -> declarations) -> `resolve` (names, selectors) -> `macros` ->
//! `models` (read, render, scan) -> `requests` -> `graph` (DAG) -> `schedules` (steps,
//! owners) -> `check` (pure checks) -> `planner` (the frozen plan) -> `review` (plan diffs).

pub mod check;
pub mod commands;
pub mod compile;
pub mod diagnostic;
pub mod graph;
pub mod import;
pub mod kdl_reader;
pub mod lineage;
pub mod load;
pub mod macros;
pub mod manifest;
pub mod models;
pub mod parallel;
pub mod planner;
pub mod project;
pub mod render;
pub mod requests;
pub mod resolve;
pub mod review;
pub mod schedules;
pub mod sqlscan;
pub mod target;

// The contract shared with the runtime, under the paths the compiler has always used.
pub use stir_plan as plan;
pub use stir_plan::{cron, schedule, signature, timeline};

pub use compile::{compile_bytes, compile_path, Compiled, LoadError};
