//! medrec-local's integration tests in one binary (one link step instead of one per file): each
//! file is a module. Tests of all of them run in parallel threads of this process, each on its
//! own database and ports. The tests that bring a stack up (LocalStack and `cargo lambda watch`,
//! minutes) are binaries of their own: tests/serverless_loop.rs and tests/readme.rs.

mod api_keys;
mod crash;
mod dependencies;
mod events;
mod export;
mod features_many;
mod generate;
mod ingest_json;
mod report;
mod serve;
mod test_targets;
mod training;
mod vendor_golden;

/// The `medrec` binary cargo built for these tests.
fn medrec() -> medrec_testkit::Medrec<'static> {
    medrec_testkit::Medrec::new(env!("CARGO_BIN_EXE_medrec"))
}
