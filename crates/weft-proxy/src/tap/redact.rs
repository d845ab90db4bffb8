//! What a tap may show of a header value: nothing of a credential.
//!
//! A value is replaced by `[redacted]` when its header's name says it carries a secret
//! (`authorization`, `cookie`, anything with `token`, `secret`, `key`, `password`, `session`,
//! `auth` or `credential` in it), or when the value looks like one whatever the name (an
//! HTTP authentication scheme followed by a credential, a JWT). Better to hide a harmless value
//! than to show one secret.

pub const REDACTED: &str = "[redacted]";

const SECRET_NAME_PARTS: [&str; 9] = [
    "auth",
    "cookie",
    "token",
    "secret",
    "key",
    "password",
    "passwd",
    "session",
    "credential",
];

const AUTH_SCHEMES: [&str; 6] = [
    "bearer ",
    "basic ",
    "digest ",
    "negotiate ",
    "aws4-",
    "token ",
];

/// The value to show for header `name` (lowercase, as `http` keeps names).
pub fn value(name: &str, value: &[u8]) -> String {
    if SECRET_NAME_PARTS.iter().any(|part| name.contains(part)) {
        return REDACTED.to_string();
    }
    let text = String::from_utf8_lossy(value);
    if looks_secret(&text) {
        return REDACTED.to_string();
    }
    text.into_owned()
}

fn looks_secret(value: &str) -> bool {
    let lower = value.trim_start().to_ascii_lowercase();
    if AUTH_SCHEMES.iter().any(|s| lower.starts_with(s)) {
        return true;
    }
    // A JWT anywhere in the value: a base64url JSON header (`eyJ`) and three dotted parts.
    value.split([' ', ',', ';', '=']).any(|word| {
        word.starts_with("eyJ")
            && word.split('.').count() == 3
            && word.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    })
}
