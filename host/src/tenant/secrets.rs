//! A tenant's connection secrets: references to the environment or a file,
//! or values kept sealed in the tenant's settings. A value arrives as
//! `{"value": "..."}` (from a SaaS settings page, through the admin API)
//! and is sealed before anything is saved, so the store only ever holds
//! `{"sealed": "v1:..."}`; it is opened when a connection is, with the key
//! `[secrets] key` of `weir.toml` names.

use serde_json::{Value, json};

use super::{Tenant, TenantError};
use crate::capability::{SealingKey, SecretSource, open_sealed, sealing_keys};
use crate::config::Config;

/// Where a sealed value belongs, bound into its sealing.
fn place(tenant: &Tenant, connection: &str, secret: &str) -> String {
    format!("{}/{connection}/{secret}", tenant.id)
}

/// Calls `f` with every source of every connection secret of the tenant:
/// its place, its path in the settings, and the source itself.
fn each_source(
    tenant: &mut Tenant,
    mut f: impl FnMut(&str, &str, &mut Value) -> Result<(), TenantError>,
) -> Result<(), TenantError> {
    let id = tenant.id.clone();
    for (connection, settings) in &mut tenant.connections {
        for (secret, value) in &mut settings.secrets {
            let place = format!("{id}/{connection}/{secret}");
            let path = format!("connections.{connection}.secrets.{secret}");
            let items: Vec<&mut Value> = match value {
                Value::Array(items) => items.iter_mut().collect(),
                one => vec![one],
            };
            for item in items {
                f(&place, &path, item)?;
            }
        }
    }
    Ok(())
}

/// Seals every `{"value": ...}` of the tenant's connection secrets.
pub(super) fn seal_values(config: &Config, tenant: &mut Tenant) -> Result<(), TenantError> {
    let mut keys = None;
    each_source(tenant, |place, path, item| {
        let Some(plain) = item.get("value") else {
            return Ok(());
        };
        let plain = match plain {
            Value::String(text)
                if !text.is_empty() && item.as_object().is_some_and(|o| o.len() == 1) =>
            {
                text.clone()
            }
            _ => {
                return Err(TenantError::new(
                    path,
                    "a value is given as {\"value\": \"the secret\"}, a non-empty string and nothing else",
                ));
            }
        };
        if keys.is_none() {
            keys = Some(keys_of(config).map_err(|why| TenantError::new(path, why))?);
        }
        let sealed = keys.as_ref().expect("read above")[0].seal(place, plain.as_bytes());
        *item = json!({ "sealed": sealed });
        Ok(())
    })
}

/// Seals every sealed value of the tenant again with the first
/// `[secrets] key`, after a new key was put first; returns how many.
pub(super) fn reseal(config: &Config, tenant: &mut Tenant) -> Result<u64, TenantError> {
    let mut keys = None;
    let mut resealed = 0;
    each_source(tenant, |place, path, item| {
        let Some(Value::String(sealed)) = item.get("sealed") else {
            return Ok(());
        };
        if keys.is_none() {
            keys = Some(keys_of(config).map_err(|why| TenantError::new(path, why))?);
        }
        let keys = keys.as_ref().expect("read above");
        let value = open_sealed(keys, place, sealed).map_err(|why| TenantError::new(path, why))?;
        *item = json!({ "sealed": keys[0].seal(place, value.expose()) });
        resealed += 1;
        Ok(())
    })?;
    Ok(resealed)
}

/// The sealing keys, newest first; at least one.
fn keys_of(config: &Config) -> Result<Vec<SealingKey>, String> {
    if config.sealing_keys.is_empty() {
        return Err(format!(
            "a secret value is kept only sealed, and {} has no `[secrets] key`: add `[secrets] key = {{ env = \"WEIR_SECRETS_KEY\" }}` (32 random bytes in base64, from `head -c 32 /dev/urandom | base64`), or give a reference, {{\"env\": \"VAR\"}} or {{\"file\": \"path\"}}",
            config.path.display()
        ));
    }
    sealing_keys(&config.sealing_keys)
}

/// The sources of one secret of a tenant's connection.
pub(super) fn secret_sources(
    config: &Config,
    tenant: &Tenant,
    connection: &str,
    secret: &str,
    value: &Value,
) -> Result<Vec<SecretSource>, String> {
    let one = |value: &Value| -> Result<SecretSource, String> {
        let object = value.as_object().filter(|o| o.len() == 1);
        match object.and_then(|o| o.iter().next()) {
            Some((kind, Value::String(text))) if kind == "env" => Ok(SecretSource::Env(text.clone())),
            Some((kind, Value::String(text))) if kind == "file" => Ok(SecretSource::File(text.into())),
            Some((kind, Value::String(text))) if kind == "sealed" => {
                if config.sealing_keys.is_empty() {
                    return Err(format!(
                        "is sealed, and {} has no `[secrets] key` to open it with",
                        config.path.display()
                    ));
                }
                Ok(SecretSource::Sealed {
                    sealed: text.clone(),
                    place: place(tenant, connection, secret),
                    keys: config.sealing_keys.clone(),
                })
            }
            _ => Err("must be {\"env\": \"VARIABLE\"}, {\"file\": \"path\"} or {\"value\": \"the secret\"} (kept sealed)".into()),
        }
    };
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        Value::Array(_) => Err("lists at least one source".into()),
        other => Ok(vec![one(other)?]),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::capability::Secrets;

    /// A config whose sealing keys, newest first, are in files of `dir`.
    fn config(dir: &std::path::Path, keys: &[[u8; 32]]) -> Config {
        let mut toml = String::from(
            r#"
            [connections.acme]
            connector = "acme-crm"
            config = { base_url = "https://api.acme.example" }
            allowed_hosts = ["https://api.acme.example"]
            secrets.api_key = { env = "DEFAULT_KEY" }
            "#,
        );
        let files: Vec<String> = keys
            .iter()
            .map(|key| {
                let path = dir.join(format!("sealing-{}.key", key[0]));
                std::fs::write(&path, base64::engine::general_purpose::STANDARD.encode(key))
                    .unwrap();
                format!("{{ file = {path:?} }}")
            })
            .collect();
        if !files.is_empty() {
            toml.push_str(&format!("[secrets]\nkey = [{}]\n", files.join(", ")));
        }
        Config::parse(&dir.join("weir.toml"), &toml).unwrap()
    }

    fn tenant(id: &str, api_key: Value) -> Tenant {
        serde_json::from_value(json!({
            "id": id, "connections": { "acme": { "secrets": { "api_key": api_key } } }
        }))
        .unwrap()
    }

    fn open(config: &Config, tenant: &Tenant) -> Result<Vec<u8>, String> {
        let value = &tenant.connections["acme"].secrets["api_key"];
        let sources = secret_sources(config, tenant, "acme", "api_key", value)?;
        let secrets = Secrets::resolve([("api_key", &sources[..])]).map_err(|(_, why)| why)?;
        Ok(secrets.current("api_key").unwrap().expose().to_vec())
    }

    #[test]
    fn a_value_is_sealed_before_it_is_saved_and_opens_for_its_tenant_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &[[7; 32]]);
        let mut t1 = tenant("t1", json!([{ "value": "sk-new" }, { "env": "OLD_KEY" }]));
        seal_values(&config, &mut t1).unwrap();
        let stored = serde_json::to_string(&t1).unwrap();
        assert!(!stored.contains("sk-new"), "{stored}");
        let sealed = t1.connections["acme"].secrets["api_key"][0].clone();
        assert!(sealed["sealed"].as_str().unwrap().starts_with("v1:"));
        assert_eq!(
            t1.connections["acme"].secrets["api_key"][1],
            json!({ "env": "OLD_KEY" })
        );

        let mut single = tenant("t1", sealed.clone());
        seal_values(&config, &mut single).unwrap();
        assert_eq!(
            open(&config, &single).unwrap(),
            b"sk-new",
            "sealed values pass through"
        );
        let copied = tenant("t2", sealed);
        let why = open(&config, &copied).unwrap_err();
        assert!(why.contains("`t2/acme/api_key`"), "{why}");
        let other_key = self::config(dir.path(), &[[8; 32]]);
        assert!(open(&other_key, &single).is_err());
    }

    #[test]
    fn without_a_sealing_key_a_value_is_refused_with_what_to_add() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &[]);
        let err = seal_values(&config, &mut tenant("t1", json!({ "value": "sk" }))).unwrap_err();
        assert_eq!(err.path, "connections.acme.secrets.api_key");
        assert!(err.reason.contains("[secrets] key"), "{err}");
        let sealed = tenant("t1", json!({ "sealed": "v1:AAAA" }));
        assert!(
            open(&config, &sealed)
                .unwrap_err()
                .contains("[secrets] key")
        );

        let keyed = self::config(dir.path(), &[[7; 32]]);
        for bad in [
            json!({ "value": "" }),
            json!({ "value": 5 }),
            json!({ "value": "x", "env": "Y" }),
        ] {
            let err = seal_values(&keyed, &mut tenant("t1", bad.clone())).unwrap_err();
            assert!(err.reason.contains("non-empty string"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_new_key_put_first_opens_old_values_and_reseal_moves_them_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = ([1; 32], [2; 32]);
        let mut t1 = tenant("t1", json!({ "value": "sk-1" }));
        seal_values(&config(dir.path(), &[old]), &mut t1).unwrap();

        let rotating = config(dir.path(), &[new, old]);
        assert_eq!(
            open(&rotating, &t1).unwrap(),
            b"sk-1",
            "the old key still opens it"
        );
        let only_new = config(dir.path(), &[new]);
        assert!(open(&only_new, &t1).is_err());

        assert_eq!(reseal(&rotating, &mut t1).unwrap(), 1);
        assert_eq!(
            open(&only_new, &t1).unwrap(),
            b"sk-1",
            "sealed with the new key"
        );
        let mut references = tenant("t1", json!({ "env": "KEY" }));
        assert_eq!(reseal(&only_new, &mut references).unwrap(), 0);

        let err = reseal(&config(dir.path(), &[[3; 32]]), &mut t1).unwrap_err();
        assert_eq!(err.path, "connections.acme.secrets.api_key");
        assert!(err.reason.contains("does not open"), "{err}");
    }
}
