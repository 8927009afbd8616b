//! A connector built the way one was before `weir:connector@0.1.1`: with
//! `wit-bindgen` directly against the frozen 0.1.0 contract in
//! `wit/released/0.1.0`, not with `weir-sdk` (which always tracks the
//! newest WIT). It proves that a plugin built for 0.1.0 keeps loading and
//! syncing on a host that speaks a later 0.1.x.
//!
//! It reads the `contacts` of the partner simulator (Acme CRM's API) one page
//! per call, by cursor, with the API key from secret `api_key`; everything
//! else is `unsupported`.

wit_bindgen::generate!({
    path: "../../../wit/released/0.1.0",
    world: "connector",
});

use exports::weir::connector::{destination, setup, source, webhooks};
use serde_json::{Value, json};
use weir::connector::types::{
    ChangeFeed, ChangeKind, Checkpoint, ConnectorSpec, DeleteFeed, Error, IdempotencyStyle,
    IncomingRequest, Page, RateLimit, Record, SecretSpec, StreamCapabilities, StreamSchema,
    WebhookVerdict, WriteRequest, Written,
};
use weir::connector::{crypto, http};

struct Legacy;

export!(Legacy);

const CHECKPOINT_FORMAT: u32 = 1;

impl setup::Guest for Legacy {
    fn spec() -> ConnectorSpec {
        ConnectorSpec {
            name: "sdk-0-1-0".into(),
            version: "0.1.0".into(),
            description: "Acme CRM contacts, read by a connector built for weir:connector@0.1.0"
                .into(),
            config_schema: json!({
                "type": "object",
                "required": ["base_url"],
                "properties": { "base_url": { "type": "string", "format": "uri" } },
            })
            .to_string(),
            hosts: vec!["config:/base_url".into()],
            secrets: vec![SecretSpec {
                name: "api_key".into(),
                description: "an Acme CRM API key, sent as `X-Api-Key`".into(),
            }],
            streams: vec![StreamCapabilities {
                name: "contacts".into(),
                change_feed: ChangeFeed::Cursor,
                deletes: DeleteFeed::Tombstones,
                idempotency: IdempotencyStyle::NotWritable,
                versioned: true,
                webhooks: false,
            }],
            checkpoint_format: CHECKPOINT_FORMAT,
            sdk_version: "wit-bindgen 0.61.1".into(),
        }
    }

    fn check(config: String) -> Result<(), Error> {
        list(&base_url(&config)?, 1, None).map(drop)
    }

    fn discover(_config: String) -> Result<Vec<StreamSchema>, Error> {
        Ok(vec![StreamSchema {
            name: "contacts".into(),
            description: "People in Acme CRM".into(),
            primary_key: vec!["/id".into()],
            cursor_field: Some("/updated_at".into()),
            json_schema: json!({ "type": "object" }).to_string(),
        }])
    }

    fn migrate_checkpoint(_stream: String, _old: Checkpoint) -> Result<Checkpoint, Error> {
        Err(Error::Unsupported(
            "only one checkpoint format exists".into(),
        ))
    }
}

impl source::Guest for Legacy {
    fn read(config: String, request: source::ReadRequest) -> Result<Page, Error> {
        // Through `crypto`, an import that grew in 0.1.1: the host's larger
        // interface must still satisfy this component's 0.1.0 import.
        if !crypto::constant_time_eq(request.stream_name.as_bytes(), b"contacts") {
            return Err(Error::Permanent(format!(
                "unknown stream `{}`",
                request.stream_name
            )));
        }
        let cursor = request
            .checkpoint
            .and_then(|c| serde_json::from_str::<Value>(&c.state).ok())
            .and_then(|state| state["cursor"].as_str().map(str::to_string));
        let limit = request.max_records.clamp(1, 1000);
        let body = list(&base_url(&config)?, limit, cursor.as_deref())?;
        let records = body["data"]
            .as_array()
            .ok_or_else(|| Error::Permanent("the partner's list has no `data`".into()))?
            .iter()
            .map(record)
            .collect::<Result<_, _>>()?;
        let next = body["next_cursor"].as_str().map(str::to_string).or(cursor);
        Ok(Page {
            records,
            checkpoint: Checkpoint {
                format: CHECKPOINT_FORMAT,
                state: json!({ "cursor": next }).to_string(),
            },
            has_more: body["has_more"].as_bool().unwrap_or(false),
        })
    }

    fn fetch(_config: String, _stream: String, _keys: Vec<String>) -> Result<Vec<Record>, Error> {
        Err(unsupported())
    }
}

impl destination::Guest for Legacy {
    fn write(
        _config: String,
        _stream: String,
        _requests: Vec<WriteRequest>,
    ) -> Result<Vec<Result<Written, Error>>, Error> {
        Err(unsupported())
    }

    fn lookup(_config: String, _stream: String, _key: String) -> Result<Option<Written>, Error> {
        Err(unsupported())
    }
}

impl webhooks::Guest for Legacy {
    fn verify(_config: String, _request: IncomingRequest) -> Result<WebhookVerdict, Error> {
        Err(unsupported())
    }

    fn handle(
        _config: String,
        _request: IncomingRequest,
    ) -> Result<Vec<weir::connector::types::ChangeNotice>, Error> {
        Err(unsupported())
    }
}

fn unsupported() -> Error {
    Error::Unsupported("this connector only reads contacts".into())
}

fn base_url(config: &str) -> Result<String, Error> {
    let config: Value =
        serde_json::from_str(config).map_err(|e| Error::Config(format!("invalid config: {e}")))?;
    config["base_url"]
        .as_str()
        .map(|url| url.trim_end_matches('/').to_string())
        .ok_or_else(|| Error::Config("`base_url` is required".into()))
}

/// One page of `GET /v1/contacts`, deletes included.
fn list(base_url: &str, limit: u32, cursor: Option<&str>) -> Result<Value, Error> {
    let mut url = format!("{base_url}/v1/contacts?limit={limit}&include_deleted=true");
    if let Some(cursor) = cursor {
        url.push_str("&cursor=");
        url.push_str(&encode(cursor));
    }
    let response = http::send(&http::Request {
        method: http::Method::Get,
        url,
        headers: vec![],
        secret_headers: vec![http::SecretHeader {
            name: "x-api-key".into(),
            secret: "api_key".into(),
            prefix: String::new(),
        }],
        body: None,
        idempotency_key: None,
        timeout_ms: None,
    })
    .map_err(|e| match e {
        http::HttpError::Denied(m) => Error::Denied(m),
        http::HttpError::RateLimited(limit) => Error::RateLimited(limit),
        http::HttpError::Timeout(m) | http::HttpError::Transport(m) => Error::Transient(m),
        http::HttpError::TooLarge(m) | http::HttpError::InvalidRequest(m) => Error::Permanent(m),
    })?;
    let text = String::from_utf8_lossy(&response.body);
    match response.status {
        200..=299 => serde_json::from_str(&text)
            .map_err(|e| Error::Permanent(format!("the partner sent invalid JSON: {e}"))),
        401 | 403 => Err(Error::Auth(format!(
            "the partner refused the API key ({}): check secret `api_key`",
            response.status
        ))),
        429 => {
            let seconds = response
                .headers
                .iter()
                .find(|(name, _)| name == "retry-after")
                .and_then(|(_, value)| value.trim().parse::<u64>().ok())
                .unwrap_or(1);
            Err(Error::RateLimited(RateLimit {
                retry_after_ms: seconds * 1000,
                message: "the partner answered 429".into(),
            }))
        }
        500..=599 => Err(Error::Transient(format!(
            "the partner answered {}",
            response.status
        ))),
        status => Err(Error::Permanent(format!(
            "the partner answered {status}: {text}"
        ))),
    }
}

/// A partner object as a record: keyed by `id`, versioned by `version`,
/// deleted when `deleted` is true.
fn record(object: &Value) -> Result<Record, Error> {
    let key = match &object["id"] {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.to_string(),
        _ => return Err(Error::Permanent("a contact has no `id`".into())),
    };
    Ok(Record {
        key,
        version: object["version"].as_u64(),
        kind: if object["deleted"].as_bool() == Some(true) {
            ChangeKind::Delete
        } else {
            ChangeKind::Upsert
        },
        data: object.to_string(),
    })
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
