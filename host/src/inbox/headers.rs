//! Request headers kept byte for byte: values may be any bytes (signature
//! schemes hash them as sent), order and repeated names are preserved.

use bytes::Bytes;

/// Request headers in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, Bytes)>);

/// The first byte of the stored form, so that it can change later.
const FORMAT: u8 = 1;

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Bytes>) {
        self.0.push((name.into(), value.into()));
    }

    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), &value[..]))
    }

    /// The first value of a header, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored form: a format byte, then per header the name's length
    /// (u16, big-endian), the name, the value's length (u32) and the value.
    pub(super) fn encode(&self) -> Vec<u8> {
        let size: usize = self.0.iter().map(|(n, v)| 6 + n.len() + v.len()).sum();
        let mut out = Vec::with_capacity(1 + size);
        out.push(FORMAT);
        for (name, value) in &self.0 {
            // Names and values past these lengths cannot come from HTTP
            // (servers cap a header block far lower); cut rather than fail.
            let mut end = name.len().min(usize::from(u16::MAX));
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            let name = &name.as_bytes()[..end];
            let value = &value[..value.len().min(u32::MAX as usize)];
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    /// Reads the stored form; `None` if it is not one.
    pub(super) fn decode(mut bytes: &[u8]) -> Option<Self> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, tail) = bytes.split_at_checked(n)?;
            *bytes = tail;
            Some(head)
        }
        if take(&mut bytes, 1)? != [FORMAT] {
            return None;
        }
        let mut headers = Vec::new();
        while !bytes.is_empty() {
            let len = u16::from_be_bytes(take(&mut bytes, 2)?.try_into().ok()?);
            let name = std::str::from_utf8(take(&mut bytes, usize::from(len))?).ok()?;
            let len = u32::from_be_bytes(take(&mut bytes, 4)?.try_into().ok()?);
            let value = take(&mut bytes, len as usize)?;
            headers.push((name.to_string(), Bytes::copy_from_slice(value)));
        }
        Some(Self(headers))
    }
}

impl From<&axum::http::HeaderMap> for Headers {
    /// Headers as the HTTP server parsed them: names lowercase, values raw.
    /// `HeaderMap` keeps the order of values of one name, not across names.
    fn from(map: &axum::http::HeaderMap) -> Self {
        Self(
            map.iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_string(),
                        Bytes::copy_from_slice(value.as_bytes()),
                    )
                })
                .collect(),
        )
    }
}

impl<N: Into<String>, V: Into<Bytes>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        )
    }
}
