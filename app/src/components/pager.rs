//! Links of paginated, filtered lists: the current filters kept in the URL, plus a cursor.

use leptos_router::params::ParamsMap;

use crate::auth::encode_component;

/// `base?k=v&…&after=cursor` with the non-empty `keys` of `params` (in that order) and the
/// cursor, or just `base`.
pub fn page_link(base: &str, params: &ParamsMap, keys: &[&str], after: Option<&str>) -> String {
    let mut parts: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            params
                .get(k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode_component(&v)))
        })
        .collect();
    if let Some(a) = after {
        parts.push(format!("after={}", encode_component(a)));
    }
    if parts.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", parts.join("&"))
    }
}

/// Whether any of `keys` is set (non-empty) in `params`: an empty list is then "no match", not
/// "nothing yet".
pub fn is_filtered(params: &ParamsMap, keys: &[&str]) -> bool {
    keys.iter()
        .any(|k| params.get(k).is_some_and(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&'static str, &str)]) -> ParamsMap {
        let mut map = ParamsMap::new();
        for (k, v) in pairs {
            map.insert(*k, (*v).to_owned());
        }
        map
    }

    #[test]
    fn a_page_link_keeps_the_filters_and_adds_the_cursor() {
        let p = params(&[("q", "a b"), ("status", ""), ("region", "fsn1")]);
        assert_eq!(
            page_link("/vpses", &p, &["q", "status", "region"], Some("42")),
            "/vpses?q=a%20b&region=fsn1&after=42"
        );
        assert_eq!(page_link("/vpses", &params(&[]), &["q"], None), "/vpses");
    }

    #[test]
    fn only_non_empty_filters_count_as_filtering() {
        assert!(!is_filtered(&params(&[("q", "")]), &["q"]));
        assert!(is_filtered(&params(&[("q", "x")]), &["q"]));
    }
}
