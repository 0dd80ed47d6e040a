//! Without keys in the environment the S3 client asks the AWS default chain; when that finds
//! nothing, a sync's S3 request fails at once with a clear message, not as "unreachable" after
//! retries. (Its own process: it clears the AWS variables.)

use std::time::{Duration, Instant};

use stir_runtime::s3::{S3Config, S3};

#[tokio::test]
async fn no_credentials_anywhere_fails_fast_and_says_how_to_fix_it() {
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(k);
    }
    // No instance metadata service here; do not wait for one.
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/stir-test-aws-config");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/stir-test-aws-credentials",
    );
    let mut config = S3Config::from_env_with(Some("http://127.0.0.1:1"), &|_| None);
    assert!(config.keys.is_none());
    config.attempts = 4;
    config.backoff = Duration::from_millis(300);
    let s3 = S3::new(config, "stir-test").await;
    let t = Instant::now();
    let err = s3.head_object("x.tsv").await.unwrap_err().to_string();
    assert!(err.contains("no credentials"), "{err}");
    assert!(err.contains("help: export AWS_ACCESS_KEY_ID"), "{err}");
    assert!(!err.contains("cannot reach"), "{err}");
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "not retried: {:?}",
        t.elapsed()
    );
}
