//! The dashboard frame: top bar, sidebar navigation of the pages that exist, and the content.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

/// A page in the sidebar: where it lives and what it is called.
struct NavItem {
    href: &'static str,
    label: &'static str,
}

/// The sidebar, in the spec's order. Only pages that exist are listed.
const NAV: &[NavItem] = &[NavItem {
    href: "/",
    label: "Overview",
}];

/// The dashboard frame around every page.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let (menu_open, set_menu_open) = signal(true);
    let location = use_location();
    // Effects run only in the browser, so this flips once the page is interactive; the
    // end-to-end tests wait for `data-hydrated="true"` before they click.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    view! {
        <div
            class="shell"
            class:menu-collapsed=move || !menu_open.get()
            data-hydrated=move || hydrated.get().to_string()
        >
            <header class="topbar">
                <button
                    type="button"
                    class="menu-toggle"
                    aria-controls="sidebar"
                    aria-expanded=move || menu_open.get().to_string()
                    on:click=move |_| set_menu_open.update(|open| *open = !*open)
                >
                    {move || if menu_open.get() { "Hide menu" } else { "Show menu" }}
                </button>
                <a class="brand" href="/">"Nest"</a>
                <span class="brand-sub">"control plane"</span>
            </header>
            <nav id="sidebar" class="sidebar" aria-label="Main" hidden=move || !menu_open.get()>
                <ul>
                    {NAV
                        .iter()
                        .map(|item| {
                            let href = item.href;
                            let current = move || {
                                let path = location.pathname.get();
                                if href == "/" { path == "/" } else { path.starts_with(href) }
                            };
                            view! {
                                <li>
                                    <A href=href attr:aria-current=move || current().then_some("page")>
                                        {item.label}
                                    </A>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <main class="content" id="main">
                {children()}
            </main>
        </div>
    }
}
