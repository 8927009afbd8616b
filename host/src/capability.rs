//! What a connector may do beyond computing: reach origins (egress) at a
//! pace (rate budgets), use secrets. A grant is what the connector declares
//! it needs intersected with what the operator allows the connection;
//! everything else is denied.

mod address;
mod audit;
mod budget;
mod crypto;
mod egress;
mod http_gate;
mod origin;
pub mod printed_url;
mod sealed;
mod secrets;

pub use address::{ForbiddenAddress, GuardedResolver, forbidden};
pub use audit::{AuditEntry, AuditSink, NoAudit};
pub use budget::{
    BudgetConfig, BudgetExhausted, BudgetLeft, BudgetRegistry, BudgetState,
    DEFAULT_REQUESTS_PER_SECOND, RateBudget, parse_retry_after,
};
pub use crypto::{constant_time_eq, hmac_key, hmac_sha256, hmac_sha256_matches, verify_ed25519};
pub use egress::{EgressDenial, EgressGrant, HostRequirement};
pub use http_gate::{
    GateSetup, HttpGate, HttpLimits, OutgoingRequest, PartnerResponse, RedirectTrail,
    RequestFailure, SecretHeader,
};
pub use origin::OriginPattern;
pub use sealed::{SealingKey, open_sealed, sealing_keys};
pub use secrets::{SecretSource, SecretValue, Secrets};
