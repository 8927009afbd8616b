// Later versions of the acme-crm connector, for upgrade tests: the real
// connector (its `rlib`, without its exports) wrapped under a new version.
// Included by each `acme-crm-*` test guest with its own settings.

/// Declares `$name`, acme-crm at `$version`, with the extra hosts `$hosts`
/// and checkpoints of format `$format` (format 2 wraps format 1's state).
macro_rules! acme_next {
    ($name:ident, $version:literal, hosts = [$($host:literal),*], checkpoint_format = $format:literal) => {
        use acme_crm::AcmeCrm;
        use weir_sdk::{
            ChangeNotice, Checkpoint, Connector, IncomingRequest, Page, ReadRequest, Record, Result, Spec,
            StreamSchema, WebhookVerdict, WriteRequest, Written,
        };

        struct $name;

        weir_sdk::export_connector!($name);

        /// Format 2 keeps format 1's state under `v1`, beside a marker.
        fn to_v1(checkpoint: Checkpoint) -> Result<Checkpoint> {
            if $format == 1 {
                return Ok(checkpoint);
            }
            let state: serde_json::Value = checkpoint.state()?;
            Ok(Checkpoint::from_json(1, state["v1"].to_string()))
        }

        fn from_v1(checkpoint: Checkpoint) -> Result<Checkpoint> {
            if $format == 1 {
                return Ok(checkpoint);
            }
            let state: serde_json::Value = checkpoint.state()?;
            Checkpoint::new($format, &serde_json::json!({ "v1": state, "upgraded_by": $version }))
        }

        impl Connector for $name {
            type Config = <AcmeCrm as Connector>::Config;

            fn spec() -> Spec {
                let mut spec = AcmeCrm::spec();
                spec.version = $version.into();
                spec.checkpoint_format = $format;
                $(spec.hosts.push($host.into());)*
                spec
            }

            fn check(config: &Self::Config) -> Result<()> {
                AcmeCrm::check(config)
            }

            fn discover(config: &Self::Config) -> Result<Vec<StreamSchema>> {
                AcmeCrm::discover(config)
            }

            fn read(config: &Self::Config, mut request: ReadRequest) -> Result<Page> {
                request.checkpoint = request.checkpoint.map(to_v1).transpose()?;
                let mut page = AcmeCrm::read(config, request)?;
                page.checkpoint = from_v1(page.checkpoint)?;
                Ok(page)
            }

            fn fetch(config: &Self::Config, stream: &str, keys: Vec<String>) -> Result<Vec<Record>> {
                AcmeCrm::fetch(config, stream, keys)
            }

            fn write(config: &Self::Config, stream: &str, requests: Vec<WriteRequest>) -> Result<Vec<Result<Written>>> {
                AcmeCrm::write(config, stream, requests)
            }

            fn lookup(config: &Self::Config, stream: &str, key: &str) -> Result<Option<Written>> {
                AcmeCrm::lookup(config, stream, key)
            }

            fn verify_webhook(config: &Self::Config, request: &IncomingRequest) -> Result<WebhookVerdict> {
                AcmeCrm::verify_webhook(config, request)
            }

            fn handle_webhook(config: &Self::Config, request: &IncomingRequest) -> Result<Vec<ChangeNotice>> {
                AcmeCrm::handle_webhook(config, request)
            }

            /// Format 1 is migrated by wrapping it; older formats never existed.
            fn migrate_checkpoint(_stream: &str, old: Checkpoint) -> Result<Checkpoint> {
                match old.format {
                    1 => from_v1(old),
                    other => Err(weir_sdk::Error::unsupported(format!("checkpoint format {other} is unknown"))),
                }
            }
        }
    };
}
