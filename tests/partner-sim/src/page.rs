//! List pages: query parsing, the opaque cursor, and page assembly.
//!
//! A cursor names a position `(updated_at, id)`; a page holds the records
//! strictly after it. `next_cursor` is the position of the last record
//! returned, or the request's own cursor when nothing was returned, so a
//! client that keeps the last `next_cursor` later receives exactly what
//! changed since, never what it already has.

use std::ops::Bound;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::Deserialize;

use crate::schema::Schema;
use crate::store::Collection;
use crate::time::{Micros, parse_rfc3339};

/// Page size when the client does not ask for one.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// Largest page a client may ask for.
pub(crate) const MAX_LIMIT: usize = 1000;

/// A list call's query parameters, as sent.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ListParams {
    pub(crate) limit: Option<String>,
    pub(crate) cursor: Option<String>,
    pub(crate) updated_since: Option<String>,
    pub(crate) include_deleted: Option<String>,
    pub(crate) external_id: Option<String>,
}

/// A validated list call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageRequest {
    limit: usize,
    /// The decoded cursor: return records strictly after this position.
    after: Option<(Micros, u32)>,
    /// The cursor as sent, echoed back when the page is empty.
    cursor: Option<String>,
    since: Option<Micros>,
    include_deleted: bool,
    external_id: Option<String>,
}

/// A rendered page.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) body: Bytes,
    pub(crate) returned: usize,
}

impl PageRequest {
    /// Validates `params` for `schema`'s resource; the error is a message for a 400.
    pub(crate) fn parse(schema: &Schema, params: ListParams) -> Result<Self, String> {
        // Empty values count as absent: clients often send `cursor=` on their first call.
        let present = |v: Option<String>| v.filter(|s| !s.is_empty());
        let limit = match present(params.limit) {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    format!("limit must be an integer from 1 to {MAX_LIMIT}, got `{raw}`")
                })?,
        };
        let cursor = present(params.cursor);
        let after = match &cursor {
            None => None,
            Some(raw) => Some(decode_cursor(schema, raw).ok_or_else(|| {
                format!(
                    "cursor `{raw}` is not a {} cursor; pass back a `next_cursor` exactly as received",
                    schema.name
                )
            })?),
        };
        let since = match present(params.updated_since) {
            None => None,
            Some(raw) => Some(parse_rfc3339(&raw).ok_or_else(|| {
                format!("updated_since must be an RFC 3339 timestamp like 2025-01-01T00:00:00Z, got `{raw}`")
            })?),
        };
        let include_deleted = match present(params.include_deleted).as_deref() {
            None | Some("false" | "0") => false,
            Some("true" | "1") if schema.lists_deleted => true,
            Some("true" | "1") => {
                return Err(format!(
                    "{} are deleted outright: include_deleted is not supported for them",
                    schema.name
                ));
            }
            Some(other) => {
                return Err(format!(
                    "include_deleted must be true or false, got `{other}`"
                ));
            }
        };
        Ok(Self {
            limit,
            after,
            cursor,
            since,
            include_deleted,
            external_id: present(params.external_id),
        })
    }
}

impl Collection {
    /// Renders the page `request` asks for.
    pub(crate) fn page(&self, request: &PageRequest) -> Page {
        if let Some(external_id) = &request.external_id {
            return self.lookup_page(external_id, request);
        }
        let lower = match (request.since, request.after) {
            (Some(since), Some(after)) if (since, 0) > after => Bound::Included((since, 0)),
            (_, Some(after)) => Bound::Excluded(after),
            (Some(since), None) => Bound::Included((since, 0)),
            (None, None) => Bound::Unbounded,
        };
        let mut writer = PageWriter::new(request.limit);
        let mut last = None;
        let mut has_more = false;
        for &(at, index) in self.order.range((lower, Bound::Unbounded)) {
            let record = &self.records[index as usize];
            if record.deleted && !request.include_deleted {
                continue;
            }
            if writer.returned == request.limit {
                has_more = true;
                break;
            }
            writer.push(&record.json);
            last = Some((at, index));
        }
        let next_cursor = match last {
            Some((at, index)) => Some(encode_cursor(at, &self.schema.format_id(index))),
            None => request.cursor.clone(),
        };
        writer.finish(next_cursor.as_deref(), has_more)
    }

    /// `external_id=X`: the live records carrying X, regardless of the cursor.
    fn lookup_page(&self, external_id: &str, request: &PageRequest) -> Page {
        let mut found: Vec<(Micros, u32)> = self
            .by_external_id
            .get(external_id)
            .into_iter()
            .flatten()
            .map(|&index| (self.records[index as usize].updated_at, index))
            .collect();
        found.sort_unstable();
        let mut writer = PageWriter::new(request.limit);
        for &(_, index) in found.iter().take(request.limit) {
            writer.push(&self.records[index as usize].json);
        }
        writer.finish(request.cursor.as_deref(), found.len() > request.limit)
    }
}

/// Concatenates pre-rendered records into a list response body.
struct PageWriter {
    body: Vec<u8>,
    returned: usize,
}

impl PageWriter {
    fn new(limit: usize) -> Self {
        // Seeded records render to ~300 bytes; one allocation fits most pages.
        let mut body = Vec::with_capacity(64 + limit * 320);
        body.extend_from_slice(br#"{"data":["#);
        Self { body, returned: 0 }
    }

    fn push(&mut self, json: &[u8]) {
        if self.returned > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(json);
        self.returned += 1;
    }

    fn finish(mut self, next_cursor: Option<&str>, has_more: bool) -> Page {
        self.body.extend_from_slice(br#"],"next_cursor":"#);
        match next_cursor {
            Some(cursor) => {
                serde_json::to_writer(&mut self.body, cursor).expect("strings serialize")
            }
            None => self.body.extend_from_slice(b"null"),
        }
        self.body.extend_from_slice(if has_more {
            br#","has_more":true}"#
        } else {
            br#","has_more":false}"#
        });
        Page {
            body: Bytes::from(self.body),
            returned: self.returned,
        }
    }
}

/// The cursor for position `(at, id)`: url-safe base64 of `"{at}:{id}"`.
pub(crate) fn encode_cursor(at: Micros, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

/// The position a cursor names, if it is a cursor of `schema`'s resource.
pub(crate) fn decode_cursor(schema: &Schema, cursor: &str) -> Option<(Micros, u32)> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, schema.parse_id(id)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{COMPANIES, CONTACTS};

    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let mut p = ListParams::default();
        for &(k, v) in pairs {
            let v = Some(v.to_owned());
            match k {
                "limit" => p.limit = v,
                "cursor" => p.cursor = v,
                "updated_since" => p.updated_since = v,
                "include_deleted" => p.include_deleted = v,
                "external_id" => p.external_id = v,
                _ => unreachable!(),
            }
        }
        p
    }

    #[test]
    fn cursors_round_trip_and_are_resource_specific() {
        let cursor = encode_cursor(1_735_689_600_000_001, "c_000042");
        assert_eq!(
            decode_cursor(&CONTACTS, &cursor),
            Some((1_735_689_600_000_001, 41))
        );
        assert_eq!(decode_cursor(&COMPANIES, &cursor), None);
        assert_eq!(decode_cursor(&CONTACTS, "not a cursor"), None);
    }

    #[test]
    fn limits_outside_1_to_1000_are_refused() {
        for bad in ["0", "1001", "-1", "ten"] {
            let err = PageRequest::parse(&CONTACTS, params(&[("limit", bad)])).unwrap_err();
            assert!(
                err.contains("limit must be an integer from 1 to 1000"),
                "{err}"
            );
        }
        let ok = PageRequest::parse(&CONTACTS, params(&[("limit", "1000")])).unwrap();
        assert_eq!(ok.limit, 1000);
        assert_eq!(
            PageRequest::parse(&CONTACTS, params(&[])).unwrap().limit,
            DEFAULT_LIMIT
        );
    }

    #[test]
    fn bad_cursor_timestamp_and_flag_are_refused() {
        assert!(PageRequest::parse(&CONTACTS, params(&[("cursor", "abc")])).is_err());
        assert!(PageRequest::parse(&CONTACTS, params(&[("updated_since", "2025-13-01")])).is_err());
        assert!(PageRequest::parse(&CONTACTS, params(&[("include_deleted", "yes")])).is_err());
        let empty = PageRequest::parse(&CONTACTS, params(&[("cursor", "")])).unwrap();
        assert_eq!(empty.after, None);
    }
}
