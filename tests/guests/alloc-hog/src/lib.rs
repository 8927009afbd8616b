//! Proves that the memory cap holds: `read` keeps allocating (and touching)
//! memory until an allocation fails.

use weir_sdk::{Connector, Page, ReadRequest, Result, Spec, StreamCapabilities};

struct AllocHog;

weir_sdk::export_connector!(AllocHog);

impl Connector for AllocHog {
    // Any configuration will do.
    type Config = serde::de::IgnoredAny;

    fn spec() -> Spec {
        Spec::new("alloc-hog", "0.1.0").stream(StreamCapabilities::new("hog"))
    }

    fn read(_config: &Self::Config, _request: ReadRequest) -> Result<Page> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xAB; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}
