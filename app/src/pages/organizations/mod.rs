//! `/organizations`, `/organizations/new`, `/organizations/:id`: listing, creating and acting
//! on organizations. Each page holds its own server functions.

pub mod detail;
pub mod list;
pub mod new;

/// `1234` cents in `EUR` → `€12.34`.
pub fn price(cents: i64, currency: &str) -> String {
    match currency.parse() {
        Ok(currency) => crate::models::Money { cents, currency }.to_string(),
        Err(_) => format!("{cents} {currency}"),
    }
}
