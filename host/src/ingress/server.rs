use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::IngressCounters;
use super::worker::NotProcessed;
use crate::capability::{BudgetConfig, RateBudget};
use crate::connection::Connection;
use crate::contract::{IncomingRequest, RejectionReason, Reply, WebhookVerdict};
use crate::daemon::Daemon;
use crate::ids::TenantId;
use crate::inbox::{DeliveryKey, Headers, Inbox, NewDelivery};
use crate::store::Handshake;
use crate::tenant::resolve_connection;

/// Below the shortest partner deadline we know of (a few seconds): past it
/// the partner gets 503 and retries, rather than timing out on us.
const ANSWER_DEADLINE: Duration = Duration::from_secs(2);
/// Largest body read at all; each connection has its own, lower cap.
const MAX_BODY: usize = 64 << 20;

/// What the ingress shares between requests.
pub struct Ingress {
    daemon: Arc<Daemon>,
    inbox: Arc<Inbox>,
    endpoints: Mutex<Endpoints>,
    limiters: Mutex<HashMap<TenantId, Arc<RateBudget>>>,
    connections: Mutex<HashMap<String, (usize, Arc<Connection>)>>,
    /// Counts by tenant connection, for webhook health.
    pub counters: IngressCounters,
    /// Tenant connections' streams whose merge conflicts were already
    /// logged: once per stream and process, since a partner that does not
    /// bump its versions conflicts on every edit.
    pub(crate) conflicts_logged: Mutex<std::collections::HashSet<(String, String)>>,
}

#[derive(Default)]
struct Endpoints {
    by_token: HashMap<String, (TenantId, String)>,
    loaded_at: Option<Instant>,
}

impl Ingress {
    /// The ingress of a daemon, storing into `inbox`.
    pub fn new(daemon: Arc<Daemon>, inbox: Arc<Inbox>) -> Arc<Self> {
        Arc::new(Self {
            daemon,
            inbox,
            endpoints: Mutex::default(),
            limiters: Mutex::default(),
            connections: Mutex::default(),
            counters: IngressCounters::default(),
            conflicts_logged: Mutex::default(),
        })
    }

    /// The store changes are merged into.
    pub fn store(&self) -> &Arc<dyn crate::store::Store> {
        &self.daemon.store
    }

    /// The inbox deliveries are made durable in.
    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    /// The daemon it serves.
    pub(crate) fn daemon(&self) -> &Arc<Daemon> {
        &self.daemon
    }

    /// Keeps an audit row of a handshake. A failure to note it is logged,
    /// not answered: the partner's check is answered either way.
    async fn record_handshake(&self, handshake: Handshake) {
        let store = self.daemon.store.clone();
        let noted = tokio::task::spawn_blocking(move || store.record_handshake(&handshake))
            .await
            .expect("store calls do not panic");
        if let Err(error) = noted {
            tracing::warn!("a webhook handshake was answered but not noted: {error}");
        }
    }

    /// The store changes are merged into.
    pub(crate) fn daemon_store(&self) -> Arc<dyn crate::store::Store> {
        self.daemon.store.clone()
    }

    /// The tenant and connection of an endpoint token. Unknown tokens make
    /// the table reload at most once a second, so guessing is cheap to
    /// refuse and new endpoints work at once.
    async fn endpoint(&self, token: &str) -> Option<(TenantId, String)> {
        {
            let endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = endpoints.by_token.get(token) {
                return Some(found.clone());
            }
            if endpoints
                .loaded_at
                .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
            {
                return None;
            }
        }
        let store = self.daemon.store.clone();
        let all = tokio::task::spawn_blocking(move || store.endpoints())
            .await
            .ok()?
            .ok()?;
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        endpoints.by_token = all
            .into_iter()
            .filter_map(|(token, tenant, connection)| {
                Some((token, (TenantId::new(tenant).ok()?, connection)))
            })
            .collect();
        endpoints.loaded_at = Some(Instant::now());
        endpoints.by_token.get(token).cloned()
    }

    fn limiter(&self, tenant: &TenantId) -> Arc<RateBudget> {
        let config = &self.daemon.config.ingress;
        self.limiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(RateBudget::new(
                    BudgetConfig {
                        per_second: config.per_tenant_rate,
                        burst: config.per_tenant_burst,
                        ..BudgetConfig::unlimited()
                    },
                    None,
                ))
            })
            .clone()
    }

    /// The tenant's connection, opened once per plugin registry.
    pub(crate) async fn connection(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Arc<Connection>, NotProcessed> {
        let plugins = self.daemon.plugins();
        let generation = Arc::as_ptr(&plugins) as usize;
        let key = format!("{tenant}.{name}");
        if let Some((seen, connection)) = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && *seen == generation
        {
            return Ok(connection.clone());
        }
        let store = self.daemon.store.clone();
        let id = tenant.clone();
        let stored = tokio::task::spawn_blocking(move || store.tenant(&id))
            .await
            .expect("store calls do not panic")?
            .ok_or_else(|| NotProcessed::TenantGone(tenant.clone()))?;
        let config = resolve_connection(&self.daemon.config, &stored, name)?;
        let connection = Connection::open_pinned(
            &stored.pins,
            &self.daemon.runtime,
            &plugins,
            &config,
            &self.daemon.services,
        )
        .map(Arc::new)?;
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (generation, connection.clone()));
        Ok(connection)
    }
}

/// The ingress's routes: `/hooks/{token}` and anything below it.
pub fn router(ingress: Arc<Ingress>) -> Router {
    Router::new()
        .route("/hooks/{token}", any(receive_root))
        .route("/hooks/{token}/{*rest}", any(receive_nested))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(ingress)
}

async fn receive_root(
    state: State<Arc<Ingress>>,
    Path(token): Path<String>,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, token, "/".to_string(), method, query, headers, body).await
}

async fn receive_nested(
    state: State<Arc<Ingress>>,
    Path((token, rest)): Path<(String, String)>,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(
        state,
        token,
        format!("/{rest}"),
        method,
        query,
        headers,
        body,
    )
    .await
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_string()).into_response()
}

fn retry_later(status: StatusCode, after: Duration, text: &str) -> Response {
    let mut response = plain(status, text);
    let secs = after.as_secs().max(1).to_string();
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_str(&secs).expect("digits"));
    response
}

fn reply(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, reply.body).into_response();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn receive(
    State(ingress): State<Arc<Ingress>>,
    token: String,
    path: String,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_at_ms = crate::unix_time::now_ms().max(0) as u64;
    let Some((tenant, connection_name)) = ingress.endpoint(&token).await else {
        // 404, never 410: senders disable endpoints that answer 410.
        return plain(StatusCode::NOT_FOUND, "no such webhook endpoint");
    };
    let counters = ingress.counters.of(&tenant, &connection_name);
    let work = async {
        let connection = match ingress.connection(&tenant, &connection_name).await {
            Ok(connection) => connection,
            Err(why) => {
                tracing::warn!(tenant = %tenant, connection = %connection_name, "webhook refused for now: {why}");
                counters.count_unavailable();
                return retry_later(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Duration::from_secs(30),
                    "not ready",
                );
            }
        };
        if body.len() > connection.config().max_webhook_bytes {
            counters.count_too_large();
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
        }
        if let Err(wait) = ingress.limiter(&tenant).try_acquire_now() {
            counters.count_throttled();
            return retry_later(StatusCode::TOO_MANY_REQUESTS, wait, "slow down");
        }
        let request = IncomingRequest {
            method: method.as_str().to_string(),
            path: path.clone(),
            query: query.clone().unwrap_or_default(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
            received_at_ms,
        };
        let verdict = match connection.verify_webhook(&request).await {
            Ok(verdict) => verdict,
            Err(error) => {
                tracing::warn!(tenant = %tenant, connection = %connection_name, "webhook verification failed: {error}");
                counters.count_unavailable();
                return retry_later(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Duration::from_secs(5),
                    "try again",
                );
            }
        };
        match verdict {
            WebhookVerdict::Handshake(answer) => {
                tracing::info!(tenant = %tenant, connection = %connection_name, "answered a webhook handshake");
                ingress
                    .record_handshake(Handshake {
                        tenant: tenant.clone(),
                        connection: connection_name.clone(),
                        method: request.method,
                        path: request.path,
                        at_ms: received_at_ms as i64,
                    })
                    .await;
                reply(answer)
            }
            WebhookVerdict::Reject(rejection) => {
                counters.count_rejected(rejection.reason);
                tracing::info!(tenant = %tenant, connection = %connection_name, reason = ?rejection.reason, "webhook rejected: {}", rejection.detail);
                plain(StatusCode::UNAUTHORIZED, rejection_text(rejection.reason))
            }
            WebhookVerdict::Accept(accepted) => {
                let Ok(key) = DeliveryKey::new(accepted.delivery_key) else {
                    counters.count_rejected(RejectionReason::Malformed);
                    return plain(StatusCode::UNAUTHORIZED, "malformed delivery");
                };
                let mut stored_headers = Headers::new();
                for (name, value) in &request.headers {
                    stored_headers.push(name.clone(), value.clone());
                }
                let delivery = NewDelivery {
                    tenant: tenant.clone(),
                    connection: crate::ids::ConnectionId::new(&connection_name)
                        .expect("a configured name"),
                    key,
                    method: request.method,
                    path: request.path,
                    query,
                    headers: stored_headers,
                    body,
                };
                match ingress.inbox.submit(delivery).await {
                    Ok(ack) => {
                        counters.count_accepted(ack.is_duplicate(), received_at_ms);
                        accepted
                            .reply
                            .map(reply)
                            .unwrap_or_else(|| plain(StatusCode::OK, "ok"))
                    }
                    Err(refusal) => {
                        counters.count_unavailable();
                        tracing::warn!(tenant = %tenant, "webhook not stored ({}): answered 503", refusal.reason());
                        retry_later(
                            StatusCode::SERVICE_UNAVAILABLE,
                            refusal.retry_after(),
                            "try again",
                        )
                    }
                }
            }
        }
    };
    match tokio::time::timeout(ANSWER_DEADLINE, work).await {
        Ok(response) => response,
        Err(_) => {
            counters.count_unavailable();
            retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(5),
                "try again",
            )
        }
    }
}

fn rejection_text(reason: RejectionReason) -> &'static str {
    match reason {
        RejectionReason::MissingSignature => "missing signature",
        RejectionReason::BadSignature => "bad signature",
        RejectionReason::StaleTimestamp => "stale timestamp",
        RejectionReason::Malformed => "malformed delivery",
    }
}
