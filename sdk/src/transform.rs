//! The [`Transform`] trait: reshaping records where a declarative field
//! mapping cannot.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Result, ResultExt};

/// A transform plugin, chained after a flow's field mapping. Implement it on
/// a unit struct and export it with [`export_transform!`](crate::export_transform).
///
/// Implement [`transform`](Transform::transform) for one record at a time;
/// override [`transform_batch`](Transform::transform_batch) to work on the
/// JSON text of a whole batch instead.
///
/// # Example
///
/// ```
/// use serde::Deserialize;
/// use serde_json::Value;
/// use weir_sdk::{Result, Transform};
///
/// /// Drops contacts without email, and lower-cases the others' email.
/// struct NormalizeEmail;
///
/// #[derive(Deserialize)]
/// struct Config {
///     field: String,
/// }
///
/// impl Transform for NormalizeEmail {
///     type Config = Config;
///
///     fn transform(config: &Config, mut record: Value) -> Result<Option<Value>> {
///         let Some(email) = record.get(&config.field).and_then(Value::as_str) else {
///             return Ok(None);
///         };
///         record[&config.field] = email.to_lowercase().into();
///         Ok(Some(record))
///     }
/// }
///
/// weir_sdk::export_transform!(NormalizeEmail);
///
/// let config = Config { field: "email".into() };
/// let out = NormalizeEmail::transform(&config, serde_json::json!({ "email": "Ada@Example.com" }))?;
/// assert_eq!(out, Some(serde_json::json!({ "email": "ada@example.com" })));
/// # Ok::<(), weir_sdk::Error>(())
/// ```
pub trait Transform {
    /// The transform's configuration, parsed from its JSON (see
    /// [`Connector::Config`](crate::Connector::Config)).
    type Config: DeserializeOwned;

    /// Transforms one record (a JSON object): returns the new record, `None`
    /// to drop it, or an error that sends this record alone to the dead
    /// letters.
    ///
    /// # Errors
    ///
    /// Any [`Error`](crate::Error); usually
    /// [`Error::Permanent`](crate::Error::Permanent).
    fn transform(config: &Self::Config, record: Value) -> Result<Option<Value>>;

    /// Transforms a batch of records given as JSON text. Returns one result
    /// per record, in order. Fails as a whole only when nothing can be done
    /// (e.g. a config the transform cannot use).
    ///
    /// Defaults to parsing each record, calling [`transform`](Transform::transform)
    /// and serializing the result.
    ///
    /// # Errors
    ///
    /// None by default; a record that does not parse fails alone.
    fn transform_batch(
        config: &Self::Config,
        records: Vec<String>,
    ) -> Result<Vec<Result<Option<String>>>> {
        Ok(records
            .iter()
            .map(|text| {
                let record = serde_json::from_str(text).context("record")?;
                match Self::transform(config, record)? {
                    Some(record) => Ok(Some(serde_json::to_string(&record)?)),
                    None => Ok(None),
                }
            })
            .collect())
    }
}
