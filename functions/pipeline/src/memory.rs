//! In-memory adapters of the ports: what the tests of every caller drive the pipeline with.
//! The `medrec` command also gathers its announcements in a [`RecordingSink`], to recompute them
//! once after the batch.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Mutex;

use crate::{ExportSink, ObjectRef, ObjectSource, Opened, PersonsSink, PipelineError};

/// Objects by name, each at one version, as a bucket holds them.
#[derive(Default)]
pub struct MemorySource {
    objects: Mutex<HashMap<String, Stored>>,
}

enum Stored {
    Object {
        version: Option<String>,
        bytes: Vec<u8>,
    },
    /// Every open fails as a network or service error would.
    Unreachable,
}

impl MemorySource {
    pub fn new() -> MemorySource {
        MemorySource::default()
    }

    /// Stores (or overwrites) `name` at `version`.
    pub fn put(&self, name: &str, version: Option<&str>, bytes: impl Into<Vec<u8>>) {
        self.objects.lock().unwrap().insert(
            name.to_owned(),
            Stored::Object {
                version: version.map(str::to_owned),
                bytes: bytes.into(),
            },
        );
    }

    /// Makes every read of `name` fail (a transient failure of the source).
    pub fn break_object(&self, name: &str) {
        self.objects
            .lock()
            .unwrap()
            .insert(name.to_owned(), Stored::Unreachable);
    }

    pub fn delete(&self, name: &str) {
        self.objects.lock().unwrap().remove(name);
    }
}

impl ObjectSource for MemorySource {
    async fn open(&self, object: &ObjectRef) -> Result<Option<Opened>, PipelineError> {
        let objects = self.objects.lock().unwrap();
        match objects.get(&object.name) {
            None => Ok(None),
            Some(Stored::Unreachable) => Err(PipelineError::transient(
                &object.name,
                "reading the object",
                anyhow::anyhow!("the source is unreachable"),
            )),
            // A conditional read of another version finds it overwritten (S3's 412).
            Some(Stored::Object { version, .. })
                if object.version.is_some() && object.version != *version =>
            {
                Ok(None)
            }
            Some(Stored::Object { bytes, .. }) => Ok(Some(Opened {
                size: Some(bytes.len() as u64),
                body: Box::new(Cursor::new(bytes.clone())),
            })),
        }
    }
}

/// Remembers every announcement, in order; can be told to fail.
#[derive(Default)]
pub struct RecordingSink {
    announced: Mutex<Vec<Vec<i64>>>,
    failing: std::sync::atomic::AtomicBool,
}

impl RecordingSink {
    pub fn new() -> RecordingSink {
        RecordingSink::default()
    }

    /// Each announcement's persons, in order.
    pub fn announcements(&self) -> Vec<Vec<i64>> {
        self.announced.lock().unwrap().clone()
    }

    /// Every person announced, sorted and deduplicated.
    pub fn persons(&self) -> Vec<i64> {
        let mut all: Vec<i64> = self.announced.lock().unwrap().concat();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Makes the following announcements fail (`true`) or succeed again.
    pub fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }
}

impl PersonsSink for RecordingSink {
    async fn announce(&self, persons: &[i64]) -> Result<(), PipelineError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PipelineError::transient(
                "persons",
                "announcing",
                anyhow::anyhow!("the sink is unreachable"),
            ));
        }
        self.announced.lock().unwrap().push(persons.to_vec());
        Ok(())
    }
}

/// Delivered exports by name, as a bucket holds them; can be told to fail.
#[derive(Default)]
pub struct MemoryExports {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemoryExports {
    pub fn new() -> MemoryExports {
        MemoryExports::default()
    }

    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(name).cloned()
    }

    /// Every name held, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.objects.lock().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    /// Makes the following deliveries fail (`true`) or succeed again.
    pub fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    fn check(&self, name: &str) -> Result<(), PipelineError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PipelineError::transient(
                name,
                "delivering the export",
                anyhow::anyhow!("the bucket is unreachable"),
            ));
        }
        Ok(())
    }
}

impl ExportSink for MemoryExports {
    async fn put_file(
        &self,
        name: &str,
        path: &std::path::Path,
        _content_type: &str,
    ) -> Result<(), PipelineError> {
        self.check(name)?;
        let bytes = std::fs::read(path)
            .map_err(|e| PipelineError::transient(name, "reading the export", e))?;
        self.objects.lock().unwrap().insert(name.to_owned(), bytes);
        Ok(())
    }

    async fn put(
        &self,
        name: &str,
        body: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), PipelineError> {
        self.check(name)?;
        self.objects.lock().unwrap().insert(name.to_owned(), body);
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<(), PipelineError> {
        self.check(name)?;
        self.objects.lock().unwrap().remove(name);
        Ok(())
    }
}
