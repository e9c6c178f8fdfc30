//! Values parsed once at the edge: a value of these types is valid by construction.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// Why a text could not be parsed into one of the newtypes below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A slug broke the format rule (the message says which part).
    #[error("slug {0}")]
    Slug(&'static str),
    /// A slug is reserved for the platform itself.
    #[error("slug `{0}` is reserved")]
    ReservedSlug(String),
    /// An email address is not of the form `local@domain`.
    #[error("email address {0}")]
    Email(&'static str),
    /// A Hetzner server type name is malformed.
    #[error("server type must be 2–32 lowercase letters, digits or hyphens (e.g. `cx22`)")]
    ServerType,
    /// An invoice number is not `INV-YYYYMM-XXXX`.
    #[error("invoice number must look like INV-YYYYMM-0001")]
    InvoiceNumber,
    /// A currency code is not three uppercase letters.
    #[error("currency must be a three-letter ISO code such as EUR")]
    Currency,
}

/// Subdomains that belong to the platform and can never be an organization's slug.
pub const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "billing",
    "caddy",
    "dashboard",
    "docs",
    "help",
    "login",
    "mail",
    "nest",
    "ns1",
    "ns2",
    "root",
    "setup",
    "signup",
    "smtp",
    "static",
    "status",
    "support",
    "www",
];

/// An organization's slug: its subdomain. 3–40 of `a-z`, `0-9`, `-`; no leading, trailing or
/// doubled hyphen; not reserved.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "ssr",
    derive(sea_orm::DeriveValueType),
    sea_orm(value_type = "String")
)]
pub struct OrgSlug(String);

impl OrgSlug {
    /// Shortest accepted slug.
    pub const MIN_LEN: usize = 3;
    /// Longest accepted slug (the database column's width).
    pub const MAX_LEN: usize = 40;

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OrgSlug {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < Self::MIN_LEN {
            return Err(ParseError::Slug("must be at least 3 characters"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(ParseError::Slug("must be at most 40 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ParseError::Slug(
                "may contain only lowercase letters, digits and hyphens",
            ));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(ParseError::Slug("must not start or end with a hyphen"));
        }
        if s.contains("--") {
            return Err(ParseError::Slug("must not contain two hyphens in a row"));
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(ParseError::ReservedSlug(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A lower-cased email address of the form `local@domain.tld`, at most 254 characters.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "ssr",
    derive(sea_orm::DeriveValueType),
    sea_orm(value_type = "String")
)]
pub struct Email(String);

impl Email {
    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Email {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err(ParseError::Email("is required"));
        }
        if s.len() > 254 {
            return Err(ParseError::Email("must be at most 254 characters"));
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err(ParseError::Email("must contain an @"));
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(ParseError::Email("must look like name@example.com"));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(ParseError::Email("must have a domain such as example.com"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ParseError::Email("must not contain spaces"));
        }
        Ok(Self(s))
    }
}

/// A Hetzner Cloud server type name such as `cx22`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "ssr",
    derive(sea_orm::DeriveValueType),
    sea_orm(value_type = "String")
)]
pub struct ServerType(String);

impl ServerType {
    /// The server type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ServerType {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (2..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::ServerType)
        }
    }
}

/// An invoice number, `INV-YYYYMM-XXXX`: the billing month and its sequence in that month,
/// written with at least four digits (`0001`–`9999`; a month past 9,999 invoices goes on with
/// `10000`–`99999`, never with a leading zero, so each number has one spelling).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "ssr",
    derive(sea_orm::DeriveValueType),
    sea_orm(value_type = "String")
)]
pub struct InvoiceNumber {
    year: u16,
    month: u8,
    sequence: u32,
}

/// The highest sequence of a month.
pub const INVOICE_SEQUENCE_MAX: u32 = 99_999;

impl InvoiceNumber {
    /// The number of the `sequence`th invoice (1-based, ≤ 99,999) of the month containing
    /// `period`.
    pub fn new(period: NaiveDate, sequence: u32) -> Option<Self> {
        let year = u16::try_from(period.year())
            .ok()
            .filter(|y| (1000..=9999).contains(y))?;
        let month = u8::try_from(period.month()).ok()?;
        (1..=INVOICE_SEQUENCE_MAX)
            .contains(&sequence)
            .then_some(Self {
                year,
                month,
                sequence,
            })
    }

    /// The sequence within the month.
    pub fn sequence(self) -> u32 {
        self.sequence
    }

    /// The first day of the month the number belongs to.
    pub fn month(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(i32::from(self.year), u32::from(self.month), 1)
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "INV-{:04}{:02}-{:04}",
            self.year, self.month, self.sequence
        )
    }
}

impl FromStr for InvoiceNumber {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        // Four digits, or five without a leading zero (one spelling per number).
        if !(b.len() == 15 || (b.len() == 16 && b[11] != b'0'))
            || !s.starts_with("INV-")
            || b[10] != b'-'
            || !digits(4..10)
            || !digits(11..b.len())
        {
            return Err(ParseError::InvoiceNumber);
        }
        let year: u16 = s[4..8].parse().map_err(|_| ParseError::InvoiceNumber)?;
        let month: u8 = s[8..10].parse().map_err(|_| ParseError::InvoiceNumber)?;
        let sequence: u32 = s[11..].parse().map_err(|_| ParseError::InvoiceNumber)?;
        if !(1..=12).contains(&month) || sequence == 0 || year < 1000 {
            return Err(ParseError::InvoiceNumber);
        }
        Ok(Self {
            year,
            month,
            sequence,
        })
    }
}

/// An ISO 4217 currency code (three uppercase letters), e.g. `EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "ssr",
    derive(sea_orm::DeriveValueType),
    sea_orm(value_type = "String")
)]
pub struct Currency(String);

impl Currency {
    /// The euro, the currency of the spec's tiers.
    pub fn eur() -> Self {
        Self("EUR".to_owned())
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Currency {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::Currency)
        }
    }
}

/// An amount of money in integer minor units (cents) with its currency; never a float.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Money {
    /// Minor units (cents).
    pub cents: i64,
    /// The currency.
    pub currency: Currency,
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let symbol = match self.currency.as_str() {
            "EUR" => "€",
            "USD" => "$",
            "GBP" => "£",
            _ => "",
        };
        let sign = if self.cents < 0 { "-" } else { "" };
        let abs = self.cents.unsigned_abs();
        let (units, cents) = (abs / 100, abs % 100);
        let mut grouped = String::new();
        let digits = units.to_string();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if symbol.is_empty() {
            write!(f, "{sign}{grouped}.{cents:02} {}", self.currency.as_str())
        } else {
            write!(f, "{sign}{symbol}{grouped}.{cents:02}")
        }
    }
}

macro_rules! string_newtype_conversions {
    ($($name:ident),+) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }
    )+};
}

string_newtype_conversions!(OrgSlug, Email, ServerType, Currency);

impl From<InvoiceNumber> for String {
    fn from(value: InvoiceNumber) -> Self {
        value.to_string()
    }
}

impl TryFrom<String> for InvoiceNumber {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slug_of_lowercase_letters_digits_and_hyphens_is_accepted() {
        assert_eq!("acme-42".parse::<OrgSlug>().unwrap().as_str(), "acme-42");
    }

    #[test]
    fn a_slug_shorter_than_three_or_longer_than_forty_is_refused() {
        assert!("ab".parse::<OrgSlug>().is_err());
        assert!("a".repeat(41).parse::<OrgSlug>().is_err());
        assert!("a".repeat(40).parse::<OrgSlug>().is_ok());
    }

    #[test]
    fn a_slug_with_uppercase_spaces_or_dots_is_refused() {
        for bad in ["Acme", "ac me", "ac.me", "acmé", "ac_me"] {
            assert!(bad.parse::<OrgSlug>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn a_slug_with_edge_or_doubled_hyphens_is_refused() {
        for bad in ["-acme", "acme-", "ac--me"] {
            assert!(bad.parse::<OrgSlug>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn a_reserved_slug_is_refused_by_name() {
        assert_eq!(
            "admin".parse::<OrgSlug>(),
            Err(ParseError::ReservedSlug("admin".into()))
        );
    }

    #[test]
    fn an_email_is_trimmed_and_lowercased() {
        assert_eq!(
            " Ops@Example.COM ".parse::<Email>().unwrap().as_str(),
            "ops@example.com"
        );
    }

    #[test]
    fn an_email_without_at_or_domain_is_refused() {
        for bad in [
            "",
            "ops",
            "ops@",
            "@example.com",
            "ops@localhost",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_server_type_like_cx22_is_accepted_and_nonsense_refused() {
        assert!("cx22".parse::<ServerType>().is_ok());
        assert!("cpx-51".parse::<ServerType>().is_ok());
        for bad in ["", "c", "CX22", "22cx", "cx 22"] {
            assert!(
                bad.parse::<ServerType>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn an_invoice_number_formats_as_inv_year_month_sequence() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(
            InvoiceNumber::new(date, 1).unwrap().to_string(),
            "INV-202603-0001"
        );
        assert!(InvoiceNumber::new(date, 0).is_none());
        assert_eq!(
            InvoiceNumber::new(date, 10_000).unwrap().to_string(),
            "INV-202603-10000"
        );
        assert!(InvoiceNumber::new(date, 100_000).is_none());
    }

    #[test]
    fn a_five_digit_invoice_number_parses_back_and_names_its_month() {
        let n: InvoiceNumber = "INV-202603-10001".parse().unwrap();
        assert_eq!(n.sequence(), 10_001);
        assert_eq!(n.month(), NaiveDate::from_ymd_opt(2026, 3, 1));
    }

    #[test]
    fn an_invoice_number_parses_back_to_itself() {
        let n: InvoiceNumber = "INV-202612-0420".parse().unwrap();
        assert_eq!(n.to_string(), "INV-202612-0420");
        assert_eq!(n.sequence(), 420);
    }

    #[test]
    fn a_malformed_invoice_number_is_refused() {
        for bad in [
            "INV-202613-0001",
            "INV-202603-0000",
            "INV-20263-0001",
            "inv-202603-0001",
            "INV-202603-00001",
            "INV-202603-100000",
            "INV-2026030001x",
        ] {
            assert!(
                bad.parse::<InvoiceNumber>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn money_is_shown_with_symbol_and_thousands_separators() {
        let eur = |cents| Money {
            cents,
            currency: Currency::eur(),
        };
        assert_eq!(eur(2800).to_string(), "€28.00");
        assert_eq!(eur(123_456_789).to_string(), "€1,234,567.89");
        assert_eq!(eur(-5).to_string(), "-€0.05");
        let chf = Money {
            cents: 100,
            currency: "CHF".parse().unwrap(),
        };
        assert_eq!(chf.to_string(), "1.00 CHF");
    }
}

/// Parses a price typed by a person (`28`, `28.5`, `28.50`, `1,234.00`) into cents, without
/// floating point. Negative, empty or more-than-two-decimal values are refused.
pub fn parse_price_cents(text: &str) -> Result<i64, &'static str> {
    let t: String = text
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != ' ')
        .collect();
    if t.is_empty() {
        return Err("is required");
    }
    let (units, fraction) = t.split_once('.').unwrap_or((&t, ""));
    if units.is_empty()
        || !units.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("must be an amount such as 28.00");
    }
    if fraction.len() > 2 {
        return Err("has more than two decimals");
    }
    let units: i64 = units.parse().map_err(|_| "is too large")?;
    let cents: i64 = format!("{fraction:0<2}")
        .parse()
        .map_err(|_| "must be an amount such as 28.00")?;
    units
        .checked_mul(100)
        .and_then(|u| u.checked_add(cents))
        .filter(|c| *c <= 100_000_000)
        .ok_or("is too large")
}

#[cfg(test)]
mod price_tests {
    use super::parse_price_cents;

    #[test]
    fn a_typed_price_becomes_integer_cents() {
        assert_eq!(parse_price_cents("28"), Ok(2_800));
        assert_eq!(parse_price_cents("28.5"), Ok(2_850));
        assert_eq!(parse_price_cents(" 1,234.05 "), Ok(123_405));
        assert_eq!(parse_price_cents("0.99"), Ok(99));
    }

    #[test]
    fn a_malformed_price_is_refused() {
        for bad in [
            "",
            "-1",
            "28.505",
            "abc",
            ".5",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(parse_price_cents(bad).is_err(), "{bad:?}");
        }
    }
}
