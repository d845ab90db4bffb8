//! The registered claims a RequestAuthentication rule checks (RFC 7519 §4.1), as Envoy's
//! `jwt_authn` checks them: `iss` must be the rule's issuer exactly; `exp` and `nbf` are
//! optional but, when present, must be numbers and hold within the leeway; `aud` is checked
//! only when the rule lists audiences, and then one of the token's must be among them.
//!
//! These run after the signature has been checked, so a forged token is refused as forged,
//! never as "expired", and nothing unauthenticated is interpreted beyond its JSON shape.

use serde_json::{Map, Value};

use super::error::TokenError;
use super::Expect;

/// Checks the claims of a verified token's payload.
pub(crate) fn check(claims: &Map<String, Value>, expect: &Expect<'_>) -> Result<(), TokenError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expect.issuer => {}
        Some(Value::String(_)) | None => return Err(TokenError::IssuerMismatch),
        Some(_) => return Err(TokenError::Malformed("iss is not a string")),
    }
    if let Some(exp) = claims.get("exp") {
        let exp = numeric_date(exp).ok_or(TokenError::Malformed("exp is not a number"))?;
        if expect.now_unix > exp.saturating_add(expect.leeway_secs) {
            return Err(TokenError::Expired);
        }
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = numeric_date(nbf).ok_or(TokenError::Malformed("nbf is not a number"))?;
        if expect.now_unix.saturating_add(expect.leeway_secs) < nbf {
            return Err(TokenError::NotYetValid);
        }
    }
    if !expect.audiences.is_empty() {
        audience(claims.get("aud"), expect.audiences)?;
    }
    Ok(())
}

/// RFC 7519 §2 NumericDate: seconds since the epoch, possibly fractional. Fractions are cut
/// (at most a second's difference); negative, non-finite or non-numeric values are `None`.
fn numeric_date(v: &Value) -> Option<u64> {
    let Value::Number(n) = v else {
        return None;
    };
    if let Some(secs) = n.as_u64() {
        return Some(secs);
    }
    let secs = n.as_f64()?;
    // `as` saturates: a date beyond u64 seconds is simply "never".
    (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
}

/// `aud` is one string or an array of strings (RFC 7519 §4.1.3); one must be accepted.
fn audience(aud: Option<&Value>, accepted: &[String]) -> Result<(), TokenError> {
    let accepts = |a: &str| accepted.iter().any(|want| want == a);
    let ok = match aud {
        None => false,
        Some(Value::String(a)) => accepts(a),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                // The whole array is checked for shape, so the answer does not depend on
                // where a wrongly typed element sits.
                let a = item
                    .as_str()
                    .ok_or(TokenError::Malformed("aud is not a string or strings"))?;
                found |= accepts(a);
            }
            found
        }
        Some(_) => return Err(TokenError::Malformed("aud is not a string or strings")),
    };
    if ok {
        Ok(())
    } else {
        Err(TokenError::AudienceMismatch)
    }
}
