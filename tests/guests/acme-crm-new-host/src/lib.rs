//! Proves a version that asks for more waits for an operator: acme-crm
//! 1.1.0 declares a host the serving version does not.

include!("../../acme-next.rs");

acme_next!(
    AcmeCrmNewHost,
    "1.1.0",
    hosts = ["https://analytics.acme.example"],
    checkpoint_format = 1
);
