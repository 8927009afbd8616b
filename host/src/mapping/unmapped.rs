//! `"unmapped"`: what becomes of the source fields no rule reads — dropped,
//! kept where they are, or gathered into one object (a partner's custom
//! fields).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::pointer::Pointer;

/// The compiled `unmapped` setting.
#[derive(Debug, Clone)]
pub(crate) enum Unmapped {
    /// Only what rules write.
    Drop,
    /// Unread fields are copied under `into` (the root for `"keep"`), at the
    /// pointer they had in the source.
    Keep { into: Pointer, read: ReadTree },
}

/// The source pointers rules read, or `drop` excludes, as a tree of keys.
///
/// Arrays are taken whole: reading `/emails/0/address` makes all of
/// `/emails` read, since copying part of an array would renumber it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadTree {
    children: HashMap<Box<str>, ReadTree>,
    whole: bool,
}

impl ReadTree {
    /// Marks `pointer` and all it contains as read.
    pub(crate) fn insert(&mut self, pointer: &Pointer) {
        let mut node = self;
        for token in pointer.tokens() {
            if node.whole {
                return;
            }
            node = node.children.entry(token.key().into()).or_default();
        }
        node.whole = true;
        node.children.clear();
    }

    /// Copies the fields of `source` that are not read into `kept`.
    pub(crate) fn copy_unread(&self, source: &Map<String, Value>, kept: &mut Map<String, Value>) {
        if self.whole {
            return;
        }
        for (key, value) in source {
            let Some(node) = self.children.get(key.as_str()) else {
                kept.insert(key.clone(), value.clone());
                continue;
            };
            match value {
                _ if node.whole => {}
                Value::Object(inner) => {
                    let mut kept_inner = Map::new();
                    node.copy_unread(inner, &mut kept_inner);
                    if !kept_inner.is_empty() {
                        kept.insert(key.clone(), Value::Object(kept_inner));
                    }
                }
                // Partly read: taken whole (see above).
                Value::Array(_) => {}
                // Rules look inside it, but a scalar has no inside: nobody read it.
                _ => {
                    kept.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read_tree(pointers: &[&str]) -> ReadTree {
        let mut tree = ReadTree::default();
        for pointer in pointers {
            tree.insert(&Pointer::parse(pointer).unwrap());
        }
        tree
    }

    fn unread(tree: &ReadTree, source: Value) -> Value {
        let mut kept = Map::new();
        if let Value::Object(source) = source {
            tree.copy_unread(&source, &mut kept);
        }
        Value::Object(kept)
    }

    #[test]
    fn unread_fields_are_kept_at_their_place() {
        let tree = read_tree(&["/email", "/address/city", "/emails/0/address"]);
        let source = json!({
            "email": "a@b",
            "phone": "1",
            "address": {"city": "Paris", "zip": "75001"},
            "emails": [{"address": "x"}, {"address": "y"}],
        });
        assert_eq!(
            unread(&tree, source),
            json!({"phone": "1", "address": {"zip": "75001"}})
        );
    }

    #[test]
    fn a_fully_read_object_leaves_nothing() {
        let tree = read_tree(&["/address/city"]);
        assert_eq!(
            unread(&tree, json!({"address": {"city": "Paris"}})),
            json!({})
        );
        assert_eq!(
            unread(&tree, json!({"address": "1 Main St"})),
            json!({"address": "1 Main St"})
        );
    }

    #[test]
    fn reading_the_root_reads_everything() {
        let tree = read_tree(&["/a/b", ""]);
        assert_eq!(unread(&tree, json!({"a": 1, "b": 2})), json!({}));
        let tree = read_tree(&["/a", "/a/b"]);
        assert_eq!(unread(&tree, json!({"a": {"b": 1, "c": 2}})), json!({}));
    }
}
