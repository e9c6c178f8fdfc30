//! The read side of billing (`BillingService`, behind `app::backend::BillingBackend`): MRR,
//! revenue, open and overdue totals, the MRR chart (SVG rendered here), the invoice list with
//! filters and cursor, one invoice; and the admins' mark-paid / void, through the [`Ledger`].

use std::collections::BTreeMap;

use app::backend::{BillingBackend, RequestInfo};
use app::error::AppError;
use app::models::{
    AdminIdentity, BillingOverview, Currency, InvoiceDetail, InvoiceEvent, InvoicePage,
    InvoiceQuery, InvoiceStatus, InvoiceTotals, InvoiceView, Money, MrrPoint, invoice_actions,
    last_months, parse_month,
};
use chrono::NaiveDate;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::ledger::Ledger;
use super::ledger::run::mrr;
use crate::audit::Actor;
use crate::clock::Clock;
use crate::entities::{audit_log, billing_mrr_months, invoice_totals, invoices, organizations};
use crate::error::{Error, Result};

/// Organizations a search may name before it is searched on the invoices' join instead.
const ORG_SEARCH_LIMIT: u64 = 500;

/// The most invoices one page lists.
pub const PAGE: u64 = 50;

/// Billing's queries and admin actions.
#[derive(Clone)]
pub struct BillingService {
    /// Database pool.
    pub db: DatabaseConnection,
    /// Time source.
    pub clock: Clock,
    /// The ledger (admin actions).
    pub ledger: Ledger,
}

fn view(i: invoices::Model, org: Option<organizations::Model>) -> InvoiceView {
    let (organization, slug) = org
        .map(|o| (o.name, o.slug.to_string()))
        .unwrap_or_default();
    InvoiceView {
        id: i.id,
        number: i.number,
        organization_id: i.organization_id,
        organization,
        slug,
        period_start: i.period_start,
        period_end: i.period_end,
        amount: Money {
            cents: i.amount_cents,
            currency: i.currency,
        },
        status: i.status,
        due_date: i.due_date,
        paid_at: i.paid_at,
        stripe: i.stripe_invoice_id.is_some(),
        description: i.description,
    }
}

/// Adds `cents` of `currency` to `sums`.
fn add(sums: &mut Vec<Money>, currency: Currency, cents: i64) {
    match sums.iter_mut().find(|m| m.currency == currency) {
        Some(m) => m.cents += cents,
        None => sums.push(Money { cents, currency }),
    }
}

impl BillingService {
    /// The figures of `/billing`.
    pub async fn overview(&self) -> Result<BillingOverview> {
        let live = mrr(&self.db).await?;
        // (status, currency, count, sum) of the invoices that count: kept by the database's
        // triggers on `invoices`, so this is a read of a few rows at any ledger size.
        let counted = [
            InvoiceStatus::Paid,
            InvoiceStatus::Open,
            InvoiceStatus::Overdue,
        ];
        let totals: Vec<(InvoiceStatus, Currency, i64, i64)> = invoice_totals::Entity::find()
            .filter(invoice_totals::Column::Status.is_in(counted.map(|s| s.to_string())))
            .filter(invoice_totals::Column::Invoices.gt(0))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|t| {
                Some((
                    t.status.parse().ok()?,
                    t.currency.parse().ok()?,
                    t.invoices,
                    t.amount_cents,
                ))
            })
            .collect();
        let mut revenue = Vec::new();
        let mut open = InvoiceTotals::default();
        let mut overdue = InvoiceTotals::default();
        for (status, currency, n, sum) in totals {
            let target = match status {
                InvoiceStatus::Paid => {
                    add(&mut revenue, currency, sum);
                    continue;
                }
                InvoiceStatus::Open => &mut open,
                _ => &mut overdue,
            };
            target.count += u64::try_from(n).unwrap_or(0);
            add(&mut target.amounts, currency, sum);
        }

        let today = self.clock.now().date_naive();
        let months = last_months(today, 12);
        let first = months.first().copied().unwrap_or(today);
        let history = billing_mrr_months::Entity::find()
            .filter(billing_mrr_months::Column::Month.gte(first))
            .all(&self.db)
            .await?;
        let mut by_currency: BTreeMap<String, (Currency, BTreeMap<NaiveDate, i64>)> =
            BTreeMap::new();
        for row in history {
            by_currency
                .entry(row.currency.as_str().to_owned())
                .or_insert_with(|| (row.currency.clone(), BTreeMap::new()))
                .1
                .insert(row.month, row.mrr_cents);
        }
        let current = months.last().copied().unwrap_or(today);
        for (currency, cents, _) in &live {
            by_currency
                .entry(currency.as_str().to_owned())
                .or_insert_with(|| (currency.clone(), BTreeMap::new()))
                .1
                .insert(current, *cents);
        }
        let charts = by_currency
            .into_values()
            .map(|(currency, values)| {
                let points: Vec<MrrPoint> = months
                    .iter()
                    .map(|m| MrrPoint {
                        month: *m,
                        cents: values.get(m).copied(),
                    })
                    .collect();
                let svg = mrr_chart_svg(&currency, &points);
                (currency, points, svg)
            })
            .collect();

        Ok(BillingOverview {
            active_organizations: live
                .iter()
                .map(|(_, _, n)| u64::try_from(*n).unwrap_or(0))
                .sum(),
            mrr: live
                .into_iter()
                .map(|(currency, cents, _)| Money { cents, currency })
                .collect(),
            revenue,
            open,
            overdue,
            charts,
        })
    }

    /// A page of invoices, newest first. Searching matches the invoice number, the
    /// organization's name or slug.
    pub async fn page(&self, query: InvoiceQuery, limit: u64) -> Result<InvoicePage> {
        let limit = limit.clamp(1, 200);
        let mut select = invoices::Entity::find()
            .find_also_related(organizations::Entity)
            .order_by_desc(invoices::Column::Id);
        if let Some(status) = query.status {
            select = select.filter(invoices::Column::Status.eq(status));
        }
        if let Some(month) = query.month.as_deref().filter(|m| !m.trim().is_empty()) {
            let month = parse_month(month).ok_or_else(|| Error::Validation {
                field: "month",
                message: "a month is written like 2026-03".to_owned(),
            })?;
            select = select.filter(invoices::Column::PeriodStart.eq(month));
        }
        if let Some(org) = query.organization_id {
            select = select.filter(invoices::Column::OrganizationId.eq(org));
        }
        if let Some(search) = query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            // A search that cannot be part of an invoice number (`inv-202603-0001`) names
            // organizations: find them first (10,000 rows, not 120,000 joined ones), then take
            // their invoices by index. A broad one, or one that may be a number, searches the join.
            let may_be_number = search
                .chars()
                .all(|c| matches!(c.to_ascii_lowercase(), 'i' | 'n' | 'v' | '-' | '0'..='9'));
            let orgs: Vec<i64> = if may_be_number {
                Vec::new()
            } else {
                organizations::Entity::find()
                    .select_only()
                    .column(organizations::Column::Id)
                    .filter(crate::db::contains_any(
                        search,
                        [
                            Expr::col((organizations::Entity, organizations::Column::Name)),
                            Expr::col((organizations::Entity, organizations::Column::Slug)),
                        ],
                    ))
                    .limit(ORG_SEARCH_LIMIT + 1)
                    .into_tuple()
                    .all(&self.db)
                    .await?
            };
            if !may_be_number && orgs.len() as u64 <= ORG_SEARCH_LIMIT {
                select = select.filter(invoices::Column::OrganizationId.is_in(orgs));
            } else {
                select = select.filter(crate::db::contains_any(
                    search,
                    [
                        Expr::col((invoices::Entity, invoices::Column::Number)),
                        Expr::col((organizations::Entity, organizations::Column::Name)),
                        Expr::col((organizations::Entity, organizations::Column::Slug)),
                    ],
                ));
            }
        }
        if let Some(after) = query.after {
            select = select.filter(invoices::Column::Id.lt(after));
        }
        let mut rows = select.limit(limit + 1).all(&self.db).await?;
        let next = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last().map(|(i, _)| i.id)
        } else {
            None
        };
        Ok(InvoicePage {
            rows: rows.into_iter().map(|(i, o)| view(i, o)).collect(),
            next,
        })
    }

    /// One invoice with its organization's owner and its audit history.
    pub async fn detail(&self, id: i64) -> Result<InvoiceDetail> {
        let (invoice, org) = invoices::Entity::find_by_id(id)
            .find_also_related(organizations::Entity)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("invoice".to_owned()))?;
        let number = invoice.number.to_string();
        let history = audit_log::Entity::find()
            .filter(audit_log::Column::TargetType.eq("organization"))
            .filter(audit_log::Column::TargetId.eq(invoice.organization_id.to_string()))
            .filter(audit_log::Column::Action.starts_with("invoice."))
            .order_by_desc(audit_log::Column::Id)
            .limit(500)
            .all(&self.db)
            .await?
            .into_iter()
            .filter(|r| r.detail.get("number").and_then(|n| n.as_str()) == Some(number.as_str()))
            .map(crate::audit::entry)
            .collect();
        let owner_email = org
            .as_ref()
            .map(|o| o.owner_email.to_string())
            .unwrap_or_default();
        let stripe_invoice_id = invoice.stripe_invoice_id.clone();
        let created_at = invoice.created_at;
        let mut actions = invoice_actions(invoice.status);
        if stripe_invoice_id.is_some() {
            actions.retain(|a| *a != InvoiceEvent::Pay);
        }
        Ok(InvoiceDetail {
            invoice: view(invoice, org),
            owner_email,
            stripe_invoice_id,
            created_at,
            actions,
            history,
        })
    }
}

/// `/billing`'s MRR chart: one bar per month (the last 12), an empty slot where no run recorded
/// the month, the axis labelled with the maximum.
pub fn mrr_chart_svg(currency: &Currency, points: &[MrrPoint]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    const PAD: f64 = 28.0;
    let max = points
        .iter()
        .filter_map(|p| p.cents)
        .max()
        .unwrap_or(0)
        .max(100);
    let slot = (W - PAD * 2.0) / points.len().max(1) as f64;
    let money = |cents: i64| {
        Money {
            cents,
            currency: currency.clone(),
        }
        .to_string()
    };
    let mut bars = String::new();
    for (i, p) in points.iter().enumerate() {
        let x = PAD + slot * i as f64;
        let label = p.month.format("%b").to_string();
        bars.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{label}</text>"#,
            x + slot / 2.0,
            H - 6.0
        ));
        if let Some(cents) = p.cents {
            let h = cents as f64 / max as f64 * (H - PAD * 2.0);
            bars.push_str(&format!(
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" class="bar"><title>{} {}</title></rect>"#,
                x + slot * 0.15,
                H - PAD - h,
                slot * 0.7,
                h,
                p.month.format("%B %Y"),
                money(cents)
            ));
        }
    }
    let known = points.iter().filter(|p| p.cents.is_some()).count();
    let latest = points
        .iter()
        .rev()
        .find_map(|p| p.cents)
        .map_or_else(|| "unknown".to_owned(), money);
    format!(
        concat!(
            r#"<svg role="img" aria-label="MRR in {cur} over the last {n} months ({known} recorded): now {latest}, at most {top}" "#,
            r#"viewBox="0 0 {w} {h}" class="chart mrr-chart" data-testid="mrr-chart-{cur}">"#,
            r#"<line x1="{pad}" x2="{right}" y1="{base}" y2="{base}" class="axis"/>"#,
            r#"<text x="2" y="{pad}" class="tick">{top}</text>{bars}</svg>"#
        ),
        cur = currency.as_str(),
        n = points.len(),
        known = known,
        latest = latest,
        top = money(max),
        w = W,
        h = H,
        pad = PAD,
        right = W - PAD,
        base = H - PAD,
        bars = bars,
    )
}

#[async_trait::async_trait]
impl BillingBackend for BillingService {
    async fn overview(&self) -> std::result::Result<BillingOverview, AppError> {
        Ok(BillingService::overview(self).await?)
    }

    async fn invoices(
        &self,
        query: InvoiceQuery,
        limit: u64,
    ) -> std::result::Result<InvoicePage, AppError> {
        Ok(self.page(query, limit).await?)
    }

    async fn invoice(&self, id: i64) -> std::result::Result<InvoiceDetail, AppError> {
        Ok(self.detail(id).await?)
    }

    async fn settle(
        &self,
        actor: &AdminIdentity,
        req: &RequestInfo,
        id: i64,
        event: InvoiceEvent,
        seen: InvoiceStatus,
        reason: String,
    ) -> std::result::Result<(), AppError> {
        let actor = Actor::new(req, Some(actor.user_id), &actor.email);
        self.ledger.settle(&actor, id, event, seen, &reason).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mrr_chart_is_an_accessible_svg_with_a_bar_per_known_month() {
        let months = last_months(NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(), 12);
        let points: Vec<MrrPoint> = months
            .iter()
            .enumerate()
            .map(|(i, m)| MrrPoint {
                month: *m,
                cents: (i >= 9).then_some(2800 * i as i64),
            })
            .collect();
        let svg = mrr_chart_svg(&Currency::eur(), &points);
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"MRR in EUR over the last 12 months (3 recorded): now €308.00"));
        assert_eq!(svg.matches("<rect ").count(), 3);
        assert_eq!(
            svg.matches("class=\"tick\" text-anchor=\"middle\"").count(),
            12
        );
        assert!(svg.ends_with("</svg>"));
    }
}
