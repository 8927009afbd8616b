//! Conversions between the SDK's types and the generated ones, in one place:
//! a new WIT version changes this file and `bindings.rs`, not the API.

use crate::bindings::{source, types as wit};
use crate::{
    ChangeFeed, ChangeKind, ChangeNotice, Checkpoint, DeleteFeed, Error, IdempotencyStyle,
    IncomingRequest, Page, ReadRequest, Record, RejectionReason, Reply, SecretSpec, Spec,
    StreamCapabilities, StreamSchema, WebhookVerdict, WriteRequest, Written,
};

impl From<Error> for wit::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Config(message) => Self::Config(message),
            Error::Auth(message) => Self::Auth(message),
            Error::Denied(message) => Self::Denied(message),
            Error::RateLimited {
                retry_after_ms,
                message,
            } => Self::RateLimited(wit::RateLimit {
                retry_after_ms,
                message,
            }),
            Error::Transient(message) => Self::Transient(message),
            Error::Permanent(message) => Self::Permanent(message),
            Error::Unsupported(message) => Self::Unsupported(message),
        }
    }
}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::Config(message) => Self::Config(message),
            wit::Error::Auth(message) => Self::Auth(message),
            wit::Error::Denied(message) => Self::Denied(message),
            wit::Error::RateLimited(limit) => Self::RateLimited {
                retry_after_ms: limit.retry_after_ms,
                message: limit.message,
            },
            wit::Error::Transient(message) => Self::Transient(message),
            wit::Error::Permanent(message) => Self::Permanent(message),
            wit::Error::Unsupported(message) => Self::Unsupported(message),
        }
    }
}

impl From<Spec> for wit::ConnectorSpec {
    fn from(spec: Spec) -> Self {
        Self {
            name: spec.name,
            version: spec.version,
            description: spec.description,
            config_schema: spec.config_schema,
            hosts: spec.hosts,
            secrets: spec.secrets.into_iter().map(Into::into).collect(),
            streams: spec.streams.into_iter().map(Into::into).collect(),
            checkpoint_format: spec.checkpoint_format,
            sdk_version: spec.sdk_version,
        }
    }
}

impl From<SecretSpec> for wit::SecretSpec {
    fn from(secret: SecretSpec) -> Self {
        Self {
            name: secret.name,
            description: secret.description,
        }
    }
}

impl From<StreamCapabilities> for wit::StreamCapabilities {
    fn from(stream: StreamCapabilities) -> Self {
        Self {
            name: stream.name,
            change_feed: match stream.change_feed {
                ChangeFeed::FullOnly => wit::ChangeFeed::FullOnly,
                ChangeFeed::Cursor => wit::ChangeFeed::Cursor,
                ChangeFeed::ChangeLog => wit::ChangeFeed::ChangeLog,
            },
            deletes: match stream.deletes {
                DeleteFeed::None => wit::DeleteFeed::None,
                DeleteFeed::Tombstones => wit::DeleteFeed::Tombstones,
                DeleteFeed::Webhooks => wit::DeleteFeed::Webhooks,
            },
            idempotency: match stream.idempotency {
                IdempotencyStyle::NotWritable => wit::IdempotencyStyle::NotWritable,
                IdempotencyStyle::Key => wit::IdempotencyStyle::Key,
                IdempotencyStyle::Lookup => wit::IdempotencyStyle::Lookup,
                IdempotencyStyle::Natural => wit::IdempotencyStyle::Natural,
            },
            versioned: stream.versioned,
            webhooks: stream.webhooks,
        }
    }
}

impl From<StreamSchema> for wit::StreamSchema {
    fn from(schema: StreamSchema) -> Self {
        Self {
            name: schema.name,
            description: schema.description,
            primary_key: schema.primary_key,
            cursor_field: schema.cursor_field,
            json_schema: schema.json_schema,
        }
    }
}

impl From<wit::Checkpoint> for Checkpoint {
    fn from(checkpoint: wit::Checkpoint) -> Self {
        Self {
            format: checkpoint.format,
            state: checkpoint.state,
        }
    }
}

impl From<Checkpoint> for wit::Checkpoint {
    fn from(checkpoint: Checkpoint) -> Self {
        Self {
            format: checkpoint.format,
            state: checkpoint.state,
        }
    }
}

impl From<wit::ChangeKind> for ChangeKind {
    fn from(kind: wit::ChangeKind) -> Self {
        match kind {
            wit::ChangeKind::Upsert => Self::Upsert,
            wit::ChangeKind::Delete => Self::Delete,
        }
    }
}

impl From<ChangeKind> for wit::ChangeKind {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::Upsert => Self::Upsert,
            ChangeKind::Delete => Self::Delete,
        }
    }
}

impl From<Record> for wit::Record {
    fn from(record: Record) -> Self {
        Self {
            key: record.key,
            version: record.version,
            kind: record.kind.into(),
            data: record.data,
        }
    }
}

impl From<Page> for wit::Page {
    fn from(page: Page) -> Self {
        Self {
            records: page.records.into_iter().map(Into::into).collect(),
            checkpoint: page.checkpoint.into(),
            has_more: page.has_more,
        }
    }
}

impl From<source::ReadRequest> for ReadRequest {
    fn from(request: source::ReadRequest) -> Self {
        Self {
            stream: request.stream_name,
            checkpoint: request.checkpoint.map(Into::into),
            max_records: request.max_records,
        }
    }
}

impl From<wit::WriteRequest> for WriteRequest {
    fn from(request: wit::WriteRequest) -> Self {
        Self {
            data: request.data,
            external_id: request.external_id,
            kind: request.kind.into(),
            idempotency_key: request.idempotency_key,
        }
    }
}

impl From<Written> for wit::Written {
    fn from(written: Written) -> Self {
        Self {
            external_id: written.external_id,
            version: written.version,
        }
    }
}

impl From<wit::IncomingRequest> for IncomingRequest {
    fn from(request: wit::IncomingRequest) -> Self {
        Self {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
            received_at_ms: request.received_at_ms,
        }
    }
}

impl From<Reply> for wit::Reply {
    fn from(reply: Reply) -> Self {
        Self {
            status: reply.status,
            headers: reply.headers,
            body: reply.body,
        }
    }
}

impl From<WebhookVerdict> for wit::WebhookVerdict {
    fn from(verdict: WebhookVerdict) -> Self {
        match verdict {
            WebhookVerdict::Handshake(reply) => Self::Handshake(reply.into()),
            WebhookVerdict::Accept {
                delivery_key,
                reply,
            } => Self::Accept(wit::AcceptedDelivery {
                delivery_key,
                reply: reply.map(Into::into),
            }),
            WebhookVerdict::Reject { reason, detail } => Self::Reject(wit::Rejection {
                reason: match reason {
                    RejectionReason::MissingSignature => wit::RejectionReason::MissingSignature,
                    RejectionReason::BadSignature => wit::RejectionReason::BadSignature,
                    RejectionReason::StaleTimestamp => wit::RejectionReason::StaleTimestamp,
                    RejectionReason::Malformed => wit::RejectionReason::Malformed,
                },
                detail,
            }),
        }
    }
}

impl From<ChangeNotice> for wit::ChangeNotice {
    fn from(notice: ChangeNotice) -> Self {
        Self {
            stream_name: notice.stream,
            key: notice.key,
            kind: notice.kind.into(),
            version: notice.version,
            data: notice.data,
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod imports {
    use crate::bindings::{http as wit_http, log as wit_log};
    use crate::http::{Method, SecretHeader};
    use crate::log::Level;

    impl From<Method> for wit_http::Method {
        fn from(method: Method) -> Self {
            match method {
                Method::Get => Self::Get,
                Method::Head => Self::Head,
                Method::Post => Self::Post,
                Method::Put => Self::Put,
                Method::Patch => Self::Patch,
                Method::Delete => Self::Delete,
            }
        }
    }

    impl From<SecretHeader> for wit_http::SecretHeader {
        fn from(header: SecretHeader) -> Self {
            Self {
                name: header.name,
                secret: header.secret,
                prefix: header.prefix,
            }
        }
    }

    impl From<Level> for wit_log::Level {
        fn from(level: Level) -> Self {
            match level {
                Level::Trace => Self::Trace,
                Level::Debug => Self::Debug,
                Level::Info => Self::Info,
                Level::Warn => Self::Warn,
                Level::Error => Self::Error,
            }
        }
    }
}
