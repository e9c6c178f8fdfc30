//! The simulated Stripe API (`/v1`): Stripe's paths, form-encoded parameters in bracket
//! notation read into typed structs (unknown ones refused as Stripe does), API keys, request
//! ids, idempotency keys, `expand[]`, list objects and Stripe's error object for every
//! rejection, unknown paths and methods included.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use super::idempotency;
use super::model::{
    ItemChange, NewCustomer, NewSubscription, Origin, PaymentBehavior, PreviewRequest, PriceSpec,
    ProductRef, ProrationBehavior, SimError, SubscriptionUpdate,
};
use super::render::{self, Expand, Kind};
use super::{Shared, new_request_id};

type Shd = State<Arc<Shared>>;

/// The largest body the simulator reads.
const BODY_LIMIT: usize = 1024 * 1024;

/// A rejection in Stripe's error shape: `{"error": {"type", "code", "message", "param", …}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

fn doc_url(code: &str) -> String {
    format!(
        "https://stripe.com/docs/error-codes/{}",
        code.replace('_', "-")
    )
}

impl ApiError {
    /// An `invalid_request_error` with this status, code and message.
    pub fn invalid(
        status: StatusCode,
        code: Option<&str>,
        message: &str,
        param: Option<&str>,
    ) -> Self {
        let mut error = json!({"type": "invalid_request_error", "message": message});
        if let Some(map) = error.as_object_mut() {
            if let Some(code) = code {
                map.insert("code".into(), code.into());
                map.insert("doc_url".into(), doc_url(code).into());
            }
            if let Some(param) = param {
                map.insert("param".into(), param.into());
            }
        }
        Self {
            status,
            body: json!({ "error": error }),
        }
    }

    /// 401: no usable API key.
    pub fn unauthorized(message: &str) -> Self {
        Self::invalid(StatusCode::UNAUTHORIZED, None, message, None)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        let message = e.to_string();
        match e {
            SimError::NoSuch { param, .. } => {
                let status = if param == "id" || param == "intent" {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::BAD_REQUEST
                };
                Self::invalid(status, Some("resource_missing"), &message, Some(&param))
            }
            SimError::Missing(param) => Self::invalid(
                StatusCode::BAD_REQUEST,
                Some("parameter_missing"),
                &message,
                Some(&param),
            ),
            SimError::Invalid { param, code, .. } => {
                Self::invalid(StatusCode::BAD_REQUEST, code, &message, Some(&param))
            }
            SimError::State { code, .. } => {
                Self::invalid(StatusCode::BAD_REQUEST, code, &message, None)
            }
            SimError::Declined {
                decline_code,
                charge,
                payment_intent,
                ..
            } => {
                let mut error = json!({
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": decline_code,
                    "doc_url": doc_url("card_declined"),
                    "message": message,
                    "charge": charge,
                });
                if let (Some(map), false) = (error.as_object_mut(), payment_intent.is_null()) {
                    map.insert("payment_intent".into(), *payment_intent);
                }
                Self {
                    status: StatusCode::PAYMENT_REQUIRED,
                    body: json!({ "error": error }),
                }
            }
        }
    }
}

/// Any path the simulator does not serve.
pub async fn unknown_path(
    method: Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> ApiError {
    ApiError::invalid(
        StatusCode::NOT_FOUND,
        None,
        &format!(
            "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            uri.path()
        ),
        None,
    )
}

/// Which key called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// `sk_…` (or any other non-empty key).
    Secret,
    /// `pk_…`: only a payment intent's own client secret opens it.
    Publishable,
}

/// The key check and the request id, for every API call.
async fn gate(mut request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_owned());
    let kind = match key.as_deref() {
        None => {
            return ApiError::unauthorized(
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
            )
            .into_response();
        }
        Some("") => {
            return ApiError::unauthorized("Invalid API Key provided: (empty)").into_response();
        }
        Some(k) if k.starts_with("pk_") => KeyKind::Publishable,
        Some(_) => KeyKind::Secret,
    };
    let request_id = new_request_id();
    let idempotency_key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    request.extensions_mut().insert(kind);
    request.extensions_mut().insert(Origin {
        request_id: Some(request_id.clone()),
        idempotency_key,
    });
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(stripe_shared::version::VERSION.as_str()) {
        response.headers_mut().insert("stripe-version", value);
    }
    response
}

fn secret_only(kind: KeyKind) -> Result<(), ApiError> {
    match kind {
        KeyKind::Secret => Ok(()),
        KeyKind::Publishable => Err(ApiError::invalid(
            StatusCode::FORBIDDEN,
            None,
            "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
            None,
        )),
    }
}

/// The `/v1` router, behind the key check and idempotency.
pub(super) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/customers", post(create_customer).get(list_customers))
        .route("/customers/{id}", get(get_customer))
        .route("/prices", post(create_price))
        .route("/prices/{id}", get(get_price))
        .route(
            "/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route(
            "/subscriptions/{id}",
            get(get_subscription)
                .post(update_subscription)
                .delete(cancel_subscription),
        )
        .route("/invoices", get(list_invoices))
        .route("/invoices/create_preview", post(create_preview))
        .route("/invoices/{id}", get(get_invoice))
        .route("/payment_intents/{id}", get(get_payment_intent))
        .route(
            "/payment_intents/{id}/confirm",
            post(confirm_payment_intent),
        )
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .method_not_allowed_fallback(unknown_path)
        .layer(middleware::from_fn_with_state(shared, idempotency::layer))
        .layer(middleware::from_fn(gate))
}

/// Form-encoded parameters (the query of a GET, the body otherwise), read into `T`; every
/// rejection is Stripe's (`parameter_unknown`, `parameter_invalid_integer`, …).
pub(super) struct Params<T> {
    value: T,
    kind: KeyKind,
    origin: Origin,
}

fn bracket_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        let name = match segment {
            serde_path_to_error::Segment::Seq { index } => index.to_string(),
            serde_path_to_error::Segment::Map { key } => key.clone(),
            serde_path_to_error::Segment::Enum { variant } => variant.clone(),
            serde_path_to_error::Segment::Unknown => continue,
        };
        if out.is_empty() {
            out = name;
        } else {
            out.push_str(&format!("[{name}]"));
        }
    }
    out
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}[{child}]")
    }
}

fn param_error(path: &serde_path_to_error::Path, message: &str) -> ApiError {
    let at = bracket_path(path);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        // The path may already end at the unknown field (serde_path_to_error records it).
        let param = if at == field || at.ends_with(&format!("[{field}]")) {
            at
        } else {
            join(&at, field)
        };
        return ApiError::invalid(
            StatusCode::BAD_REQUEST,
            Some("parameter_unknown"),
            &format!("Received unknown parameter: {param}"),
            Some(&param),
        );
    }
    let given = message
        .split('"')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_default();
    let (code, text) = if message.contains("expected u") || message.contains("expected i") {
        (
            Some("parameter_invalid_integer"),
            format!("Invalid integer: {given}"),
        )
    } else if message.contains("expected a boolean") {
        (None, format!("Invalid boolean: {given}"))
    } else if message.contains("expected a sequence") {
        (None, format!("Invalid array: {at}"))
    } else {
        (None, format!("Invalid value for {at}: {message}"))
    };
    ApiError::invalid(StatusCode::BAD_REQUEST, code, &text, Some(&at))
}

/// Parses Stripe's form encoding (`a[b][0][c]=v`, `a[]=v`, brackets percent-encoded or not).
pub(super) fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let config = serde_qs::Config::new().use_form_encoding(true).max_depth(6);
    let deserializer = serde_qs::Deserializer::with_config(config, bytes).map_err(|e| {
        ApiError::invalid(
            StatusCode::BAD_REQUEST,
            None,
            &format!("Invalid request: {e}"),
            None,
        )
    })?;
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| param_error(e.path(), &e.inner().to_string()))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let kind = req
            .extensions()
            .get::<KeyKind>()
            .copied()
            .unwrap_or(KeyKind::Secret);
        let origin = req
            .extensions()
            .get::<Origin>()
            .cloned()
            .unwrap_or_default();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let is_get = req.method() == Method::GET;
        let body: Body = req.into_body();
        let bytes = to_bytes(body, BODY_LIMIT).await.map_err(|_| {
            ApiError::invalid(
                StatusCode::BAD_REQUEST,
                None,
                "The request body could not be read.",
                None,
            )
        })?;
        let source: Bytes = if is_get || bytes.iter().all(u8::is_ascii_whitespace) {
            Bytes::from(query)
        } else {
            bytes
        };
        Ok(Self {
            value: parse_form(&source)?,
            kind,
            origin,
        })
    }
}

fn now(shared: &Shared) -> i64 {
    shared.clock.now().timestamp()
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

// ----- customers -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerParams {
    email: Option<String>,
    name: Option<String>,
    description: Option<String>,
    phone: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    expand: Vec<String>,
    /// Accepted, not simulated.
    #[serde(rename = "address")]
    _address: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "preferred_locales")]
    _preferred_locales: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "payment_method")]
    _payment_method: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "invoice_settings")]
    _invoice_settings: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpandParams {
    #[serde(default)]
    expand: Vec<String>,
    client_secret: Option<String>,
}

async fn create_customer(
    State(shared): Shd,
    Params {
        value: p,
        kind,
        origin,
    }: Params<CustomerParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    Expand::parse(Kind::Customer, p.expand, false)?;
    let mut inner = shared.lock();
    let id = inner.create_customer(
        now(&shared),
        &origin,
        NewCustomer {
            email: p.email,
            name: p.name,
            description: p.description,
            phone: p.phone,
            metadata: p.metadata,
        },
    );
    let customer = inner.customer(&id, "id")?;
    Ok(ok(render::customer(customer)))
}

async fn get_customer(
    State(shared): Shd,
    Path(id): Path<String>,
    Params { value: p, kind, .. }: Params<ExpandParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    Expand::parse(Kind::Customer, p.expand, false)?;
    let inner = shared.lock();
    Ok(ok(render::customer(inner.customer(&id, "id")?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<i64>,
    starting_after: Option<String>,
    ending_before: Option<String>,
    customer: Option<String>,
    subscription: Option<String>,
    status: Option<String>,
    email: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    expand: Vec<String>,
    /// Accepted, not simulated.
    #[serde(rename = "created")]
    _created: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "price")]
    _price: Option<IgnoredAny>,
}

/// One page of `items` (newest first): `limit` (1–100, default 10) after `starting_after` or
/// before `ending_before`.
fn page(items: Vec<(String, Value)>, p: &ListParams, url: &str) -> Result<Response, ApiError> {
    let limit = p.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            StatusCode::BAD_REQUEST,
            Some("parameter_invalid_integer"),
            "Invalid limit: must be between 1 and 100",
            Some("limit"),
        ));
    }
    let limit = usize::try_from(limit).unwrap_or(10);
    let position = |cursor: &str, param: &str| {
        items
            .iter()
            .position(|(id, _)| id == cursor)
            .ok_or_else(|| {
                ApiError::invalid(
                    StatusCode::BAD_REQUEST,
                    Some("resource_missing"),
                    &format!("No such object: '{cursor}'"),
                    Some(param),
                )
            })
    };
    let (data, has_more): (Vec<Value>, bool) = match (&p.starting_after, &p.ending_before) {
        (Some(after), _) => {
            let from = position(after, "starting_after")? + 1;
            let rest = &items[from.min(items.len())..];
            (
                rest.iter().take(limit).map(|(_, v)| v.clone()).collect(),
                rest.len() > limit,
            )
        }
        (None, Some(before)) => {
            let to = position(before, "ending_before")?;
            let head = &items[..to];
            let start = head.len().saturating_sub(limit);
            (
                head[start..].iter().map(|(_, v)| v.clone()).collect(),
                start > 0,
            )
        }
        (None, None) => (
            items.iter().take(limit).map(|(_, v)| v.clone()).collect(),
            items.len() > limit,
        ),
    };
    Ok(ok(render::list(data, has_more, url)))
}

async fn list_customers(
    State(shared): Shd,
    Params { value: p, kind, .. }: Params<ListParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    Expand::parse(Kind::Customer, p.expand.clone(), true)?;
    let inner = shared.lock();
    let mut customers: Vec<_> = inner
        .customers
        .values()
        .filter(|c| p.email.as_ref().is_none_or(|e| c.email.as_ref() == Some(e)))
        .collect();
    customers.sort_by_key(|c| std::cmp::Reverse(c.seq));
    let items = customers
        .into_iter()
        .map(|c| (c.id.clone(), render::customer(c)))
        .collect();
    page(items, &p, "/v1/customers")
}

// ----- prices -----

#[derive(Deserialize)]
struct RecurringParams {
    interval: Option<String>,
    interval_count: Option<u32>,
}

#[derive(Deserialize)]
struct ProductData {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceParams {
    unit_amount: Option<i64>,
    currency: Option<String>,
    recurring: Option<RecurringParams>,
    product: Option<String>,
    product_data: Option<ProductData>,
    nickname: Option<String>,
    lookup_key: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    expand: Vec<String>,
    /// Accepted, not simulated.
    #[serde(rename = "active")]
    _active: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "tax_behavior")]
    _tax_behavior: Option<IgnoredAny>,
}

async fn create_price(
    State(shared): Shd,
    Params { value: p, kind, .. }: Params<PriceParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Price, p.expand, false)?;
    let currency = p.currency.ok_or(SimError::Missing("currency".to_owned()))?;
    let unit_amount = p
        .unit_amount
        .ok_or(SimError::Missing("unit_amount".to_owned()))?;
    let recurring = p
        .recurring
        .ok_or(SimError::Missing("recurring".to_owned()))?;
    let interval = recurring
        .interval
        .ok_or(SimError::Missing("recurring[interval]".to_owned()))?;
    if !["day", "week", "month", "year"].contains(&interval.as_str()) {
        return Err(SimError::Invalid {
            param: "recurring[interval]".to_owned(),
            code: None,
            message: "Invalid recurring[interval]: must be one of day, month, week, or year"
                .to_owned(),
        }
        .into());
    }
    let product = match (p.product, p.product_data.and_then(|d| d.name)) {
        (Some(id), _) => ProductRef::Existing(id),
        (None, Some(name)) => ProductRef::New(name),
        (None, None) => return Err(SimError::Missing("product".to_owned()).into()),
    };
    let mut inner = shared.lock();
    let id = inner.add_price(
        now(&shared),
        PriceSpec {
            id: None,
            unit_amount,
            currency,
            interval,
            interval_count: recurring.interval_count.unwrap_or(1),
            product,
            nickname: p.nickname,
            lookup_key: p.lookup_key,
            metadata: p.metadata,
        },
    )?;
    let price = inner.price(&id, "id")?;
    Ok(ok(render::price(&inner, price, &expand)))
}

async fn get_price(
    State(shared): Shd,
    Path(id): Path<String>,
    Params { value: p, kind, .. }: Params<ExpandParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Price, p.expand, false)?;
    let inner = shared.lock();
    let price = inner.price(&id, "id")?;
    Ok(ok(render::price(&inner, price, &expand)))
}

// ----- subscriptions -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemParams {
    id: Option<String>,
    price: Option<String>,
    quantity: Option<u64>,
    deleted: Option<bool>,
    /// Accepted, not simulated.
    #[serde(rename = "metadata")]
    _metadata: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "tax_rates")]
    _tax_rates: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "discounts")]
    _discounts: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "billing_thresholds")]
    _billing_thresholds: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "clear_usage")]
    _clear_usage: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct PaymentSettingsParams {
    save_default_payment_method: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubscriptionParams {
    customer: Option<String>,
    #[serde(default)]
    items: Vec<ItemParams>,
    payment_behavior: Option<String>,
    payment_settings: Option<PaymentSettingsParams>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    expand: Vec<String>,
    collection_method: Option<String>,
    /// Accepted, not simulated.
    #[serde(rename = "description")]
    _description: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "default_payment_method")]
    _default_payment_method: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "off_session")]
    _off_session: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "proration_behavior")]
    _proration_behavior: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "automatic_tax")]
    _automatic_tax: Option<IgnoredAny>,
}

fn payment_behavior(value: Option<&str>) -> Result<PaymentBehavior, SimError> {
    match value {
        None | Some("allow_incomplete") => Ok(PaymentBehavior::AllowIncomplete),
        Some("default_incomplete") => Ok(PaymentBehavior::DefaultIncomplete),
        Some("error_if_incomplete") => Ok(PaymentBehavior::ErrorIfIncomplete),
        Some("pending_if_incomplete") => Ok(PaymentBehavior::AllowIncomplete),
        Some(other) => Err(SimError::Invalid {
            param: "payment_behavior".to_owned(),
            code: None,
            message: format!(
                "Invalid payment_behavior: must be one of allow_incomplete, default_incomplete, error_if_incomplete, or pending_if_incomplete (got {other})"
            ),
        }),
    }
}

fn proration_behavior(value: Option<&str>, param: &str) -> Result<ProrationBehavior, SimError> {
    match value {
        None | Some("create_prorations") => Ok(ProrationBehavior::CreateProrations),
        Some("always_invoice") => Ok(ProrationBehavior::AlwaysInvoice),
        Some("none") => Ok(ProrationBehavior::None),
        Some(_) => Err(SimError::Invalid {
            param: param.to_owned(),
            code: None,
            message: format!(
                "Invalid {param}: must be one of create_prorations, always_invoice, or none"
            ),
        }),
    }
}

async fn create_subscription(
    State(shared): Shd,
    Params {
        value: p,
        kind,
        origin,
    }: Params<CreateSubscriptionParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Subscription, p.expand, false)?;
    let customer = p.customer.ok_or(SimError::Missing("customer".to_owned()))?;
    if p.items.is_empty() {
        return Err(SimError::Missing("items".to_owned()).into());
    }
    if let Some(method) = p.collection_method.as_deref()
        && method != "charge_automatically"
    {
        return Err(SimError::Invalid {
            param: "collection_method".to_owned(),
            code: None,
            message: "The simulator only charges automatically.".to_owned(),
        }
        .into());
    }
    let mut items = Vec::with_capacity(p.items.len());
    for (i, item) in p.items.into_iter().enumerate() {
        let price = item
            .price
            .ok_or_else(|| SimError::Missing(format!("items[{i}][price]")))?;
        items.push((price, item.quantity.unwrap_or(1)));
    }
    let save = p
        .payment_settings
        .and_then(|s| s.save_default_payment_method)
        .is_some_and(|s| s == "on_subscription");
    let behavior = payment_behavior(p.payment_behavior.as_deref())?;
    let mut inner = shared.lock();
    let id = inner.create_subscription(
        now(&shared),
        &origin,
        NewSubscription {
            customer,
            items,
            metadata: p.metadata,
            payment_behavior: behavior,
            save_default_payment_method: save,
        },
    )?;
    let sub = inner.subscription(&id, "id")?;
    Ok(ok(render::subscription(&inner, sub, &expand)))
}

async fn get_subscription(
    State(shared): Shd,
    Path(id): Path<String>,
    Params { value: p, kind, .. }: Params<ExpandParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Subscription, p.expand, false)?;
    let inner = shared.lock();
    let sub = inner.subscription(&id, "id")?;
    Ok(ok(render::subscription(&inner, sub, &expand)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSubscriptionParams {
    cancel_at_period_end: Option<bool>,
    #[serde(default)]
    items: Vec<ItemParams>,
    proration_behavior: Option<String>,
    proration_date: Option<i64>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    expand: Vec<String>,
    /// Accepted, not simulated.
    #[serde(rename = "payment_behavior")]
    _payment_behavior: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "description")]
    _description: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "default_payment_method")]
    _default_payment_method: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "off_session")]
    _off_session: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "cancellation_details")]
    _cancellation_details: Option<IgnoredAny>,
}

fn item_changes(items: Vec<ItemParams>, prefix: &str) -> Result<Vec<ItemChange>, SimError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            if item.deleted == Some(true) {
                return Err(SimError::Invalid {
                    param: format!("{prefix}[{i}][deleted]"),
                    code: None,
                    message: "The simulator does not remove subscription items.".to_owned(),
                });
            }
            Ok(ItemChange {
                id: item.id,
                price: item.price,
                quantity: item.quantity,
            })
        })
        .collect()
}

async fn update_subscription(
    State(shared): Shd,
    Path(id): Path<String>,
    Params {
        value: p,
        kind,
        origin,
    }: Params<UpdateSubscriptionParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Subscription, p.expand, false)?;
    let update = SubscriptionUpdate {
        cancel_at_period_end: p.cancel_at_period_end,
        items: item_changes(p.items, "items")?,
        proration_behavior: proration_behavior(
            p.proration_behavior.as_deref(),
            "proration_behavior",
        )?,
        proration_date: p.proration_date,
        metadata: p.metadata,
    };
    let mut inner = shared.lock();
    inner.update_subscription(now(&shared), &origin, &id, update)?;
    let sub = inner.subscription(&id, "id")?;
    Ok(ok(render::subscription(&inner, sub, &expand)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelParams {
    #[serde(default)]
    expand: Vec<String>,
    /// Accepted, not simulated.
    #[serde(rename = "invoice_now")]
    _invoice_now: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "prorate")]
    _prorate: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "cancellation_details")]
    _cancellation_details: Option<IgnoredAny>,
}

async fn cancel_subscription(
    State(shared): Shd,
    Path(id): Path<String>,
    Params {
        value: p,
        kind,
        origin,
    }: Params<CancelParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Subscription, p.expand, false)?;
    let mut inner = shared.lock();
    inner.cancel(now(&shared), &origin, &id)?;
    let sub = inner.subscription(&id, "id")?;
    Ok(ok(render::subscription(&inner, sub, &expand)))
}

async fn list_subscriptions(
    State(shared): Shd,
    Params { value: p, kind, .. }: Params<ListParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Subscription, p.expand.clone(), true)?;
    let inner = shared.lock();
    let mut subs: Vec<_> = inner
        .subscriptions
        .values()
        .filter(|s| p.customer.as_ref().is_none_or(|c| s.customer == *c))
        .filter(|s| match p.status.as_deref() {
            None => s.status.as_str() != "canceled",
            Some("all") => true,
            Some(status) => s.status.as_str() == status,
        })
        .collect();
    subs.sort_by_key(|s| std::cmp::Reverse(s.seq));
    let items = subs
        .into_iter()
        .map(|s| (s.id.clone(), render::subscription(&inner, s, &expand)))
        .collect();
    page(items, &p, "/v1/subscriptions")
}

// ----- invoices -----

async fn get_invoice(
    State(shared): Shd,
    Path(id): Path<String>,
    Params { value: p, kind, .. }: Params<ExpandParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Invoice, p.expand, false)?;
    let inner = shared.lock();
    let invoice = inner.invoice(&id, "id")?;
    Ok(ok(render::invoice(&inner, invoice, &expand)))
}

async fn list_invoices(
    State(shared): Shd,
    Params { value: p, kind, .. }: Params<ListParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Invoice, p.expand.clone(), true)?;
    let inner = shared.lock();
    let mut invoices: Vec<_> = inner
        .invoices
        .values()
        .filter(|i| p.customer.as_ref().is_none_or(|c| i.customer == *c))
        .filter(|i| {
            p.subscription
                .as_ref()
                .is_none_or(|s| i.subscription.as_ref() == Some(s))
        })
        .filter(|i| p.status.as_ref().is_none_or(|s| i.status.as_str() == s))
        .collect();
    invoices.sort_by_key(|i| std::cmp::Reverse(i.seq));
    let items = invoices
        .into_iter()
        .map(|i| (i.id.clone(), render::invoice(&inner, i, &expand)))
        .collect();
    page(items, &p, "/v1/invoices")
}

#[derive(Deserialize)]
struct PreviewDetails {
    #[serde(default)]
    items: Vec<ItemParams>,
    proration_behavior: Option<String>,
    proration_date: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewParams {
    customer: Option<String>,
    subscription: Option<String>,
    subscription_details: Option<PreviewDetails>,
    #[serde(default)]
    expand: Vec<String>,
    /// Accepted, not simulated.
    #[serde(rename = "automatic_tax")]
    _automatic_tax: Option<IgnoredAny>,
    /// Accepted, not simulated.
    #[serde(rename = "preview_mode")]
    _preview_mode: Option<IgnoredAny>,
}

async fn create_preview(
    State(shared): Shd,
    Params { value: p, kind, .. }: Params<PreviewParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    let expand = Expand::parse(Kind::Invoice, p.expand, false)?;
    let details = p.subscription_details.unwrap_or(PreviewDetails {
        items: Vec::new(),
        proration_behavior: None,
        proration_date: None,
    });
    let request = PreviewRequest {
        customer: p.customer,
        subscription: p.subscription,
        items: item_changes(details.items, "subscription_details[items]")?,
        proration_behavior: proration_behavior(
            details.proration_behavior.as_deref(),
            "subscription_details[proration_behavior]",
        )?,
        proration_date: details.proration_date,
    };
    let inner = shared.lock();
    let preview = inner.preview(now(&shared), request)?;
    Ok(ok(render::invoice(&inner, &preview, &expand)))
}

// ----- payment intents -----

fn client_secret_matches(kind: KeyKind, given: Option<&str>, actual: &str) -> Result<(), ApiError> {
    match (kind, given) {
        (KeyKind::Secret, None) => Ok(()),
        (_, Some(given)) if given == actual => Ok(()),
        (KeyKind::Publishable, None) => secret_only(kind),
        (_, Some(_)) => Err(ApiError::invalid(
            StatusCode::BAD_REQUEST,
            None,
            "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
            Some("client_secret"),
        )),
    }
}

async fn get_payment_intent(
    State(shared): Shd,
    Path(id): Path<String>,
    Params { value: p, kind, .. }: Params<ExpandParams>,
) -> Result<Response, ApiError> {
    let expand = Expand::parse(Kind::PaymentIntent, p.expand, false)?;
    let inner = shared.lock();
    let pi = inner.payment_intent(&id, "intent")?;
    client_secret_matches(kind, p.client_secret.as_deref(), &pi.client_secret)?;
    Ok(ok(render::payment_intent(&inner, pi, &expand)))
}

#[derive(Deserialize)]
struct ConfirmParams {
    payment_method: Option<String>,
    client_secret: Option<String>,
    #[serde(default)]
    expand: Vec<String>,
}

async fn confirm_payment_intent(
    State(shared): Shd,
    Path(id): Path<String>,
    Params {
        value: p,
        kind,
        origin,
    }: Params<ConfirmParams>,
) -> Result<Response, ApiError> {
    let expand = Expand::parse(Kind::PaymentIntent, p.expand, false)?;
    let mut inner = shared.lock();
    let pi = inner.payment_intent(&id, "intent")?;
    client_secret_matches(kind, p.client_secret.as_deref(), &pi.client_secret)?;
    inner.confirm(now(&shared), &origin, &id, p.payment_method.as_deref())?;
    let pi = inner.payment_intent(&id, "intent")?;
    Ok(ok(render::payment_intent(&inner, pi, &expand)))
}

// ----- events -----

async fn get_event(
    State(shared): Shd,
    Path(id): Path<String>,
    Params { value: p, kind, .. }: Params<ExpandParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    Expand::parse(Kind::Event, p.expand, false)?;
    let inner = shared.lock();
    Ok(ok(render::event(inner.event(&id)?)))
}

async fn list_events(
    State(shared): Shd,
    Params { value: p, kind, .. }: Params<ListParams>,
) -> Result<Response, ApiError> {
    secret_only(kind)?;
    Expand::parse(Kind::Event, p.expand.clone(), true)?;
    let inner = shared.lock();
    let items = inner
        .events
        .iter()
        .rev()
        .filter(|e| p.type_.as_ref().is_none_or(|t| type_matches(t, &e.type_)))
        .map(|e| (e.id.clone(), render::event(e)))
        .collect();
    page(items, &p, "/v1/events")
}

/// `type=invoice.*` matches every invoice event, as Stripe's filter does.
fn type_matches(filter: &str, type_: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => type_.starts_with(prefix),
        None => filter == type_,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        items: Vec<ItemParams>,
        limit: Option<u32>,
    }

    impl std::fmt::Debug for ItemParams {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}/{:?}", self.id, self.price)
        }
    }

    fn error_of(body: &str) -> Value {
        match parse_form::<Sample>(body.as_bytes()) {
            Ok(v) => panic!("parsed {v:?}"),
            Err(e) => e.body,
        }
    }

    #[test]
    fn unknown_parameters_are_named_in_brackets() {
        let e = error_of("items[0][price]=p&items[0][colour]=red");
        assert_eq!(e["error"]["code"], "parameter_unknown");
        assert_eq!(e["error"]["param"], "items[0][colour]");
        let e = error_of("nope=1");
        assert_eq!(e["error"]["message"], "Received unknown parameter: nope");
    }

    #[test]
    fn a_non_integer_is_parameter_invalid_integer() {
        let e = error_of("limit=ten");
        assert_eq!(e["error"]["code"], "parameter_invalid_integer");
        assert_eq!(e["error"]["param"], "limit");
    }

    #[test]
    fn bracket_notation_reads_encoded_or_not() {
        let a: Sample =
            parse_form(b"items%5B0%5D%5Bprice%5D=p1&limit=3").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            a.items.first().and_then(|i| i.price.clone()).as_deref(),
            Some("p1")
        );
        assert_eq!(a.limit, Some(3));
    }
}
