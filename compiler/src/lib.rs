//! stir: one KDL manifest for ClickHouse models, schedules and PostgreSQL syncs.
//!
//! The pipeline, one module per stage (see docs/ARCHITECTURE.md):
//! `manifest` (KDL -> declarations) -> `resolve` (names, selectors) -> `render` (templates)
//! -> `graph` (DAG) -> `check` (ownership, conflicts, time) -> `plan` (the frozen plan).

pub mod check;
pub mod cli;
pub mod compile;
pub mod cron;
pub mod diagnostic;
pub mod graph;
pub mod load;
pub mod manifest;
pub mod plan;
pub mod planner;
pub mod render;
pub mod resolve;
pub mod review;
pub mod schedule;
pub mod signature;
pub mod sqlscan;
pub mod target;
pub mod timeline;

pub use compile::{compile_bytes, compile_path, Compiled, LoadError};
