//! medrec-store's integration tests in one binary (one link step instead of one per file): each
//! file is a module. Tests of all of them run in parallel threads of this process, each on its
//! own database (`medrec_testkit::TestDb`).

mod bulk;
mod clean_columns;
mod features;
mod features_owed;
mod load;
mod migrate;
mod person;
mod roles;
mod training;
mod vendor;
