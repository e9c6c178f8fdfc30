//! `/admins` (superadmin): the platform admins; add one (typed password or a one-time link shown
//! once), change a role, remove one. The last superadmin can be neither demoted nor removed.
//! Also the two-factor policy (required for every admin, or not) and resetting another admin's
//! two-factor sign-in when they lose their authenticator.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

use crate::auth::handle_auth_error;
use crate::components::form::{Field, FormError};
use crate::error::AppError;
use crate::models::{AddedAdmin, AdminRole, AdminSummary, InitialPassword};

/// Every platform admin.
#[server(prefix = "/api", endpoint = "list_admins", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn list_admins() -> Result<Vec<AdminSummary>, AppError> {
    let (backend, _req, admin) = crate::backend::require_superadmin().await?;
    backend.admins.list(&admin).await
}

/// Adds a platform admin.
#[server(prefix = "/api", endpoint = "add_admin", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn add_admin(
    email: String,
    role: AdminRole,
    initial: InitialPassword,
    password: Option<String>,
) -> Result<AddedAdmin, AppError> {
    let (backend, req, admin) = crate::backend::require_superadmin().await?;
    // A form posted without JavaScript sends the (hidden) password field even when empty.
    let password = password.filter(|p| !p.is_empty());
    let added = backend
        .admins
        .add(&admin, &req, email, role, initial, password)
        .await?;
    // Posted without JavaScript: the one-time link is shown on the page it comes back to.
    crate::posted::keep::<AddAdmin>(&added).await?;
    Ok(added)
}

/// Changes an admin's role.
#[server(prefix = "/api", endpoint = "change_admin_role", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn change_admin_role(user_id: i64, role: AdminRole) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_superadmin().await?;
    backend
        .admins
        .change_role(&admin, &req, user_id, role)
        .await
}

/// Removes an admin.
#[server(prefix = "/api", endpoint = "remove_admin", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn remove_admin(user_id: i64) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_superadmin().await?;
    backend.admins.remove(&admin, &req, user_id).await
}

/// Requires (or stops requiring) two-factor sign-in of every admin.
#[server(prefix = "/api", endpoint = "set_two_factor_required", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn set_two_factor_required(required: bool) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_superadmin().await?;
    backend
        .two_factor
        .set_required(&admin, &req, required)
        .await
}

/// Removes another admin's authenticator and recovery codes (they lost their device).
#[server(prefix = "/api", endpoint = "reset_two_factor", input = crate::codec::Form, output = crate::codec::Json)]
pub async fn reset_two_factor(user_id: i64) -> Result<(), AppError> {
    let (backend, req, admin) = crate::backend::require_superadmin().await?;
    backend.two_factor.reset(&admin, &req, user_id).await
}

/// The page.
#[component]
pub fn AdminsPage() -> impl IntoView {
    let version = RwSignal::new(0u32);
    // Live: another superadmin's change shows without a reload.
    let live = crate::components::live::use_live();
    let admins =
        crate::codec::resource(move || (version.get(), live.tick.get()), |_| list_admins());
    let me = crate::codec::resource(|| (), |_| crate::auth::current_caller());
    let notice = RwSignal::new(None::<String>);

    view! {
        <Title text="Admins"/>
        <h1>"Platform admins"</h1>
        <AddAdminForm on_added=move || version.update(|v| *v += 1)/>
        <TwoFactorPolicy/>
        {move || notice.get().map(|n| view! { <p class="notice" role="status">{n}</p> })}
        <section class="card" aria-labelledby="admins-heading">
            <h2 id="admins-heading">"Admins"</h2>
            <Transition fallback=|| view! { <p role="status">"Loading admins…"</p> }>
                {move || admins.get().map(|result| match result {
                    Err(err) => {
                        handle_auth_error(&err);
                        view! { <p class="error" role="alert">{err.to_string()}</p> }.into_any()
                    }
                    Ok(list) => view! {
                        <table>
                            <thead>
                                <tr>
                                    <th scope="col">"Email"</th>
                                    <th scope="col">"Role"</th>
                                    <th scope="col">"Added"</th>
                                    <th scope="col">"Last sign-in"</th>
                                    <th scope="col">"Two-factor"</th>
                                    <th scope="col">"Actions"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {list.into_iter().map(|a| {
                                    let is_self = me.get().and_then(Result::ok).is_some_and(|c| c.user_id == a.user_id);
                                    view! {
                                        <AdminRow admin=a is_self notice on_changed=move || version.update(|v| *v += 1)/>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn AdminRow(
    admin: AdminSummary,
    is_self: bool,
    notice: RwSignal<Option<String>>,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let user_id = admin.user_id;
    let email = admin.email.clone();
    let other_role = match admin.role {
        AdminRole::Admin => AdminRole::Superadmin,
        AdminRole::Superadmin => AdminRole::Admin,
    };
    let change = Action::new(move |role: &AdminRole| change_admin_role(user_id, *role));
    let remove = Action::new(move |_: &()| remove_admin(user_id));
    let reset = Action::new(move |_: &()| reset_two_factor(user_id));
    let error = RwSignal::new(None::<AppError>);
    Effect::new(move |_| match change.value().get() {
        Some(Ok(())) => on_changed(),
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    });
    let removed_email = email.clone();
    Effect::new(move |_| match remove.value().get() {
        Some(Ok(())) => {
            notice.set(Some(format!("{removed_email} is no longer an admin.")));
            on_changed();
        }
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    });
    let reset_email = email.clone();
    Effect::new(move |_| match reset.value().get() {
        Some(Ok(())) => {
            notice.set(Some(format!(
                "{reset_email}'s two-factor sign-in was reset; they set up a new authenticator at their next sign-in."
            )));
            on_changed();
        }
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    });
    let label_email = email.clone();
    let reset_label = format!("Reset two-factor sign-in of {email}");
    let on_change = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        change.dispatch(other_role);
    };
    let on_remove = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        remove.dispatch(());
    };
    let on_reset = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        reset.dispatch(());
    };
    let user = user_id.to_string();
    view! {
        <tr>
            <td>
                {email.clone()}
                {admin.password_pending.then(|| view! { " " <span class="badge">"password not set"</span> })}
            </td>
            <td><span class="badge">{admin.role.as_str()}</span></td>
            <td>{crate::components::time::minute(&admin.created_at)}</td>
            <td>{admin.last_login_at.as_ref().map(crate::components::time::minute).unwrap_or_else(|| "never".to_owned())}</td>
            <td>
                {if admin.two_factor { "on" } else { "off" }}
                {(admin.two_factor && !is_self).then(|| view! {
                    " "
                    <details class="act">
                        <summary class="button secondary" aria-label=reset_label.clone()>"Reset"</summary>
                        <form class="confirm" method="post" action=ResetTwoFactor::url() on:submit=on_reset aria-label="Confirm two-factor reset">
                            <input type="hidden" name="user_id" value=user.clone()/>
                            <p>"Remove their authenticator and recovery codes, and sign them out?"</p>
                            <button type="submit" class="button danger">"Yes, reset"</button>
                        </form>
                    </details>
                })}
            </td>
            <td class="actions">
                <form class="inline-form" method="post" action=ChangeAdminRole::url() on:submit=on_change>
                    <input type="hidden" name="user_id" value=user.clone()/>
                    <input type="hidden" name="role" value=other_role.as_str()/>
                    <button type="submit" class="button secondary" aria-label=format!("Make {label_email} {other_role}")>
                        {format!("Make {other_role}")}
                    </button>
                </form>
                {if is_self {
                    view! {
                        <button type="button" class="button danger" disabled=true title="You cannot remove yourself">"Remove"</button>
                        <span class="muted">" (you)"</span>
                    }.into_any()
                } else {
                    view! {
                        <details class="act">
                            <summary class="button danger" aria-label=format!("Remove {label_email}")>"Remove"</summary>
                            <form class="confirm" method="post" action=RemoveAdmin::url() on:submit=on_remove aria-label="Confirm removal">
                                <input type="hidden" name="user_id" value=user.clone()/>
                                <p>{format!("Remove {label_email} as an admin? They are signed out now.")}</p>
                                <button type="submit" class="button danger">"Yes, remove"</button>
                            </form>
                        </details>
                    }.into_any()
                }}
                {move || error.get().map(|e| view! { <div class="field-error" role="alert">{e.to_string()}</div> })}
            </td>
        </tr>
    }
    .into_any()
}

#[component]
fn AddAdminForm(on_added: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let role = RwSignal::new(AdminRole::Admin);
    let initial = RwSignal::new(InitialPassword::Link);
    let password = RwSignal::new(String::new());
    let action = Action::new(
        move |(e, r, i, p): &(String, AdminRole, InitialPassword, Option<String>)| {
            add_admin(e.clone(), *r, *i, p.clone())
        },
    );
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let kept = crate::posted::taken::<AddAdmin>();
    let added = move || {
        action
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| kept.get().flatten())
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            email.set(String::new());
            password.set(String::new());
            on_added();
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let pw =
            (initial.get_untracked() == InitialPassword::Typed).then(|| password.get_untracked());
        action.dispatch((
            email.get_untracked(),
            role.get_untracked(),
            initial.get_untracked(),
            pw,
        ));
    };
    view! {
        <section class="card" aria-labelledby="add-admin-heading">
            <h2 id="add-admin-heading">"Add an admin"</h2>
            <form class="add-admin" method="post" action=AddAdmin::url() on:submit=submit novalidate>
                <FormError error fields=&["email", "password"]/>
                <Field name="email" label="Email" kind="email" value=email error/>
                <div class="field">
                    <label for="field-role">"Role"</label>
                    <select
                        id="field-role"
                        name="role"
                        on:change=move |ev| role.set(if event_target_value(&ev) == "superadmin" { AdminRole::Superadmin } else { AdminRole::Admin })
                    >
                        <option value="admin" selected=move || role.get() == AdminRole::Admin>"admin"</option>
                        <option value="superadmin" selected=move || role.get() == AdminRole::Superadmin>"superadmin"</option>
                    </select>
                </div>
                <fieldset class="field">
                    <legend>"First password"</legend>
                    <label class="inline">
                        <input
                            type="radio"
                            name="initial"
                            value="Link"
                            checked=move || initial.get() == InitialPassword::Link
                            on:change=move |_| initial.set(InitialPassword::Link)
                        />
                        " Generate a one-time set-password link"
                    </label>
                    <label class="inline">
                        <input
                            type="radio"
                            name="initial"
                            value="Typed"
                            checked=move || initial.get() == InitialPassword::Typed
                            on:change=move |_| initial.set(InitialPassword::Typed)
                        />
                        " Type an initial password"
                    </label>
                </fieldset>
                // Shown by the stylesheet while "Type an initial password" is chosen (`:has`), so
                // it works without JavaScript too.
                <div class="initial-password">
                    <Field name="password" label="Initial password" kind="password" autocomplete="new-password" required=false value=password error/>
                </div>
                <button type="submit" class="button" disabled=move || action.pending().get()>"Add admin"</button>
            </form>
            <Transition fallback=|| ()>
            {move || added().map(|a| view! {
                <div class="notice" role="status">
                    <p>{format!("{} was added as {}.", a.admin.email, a.admin.role)}</p>
                    {a.set_password_path.map(|path| view! {
                        <p>
                            "Send them this one-time link (valid 48 hours; it is shown only now): "
                            <code data-testid="set-password-link">{path}</code>
                        </p>
                    })}
                </div>
            })}
            </Transition>
        </section>
    }
}

/// The two-factor policy: required for every admin, or each admin's choice.
#[component]
fn TwoFactorPolicy() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let status = crate::codec::resource(
        move || version.get(),
        |_| crate::pages::account::my_two_factor(),
    );
    let set = Action::new(move |required: &bool| set_two_factor_required(*required));
    let error = Signal::derive(move || set.value().get().and_then(Result::err));
    Effect::new(move |_| {
        if let Some(Ok(())) = set.value().get() {
            version.update(|v| *v += 1);
        }
    });
    view! {
        <section class="card" aria-labelledby="policy-heading">
            <h2 id="policy-heading">"Two-factor sign-in"</h2>
            <Transition fallback=|| view! { <p role="status">"Loading…"</p> }>
                {move || status.get().and_then(Result::ok).map(|s| {
                    let required = s.required;
                    view! {
                        <p data-testid="two-factor-policy">
                            {if required {
                                "Required: every admin signs in with an authenticator code. An admin without one sets it up right after their password."
                            } else {
                                "Optional: each admin decides on “Your account”."
                            }}
                        </p>
                        {if required {
                            view! {
                                <form method="post" action=SetTwoFactorRequired::url() on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); set.dispatch(false); }>
                                    <input type="hidden" name="required" value="false"/>
                                    <button type="submit" class="button secondary" disabled=move || set.pending().get()>
                                        "Stop requiring two-factor sign-in"
                                    </button>
                                </form>
                            }.into_any()
                        } else {
                            view! {
                                <details class="act">
                                    <summary class="button secondary">"Require two-factor sign-in for every admin"</summary>
                                    <form class="confirm" method="post" action=SetTwoFactorRequired::url() on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); set.dispatch(true); }
                                        aria-label="Confirm the two-factor requirement">
                                        <input type="hidden" name="required" value="true"/>
                                        <p>"Admins without an authenticator are signed out now and set one up at their next sign-in."</p>
                                        <button type="submit" class="button" disabled=move || set.pending().get()>"Yes, require it"</button>
                                    </form>
                                </details>
                            }.into_any()
                        }}
                    }
                })}
            </Transition>
            {move || error.get().map(|e| view! { <p class="field-error" role="alert">{e.to_string()}</p> })}
        </section>
    }
}
