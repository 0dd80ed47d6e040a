//! Link the `stir` binary as a position-dependent executable on Linux. A PIE of this size
//! carries 37,000 relocations (vtables, chrono-tz's zone tables) that the loader writes into
//! 1.1 MB of `.data.rel.ro` at every start: 270 copy-on-write page faults, about a millisecond
//! of each `stir check` (docs/performance.md). Go links the same way by default. The runtime
//! (a long-running server) stays a PIE.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=stir=-no-pie");
    }
}
