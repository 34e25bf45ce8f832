//! medrec-pipeline's integration tests in one binary (one link step instead of one per file):
//! each file is a module.

mod architecture;
mod crash;
mod export;
mod pipeline;
