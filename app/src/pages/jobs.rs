//! `/jobs`: every job of the queue, fleet-wide — provisioning jobs and Nest's periodic tasks —
//! with filters (kind, state, organization) and paging in the URL, live. A failed job shows
//! its failed step and error and can be retried.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use crate::auth::handle_auth_error;
use crate::components::job_progress::progress_view;
use crate::components::pager::{is_filtered, page_link};
use crate::error::AppError;
use crate::models::{JobKind, JobPage, JobQuery, JobState, JobView};

/// A page of jobs, newest first.
#[server(prefix = "/api", endpoint = "list_jobs", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_jobs(#[server(default)] query: JobQuery) -> Result<JobPage, AppError> {
    let (backend, _req, _admin) = crate::backend::require_admin().await?;
    backend.jobs.list(query).await
}

/// Queues a failed job again.
#[server(prefix = "/api", endpoint = "retry_job", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn retry_job(id: i64) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_admin().await?;
    backend.jobs.retry(&admin, &req, id).await
}

fn query_from(map: &leptos_router::params::ParamsMap) -> JobQuery {
    let non_empty = |k: &str| {
        map.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    JobQuery {
        kind: non_empty("kind").and_then(|s| s.parse().ok()),
        state: non_empty("state").and_then(|s| s.parse().ok()),
        organization: non_empty("org"),
        after: non_empty("after").and_then(|s| s.parse().ok()),
    }
}

const FILTERS: &[&str] = &["kind", "state", "org"];

/// The page.
#[component]
pub fn JobsPage() -> impl IntoView {
    let params = use_query_map();
    let live = crate::components::live::use_live();
    let version = RwSignal::new(0u32);
    let page = crate::codec::resource(
        move || {
            (
                query_from(&params.get()),
                live.job_tick.get(),
                live.tick.get(),
                version.get(),
            )
        },
        |(query, ..)| list_jobs(query),
    );
    let retry = Action::new(|id: &i64| retry_job(*id));
    let retry_error = RwSignal::new(None::<(i64, String)>);
    Effect::new(move |_| {
        if let Some(result) = retry.value().get() {
            match result {
                Ok(()) => {
                    retry_error.set(None);
                    version.update(|v| *v += 1);
                }
                Err(e) => {
                    handle_auth_error(&e);
                    let id = retry.input().get_untracked().unwrap_or_default();
                    retry_error.set(Some((id, e.to_string())));
                }
            }
        }
    });
    let value = move |k: &'static str| move || params.get().get(k).unwrap_or_default();
    let selected = move |k: &'static str, v: &'static str| {
        move || params.get().get(k).unwrap_or_default() == v
    };
    view! {
        <Title text="Jobs"/>
        <div class="page-head"><h1>"Jobs"</h1></div>
        <section class="card" aria-labelledby="job-filters">
            <h2 id="job-filters">"Filter"</h2>
            <Form method="GET" action="/jobs">
                <div class="filters">
                    <div class="field">
                        <label for="j-kind">"Kind"</label>
                        <select id="j-kind" name="kind">
                            <option value="">"Any kind"</option>
                            {JobKind::ALL.iter().map(|k| view! {
                                <option value=k.as_str() selected=selected("kind", k.as_str())>{k.as_str()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="j-state">"State"</label>
                        <select id="j-state" name="state">
                            <option value="">"Any state"</option>
                            {JobState::ALL.iter().map(|s| view! {
                                <option value=s.as_str() selected=selected("state", s.as_str())>{s.as_str()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="j-org">"Organization slug"</label>
                        <input id="j-org" name="org" type="search" prop:value=value("org")/>
                    </div>
                </div>
                <button type="submit" class="button">"Apply"</button>
                " "
                <a class="button secondary" href="/jobs">"Clear"</a>
            </Form>
        </section>
        <Transition fallback=|| view! { <p role="status">"Loading jobs…"</p> }>
            {move || page.get().map(|result| match result {
                Err(err) => {
                    handle_auth_error(&err);
                    view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                }
                Ok(p) => view! {
                    <JobTable page=p params=params.get() retry=retry retry_error=retry_error/>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn JobTable(
    page: JobPage,
    params: leptos_router::params::ParamsMap,
    retry: Action<i64, Result<(), AppError>>,
    retry_error: RwSignal<Option<(i64, String)>>,
) -> impl IntoView {
    if page.rows.is_empty() {
        return if is_filtered(&params, FILTERS) {
            view! { <p class="empty">"No job matches these filters."</p> }.into_any()
        } else {
            view! { <p class="empty">"No jobs yet: they appear here when an organization is created or a periodic task runs."</p> }.into_any()
        };
    }
    let first_page = params.get("after").is_none();
    let link = move |after: Option<i64>| {
        page_link(
            "/jobs",
            &params,
            FILTERS,
            after.map(|a| a.to_string()).as_deref(),
        )
    };
    view! {
        <table class="jobs" data-testid="fleet-jobs">
            <thead>
                <tr>
                    <th scope="col">"Job"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Organization"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Attempts"</th>
                    <th scope="col">"Queued"</th>
                    <th scope="col">"Progress"</th>
                    <th scope="col">"Error"</th>
                    <th scope="col">"Action"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|j| job_row(j, retry, retry_error)).collect_view()}
            </tbody>
        </table>
        <nav class="pager" aria-label="Job pages">
            {(!first_page).then(|| view! { <a href=link(None)>"Newest jobs"</a> })}
            {page.next.map(|n| view! { <a href=link(Some(n))>"Older jobs"</a> })}
        </nav>
    }
    .into_any()
}

fn job_row(
    j: JobView,
    retry: Action<i64, Result<(), AppError>>,
    retry_error: RwSignal<Option<(i64, String)>>,
) -> impl IntoView {
    let id = j.id;
    let failed = j.state == JobState::Failed;
    view! {
        <tr data-testid=format!("job-{id}") data-state=j.state.as_str()>
            <td>{format!("#{id}")}</td>
            <td>{j.kind.as_str()}</td>
            <td>{match j.organization {
                Some(org) => view! { <a href=format!("/organizations/{}", org.id)>{org.slug}</a> }.into_any(),
                None => view! { <span class="muted">"—"</span> }.into_any(),
            }}</td>
            <td><span class=format!("badge status-{}", j.state)>{j.state.as_str()}</span></td>
            <td>{format!("{}/{}", j.attempts, j.max_attempts)}</td>
            <td title=format!("{} UTC", crate::components::time::second(&j.created_at))>{crate::components::time::stamp(&j.created_at)}</td>
            <td>{progress_view(&j.progress)}</td>
            <td>
                // The error starts with the label of the step that failed.
                {j.last_error.unwrap_or_default()}
            </td>
            <td>
                {failed.then(|| view! {
                    <form class="inline-form" method="post" action=RetryJob::url()
                        on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); retry.dispatch(id); }>
                        <input type="hidden" name="id" value=id.to_string()/>
                        <button type="submit" class="button" aria-label=format!("Retry job {id}")
                            disabled=move || retry.pending().get()>"Retry"</button>
                    </form>
                })}
                {move || retry_error.get().filter(|(e, _)| *e == id).map(|(_, msg)| view! {
                    <p class="error" role="alert">{msg}</p>
                })}
            </td>
        </tr>
    }
}
