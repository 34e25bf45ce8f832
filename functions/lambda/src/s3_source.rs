//! S3 as the pipeline's object source: a conditional GET (If-Match the notified ETag), streamed.

use aws_sdk_s3::operation::get_object::GetObjectError;
use medrec_pipeline::{ObjectRef, ObjectSource, Opened, PipelineError};
use tokio_util::io::SyncIoBridge;

pub struct S3Source {
    s3: aws_sdk_s3::Client,
}

impl S3Source {
    pub fn new(s3: aws_sdk_s3::Client) -> S3Source {
        S3Source { s3 }
    }
}

/// `s3://bucket/key` into its bucket and key.
fn bucket_and_key(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix("s3://")?
        .split_once('/')
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
}

/// [`bucket_and_key`], or a permanent failure naming the object.
pub(crate) fn split(name: &str) -> Result<(&str, &str), PipelineError> {
    bucket_and_key(name)
        .ok_or_else(|| PipelineError::permanent(name, "not an s3://bucket/key name"))
}

impl ObjectSource for S3Source {
    async fn open(&self, object: &ObjectRef) -> Result<Option<Opened>, PipelineError> {
        let (bucket, key) = split(&object.name)?;
        let mut request = self.s3.get_object().bucket(bucket).key(key);
        if let Some(etag) = &object.version {
            request = request.if_match(etag);
        }
        match request.send().await {
            Ok(output) => Ok(Some(Opened {
                size: output.content_length().map(|n| n.max(0) as u64),
                body: Box::new(SyncIoBridge::new(output.body.into_async_read())),
            })),
            // Deleted, or overwritten (the ETag no longer matches): the newer object has its own
            // notification.
            Err(error)
                if matches!(error.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                    || error.raw_response().map(|r| r.status().as_u16()) == Some(412) =>
            {
                Ok(None)
            }
            Err(error) => Err(PipelineError::transient(
                &object.name,
                "reading the object from S3",
                error,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_bucket_and_key() {
        assert_eq!(
            bucket_and_key("s3://b/raw/rx/x.csv"),
            Some(("b", "raw/rx/x.csv"))
        );
        for bad in ["s3://b", "s3://b/", "s3:///k", "/tmp/x.csv", "b/k"] {
            assert_eq!(bucket_and_key(bad), None, "{bad}");
        }
    }
}
