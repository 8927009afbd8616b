//! The `weir:connector@0.1` release line, bound at its newest version.
//! Components built for an earlier `0.1.z` use these bindings too: their
//! imports resolve to this version's (a compatible release only adds), and
//! wasmtime finds their `@0.1.z` exports by semver.

use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use crate::call::CallState;
use crate::capability::{OutgoingRequest, RequestFailure, SecretHeader};
use crate::contract as domain;

/// The newest version of the line, the one `wit/` holds.
pub const VERSION: &str = "0.1.1";

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "connector",
        imports: { "weir:connector/http.send": async },
        exports: { default: async },
    });
}

mod transformer_bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transformer",
        with: {
            "weir:connector/types": super::bindings::weir::connector::types,
            "weir:connector/log": super::bindings::weir::connector::log,
        },
        exports: { default: async },
    });
}

use bindings::weir::connector::{crypto, http, log, types};

pub fn add_to_linker(linker: &mut Linker<CallState>) -> anyhow::Result<()> {
    bindings::Connector::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)?;
    Ok(())
}

// ---- imports ---------------------------------------------------------------

impl types::Host for CallState {}

impl http::Host for CallState {
    async fn send(&mut self, request: http::Request) -> Result<http::Response, http::HttpError> {
        let request = OutgoingRequest {
            method: match request.method {
                http::Method::Get => reqwest::Method::GET,
                http::Method::Head => reqwest::Method::HEAD,
                http::Method::Post => reqwest::Method::POST,
                http::Method::Put => reqwest::Method::PUT,
                http::Method::Patch => reqwest::Method::PATCH,
                http::Method::Delete => reqwest::Method::DELETE,
            },
            url: request.url,
            headers: request.headers,
            secret_headers: request
                .secret_headers
                .into_iter()
                .map(|h| SecretHeader {
                    name: h.name,
                    secret: h.secret,
                    prefix: h.prefix,
                })
                .collect(),
            body: request.body,
            idempotency_key: request.idempotency_key,
            timeout: request
                .timeout_ms
                .map(|ms| Duration::from_millis(ms.into())),
        };
        let described = self.env.gate().describe(&request);
        match self
            .env
            .gate()
            .send(request, self.deadline, &mut self.redirects)
            .await
        {
            Ok(response) => {
                self.partner_note = self.env.gate().refusal_hint(response.status, &described);
                Ok(http::Response {
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                })
            }
            Err(failure) => Err(match failure {
                RequestFailure::Denied {
                    for_guest,
                    for_operator,
                } => {
                    self.denial.get_or_insert(for_operator);
                    http::HttpError::Denied(for_guest)
                }
                RequestFailure::RateLimited {
                    retry_after,
                    message,
                } => http::HttpError::RateLimited(types::RateLimit {
                    retry_after_ms: retry_after.as_millis() as u64,
                    message,
                }),
                RequestFailure::Timeout(m) => http::HttpError::Timeout(m),
                RequestFailure::Transport(m) => http::HttpError::Transport(m),
                RequestFailure::TooLarge(m) => {
                    self.partner_note = Some(self.env.gate().too_large_hint());
                    http::HttpError::TooLarge(m)
                }
                RequestFailure::InvalidRequest(m) => http::HttpError::InvalidRequest(m),
            }),
        }
    }
}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String) {
        let Some(message) = self.admit_log(message) else {
            return;
        };
        let plugin = self.env.plugin();
        let connection = self.env.connection().unwrap_or("-");
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "weir::guest", plugin, connection, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "weir::guest", plugin, connection, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "weir::guest", plugin, connection, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "weir::guest", plugin, connection, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "weir::guest", plugin, connection, "{message}")
            }
        }
    }
}

impl crypto::Host for CallState {
    fn verify_hmac_sha256(
        &mut self,
        secret: String,
        message: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<bool, types::Error> {
        let values = self.env.gate().secrets().all(&secret);
        if values.is_empty() {
            return Err(types::Error::Denied(format!(
                "secret `{secret}` is not defined for this connection"
            )));
        }
        Ok(values.iter().any(|key| {
            crate::capability::hmac_sha256_matches(
                &crate::capability::hmac_key(key.expose()),
                &message,
                &signature,
            )
        }))
    }

    fn sign_hmac_sha256(
        &mut self,
        secret: String,
        message: Vec<u8>,
    ) -> Result<Vec<u8>, types::Error> {
        let key = self.env.gate().secrets().current(&secret).ok_or_else(|| {
            types::Error::Denied(format!(
                "secret `{secret}` is not defined for this connection"
            ))
        })?;
        Ok(crate::capability::hmac_sha256(
            &crate::capability::hmac_key(key.expose()),
            &message,
        ))
    }

    fn constant_time_eq(&mut self, a: Vec<u8>, b: Vec<u8>) -> bool {
        crate::capability::constant_time_eq(&a, &b)
    }

    fn verify_ed25519(
        &mut self,
        public_key: Vec<u8>,
        message: Vec<u8>,
        signature: Vec<u8>,
    ) -> bool {
        crate::capability::verify_ed25519(&public_key, &message, &signature)
    }
}

// ---- exports ---------------------------------------------------------------

pub struct ConnectorPre(bindings::ConnectorPre<CallState>);

impl ConnectorPre {
    pub fn new(pre: InstancePre<CallState>) -> Result<Self, super::AbiMismatch> {
        bindings::ConnectorPre::new(pre)
            .map(Self)
            .map_err(|e| super::AbiMismatch::Imports(format!("{e:#}")))
    }

    async fn instance(
        &self,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<bindings::Connector> {
        self.0.instantiate_async(store).await
    }
}

#[async_trait::async_trait]
impl super::ConnectorInstance for ConnectorPre {
    async fn spec(&self, store: &mut Store<CallState>) -> wasmtime::Result<domain::ConnectorSpec> {
        let instance = self.instance(store).await?;
        let spec = instance.weir_connector_setup().call_spec(store).await?;
        Ok(spec.into())
    }

    async fn check(&self, store: &mut Store<CallState>, config: &String) -> super::GuestResult<()> {
        let instance = self.instance(store).await?;
        let result = instance
            .weir_connector_setup()
            .call_check(store, config)
            .await?;
        Ok(result.map_err(Into::into))
    }

    async fn discover(
        &self,
        store: &mut Store<CallState>,
        config: &String,
    ) -> super::GuestResult<Vec<domain::StreamSchema>> {
        let instance = self.instance(store).await?;
        let result = instance
            .weir_connector_setup()
            .call_discover(store, config)
            .await?;
        Ok(result
            .map(|streams| streams.into_iter().map(Into::into).collect())
            .map_err(Into::into))
    }

    async fn migrate_checkpoint(
        &self,
        store: &mut Store<CallState>,
        stream: &str,
        old: domain::Checkpoint,
    ) -> super::GuestResult<domain::Checkpoint> {
        let instance = self.instance(store).await?;
        let result = instance
            .weir_connector_setup()
            .call_migrate_checkpoint(store, stream, &old.into())
            .await?;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn read(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        checkpoint: Option<domain::Checkpoint>,
        max_records: u32,
    ) -> super::GuestResult<domain::Page> {
        let instance = self.instance(store).await?;
        let request = bindings::exports::weir::connector::source::ReadRequest {
            stream_name: stream.to_string(),
            checkpoint: checkpoint.map(Into::into),
            max_records,
        };
        let result = instance
            .weir_connector_source()
            .call_read(store, config, &request)
            .await?;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn fetch(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        keys: Vec<String>,
    ) -> super::GuestResult<Vec<domain::Record>> {
        let instance = self.instance(store).await?;
        let result = instance
            .weir_connector_source()
            .call_fetch(store, config, stream, &keys)
            .await?;
        Ok(result
            .map(|records| records.into_iter().map(Into::into).collect())
            .map_err(Into::into))
    }

    async fn write(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        requests: Vec<domain::WriteRequest>,
    ) -> super::GuestResult<Vec<Result<domain::Written, domain::ConnectorError>>> {
        let instance = self.instance(store).await?;
        let requests: Vec<types::WriteRequest> = requests.into_iter().map(Into::into).collect();
        let result = instance
            .weir_connector_destination()
            .call_write(store, config, stream, &requests)
            .await?;
        Ok(result
            .map(|results| {
                results
                    .into_iter()
                    .map(|r| r.map(Into::into).map_err(Into::into))
                    .collect()
            })
            .map_err(Into::into))
    }

    async fn lookup(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        idempotency_key: &str,
    ) -> super::GuestResult<Option<domain::Written>> {
        let instance = self.instance(store).await?;
        let result = instance
            .weir_connector_destination()
            .call_lookup(store, config, stream, idempotency_key)
            .await?;
        Ok(result.map(|w| w.map(Into::into)).map_err(Into::into))
    }

    async fn verify_webhook(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        request: &domain::IncomingRequest,
    ) -> super::GuestResult<domain::WebhookVerdict> {
        let instance = self.instance(store).await?;
        let result = instance
            .weir_connector_webhooks()
            .call_verify(store, config, &incoming(request))
            .await?;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn handle_webhook(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        request: &domain::IncomingRequest,
    ) -> super::GuestResult<Vec<domain::ChangeNotice>> {
        let instance = self.instance(store).await?;
        let result = instance
            .weir_connector_webhooks()
            .call_handle(store, config, &incoming(request))
            .await?;
        Ok(result
            .map(|notices| notices.into_iter().map(Into::into).collect())
            .map_err(Into::into))
    }
}

pub struct TransformerPre(transformer_bindings::TransformerPre<CallState>);

impl TransformerPre {
    pub fn new(pre: InstancePre<CallState>) -> Result<Self, super::AbiMismatch> {
        transformer_bindings::TransformerPre::new(pre)
            .map(Self)
            .map_err(|e| super::AbiMismatch::Imports(format!("{e:#}")))
    }
}

#[async_trait::async_trait]
impl super::TransformInstance for TransformerPre {
    async fn transform(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        records: Vec<String>,
    ) -> super::GuestResult<Vec<Result<Option<String>, domain::ConnectorError>>> {
        let instance = self.0.instantiate_async(&mut *store).await?;
        let result = instance
            .weir_connector_transform()
            .call_transform(store, config, &records)
            .await?;
        Ok(result
            .map(|results| results.into_iter().map(|r| r.map_err(Into::into)).collect())
            .map_err(Into::into))
    }
}

// ---- conversions -----------------------------------------------------------

impl From<types::Error> for domain::ConnectorError {
    fn from(error: types::Error) -> Self {
        match error {
            types::Error::Config(m) => Self::Config(m),
            types::Error::Auth(m) => Self::Auth(m),
            types::Error::Denied(m) => Self::Denied(m),
            types::Error::RateLimited(limit) => Self::RateLimited {
                retry_after: Duration::from_millis(limit.retry_after_ms),
                message: limit.message,
            },
            types::Error::Transient(m) => Self::Transient(m),
            types::Error::Permanent(m) => Self::Permanent(m),
            types::Error::Unsupported(m) => Self::Unsupported(m),
        }
    }
}

impl From<types::ChangeKind> for domain::ChangeKind {
    fn from(kind: types::ChangeKind) -> Self {
        match kind {
            types::ChangeKind::Upsert => Self::Upsert,
            types::ChangeKind::Delete => Self::Delete,
        }
    }
}

impl From<domain::ChangeKind> for types::ChangeKind {
    fn from(kind: domain::ChangeKind) -> Self {
        match kind {
            domain::ChangeKind::Upsert => Self::Upsert,
            domain::ChangeKind::Delete => Self::Delete,
        }
    }
}

impl From<types::Record> for domain::Record {
    fn from(r: types::Record) -> Self {
        Self {
            key: r.key,
            version: r.version,
            kind: r.kind.into(),
            data: r.data,
        }
    }
}

impl From<types::Checkpoint> for domain::Checkpoint {
    fn from(c: types::Checkpoint) -> Self {
        Self {
            format: c.format,
            state: c.state,
        }
    }
}

impl From<domain::Checkpoint> for types::Checkpoint {
    fn from(c: domain::Checkpoint) -> Self {
        Self {
            format: c.format,
            state: c.state,
        }
    }
}

impl From<types::Page> for domain::Page {
    fn from(p: types::Page) -> Self {
        Self {
            records: p.records.into_iter().map(Into::into).collect(),
            checkpoint: p.checkpoint.into(),
            has_more: p.has_more,
        }
    }
}

impl From<types::StreamSchema> for domain::StreamSchema {
    fn from(s: types::StreamSchema) -> Self {
        Self {
            name: s.name,
            description: s.description,
            primary_key: s.primary_key,
            cursor_field: s.cursor_field,
            json_schema: s.json_schema,
        }
    }
}

impl From<types::StreamCapabilities> for domain::StreamCapabilities {
    fn from(s: types::StreamCapabilities) -> Self {
        Self {
            name: s.name,
            change_feed: match s.change_feed {
                types::ChangeFeed::FullOnly => domain::ChangeFeed::FullOnly,
                types::ChangeFeed::Cursor => domain::ChangeFeed::Cursor,
                types::ChangeFeed::ChangeLog => domain::ChangeFeed::ChangeLog,
            },
            deletes: match s.deletes {
                types::DeleteFeed::None => domain::DeleteFeed::None,
                types::DeleteFeed::Tombstones => domain::DeleteFeed::Tombstones,
                types::DeleteFeed::Webhooks => domain::DeleteFeed::Webhooks,
            },
            idempotency: match s.idempotency {
                types::IdempotencyStyle::NotWritable => domain::IdempotencyStyle::NotWritable,
                types::IdempotencyStyle::Key => domain::IdempotencyStyle::Key,
                types::IdempotencyStyle::Lookup => domain::IdempotencyStyle::Lookup,
                types::IdempotencyStyle::Natural => domain::IdempotencyStyle::Natural,
            },
            versioned: s.versioned,
            webhooks: s.webhooks,
        }
    }
}

impl From<types::ConnectorSpec> for domain::ConnectorSpec {
    fn from(s: types::ConnectorSpec) -> Self {
        Self {
            name: s.name,
            version: s.version,
            description: s.description,
            config_schema: s.config_schema,
            hosts: s.hosts,
            secrets: s
                .secrets
                .into_iter()
                .map(|x| domain::SecretSpec {
                    name: x.name,
                    description: x.description,
                })
                .collect(),
            streams: s.streams.into_iter().map(Into::into).collect(),
            checkpoint_format: s.checkpoint_format,
            sdk_version: s.sdk_version,
        }
    }
}

impl From<domain::WriteRequest> for types::WriteRequest {
    fn from(w: domain::WriteRequest) -> Self {
        Self {
            data: w.data,
            external_id: w.external_id,
            kind: w.kind.into(),
            idempotency_key: w.idempotency_key,
        }
    }
}

impl From<types::Written> for domain::Written {
    fn from(w: types::Written) -> Self {
        Self {
            external_id: w.external_id,
            version: w.version,
        }
    }
}

fn incoming(r: &domain::IncomingRequest) -> types::IncomingRequest {
    types::IncomingRequest {
        method: r.method.clone(),
        path: r.path.clone(),
        query: r.query.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
        received_at_ms: r.received_at_ms,
    }
}

impl From<types::Reply> for domain::Reply {
    fn from(r: types::Reply) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<types::WebhookVerdict> for domain::WebhookVerdict {
    fn from(v: types::WebhookVerdict) -> Self {
        match v {
            types::WebhookVerdict::Handshake(reply) => Self::Handshake(reply.into()),
            types::WebhookVerdict::Accept(a) => Self::Accept(domain::AcceptedDelivery {
                delivery_key: a.delivery_key,
                reply: a.reply.map(Into::into),
            }),
            types::WebhookVerdict::Reject(r) => Self::Reject(domain::Rejection {
                reason: match r.reason {
                    types::RejectionReason::MissingSignature => {
                        domain::RejectionReason::MissingSignature
                    }
                    types::RejectionReason::BadSignature => domain::RejectionReason::BadSignature,
                    types::RejectionReason::StaleTimestamp => {
                        domain::RejectionReason::StaleTimestamp
                    }
                    types::RejectionReason::Malformed => domain::RejectionReason::Malformed,
                },
                detail: r.detail,
            }),
        }
    }
}

impl From<types::ChangeNotice> for domain::ChangeNotice {
    fn from(n: types::ChangeNotice) -> Self {
        Self {
            stream: n.stream_name,
            key: n.key,
            kind: n.kind.into(),
            version: n.version,
            data: n.data,
        }
    }
}
