//! JSON pointers (RFC 6901), split into tokens once, when a mapping is
//! parsed, so that applying a rule never re-parses text.

use std::fmt;

use serde_json::{Map, Value};

/// A parsed JSON pointer: `""` is the whole record, `/a/0/b` reads key `a`,
/// then element (or key) `0`, then key `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    text: Box<str>,
    tokens: Box<[Token]>,
}

/// One step of a pointer: an object key, and the array index it also
/// denotes when it is a canonical unsigned integer (`0`, `17`, not `01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    key: Box<str>,
    index: Option<usize>,
}

impl Token {
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn is_index(&self) -> bool {
        self.index.is_some()
    }
}

impl Pointer {
    /// `""`: the whole record.
    pub(crate) fn root() -> Self {
        Self {
            text: "".into(),
            tokens: Box::new([]),
        }
    }

    /// Parses pointer text; the error is the reason, to be placed at the
    /// document path by the caller.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Self::root());
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "`{text}` is not a JSON pointer: it must start with `/`, as in `/{text}`"
            ));
        };
        let tokens = rest
            .split('/')
            .map(|raw| {
                let key = unescape(raw).ok_or_else(|| {
                    let fix = "write `~` as `~0` and `/` inside a key as `~1`";
                    format!("`{text}` is not a JSON pointer: {fix}")
                })?;
                Ok(Token {
                    index: array_index(&key),
                    key: key.into(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            text: text.into(),
            tokens,
        })
    }

    /// The pointer to `key` inside this one.
    pub(crate) fn child(&self, key: &str) -> Self {
        let escaped = key.replace('~', "~0").replace('/', "~1");
        let mut tokens = self.tokens.to_vec();
        tokens.push(Token {
            index: array_index(key),
            key: key.into(),
        });
        Self {
            text: format!("{}/{escaped}", self.text).into(),
            tokens: tokens.into(),
        }
    }

    /// The pointer this one is inside, if it is not the root.
    pub(crate) fn parent(&self) -> Option<Self> {
        let (_, parent_tokens) = self.tokens.split_last()?;
        let cut = self.text.rfind('/').unwrap_or(0);
        Some(Self {
            text: self.text[..cut].into(),
            tokens: parent_tokens.into(),
        })
    }

    /// The last key, `""` for the root.
    pub(crate) fn last_key(&self) -> &str {
        self.tokens.last().map_or("", |token| &token.key)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    pub(crate) fn is_root(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `other` is this pointer or lies inside it.
    pub(crate) fn contains(&self, other: &Pointer) -> bool {
        other.tokens.starts_with(&self.tokens)
    }

    /// The value this pointer denotes in `root`, if any.
    pub(crate) fn read<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.tokens
            .iter()
            .try_fold(root, |value, token| match value {
                Value::Object(map) => map.get(&*token.key),
                Value::Array(items) => items.get(token.index?),
                _ => None,
            })
    }

    /// Writes `value` at this pointer, creating the objects on the way and
    /// replacing whatever non-object stands in the way. Writing at the root
    /// pointer does nothing: mappings never do it.
    pub(crate) fn write(&self, root: &mut Map<String, Value>, value: Value) {
        write_at(root, &self.tokens, value);
    }
}

fn write_at(map: &mut Map<String, Value>, tokens: &[Token], value: Value) {
    match tokens {
        [] => {}
        [last] => {
            map.insert(last.key.to_string(), value);
        }
        [first, rest @ ..] => match map.get_mut(&*first.key) {
            Some(Value::Object(child)) => write_at(child, rest, value),
            _ => {
                let mut child = Map::new();
                write_at(&mut child, rest, value);
                map.insert(first.key.to_string(), Value::Object(child));
            }
        },
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn unescape(raw: &str) -> Option<String> {
    if !raw.contains('~') {
        return Some(raw.to_owned());
    }
    let mut key = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => key.push('~'),
                Some('1') => key.push('/'),
                _ => return None,
            },
            c => key.push(c),
        }
    }
    Some(key)
}

/// RFC 6901 array indexes have no sign and no leading zero.
fn array_index(key: &str) -> Option<usize> {
    let canonical = key == "0"
        || (!key.starts_with('0') && !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()));
    if canonical { key.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pointer(text: &str) -> Pointer {
        Pointer::parse(text).unwrap()
    }

    #[test]
    fn reads_nested_keys_and_array_elements() {
        let record = json!({"a": {"b": [10, {"c": "deep"}]}, "x/y": 1, "t~": 2, "07": 3});
        assert_eq!(pointer("").read(&record), Some(&record));
        assert_eq!(pointer("/a/b/0").read(&record), Some(&json!(10)));
        assert_eq!(pointer("/a/b/1/c").read(&record), Some(&json!("deep")));
        assert_eq!(pointer("/x~1y").read(&record), Some(&json!(1)));
        assert_eq!(pointer("/t~0").read(&record), Some(&json!(2)));
        assert_eq!(pointer("/07").read(&record), Some(&json!(3)));
    }

    #[test]
    fn reading_what_is_not_there_gives_nothing() {
        let record = json!({"a": {"b": [10]}, "s": "text"});
        for missing in [
            "/nope",
            "/a/b/1",
            "/a/b/01",
            "/a/b/-",
            "/s/0",
            "/a/b/0/c",
            "/a/b/99999999999999999999999",
        ] {
            assert_eq!(pointer(missing).read(&record), None, "{missing}");
        }
    }

    #[test]
    fn writing_creates_objects_and_replaces_what_is_in_the_way() {
        let mut out = Map::new();
        pointer("/address/country").write(&mut out, json!("FR"));
        pointer("/address/city").write(&mut out, json!("Paris"));
        pointer("/name").write(&mut out, json!("Ada"));
        pointer("/name/first").write(&mut out, json!("Ada"));
        pointer("").write(&mut out, json!("ignored"));
        assert_eq!(
            Value::Object(out),
            json!({"address": {"country": "FR", "city": "Paris"}, "name": {"first": "Ada"}})
        );
    }

    #[test]
    fn containment_is_by_whole_tokens() {
        assert!(pointer("/a").contains(&pointer("/a/b")));
        assert!(pointer("/a").contains(&pointer("/a")));
        assert!(pointer("").contains(&pointer("/a")));
        assert!(!pointer("/a").contains(&pointer("/ab")));
        assert!(!pointer("/a/b").contains(&pointer("/a")));
    }

    #[test]
    fn malformed_pointers_are_refused_with_the_fix() {
        assert_eq!(
            Pointer::parse("email").unwrap_err(),
            "`email` is not a JSON pointer: it must start with `/`, as in `/email`"
        );
        assert_eq!(
            Pointer::parse("/a~2").unwrap_err(),
            "`/a~2` is not a JSON pointer: write `~` as `~0` and `/` inside a key as `~1`"
        );
        assert!(Pointer::parse("/a~").is_err());
    }

    #[test]
    fn children_and_parents_escape_keys() {
        let child = pointer("/a").child("x/y~z");
        assert_eq!(child.as_str(), "/a/x~1y~0z");
        assert_eq!(child, pointer("/a/x~1y~0z"));
        assert_eq!(child.last_key(), "x/y~z");
        assert_eq!(child.parent(), Some(pointer("/a")));
        assert_eq!(pointer("/a").parent(), Some(pointer("")));
        assert_eq!(pointer("").parent(), None);
    }

    #[test]
    fn only_canonical_numbers_are_indexes() {
        let tokens = pointer("/0/10/01/-1/x").tokens().to_vec();
        let indexes: Vec<bool> = tokens.iter().map(Token::is_index).collect();
        assert_eq!(indexes, [true, true, false, false, false]);
    }
}
