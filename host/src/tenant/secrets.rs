//! A tenant's connection secrets: references to the environment or a file,
//! or values kept sealed in the tenant's settings. A value arrives as
//! `{"value": "..."}` (from a SaaS settings page, through the admin API)
//! and is sealed before anything is saved, so the store only ever holds
//! `{"sealed": "v1:..."}`; it is opened when a connection is, with the key
//! `[secrets] key` of `weir.toml` names.

use serde_json::{Value, json};

use super::{Tenant, TenantError};
use crate::capability::{SealingKey, SecretSource};
use crate::config::Config;

/// Where a sealed value belongs, bound into its sealing.
fn place(tenant: &Tenant, connection: &str, secret: &str) -> String {
    format!("{}/{connection}/{secret}", tenant.id)
}

/// Seals every `{"value": ...}` of the tenant's connection secrets.
pub(super) fn seal_values(config: &Config, tenant: &mut Tenant) -> Result<(), TenantError> {
    let mut key = None;
    let places: Vec<(String, String)> = tenant
        .connections
        .iter()
        .flat_map(|(connection, settings)| {
            settings
                .secrets
                .keys()
                .map(move |secret| (connection.clone(), secret.clone()))
        })
        .collect();
    for (connection, secret) in places {
        let place = place(tenant, &connection, &secret);
        let path = format!("connections.{connection}.secrets.{secret}");
        let value = tenant
            .connections
            .get_mut(&connection)
            .and_then(|settings| settings.secrets.get_mut(&secret))
            .expect("listed above");
        let items: Vec<&mut Value> = match value {
            Value::Array(items) => items.iter_mut().collect(),
            one => vec![one],
        };
        for item in items {
            let Some(plain) = item.get("value") else {
                continue;
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
            if key.is_none() {
                key = Some(sealing_key(config).map_err(|why| TenantError::new(path.clone(), why))?);
            }
            let sealed = key
                .as_ref()
                .expect("read above")
                .seal(&place, plain.as_bytes());
            *item = json!({ "sealed": sealed });
        }
    }
    Ok(())
}

fn sealing_key(config: &Config) -> Result<SealingKey, String> {
    let source = config.sealing_key.as_ref().ok_or_else(|| {
        format!(
            "a secret value is kept only sealed, and {} has no `[secrets] key`: add `[secrets] key = {{ env = \"WEIR_SECRETS_KEY\" }}` (32 random bytes in base64, from `head -c 32 /dev/urandom | base64`), or give a reference, {{\"env\": \"VAR\"}} or {{\"file\": \"path\"}}",
            config.path.display()
        )
    })?;
    let text = crate::capability::Secrets::resolve([("secrets.key", std::slice::from_ref(source))])
        .map_err(|(_, why)| format!("the sealing key (`[secrets] key`): {why}"))?;
    let text = text.current("secrets.key").expect("resolved one");
    SealingKey::from_base64(text.expose())
        .map_err(|why| format!("the sealing key (`[secrets] key`) {why}"))
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
                let key = config.sealing_key.clone().ok_or_else(|| {
                    format!("is sealed, and {} has no `[secrets] key` to open it with", config.path.display())
                })?;
                Ok(SecretSource::Sealed {
                    sealed: text.clone(),
                    place: place(tenant, connection, secret),
                    key: Box::new(key),
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

    /// A config whose sealing key is in a file of `dir` (none: no key).
    fn config(dir: &std::path::Path, key: Option<[u8; 32]>) -> Config {
        let mut toml = String::from(
            r#"
            [connections.acme]
            connector = "acme-crm"
            config = { base_url = "https://api.acme.example" }
            allowed_hosts = ["https://api.acme.example"]
            secrets.api_key = { env = "DEFAULT_KEY" }
            "#,
        );
        if let Some(key) = key {
            let path = dir.join("sealing.key");
            std::fs::write(&path, base64::engine::general_purpose::STANDARD.encode(key)).unwrap();
            toml.push_str(&format!("[secrets]\nkey = {{ file = {:?} }}\n", path));
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
        let config = config(dir.path(), Some([7; 32]));
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
        let other_key = self::config(dir.path(), Some([8; 32]));
        assert!(open(&other_key, &single).is_err());
    }

    #[test]
    fn without_a_sealing_key_a_value_is_refused_with_what_to_add() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), None);
        let err = seal_values(&config, &mut tenant("t1", json!({ "value": "sk" }))).unwrap_err();
        assert_eq!(err.path, "connections.acme.secrets.api_key");
        assert!(err.reason.contains("[secrets] key"), "{err}");
        let sealed = tenant("t1", json!({ "sealed": "v1:AAAA" }));
        assert!(
            open(&config, &sealed)
                .unwrap_err()
                .contains("[secrets] key")
        );

        let keyed = self::config(dir.path(), Some([7; 32]));
        for bad in [
            json!({ "value": "" }),
            json!({ "value": 5 }),
            json!({ "value": "x", "env": "Y" }),
        ] {
            let err = seal_values(&keyed, &mut tenant("t1", bad.clone())).unwrap_err();
            assert!(err.reason.contains("non-empty string"), "{bad}: {err}");
        }
    }
}
