//! `"type": "date" | "datetime"`: reading dates the way a partner writes
//! them and writing them the way the other partner wants.
//!
//! A value read is either a calendar day (`2025-01-31`, which has no time
//! zone and is never shifted) or a moment: an instant plus the offset it was
//! written with. Naive date-times (`2025-01-31T09:30:00`) become moments in
//! `input_timezone`, else `timezone`, else UTC. A moment is written in
//! `timezone`, or else with the offset it was read with, so that a mapping
//! without time zones never shifts a value.

use jiff::civil::{Date, DateTime};
use jiff::fmt::strtime;
use jiff::fmt::temporal::{DateTimePrinter, Pieces};
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, Zoned};
use serde_json::Value;

use super::error::{MappingError, kind_of, quote};

/// What a date rule writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Calendar {
    /// A calendar day, `%Y-%m-%d` unless `format` says otherwise.
    Date,
    /// An instant, RFC 3339 unless `format` says otherwise.
    DateTime,
}

/// The keys of a date rule, as written in the document.
#[derive(Debug, Default)]
pub(crate) struct DateSettings<'d> {
    pub(crate) input_format: Option<&'d str>,
    pub(crate) format: Option<&'d str>,
    pub(crate) timezone: Option<&'d str>,
    pub(crate) input_timezone: Option<&'d str>,
}

const ZONE_HINT: &str =
    "use an IANA time zone name, such as `Europe/Paris`, `America/New_York` or `UTC`";
const INPUT_FORMAT_HINT: &str = "write a strftime pattern such as `%d/%m/%Y %H:%M`, \
    or `rfc3339`, `unix_seconds` or `unix_millis`";

/// A compiled date conversion: time zones looked up and patterns checked
/// once, when the mapping is parsed.
#[derive(Debug, Clone)]
pub(crate) struct DateConversion {
    calendar: Calendar,
    input: InputFormat,
    input_zone: TimeZone,
    /// `None`: write moments with the offset they were read with.
    output_zone: Option<TimeZone>,
    format: Option<Box<str>>,
}

#[derive(Debug, Clone)]
enum InputFormat {
    Rfc3339,
    UnixSeconds,
    UnixMillis,
    Pattern(Box<str>),
}

#[derive(Clone, Copy)]
enum Parsed {
    Day(Date),
    Moment { at: Timestamp, offset: Offset },
}

/// Checks formats against this moment: it has every field set, a fraction
/// of a second, and a day and month that cannot be confused.
fn sample(zone: TimeZone) -> Zoned {
    jiff::civil::date(2001, 2, 3)
        .at(4, 5, 6, 789_000_000)
        .to_zoned(zone)
        .unwrap_or_default()
}

impl DateConversion {
    /// `path` is the rule's path, e.g. `fields[3]`.
    pub(crate) fn new(
        calendar: Calendar,
        settings: &DateSettings<'_>,
        path: &str,
    ) -> Result<Self, MappingError> {
        let zone = |key: &str, name: Option<&str>| -> Result<Option<TimeZone>, MappingError> {
            let Some(name) = name else { return Ok(None) };
            let zone = TimeZone::get(name).map_err(|_| {
                let reason = format!("`{name}` is not a known time zone");
                MappingError::new(format!("{path}.{key}"), reason).with_hint(ZONE_HINT)
            })?;
            Ok(Some(zone))
        };
        let output_zone = zone("timezone", settings.timezone)?;
        let input_zone = zone("input_timezone", settings.input_timezone)?
            .or_else(|| output_zone.clone())
            .unwrap_or(TimeZone::UTC);
        let input = match settings.input_format {
            None | Some("rfc3339") => InputFormat::Rfc3339,
            Some("unix_seconds") => InputFormat::UnixSeconds,
            Some("unix_millis") => InputFormat::UnixMillis,
            Some(pattern) => {
                check_input_pattern(pattern).map_err(|reason| {
                    MappingError::new(format!("{path}.input_format"), reason)
                        .with_hint(INPUT_FORMAT_HINT)
                })?;
                InputFormat::Pattern(pattern.into())
            }
        };
        if let Some(format) = settings.format {
            // Without `timezone`, moments are written with a fixed offset,
            // which has no name: check the pattern against that case.
            let zone = output_zone
                .clone()
                .unwrap_or_else(|| TimeZone::fixed(Offset::constant(1)));
            check_output_pattern(calendar, format, zone)
                .map_err(|reason| MappingError::new(format!("{path}.format"), reason))?;
        }
        Ok(Self {
            calendar,
            input,
            input_zone,
            output_zone,
            format: settings.format.map(Into::into),
        })
    }

    pub(crate) fn calendar(&self) -> Calendar {
        self.calendar
    }

    /// The `format` values are written in, when the rule gives one.
    pub(crate) fn format(&self) -> Option<&str> {
        self.format.as_deref()
    }

    /// Whether values are written other than `%Y-%m-%d` or RFC 3339.
    pub(crate) fn has_custom_format(&self) -> bool {
        match (&self.format, self.calendar) {
            (None, _) => false,
            (Some(format), Calendar::Date) => !matches!(&**format, "%Y-%m-%d" | "%F"),
            (Some(_), Calendar::DateTime) => true,
        }
    }

    /// Converts a non-null value, or says why it is not a date.
    pub(crate) fn convert(&self, value: &Value) -> Result<Value, String> {
        let parsed = self.parse(value).ok_or_else(|| self.not_a_date(value))?;
        let written = match self.calendar {
            Calendar::Date => self.write_date(parsed),
            Calendar::DateTime => self.write_datetime(parsed),
        };
        written
            .map(Value::String)
            .ok_or_else(|| format!("{} is out of the supported range of dates", quote(value)))
    }

    fn parse(&self, value: &Value) -> Option<Parsed> {
        match (&self.input, value) {
            (InputFormat::Rfc3339, Value::String(text)) => self.parse_rfc3339(text),
            (InputFormat::Pattern(pattern), Value::String(text)) => {
                self.parse_pattern(pattern, text)
            }
            (InputFormat::UnixSeconds, value) => unix_time(value, 1_000_000_000),
            (InputFormat::UnixMillis, value) => unix_time(value, 1_000_000),
            _ => None,
        }
    }

    fn parse_rfc3339(&self, text: &str) -> Option<Parsed> {
        let pieces = Pieces::parse(text.trim()).ok()?;
        let Some(time) = pieces.time() else {
            return Some(Parsed::Day(pieces.date()));
        };
        let datetime = pieces.date().to_datetime(time);
        if let Some(offset) = pieces.to_numeric_offset() {
            let at = offset.to_timestamp(datetime).ok()?;
            return Some(Parsed::Moment { at, offset });
        }
        // `2025-01-31T09:30[Europe/Paris]` names its own zone.
        match pieces.to_time_zone().ok()? {
            Some(zone) => moment_in(&zone, datetime),
            None => moment_in(&self.input_zone, datetime),
        }
    }

    fn parse_pattern(&self, pattern: &str, text: &str) -> Option<Parsed> {
        let broken_down = strtime::parse(pattern, text).ok()?;
        if broken_down.timestamp().is_some() || broken_down.offset().is_some() {
            let at = broken_down.to_timestamp().ok()?;
            let offset = broken_down.offset().unwrap_or(Offset::UTC);
            Some(Parsed::Moment { at, offset })
        } else if broken_down.iana_time_zone().is_some() {
            let zoned = broken_down.to_zoned().ok()?;
            Some(Parsed::Moment {
                at: zoned.timestamp(),
                offset: zoned.offset(),
            })
        } else if broken_down.hour().is_some() {
            moment_in(&self.input_zone, broken_down.to_datetime().ok()?)
        } else {
            Some(Parsed::Day(broken_down.to_date().ok()?))
        }
    }

    fn write_date(&self, parsed: Parsed) -> Option<String> {
        let date = match parsed {
            Parsed::Day(date) => date,
            Parsed::Moment { at, offset } => match &self.output_zone {
                Some(zone) => zone.to_datetime(at).date(),
                None => offset.to_datetime(at).date(),
            },
        };
        match &self.format {
            None => Some(date.to_string()),
            Some(format) => strtime::format(&**format, date).ok(),
        }
    }

    fn write_datetime(&self, parsed: Parsed) -> Option<String> {
        let (at, offset) = match parsed {
            Parsed::Moment { at, offset } => (at, offset),
            Parsed::Day(date) => match moment_in(
                &self.input_zone,
                date.to_datetime(jiff::civil::Time::midnight()),
            )? {
                Parsed::Moment { at, offset } => (at, offset),
                Parsed::Day(_) => return None,
            },
        };
        let zone = match &self.output_zone {
            Some(zone) => zone.clone(),
            None => TimeZone::fixed(offset),
        };
        match &self.format {
            Some(format) => strtime::format(&**format, &at.to_zoned(zone)).ok(),
            None => {
                let offset = zone.to_offset(at);
                let mut text = String::with_capacity(25);
                let printer = DateTimePrinter::new();
                let printed = if offset == Offset::UTC {
                    printer.print_timestamp(&at, &mut text)
                } else {
                    printer.print_timestamp_with_offset(&at, offset, &mut text)
                };
                printed.ok().map(|()| text)
            }
        }
    }

    fn not_a_date(&self, value: &Value) -> String {
        let what = match self.calendar {
            Calendar::Date => "a date",
            Calendar::DateTime => "a date-time",
        };
        match &self.input {
            InputFormat::Rfc3339 | InputFormat::Pattern(_) if !value.is_string() => {
                format!(
                    "{} is {}, not {what} written as text",
                    quote(value),
                    kind_of(value)
                )
            }
            InputFormat::Rfc3339 => format!("{} is not {what} (expected RFC 3339)", quote(value)),
            InputFormat::Pattern(pattern) => {
                format!("{} is not {what} (expected `{pattern}`)", quote(value))
            }
            InputFormat::UnixSeconds => {
                format!("{} is not a Unix time in seconds", quote(value))
            }
            InputFormat::UnixMillis => {
                format!("{} is not a Unix time in milliseconds", quote(value))
            }
        }
    }
}

/// A civil date-time in a zone; in a gap or overlap of a daylight saving
/// change, the time before the change is taken, as most systems do.
fn moment_in(zone: &TimeZone, datetime: DateTime) -> Option<Parsed> {
    let zoned = zone.to_ambiguous_zoned(datetime).compatible().ok()?;
    Some(Parsed::Moment {
        at: zoned.timestamp(),
        offset: zoned.offset(),
    })
}

/// Seconds or milliseconds since 1970, as a number or numeric text.
fn unix_time(value: &Value, nanos_per_unit: i128) -> Option<Parsed> {
    let units: f64 = match value {
        Value::Number(n) => {
            if let Some(whole) = n.as_i64() {
                let nanos = i128::from(whole).checked_mul(nanos_per_unit)?;
                return unix_moment(nanos);
            }
            n.as_f64()?
        }
        Value::String(text) => {
            let text = text.trim();
            if let Ok(whole) = text.parse::<i64>() {
                let nanos = i128::from(whole).checked_mul(nanos_per_unit)?;
                return unix_moment(nanos);
            }
            text.parse().ok().filter(|f: &f64| f.is_finite())?
        }
        _ => return None,
    };
    // Saturates far outside the range of dates, which the check below refuses.
    unix_moment((units * nanos_per_unit as f64) as i128)
}

fn unix_moment(nanos: i128) -> Option<Parsed> {
    Some(Parsed::Moment {
        at: Timestamp::from_nanosecond(nanos).ok()?,
        offset: Offset::UTC,
    })
}

/// An input pattern must be able to read what it writes, and must hold a
/// date: writing the sample with it and reading it back proves both.
fn check_input_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("is empty".into());
    }
    let text = strtime::format(pattern, &sample(TimeZone::UTC))
        .map_err(|error| format!("`{pattern}` is not a usable strftime pattern: {error}"))?;
    let read = strtime::parse(pattern, &text)
        .map_err(|error| format!("`{pattern}` cannot read dates back: {error}"))?;
    if read.timestamp().is_none() && read.to_date().is_err() {
        return Err(format!(
            "`{pattern}` holds no full date: it needs a year, month and day (such as `%Y-%m-%d`)"
        ));
    }
    Ok(())
}

fn check_output_pattern(calendar: Calendar, pattern: &str, zone: TimeZone) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("is empty".into());
    }
    let sample = sample(zone);
    let written = match calendar {
        Calendar::Date => strtime::format(pattern, sample.date()),
        Calendar::DateTime => strtime::format(pattern, &sample),
    };
    written.map(drop).map_err(|error| match calendar {
        Calendar::Date => format!("`{pattern}` cannot write a date: {error}"),
        Calendar::DateTime => format!("`{pattern}` cannot write a date-time: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn conversion(calendar: Calendar, settings: DateSettings<'_>) -> DateConversion {
        DateConversion::new(calendar, &settings, "fields[0]").unwrap()
    }

    fn refused(calendar: Calendar, settings: DateSettings<'_>) -> MappingError {
        DateConversion::new(calendar, &settings, "fields[0]").unwrap_err()
    }

    #[test]
    fn rfc3339_dates_and_times_are_read() {
        let date = conversion(Calendar::Date, DateSettings::default());
        assert_eq!(date.convert(&json!("2025-01-31")), Ok(json!("2025-01-31")));
        assert_eq!(
            date.convert(&json!("2025-01-31T23:30:00Z")),
            Ok(json!("2025-01-31"))
        );
        // The day as written, not shifted to UTC.
        assert_eq!(
            date.convert(&json!("2025-01-31T23:30:00-05:00")),
            Ok(json!("2025-01-31"))
        );
        let datetime = conversion(Calendar::DateTime, DateSettings::default());
        assert_eq!(
            datetime.convert(&json!("2025-01-31T09:30:00Z")),
            Ok(json!("2025-01-31T09:30:00Z"))
        );
        assert_eq!(
            datetime.convert(&json!("2025-01-31T09:30:00.250+02:00")),
            Ok(json!("2025-01-31T09:30:00.25+02:00"))
        );
        assert_eq!(
            datetime.convert(&json!("2025-01-31")),
            Ok(json!("2025-01-31T00:00:00Z"))
        );
        assert_eq!(
            datetime.convert(&json!("2025-01-31 09:30:00")),
            Ok(json!("2025-01-31T09:30:00Z"))
        );
    }

    #[test]
    fn timezone_expresses_moments_and_reads_naive_times() {
        let paris = DateSettings {
            timezone: Some("Europe/Paris"),
            ..DateSettings::default()
        };
        let date = conversion(Calendar::Date, paris);
        assert_eq!(
            date.convert(&json!("2025-01-31T23:30:00Z")),
            Ok(json!("2025-02-01"))
        );
        // A calendar day has no zone: never shifted.
        assert_eq!(date.convert(&json!("2025-01-31")), Ok(json!("2025-01-31")));
        let datetime = conversion(
            Calendar::DateTime,
            DateSettings {
                timezone: Some("Europe/Paris"),
                ..DateSettings::default()
            },
        );
        assert_eq!(
            datetime.convert(&json!("2025-07-01T10:00:00Z")),
            Ok(json!("2025-07-01T12:00:00+02:00"))
        );
        assert_eq!(
            datetime.convert(&json!("2025-01-31T09:30:00")),
            Ok(json!("2025-01-31T09:30:00+01:00"))
        );
        assert_eq!(
            datetime.convert(&json!("2025-01-31T09:30:00[America/New_York]")),
            Ok(json!("2025-01-31T15:30:00+01:00"))
        );
    }

    #[test]
    fn input_timezone_reads_naive_times_written_elsewhere() {
        let datetime = conversion(
            Calendar::DateTime,
            DateSettings {
                input_timezone: Some("America/New_York"),
                timezone: Some("UTC"),
                ..DateSettings::default()
            },
        );
        assert_eq!(
            datetime.convert(&json!("2025-01-31T09:30:00")),
            Ok(json!("2025-01-31T14:30:00Z"))
        );
    }

    #[test]
    fn patterns_read_and_write_dates() {
        let date = conversion(
            Calendar::Date,
            DateSettings {
                input_format: Some("%d/%m/%Y"),
                format: Some("%Y%m%d"),
                ..DateSettings::default()
            },
        );
        assert_eq!(date.convert(&json!("31/01/2025")), Ok(json!("20250131")));
        assert_eq!(
            date.convert(&json!("01/31/2025")),
            Err("`01/31/2025` is not a date (expected `%d/%m/%Y`)".into())
        );
        let datetime = conversion(
            Calendar::DateTime,
            DateSettings {
                input_format: Some("%d/%m/%Y %H:%M"),
                format: Some("%Y-%m-%d %H:%M %Z"),
                timezone: Some("Europe/Paris"),
                ..DateSettings::default()
            },
        );
        assert_eq!(
            datetime.convert(&json!("31/01/2025 09:30")),
            Ok(json!("2025-01-31 09:30 CET"))
        );
        let with_offset = conversion(
            Calendar::DateTime,
            DateSettings {
                input_format: Some("%Y-%m-%d %H:%M %z"),
                ..DateSettings::default()
            },
        );
        assert_eq!(
            with_offset.convert(&json!("2025-01-31 09:30 -0500")),
            Ok(json!("2025-01-31T09:30:00-05:00"))
        );
    }

    #[test]
    fn unix_times_are_read_from_numbers_and_text() {
        let seconds = conversion(
            Calendar::DateTime,
            DateSettings {
                input_format: Some("unix_seconds"),
                ..DateSettings::default()
            },
        );
        assert_eq!(
            seconds.convert(&json!(0)),
            Ok(json!("1970-01-01T00:00:00Z"))
        );
        assert_eq!(
            seconds.convert(&json!("1738315800")),
            Ok(json!("2025-01-31T09:30:00Z"))
        );
        assert_eq!(
            seconds.convert(&json!(1.5)),
            Ok(json!("1970-01-01T00:00:01.5Z"))
        );
        assert_eq!(
            seconds.convert(&json!(1e20)),
            Err("`1e+20` is not a Unix time in seconds".into())
        );
        assert_eq!(
            seconds.convert(&json!(i64::MAX)),
            Err("`9223372036854775807` is not a Unix time in seconds".into())
        );
        assert_eq!(
            seconds.convert(&json!(true)),
            Err("`true` is not a Unix time in seconds".into())
        );
        let millis = conversion(
            Calendar::Date,
            DateSettings {
                input_format: Some("unix_millis"),
                ..DateSettings::default()
            },
        );
        assert_eq!(
            millis.convert(&json!(1738315800000_i64)),
            Ok(json!("2025-01-31"))
        );
        assert_eq!(
            millis.convert(&json!("soon")),
            Err("`soon` is not a Unix time in milliseconds".into())
        );
    }

    #[test]
    fn invalid_dates_name_the_value_and_the_expected_form() {
        let date = conversion(Calendar::Date, DateSettings::default());
        assert_eq!(
            date.convert(&json!("2025-13-01")),
            Err("`2025-13-01` is not a date (expected RFC 3339)".into())
        );
        assert_eq!(
            date.convert(&json!("2025-02-30")),
            Err("`2025-02-30` is not a date (expected RFC 3339)".into())
        );
        assert_eq!(
            date.convert(&json!(20250131)),
            Err("`20250131` is a number, not a date written as text".into())
        );
        let datetime = conversion(Calendar::DateTime, DateSettings::default());
        assert_eq!(
            datetime.convert(&json!("yesterday")),
            Err("`yesterday` is not a date-time (expected RFC 3339)".into())
        );
    }

    #[test]
    fn unknown_time_zones_are_refused_with_a_hint() {
        let error = refused(
            Calendar::Date,
            DateSettings {
                timezone: Some("Europe/Pariss"),
                ..DateSettings::default()
            },
        );
        assert_eq!(error.path, "fields[0].timezone");
        assert_eq!(error.reason, "`Europe/Pariss` is not a known time zone");
        assert!(error.hint.is_some());
        let error = refused(
            Calendar::Date,
            DateSettings {
                input_timezone: Some("Mars/Olympus"),
                ..DateSettings::default()
            },
        );
        assert_eq!(error.path, "fields[0].input_timezone");
    }

    #[test]
    fn unusable_patterns_are_refused_when_parsed() {
        let error = refused(
            Calendar::Date,
            DateSettings {
                format: Some("%Y-%m-%d %H:%M"),
                ..DateSettings::default()
            },
        );
        assert_eq!(error.path, "fields[0].format");
        assert!(
            error
                .reason
                .starts_with("`%Y-%m-%d %H:%M` cannot write a date: "),
            "{}",
            error.reason
        );
        let error = refused(
            Calendar::DateTime,
            DateSettings {
                format: Some("%Y %!"),
                ..DateSettings::default()
            },
        );
        assert_eq!(error.path, "fields[0].format");
        assert!(
            error
                .reason
                .starts_with("`%Y %!` cannot write a date-time: "),
            "{}",
            error.reason
        );
        let error = refused(
            Calendar::Date,
            DateSettings {
                format: Some(""),
                ..DateSettings::default()
            },
        );
        assert_eq!(error.reason, "is empty");
        let error = refused(
            Calendar::Date,
            DateSettings {
                input_format: Some("%H:%M"),
                ..DateSettings::default()
            },
        );
        assert_eq!(error.path, "fields[0].input_format");
        assert_eq!(
            error.reason,
            "`%H:%M` holds no full date: it needs a year, month and day (such as `%Y-%m-%d`)"
        );
        let error = refused(
            Calendar::Date,
            DateSettings {
                input_format: Some("%Y-%m-%d %J"),
                ..DateSettings::default()
            },
        );
        assert!(
            error
                .reason
                .starts_with("`%Y-%m-%d %J` is not a usable strftime pattern: "),
            "{}",
            error.reason
        );
    }
}
