//! The parts of a gateway built from its config that need more than a constructor call:
//! telemetry (metrics + access log + compiled CEL fields), rate limits, listener TLS.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use super::Options;
use crate::accesslog::AccessLog;
use crate::config::{Config, TlsConfig};
use crate::expr::Expr;
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::ratelimit::local::{LocalLimiter, SystemClock};
use crate::ratelimit::RateLimiter;
use crate::telemetry::Telemetry;

pub(super) fn build_telemetry(config: &Config, options: Options) -> Result<Telemetry, String> {
    let fields = &config.config.metrics.fields.add;
    let metric_fields = fields
        .iter()
        .map(|(name, source)| {
            Expr::compile(source).map_err(|e| format!("config.metrics.fields.add.{name}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metrics = Metrics::new(fields.keys().cloned().collect());
    let log = AccessLog::new(&config.config.logging, options.log_format, options.log_sink)
        .map_err(|e| format!("config.logging: {e}"))?;
    let max_label_values = config.config.metrics.max_label_values;
    Ok(Telemetry::new(
        metrics,
        log,
        metric_fields,
        max_label_values,
    ))
}

pub(super) fn build_limits(config: &Config) -> Result<RateLimits, String> {
    let clock = Arc::new(SystemClock::new());
    let limiter: Arc<dyn RateLimiter> = Arc::new(LocalLimiter::new(clock));
    let limits = RateLimits::new(&config.llm.policies.local_rate_limit, limiter)?;
    let key_token_limits = config.llm.policies.api_key.as_ref().is_some_and(|policy| {
        policy
            .keys
            .iter()
            .any(|k| k.limits.tpm.is_some() || k.limits.tpd.is_some())
    });
    if limits.has_token_rules() || key_token_limits || config.config.database.is_some() {
        // Loading the tokenizer takes a moment: not on the first limited request.
        crate::tokens::warm_up();
    }
    Ok(limits)
}

pub(super) fn load_tls(tls: &TlsConfig) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("llm.tls.cert: cannot read {:?}: {e}", tls.cert))?;
    if certs.is_empty() {
        return Err(format!("llm.tls.cert: no certificate in {:?}", tls.cert));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("llm.tls.key: cannot read {:?}: {e}", tls.key))?;
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("llm.tls: {e}"))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// rustls needs one process-wide crypto provider; a second install is harmless.
pub(super) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
