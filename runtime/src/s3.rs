//! The sync's S3 staging on `aws-sdk-s3`: multipart upload, put, get (streamed), head, list,
//! delete and abort of unfinished uploads, each retried here with our backoff.
//!
//! Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (optional `AWS_SESSION_TOKEN`)
//! when set; otherwise the AWS default chain (profile, web identity, ECS, EC2 instance role).
//! Region from `AWS_REGION` / `AWS_DEFAULT_REGION` (default `us-east-1`). `STIR_S3_ENDPOINT`
//! points at an S3-compatible store with path-style addressing (SeaweedFS, MinIO).
//!
//! Invariant: no secret is ever part of a URL, an object key, a log line or an error message:
//! errors show the operation, the endpoint, bucket and key, and S3's own code and message.

use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tracing::warn;

use crate::config::{error_causes, redact_url};

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// Last-modified time, seconds since the epoch.
    pub modified: i64,
}

/// What S3 said, or why it could not be reached.
#[derive(Debug, Clone, thiserror::Error)]
pub enum S3Error {
    #[error("{op} `{target}`: cannot reach {endpoint} after {attempts} attempts: {reason}")]
    Unreachable {
        op: &'static str,
        target: String,
        endpoint: String,
        attempts: u32,
        reason: String,
    },
    #[error("{op} `{target}`: HTTP {status}: {message}")]
    Status {
        op: &'static str,
        target: String,
        status: u16,
        message: String,
    },
    #[error("{op} `{target}`: {message}")]
    Other {
        op: &'static str,
        target: String,
        message: String,
    },
}

/// Where and as whom to talk to S3.
#[derive(Clone)]
pub struct S3Config {
    /// `http(s)://host[:port]` without a trailing `/`; `None`: AWS's regional endpoint.
    pub endpoint: Option<String>,
    pub region: String,
    /// Keys from the environment; `None`: the AWS default credentials chain.
    pub keys: Option<(String, String, Option<String>)>,
    /// Attempts per request (connection errors, timeouts, 5xx and 429 are retried).
    pub attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff: Duration,
    /// Per-attempt timeout (a part upload included).
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("region", &self.region)
            .field(
                "keys",
                &if self.keys.is_some() {
                    "*** (environment)"
                } else {
                    "default chain"
                },
            )
            .finish()
    }
}

impl S3Config {
    /// From `STIR_S3_ENDPOINT` (given) and the AWS variables read through `get`.
    pub fn from_env_with(endpoint: Option<&str>, get: &dyn Fn(&str) -> Option<String>) -> S3Config {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let keys = match (
            non_empty("AWS_ACCESS_KEY_ID"),
            non_empty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(a), Some(s)) => Some((a, s, non_empty("AWS_SESSION_TOKEN"))),
            _ => None,
        };
        S3Config {
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            region: non_empty("AWS_REGION")
                .or_else(|| non_empty("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            keys,
            attempts: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(300),
        }
    }
}

/// One part of a multipart upload, as `complete` needs it.
#[derive(Debug, Clone)]
pub struct Part {
    pub number: u32,
    pub etag: String,
}

/// An unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub upload_id: String,
}

/// A cheap-to-clone S3 client for one bucket.
#[derive(Clone)]
pub struct S3 {
    client: aws_sdk_s3::Client,
    bucket: String,
    endpoint: String,
    attempts: u32,
    backoff: Duration,
}

/// S3's own type for untyped objects. Sent explicitly because some stores (SeaweedFS) otherwise
/// sniff "text/plain" and gzip every part on the way in.
const CONTENT_TYPE: &str = "binary/octet-stream";

/// A failed attempt: retry it or give up.
enum Attempt {
    Retry(String),
    Fatal(S3Error),
}

impl S3 {
    /// A client for `bucket`; with no keys in `config`, credentials come from the AWS default
    /// chain (resolved on the first request).
    pub async fn new(config: S3Config, bucket: &str) -> S3 {
        let mut b = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            // Retries are ours (below), with the runtime's attempts and backoff.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(config.timeout)
                    .build(),
            )
            // COPY paces the download; a pause there is not a stalled server.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            // The staged file carries its own checksum (LZ4 frame) and the row-count guard;
            // S3-compatible stores differ in their support of the newer checksum trailers.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(e) = &config.endpoint {
            b = b.endpoint_url(e).force_path_style(true);
        }
        match &config.keys {
            Some((access, secret, token)) => {
                b = b.credentials_provider(Credentials::new(
                    access,
                    secret,
                    token.clone(),
                    None,
                    "environment",
                ));
            }
            None => {
                let chain =
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .region(Region::new(config.region.clone()))
                        .build()
                        .await;
                b = b.credentials_provider(chain);
            }
        }
        S3 {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            bucket: bucket.to_string(),
            endpoint: redact_url(
                config
                    .endpoint
                    .as_deref()
                    .unwrap_or(&format!("https://s3.{}.amazonaws.com", config.region)),
            ),
            attempts: config.attempts.max(1),
            backoff: config.backoff,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Start a multipart upload; answers its upload id.
    pub async fn create_multipart(&self, key: &str) -> Result<String, S3Error> {
        let op = "create multipart upload";
        let out = self
            .retry(op, key, || {
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(CONTENT_TYPE)
                    .send()
            })
            .await?;
        out.upload_id
            .ok_or_else(|| self.other(op, key, "no UploadId in the answer"))
    }

    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> Result<Part, S3Error> {
        let op = "upload part";
        let out = self
            .retry(op, key, || {
                self.client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number as i32)
                    .body(ByteStream::from(data.clone()))
                    .customize()
                    .mutate_request(|r| {
                        r.headers_mut().insert("content-type", CONTENT_TYPE);
                    })
                    .send()
            })
            .await?;
        let etag = out
            .e_tag
            .ok_or_else(|| self.other(op, key, &format!("no ETag for part {number}")))?;
        Ok(Part { number, etag })
    }

    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[Part],
    ) -> Result<(), S3Error> {
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number as i32)
                            .e_tag(&p.etag)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        self.retry("complete multipart upload", key, || {
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(done.clone())
                .send()
        })
        .await
        .map(|_| ())
    }

    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        self.retry("abort multipart upload", key, || {
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
        })
        .await
        .map(|_| ())
    }

    /// Unfinished multipart uploads whose key starts with `prefix` (first 1000).
    pub async fn list_multipart(&self, prefix: &str) -> Result<Vec<Upload>, S3Error> {
        let shown = format!("{prefix}*");
        let out = self
            .retry("list multipart uploads", &shown, || {
                self.client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .send()
            })
            .await?;
        Ok(out
            .uploads()
            .iter()
            .filter_map(|u| match (u.key(), u.upload_id()) {
                (Some(k), Some(id)) if k.starts_with(prefix) => Some(Upload {
                    key: k.to_string(),
                    upload_id: id.to_string(),
                }),
                _ => None,
            })
            .collect())
    }

    /// Objects whose key starts with `prefix`, every page: key and last-modified (epoch seconds).
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<Listed>, S3Error> {
        let shown = format!("{prefix}*");
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .retry("list objects", &shown, || {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send()
                })
                .await?;
            found.extend(out.contents().iter().filter_map(|o| {
                o.key().map(|k| Listed {
                    key: k.to_string(),
                    modified: o.last_modified().map_or(0, |t| t.secs()),
                })
            }));
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return Ok(found),
            }
        }
    }

    pub async fn put_object(&self, key: &str, data: Bytes) -> Result<(), S3Error> {
        self.retry("put object", key, || {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(CONTENT_TYPE)
                .body(ByteStream::from(data.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    /// The object's bytes as a stream (read it with [`Object::chunk`]).
    pub async fn get_object(&self, key: &str) -> Result<Object, S3Error> {
        let out = self
            .retry("get object", key, || {
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
            })
            .await?;
        Ok(Object {
            body: out.body,
            target: self.target(key),
        })
    }

    /// The object's size, or `None` when it does not exist.
    pub async fn head_object(&self, key: &str) -> Result<Option<u64>, S3Error> {
        match self
            .retry("head object", key, || {
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
            })
            .await
        {
            Ok(out) => Ok(out.content_length.map(|n| n.max(0) as u64)),
            Err(S3Error::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn delete_object(&self, key: &str) -> Result<(), S3Error> {
        self.retry("delete object", key, || {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
        })
        .await
        .map(|_| ())
    }

    fn target(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    fn other(&self, op: &'static str, key: &str, message: &str) -> S3Error {
        S3Error::Other {
            op,
            target: self.target(key),
            message: message.to_string(),
        }
    }

    /// Send one request, retrying connection errors, timeouts, 5xx and 429 with a doubling
    /// backoff; other answers fail at once.
    async fn retry<T, E, F, Fut>(&self, op: &'static str, key: &str, send: F) -> Result<T, S3Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
            Output = Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
        >,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            match send().await {
                Ok(out) => return Ok(out),
                Err(e) => match self.classify(op, key, e) {
                    Attempt::Fatal(e) => return Err(e),
                    Attempt::Retry(reason) => last = reason,
                },
            }
            if attempt < self.attempts {
                warn!(op, target = %self.target(key), attempt, error = %last, "S3 request failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(S3Error::Unreachable {
            op,
            target: self.target(key),
            endpoint: self.endpoint.clone(),
            attempts: self.attempts,
            reason: last,
        })
    }

    fn classify<E>(
        &self,
        op: &'static str,
        key: &str,
        e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Attempt
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let message = match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => match status {
                Some(404) => "not found".to_string(),
                _ => error_causes(&e),
            },
        };
        match status {
            Some(s) if s >= 500 || s == 429 => Attempt::Retry(format!("HTTP {s}: {message}")),
            Some(s) => Attempt::Fatal(S3Error::Status {
                op,
                target: self.target(key),
                status: s,
                message,
            }),
            // No answer. Connection refused or reset, DNS and timeouts are retried; no
            // credentials or a request that cannot be built are not.
            None => match &e {
                SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
                    Attempt::Retry(message)
                }
                SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Attempt::Retry(message),
                _ => Attempt::Fatal(S3Error::Other {
                    op,
                    target: self.target(key),
                    message: if message.contains("no credentials") {
                        format!(
                            "{message}\nhelp: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                             or run the runtime with an AWS role (instance profile, ECS task role, \
                             web identity)"
                        )
                    } else {
                        message
                    },
                }),
            },
        }
    }
}

/// A streamed object body.
pub struct Object {
    body: ByteStream,
    target: String,
}

impl Object {
    /// The next chunk, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        match self.body.next().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => Err(S3Error::Other {
                op: "read object",
                target: self.target.clone(),
                message: error_causes(&e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_or_the_default_chain() {
        let get = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIDSECRET".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("verysecret".to_string()),
            "AWS_REGION" => Some("eu-west-1".to_string()),
            _ => None,
        };
        let c = S3Config::from_env_with(Some("http://127.0.0.1:1/"), &get);
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(c.region, "eu-west-1");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("AKIDSECRET") && !shown.contains("verysecret"),
            "{shown}"
        );
        let none = S3Config::from_env_with(None, &|_| None);
        assert!(none.keys.is_none(), "no keys: the AWS default chain");
        assert_eq!(none.region, "us-east-1");
    }
}
