//! Proves that output is capped: `read` prints megabytes to stdout and
//! stderr, logs thousands of long messages, and returns a page far larger
//! than the connection allows.

use weir_sdk::{
    Checkpoint, Connector, Page, ReadRequest, Record, Result, Spec, StreamCapabilities,
};

struct HugeOutput;

weir_sdk::export_connector!(HugeOutput);

impl Connector for HugeOutput {
    // Any configuration will do.
    type Config = serde::de::IgnoredAny;

    fn spec() -> Spec {
        Spec::new("huge-output", "0.1.0").stream(StreamCapabilities::new("flood"))
    }

    fn read(_config: &Self::Config, _request: ReadRequest) -> Result<Page> {
        let line = "x".repeat(1024);
        for _ in 0..10_000 {
            println!("{line}");
            eprintln!("{line}");
        }
        let long = "y".repeat(100_000);
        for _ in 0..5_000 {
            weir_sdk::log::info(&long);
        }
        let blob = serde_json::json!({ "blob": "z".repeat(20_000) }).to_string();
        let records = (0..200)
            .map(|i| Record::upsert(format!("r{i}"), blob.clone()))
            .collect();
        Ok(Page::new(records, Checkpoint::from_json(1, "{}")))
    }
}
