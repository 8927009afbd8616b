//! A Weir connector for Acme CRM, written with `weir-sdk`: a complete
//! example to copy from.
//!
//! - `contacts`: read incrementally by cursor (deletes included, as
//!   tombstones), written (create, update, delete) with idempotency keys,
//!   kept fresh by webhooks.
//! - `companies`: read incrementally by cursor; read-only. Acme CRM deletes
//!   companies outright and never reports it: the stream says so
//!   (`DeleteFeed::None`), and Weir finds deleted companies by their absence
//!   from a full refresh.
//!
//! Configuration: `{"base_url": "https://api.acme.example", "page_size": 1000,
//! "start_date": "2024-01-01T00:00:00Z"}` (only `base_url` is required).
//! Secrets: `api_key` (sent as `X-Api-Key`) and `webhook_secret` (Standard
//! Webhooks signatures); a subscription that signs with a key pair instead
//! gives its public key as `"webhook_public_key": "whpk_..."`.
//!
//! Checkpoints are a [`Position`]; format 1 is
//! `{"cursor": "<next_cursor>" | null}`: Acme CRM's `next_cursor` is the
//! position of the last record returned, so storing it after the last page
//! and passing it next time fetches exactly what changed since.

mod config;
mod schemas;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use weir_sdk::http::{Request, encode_component};
use weir_sdk::{
    ChangeFeed, ChangeKind, ChangeNotice, Checkpoint, Connector, DeleteFeed, Error,
    IdempotencyStyle, IncomingRequest, Page, ReadRequest, Record, RecordFields, Result, ResultExt,
    Spec, State, Stream, StreamSchema, Streams, WebhookVerdict, WriteRequest, Written,
};

use crate::config::{API_KEY, AcmeConfig, WEBHOOK_SECRET, authenticated};

/// The connector. It holds no state: every call gets the parsed config.
pub struct AcmeCrm;

#[cfg(feature = "export")]
weir_sdk::export_connector!(AcmeCrm);

/// People: read by cursor with the tombstones of deleted contacts, written
/// with idempotency keys, kept fresh by webhooks.
const CONTACTS: Stream<&str> = Stream::new("contacts", "contacts")
    .description("People in Acme CRM")
    .json_schema(schemas::contact)
    .primary_key(&["/id"])
    .cursor_field("/updated_at")
    .change_feed(ChangeFeed::Cursor)
    .deletes(DeleteFeed::Tombstones)
    .idempotency(IdempotencyStyle::Key)
    .versioned(true)
    .webhooks(true);

/// Organisations: read by cursor, read-only, deletes never reported.
const COMPANIES: Stream<&str> = Stream::new("companies", "companies")
    .description("Organisations in Acme CRM")
    .json_schema(schemas::company)
    .primary_key(&["/id"])
    .cursor_field("/updated_at")
    .change_feed(ChangeFeed::Cursor)
    .deletes(DeleteFeed::None)
    .versioned(true);

/// Every stream, with its resource path under `/v1/` as payload: the spec,
/// `discover` and the stream each call names all come from here.
const STREAMS: Streams<&str> = Streams::new(&[CONTACTS, COMPANIES]);

/// Where a stream's next read starts: the checkpoint of both streams.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Position {
    /// Acme CRM's `next_cursor`; `None` before the first record.
    cursor: Option<String>,
}

impl State for Position {
    const FORMAT: u32 = 1;
}

/// Acme CRM objects are keyed by `id`, versioned by `version`, and deleted
/// objects carry `"deleted": true`.
const OBJECT: RecordFields = RecordFields::key("id")
    .version("version")
    .deleted_flag("deleted");

/// A list response. The objects stay borrowed slices of the body: their
/// text becomes the records' data untouched.
#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    next_cursor: Option<String>,
    has_more: bool,
}

/// What a write needs to know about the object it wrote.
#[derive(Deserialize)]
struct Saved {
    id: String,
    version: u64,
}

impl Connector for AcmeCrm {
    type Config = AcmeConfig;

    fn spec() -> Spec {
        Spec::new("acme-crm", env!("CARGO_PKG_VERSION"))
            .description(
                "Contacts and companies of Acme CRM; writes contacts; receives contact webhooks",
            )
            .config_schema(config::schema())
            .host("config:/base_url")
            .secret(
                API_KEY,
                "an Acme CRM API key, from Settings > API keys; sent as `X-Api-Key`",
            )
            .secret(
                WEBHOOK_SECRET,
                "the signing secret of the Acme CRM webhook subscription (Standard Webhooks)",
            )
            .streams(&STREAMS)
            .checkpoint_format(Position::FORMAT)
    }

    /// One cheap authenticated request.
    fn check(config: &AcmeConfig) -> Result<()> {
        let contacts = config.url(CONTACTS.payload);
        let response = authenticated(Request::get(&contacts))
            .query("limit", 1)
            .send()?;
        match response.status {
            401 | 403 => Err(Error::auth(format!(
                "the partner refused {API_KEY}: check secret `{API_KEY}` of this connection"
            ))),
            404 => Err(Error::config(format!(
                "base_url does not serve the Acme CRM API: GET {contacts} returned 404"
            ))),
            _ => response.error_for_status().map(drop),
        }
    }

    fn discover(_config: &AcmeConfig) -> Result<Vec<StreamSchema>> {
        Ok(STREAMS.schemas())
    }

    /// One partner page per call, deleted contacts included (deleted
    /// companies are not listed).
    fn read(config: &AcmeConfig, request: ReadRequest) -> Result<Page> {
        let stream = STREAMS.get(&request.stream)?;
        let position: Position = request.resume()?.unwrap_or_default();
        let limit = request.max_records.clamp(1, config.page_size);

        let mut call =
            authenticated(Request::get(config.url(stream.payload))).query("limit", limit);
        // Acme CRM lists deleted objects only when asked to: the stream
        // that reports tombstones asks.
        if stream.deletes == DeleteFeed::Tombstones {
            call = call.query("include_deleted", true);
        }
        call = match &position.cursor {
            Some(cursor) => call.query("cursor", cursor),
            None => call.query_opt("updated_since", config.start_date.as_deref()),
        };
        let response = call.send()?.error_for_status()?;
        let list: List = response.json()?;
        let records = OBJECT.records(&list.data)?;

        // Keep the old cursor if the partner ever returns none: never
        // restart a full sync by accident.
        let next = Position {
            cursor: list.next_cursor.or(position.cursor),
        };
        Ok(Page::new(records, Checkpoint::encode(&next)?).with_more(list.has_more))
    }

    /// The current state of each key; 404 means it was deleted.
    fn fetch(config: &AcmeConfig, stream: &str, keys: Vec<String>) -> Result<Vec<Record>> {
        let resource = config.url(STREAMS.get(stream)?.payload);
        keys.into_iter()
            .map(|key| {
                let url = format!("{resource}/{}", encode_component(&key));
                let response = authenticated(Request::get(url)).send()?;
                if response.status == 404 {
                    return Ok(Record::delete(key));
                }
                let response = response.error_for_status()?;
                OBJECT.record(response.json()?)
            })
            .collect()
    }

    /// One request per object. A refused object (422) fails alone; anything
    /// that stops all writes (401, 429, outages) fails the batch, which the
    /// host retries with the same idempotency keys.
    fn write(
        config: &AcmeConfig,
        stream: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<Result<Written>>> {
        let contacts = config.url(STREAMS.writable(stream)?.payload);
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            match write_contact(&contacts, request) {
                Ok(written) => results.push(Ok(written)),
                Err(Error::Permanent(message)) => results.push(Err(Error::Permanent(message))),
                Err(error) => return Err(error),
            }
        }
        Ok(results)
    }

    /// Creates store the idempotency key as `external_id`, so a contact
    /// created by a write interrupted by a crash can be found again.
    fn lookup(config: &AcmeConfig, stream: &str, idempotency_key: &str) -> Result<Option<Written>> {
        let contacts = config.url(STREAMS.writable(stream)?.payload);
        #[derive(Deserialize)]
        struct Found {
            data: Vec<Saved>,
        }
        let found: Found = authenticated(Request::get(contacts))
            .query("external_id", idempotency_key)
            .query("limit", 1)
            .send()?
            .error_for_status()?
            .json()?;
        Ok(found
            .data
            .into_iter()
            .next()
            .map(|saved| Written::new(saved.id).with_version(saved.version)))
    }

    /// Acme CRM validates a new subscription the way Microsoft Graph does:
    /// it calls the endpoint with `?validationToken=...` and expects the
    /// token back as plain text within seconds. Everything else is a
    /// delivery signed per Standard Webhooks.
    fn verify_webhook(config: &AcmeConfig, request: &IncomingRequest) -> Result<WebhookVerdict> {
        let token = request.query_param("validationToken");
        if let Some(token) = token.filter(|token| !token.is_empty()) {
            return Ok(WebhookVerdict::Handshake(
                weir_sdk::Reply::new(200)
                    .with_header("content-type", "text/plain")
                    .with_body(token),
            ));
        }
        config.webhooks.verify(request)
    }

    /// `{"type": "contact.updated", "timestamp": "...", "data": {...}}`: the
    /// whole record (or its tombstone) is in the event.
    fn handle_webhook(
        _config: &AcmeConfig,
        request: &IncomingRequest,
    ) -> Result<Vec<ChangeNotice>> {
        #[derive(Deserialize)]
        struct Event<'a> {
            #[serde(rename = "type")]
            kind: String,
            #[serde(borrow)]
            data: &'a RawValue,
        }
        let event: Event = request.json()?;
        let Some((object, action)) = event.kind.split_once('.') else {
            return Err(Error::permanent(format!(
                "webhook event type `{}` has no `.`",
                event.kind
            )));
        };
        if object != "contact" {
            // Companies are read by cursor only.
            weir_sdk::log::debug(format!("ignored a `{}` event", event.kind));
            return Ok(Vec::new());
        }
        let mut record = OBJECT.record(event.data).context("webhook `data`")?;
        if action == "deleted" {
            record.kind = ChangeKind::Delete;
        }
        Ok(vec![ChangeNotice::from_record(CONTACTS.name, record)])
    }
}

/// Writes one contact; `contacts` is the URL of the resource.
fn write_contact(contacts: &str, request: WriteRequest) -> Result<Written> {
    let call = match (request.kind, &request.external_id) {
        (ChangeKind::Delete, Some(id)) => {
            let response = authenticated(Request::delete(format!(
                "{contacts}/{}",
                encode_component(id)
            )))
            .send()?;
            // 404: deleted already, e.g. by an earlier attempt of this write.
            if response.status != 404 {
                response.error_for_status()?;
            }
            return Ok(Written::new(id.as_str()));
        }
        (ChangeKind::Delete, None) => {
            return Err(Error::permanent(
                "cannot delete a contact without its Acme CRM id (the write's external id)",
            ));
        }
        (ChangeKind::Upsert, Some(id)) => {
            let changes: &RawValue = request.data()?;
            Request::patch_json(format!("{contacts}/{}", encode_component(id)), &changes)
        }
        (ChangeKind::Upsert, None) => {
            let mut contact: Map<String, Value> = request.data()?;
            contact.insert("external_id".into(), request.idempotency_key.clone().into());
            Request::post_json(contacts, &contact)
        }
    };
    let saved: Saved = authenticated(call)
        .idempotency_key(&request.idempotency_key)
        .send()?
        .error_for_status()?
        .json()?;
    Ok(Written::new(saved.id).with_version(saved.version))
}

#[cfg(test)]
mod tests;
