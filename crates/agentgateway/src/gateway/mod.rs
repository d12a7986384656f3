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

mod control;
mod cost;
mod parts;

use crate::accesslog::LogSink;
use crate::auth::Authenticator;
use crate::budget::WallClock;
use crate::config::{ApiKeyMode, ApiKeyPolicy, Config, LogFormat};
use crate::metrics::Metrics;
use crate::mock::MockServer;
use crate::proxy::Proxy;
use crate::record::ListenerInfo;
use crate::routing::Router;
use crate::server::{self, AsMetrics};
use crate::telemetry::Telemetry;
use crate::upstream;

/// Defaults of interface.md.
pub const DEFAULT_STATS_ADDR: &str = "0.0.0.0:15020";
pub const DEFAULT_READINESS_ADDR: &str = "0.0.0.0:15021";
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:15000";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// How the process around the gateway wants it run.
pub struct Options {
    pub log_sink: LogSink,
    /// `LOG_FORMAT` from the environment, which wins over the config.
    pub log_format: Option<LogFormat>,
    /// The wall clock of budgets and the spend ledger (tests move it); `None`: the system's.
    pub clock: Option<Arc<dyn WallClock>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_sink: LogSink::Stdout,
            log_format: None,
            clock: None,
        }
    }
}

/// Sockets to serve on. Side ports are optional (tests may not need them).
pub struct Listeners {
    pub llm: TcpListener,
    pub stats: Option<TcpListener>,
    pub readiness: Option<TcpListener>,
    /// The admin API (keys, `/config_dump`).
    pub admin: Option<TcpListener>,
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
        let admin_addr = control::admin_addr(config);
        Ok(Listeners {
            llm,
            stats: Some(bind(stats_addr, "config.statsAddr").await?),
            readiness: Some(bind(ready_addr, "config.readinessAddr").await?),
            admin: Some(bind(admin_addr, "config.adminAddr").await?),
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
    /// Complete but for the dynamic keys, which need the database opened in `start`.
    proxy: Proxy,
    telemetry: Arc<Telemetry>,
    tls: Option<TlsAcceptor>,
    drain_timeout: Duration,
    control: control::ControlPlane,
    cost: cost::CostPlan,
    /// The `provider: mock` endpoint, bound here and served from `start`.
    mock: Option<MockServer>,
}

impl Gateway {
    /// Builds every runtime structure; any config problem is reported here, naming the field.
    pub fn build(config: &Config, options: Options) -> Result<Gateway, String> {
        parts::install_crypto_provider();
        let mock = MockServer::bind(&config.llm.models)
            .map_err(|e| format!("provider mock: cannot listen on 127.0.0.1: {e}"))?;
        let router = Router::with_mock(&config.llm.models, mock.as_ref().map(MockServer::addr))?;
        let auth = build_auth(config)?;
        let cost = cost::CostPlan::from_config(config, options.clock.clone())?;
        let telemetry = Arc::new(parts::build_telemetry(config, options)?);
        let limits = parts::build_limits(config)?;
        let control = control::ControlPlane::from_config(config)?;
        let timeouts = &config.llm.timeouts;
        let client = upstream::build_client(timeouts.connect.unwrap_or(DEFAULT_CONNECT_TIMEOUT));
        let tls = config.llm.tls.as_ref().map(parts::load_tls).transpose()?;
        let port = config.llm.port.to_string();
        let listener = Arc::new(ListenerInfo {
            gateway: format!("bind/{port}").into(),
            bind: port.into(),
            listener: "llm".into(),
        });
        let proxy = Proxy {
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
            cost_header: config.config.cost_header,
        };
        Ok(Gateway {
            proxy,
            telemetry,
            tls,
            drain_timeout: config.drain_timeout(),
            control,
            cost,
            mock,
        })
    }

    /// Opens the key database (if any) and starts serving. The returned handle reports the bound
    /// addresses and stops the gateway.
    pub async fn start(mut self, listeners: Listeners) -> std::io::Result<RunningGateway> {
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
        let admin_addr = listeners
            .admin
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let (stop, stop_rx) = watch::channel(false);
        let ready = Arc::new(AtomicBool::new(false));
        // Stopped with the side ports, after the drain: in-flight calls to it finish.
        if let Some(mock) = self.mock.take() {
            mock.serve(stop_rx.clone())?;
        }
        let keys = self.control.open_keys(stop_rx.clone()).await?;
        if let Some(keys) = &keys {
            self.proxy.auth = self
                .proxy
                .auth
                .take()
                .map(|auth| auth.with_dynamic(control::key_lookup(keys)));
        }
        let costing = self.cost.start(keys.as_ref(), &stop_rx).await?;
        self.telemetry.set_costing(costing.clone());
        let proxy = Arc::new(self.proxy);
        if let Some(listener) = listeners.admin {
            let admin = self.control.admin(keys, &proxy.limits, costing.clone());
            tokio::spawn(control::serve(listener, admin, stop_rx.clone()));
        }
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
                proxy,
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
            admin_addr,
            ready,
            draining,
            stop,
            task,
            costing,
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
    pub admin_addr: Option<SocketAddr>,
    ready: Arc<AtomicBool>,
    draining: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    costing: Arc<crate::costing::Costing>,
}

impl RunningGateway {
    /// Drains (readiness 503, stop accepting, let requests finish) and stops the side ports.
    pub async fn shutdown(self) {
        self.ready.store(false, Ordering::Release);
        let _ = self.draining.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "gateway task failed");
        }
        // Every request is finished and booked: write the last second of spend.
        if let Err(error) = self.costing.ledger.flush().await {
            tracing::error!(%error, "flushing the spend ledger at shutdown failed");
        }
        let _ = self.stop.send(true);
    }
}

/// The apiKey policy. With a key database but no policy, keys are required (strict): a gateway
/// that hands out keys should not also serve callers without one.
fn build_auth(config: &Config) -> Result<Option<Authenticator>, String> {
    let policy = match (&config.llm.policies.api_key, &config.config.database) {
        (Some(policy), _) => policy.clone(),
        (None, Some(_)) => ApiKeyPolicy {
            mode: ApiKeyMode::Strict,
            keys: Vec::new(),
        },
        (None, None) => return Ok(None),
    };
    Authenticator::from_policy(&policy).map(Some)
}
