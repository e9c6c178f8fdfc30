//! The browser bundles at versioned URLs: `/assets/<hash>/pkg/<file>`, where the hash is of the
//! files' contents, computed once at start. Each bundle (`app::bundle`) has its directory,
//! `nest/` for the dashboard and `nest-public/` for the public pages, holding its main module
//! (`<name>.js`, `<name>_bg.wasm`) and its lazy routes' files; `nest.css` is shared. Those
//! answers are cached for a year (`immutable`): a new build has a new hash, so a second visit
//! downloads nothing but the HTML, which is never cached (`private, no-cache`, set by the
//! security layer). A file `cargo make build-release` precompressed (`.br`, `.gz`) is sent as it
//! is; others are compressed on the fly by the router's compression layer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use app::bundle::{Bundle, LAZY_MANIFEST, LazyFiles};
use axum::Router;
use axum::http::{HeaderValue, header};
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::App;

/// The files, in `site_root/pkg`, without which no page hydrates: each bundle's main module and
/// the stylesheet.
pub const BUNDLE: [&str; 5] = [
    "nest/nest.js",
    "nest/nest_bg.wasm",
    "nest-public/nest-public.js",
    "nest-public/nest-public_bg.wasm",
    "nest.css",
];

/// How long a versioned file may be cached.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The first 16 hex digits of the SHA-256 of every file in `site_root/pkg` (their paths and
/// contents, precompressed copies aside), or `None` if one of [`BUNDLE`] is missing (no bundle
/// built: pages then load `/pkg/…`, revalidated at every visit).
pub fn version(site_root: &Path) -> Option<String> {
    let pkg = site_root.join("pkg");
    if !BUNDLE.iter().all(|file| pkg.join(file).is_file()) {
        return None;
    }
    let mut files = Vec::new();
    list_files(&pkg, &mut files).ok()?;
    files.retain(|file| {
        !file
            .extension()
            .is_some_and(|extension| extension == "br" || extension == "gz")
    });
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        let bytes = std::fs::read(&file).ok()?;
        let name = file.strip_prefix(&pkg).unwrap_or(&file);
        hash.update(name.to_string_lossy().as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    let mut hex = crate::clock::hex(&hash.finalize());
    hex.truncate(16);
    Some(hex)
}

/// Every file under `dir`, recursively.
fn list_files(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Each bundle's lazy-route files, from the manifests `nest-wasm-split` wrote, for pages to
/// preload; a bundle whose manifest is missing or unreadable has none (its routes' files are
/// then fetched when hydration reaches them), and the reason is logged.
pub fn lazy_files(site_root: &Path, asset_root: &str) -> LazyFiles {
    LazyFiles::new(asset_root, |bundle: Bundle| {
        let path = site_root
            .join("pkg")
            .join(bundle.output_name())
            .join(LAZY_MANIFEST);
        let read = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                serde_json::from_slice::<HashMap<String, Vec<String>>>(&bytes)
                    .map_err(|e| e.to_string())
            });
        match read {
            Ok(files) => Some(files),
            Err(error) => {
                tracing::warn!(manifest = %path.display(), %error, "no lazy-route files to preload for this bundle");
                None
            }
        }
    })
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
    fn the_version_follows_every_bundle_file_and_is_none_without_a_main_module() {
        let dir = std::env::temp_dir().join(format!("nest-assets-{}", crate::clock::random_hex(6)));
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        assert_eq!(version(&dir), None);
        for file in BUNDLE {
            let path = dir.join("pkg").join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file).unwrap();
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
        let changed = version(&dir).unwrap();
        std::fs::write(dir.join("pkg/nest/chunk_1.wasm"), "\0asm").unwrap();
        let chunk_added = version(&dir).unwrap();
        assert_ne!(chunk_added, changed, "a lazy route's file counts");
        std::fs::write(dir.join("pkg/nest/chunk_1.wasm.br"), "br").unwrap();
        assert_eq!(
            version(&dir).unwrap(),
            chunk_added,
            "precompressed copies do not"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
