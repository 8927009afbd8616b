//! Proves that a connector stuck in a loop is stopped at its deadline: its
//! `read` never returns.

use weir_sdk::{Connector, Page, ReadRequest, Result, Spec, StreamCapabilities};

struct SpinForever;

weir_sdk::export_connector!(SpinForever);

impl Connector for SpinForever {
    // Any configuration will do.
    type Config = serde::de::IgnoredAny;

    fn spec() -> Spec {
        Spec::new("spin-forever", "0.1.0").stream(StreamCapabilities::new("spin"))
    }

    fn read(_config: &Self::Config, _request: ReadRequest) -> Result<Page> {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }
}
