//! Stripe's invoice events (`invoice.paid`, `invoice.payment_failed`), applied in batches: a
//! burst of deliveries costs a few statements per batch instead of a dozen per delivery.
//!
//! - Every delivery waits in the [`Inbox`]; one applier per process takes whatever has
//!   arrived (up to [`MAX_BATCH`]) while the previous batch was being written ("group commit":
//!   no timer, a lone delivery is applied at once).
//! - A batch reads what it needs in four statements (events seen, organizations, signups,
//!   `create` jobs), plans each event as one delivery would, then writes in one transaction:
//!   the event ids first (`ON CONFLICT DO NOTHING`: an id another delivery recorded meanwhile
//!   drops its event's plan), the signups' payments (one conditional update per transition),
//!   the organizations' transitions (`OrganizationService::write_many`) and the
//!   `record_invoice` jobs.
//! - Copies of one event in a batch are applied once; the copies answer as the first does.
//!   One customer's events go in separate rounds, in arrival order.
//! - If a batch fails (an organization changed since it was read), each of its events is
//!   applied again alone, so one event never fails the others; Stripe retries what fails.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use app::models::{
    JobKind, JobPayload, JobState, OrgEvent, OrgStatus, PaymentOutcome, SignupPayment,
};
use sea_orm::sea_query::Expr;
use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, SqlxPostgresConnector, TransactionTrait, TryInsertResult,
};
use tokio::sync::{mpsc, oneshot};

use super::delivery::StripeInvoice;
use super::{Receipt, WebhookService, invoice_facts, stripe_actor};
use crate::billing::ledger::StripeInvoiceFacts;
use crate::entities::{jobs, organizations, signups, stripe_events};
use crate::error::{Error, Result};
use crate::jobs::NewJob;
use crate::organizations::Prepared;

/// At most this many events are written in one transaction. Measured on PostgreSQL
/// (`cargo bench -p server --bench webhooks`): 16 and 32 give the same burst latency; at 64 the
/// `record_invoice` insert of a 55-event batch took 45 ms against 1.5 ms for 27 while the
/// server logged no slow statement (probably a message past one loopback segment waiting for a
/// delayed ACK: sqlx does not set `TCP_NODELAY`), and the burst's p99 doubled.
pub const MAX_BATCH: usize = 32;

/// Deliveries that may wait for the applier.
const QUEUE: usize = 1024;

/// One verified invoice event.
pub struct InvoiceEvent {
    /// Stripe's event id.
    pub id: String,
    /// `invoice.paid` or `invoice.payment_failed`.
    pub event_type: String,
    /// The invoice as the event carries it.
    pub invoice: StripeInvoice,
    /// Paid or failed.
    pub outcome: PaymentOutcome,
}

struct Delivery {
    event: InvoiceEvent,
    reply: oneshot::Sender<Result<Receipt>>,
}

/// The queue in front of the applier, started at the first delivery.
#[derive(Clone, Default)]
pub struct Inbox {
    sender: Arc<OnceLock<mpsc::Sender<Delivery>>>,
}

impl Inbox {
    /// Starts the applier now rather than at the first delivery (`App::start`), so the first
    /// burst does not wait for its thread and connections.
    pub fn start(&self, service: &WebhookService) {
        self.sender(service);
    }

    /// Queues `event` and waits until its batch is written.
    pub async fn submit(&self, service: &WebhookService, event: InvoiceEvent) -> Result<Receipt> {
        let sender = self.sender(service);
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Unavailable("the webhook's applier stopped".to_owned());
        sender
            .send(Delivery { event, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn sender(&self, service: &WebhookService) -> &mpsc::Sender<Delivery> {
        self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            // The applier's copy of the service has an inbox of its own (never used), so the
            // channel closes, and the applier ends, when the last copy of this one is dropped.
            let applier = WebhookService {
                inbox: Inbox::default(),
                ..service.clone()
            };
            applier.start(receiver);
            sender
        })
    }
}

/// An event of the batch with the deliveries waiting for it.
struct Pending {
    event: InvoiceEvent,
    replies: Vec<oneshot::Sender<Result<Receipt>>>,
}

impl Pending {
    fn customer(&self) -> Option<String> {
        self.event.invoice.customer.clone()
    }

    /// The first delivery gets `result`; its copies are replays of it (or failed with it).
    fn answer(self, result: Result<Receipt>) {
        let copies = match &result {
            Ok(_) => Ok(Receipt::Replay),
            Err(e) => Err(e.to_string()),
        };
        let mut replies = self.replies.into_iter();
        if let Some(first) = replies.next() {
            let _ = first.send(result);
        }
        for reply in replies {
            let _ = reply.send(match &copies {
                Ok(receipt) => Ok(*receipt),
                Err(why) => Err(Error::Unavailable(format!(
                    "another delivery of this event failed: {why}"
                ))),
            });
        }
    }
}

/// What one event asks for, planned from what the batch read.
#[derive(Default)]
struct Plan {
    /// The signup's first payment moves to this state (conditional on the one read).
    signup: Option<(signups::Model, SignupPayment)>,
    /// The organization's transition.
    org: Option<Prepared>,
    /// The invoice to record in the ledger.
    invoice: Option<StripeInvoiceFacts>,
    /// Nothing in Nest is concerned.
    ignored: bool,
}

impl Plan {
    fn ignored() -> Self {
        Self {
            ignored: true,
            ..Self::default()
        }
    }

    fn receipt(&self) -> Receipt {
        if self.ignored {
            Receipt::Ignored
        } else {
            Receipt::Applied
        }
    }
}

/// What a batch read: the state every plan starts from.
struct Snapshot {
    seen: HashSet<String>,
    orgs: Vec<organizations::Model>,
    signups: Vec<signups::Model>,
    approved: HashSet<i64>,
}

/// Connections of the applier's own pool (PostgreSQL): a batch's reads, then its transaction.
const APPLIER_CONNECTIONS: u32 = 1;

impl WebhookService {
    /// Runs the applier on a thread of its own, with its own single-threaded runtime and (on
    /// PostgreSQL) its own small pool: in a burst, the deliveries themselves keep the server's
    /// workers busy, and a round trip of the batch's would wait behind them — once on a worker
    /// to poll the socket, once in a queue to run. Falls back to a task on the current runtime
    /// if the thread cannot start.
    fn start(self, receiver: mpsc::Receiver<Delivery>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::warn!(error.detail = %e, "stripe invoice applier: no runtime of its own; sharing the server's");
                tokio::spawn(self.run(receiver));
                return;
            }
        };
        let thread = std::thread::Builder::new()
            .name("stripe-invoices".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let db = own_pool(&self.db).await;
                    WebhookService { db, ..self }.run(receiver).await;
                });
            });
        if let Err(e) = thread {
            tracing::error!(error.detail = %e, "stripe invoice applier: could not start its thread; invoice events will fail until restart");
        }
    }

    async fn run(self, mut receiver: mpsc::Receiver<Delivery>) {
        let mut arrived = Vec::with_capacity(MAX_BATCH);
        while receiver.recv_many(&mut arrived, MAX_BATCH).await > 0 {
            self.apply_batch(std::mem::take(&mut arrived)).await;
        }
    }

    async fn apply_batch(&self, deliveries: Vec<Delivery>) {
        let mut pending: Vec<Pending> = Vec::with_capacity(deliveries.len());
        for Delivery { event, reply } in deliveries {
            match pending.iter_mut().find(|p| p.event.id == event.id) {
                Some(p) => p.replies.push(reply),
                None => pending.push(Pending {
                    event,
                    replies: vec![reply],
                }),
            }
        }
        while !pending.is_empty() {
            // One event per customer in a round; the rest wait for the next round.
            let mut customers = HashSet::new();
            let (round, rest): (Vec<Pending>, Vec<Pending>) = pending
                .into_iter()
                .partition(|p| p.customer().is_none_or(|c| customers.insert(c)));
            self.apply_round(round).await;
            pending = rest;
        }
    }

    async fn apply_round(&self, round: Vec<Pending>) {
        let events: Vec<&InvoiceEvent> = round.iter().map(|p| &p.event).collect();
        match self.apply_together(&events).await {
            Ok(receipts) => {
                for (p, receipt) in round.into_iter().zip(receipts) {
                    p.answer(Ok(receipt));
                }
            }
            Err(e) if round.len() > 1 => {
                tracing::info!(events = round.len(), error = %e, "stripe events: the batch failed, applying them one by one");
                for p in round {
                    let result = self
                        .apply_together(&[&p.event])
                        .await
                        .and_then(|r| r.into_iter().next().ok_or_else(nothing_written));
                    p.answer(result);
                }
            }
            Err(e) => {
                if let Some(p) = round.into_iter().next() {
                    p.answer(Err(e));
                }
            }
        }
    }

    /// Applies `events` (distinct ids and customers) in one transaction; one receipt each.
    async fn apply_together(&self, events: &[&InvoiceEvent]) -> Result<Vec<Receipt>> {
        let snapshot = self.read(events).await?;
        let now = self.clock.now();
        let mut plans: Vec<Option<Plan>> = events
            .iter()
            .map(|e| (!snapshot.seen.contains(&e.id)).then(|| snapshot.plan(e, now)))
            .collect();
        if plans.iter().all(Option::is_none) {
            return Ok(vec![Receipt::Replay; events.len()]);
        }

        let txn = self.db.begin().await?;
        // The first write: an event another delivery recorded since the read blocks here until
        // that one commits, then is not inserted, and its plan is dropped.
        let rows = events
            .iter()
            .zip(&plans)
            .filter(|(_, p)| p.is_some())
            .map(|(e, _)| stripe_events::ActiveModel {
                id: Set(e.id.clone()),
                event_type: Set(e.event_type.chars().take(128).collect()),
                received_at: Set(now),
                processed_at: Set(Some(now)),
            });
        let fresh: HashSet<String> = match stripe_events::Entity::insert_many(rows)
            .on_conflict_do_nothing()
            .exec_with_returning_keys(&txn)
            .await?
        {
            TryInsertResult::Inserted(ids) => ids.into_iter().collect(),
            TryInsertResult::Empty | TryInsertResult::Conflicted => HashSet::new(),
        };
        for (event, plan) in events.iter().zip(plans.iter_mut()) {
            if !fresh.contains(&event.id) {
                *plan = None;
            }
        }
        for update in SignupUpdate::groups(&plans) {
            update.exec(&txn, now).await?;
        }
        let transitions: Vec<Prepared> = plans
            .iter_mut()
            .flatten()
            .filter_map(|p| p.org.take())
            .collect();
        let written = self
            .organizations
            .write_many(&txn, &stripe_actor(), transitions)
            .await?;
        // The ledger numbers its invoices one at a time: that is the `record_invoice` jobs'
        // work, so a delivery never waits on another's numbering.
        let recordings: Vec<NewJob> = plans
            .iter_mut()
            .flatten()
            .filter_map(|p| p.invoice.take())
            .map(|invoice| NewJob::now(JobPayload::RecordInvoice { invoice }, now))
            .collect();
        let recorded = !recordings.is_empty();
        crate::jobs::enqueue_many(&txn, recordings, now).await?;
        txn.commit().await?;

        if recorded {
            self.organizations.events.wake_jobs();
        }
        for w in &written {
            self.organizations.after_commit(w).await;
        }
        for (signup, _) in plans.iter().flatten().filter_map(|p| p.signup.as_ref()) {
            if !written.iter().any(|w| w.org_id == signup.organization_id) {
                self.organizations
                    .events
                    .publish(crate::events::Change::Organization(signup.organization_id));
            }
        }
        Ok(events
            .iter()
            .zip(&plans)
            .map(|(event, plan)| {
                let receipt = plan.as_ref().map_or(Receipt::Replay, Plan::receipt);
                tracing::info!(stripe.event = %event.id, stripe.event_type = %event.event_type, ?receipt, "stripe event applied");
                receipt
            })
            .collect())
    }

    /// What the plans of `events` start from, in four reads (one when all were seen).
    async fn read(&self, events: &[&InvoiceEvent]) -> Result<Snapshot> {
        let ids = events.iter().map(|e| e.id.clone());
        let seen: HashSet<String> = stripe_events::Entity::find()
            .select_only()
            .column(stripe_events::Column::Id)
            .filter(stripe_events::Column::Id.is_in(ids))
            .into_tuple::<String>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        let customers: Vec<String> = events
            .iter()
            .filter(|e| !seen.contains(&e.id))
            .filter_map(|e| e.invoice.customer.clone())
            .collect();
        if customers.is_empty() {
            return Ok(Snapshot {
                seen,
                orgs: Vec::new(),
                signups: Vec::new(),
                approved: HashSet::new(),
            });
        }
        let orgs = organizations::Entity::find()
            .filter(organizations::Column::StripeCustomerId.is_in(customers))
            .all(&self.db)
            .await?;
        let org_ids: Vec<i64> = orgs.iter().map(|o| o.id).collect();
        let signups = signups::Entity::find()
            .filter(signups::Column::OrganizationId.is_in(org_ids.clone()))
            .all(&self.db)
            .await?;
        // `has_create_job` for every organization at once.
        let approved = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::OrganizationId)
            .filter(jobs::Column::OrganizationId.is_in(org_ids))
            .filter(jobs::Column::Kind.eq(JobKind::Create))
            .filter(jobs::Column::State.ne(JobState::Failed))
            .into_tuple::<Option<i64>>()
            .all(&self.db)
            .await?
            .into_iter()
            .flatten()
            .collect();
        Ok(Snapshot {
            seen,
            orgs,
            signups,
            approved,
        })
    }
}

impl Snapshot {
    /// The work `event` asks for, from what was read (nothing is written).
    fn plan(&self, event: &InvoiceEvent, now: chrono::DateTime<chrono::Utc>) -> Plan {
        let invoice = &event.invoice;
        let outcome = event.outcome;
        let Some(customer) = invoice.customer.as_deref() else {
            return Plan::ignored();
        };
        let Some(org) = self
            .orgs
            .iter()
            .find(|o| o.stripe_customer_id.as_deref() == Some(customer))
        else {
            return Plan::ignored();
        };
        let facts = invoice_facts(org.id, invoice, outcome, now);
        let invoice_id = invoice.id.as_deref();
        let first_payment = self.signups.iter().find(|s| {
            s.organization_id == org.id
                && s.payment_state != SignupPayment::Paid
                && (s.stripe_invoice_id.is_some() && s.stripe_invoice_id.as_deref() == invoice_id
                    || invoice.is_subscription_create())
        });
        let Some(signup) = first_payment else {
            // A later invoice: the ledger's (and dunning's) business.
            return Plan {
                invoice: facts,
                ..Plan::default()
            };
        };
        // The first invoice is a customer's only once paid: a declined signup owes nothing.
        let invoice = facts.filter(|_| outcome == PaymentOutcome::Paid);
        let Some(next) = signup.payment_state.after(outcome) else {
            return Plan {
                invoice,
                ..Plan::default()
            };
        };
        let org_event = match outcome {
            PaymentOutcome::Paid => OrgEvent::FirstInvoicePaid,
            PaymentOutcome::Failed => OrgEvent::PaymentFailed,
        };
        let org_change = if outcome == PaymentOutcome::Failed && org.status != OrgStatus::Pending {
            None
        } else {
            match Prepared::payment(org.clone(), org_event, self.approved.contains(&org.id)) {
                Ok(prepared) => Some(prepared),
                Err(why) => {
                    tracing::info!(org.id = org.id, event = ?org_event, %why, "stripe event: nothing to change");
                    None
                }
            }
        };
        Plan {
            signup: Some((signup.clone(), next)),
            org: org_change,
            invoice,
            ignored: false,
        }
    }
}

/// The payment update of the signups making the same move: one statement, conditional on the
/// state that was read.
struct SignupUpdate {
    from: SignupPayment,
    to: SignupPayment,
    /// Sets "Your card was declined." (a failure where no error was recorded yet).
    declined: bool,
    ids: Vec<i64>,
}

impl SignupUpdate {
    fn groups(plans: &[Option<Plan>]) -> Vec<Self> {
        let mut groups: Vec<Self> = Vec::new();
        for (signup, to) in plans.iter().flatten().filter_map(|p| p.signup.as_ref()) {
            let (from, to) = (signup.payment_state, *to);
            let declined = to != SignupPayment::Paid && signup.payment_error.is_none();
            match groups
                .iter_mut()
                .find(|g| g.from == from && g.to == to && g.declined == declined)
            {
                Some(group) => group.ids.push(signup.id),
                None => groups.push(Self {
                    from,
                    to,
                    declined,
                    ids: vec![signup.id],
                }),
            }
        }
        groups
    }

    async fn exec(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let mut update = signups::Entity::update_many()
            .col_expr(signups::Column::PaymentState, Expr::value(self.to))
            .col_expr(signups::Column::UpdatedAt, Expr::value(now))
            .filter(signups::Column::Id.is_in(self.ids.iter().copied()))
            .filter(signups::Column::PaymentState.eq(self.from));
        if self.to == SignupPayment::Paid {
            update = update
                .col_expr(signups::Column::PaidAt, Expr::value(now))
                .col_expr(
                    signups::Column::PaymentError,
                    Expr::value(Option::<String>::None),
                );
        } else if self.declined {
            update = update.col_expr(
                signups::Column::PaymentError,
                Expr::value("Your card was declined.".to_owned()),
            );
        }
        if update.exec(txn).await?.rows_affected != self.ids.len() as u64 {
            return Err(Error::Conflict("the signup changed meanwhile".to_owned()));
        }
        Ok(())
    }
}

fn nothing_written() -> Error {
    Error::Conflict("the event was not applied".to_owned())
}

/// A pool of [`APPLIER_CONNECTIONS`] to the database `shared` is connected to, its sockets
/// driven by the applier's runtime (PostgreSQL); SQLite's connections are threads of their own
/// already, and `:memory:` must stay one database, so SQLite keeps `shared`.
async fn own_pool(shared: &DatabaseConnection) -> DatabaseConnection {
    if shared.get_database_backend() != DbBackend::Postgres {
        return shared.clone();
    }
    let options = shared.get_postgres_connection_pool().connect_options();
    match PgPoolOptions::new()
        .max_connections(APPLIER_CONNECTIONS)
        // One connection, kept open (a burst after a quiet hour does not wait for one) and not
        // pinged at each checkout (a round trip per statement); if it breaks, its batch fails
        // (Stripe delivers again) and the pool opens another.
        .min_connections(APPLIER_CONNECTIONS)
        .test_before_acquire(false)
        // As the server's pool: an unreachable database fails the batch (Stripe retries)
        // rather than holding the deliveries past their request timeout.
        .acquire_timeout(crate::db::ACQUIRE_TIMEOUT)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with((*options).clone())
        .await
    {
        Ok(pool) => SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
        Err(e) => {
            tracing::warn!(error.detail = %e, "stripe invoice applier: no pool of its own; sharing the server's");
            shared.clone()
        }
    }
}
