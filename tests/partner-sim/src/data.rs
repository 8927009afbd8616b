//! Seeded records: the same seed and counts always give the same data.
//!
//! Companies are generated first, so adding contacts never changes them.
//! Creation times rise with the id through 2025. About a tenth of the records
//! were last touched by one of a dozen "bulk updates", so many records share
//! an `updated_at` and clients must page with the cursor, not by timestamp.

use std::fmt::Write as _;

use fastrand::Rng;
use serde_json::{Value, json};

use crate::schema::{COMPANIES, CONTACTS, LIFECYCLE_STAGES, Schema};
use crate::time::{Micros, SEED_YEAR_END, SEED_YEAR_START};

/// A record as generated, before the store serializes it.
#[derive(Debug, Clone)]
pub(crate) struct SeedRecord {
    /// Field values in schema order.
    pub(crate) values: Vec<Value>,
    pub(crate) created_at: Micros,
    pub(crate) updated_at: Micros,
    pub(crate) version: u64,
}

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Alan",
    "Barbara",
    "Brian",
    "Carla",
    "Dennis",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "Joan",
    "Ken",
    "Linus",
    "Margaret",
    "Niklaus",
    "Olga",
    "Peter",
    "Radia",
    "Sophie",
    "Tim",
    "Ursula",
    "Vint",
    "Whitfield",
    "Xiao",
    "Yukihiro",
    "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Allen",
    "Backus",
    "Cerf",
    "Dijkstra",
    "Engelbart",
    "Floyd",
    "Goldberg",
    "Hopper",
    "Iverson",
    "Jones",
    "Kay",
    "Lamport",
    "Liskov",
    "McCarthy",
    "Naur",
    "Ousterhout",
    "Perlman",
    "Ritchie",
    "Stroustrup",
    "Thompson",
    "Ullman",
    "Van Rossum",
    "Wirth",
    "Yao",
    "Zuse",
];
const TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "CFO",
    "VP Sales",
    "VP Engineering",
    "Head of Data",
    "Account Executive",
    "Sales Manager",
    "Data Engineer",
    "Software Engineer",
    "Product Manager",
    "Marketing Lead",
    "Operations Analyst",
    "Customer Success Manager",
];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Logistics",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Energy",
    "Finance",
    "Education",
    "Media",
    "Agriculture",
    "Telecom",
    "Hospitality",
];
const COUNTRIES: &[&str] = &[
    "US", "GB", "DE", "FR", "NL", "SE", "ES", "IT", "CA", "BR", "JP", "IN", "AU", "SG", "ZA",
];
const NAME_WORDS: &[&str] = &[
    "Acme", "Blue", "Harbor", "Summit", "Cedar", "Nimbus", "Quartz", "Orbit", "Maple", "Vector",
    "Granite", "Lumen", "Pioneer", "Falcon", "Willow", "Atlas", "Copper", "Beacon", "Ember",
    "Delta",
];
const NAME_SUFFIXES: &[&str] = &[
    "Labs", "Systems", "Group", "Holdings", "Works", "Partners", "Inc",
];

/// How many distinct "bulk update" instants the seeded year has.
const BULK_UPDATES: usize = 12;

/// Independent random streams per resource, so each resource's data depends
/// only on the seed and on the counts generated before it.
fn stream(seed: u64, salt: u64) -> Rng {
    Rng::with_seed(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Seeded companies, in id order.
pub(crate) fn companies(seed: u64, count: usize) -> Vec<SeedRecord> {
    let mut rng = stream(seed, 1);
    let times = Timeline::new(&mut rng, count);
    (0..count)
        .map(|i| {
            let first = pick(&mut rng, NAME_WORDS);
            let second = pick(&mut rng, NAME_WORDS);
            let suffix = pick(&mut rng, NAME_SUFFIXES);
            let employees = employees(&mut rng);
            let revenue_cents = employees * rng.i64(2_000_000..=40_000_000);
            let values = vec![
                json!(format!("{first} {second} {suffix}")),
                json!(format!(
                    "{}-{}-{}.example",
                    first.to_lowercase(),
                    second.to_lowercase(),
                    i + 1
                )),
                json!(pick(&mut rng, INDUSTRIES)),
                json!(employees),
                json!(pick(&mut rng, COUNTRIES)),
                json!(revenue_cents as f64 / 100.0),
                Value::Null,
            ];
            debug_assert_eq!(values.len(), COMPANIES.fields.len());
            times.record(&mut rng, i, values)
        })
        .collect()
}

/// Seeded contacts, in id order, each working at one of `companies` companies.
pub(crate) fn contacts(seed: u64, count: usize, companies: usize) -> Vec<SeedRecord> {
    let mut rng = stream(seed, 2);
    let times = Timeline::new(&mut rng, count);
    (0..count)
        .map(|i| {
            let first = pick(&mut rng, FIRST_NAMES);
            let last = pick(&mut rng, LAST_NAMES);
            let company = (companies > 0).then(|| rng.usize(..companies) as u32);
            // One allocation per email: seeding 100,000 contacts should be quick.
            let mut email = String::with_capacity(48);
            for c in first
                .chars()
                .chain(['.'])
                .chain(last.chars())
                .filter(|c| *c != ' ')
            {
                email.push(c.to_ascii_lowercase());
            }
            let _ = match company {
                Some(c) => write!(email, "{}@co-{:05}.example", i + 1, c + 1),
                None => write!(email, "{}@example.com", i + 1),
            };
            let values = vec![
                json!(first),
                json!(last),
                Value::String(email),
                json!(format!(
                    "+1-555-{:03}-{:04}",
                    rng.u16(100..1000),
                    rng.u16(..10_000)
                )),
                json!(pick(&mut rng, TITLES)),
                company.map_or(Value::Null, |c| json!(COMPANIES.format_id(c))),
                json!(pick(&mut rng, LIFECYCLE_STAGES)),
                json!(rng.u8(0..=100)),
                Value::Null,
            ];
            debug_assert_eq!(values.len(), CONTACTS.fields.len());
            times.record(&mut rng, i, values)
        })
        .collect()
}

/// Changes a record the way day-to-day CRM use would: a contact's score
/// (and sometimes title), a company's headcount and revenue.
pub(crate) fn vary(schema: &Schema, rng: &mut Rng, values: &mut [Value]) {
    let mut set = |name: &str, value: Value| {
        if let Some(i) = schema.position(name) {
            values[i] = value;
        }
    };
    if schema.name == CONTACTS.name {
        set("score", json!(rng.u8(0..=100)));
        if rng.bool() {
            set("title", json!(pick(rng, TITLES)));
        }
    } else {
        let employees = employees(rng);
        set("employees", json!(employees));
        set(
            "annual_revenue",
            json!((employees * rng.i64(2_000_000..=40_000_000)) as f64 / 100.0),
        );
    }
}

fn pick<'a>(rng: &mut Rng, words: &[&'a str]) -> &'a str {
    words[rng.usize(..words.len())]
}

/// Company sizes skew small, like real customer bases.
fn employees(rng: &mut Rng) -> i64 {
    let magnitude = rng.u32(0..5);
    let base = 10_i64.pow(magnitude);
    base + rng.i64(0..base * 9)
}

/// Spreads `count` records' creation over 2025 in id order, and decides when
/// each was last updated.
struct Timeline {
    count: usize,
    bulk_updates: Vec<Micros>,
}

impl Timeline {
    fn new(rng: &mut Rng, count: usize) -> Self {
        let mut bulk_updates: Vec<Micros> = (0..BULK_UPDATES)
            .map(|_| rng.i64(SEED_YEAR_START..SEED_YEAR_END))
            .collect();
        bulk_updates.sort_unstable();
        Self {
            count,
            bulk_updates,
        }
    }

    fn record(&self, rng: &mut Rng, index: usize, values: Vec<Value>) -> SeedRecord {
        let year = SEED_YEAR_END - SEED_YEAR_START;
        let count = self.count.max(1) as i128;
        // Slot boundaries in i128: index * year overflows i64 past ~290k records.
        let slot_start = SEED_YEAR_START + (index as i128 * year as i128 / count) as i64;
        let slot_end = SEED_YEAR_START + ((index as i128 + 1) * year as i128 / count) as i64;
        let created_at = rng.i64(slot_start..slot_end.max(slot_start + 1));

        let roll = rng.u8(..100);
        let (updated_at, version) = if roll < 30 || created_at + 1 >= SEED_YEAR_END {
            (created_at, 1)
        } else {
            let later = self.bulk_updates.partition_point(|&t| t <= created_at);
            let updated_at = if roll < 40 && later < self.bulk_updates.len() {
                self.bulk_updates[rng.usize(later..self.bulk_updates.len())]
            } else {
                rng.i64(created_at + 1..SEED_YEAR_END)
            };
            (updated_at, rng.u64(2..=6))
        };
        SeedRecord {
            values,
            created_at,
            updated_at,
            version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_data_and_other_seeds_differ() {
        let a = contacts(42, 50, 10);
        let b = contacts(42, 50, 10);
        let c = contacts(43, 50, 10);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
    }

    #[test]
    fn seeded_records_are_valid_and_created_in_id_order() {
        for (schema, records) in [
            (&CONTACTS, contacts(7, 2_000, 100)),
            (&COMPANIES, companies(7, 2_000)),
        ] {
            for pair in records.windows(2) {
                assert!(pair[0].created_at < pair[1].created_at);
            }
            for r in &records {
                schema.validate(&r.values).unwrap();
                assert!(r.created_at <= r.updated_at && r.updated_at < SEED_YEAR_END);
                assert!(SEED_YEAR_START <= r.created_at);
                assert_eq!(r.version == 1, r.created_at == r.updated_at);
            }
        }
    }

    #[test]
    fn bulk_updates_make_updated_at_ties() {
        let records = contacts(42, 5_000, 100);
        let mut times: Vec<Micros> = records.iter().map(|r| r.updated_at).collect();
        times.sort_unstable();
        let distinct = {
            times.dedup();
            times.len()
        };
        assert!(
            distinct < records.len() - 100,
            "expected ties, got {distinct} distinct"
        );
    }
}
