//! The bucket as the export function's sink: the Parquet file streamed from disk, the manifest
//! and error report as JSON, encrypted by the bucket's default key.

use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use medrec_pipeline::{ExportSink, PipelineError};

use crate::s3_source::split;

pub struct S3Exports {
    s3: aws_sdk_s3::Client,
}

impl S3Exports {
    pub fn new(s3: aws_sdk_s3::Client) -> S3Exports {
        S3Exports { s3 }
    }
}

impl S3Exports {
    async fn put_body(
        &self,
        name: &str,
        body: ByteStream,
        content_type: &str,
    ) -> Result<(), PipelineError> {
        let (bucket, key) = split(name)?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| PipelineError::transient(name, "writing to S3", e))?;
        Ok(())
    }
}

impl ExportSink for S3Exports {
    async fn put_file(
        &self,
        name: &str,
        path: &std::path::Path,
        content_type: &str,
    ) -> Result<(), PipelineError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| PipelineError::transient(name, "reading the export", e))?;
        self.put_body(name, body, content_type).await
    }

    async fn put(
        &self,
        name: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), PipelineError> {
        self.put_body(name, ByteStream::from(body), content_type)
            .await
    }

    /// Looks first: in a versioned bucket a delete of a missing key would still add a marker.
    async fn remove(&self, name: &str) -> Result<(), PipelineError> {
        let (bucket, key) = split(name)?;
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => {}
            Err(error)
                if matches!(error.as_service_error(), Some(HeadObjectError::NotFound(_)))
                    || error.raw_response().map(|r| r.status().as_u16()) == Some(404) =>
            {
                return Ok(());
            }
            Err(error) => return Err(PipelineError::transient(name, "looking in S3", error)),
        }
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| PipelineError::transient(name, "removing from S3", e))?;
        Ok(())
    }
}
