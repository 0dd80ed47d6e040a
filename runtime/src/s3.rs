//! A small S3 client for the sync's staging files: multipart upload, put, get (streamed), list
//! and abort of unfinished uploads. Requests are signed with AWS Signature V4 over `reqwest`.
//!
//! Credentials come from the standard variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! optional `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`); the endpoint from
//! `STIR_S3_ENDPOINT` (path-style addressing) or AWS's regional endpoint. Why not aws-sdk-s3:
//! six operations do not need its build cost (minutes on the 2-core machines), and this keeps
//! one HTTP stack (reqwest/rustls) in the runtime. What it does not do: instance-profile / SSO
//! credentials (export the variables, e.g. from `aws configure export-credentials`).
//!
//! Invariant: no secret is ever part of a URL, an object key, a log line or an error message:
//! the secret key only enters the HMAC, and errors show the endpoint, bucket and key.

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::config::redact_url;

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
    #[error("S3 credentials are not set: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    NoCredentials,
}

/// Where and as whom to talk to S3.
#[derive(Clone)]
pub struct S3Config {
    /// `http(s)://host[:port]` without a trailing `/`.
    pub endpoint: String,
    /// Path-style (`endpoint/bucket/key`) rather than virtual-host addressing.
    pub path_style: bool,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    /// Attempts per request (connection errors, timeouts, 5xx and 429 are retried).
    pub attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff: Duration,
    /// Per-request timeout (a part upload included).
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &redact_url(&self.endpoint))
            .field("path_style", &self.path_style)
            .field("region", &self.region)
            .field("access_key", &"***")
            .field("secret_key", &"***")
            .finish()
    }
}

impl S3Config {
    /// From `STIR_S3_ENDPOINT` (given) and the AWS variables read through `get`.
    pub fn from_env_with(
        endpoint: Option<&str>,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<S3Config, S3Error> {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let access_key = non_empty("AWS_ACCESS_KEY_ID").ok_or(S3Error::NoCredentials)?;
        let secret_key = non_empty("AWS_SECRET_ACCESS_KEY").ok_or(S3Error::NoCredentials)?;
        let region = non_empty("AWS_REGION")
            .or_else(|| non_empty("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let (endpoint, path_style) = match endpoint {
            Some(e) => (e.trim_end_matches('/').to_string(), true),
            None => (format!("https://s3.{region}.amazonaws.com"), false),
        };
        Ok(S3Config {
            endpoint,
            path_style,
            region,
            access_key,
            secret_key,
            session_token: non_empty("AWS_SESSION_TOKEN"),
            attempts: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(300),
        })
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
    config: std::sync::Arc<S3Config>,
    bucket: String,
    http: reqwest::Client,
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (object keys in paths).
const PATH: &AsciiSet = &STRICT.remove(b'/');

impl S3 {
    pub fn new(config: S3Config, bucket: &str) -> S3 {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        S3 {
            config: std::sync::Arc::new(config),
            bucket: bucket.to_string(),
            http,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Start a multipart upload; answers its upload id.
    pub async fn create_multipart(&self, key: &str) -> Result<String, S3Error> {
        let op = "create multipart upload";
        let body = self
            .send(op, "POST", key, &[("uploads", "")], Bytes::new())
            .await?
            .text()
            .await
            .map_err(|e| self.other(op, key, e))?;
        xml_values(&body, "UploadId")
            .into_iter()
            .next()
            .ok_or_else(|| S3Error::Other {
                op,
                target: self.target(key),
                message: format!("no UploadId in the answer: {}", excerpt(&body)),
            })
    }

    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> Result<Part, S3Error> {
        let op = "upload part";
        let n = number.to_string();
        let resp = self
            .send(
                op,
                "PUT",
                key,
                &[("partNumber", &n), ("uploadId", upload_id)],
                data,
            )
            .await?;
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| S3Error::Other {
                op,
                target: self.target(key),
                message: format!("no ETag for part {number}"),
            })?;
        Ok(Part { number, etag })
    }

    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[Part],
    ) -> Result<(), S3Error> {
        let op = "complete multipart upload";
        let mut xml = String::from("<CompleteMultipartUpload>");
        for p in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                p.number,
                xml_escape(&p.etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let body = self
            .send(
                op,
                "POST",
                key,
                &[("uploadId", upload_id)],
                Bytes::from(xml),
            )
            .await?
            .text()
            .await
            .map_err(|e| self.other(op, key, e))?;
        // S3 may answer 200 and still fail, with an <Error> document.
        if body.contains("<Error>") {
            return Err(S3Error::Other {
                op,
                target: self.target(key),
                message: error_message(&body),
            });
        }
        Ok(())
    }

    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        self.send(
            "abort multipart upload",
            "DELETE",
            key,
            &[("uploadId", upload_id)],
            Bytes::new(),
        )
        .await
        .map(|_| ())
    }

    /// Unfinished multipart uploads whose key starts with `prefix` (first 1000).
    pub async fn list_multipart(&self, prefix: &str) -> Result<Vec<Upload>, S3Error> {
        let op = "list multipart uploads";
        let shown = format!("{prefix}*");
        let body = self
            .send(
                op,
                "GET",
                "",
                &[("prefix", prefix), ("uploads", "")],
                Bytes::new(),
            )
            .await
            .map_err(|e| match e {
                S3Error::Unreachable {
                    op,
                    endpoint,
                    attempts,
                    reason,
                    ..
                } => S3Error::Unreachable {
                    op,
                    target: self.target(&shown),
                    endpoint,
                    attempts,
                    reason,
                },
                S3Error::Status {
                    op,
                    status,
                    message,
                    ..
                } => S3Error::Status {
                    op,
                    target: self.target(&shown),
                    status,
                    message,
                },
                e => e,
            })?
            .text()
            .await
            .map_err(|e| self.other(op, prefix, e))?;
        let mut out = Vec::new();
        for block in xml_values(&body, "Upload") {
            let key = xml_values(&block, "Key").into_iter().next();
            let id = xml_values(&block, "UploadId").into_iter().next();
            if let (Some(key), Some(upload_id)) = (key, id) {
                if key.starts_with(prefix) {
                    out.push(Upload { key, upload_id });
                }
            }
        }
        Ok(out)
    }

    pub async fn put_object(&self, key: &str, data: Bytes) -> Result<(), S3Error> {
        self.send("put object", "PUT", key, &[], data)
            .await
            .map(|_| ())
    }

    /// The object's bytes as a streaming response (read it with `chunk()`).
    pub async fn get_object(&self, key: &str) -> Result<reqwest::Response, S3Error> {
        self.send("get object", "GET", key, &[], Bytes::new()).await
    }

    /// The object's size, or `None` when it does not exist.
    pub async fn head_object(&self, key: &str) -> Result<Option<u64>, S3Error> {
        match self
            .send("head object", "HEAD", key, &[], Bytes::new())
            .await
        {
            Ok(r) => Ok(r
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            Err(S3Error::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn delete_object(&self, key: &str) -> Result<(), S3Error> {
        self.send("delete object", "DELETE", key, &[], Bytes::new())
            .await
            .map(|_| ())
    }

    fn target(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    fn other(&self, op: &'static str, key: &str, e: reqwest::Error) -> S3Error {
        S3Error::Other {
            op,
            target: self.target(key),
            message: error_chain(e),
        }
    }

    /// Send one signed request, retrying connection errors, timeouts, 5xx and 429.
    async fn send(
        &self,
        op: &'static str,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<reqwest::Response, S3Error> {
        let c = &self.config;
        let mut delay = c.backoff;
        let mut last = String::new();
        for attempt in 1..=c.attempts.max(1) {
            let req = self.signed(method, key, query, &body);
            match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    let message = if text.is_empty() {
                        "no message".to_string()
                    } else {
                        error_message(&text)
                    };
                    if status < 500 && status != 429 {
                        return Err(S3Error::Status {
                            op,
                            target: self.target(key),
                            status,
                            message,
                        });
                    }
                    last = format!("HTTP {status}: {message}");
                }
                Err(e) => last = error_chain(e),
            }
            if attempt < c.attempts {
                warn!(op, target = %self.target(key), attempt, error = %last, "S3 request failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(S3Error::Unreachable {
            op,
            target: self.target(key),
            endpoint: redact_url(&c.endpoint),
            attempts: c.attempts.max(1),
            reason: last,
        })
    }

    fn signed(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        body: &Bytes,
    ) -> reqwest::RequestBuilder {
        let c = &self.config;
        let (scheme, host) = match c.endpoint.split_once("://") {
            Some((s, h)) => (s, h),
            None => ("https", c.endpoint.as_str()),
        };
        let (host, path) = if c.path_style {
            let mut p = format!("/{}", self.bucket);
            if !key.is_empty() {
                p.push('/');
                p.push_str(&utf8_percent_encode(key, PATH).to_string());
            }
            (host.to_string(), p)
        } else {
            (
                format!("{}.{host}", self.bucket),
                format!("/{}", utf8_percent_encode(key, PATH)),
            )
        };
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| {
                (
                    utf8_percent_encode(k, STRICT).to_string(),
                    utf8_percent_encode(v, STRICT).to_string(),
                )
            })
            .collect();
        pairs.sort();
        let canonical_query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let now = chrono::Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let date = now.format("%Y%m%d").to_string();
        let payload_hash = hex(&Sha256::digest(body));
        let mut headers: Vec<(&str, String)> = vec![
            ("host", host.clone()),
            ("x-amz-content-sha256", payload_hash.clone()),
            ("x-amz-date", amz_date.clone()),
        ];
        if let Some(t) = &c.session_token {
            headers.push(("x-amz-security-token", t.clone()));
        }
        headers.sort();
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let signed_headers = headers
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(";");
        let canonical_request = format!(
            "{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
        );
        let scope = format!("{date}/{}/s3/aws4_request", c.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let k_date = hmac(format!("AWS4{}", c.secret_key).as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, c.region.as_bytes());
        let k_service = hmac(&k_region, b"s3");
        let k_signing = hmac(&k_service, b"aws4_request");
        let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            c.access_key
        );
        let url = if canonical_query.is_empty() {
            format!("{scheme}://{host}{path}")
        } else {
            format!("{scheme}://{host}{path}?{canonical_query}")
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let opaque_body = method == reqwest::Method::PUT || method == reqwest::Method::POST;
        let mut req = self
            .http
            .request(method, url)
            .timeout(c.timeout)
            .header("authorization", authorization);
        for (k, v) in headers {
            if k != "host" {
                req = req.header(k, v);
            }
        }
        if opaque_body {
            // S3's own default type for untyped objects. Sent explicitly because some stores
            // (SeaweedFS) otherwise sniff "text/plain" and gzip every part on the way in.
            req = req.header("content-type", "binary/octet-stream");
        }
        req.body(body.clone())
    }
}

/// A reqwest error with its causes (`error sending request: … connection refused`), URL-free.
pub fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut m = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let t = s.to_string();
        if !m.contains(&t) {
            m.push_str(&format!(": {t}"));
        }
        src = s.source();
    }
    redact_url(&m)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of every `<tag>…</tag>` in `xml`, entity-decoded (no nesting of the same tag).
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        out.push(xml_unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `Code: Message` of an S3 error document, or an excerpt of the text.
fn error_message(body: &str) -> String {
    let code = xml_values(body, "Code").into_iter().next();
    let message = xml_values(body, "Message").into_iter().next();
    match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => excerpt(body),
    }
}

fn excerpt(s: &str) -> String {
    s.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_xml() {
        let xml = "<ListMultipartUploadsResult><Upload><Key>a/b&amp;c.tsv</Key><UploadId>u1</UploadId></Upload><Upload><Key>a/d.tsv</Key><UploadId>u2</UploadId></Upload></ListMultipartUploadsResult>";
        let ups: Vec<(String, String)> = xml_values(xml, "Upload")
            .iter()
            .map(|b| {
                (
                    xml_values(b, "Key")[0].clone(),
                    xml_values(b, "UploadId")[0].clone(),
                )
            })
            .collect();
        assert_eq!(
            ups,
            vec![
                ("a/b&c.tsv".to_string(), "u1".to_string()),
                ("a/d.tsv".to_string(), "u2".to_string())
            ]
        );
        assert_eq!(
            error_message("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"),
            "NoSuchKey: gone"
        );
    }

    #[test]
    fn signing_key_matches_the_aws_example() {
        // From the AWS SigV4 documentation ("Examples of how to derive a signing key").
        let k_date = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        let k_region = hmac(&k_date, b"us-east-1");
        let k_service = hmac(&k_region, b"iam");
        let k_signing = hmac(&k_service, b"aws4_request");
        assert_eq!(
            hex(&k_signing),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn debug_hides_keys() {
        let get = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIDSECRET".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("verysecret".to_string()),
            _ => None,
        };
        let c = S3Config::from_env_with(Some("http://127.0.0.1:1/"), &get).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("AKIDSECRET") && !shown.contains("verysecret"),
            "{shown}"
        );
        assert_eq!(c.endpoint, "http://127.0.0.1:1");
        assert_eq!(c.region, "us-east-1");
    }
}
