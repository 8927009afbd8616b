//! Acme CRM's HTTP surface: routes, handlers and the request pipeline.
//!
//! Each request passes, outermost first: counting, fault injection, the
//! `/v1` gate (API key, then rate limit), then its handler. Handlers report
//! what they served or wrote in a [`Tally`] response extension, which the
//! counting layer reads.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::counters::{ListCall, Tally};
use crate::faults::{FaultKind, trickle};
use crate::idempotency::{Fingerprint, Lookup, StoredResponse};
use crate::page::{ListParams, PageRequest};
use crate::rate_limit::Verdict;
use crate::schema::{self, Schema, ValidationError};
use crate::server::CloseConnection;
use crate::sim::Shared;
use crate::store::{ChangeKind, WriteError};

type SharedState = State<Arc<Shared>>;

/// The whole API, ready to serve.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    // One route per resource, so counters see templates like `GET /v1/contacts/{id}`.
    for schema in schema::ALL {
        router = router
            .route(
                &format!("/v1/{}", schema.name),
                get(
                    move |s: SharedState, q: Result<Query<ListParams>, QueryRejection>| {
                        list(s, schema, q)
                    },
                )
                .post(move |s: SharedState, h: HeaderMap, b: Bytes| {
                    write(s, schema, Op::Create, h, b)
                }),
            )
            .route(
                &format!("/v1/{}/{{id}}", schema.name),
                get(move |s: SharedState, Path(id): Path<String>| fetch(s, schema, id))
                    .patch(
                        move |s: SharedState, Path(id): Path<String>, h: HeaderMap, b: Bytes| {
                            write(s, schema, Op::Update(id), h, b)
                        },
                    )
                    .delete(
                        move |s: SharedState, Path(id): Path<String>, h: HeaderMap| {
                            write(s, schema, Op::Delete(id), h, Bytes::new())
                        },
                    ),
            );
    }
    router
        .route("/v1/redirect", get(redirect))
        .route("/v1/redirect/loop", get(redirect_loop))
        .route("/_sim/mutate", post(admin_mutate))
        .route("/_sim/counters", get(admin_counters))
        .route("/_sim/counters/reset", post(admin_reset_counters))
        .fallback(no_route)
        .layer(from_fn_with_state(shared.clone(), gate))
        .layer(from_fn_with_state(shared.clone(), inject_faults))
        .layer(from_fn_with_state(shared.clone(), count))
        .with_state(shared)
}

// ---- responses ------------------------------------------------------------

/// A JSON response from pre-rendered bytes.
fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The API's error shape: `{"error":{"code":...,"message":...}}`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    (status, Json(body)).into_response()
}

fn validation_error(e: &ValidationError) -> Response {
    let body = json!({"error": {"code": "validation", "message": e.message, "field": e.field}});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn not_found(schema: &Schema, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no {} with id `{id}`", schema.singular),
    )
}

fn tallied(mut response: Response, tally: Tally) -> Response {
    response.extensions_mut().insert(tally);
    response
}

// ---- middleware -----------------------------------------------------------

/// Counts every non-admin request on arrival and its outcome on completion.
async fn count(State(shared): SharedState, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/_sim/") {
        return next.run(request).await;
    }
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    let route = format!("{} {template}", request.method());
    let list_call = (request.method() == Method::GET)
        .then(|| template.strip_prefix("/v1/").and_then(schema::lookup))
        .flatten()
        .map(|schema| {
            let params = Query::<ListParams>::try_from_uri(request.uri())
                .map(|Query(p)| p)
                .unwrap_or_default();
            ListCall {
                resource: schema.name.to_owned(),
                limit: params.limit.as_deref().and_then(|l| l.parse().ok()),
                cursor: params.cursor,
                updated_since: params.updated_since,
                returned: 0,
                status: 0,
            }
        });
    let ticket = shared.counters.arrive(route, list_call);
    let response = next.run(request).await;
    let closed = response.extensions().get::<CloseConnection>().is_some();
    let status = (!closed).then_some(response.status().as_u16());
    shared
        .counters
        .finish(ticket, status, response.extensions().get::<Tally>());
    response
}

/// Lets a queued fault take the request over.
async fn inject_faults(State(shared): SharedState, request: Request, next: Next) -> Response {
    let Some(kind) = shared
        .faults
        .take(request.method().as_str(), request.uri().path())
    else {
        return next.run(request).await;
    };
    shared.counters.fault_injected();
    match kind {
        FaultKind::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(
                status,
                "injected_fault",
                format!("partner-sim injected a {code} response"),
            );
            if matches!(code, 429 | 503) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            response
        }
        FaultKind::Trickle { chunk_bytes, delay } => {
            trickle(next.run(request).await, chunk_bytes, delay).await
        }
        FaultKind::Hang => {
            // Hold the request until the client gives up (dropping this
            // future) or the sim shuts down.
            let mut stop = shared.shutdown.clone();
            let _ = stop.wait_for(|&stop| stop).await;
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "partner-sim is shutting down",
            )
        }
        FaultKind::Close => {
            let mut response = Response::new(Body::empty());
            response.extensions_mut().insert(CloseConnection);
            response
        }
        FaultKind::Reply { status, headers } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(
                status,
                "injected_fault",
                format!("partner-sim injected a {} response", status.as_u16()),
            );
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) {
                    response.headers_mut().append(name, value);
                }
            }
            response
        }
    }
}

/// The `/v1` gate: API key first, then the rate limit.
async fn gate(State(shared): SharedState, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !(path == "/v1" || path.starts_with("/v1/")) {
        return next.run(request).await;
    }
    let key = request
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok());
    if key != Some(shared.api_key.as_str()) {
        let message = match key {
            None => "missing `X-Api-Key` header",
            Some(_) => "the `X-Api-Key` header does not hold a valid API key",
        };
        return error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    }
    match shared.limiter.check(Instant::now()) {
        Verdict::Unlimited => next.run(request).await,
        Verdict::Allowed { limit, remaining } => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            headers.insert(LIMIT, HeaderValue::from(limit));
            headers.insert(REMAINING, HeaderValue::from(remaining));
            response
        }
        Verdict::Limited {
            limit,
            retry_after,
            reset,
        } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("rate limit of {limit} requests exceeded; retry in {retry_after}s"),
            );
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            headers.insert(LIMIT, HeaderValue::from(limit));
            headers.insert(REMAINING, HeaderValue::from(0));
            headers.insert(RESET, HeaderValue::from(reset));
            response
        }
    }
}

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

// ---- reads ----------------------------------------------------------------

async fn list(
    State(shared): SharedState,
    schema: &'static Schema,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let request = match params {
        Ok(Query(params)) => PageRequest::parse(schema, params),
        Err(rejection) => Err(format!("malformed query string: {rejection}")),
    };
    let request = match request {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", message),
    };
    let page = shared.read().collection(schema).page(&request);
    let tally = Tally {
        served: Some((schema.name, page.returned)),
        ..Tally::default()
    };
    tallied(json_bytes(StatusCode::OK, page.body), tally)
}

async fn fetch(State(shared): SharedState, schema: &'static Schema, id: String) -> Response {
    let json = shared
        .read()
        .collection(schema)
        .live(&id)
        .map(|r| r.json.clone());
    match json {
        Some(json) => {
            let tally = Tally {
                served: Some((schema.name, 1)),
                ..Tally::default()
            };
            tallied(json_bytes(StatusCode::OK, json), tally)
        }
        None => not_found(schema, &id),
    }
}

#[derive(Debug, Deserialize)]
struct RedirectParams {
    to: Option<String>,
}

/// `GET /v1/redirect?to=URL`: a 302, for egress-policy tests.
async fn redirect(Query(params): Query<RedirectParams>) -> Response {
    match params.to {
        Some(to) => match HeaderValue::try_from(to) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "`to` is not a valid URL",
            ),
        },
        None => error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "missing `to` query parameter",
        ),
    }
}

/// `GET /v1/redirect/loop`: a 302 to itself, a partner's redirect loop.
async fn redirect_loop() -> Response {
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            HeaderValue::from_static("/v1/redirect/loop"),
        )],
    )
        .into_response()
}

// ---- writes ---------------------------------------------------------------

enum Op {
    Create,
    Update(String),
    Delete(String),
}

async fn write(
    State(shared): SharedState,
    schema: &'static Schema,
    op: Op,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match &op {
        Op::Delete(_) => Map::new(),
        Op::Create | Op::Update(_) => match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "body must be a JSON object",
                );
            }
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("body is not valid JSON: {e}"),
                );
            }
        },
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (method, path) = match &op {
        Op::Create => ("POST", format!("/v1/{}", schema.name)),
        Op::Update(id) => ("PATCH", format!("/v1/{}/{id}", schema.name)),
        Op::Delete(id) => ("DELETE", format!("/v1/{}/{id}", schema.name)),
    };
    let fingerprint = Fingerprint {
        method: method.to_owned(),
        path,
        body: Value::Object(fields.clone()),
    };

    shared.write(|store| {
        if let Some(key) = &key {
            match store.idempotency.lookup(key, &fingerprint) {
                Lookup::Fresh => {}
                Lookup::Replay(stored) => {
                    let mut response = replay(stored);
                    let tally = Tally {
                        replayed: true,
                        ..Tally::default()
                    };
                    response.extensions_mut().insert(tally);
                    return (response, None);
                }
                Lookup::Conflict => {
                    let message = format!(
                        "Idempotency-Key `{key}` was already used with a different request; use a new key for a new request"
                    );
                    let response = error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_conflict", message);
                    return (response, None);
                }
            }
        }
        let result = match &op {
            Op::Create => store.create(schema, &fields),
            Op::Update(id) => store.update(schema, id, &fields),
            Op::Delete(id) => store.delete(schema, id),
        };
        let change = match result {
            Ok(change) => change,
            Err(WriteError::NotFound) => {
                let id = match &op {
                    Op::Update(id) | Op::Delete(id) => id.as_str(),
                    Op::Create => "",
                };
                return (not_found(schema, id), None);
            }
            Err(WriteError::Invalid(e)) => return (validation_error(&e), None),
        };
        let stored = match change.kind {
            ChangeKind::Created => StoredResponse { status: 201, body: change.json.clone() },
            ChangeKind::Updated => StoredResponse { status: 200, body: change.json.clone() },
            ChangeKind::Deleted => StoredResponse { status: 204, body: Bytes::new() },
        };
        let response = respond(&stored);
        if let Some(key) = key {
            store.idempotency.remember(key, fingerprint, stored);
        }
        let tally = Tally {
            wrote: Some((schema.name, change.kind)),
            ..Tally::default()
        };
        (tallied(response, tally), Some(change))
    })
}

fn respond(stored: &StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    if stored.body.is_empty() {
        status.into_response()
    } else {
        json_bytes(status, stored.body.clone())
    }
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = respond(&stored);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

async fn no_route(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route for {method} {}; resources are {} under /v1/",
            uri.path(),
            schema::names()
        ),
    )
}

// ---- admin ----------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct MutateRequest {
    resource: String,
    count: usize,
}

/// `POST /_sim/mutate`: changes `count` seeded-random records, like a busy CRM.
async fn admin_mutate(State(shared): SharedState, body: Bytes) -> Response {
    let request: MutateRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let message = format!(r#"expected {{"resource": "contacts", "count": 100}}: {e}"#);
            return error(StatusCode::BAD_REQUEST, "bad_request", message);
        }
    };
    let Some(schema) = schema::lookup(&request.resource) else {
        let message = format!(
            "unknown resource `{}`; use one of {}",
            request.resource,
            schema::names()
        );
        return error(StatusCode::BAD_REQUEST, "bad_request", message);
    };
    let ids = shared.mutate(schema, request.count);
    Json(json!({ "ids": ids })).into_response()
}

async fn admin_counters(State(shared): SharedState) -> Response {
    Json(shared.counters.snapshot()).into_response()
}

async fn admin_reset_counters(State(shared): SharedState) -> StatusCode {
    shared.counters.reset();
    StatusCode::NO_CONTENT
}
