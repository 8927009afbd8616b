//! Proves upgrades keep syncs incremental: acme-crm 2.0.0 stores its
//! checkpoints in a new format (2) and migrates format 1 ones.

include!("../../acme-next.rs");

acme_next!(AcmeCrmV2, "2.0.0", hosts = [], checkpoint_format = 2);
