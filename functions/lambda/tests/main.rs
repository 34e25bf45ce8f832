//! medrec-lambda's integration tests in one binary (one link step instead of one per file): each
//! file is a module. Tests of all of them run in parallel threads of this process, each on its
//! own database and ports; `watch` runs `cargo lambda watch` in its own process group.

mod handlers;
mod objects;
mod watch;
