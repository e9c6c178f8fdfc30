//! The browser bundles (`nest.js` + `nest_bg.wasm` for the dashboard, `nest-public.js` +
//! `nest-public_bg.wasm` for the public pages, and `nest.css`) at versioned URLs:
//! `/assets/<hash>/pkg/<file>`, where the hash is of the files' contents, computed once at
//! start. Those answers are cached for a year (`immutable`): a new build has a new hash, so a
//! second visit downloads nothing but the HTML, which is never cached (`private, no-cache`, set
//! by the security layer). A file `cargo make build-release` precompressed (`.br`, `.gz`) is sent
//! as it is; others are compressed on the fly by the router's compression layer.

use std::path::Path;

use axum::Router;
use axum::http::{HeaderValue, header};
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::App;

/// The files the version covers, in `site_root/pkg`.
pub const BUNDLE: [&str; 5] = [
    "nest.js",
    "nest_bg.wasm",
    "nest-public.js",
    "nest-public_bg.wasm",
    "nest.css",
];

/// How long a versioned file may be cached.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The first 16 hex digits of the SHA-256 of the bundle's files, or `None` if one is missing
/// (no bundle built: pages then load `/pkg/…`, revalidated at every visit).
pub fn version(site_root: &Path) -> Option<String> {
    let mut hash = Sha256::new();
    for file in BUNDLE {
        let bytes = std::fs::read(site_root.join("pkg").join(file)).ok()?;
        hash.update(file.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    let mut hex = crate::clock::hex(&hash.finalize());
    hex.truncate(16);
    Some(hex)
}

/// The URL prefix of bundle `version`: `/assets/<version>`.
pub fn root(version: &str) -> String {
    format!("/assets/{version}")
}

/// Adds `/assets/<version>/pkg/*` to `router` (an older version's URL falls through to the
/// 404 page).
pub fn routes(router: Router<App>, site_root: &Path, version: &str) -> Router<App> {
    let files = ServeDir::new(site_root.join("pkg"))
        .precompressed_br()
        .precompressed_gzip();
    router.nest_service(
        &format!("{}/pkg", root(version)),
        tower::ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                |response: &axum::http::Response<_>| {
                    response
                        .status()
                        .is_success()
                        .then(|| HeaderValue::from_static(IMMUTABLE))
                },
            ))
            .service(files),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_follows_the_bundles_contents_and_is_none_without_one() {
        let dir = std::env::temp_dir().join(format!("nest-assets-{}", crate::clock::random_hex(6)));
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        assert_eq!(version(&dir), None);
        for file in BUNDLE {
            std::fs::write(dir.join("pkg").join(file), file).unwrap();
        }
        let first = version(&dir).unwrap();
        assert_eq!(first.len(), 16);
        assert_eq!(
            version(&dir).unwrap(),
            first,
            "the same files, the same version"
        );
        std::fs::write(dir.join("pkg/nest.css"), "body {}").unwrap();
        assert_ne!(
            version(&dir).unwrap(),
            first,
            "a changed file, a new version"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
