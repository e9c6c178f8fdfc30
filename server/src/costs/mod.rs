//! Cost against revenue: Hetzner's prices, read once a day by the `price_refresh` task
//! ([`PriceRefresh`]) and kept in `hetzner_prices`, and what each tenant costs (its server type
//! and primary IPv4 in its region, net of VAT) against what it pays (its tier's price).
//!
//! [`CostService`] answers `/billing` (margins by tier and by region over the `active`
//! organizations, the ten least profitable), `/tiers` (each tier's margin per region, with a
//! warning under `NEST_MARGIN_WARN_PERCENT`) and the organization page.
//!
//! `/billing`'s tables cost each organization at its tier's server type: they count the
//! `active` organizations per tier and region in one pass over an index
//! (`idx_organizations_margins`) rather than joining every server. Measured at 100,000
//! organizations (`margins_at_scale` in `server/tests/billing.rs`), a report took 160 ms
//! (PostgreSQL) and 270 ms (SQLite) at p50 joining the servers, and takes 40 ms and 14 ms so.
//! A server whose type differs from its tier's is a `type_drift` finding of reconciliation, and
//! the organization page costs the type it really runs. The arithmetic is in
//! `app::models::Margin`, shared with the browser.

use std::collections::{BTreeMap, HashMap};

use app::error::AppError;
use app::models::{
    Currency, JobPayload, JobStep, Margin, MarginReport, MarginRow, Money, OrgCost, OrgMarginRow,
    OrgStatus, Region, TierMargins,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::clock::Clock;
use crate::entities::{hetzner_prices, organizations, tiers};
use crate::error::{Error, Result};
use crate::hetzner::{HetznerClient, Pricing};
use crate::jobs::{Attempt, Handler, JobFailure, Outcome};

/// The resource name of the primary IPv4 in `hetzner_prices`.
pub const IPV4: &str = "primary_ipv4";

/// How many organizations `/billing` lists as least profitable.
const LEAST_PROFITABLE: usize = 10;

/// Hetzner's decimal amount (`"3.7900"`, up to four decimals) in cents, rounded half up; `None`
/// for anything else (a sign, an exponent, no digits).
pub fn cents(decimal: &str) -> Option<i64> {
    let (units, fraction) = decimal
        .trim()
        .split_once('.')
        .unwrap_or((decimal.trim(), ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(units) || !(fraction.is_empty() || digits(fraction)) || fraction.len() > 4 {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<4}").parse().ok()?;
    let units: i64 = units.parse().ok()?;
    let ten_thousandths = units.checked_mul(10_000)?.checked_add(fraction)?;
    Some((ten_thousandths + 50) / 100)
}

/// One price to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    /// A server type or [`IPV4`].
    pub resource: String,
    /// A location.
    pub location: String,
    /// A month, net, in cents.
    pub monthly_net_cents: i64,
}

/// The rows `/pricing` holds for Nest: every server type's and the primary IPv4's monthly net
/// price per location. An amount that is not a decimal fails the whole read (kept prices are
/// better than half of new ones).
pub fn rows(pricing: &Pricing) -> std::result::Result<Vec<PriceRow>, String> {
    let ipv4 = pricing
        .primary_ips
        .iter()
        .filter(|p| p.kind == "ipv4")
        .map(|p| (IPV4, &p.prices));
    let types = pricing
        .server_types
        .iter()
        .map(|t| (t.name.as_str(), &t.prices));
    let mut out = Vec::new();
    for (resource, prices) in types.chain(ipv4) {
        for price in prices {
            let net = &price.price_monthly.net;
            let monthly_net_cents = cents(net).ok_or_else(|| {
                format!(
                    "Hetzner's monthly price of {resource} in {} is not an amount: {net:?}",
                    price.location
                )
            })?;
            out.push(PriceRow {
                resource: resource.to_owned(),
                location: price.location.clone(),
                monthly_net_cents,
            });
        }
    }
    Ok(out)
}

/// Hetzner's prices as kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceBook {
    /// Their currency; `None` when none were ever read.
    pub currency: Option<Currency>,
    /// When they were read.
    pub fetched_at: Option<DateTime<Utc>>,
    /// `(resource, location)` to a month's net price in cents.
    pub monthly: HashMap<(String, String), i64>,
}

impl PriceBook {
    /// The kept prices.
    pub async fn load(db: &DatabaseConnection) -> Result<Self> {
        let rows = hetzner_prices::Entity::find().all(db).await?;
        let mut book = Self::default();
        for row in rows {
            book.currency = row.currency.parse().ok();
            book.fetched_at = book.fetched_at.max(Some(row.fetched_at));
            book.monthly
                .insert((row.resource, row.location), row.monthly_net_cents);
        }
        Ok(book)
    }

    /// A month of `server_type` with its primary IPv4 in `region`: `(server, ipv4)` cents.
    pub fn cost(&self, server_type: &str, region: Region) -> Option<(i64, i64)> {
        let at = |resource: &str| {
            self.monthly
                .get(&(resource.to_owned(), region.to_string()))
                .copied()
        };
        Some((at(server_type)?, at(IPV4)?))
    }

    /// The margin of a tier priced `price` in `currency` running `server_type` in `region`;
    /// `None` when the currencies differ or a price is missing.
    pub fn margin(
        &self,
        price: i64,
        currency: &Currency,
        server_type: &str,
        region: Region,
    ) -> Option<Margin> {
        if self.currency.as_ref() != Some(currency) {
            return None;
        }
        let (server, ipv4) = self.cost(server_type, region)?;
        Some(Margin {
            revenue_cents: price,
            cost_cents: server + ipv4,
        })
    }
}

/// `active` organizations sharing a tier, a region and a server type: they all earn the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Their tier.
    pub tier_id: i64,
    /// Their region.
    pub region: Region,
    /// The server type they run.
    pub server_type: String,
    /// How many.
    pub count: i64,
}

/// A tier as margins need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPrice {
    /// Its name.
    pub name: String,
    /// Its monthly price.
    pub price_cents: i64,
    /// Its currency.
    pub currency: Currency,
    /// Its server type.
    pub server_type: String,
}

/// The sums of [`CostService::report`], before the least profitable organizations are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Per tier name.
    pub by_tier: Vec<MarginRow>,
    /// Per region code.
    pub by_region: Vec<MarginRow>,
    /// The groups with their margin per organization, least profitable first.
    pub ranked: Vec<(Group, Margin)>,
    /// Organizations with no margin (another currency, an unlisted price).
    pub left_out: u64,
}

/// Sums `groups` by tier and by region, and ranks them by what one organization earns
/// (margin, then share, then tier and region for a stable order). Pure.
pub fn summarize(groups: &[Group], tiers: &HashMap<i64, TierPrice>, book: &PriceBook) -> Summary {
    let mut by_tier: BTreeMap<String, (u64, Margin)> = BTreeMap::new();
    let mut by_region: BTreeMap<String, (u64, Margin)> = BTreeMap::new();
    let mut summary = Summary::default();
    for group in groups {
        let count = u64::try_from(group.count).unwrap_or(0);
        let margin = tiers.get(&group.tier_id).and_then(|t| {
            book.margin(t.price_cents, &t.currency, &group.server_type, group.region)
                .map(|m| (t, m))
        });
        let Some((tier, each)) = margin else {
            summary.left_out += count;
            continue;
        };
        for (key, table) in [
            (tier.name.clone(), &mut by_tier),
            (group.region.to_string(), &mut by_region),
        ] {
            let entry = table.entry(key).or_default();
            entry.0 += count;
            entry.1 = entry.1.plus(each.times(group.count));
        }
        summary.ranked.push((group.clone(), each));
    }
    let rows = |table: BTreeMap<String, (u64, Margin)>| {
        table
            .into_iter()
            .map(|(label, (organizations, margin))| MarginRow {
                label,
                organizations,
                margin,
            })
            .collect()
    };
    summary.by_tier = rows(by_tier);
    summary.by_region = rows(by_region);
    summary.ranked.sort_by_key(|(g, m)| {
        (
            m.margin_cents(),
            m.permille().unwrap_or(i64::MIN),
            g.tier_id,
            g.region.to_string(),
        )
    });
    summary
}

/// Each tier's margin per region. Pure.
pub fn tier_margins(tiers: &[(i64, TierPrice)], book: &PriceBook) -> Vec<TierMargins> {
    tiers
        .iter()
        .map(|(id, tier)| {
            let regions: Vec<(Region, Margin)> = Region::ALL
                .iter()
                .filter_map(|r| {
                    book.margin(tier.price_cents, &tier.currency, &tier.server_type, *r)
                        .map(|m| (*r, m))
                })
                .collect();
            let note = match &book.currency {
                None => Some("Hetzner's prices have not been read yet".to_owned()),
                Some(c) if *c != tier.currency => Some(format!(
                    "billed in {}, while Hetzner bills in {c}: no margin is computed",
                    tier.currency
                )),
                Some(_) if regions.is_empty() => {
                    Some(format!("Hetzner's prices do not list {}", tier.server_type))
                }
                Some(_) => None,
            };
            TierMargins {
                tier_id: *id,
                name: tier.name.clone(),
                price: Money {
                    cents: tier.price_cents,
                    currency: tier.currency.clone(),
                },
                regions,
                note,
            }
        })
        .collect()
}

/// Serves the margins of `/billing`, `/tiers` and the organization page.
#[derive(Clone)]
pub struct CostService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// `NEST_MARGIN_WARN_PERCENT`.
    pub warn_percent: u32,
}

impl CostService {
    async fn tiers(&self) -> Result<Vec<(i64, TierPrice)>> {
        Ok(tiers::Entity::find()
            .order_by_asc(tiers::Column::SortOrder)
            .order_by_asc(tiers::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| {
                (
                    t.id,
                    TierPrice {
                        name: t.name,
                        price_cents: t.monthly_price_cents,
                        currency: t.currency,
                        server_type: t.server_type.to_string(),
                    },
                )
            })
            .collect())
    }

    /// The `active` organizations (served by `idx_organizations_margins`).
    fn active() -> sea_orm::Select<organizations::Entity> {
        organizations::Entity::find().filter(organizations::Column::Status.eq(OrgStatus::Active))
    }

    /// The `active` organizations counted per tier and region, each group with its tier's
    /// server type: one pass over an index, whatever the number of organizations.
    async fn groups(&self, tiers: &HashMap<i64, TierPrice>) -> Result<Vec<Group>> {
        let rows: Vec<(i64, Region, i64)> = Self::active()
            .select_only()
            .column(organizations::Column::TierId)
            .column(organizations::Column::Region)
            .column_as(organizations::Column::Id.count(), "count")
            .group_by(organizations::Column::TierId)
            .group_by(organizations::Column::Region)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(tier_id, region, count)| Group {
                tier_id,
                region,
                server_type: tiers
                    .get(&tier_id)
                    .map(|t| t.server_type.clone())
                    .unwrap_or_default(),
                count,
            })
            .collect())
    }

    /// `/billing`'s margins.
    pub async fn report(&self) -> Result<MarginReport> {
        let book = PriceBook::load(&self.db).await?;
        let tiers = self.tiers().await?;
        let by_id: HashMap<i64, TierPrice> = tiers.iter().cloned().collect();
        let summary = summarize(&self.groups(&by_id).await?, &by_id, &book);
        let mut least_profitable = Vec::new();
        for (group, margin) in &summary.ranked {
            let room = LEAST_PROFITABLE - least_profitable.len();
            if room == 0 {
                break;
            }
            let orgs: Vec<(i64, String)> = Self::active()
                .select_only()
                .column(organizations::Column::Id)
                .column(organizations::Column::Slug)
                .filter(organizations::Column::TierId.eq(group.tier_id))
                .filter(organizations::Column::Region.eq(group.region))
                .order_by_asc(organizations::Column::Id)
                .limit(room as u64)
                .into_tuple()
                .all(&self.db)
                .await?;
            let tier = by_id
                .get(&group.tier_id)
                .map(|t| t.name.clone())
                .unwrap_or_default();
            least_profitable.extend(orgs.into_iter().map(|(id, slug)| OrgMarginRow {
                id,
                slug,
                tier: tier.clone(),
                region: group.region,
                server_type: group.server_type.clone(),
                margin: *margin,
            }));
        }
        Ok(MarginReport {
            currency: book.currency.clone(),
            prices_fetched_at: book.fetched_at,
            warn_percent: self.warn_percent,
            by_tier: summary.by_tier,
            by_region: summary.by_region,
            least_profitable,
            tiers: tier_margins(&tiers, &book),
            left_out: summary.left_out,
        })
    }

    /// Organization `id`'s month: its server (its VPS's type, else its tier's) and IPv4 in its
    /// region against its tier's price.
    pub async fn organization(&self, id: i64) -> Result<OrgCost> {
        let org = organizations::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("organization".to_owned()))?;
        let tier = tiers::Entity::find_by_id(org.tier_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("tier".to_owned()))?;
        let vps = crate::organizations::current_vps(&self.db, id).await?;
        let server_type = vps.map_or_else(
            || tier.server_type.to_string(),
            |v| v.server_type.to_string(),
        );
        let book = PriceBook::load(&self.db).await?;
        let cost = book.cost(&server_type, org.region);
        let margin = book.margin(
            tier.monthly_price_cents,
            &tier.currency,
            &server_type,
            org.region,
        );
        let note = match (&book.currency, cost) {
            (None, _) => Some("Hetzner's prices have not been read yet".to_owned()),
            (Some(_), None) => Some(format!(
                "Hetzner's prices do not list {server_type} in {}",
                org.region
            )),
            (Some(c), Some(_)) if *c != tier.currency => Some(format!(
                "the tier is billed in {}, while Hetzner bills in {c}",
                tier.currency
            )),
            _ => None,
        };
        Ok(OrgCost {
            server_type,
            region: org.region,
            server_cents: cost.map(|c| c.0),
            ipv4_cents: cost.map(|c| c.1),
            cost_currency: book.currency.clone(),
            revenue: Money {
                cents: tier.monthly_price_cents,
                currency: tier.currency,
            },
            margin,
            note,
            prices_fetched_at: book.fetched_at,
        })
    }
}

#[async_trait::async_trait]
impl app::backend::CostsBackend for CostService {
    async fn report(&self) -> std::result::Result<MarginReport, AppError> {
        Ok(CostService::report(self).await?)
    }

    async fn organization(&self, id: i64) -> std::result::Result<OrgCost, AppError> {
        Ok(CostService::organization(self, id).await?)
    }
}

/// The `price_refresh` task: reads `GET /pricing` and replaces the kept prices in one
/// transaction (a failed read keeps yesterday's).
#[derive(Clone)]
pub struct PriceRefresh {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// Hetzner.
    pub hetzner: HetznerClient,
}

impl PriceRefresh {
    /// Reads and keeps Hetzner's prices; returns how many were kept.
    pub async fn run_once(&self) -> std::result::Result<usize, JobFailure> {
        let step = JobStep::FetchPrices;
        let pricing = self
            .hetzner
            .pricing()
            .await
            .map_err(|e| JobFailure::hetzner(step, &e))?;
        let rows = rows(&pricing).map_err(|e| JobFailure::fatal(Some(step), e))?;
        if rows.is_empty() {
            return Err(JobFailure::fatal(
                Some(step),
                "Hetzner's /pricing listed no server type: the kept prices stay",
            ));
        }
        let db = |e: sea_orm::DbErr| JobFailure::database(Some(step), &Error::from(e));
        let now = self.clock.now();
        let kept = rows.len();
        let txn = self.db.begin().await.map_err(db)?;
        hetzner_prices::Entity::delete_many()
            .exec(&txn)
            .await
            .map_err(db)?;
        hetzner_prices::Entity::insert_many(rows.into_iter().map(|r| {
            hetzner_prices::ActiveModel {
                resource: Set(r.resource),
                location: Set(r.location),
                monthly_net_cents: Set(r.monthly_net_cents),
                currency: Set(pricing.currency.clone()),
                fetched_at: Set(now),
                ..Default::default()
            }
        }))
        .exec(&txn)
        .await
        .map_err(db)?;
        txn.commit().await.map_err(db)?;
        Ok(kept)
    }
}

#[async_trait::async_trait]
impl Handler for PriceRefresh {
    async fn run(&self, attempt: &Attempt) -> std::result::Result<Outcome, JobFailure> {
        if !matches!(attempt.payload(), JobPayload::PriceRefresh) {
            return Err(JobFailure::fatal(
                None,
                "the price refresh runs only price_refresh",
            ));
        }
        let kept = attempt.step(JobStep::FetchPrices, self.run_once()).await?;
        tracing::info!(prices.kept = kept, "read Hetzner's prices");
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hetzner_s_decimals_become_cents_rounded_half_up() {
        assert_eq!(cents("3.7900"), Some(379));
        assert_eq!(cents("0.5000"), Some(50));
        assert_eq!(cents("4.5450"), Some(455));
        assert_eq!(cents("4.5449"), Some(454));
        assert_eq!(cents("12"), Some(1200));
        assert_eq!(cents("0.0008"), Some(0));
        for bad in ["", "-1.00", "1e3", "1.23456", ".5", "abc", "1.2.3"] {
            assert_eq!(cents(bad), None, "{bad:?}");
        }
    }

    fn book() -> PriceBook {
        let mut monthly = HashMap::new();
        for (resource, location, cents) in [
            ("cx22", "fsn1", 379),
            ("cx22", "sin", 606),
            ("cx32", "fsn1", 680),
            (IPV4, "fsn1", 50),
            (IPV4, "sin", 80),
        ] {
            monthly.insert((resource.to_owned(), location.to_owned()), cents);
        }
        PriceBook {
            currency: Some(Currency::eur()),
            fetched_at: None,
            monthly,
        }
    }

    fn tier(name: &str, price_cents: i64, currency: &str, server_type: &str) -> TierPrice {
        TierPrice {
            name: name.to_owned(),
            price_cents,
            currency: currency.parse().unwrap(),
            server_type: server_type.to_owned(),
        }
    }

    fn group(tier_id: i64, region: Region, server_type: &str, count: i64) -> Group {
        Group {
            tier_id,
            region,
            server_type: server_type.to_owned(),
            count,
        }
    }

    #[test]
    fn a_cost_is_the_server_and_its_ipv4_in_the_region_and_needs_both() {
        let book = book();
        assert_eq!(book.cost("cx22", Region::Fsn1), Some((379, 50)));
        assert_eq!(book.cost("cx32", Region::Sin), None, "no cx32 price in sin");
        assert_eq!(
            book.cost("cx22", Region::Nbg1),
            None,
            "no IPv4 price in nbg1"
        );
        let eur = Currency::eur();
        assert_eq!(
            book.margin(2800, &eur, "cx22", Region::Fsn1),
            Some(Margin {
                revenue_cents: 2800,
                cost_cents: 429
            })
        );
        let usd: Currency = "USD".parse().unwrap();
        assert_eq!(book.margin(2800, &usd, "cx22", Region::Fsn1), None);
    }

    #[test]
    fn groups_sum_by_tier_and_region_and_rank_the_least_profitable_first() {
        let tiers = HashMap::from([
            (1, tier("Starter", 2800, "EUR", "cx22")),
            (2, tier("Budget", 500, "EUR", "cx22")),
            (3, tier("Dollar", 3000, "USD", "cx22")),
        ]);
        let groups = [
            group(1, Region::Fsn1, "cx22", 3),
            group(1, Region::Sin, "cx22", 1),
            group(2, Region::Sin, "cx22", 2),
            // Resized by hand to a type with no price there: left out, not guessed.
            group(1, Region::Sin, "cx32", 1),
            group(3, Region::Fsn1, "cx22", 4),
        ];
        let s = summarize(&groups, &tiers, &book());
        assert_eq!(s.left_out, 5);
        let labels = |rows: &[MarginRow]| {
            rows.iter()
                .map(|r| (r.label.clone(), r.organizations, r.margin))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(&s.by_tier),
            vec![
                (
                    "Budget".to_owned(),
                    2,
                    Margin {
                        revenue_cents: 1000,
                        cost_cents: 1372
                    }
                ),
                (
                    "Starter".to_owned(),
                    4,
                    Margin {
                        revenue_cents: 11_200,
                        cost_cents: 3 * 429 + 686
                    }
                ),
            ]
        );
        assert_eq!(
            labels(&s.by_region),
            vec![
                (
                    "fsn1".to_owned(),
                    3,
                    Margin {
                        revenue_cents: 8400,
                        cost_cents: 1287
                    }
                ),
                (
                    "sin".to_owned(),
                    3,
                    Margin {
                        revenue_cents: 3800,
                        cost_cents: 3 * 686
                    }
                ),
            ]
        );
        let ranked: Vec<(i64, Region)> = s
            .ranked
            .iter()
            .map(|(g, _)| (g.tier_id, g.region))
            .collect();
        assert_eq!(
            ranked,
            vec![(2, Region::Sin), (1, Region::Sin), (1, Region::Fsn1)],
            "a loss first, then the smaller margin"
        );
    }

    #[test]
    fn a_tier_s_margins_cover_the_regions_with_prices_or_say_why_not() {
        let tiers = [
            (1, tier("Starter", 2800, "EUR", "cx22")),
            (2, tier("Dollar", 3000, "USD", "cx22")),
            (3, tier("Big", 9000, "EUR", "cx52")),
        ];
        let margins = tier_margins(&tiers, &book());
        assert_eq!(
            margins[0]
                .regions
                .iter()
                .map(|(r, _)| *r)
                .collect::<Vec<_>>(),
            vec![Region::Fsn1, Region::Sin]
        );
        assert_eq!(margins[0].note, None);
        assert!(
            margins[0].below(80).iter().any(|(r, _)| *r == Region::Sin),
            "75.5 % in sin"
        );
        assert!(margins[0].below(30).is_empty());
        assert!(margins[1].note.as_deref().unwrap().contains("USD"));
        assert!(margins[2].note.as_deref().unwrap().contains("cx52"));
        let none = tier_margins(&tiers, &PriceBook::default());
        assert!(none[0].note.as_deref().unwrap().contains("not been read"));
    }
}
