//! Invoices as both sides see them: the status rules as one transition table (state × event →
//! next state), the calendar rules (billing month, payment terms, when an invoice is overdue and
//! when dunning suspends its organization), and the rows and figures of `/billing`.
//!
//! Shared with the browser so `/billing` offers exactly the actions an invoice's state allows.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{AuditEntry, Currency, InvoiceNumber, InvoiceStatus, Money, OrgStatus};

/// Something that happens to an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceEvent {
    /// The invoice is issued (a draft becomes payable).
    Issue,
    /// Its due date passed unpaid (the daily run).
    PastDue,
    /// It was paid (Stripe's `invoice.paid`, or an admin marking a manual invoice paid).
    Pay,
    /// Stripe could not collect it (it stays payable).
    PaymentFailed,
    /// It is cancelled (an admin, with a reason).
    Void,
}

impl InvoiceEvent {
    /// Every event, for exhaustive checks.
    pub const ALL: &'static [Self] = &[
        Self::Issue,
        Self::PastDue,
        Self::Pay,
        Self::PaymentFailed,
        Self::Void,
    ];

    /// The audit action name of this event.
    pub const fn action(self) -> &'static str {
        match self {
            Self::Issue => "invoice.issued",
            Self::PastDue => "invoice.overdue",
            Self::Pay => "invoice.paid",
            Self::PaymentFailed => "invoice.payment_failed",
            Self::Void => "invoice.voided",
        }
    }

    /// Whether an admin triggers this event from `/billing` (the others come from the daily
    /// run and Stripe).
    pub const fn is_admin_action(self) -> bool {
        matches!(self, Self::Pay | Self::Void)
    }

    /// The button's label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Issue => "Issue",
            Self::PastDue => "Mark overdue",
            Self::Pay => "Mark paid",
            Self::PaymentFailed => "Record a failed payment",
            Self::Void => "Void",
        }
    }

    /// The name used in URLs and forms.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::PastDue => "past_due",
            Self::Pay => "pay",
            Self::PaymentFailed => "payment_failed",
            Self::Void => "void",
        }
    }
}

impl std::str::FromStr for InvoiceEvent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an invoice action"))
    }
}

/// How Stripe's invoice ended up, as the webhook saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StripeOutcome {
    /// `invoice.paid`.
    Paid {
        /// When Stripe collected it.
        at: DateTime<Utc>,
    },
    /// `invoice.payment_failed`: it stays payable.
    PaymentFailed,
    /// `invoice.finalized` / `invoice.created`: issued, not paid yet.
    Open,
}

impl StripeOutcome {
    /// The invoice event this outcome applies.
    pub const fn event(self) -> InvoiceEvent {
        match self {
            Self::Paid { .. } => InvoiceEvent::Pay,
            Self::PaymentFailed => InvoiceEvent::PaymentFailed,
            Self::Open => InvoiceEvent::Issue,
        }
    }
}

/// What a Stripe invoice event says, as the webhook parsed it (the payload of the `record_invoice` job that
/// records it in the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeInvoiceFacts {
    /// The organization (from the Stripe customer or subscription).
    pub organization_id: i64,
    /// Stripe's invoice id (`in_…`).
    pub stripe_invoice_id: String,
    /// Start of the billed period; its calendar month is the invoice's month.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub period_start: DateTime<Utc>,
    /// End of the billed period (Stripe's; the invoice row keeps the calendar month).
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub period_end: DateTime<Utc>,
    /// Stripe's amount, in minor units.
    pub amount_cents: i64,
    /// Stripe's currency.
    pub currency: Currency,
    /// What happened.
    pub outcome: StripeOutcome,
}

/// The transition table of invoices (`draft → open → paid / overdue / void`). `None`: the event
/// changes nothing in that state (an admin gets a conflict; Stripe's late or repeated events
/// are ignored, which makes them idempotent and order-independent: `paid` and `void` are final).
pub fn invoice_transition(from: InvoiceStatus, event: InvoiceEvent) -> Option<InvoiceStatus> {
    use InvoiceEvent as E;
    use InvoiceStatus as S;
    match (from, event) {
        (S::Draft, E::Issue | E::PaymentFailed) => Some(S::Open),
        (S::Open, E::PastDue) => Some(S::Overdue),
        (S::Draft | S::Open | S::Overdue, E::Pay) => Some(S::Paid),
        (S::Draft | S::Open | S::Overdue, E::Void) => Some(S::Void),
        _ => None,
    }
}

/// The admin actions allowed on an invoice in `status`.
pub fn invoice_actions(status: InvoiceStatus) -> Vec<InvoiceEvent> {
    InvoiceEvent::ALL
        .iter()
        .copied()
        .filter(|e| e.is_admin_action() && invoice_transition(status, *e).is_some())
        .collect()
}

/// Days from the start of the period to the due date (spec: "14 days from period start").
pub const PAYMENT_TERMS_DAYS: u64 = 14;

/// The reason written on an organization the daily run suspends for an unpaid invoice; paying
/// resumes only an organization suspended with exactly this reason.
pub const DUNNING_REASON: &str = "payment overdue";

/// The organization states that are billed: an invoice for the month is created for an
/// organization seen in one of these by a daily run during the month (so one that was billable
/// on any day a run happened is billed for that month, even if cancelled later). Pending,
/// provisioning, deploying, error, cancelled, deleting and deleted organizations are not billed.
pub const BILLED_STATES: &[OrgStatus] = &[
    OrgStatus::Active,
    OrgStatus::Suspended,
    OrgStatus::Cancelling,
];

/// The first day of the month containing `day` (an invoice's period start).
pub fn billing_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The last day of the month starting at `month` (an invoice's period end).
pub fn period_end(month: NaiveDate) -> NaiveDate {
    billing_month(month)
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(month)
}

/// The due date of an invoice whose period starts on `period_start`: 14 days later. It is the
/// last day to pay; the invoice is overdue from the next day.
pub fn due_date(period_start: NaiveDate) -> NaiveDate {
    period_start
        .checked_add_days(Days::new(PAYMENT_TERMS_DAYS))
        .unwrap_or(period_start)
}

/// The due date of the month starting `period_start` for an organization billed from
/// `billed_from` (the day it was created): the terms run from whichever is later, so an
/// organization that joins on the 26th is not overdue on its first day.
pub fn due_date_for(period_start: NaiveDate, billed_from: NaiveDate) -> NaiveDate {
    due_date(period_start.max(billed_from))
}

/// Whether an unpaid invoice due on `due` is overdue on `today` (from the day after `due`: for
/// a period starting on the 1st, the 16th — the 15th day after the start).
pub fn is_past_due(due: NaiveDate, today: NaiveDate) -> bool {
    today > due
}

/// The day dunning suspends the organization of an invoice due on `due` that is still unpaid:
/// after it has been overdue for `suspend_days` whole days.
pub fn suspends_on(due: NaiveDate, suspend_days: u32) -> NaiveDate {
    due.checked_add_days(Days::new(1 + u64::from(suspend_days)))
        .unwrap_or(due)
}

/// Whether an invoice due on `due`, unpaid on `today`, suspends its organization.
pub fn dunning_suspends(due: NaiveDate, today: NaiveDate, suspend_days: u32) -> bool {
    today >= suspends_on(due, suspend_days)
}

/// The first days of the `n` months ending with the one containing `today`, oldest first.
pub fn last_months(today: NaiveDate, n: u32) -> Vec<NaiveDate> {
    let current = billing_month(today);
    (0..n)
        .rev()
        .filter_map(|back| current.checked_sub_months(Months::new(back)))
        .collect()
}

/// Parses a month as written in `/billing`'s filter (`2026-03`) into its first day.
pub fn parse_month(text: &str) -> Option<NaiveDate> {
    let (year, month) = text.trim().split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

/// An invoice as listed on `/billing` and the organization page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceView {
    /// Id.
    pub id: i64,
    /// `INV-YYYYMM-XXXX`.
    pub number: InvoiceNumber,
    /// The organization billed.
    pub organization_id: i64,
    /// Its name.
    pub organization: String,
    /// Its slug.
    pub slug: String,
    /// First day of the period.
    #[serde(deserialize_with = "super::rfc3339::date")]
    pub period_start: NaiveDate,
    /// Last day of the period.
    #[serde(deserialize_with = "super::rfc3339::date")]
    pub period_end: NaiveDate,
    /// The amount (the invoice's own, copied when it was created or from Stripe).
    pub amount: Money,
    /// Where it is.
    pub status: InvoiceStatus,
    /// Last day to pay.
    #[serde(deserialize_with = "super::rfc3339::date")]
    pub due_date: NaiveDate,
    /// When it was paid.
    #[serde(default, deserialize_with = "super::rfc3339::option_utc")]
    pub paid_at: Option<DateTime<Utc>>,
    /// Whether Stripe bills it (else it is a manual invoice an admin settles).
    pub stripe: bool,
    /// What is billed (the tier at the time).
    pub description: Option<String>,
}

/// Filters of `/billing`'s invoice table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceQuery {
    /// Only this status.
    #[serde(default)]
    pub status: Option<InvoiceStatus>,
    /// Only this billing month (`2026-03`).
    #[serde(default)]
    pub month: Option<String>,
    /// Organization name, slug or invoice number containing this.
    #[serde(default)]
    pub search: Option<String>,
    /// Only this organization.
    #[serde(default)]
    pub organization_id: Option<i64>,
    /// Cursor: only invoices with a smaller id (the page after it).
    #[serde(default)]
    pub after: Option<i64>,
}

/// One page of invoices, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePage {
    /// The invoices.
    pub rows: Vec<InvoiceView>,
    /// Cursor of the next (older) page.
    pub next: Option<i64>,
}

/// A count of invoices and their amounts, one per currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceTotals {
    /// How many.
    pub count: u64,
    /// Their sum per currency.
    pub amounts: Vec<Money>,
}

/// One month of the MRR chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MrrPoint {
    /// The month's first day.
    #[serde(deserialize_with = "super::rfc3339::date")]
    pub month: NaiveDate,
    /// MRR recorded for the month (its last daily run; the current month is live), if known.
    pub cents: Option<i64>,
}

/// The figures at the top of `/billing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingOverview {
    /// Monthly tier prices of the `active` organizations, per currency.
    pub mrr: Vec<Money>,
    /// How many organizations are `active`.
    pub active_organizations: u64,
    /// Sum of paid invoices, per currency.
    pub revenue: Vec<Money>,
    /// Open invoices.
    pub open: InvoiceTotals,
    /// Overdue invoices.
    pub overdue: InvoiceTotals,
    /// MRR over the last 12 months, per currency: the points and the chart (SVG rendered on
    /// the server).
    pub charts: Vec<(Currency, Vec<MrrPoint>, String)>,
}

/// Everything about one invoice (`/billing/invoices/:id`, printable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceDetail {
    /// The invoice.
    pub invoice: InvoiceView,
    /// The organization's owner (the invoice's addressee).
    pub owner_email: String,
    /// Stripe's id of the invoice, when Stripe bills it.
    pub stripe_invoice_id: Option<String>,
    /// When it was created.
    #[serde(deserialize_with = "super::rfc3339::utc")]
    pub created_at: DateTime<Utc>,
    /// The admin actions its state allows.
    pub actions: Vec<InvoiceEvent>,
    /// Its audit history, newest first.
    pub history: Vec<AuditEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_transition_table_is_exactly_the_spec() {
        use InvoiceEvent as E;
        use InvoiceStatus as S;
        let expected = [
            (S::Draft, E::Issue, Some(S::Open)),
            (S::Draft, E::PastDue, None),
            (S::Draft, E::Pay, Some(S::Paid)),
            (S::Draft, E::PaymentFailed, Some(S::Open)),
            (S::Draft, E::Void, Some(S::Void)),
            (S::Open, E::Issue, None),
            (S::Open, E::PastDue, Some(S::Overdue)),
            (S::Open, E::Pay, Some(S::Paid)),
            (S::Open, E::PaymentFailed, None),
            (S::Open, E::Void, Some(S::Void)),
            (S::Overdue, E::Issue, None),
            (S::Overdue, E::PastDue, None),
            (S::Overdue, E::Pay, Some(S::Paid)),
            (S::Overdue, E::PaymentFailed, None),
            (S::Overdue, E::Void, Some(S::Void)),
            (S::Paid, E::Issue, None),
            (S::Paid, E::PastDue, None),
            (S::Paid, E::Pay, None),
            (S::Paid, E::PaymentFailed, None),
            (S::Paid, E::Void, None),
            (S::Void, E::Issue, None),
            (S::Void, E::PastDue, None),
            (S::Void, E::Pay, None),
            (S::Void, E::PaymentFailed, None),
            (S::Void, E::Void, None),
        ];
        assert_eq!(
            expected.len(),
            InvoiceStatus::ALL.len() * InvoiceEvent::ALL.len()
        );
        for (from, event, to) in expected {
            assert_eq!(invoice_transition(from, event), to, "{from} × {event:?}");
        }
    }

    #[test]
    fn paid_and_void_are_final() {
        for status in [InvoiceStatus::Paid, InvoiceStatus::Void] {
            for event in InvoiceEvent::ALL {
                assert_eq!(invoice_transition(status, *event), None);
            }
            assert!(invoice_actions(status).is_empty());
        }
    }

    #[test]
    fn a_failed_payment_after_a_payment_changes_nothing_in_any_order() {
        // Stripe's events may arrive in any order and more than once: applying a sequence
        // (ignoring the pairs the table refuses) ends paid whenever a payment is in it.
        use InvoiceEvent as E;
        let sequences = [
            vec![E::Pay, E::PaymentFailed],
            vec![E::PaymentFailed, E::Pay],
            vec![E::Pay, E::Pay, E::PaymentFailed, E::Issue],
            vec![E::Issue, E::PaymentFailed, E::Pay, E::PaymentFailed],
        ];
        for start in [
            InvoiceStatus::Draft,
            InvoiceStatus::Open,
            InvoiceStatus::Overdue,
        ] {
            for seq in &sequences {
                let end = seq
                    .iter()
                    .fold(start, |s, e| invoice_transition(s, *e).unwrap_or(s));
                assert_eq!(end, InvoiceStatus::Paid, "{start} then {seq:?}");
            }
        }
    }

    #[test]
    fn every_state_but_the_final_ones_can_be_paid_or_voided_by_an_admin() {
        for status in InvoiceStatus::ALL {
            let actions = invoice_actions(*status);
            let expected = if matches!(status, InvoiceStatus::Paid | InvoiceStatus::Void) {
                vec![]
            } else {
                vec![InvoiceEvent::Pay, InvoiceEvent::Void]
            };
            assert_eq!(actions, expected, "{status}");
        }
    }

    #[test]
    fn every_event_name_parses_back_to_its_event() {
        for event in InvoiceEvent::ALL {
            assert_eq!(event.as_str().parse::<InvoiceEvent>(), Ok(*event));
            assert!(event.action().starts_with("invoice."));
        }
        assert!("refund".parse::<InvoiceEvent>().is_err());
    }

    #[test]
    fn the_period_is_the_calendar_month() {
        assert_eq!(billing_month(day(2026, 3, 17)), day(2026, 3, 1));
        assert_eq!(period_end(day(2026, 3, 1)), day(2026, 3, 31));
        assert_eq!(period_end(day(2028, 2, 1)), day(2028, 2, 29));
        assert_eq!(period_end(day(2026, 12, 1)), day(2026, 12, 31));
    }

    #[test]
    fn an_invoice_is_due_14_days_after_its_period_starts_and_overdue_the_day_after() {
        let due = due_date(day(2026, 3, 1));
        assert_eq!(due, day(2026, 3, 15));
        assert!(!is_past_due(due, day(2026, 3, 14)));
        assert!(!is_past_due(due, day(2026, 3, 15)));
        assert!(is_past_due(due, day(2026, 3, 16)));
    }

    #[test]
    fn dunning_suspends_after_the_configured_whole_days_overdue() {
        let due = day(2026, 3, 15);
        assert_eq!(suspends_on(due, 7), day(2026, 3, 23));
        assert!(!dunning_suspends(due, day(2026, 3, 22), 7));
        assert!(dunning_suspends(due, day(2026, 3, 23), 7));
        assert!(dunning_suspends(due, day(2026, 4, 2), 7));
        assert_eq!(suspends_on(due, 0), day(2026, 3, 16));
    }

    #[test]
    fn the_last_twelve_months_end_with_the_current_one() {
        let months = last_months(day(2027, 2, 10), 12);
        assert_eq!(months.len(), 12);
        assert_eq!(months[0], day(2026, 3, 1));
        assert_eq!(months[11], day(2027, 2, 1));
    }

    #[test]
    fn a_month_filter_is_year_dash_month() {
        assert_eq!(parse_month("2026-03"), Some(day(2026, 3, 1)));
        for bad in ["2026-3", "2026-13", "202603", "", "march", "2026-03-01"] {
            assert_eq!(parse_month(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_active_suspended_and_cancelling_organizations_are_billed() {
        for status in OrgStatus::ALL {
            assert_eq!(
                BILLED_STATES.contains(status),
                matches!(
                    status,
                    OrgStatus::Active | OrgStatus::Suspended | OrgStatus::Cancelling
                ),
                "{status}"
            );
        }
    }

    #[test]
    fn an_organization_that_joins_mid_month_gets_its_full_terms_from_that_day() {
        let month = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let joined = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(
            due_date_for(month, joined),
            NaiveDate::from_ymd_opt(2026, 12, 10).unwrap()
        );
        let earlier = NaiveDate::from_ymd_opt(2026, 10, 3).unwrap();
        assert_eq!(due_date_for(month, earlier), due_date(month));
    }
}
