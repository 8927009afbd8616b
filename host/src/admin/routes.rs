use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::capability::{SecretValue, constant_time_eq};
use crate::daemon::{Daemon, SchedulerHandle, TriggerOutcome};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::{FlowId, TenantId};
use crate::plugin::{Decision, Refused, decide};
use crate::store::PluginLedger;
use crate::tenant::{EditError, Tenant, TenantChange, TenantConnection};

/// What the handlers share.
pub struct AdminState {
    /// The daemon.
    pub daemon: Arc<Daemon>,
    /// Its scheduler.
    pub scheduler: SchedulerHandle,
    /// The bearer token callers must present.
    pub token: SecretValue,
    /// The webhook ingress, when it runs.
    pub ingress: Option<Arc<crate::ingress::Ingress>>,
}

type Shared = Arc<AdminState>;

/// The API's routes.
pub fn router(state: Shared) -> Router {
    let authenticated = Router::new()
        .route("/plugins", get(plugins))
        .route("/plugins/{name}/approve", post(approve_plugin))
        .route("/plugins/{name}/rollback", post(rollback_plugin))
        .route("/status", get(status))
        .route("/webhooks", get(webhooks))
        .route("/tenants", get(list_tenants).post(create_tenant))
        .route(
            "/tenants/{tenant}",
            get(get_tenant).put(replace_tenant).delete(delete_tenant),
        )
        .route(
            "/tenants/{tenant}/connections/{connection}",
            put(set_connection),
        )
        .route("/tenants/{tenant}/flows/{flow}/enable", post(enable))
        .route("/tenants/{tenant}/flows/{flow}/disable", post(disable))
        .route("/tenants/{tenant}/flows/{flow}/schedule", put(set_schedule))
        .route("/tenants/{tenant}/flows/{flow}/mapping", put(set_mapping))
        .route("/tenants/{tenant}/flows/{flow}/run", post(run_now))
        .route("/tenants/{tenant}/runs", get(runs))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    // Liveness probes carry no token and learn nothing but "up".
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .merge(authenticated)
        .with_state(state)
}

/// An error as the API answers it.
struct ApiError(StatusCode, Value);

/// A JSON request body; one that does not parse (or does not fit the
/// route) is answered as `bad-request` like every other refusal, not with
/// axum's plain-text rejection.
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(body)) => Ok(Body(body)),
            Err(rejection) => Err(ApiError::from_diagnostic(
                rejection.status(),
                &Diagnostic::new(ErrorCode::BadRequest, rejection.body_text()).with_hint(
                    "send `Content-Type: application/json` and the body README's admin API table gives for the route",
                ),
            )),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl ApiError {
    fn from_diagnostic(status: StatusCode, d: &Diagnostic) -> Self {
        Self(
            status,
            json!({ "code": d.code.as_str(), "message": d.message, "hint": d.hint }),
        )
    }

    fn edit(tenant: &str, error: EditError) -> Self {
        let diagnostic = error.diagnostic(tenant);
        match &error {
            EditError::UnknownTenant(_) => {
                Self::from_diagnostic(StatusCode::NOT_FOUND, &diagnostic)
            }
            EditError::Exists(_) => Self::from_diagnostic(StatusCode::CONFLICT, &diagnostic),
            EditError::Invalid(invalid) => Self(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({
                    "code": diagnostic.code.as_str(), "message": diagnostic.message,
                    "path": invalid.path, "reason": invalid.reason, "hint": diagnostic.hint,
                }),
            ),
        }
    }

    fn bad_name(what: &str, value: &str) -> Self {
        Self::from_diagnostic(
            StatusCode::BAD_REQUEST,
            &Diagnostic::new(
                ErrorCode::BadRequest,
                format!("`{value}` is not a valid {what} name"),
            )
            .with_hint(
                "names are letters, digits, `-` and `_`; GET /status lists every tenant's flows",
            ),
        )
    }

    fn store(error: crate::store::StoreError) -> Self {
        Self::from_diagnostic(StatusCode::SERVICE_UNAVAILABLE, &error.diagnostic())
    }
}

async fn authenticate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(presented.as_bytes(), state.token.expose()) {
        return next.run(request).await;
    }
    let mut response = ApiError::from_diagnostic(
        StatusCode::UNAUTHORIZED,
        &Diagnostic::new(
            ErrorCode::Unauthorized,
            "a valid `Authorization: Bearer <token>` header is required",
        )
        .with_hint("the token is the admin token of weir.toml (`[admin] token`, by default the `WEIR_ADMIN_TOKEN` variable)"),
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Runs a store call off the async runtime.
async fn blocking<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&dyn crate::store::Store) -> T + Send + 'static,
) -> T {
    let store = state.daemon.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .expect("store calls do not panic")
}

async fn edit(
    state: &Shared,
    tenant: &str,
    change: TenantChange,
) -> Result<Json<Tenant>, ApiError> {
    let id = TenantId::new(tenant).map_err(|_| ApiError::bad_name("tenant", tenant))?;
    let config = state.daemon.config.clone();
    let name = tenant.to_string();
    let mut change = Some(change);
    let saved = blocking(state, move |store| {
        store.update_tenant(&id, &mut |current| {
            let change = change.take().expect("an edit runs once");
            crate::tenant::apply(&config, current, &id, change)
        })
    })
    .await
    .map_err(ApiError::store)?
    .map_err(|e| ApiError::edit(&name, e))?;
    state.scheduler.reload().await;
    Ok(Json(saved))
}

async fn approve_plugin(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    swap_plugins(&state, &name, Decision::Approve).await
}

async fn rollback_plugin(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    swap_plugins(&state, &name, Decision::Rollback).await
}

async fn swap_plugins(
    state: &Shared,
    name: &str,
    decision: Decision,
) -> Result<Json<Value>, ApiError> {
    let ledger: Arc<dyn PluginLedger> = state.daemon.store.clone();
    let next = decide(&state.daemon.plugins(), decision, name, &ledger)
        .await
        .map_err(|refused| {
            let status = match refused {
                Refused::NothingTo(_) => StatusCode::NOT_FOUND,
                Refused::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            ApiError::from_diagnostic(status, &refused.into_diagnostic())
        })?;
    let version = next.get(name).map(|p| p.version.clone());
    state.daemon.live.replace(next);
    tracing::info!(
        "plugin `{name}`: {} done, {} now serves new runs",
        decision.as_str(),
        version.as_deref().unwrap_or("?")
    );
    Ok(Json(json!({ "name": name, "serving": version })))
}

async fn plugins(State(state): State<Shared>) -> Json<Value> {
    let plugins = state.daemon.plugins();
    Json(json!({
        "pending": plugins.pending().map(|p| json!({
            "name": p.plugin.name, "version": p.plugin.version, "new_hosts": p.new_hosts,
            "content_hash": p.plugin.content_hash,
        })).collect::<Vec<_>>(),
        "reloads": state.daemon.live.reloads().iter().map(|r| json!({
            "file": r.file, "update": format!("{:?}", r.update), "error": r.error,
            "latency_ms": r.latency.as_secs_f64() * 1000.0,
        })).collect::<Vec<_>>(),
        "loaded": plugins.plugins().map(|p| json!({
            "name": p.name, "version": p.version, "kind": p.kind_name(), "wit_version": p.wit_version,
            "file": p.file, "content_hash": p.content_hash,
            "rolled_back": plugins.is_rolled_back(&p.name),
            "kept": plugins.kept(&p.name).iter().map(|k| json!({
                "version": k.version, "content_hash": k.content_hash,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "failed": plugins.failures().iter().map(|f| {
            let d = f.diagnostic();
            json!({ "file": f.file, "code": d.code.as_str(), "error": d.message, "hint": d.hint })
        }).collect::<Vec<_>>(),
    }))
}

async fn status(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let config = state.daemon.config.clone();
    let statuses = blocking(&state, move |store| {
        crate::status::flow_statuses(&config, store)
    })
    .await
    .map_err(ApiError::store)?;
    Ok(Json(json!(statuses)))
}

/// Webhook health of every tenant connection, with its endpoint path.
async fn webhooks(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let shared = state.clone();
    let report = tokio::task::spawn_blocking(move || {
        let ingress = shared.ingress.as_ref();
        crate::ingress::webhook_health(
            &shared.daemon.config,
            shared.daemon.store.as_ref(),
            ingress.map(|i| &i.counters),
            ingress.map(|i| i.inbox().snapshot()),
        )
    })
    .await
    .expect("store calls do not panic")
    .map_err(ApiError::store)?;
    Ok(Json(json!(report)))
}

async fn list_tenants(State(state): State<Shared>) -> Result<Json<Vec<Tenant>>, ApiError> {
    blocking(&state, |store| store.tenants())
        .await
        .map(Json)
        .map_err(ApiError::store)
}

async fn create_tenant(
    State(state): State<Shared>,
    Body(tenant): Body<Tenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    let id = tenant.id.to_string();
    let saved = edit(&state, &id, TenantChange::Create(tenant)).await?;
    Ok((StatusCode::CREATED, saved))
}

async fn get_tenant(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    let id = TenantId::new(&tenant).map_err(|_| ApiError::bad_name("tenant", &tenant))?;
    blocking(&state, move |store| store.tenant(&id))
        .await
        .map_err(ApiError::store)?
        .map(Json)
        .ok_or_else(|| ApiError::edit(&tenant, EditError::UnknownTenant(tenant.clone())))
}

async fn replace_tenant(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    Body(body): Body<Tenant>,
) -> Result<Json<Tenant>, ApiError> {
    edit(&state, &tenant, TenantChange::Replace(body)).await
}

async fn delete_tenant(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = TenantId::new(&tenant).map_err(|_| ApiError::bad_name("tenant", &tenant))?;
    let removed = blocking(&state, move |store| store.delete_tenant(&id))
        .await
        .map_err(ApiError::store)?;
    state.scheduler.reload().await;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::edit(
            &tenant,
            EditError::UnknownTenant(tenant.clone()),
        ))
    }
}

async fn set_connection(
    State(state): State<Shared>,
    Path((tenant, connection)): Path<(String, String)>,
    Body(body): Body<TenantConnection>,
) -> Result<Json<Tenant>, ApiError> {
    edit(&state, &tenant, TenantChange::Connection(connection, body)).await
}

async fn enable(
    State(state): State<Shared>,
    Path((tenant, flow)): Path<(String, String)>,
) -> Result<Json<Tenant>, ApiError> {
    edit(&state, &tenant, TenantChange::Enable(flow)).await
}

async fn disable(
    State(state): State<Shared>,
    Path((tenant, flow)): Path<(String, String)>,
) -> Result<Json<Tenant>, ApiError> {
    edit(&state, &tenant, TenantChange::Disable(flow)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    schedule: Option<String>,
}

async fn set_schedule(
    State(state): State<Shared>,
    Path((tenant, flow)): Path<(String, String)>,
    Body(body): Body<ScheduleBody>,
) -> Result<Json<Tenant>, ApiError> {
    edit(&state, &tenant, TenantChange::Schedule(flow, body.schedule)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingBody {
    mapping: Option<Value>,
}

async fn set_mapping(
    State(state): State<Shared>,
    Path((tenant, flow)): Path<(String, String)>,
    Body(body): Body<MappingBody>,
) -> Result<Json<Tenant>, ApiError> {
    edit(&state, &tenant, TenantChange::Mapping(flow, body.mapping)).await
}

async fn run_now(
    State(state): State<Shared>,
    Path((tenant, flow)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant_id = TenantId::new(&tenant).map_err(|_| ApiError::bad_name("tenant", &tenant))?;
    let flow_id = FlowId::new(&flow).map_err(|_| ApiError::bad_name("flow", &flow))?;
    match state.scheduler.run_now(&tenant_id, &flow_id).await {
        TriggerOutcome::Unknown => Err(ApiError(
            StatusCode::NOT_FOUND,
            json!({ "code": ErrorCode::UnknownFlow.as_str(),
                    "message": format!("tenant `{tenant}` has no flow `{flow}` scheduled"),
                    "hint": "check the names: GET /status lists every tenant's flows" }),
        )),
        TriggerOutcome::NotConnected => {
            let config = state.daemon.config.clone();
            let diagnostic = blocking(&state, move |store| {
                let stored = store.tenant(&tenant_id).ok().flatten()?;
                let resolved = crate::tenant::resolve_flow(&config, &stored, &flow_id).ok()?;
                resolved.ensure_connected().err()
            })
            .await
            .unwrap_or_else(|| {
                Diagnostic::new(
                    ErrorCode::NotConnected,
                    format!(
                        "tenant `{tenant}` has not connected every connection flow `{flow}` uses"
                    ),
                )
                .with_hint("GET /status says which secrets each flow still needs")
            });
            Err(ApiError::from_diagnostic(StatusCode::CONFLICT, &diagnostic))
        }
        outcome => Ok((StatusCode::ACCEPTED, Json(json!({ "outcome": outcome })))),
    }
}

#[derive(Deserialize)]
struct RunsQuery {
    flow: Option<String>,
    limit: Option<usize>,
}

async fn runs(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant_id = TenantId::new(&tenant).map_err(|_| ApiError::bad_name("tenant", &tenant))?;
    let limit = query.limit.unwrap_or(50).min(1000);
    let runs = match query.flow {
        Some(flow) => {
            let flow = FlowId::new(&flow).map_err(|_| ApiError::bad_name("flow", &flow))?;
            let scoped = tenant_id.scoped_flow(&flow);
            blocking(&state, move |store| store.runs(Some(&scoped), limit)).await
        }
        None => blocking(&state, move |store| store.tenant_runs(&tenant_id, limit)).await,
    }
    .map_err(ApiError::store)?;
    Ok(Json(json!(runs)))
}
