//! Assembling and running a gateway: [`Gateway::build`] turns a [`Config`] into the runtime state
//! (routes, keys, compiled CEL, TLS, the upstream client, telemetry) — everything that can be wrong
//! in a config fails here, which is what `--validate-only` runs — and [`Gateway::start`] serves it
//! on listeners the caller bound (tests bind `127.0.0.1:0`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::accesslog::{AccessLog, LogSink};
use crate::auth::Authenticator;
use crate::config::{Config, LogFormat, TlsConfig};
use crate::expr::Expr;
use crate::limits::RateLimits;
use crate::ratelimit::local::{LocalLimiter, SystemClock};
use crate::ratelimit::RateLimiter;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::record::ListenerInfo;
use crate::routing::Router;
use crate::server::{self, AsMetrics};
use crate::telemetry::Telemetry;
use crate::upstream;

/// Defaults of interface.md.
pub const DEFAULT_STATS_ADDR: &str = "0.0.0.0:15020";
pub const DEFAULT_READINESS_ADDR: &str = "0.0.0.0:15021";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// How the process around the gateway wants it run.
pub struct Options {
    pub log_sink: LogSink,
    /// `LOG_FORMAT` from the environment, which wins over the config.
    pub log_format: Option<LogFormat>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_sink: LogSink::Stdout,
            log_format: None,
        }
    }
}

/// Sockets to serve on. Side ports are optional (tests may not need them).
pub struct Listeners {
    pub llm: TcpListener,
    pub stats: Option<TcpListener>,
    pub readiness: Option<TcpListener>,
}

impl Listeners {
    /// Binds the configured addresses (`llm.port` on all interfaces, side ports from `config`).
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let llm = bind(
            SocketAddr::from(([0, 0, 0, 0], config.llm.port)),
            "llm.port",
        )
        .await?;
        let stats_addr = config
            .config
            .stats_addr
            .unwrap_or_else(|| parse(DEFAULT_STATS_ADDR));
        let ready_addr = config
            .config
            .readiness_addr
            .unwrap_or_else(|| parse(DEFAULT_READINESS_ADDR));
        Ok(Listeners {
            llm,
            stats: Some(bind(stats_addr, "config.statsAddr").await?),
            readiness: Some(bind(ready_addr, "config.readinessAddr").await?),
        })
    }
}

async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
    })
}

fn parse(addr: &str) -> SocketAddr {
    addr.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
}

pub struct Gateway {
    proxy: Arc<Proxy>,
    telemetry: Arc<Telemetry>,
    tls: Option<TlsAcceptor>,
    drain_timeout: Duration,
}

impl Gateway {
    /// Builds every runtime structure; any config problem is reported here, naming the field.
    pub fn build(config: &Config, options: Options) -> Result<Gateway, String> {
        install_crypto_provider();
        let router = Router::new(&config.llm.models)?;
        let auth = config
            .llm
            .policies
            .api_key
            .as_ref()
            .map(Authenticator::from_policy)
            .transpose()?;
        let telemetry = Arc::new(build_telemetry(config, options)?);
        let limits = build_limits(config)?;
        let timeouts = &config.llm.timeouts;
        let client = upstream::build_client(timeouts.connect.unwrap_or(DEFAULT_CONNECT_TIMEOUT))?;
        let tls = config.llm.tls.as_ref().map(load_tls).transpose()?;
        let port = config.llm.port.to_string();
        let listener = Arc::new(ListenerInfo {
            gateway: format!("bind/{port}").into(),
            bind: port.into(),
            listener: "llm".into(),
        });
        let proxy = Arc::new(Proxy {
            router,
            auth,
            limits,
            client,
            telemetry: telemetry.clone(),
            listener,
            max_body_bytes: config.max_request_body_bytes(),
            first_byte_timeout: timeouts.first_byte.unwrap_or(DEFAULT_FIRST_BYTE_TIMEOUT),
            idle_timeout: timeouts.idle.unwrap_or(DEFAULT_IDLE_TIMEOUT),
            body_timeout: timeouts.request_body.unwrap_or(DEFAULT_BODY_TIMEOUT),
        });
        Ok(Gateway {
            proxy,
            telemetry,
            tls,
            drain_timeout: config.drain_timeout(),
        })
    }

    /// Starts serving. The returned handle reports the bound addresses and stops the gateway.
    pub fn start(self, listeners: Listeners) -> std::io::Result<RunningGateway> {
        let llm_addr = listeners.llm.local_addr()?;
        let stats_addr = listeners
            .stats
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let readiness_addr = listeners
            .readiness
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let (stop, stop_rx) = watch::channel(false);
        let ready = Arc::new(AtomicBool::new(false));
        if let Some(listener) = listeners.stats {
            let metrics: Arc<dyn AsMetrics> = self.telemetry.clone();
            tokio::spawn(server::serve_side(
                listener,
                stop_rx.clone(),
                server::stats(metrics),
            ));
        }
        if let Some(listener) = listeners.readiness {
            let respond = server::readiness(ready.clone());
            tokio::spawn(server::serve_side(listener, stop_rx.clone(), respond));
        }
        let (draining, draining_rx) = watch::channel(false);
        let telemetry = self.telemetry.clone();
        let task = tokio::spawn(async move {
            let serve = server::serve_llm(
                listeners.llm,
                self.tls,
                self.proxy,
                draining_rx,
                self.drain_timeout,
            );
            serve.await;
            // Every connection has ended, so every record is finished: flush the log. Closing
            // joins the writer thread, which may wait on stdout: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || telemetry.log.close()).await;
        });
        ready.store(true, Ordering::Release);
        Ok(RunningGateway {
            llm_addr,
            stats_addr,
            readiness_addr,
            ready,
            draining,
            stop,
            task,
        })
    }
}

impl AsMetrics for Telemetry {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// A running gateway. Dropping it does not stop it; call [`RunningGateway::shutdown`].
pub struct RunningGateway {
    pub llm_addr: SocketAddr,
    pub stats_addr: Option<SocketAddr>,
    pub readiness_addr: Option<SocketAddr>,
    ready: Arc<AtomicBool>,
    draining: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningGateway {
    /// Drains (readiness 503, stop accepting, let requests finish) and stops the side ports.
    pub async fn shutdown(self) {
        self.ready.store(false, Ordering::Release);
        let _ = self.draining.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "gateway task failed");
        }
        let _ = self.stop.send(true);
    }
}

fn build_telemetry(config: &Config, options: Options) -> Result<Telemetry, String> {
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
    Ok(Telemetry::new(metrics, log, metric_fields, max_label_values))
}

fn build_limits(config: &Config) -> Result<RateLimits, String> {
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

fn load_tls(tls: &TlsConfig) -> Result<TlsAcceptor, String> {
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
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
