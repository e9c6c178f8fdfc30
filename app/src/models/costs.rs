//! What a tenant costs against what it pays: Hetzner's monthly price of its server and IPv4
//! against its tier's price. The arithmetic is here, shared by the server (which sums and
//! sorts) and the browser (which formats), and tested without either.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Currency, Money, Region};

/// A month's revenue against a month's cost, in the same currency (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Margin {
    /// What the customers pay (the tiers' prices).
    pub revenue_cents: i64,
    /// What Hetzner charges (servers and their IPv4, net of VAT).
    pub cost_cents: i64,
}

impl Margin {
    /// Revenue minus cost.
    pub const fn margin_cents(self) -> i64 {
        self.revenue_cents - self.cost_cents
    }

    /// The margin as a share of revenue, in tenths of a percent (rounded half away from
    /// zero); `None` without revenue.
    pub fn permille(self) -> Option<i64> {
        if self.revenue_cents <= 0 {
            return None;
        }
        let scaled = i128::from(self.margin_cents()) * 1000;
        let revenue = i128::from(self.revenue_cents);
        let half = revenue / 2;
        let rounded = if scaled >= 0 {
            (scaled + half) / revenue
        } else {
            (scaled - half) / revenue
        };
        i64::try_from(rounded).ok()
    }

    /// The share as people read it: `84.7 %`, or `-` without revenue.
    pub fn percent_text(self) -> String {
        self.permille().map_or_else(
            || "-".to_owned(),
            |p| {
                let sign = if p < 0 { "-" } else { "" };
                let abs = p.unsigned_abs();
                format!("{sign}{}.{} %", abs / 10, abs % 10)
            },
        )
    }

    /// Whether the share is under `percent` (a margin without revenue is not).
    pub fn below(self, percent: u32) -> bool {
        self.permille().is_some_and(|p| p < i64::from(percent) * 10)
    }

    /// The sum of two margins.
    #[must_use]
    pub const fn plus(self, other: Self) -> Self {
        Self {
            revenue_cents: self.revenue_cents + other.revenue_cents,
            cost_cents: self.cost_cents + other.cost_cents,
        }
    }

    /// `count` organizations with this margin each.
    #[must_use]
    pub const fn times(self, count: i64) -> Self {
        Self {
            revenue_cents: self.revenue_cents * count,
            cost_cents: self.cost_cents * count,
        }
    }

    /// Revenue, cost and margin as money of `currency`.
    pub fn money(self, currency: &Currency) -> (Money, Money, Money) {
        let m = |cents| Money {
            cents,
            currency: currency.clone(),
        };
        (
            m(self.revenue_cents),
            m(self.cost_cents),
            m(self.margin_cents()),
        )
    }
}

/// One organization's month at Hetzner, on its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgCost {
    /// The server type it runs (its VPS's, else its tier's).
    pub server_type: String,
    /// Its region.
    pub region: Region,
    /// The server's monthly price, when Hetzner's prices are known.
    pub server_cents: Option<i64>,
    /// The primary IPv4's monthly price, when known.
    pub ipv4_cents: Option<i64>,
    /// The currency of Hetzner's prices, once read.
    pub cost_currency: Option<Currency>,
    /// Its tier's price.
    pub revenue: Money,
    /// Revenue against cost, when both are in the same currency and the prices are known.
    pub margin: Option<Margin>,
    /// Why there is no margin, when there is none.
    pub note: Option<String>,
    /// When Hetzner's prices were read.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub prices_fetched_at: Option<DateTime<Utc>>,
}

/// One line of a margin table: a tier or a region, over its `active` organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarginRow {
    /// The tier's name, or the region's code.
    pub label: String,
    /// How many organizations.
    pub organizations: u64,
    /// Their summed month.
    pub margin: Margin,
}

/// One of the least profitable organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgMarginRow {
    /// Organization id.
    pub id: i64,
    /// Its slug.
    pub slug: String,
    /// Its tier's name.
    pub tier: String,
    /// Its region.
    pub region: Region,
    /// The server type it runs.
    pub server_type: String,
    /// Its month.
    pub margin: Margin,
}

/// A tier's margin in each region, for `/tiers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierMargins {
    /// The tier.
    pub tier_id: i64,
    /// Its name.
    pub name: String,
    /// Its monthly price.
    pub price: Money,
    /// Its margin per region where Hetzner's price of its server type is known.
    pub regions: Vec<(Region, Margin)>,
    /// Why there are none (a tier billed in another currency than Hetzner's, no prices yet).
    pub note: Option<String>,
}

impl TierMargins {
    /// The regions where the margin is under `percent`.
    pub fn below(&self, percent: u32) -> Vec<(Region, Margin)> {
        self.regions
            .iter()
            .filter(|(_, m)| m.below(percent))
            .copied()
            .collect()
    }
}

/// `/billing`'s margins: by tier, by region, the ten least profitable organizations, and each
/// tier's margin per region.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MarginReport {
    /// The currency of every figure (Hetzner's).
    pub currency: Option<Currency>,
    /// When Hetzner's prices were read; `None` when they never were.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub prices_fetched_at: Option<DateTime<Utc>>,
    /// `NEST_MARGIN_WARN_PERCENT`.
    pub warn_percent: u32,
    /// Per tier, over its `active` organizations.
    pub by_tier: Vec<MarginRow>,
    /// Per region.
    pub by_region: Vec<MarginRow>,
    /// The ten `active` organizations that earn least (margin, then share).
    pub least_profitable: Vec<OrgMarginRow>,
    /// Every tier's margin per region.
    pub tiers: Vec<TierMargins>,
    /// `active` organizations left out: billed in another currency, or on a server type or
    /// region Hetzner's prices do not list.
    pub left_out: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(revenue_cents: i64, cost_cents: i64) -> Margin {
        Margin {
            revenue_cents,
            cost_cents,
        }
    }

    #[test]
    fn the_share_is_of_revenue_in_tenths_of_a_percent_rounded() {
        // €28.00 against €3.79 + €0.50.
        assert_eq!(m(2800, 429).margin_cents(), 2371);
        assert_eq!(m(2800, 429).permille(), Some(847));
        assert_eq!(m(2800, 429).percent_text(), "84.7 %");
        assert_eq!(m(1000, 1005).permille(), Some(-5), "a loss is negative");
        assert_eq!(m(1000, 1005).percent_text(), "-0.5 %");
        assert_eq!(m(300, 1).permille(), Some(997), "996.67 rounds up");
        assert_eq!(m(0, 429).permille(), None, "no revenue, no share");
        assert_eq!(m(0, 429).percent_text(), "-");
    }

    #[test]
    fn below_compares_the_share_with_a_whole_percent() {
        assert!(m(1000, 701).below(30), "29.9 % is below 30");
        assert!(!m(1000, 700).below(30), "30.0 % is not");
        assert!(!m(0, 5).below(30), "no revenue is not a warning");
    }

    #[test]
    fn margins_add_and_multiply_by_organizations() {
        assert_eq!(m(2800, 429).times(3).plus(m(100, 50)), m(8500, 1337));
    }
}
