//! Malformed input never gets a 500: every registered server function (enumerated, so a new one
//! is covered without editing this file) is called, signed in as a superadmin, with a fixed set
//! of hostile bodies (empty, binary, 1–2 MB values, numbers out of range, control and bidi
//! characters, SQL and path fragments, lists and structures where plain values belong, broken
//! percent-encoding, JSON and multipart where a form belongs) and with proptest-generated
//! bodies over the shapes serde's data model takes (plain values, lists, structures, numbers,
//! any text, any bytes), aimed at each argument the function requires. Those are learned as a
//! client would learn them: call with what is known, read which argument the 400 names.
//!
//! Every answer is below 500 and, when it is a refusal, an `AppError` in JSON that is short
//! (nothing sent is echoed back whole) and free of control and bidi characters; a body that
//! cannot decode is 400 naming the argument; no panic happens (a panic hook counts them);
//! `/healthz` answers after each function; and a refused call changes nothing in the database.
//! "Nothing" is every row of every table except `sessions` (its expiry moves on every request
//! by design) and `seaql_migrations`: the audit log, login attempts, tokens and all domain
//! tables included. An accepted call (a function without required arguments accepts any
//! well-formed body) may change the database; the snapshot is then taken anew. A call that ends
//! the session (`logout`) is followed by a fresh sign-in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use app::error::AppError;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use support::{Client, PASSWORD, TestServer, login, setup_superadmin};

const SUPERADMIN: &str = "root@nest.test";

/// Generated bodies per server function (`NEST_FUZZ_CASES` overrides; `NEST_FUZZ_SEED` picks
/// other ones).
const CASES: u32 = 24;

/// Longest error body accepted: messages are clipped (to 240 characters, an escaped control
/// character counting as one), so anything longer echoes input.
const MAX_ERROR_BODY: usize = 2048;

/// Largest body the server reads (axum's default limit).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic in this process (the server runs in it), then reports it as usual.
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// One request body, with the content type it is sent as.
#[derive(Clone)]
struct Body {
    label: String,
    bytes: Vec<u8>,
    content_type: Option<&'static str>,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = String::from_utf8_lossy(&self.bytes[..self.bytes.len().min(120)]);
        write!(
            f,
            "{} ({} bytes, {:?}): {head:?}",
            self.label,
            self.bytes.len(),
            self.content_type
        )
    }
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

fn form(label: &str, text: impl Into<String>) -> Body {
    Body {
        label: label.to_owned(),
        bytes: text.into().into_bytes(),
        content_type: FORM,
    }
}

fn pairs(label: &str, pairs: &[(String, String)], content_type: Option<&'static str>) -> Body {
    let text = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Body {
        label: label.to_owned(),
        bytes: text.into_bytes(),
        content_type,
    }
}

/// The [`hostile_shapes`] no function that requires an argument can decode, whatever its type.
const CANNOT_DECODE: &[&str] = &[
    "empty",
    "binary",
    "2 MB value (past the body limit)",
    "1 MB of separate keys",
    "only separators",
    "JSON",
    "multipart",
];

/// What a well-meaning client never sends, aimed at argument `arg`. Those in
/// [`CANNOT_DECODE`] fail whatever the function takes; whether the others do depends on `arg`'s
/// type (a plain value is a fine string), so only their answers are checked, not refusal.
fn hostile_shapes(arg: &str) -> Vec<Body> {
    let mut bodies = vec![
        form("empty", ""),
        Body {
            label: "binary".to_owned(),
            bytes: vec![0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x1b, 0x7f, 0xa0, 0xa1],
            content_type: Some("application/octet-stream"),
        },
        form(
            "plain value where a structure may belong",
            format!("{arg}=aaaa"),
        ),
        form(
            "1 MB plain value",
            format!("{arg}={}", "a".repeat(1024 * 1024)),
        ),
        form(
            "1 MB structure key",
            format!("{arg}[{}]=1", "k".repeat(1024 * 1024)),
        ),
        form(
            "2 MB value (past the body limit)",
            format!("{arg}={}", "a".repeat(BODY_LIMIT)),
        ),
        form(
            "1 MB of separate keys",
            "a=1&".repeat(256 * 1024).trim_end_matches('&').to_owned(),
        ),
        form(
            "list where a plain value belongs",
            format!("{arg}[]=1&{arg}[]=2"),
        ),
        form("indexed list", format!("{arg}[0]=a&{arg}[1]=b")),
        form("structure", format!("{arg}[x]=1")),
        form(
            "nesting deeper than allowed",
            format!("{arg}[a][b][c][d][e][f][g][h]=1"),
        ),
        form("broken brackets", format!("{arg}[=1&{arg}]]=2&[{arg}=3")),
        form("lone percent", format!("{arg}=%")),
        form("bad percent escape", format!("{arg}=%ZZ%G1")),
        form(
            "percent-encoded invalid UTF-8",
            format!("{arg}=%FF%FE%C3%28"),
        ),
        form(
            "percent-encoded NUL and escape",
            format!("{arg}=%00%1b%5b31m"),
        ),
        form("only separators", "&&&==&=&"),
        form("no value", arg.to_owned()),
        form("the argument twice", format!("{arg}=1&{arg}=2&{arg}[x]=3")),
        form(
            "JSON sent as a form",
            format!("{{\"{arg}\": {{\"a\": [1, 2]}}}}"),
        ),
        Body {
            label: "JSON".to_owned(),
            bytes: format!("{{\"{arg}\": 1}}").into_bytes(),
            content_type: Some("application/json"),
        },
        Body {
            label: "multipart".to_owned(),
            bytes: format!(
                "--b\r\ncontent-disposition: form-data; name=\"{arg}\"\r\n\r\n1\r\n--b--\r\n"
            )
            .into_bytes(),
            content_type: Some("multipart/form-data; boundary=b"),
        },
        Body {
            label: "no content type".to_owned(),
            bytes: format!("{arg}[x][y]=1").into_bytes(),
            content_type: None,
        },
    ];
    for (label, value) in [
        ("number out of range", "99999999999999999999999999"),
        ("below i64", "-9223372036854775809"),
        ("negative", "-1"),
        ("float", "1.5e309"),
        ("not a number", "NaN"),
        ("control characters", "\u{0}\u{1}\u{7}\u{1b}[2J\r\n\t"),
        ("bidi override", "\u{202e}gnp.exe\u{202c}\u{2066}\u{200f}"),
        ("SQL fragment", "' OR 1=1; DROP TABLE tiers; --"),
        ("path fragment", "../../../../etc/passwd\\..\\%2e%2e/"),
        ("a very long line of emoji", &"🦀".repeat(20_000)),
    ] {
        bodies.push(pairs(
            label,
            &[(format!("{arg}[x]"), value.to_owned())],
            FORM,
        ));
        bodies.push(pairs(
            &format!("{label} in a list"),
            &[
                (format!("{arg}[]"), value.to_owned()),
                (format!("{arg}[]"), value.to_owned()),
            ],
            FORM,
        ));
    }
    bodies
}

/// The generator for `path`'s bodies: the same on every run, so CI never meets a body no one
/// has seen; `NEST_FUZZ_SEED=<n>` explores others.
fn rng_for(path: &str) -> TestRng {
    let run: u64 = std::env::var("NEST_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // FNV-1a of the path, so each function gets its own bodies.
    let function = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&run.to_le_bytes());
    seed[8..16].copy_from_slice(&function.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &seed)
}

/// A key: mostly the argument in some shape, sometimes anything at all.
fn key(arg: String) -> impl Strategy<Value = String> {
    let a = arg.clone();
    let b = arg.clone();
    let c = arg.clone();
    let d = arg.clone();
    prop_oneof![
        3 => Just(arg),
        2 => Just(format!("{a}[]")),
        2 => (0..12usize).prop_map(move |i| format!("{b}[{i}]")),
        3 => "[a-z_]{1,12}".prop_map(move |k| format!("{c}[{k}]")),
        1 => "(\\[[a-z0-9]{0,3}\\]){2,9}".prop_map(move |k| format!("{d}{k}")),
        1 => any::<String>(),
    ]
}

/// A value of any shape serde can be asked for: numbers in and out of every range, booleans,
/// enum-like words, any text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<i128>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        prop_oneof![
            Just(String::new()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("null".to_owned()),
            Just("None".to_owned()),
            Just("Newest".to_owned()),
            Just("admin".to_owned()),
        ],
        "[A-Za-z][a-z_]{0,15}",
        any::<String>(),
        "[\\x00-\\x1f\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}]{1,12}",
    ]
}

/// A generated body: form pairs aimed at the arguments under a random content type, or random
/// bytes.
fn generated(arguments: Vec<String>) -> impl Strategy<Value = Body> {
    let content_type = prop_oneof![
        6 => Just(FORM),
        1 => Just(Some("application/json")),
        1 => Just(Some("text/plain; charset=utf-8")),
        1 => Just(None),
    ];
    prop_oneof![
        5 => (
            proptest::collection::vec(
                (proptest::sample::select(arguments).prop_flat_map(key), value()),
                0..6
            ),
            content_type,
        )
            .prop_map(|(kv, ct)| pairs("generated pairs", &kv, ct)),
        1 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(|bytes| Body {
            label: "generated bytes".to_owned(),
            bytes,
            content_type: FORM,
        }),
    ]
}

/// A snapshot of the database: every row of every table but `sessions` and
/// `seaql_migrations`, as text, per table.
type Snapshot = BTreeMap<String, Vec<String>>;

/// The one query that reads a [`Snapshot`] (a `UNION ALL` over the tables, built once).
async fn snapshot_query(db: &DatabaseConnection) -> String {
    let backend = db.get_database_backend();
    let all = |sql: String| db.query_all_raw(Statement::from_string(backend, sql));
    let tables_sql = match backend {
        DbBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    };
    let tables: Vec<String> = all(tables_sql.to_owned())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .filter(|t| t != "sessions" && t != "seaql_migrations")
        .collect();
    let mut selects = Vec::new();
    for table in tables {
        selects.push(match backend {
            DbBackend::Postgres => {
                format!("SELECT '{table}' AS t, x::text AS r FROM \"{table}\" x")
            }
            _ => {
                let columns: Vec<String> =
                    all(format!("SELECT name FROM pragma_table_info('{table}')"))
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| format!("quote(\"{}\")", r.try_get::<String>("", "name").unwrap()))
                        .collect();
                format!(
                    "SELECT '{table}' AS t, {} AS r FROM \"{table}\"",
                    columns.join(" || ',' || ")
                )
            }
        });
    }
    selects.join(" UNION ALL ")
}

/// Reads a [`Snapshot`] with the query from [`snapshot_query`].
async fn snapshot(db: &DatabaseConnection, query: &str) -> Snapshot {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            query.to_owned(),
        ))
        .await
        .unwrap();
    let mut snapshot = Snapshot::new();
    for row in rows {
        snapshot
            .entry(row.try_get::<String>("", "t").unwrap())
            .or_default()
            .push(row.try_get::<String>("", "r").unwrap());
    }
    for rows in snapshot.values_mut() {
        rows.sort();
    }
    snapshot
}

/// The tables whose rows differ between two snapshots.
fn changed(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|t| before.get(*t) != after.get(*t))
        .cloned()
        .collect()
}

/// What the server answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// Sends `body` to `path` with `method`, as `client` (its cookie, no cross-origin headers). A
/// GET carries the body as its query string, cut to what fits in a request line.
async fn send(client: &mut Client, method: &str, path: &str, body: &Body) -> Answer {
    let mut url = url::Url::parse(&format!("{}{path}", client.base)).unwrap();
    let mut request = if method == "GET" {
        let query: String = String::from_utf8_lossy(&body.bytes)
            .chars()
            .take(4096)
            .collect();
        url.set_query(Some(&query));
        client.http.get(url)
    } else {
        client
            .http
            .request(method.parse().unwrap(), url)
            .body(body.bytes.clone())
    };
    request = request.header("accept", "application/json");
    if let Some(ct) = body.content_type {
        request = request.header("content-type", ct);
    }
    if let Some(cookie) = &client.cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let ended = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().contains("Max-Age=0"));
    if ended {
        client.cookie = None;
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Answer { status, body }
}

/// The state one function's calls share: the signed-in client and the last snapshot.
struct Fuzzer<'a> {
    server: &'a TestServer,
    db: &'a DatabaseConnection,
    client: Client,
    query: String,
    snapshot: Snapshot,
    calls: usize,
}

impl Fuzzer<'_> {
    /// Signs the superadmin in again if a call ended the session.
    async fn sign_in(&mut self) {
        if self.client.cookie.is_none() {
            let (client, reply) = login(self.server, SUPERADMIN, PASSWORD).await;
            assert_eq!(reply.status, 200, "signing in again: {reply:?}");
            self.client = client;
            self.snapshot = snapshot(self.db, &self.query).await;
        }
    }

    /// Calls `path` with `body` and checks the answer.
    async fn check(&mut self, method: &str, path: &str, body: &Body) -> Result<Answer, String> {
        self.sign_in().await;
        let answer = send(&mut self.client, method, path, body).await;
        self.calls += 1;
        let after = snapshot(self.db, &self.query).await;
        let clipped: String = answer.body.chars().take(300).collect();
        let what = format!("{path} with {body:?} → {} {clipped}", answer.status);
        if answer.status >= 500 {
            return Err(format!("a server error: {what}"));
        }
        if answer.status < 400 {
            self.snapshot = after;
            return Ok(answer);
        }
        if answer.body.len() > MAX_ERROR_BODY {
            return Err(format!("a long error body (echoed input?): {what}"));
        }
        let err: AppError = serde_json::from_str(&answer.body)
            .map_err(|e| format!("not the project's error shape ({e}): {what}"))?;
        if err
            .to_string()
            .chars()
            .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c))
        {
            return Err(format!(
                "raw control or bidi characters in the error: {what}"
            ));
        }
        if answer.status == 400 {
            let AppError::Transport(message) = &err else {
                return Err(format!("a 400 that is not a transport error: {what}"));
            };
            // Through `app::codec` (or the body reader): the argument at fault is named, or the
            // body as a whole is.
            if !message.starts_with("malformed arguments: ") {
                return Err(format!(
                    "a 400 that does not say what was malformed: {what}"
                ));
            }
        }
        let diff = changed(&self.snapshot, &after);
        if !diff.is_empty() {
            return Err(format!("a refused call changed {diff:?}: {what}"));
        }
        Ok(answer)
    }

    async fn healthz(&self) {
        let status = reqwest::get(format!("{}/healthz", self.server.base))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "/healthz stopped answering");
    }
}

/// The form key of an argument path: `query.sort` → `query[sort]`.
fn key_of(path: &str) -> String {
    let mut segments = path.split('.');
    let mut key = segments.next().unwrap_or_default().to_owned();
    for segment in segments {
        key.push_str(&format!("[{segment}]"));
    }
    key
}

/// A value that the error about argument `message` suggests: a number, a boolean, the first of
/// the variants it lists; or `None` when it suggests nothing.
fn suggested(message: &str) -> Option<String> {
    if let Some((_, rest)) = message
        .split_once("expected one of `")
        .or_else(|| message.split_once("expected `"))
    {
        return rest.split('`').next().map(str::to_owned);
    }
    if message.contains("`true` or `false`") || message.contains("boolean") {
        return Some("true".to_owned());
    }
    if [
        "digit",
        "number",
        "integer",
        "expected i",
        "expected u",
        "expected f",
    ]
    .iter()
    .any(|hint| message.contains(hint))
    {
        return Some("1".to_owned());
    }
    None
}

/// The arguments a function requires, in order, learned as a client would: call it with what
/// is known so far and read which argument the 400 names as missing, then find a value it
/// takes (`x`, or what the error suggests; a structure when it wants one). `Vec::new()` when
/// it requires none. The last probe may run the function, with plausible values (an accepted
/// call like any other); every probe must answer below 500.
async fn required_arguments(fuzzer: &mut Fuzzer<'_>, method: &str, path: &str) -> Vec<String> {
    fuzzer.sign_in().await;
    let mut known: Vec<(String, String)> = Vec::new();
    let mut arguments: Vec<String> = Vec::new();
    for _ in 0..40 {
        let answer = send(
            &mut fuzzer.client,
            method,
            path,
            &pairs("probe", &known, FORM),
        )
        .await;
        assert!(answer.status < 500, "{path} with {known:?}: {answer:?}");
        if answer.status != 400 {
            break;
        }
        let err: AppError = serde_json::from_str(&answer.body)
            .unwrap_or_else(|e| panic!("{path} with {known:?}: {e}: {answer:?}"));
        let AppError::Transport(message) = &err else {
            panic!("{path} with {known:?} answered 400 with {err:?}")
        };
        let Some(rest) = message.strip_prefix("malformed arguments: argument `") else {
            assert!(
                !known.is_empty(),
                "{path} without arguments does not name the missing one ({message}); \
                 declare it with `input = crate::codec::Form`"
            );
            break;
        };
        if let Some(missing) = rest.strip_suffix("` is missing") {
            let top = missing.split('.').next().unwrap_or_default().to_owned();
            if !arguments.contains(&top) {
                arguments.push(top);
            }
            known.push((key_of(missing), "x".to_owned()));
            continue;
        }
        let Some((argument, problem)) = rest.split_once("`: ") else {
            break;
        };
        let key = key_of(argument);
        let Some(pair) = known.iter_mut().find(|(k, _)| *k == key) else {
            break;
        };
        if problem.starts_with("expected a structure") {
            // A structure: an ignored key makes it one; its fields are named next.
            pair.0 = format!("{key}[_]");
            pair.1 = String::new();
        } else if let Some(value) = suggested(problem).filter(|v| *v != pair.1) {
            pair.1 = value;
        } else {
            break;
        }
    }
    fuzzer.sign_in().await;
    fuzzer.snapshot = snapshot(fuzzer.db, &fuzzer.query).await;
    arguments
}

async fn every_server_function_answers_malformed_input_with_a_4xx_naming_the_argument(
    db: &DatabaseConnection,
) {
    count_panics();
    let server = TestServer::start(db).await;
    let client = setup_superadmin(&server, SUPERADMIN).await;
    let cases = std::env::var("NEST_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    let registered: Vec<(String, String)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path.to_owned(), method.to_string()))
        .collect();
    assert!(registered.len() >= 20, "{registered:?}");
    let query = snapshot_query(db).await;
    let mut fuzzer = Fuzzer {
        server: &server,
        db,
        client,
        snapshot: snapshot(db, &query).await,
        query,
        calls: 0,
    };
    let mut with_argument = 0;
    let mut arguments_seen = 0;
    for (path, method) in &registered {
        let arguments = required_arguments(&mut fuzzer, method, path).await;
        eprintln!("fuzz: {method} {path} requires {arguments:?}");
        with_argument += usize::from(!arguments.is_empty());
        arguments_seen += arguments.len();
        let targets = if arguments.is_empty() {
            vec!["x".to_owned()]
        } else {
            arguments.clone()
        };
        for (i, target) in targets.iter().enumerate() {
            for body in hostile_shapes(target) {
                let aimless = CANNOT_DECODE.contains(&body.label.as_str());
                if aimless && i > 0 {
                    continue; // The same body for every argument: sent once.
                }
                let answer = fuzzer
                    .check(method, path, &body)
                    .await
                    .unwrap_or_else(|failure| panic!("{failure}"));
                // These lack every argument (or are no form at all), whatever their types.
                if aimless && !arguments.is_empty() {
                    assert_eq!(answer.status, 400, "{path} with {body:?}: {answer:?}");
                }
            }
        }
        let other_method = if method == "GET" { "POST" } else { "GET" };
        let answer = fuzzer
            .check(other_method, path, &form("wrong method", ""))
            .await
            .unwrap_or_else(|failure| panic!("{failure}"));
        assert_eq!(answer.status, 405, "{other_method} {path}: {answer:?}");
        // Generated bodies: the runner wants a synchronous test; the server runs on the other
        // worker thread meanwhile.
        let handle = tokio::runtime::Handle::current();
        let shared = RefCell::new(&mut fuzzer);
        let result = tokio::task::block_in_place(|| {
            let mut runner = TestRunner::new_with_rng(
                Config {
                    cases,
                    failure_persistence: None,
                    // A failing body shrinks to a small one, within bounds.
                    max_shrink_iters: 256,
                    ..Config::default()
                },
                rng_for(path),
            );
            runner.run(&generated(targets.clone()), |body| {
                let mut fuzzer = shared.borrow_mut();
                handle
                    .block_on(fuzzer.check(method, path, &body))
                    .map(|_| ())
                    .map_err(TestCaseError::fail)
            })
        });
        if let Err(failure) = result {
            panic!("{path}: {failure}");
        }
        fuzzer.healthz().await;
    }
    assert!(with_argument >= 10, "most functions take arguments");
    assert!(arguments_seen > with_argument, "some take several");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    eprintln!(
        "fuzz: {} server functions ({with_argument} with {arguments_seen} required arguments), \
         {} checked calls",
        registered.len(),
        fuzzer.calls
    );
}

async fn a_plain_value_where_the_organization_query_belongs_is_a_400_naming_it(
    db: &DatabaseConnection,
) {
    count_panics();
    let server = TestServer::start(db).await;
    let mut client = setup_superadmin(&server, SUPERADMIN).await;
    let query = snapshot_query(db).await;
    let before = snapshot(db, &query).await;
    // A value is echoed as a short prefix at most.
    let reply = client
        .call(
            "change_admin_role",
            &[("user_id", "2"), ("role", &"a".repeat(1024 * 1024))],
        )
        .await;
    let Some(AppError::Transport(message)) = reply.error() else {
        panic!("{reply:?}")
    };
    assert!(
        message.starts_with("malformed arguments: argument `role`: unknown variant `"),
        "{message}"
    );
    let prefix = format!("{}…`", "a".repeat(app::error::MAX_QUOTED));
    assert!(message.contains(&prefix), "{message}");
    assert!(message.len() < 200, "{message}");
    for value in ["aaaa".to_owned(), "a".repeat(1024 * 1024)] {
        let reply = client
            .call("list_organizations", &[("query", &value)])
            .await;
        assert_eq!(reply.status, 400, "a {}-byte value", value.len());
        assert_eq!(
            reply.error(),
            Some(AppError::Transport(
                "malformed arguments: argument `query`: expected a structure \
                 (`name[key]=…`), got a plain value (`name=…`)"
                    .to_owned()
            ))
        );
    }
    let reply = client
        .call(
            "list_organizations",
            &[("query[search]", &"s".repeat(100_000))],
        )
        .await;
    assert_eq!(
        reply.error(),
        Some(AppError::Transport(
            "malformed arguments: argument `query.sort` is missing".to_owned()
        ))
    );
    for (args, argument) in [
        (
            &[("id", "99999999999999999999"), ("input[name]", "x")][..],
            "id",
        ),
        (&[("input[vcpus][a]", "1")][..], "input.vcpus"),
        (
            &[("input[name][]", "1"), ("input[name][]", "2")][..],
            "input.name",
        ),
    ] {
        let reply = client.call("save_tier", args).await;
        assert_eq!(reply.status, 400, "{args:?}: {reply:?}");
        let Some(AppError::Transport(message)) = reply.error() else {
            panic!("{reply:?}")
        };
        assert!(
            message.starts_with(&format!("malformed arguments: argument `{argument}`: ")),
            "{message}"
        );
    }
    assert_eq!(snapshot(db, &query).await, before, "nothing changed");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

async fn an_unknown_function_is_a_404_and_a_real_failure_a_500_with_a_reference(
    db: &DatabaseConnection,
) {
    count_panics();
    let server = TestServer::start(db).await;
    let mut client = setup_superadmin(&server, SUPERADMIN).await;
    let answer = send(
        &mut client,
        "POST",
        "/api/no_such_function",
        &form("unknown function", "a=1"),
    )
    .await;
    assert_eq!(answer.status, 404, "{answer:?}");
    assert_eq!(
        serde_json::from_str::<AppError>(&answer.body).unwrap(),
        AppError::NotFound("/api/no_such_function".to_owned())
    );
    // A database that lost a table is the server's failure, not the caller's: 500, with a
    // reference to the log line and nothing else.
    db.execute_unprepared("ALTER TABLE tiers RENAME TO tiers_gone")
        .await
        .unwrap();
    let reply = client.call("list_tiers", &[]).await;
    assert_eq!(reply.status, 500, "{reply:?}");
    let Some(AppError::Internal(reference)) = reply.error() else {
        panic!("{reply:?}")
    };
    assert!(
        reference.starts_with('E') && reference.len() < 16,
        "{reference}"
    );
    db.execute_unprepared("ALTER TABLE tiers_gone RENAME TO tiers")
        .await
        .unwrap();
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

on_both_databases!(
    every_server_function_answers_malformed_input_with_a_4xx_naming_the_argument,
    a_plain_value_where_the_organization_query_belongs_is_a_400_naming_it,
    an_unknown_function_is_a_404_and_a_real_failure_a_500_with_a_reference,
);
