//! How a sim starts.

use std::net::{IpAddr, Ipv4Addr};

use crate::rate_limit::RateLimit;
use crate::webhooks::WebhookTarget;

/// What to serve and where. `Default` gives seed 42, 1,000 contacts,
/// 100 companies, API key `test-key`, an ephemeral port on 127.0.0.1, no
/// rate limit and no webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seeds the data, the picks of [`PartnerSim::mutate`](crate::PartnerSim::mutate) and webhook drops.
    pub seed: u64,
    /// Seeded contacts.
    pub contacts: usize,
    /// Seeded companies.
    pub companies: usize,
    /// The key clients must send in `X-Api-Key`.
    pub api_key: String,
    /// A loopback address; anything else is refused.
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// A quota on `/v1` requests; changeable later with
    /// [`PartnerSim::set_rate_limit`](crate::PartnerSim::set_rate_limit).
    pub rate_limit: Option<RateLimit>,
    /// Where change events go; changeable later with
    /// [`PartnerSim::set_webhook`](crate::PartnerSim::set_webhook).
    pub webhook: Option<WebhookTarget>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            contacts: 1_000,
            companies: 100,
            api_key: "test-key".into(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            rate_limit: None,
            webhook: None,
        }
    }
}
