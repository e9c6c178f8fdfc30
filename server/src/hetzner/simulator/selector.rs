//! Hetzner's label selectors (Kubernetes' syntax): `k=v`, `k==v`, `k!=v`, `k`, `!k`,
//! `k in (a,b)`, `k notin (a,b)`, joined by commas (a comma inside parentheses belongs to its
//! set); every requirement must hold.

use std::collections::BTreeMap;
use std::str::FromStr;

/// Why a selector does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector: {0}")]
pub struct SelectorError(String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    Absent(String),
    Equals(String, String),
    Differs(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

fn key(text: &str) -> Result<String, SelectorError> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text.len() <= 317
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(SelectorError(format!("bad key `{text}`")))
    }
}

fn value(text: &str) -> Result<String, SelectorError> {
    let text = text.trim();
    let valid = text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(SelectorError(format!("bad value `{text}`")))
    }
}

/// Splits on the commas outside parentheses.
fn terms(text: &str) -> Result<Vec<&str>, SelectorError> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0u32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| SelectorError("unbalanced `)`".to_owned()))?;
            }
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError("unbalanced `(`".to_owned()));
    }
    out.push(&text[start..]);
    Ok(out)
}

fn set(text: &str) -> Result<Vec<String>, SelectorError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| SelectorError(format!("a set is `(a,b)`, not `{}`", text.trim())))?;
    inner.split(',').map(value).collect()
}

fn requirement(term: &str) -> Result<Requirement, SelectorError> {
    let term = term.trim();
    if let Some(rest) = term.strip_prefix('!') {
        return Ok(Requirement::Absent(key(rest)?));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement::Differs(key(k)?, value(v)?));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(key(k)?, value(v)?));
    }
    if let Some(at) = term.find(|c: char| c.is_whitespace() || c == '(') {
        let (k, rest) = term.split_at(at);
        let rest = rest.trim_start();
        if let Some(list) = rest.strip_prefix("notin") {
            return Ok(Requirement::NotIn(key(k)?, set(list)?));
        }
        if let Some(list) = rest.strip_prefix("in") {
            return Ok(Requirement::In(key(k)?, set(list)?));
        }
        return Err(SelectorError(format!("cannot read `{term}`")));
    }
    Ok(Requirement::Exists(key(term)?))
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Ok(Self(Vec::new()));
        }
        terms(text)?
            .into_iter()
            .map(requirement)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl Selector {
    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::Differs(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn hits(selector: &str, l: &BTreeMap<String, String>) -> bool {
        selector.parse::<Selector>().unwrap().matches(l)
    }

    #[test]
    fn every_operator_of_the_syntax_selects_as_hetzner_documents() {
        let web = labels(&[("env", "prod"), ("role", "web")]);
        let bare = labels(&[("env", "dev")]);
        assert!(hits("env=prod", &web) && !hits("env=prod", &bare));
        assert!(hits("env==prod", &web) && !hits("env==prod", &bare));
        assert!(!hits("env!=prod", &web) && hits("env!=prod", &bare));
        assert!(
            hits("role!=db", &bare),
            "an absent label differs from any value"
        );
        assert!(hits("role", &web) && !hits("role", &bare));
        assert!(!hits("!role", &web) && hits("!role", &bare));
        assert!(hits("env in (prod,staging)", &web) && !hits("env in (prod, staging)", &bare));
        assert!(!hits("env notin (prod,staging)", &web) && hits("env notin (prod)", &bare));
        assert!(hits("role notin (db)", &bare));
        assert!(hits("", &bare));
    }

    #[test]
    fn commas_inside_parentheses_do_not_split_requirements() {
        let web = labels(&[("env", "prod"), ("role", "web")]);
        assert!(hits("env in (dev,prod),role=web", &web));
        assert!(hits("role in (db,web), env notin (dev,test), !gone", &web));
        assert!(!hits("env in (dev,prod),role=db", &web));
    }

    #[test]
    fn malformed_selectors_are_refused() {
        for bad in [
            "env in (a,b",
            "env in a,b)",
            "env in a",
            "=x",
            "env=a b",
            "env flies (a)",
            ",",
        ] {
            assert!(bad.parse::<Selector>().is_err(), "{bad}");
        }
    }
}
