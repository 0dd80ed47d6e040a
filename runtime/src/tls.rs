//! TLS for the runtime's connections, on rustls with the aws-lc-rs provider (the same stack as
//! S3 and Slack): ClickHouse over `https://` (trusting `STIR_CLICKHOUSE_CA`, or the system's
//! CAs) and PostgreSQL's `sslmode`/`sslrootcert`, read from the connection string the way libpq
//! reads them. Every PostgreSQL connection of the runtime is opened through [`postgres`].
//!
//! PostgreSQL's modes (docs/operations.md, "TLS"):
//! - `disable`: plain text.
//! - `prefer` (the default, as in libpq): TLS when the server offers it, plain text when it
//!   does not; the certificate is checked only when `sslrootcert` is given.
//! - `require`: TLS or no connection; the certificate is checked only when `sslrootcert` is
//!   given (then as `verify-ca`, as libpq does).
//! - `verify-ca`: TLS, the certificate signed by a trusted CA (`sslrootcert`, or the system's
//!   CAs without it); the host name is not checked.
//! - `verify-full`: `verify-ca` and the certificate names the host connected to.
//!
//! `allow` (plain text first) is refused: it never protects anything.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls::{Error as TlsError, SignatureScheme};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::conninfo::{key_value_items, KvItem};

/// A CA file is a few certificates; a system bundle is ~200 KiB.
const CA_FILE_LIMIT: u64 = 4 << 20;

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("the TLS library refuses its defaults: {e}"))
}

/// The system's trusted CAs (`/etc/ssl/certs`; `SSL_CERT_FILE`/`SSL_CERT_DIR` replace them),
/// read once.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no system CA certificates were found{why}: install the ca-certificates \
                     package, or name the CA file to trust"
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// The certificates of a PEM file, to trust as CAs.
pub fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let bytes = stir_plan::file::read_file(path, CA_FILE_LIMIT)
        .map_err(|e| format!("cannot read the CA file {shown}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("the CA file {shown} is not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the CA file {shown} holds a bad certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "the CA file {shown} holds no certificate (want PEM: -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(roots)
}

/// Where trusted CAs come from.
fn roots_from(ca: Option<&Path>) -> Result<Arc<RootCertStore>, String> {
    match ca {
        Some(path) => read_roots(path).map(Arc::new),
        None => system_roots(),
    }
}

fn webpki(roots: Arc<RootCertStore>) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| format!("cannot use the trusted CAs: {e}"))
}

// ---------------------------------------------------------------------------- ClickHouse

/// The TLS settings of the ClickHouse client: the server's certificate must chain to the
/// trusted CAs and name the URL's host.
#[derive(Clone)]
pub struct ClickHouseTls {
    pub config: Arc<ClientConfig>,
    /// Where the trusted CAs come from, for messages.
    pub roots: String,
}

impl std::fmt::Debug for ClickHouseTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClickHouseTls(trusting {})", self.roots)
    }
}

/// TLS for `https://` ClickHouse, trusting the CAs of `ca` (PEM), or the system's without it.
pub fn clickhouse_tls(ca: Option<&Path>) -> Result<ClickHouseTls, String> {
    let verifier = webpki(roots_from(ca)?)?;
    let config = builder()?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    Ok(ClickHouseTls {
        config: Arc::new(config),
        roots: ca.map_or("the system's CAs".into(), |p| p.display().to_string()),
    })
}

/// A ClickHouse client over https with `tls` (the crate's own client speaks plain HTTP only).
pub fn clickhouse_https_client(tls: &ClickHouseTls) -> clickhouse::Client {
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    let mut http = HttpConnector::new();
    // As the crate's default client: keepalive, and an idle timeout below ClickHouse's 3 s.
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls.config).clone())
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let client = Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(2))
        .build(https);
    clickhouse::Client::with_http_client(client)
}

/// Whether a ClickHouse URL asks for TLS.
pub fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

// ---------------------------------------------------------------------------- PostgreSQL

/// libpq's `sslmode`, as far as the runtime supports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode `allow` is not supported (it tries plain text first): use \
                            `require`, `verify-ca` or `verify-full`"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "sslmode `{other}` is not one of disable, prefer, require, verify-ca, \
                     verify-full"
                ))
            }
        })
    }
}

/// A PostgreSQL connection as the connection string asks for it: the driver's settings and
/// the TLS connector that honours its `sslmode` and `sslrootcert`.
#[derive(Clone)]
pub struct Postgres {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub sslmode: SslMode,
}

/// The driver half of an open connection (to spawn).
pub type PgConnection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// Read a URL (`postgres://…?sslmode=verify-full&sslrootcert=/ca.pem`) or key=value string.
/// The messages never quote the string (it may hold a password).
pub fn postgres(conn: &str) -> Result<Postgres, String> {
    let (rest, ssl) = split_ssl(conn)?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e: tokio_postgres::Error| {
        // The driver's parse errors name options, never values.
        let m = crate::errors::error_causes(&e);
        if m.contains("unknown option `ssl") {
            format!("{m} (of the ssl options only sslmode and sslrootcert are supported; client certificates are not)")
        } else {
            m
        }
    })?;
    let sslmode = match &ssl.mode {
        Some(m) => SslMode::parse(m)?,
        None => SslMode::Prefer,
    };
    config.ssl_mode(match sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let roots = match (ssl.rootcert.as_deref(), sslmode) {
        (_, SslMode::Disable) => None,
        (Some("system"), _) => Some(system_roots()?),
        (Some(path), _) => Some(Arc::new(
            read_roots(Path::new(path)).map_err(|e| format!("sslrootcert: {e}"))?,
        )),
        (None, SslMode::VerifyCa | SslMode::VerifyFull) => Some(system_roots().map_err(|e| {
            format!(
                "sslmode={}: {e} (sslrootcert=<file>)",
                ssl.mode.as_deref().unwrap_or("")
            )
        })?),
        (None, _) => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        Some(roots) if sslmode == SslMode::VerifyFull => webpki(roots)?,
        roots => Arc::new(Relaxed {
            chain: roots.map(webpki).transpose()?,
            provider: provider(),
        }),
    };
    let tls = builder()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Postgres {
        config,
        tls: MakeRustlsConnect::new(tls),
        sslmode,
    })
}

impl Postgres {
    /// Open a connection; a refusal is explained (see [`connect_message`]).
    pub async fn connect(&self) -> Result<(tokio_postgres::Client, PgConnection), String> {
        self.config
            .connect(self.tls.clone())
            .await
            .map_err(|e| connect_message(&e))
    }
}

/// What a TLS refusal in an error message says about the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProblem {
    /// Not signed by a trusted CA.
    UnknownIssuer,
    /// Does not name the host connected to.
    WrongName,
}

pub fn certificate_problem(message: &str) -> Option<CertProblem> {
    if message.contains("UnknownIssuer") {
        Some(CertProblem::UnknownIssuer)
    } else if message.contains("not valid for name") || message.contains("NotValidForName") {
        Some(CertProblem::WrongName)
    } else {
        None
    }
}

/// A connection error, its causes, and what to do about a TLS refusal.
pub fn connect_message(e: &tokio_postgres::Error) -> String {
    let m = match e.as_db_error() {
        Some(_) => crate::errors::pg_message(e),
        None => crate::errors::error_causes(e),
    };
    let help = match certificate_problem(&m) {
        Some(CertProblem::UnknownIssuer) => {
            "the server's certificate is not signed by a CA the runtime trusts: name the CA's \
             certificate file with sslrootcert=<file>"
        }
        Some(CertProblem::WrongName) => {
            "the server's certificate does not name the host connected to: connect by a name \
             it holds, or use sslmode=verify-ca to check the CA only"
        }
        None if m.contains("server does not support TLS") => {
            "the server has TLS turned off (ssl = off): turn it on, or lower sslmode only on a \
             network you trust"
        }
        None => return m,
    };
    format!("{m} (help: {help})")
}

/// `sslmode` and `sslrootcert` of a connection string (which the driver does not know in
/// full), and the string without them.
#[derive(Debug, Default, PartialEq, Eq)]
struct SslParams {
    mode: Option<String>,
    rootcert: Option<String>,
}

const OURS: [&str; 2] = ["sslmode", "sslrootcert"];

fn split_ssl(conn: &str) -> Result<(String, SslParams), String> {
    let mut ssl = SslParams::default();
    let mut take = |key: &str, value: String| {
        if key == "sslmode" {
            ssl.mode = Some(value);
        } else {
            ssl.rootcert = Some(value);
        }
    };
    let rest = if let Some(scheme_end) = conn.find("://") {
        // As the driver reads a URL: the userinfo ends at the first `@`, the query at `?`.
        let after = scheme_end + 3;
        let creds_end = conn[after..].find('@').map_or(after, |i| after + i + 1);
        let Some(q) = conn[creds_end..].find('?').map(|i| creds_end + i) else {
            return Ok((conn.to_string(), ssl));
        };
        let mut kept = Vec::new();
        for pair in conn[q + 1..].split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_encoding::percent_decode_str(k).decode_utf8_lossy();
            if OURS.contains(&key.as_ref()) {
                let value = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .map_err(|_| format!("`{key}` is not UTF-8 once decoded"))?;
                take(&key, value.into_owned());
            } else {
                kept.push(pair);
            }
        }
        let base = &conn[..q];
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let chars: Vec<char> = conn.chars().collect();
        let mut out = String::new();
        let mut at = 0;
        for KvItem {
            start,
            key,
            value,
            end,
        } in key_value_items(&chars)
        {
            match value {
                Some((vs, ve)) if OURS.contains(&key.as_str()) => {
                    take(&key, unquote(&chars[vs..ve]));
                    out.extend(&chars[at..start]);
                    at = end;
                }
                _ => {}
            }
        }
        out.extend(&chars[at..]);
        out
    };
    Ok((rest, ssl))
}

/// A key=value value as libpq reads it: quotes dropped, `\x` is `x`.
fn unquote(raw: &[char]) -> String {
    let inner = match raw {
        ['\'', inner @ .., '\''] => inner,
        other => other,
    };
    let mut out = String::new();
    let mut it = inner.iter();
    while let Some(&c) = it.next() {
        if c == '\\' {
            if let Some(&n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The modes below `verify-full`. With a CA (`verify-ca`, or `sslrootcert` given) the chain
/// must lead to it but the name in the certificate is not checked; without one (`prefer`,
/// `require`: libpq's meaning) any certificate is taken. Either way the handshake's
/// signatures are checked against the certificate.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // The verifier checks the chain before the name: a name error means the chain passed.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> (String, Option<String>, Option<String>) {
        let (rest, p) = split_ssl(s).unwrap();
        (rest, p.mode, p.rootcert)
    }

    #[test]
    fn ssl_parameters_leave_the_rest_as_written() {
        assert_eq!(
            split("postgres://u:p%3F@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca%20x.pem"),
            (
                "postgres://u:p%3F@h:5432/db?application_name=x".into(),
                Some("verify-full".into()),
                Some("/etc/ca x.pem".into())
            )
        );
        assert_eq!(
            split("postgresql://h/db?sslmode=require"),
            ("postgresql://h/db".into(), Some("require".into()), None)
        );
        assert_eq!(
            split("postgres://u:pw@h/db"),
            ("postgres://u:pw@h/db".into(), None, None)
        );
        assert_eq!(
            split(
                "host=h password='a b\\'c' sslmode = verify-ca sslrootcert='/x/my ca.pem' dbname=d"
            ),
            (
                "host=h password='a b\\'c'   dbname=d".into(),
                Some("verify-ca".into()),
                Some("/x/my ca.pem".into())
            )
        );
    }

    #[test]
    fn modes_are_checked_and_never_quote_the_string() {
        for (conn, want) in [
            (
                "postgres://u:Qz7pw@h/db?sslmode=allow",
                "`allow` is not supported",
            ),
            (
                "postgres://u:Qz7pw@h/db?sslmode=verify_full",
                "not one of disable",
            ),
            (
                "host=h password=Qz7pw sslmode=require sslrootcert=/nonexistent/ca.pem",
                "sslrootcert: cannot read the CA file /nonexistent/ca.pem",
            ),
            ("postgres://u:Qz7pw@h/db?sslcert=/c.pem", "unknown option"),
        ] {
            let err = postgres(conn)
                .err()
                .unwrap_or_else(|| panic!("{conn} accepted"));
            assert!(err.contains(want), "{conn}: {err}");
            assert!(!err.contains("Qz7"), "{err}");
        }
        assert_eq!(postgres("host=h").unwrap().sslmode, SslMode::Prefer);
        assert_eq!(
            postgres("host=h sslmode=disable").unwrap().sslmode,
            SslMode::Disable
        );
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("stir-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let err = clickhouse_tls(Some(&f)).unwrap_err();
        assert!(err.contains("holds no certificate"), "{err}");
        let err = clickhouse_tls(Some(&dir)).unwrap_err();
        assert!(err.contains("cannot read the CA file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
