//! What a connector may do beyond computing: reach origins (egress), use
//! secrets. A grant is what the connector declares it needs intersected with
//! what the operator allows the connection; everything else is denied.

mod egress;
mod http_gate;
mod origin;
mod secrets;

pub use egress::{EgressDenial, EgressGrant, HostRequirement};
pub use http_gate::{
    HttpGate, HttpLimits, OutgoingRequest, PartnerResponse, RequestFailure, SecretHeader,
};
pub use origin::OriginPattern;
pub use secrets::{SecretSource, SecretValue, Secrets};

mod crypto;
pub use crypto::{constant_time_eq, hmac_sha256, hmac_sha256_matches};
