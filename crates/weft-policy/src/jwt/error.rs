//! Why a token was refused. The `Display` text goes into a `weft-error` response header and
//! the access log, so it is short, fixed wording: it never repeats the token or its claims,
//! and the one piece of client input it may carry (an unsupported `alg` name) is cut down to
//! a few printable ASCII characters first, so a client cannot forge or split headers or log
//! lines through it. [`TokenError::label`] gives the same reason as a bounded metric label.

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than [`super::MAX_TOKEN_BYTES`]; nothing was decoded.
    TooLarge,
    /// Not a compact JWS, or a header or claim of the wrong shape; says which.
    Malformed(&'static str),
    /// An `alg` Weft does not verify (HMAC, ES512, unknown); the name, sanitized.
    UnsupportedAlgorithm(String),
    /// `alg: none` (in any case): an unsigned token.
    AlgorithmNone,
    /// No key in the set has the token's `kid`.
    NoMatchingKey,
    /// Keys with the token's `kid` (or, without a `kid`, any keys) exist, but none is of the
    /// kind the token's `alg` needs or each is pinned to another `alg`.
    KeyTypeMismatch,
    /// Candidate keys were tried and none verified the signature.
    BadSignature,
    /// `exp` (plus leeway) has passed.
    Expired,
    /// `nbf` (less leeway) is still in the future.
    NotYetValid,
    /// `iss` is missing or not the rule's issuer.
    IssuerMismatch,
    /// The rule lists audiences and the token's `aud` names none of them.
    AudienceMismatch,
}

impl TokenError {
    /// A short fixed name for the reason, for metric labels and structured logs.
    pub fn label(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "too_large",
            TokenError::Malformed(_) => "malformed",
            TokenError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            TokenError::AlgorithmNone => "algorithm_none",
            TokenError::NoMatchingKey => "no_matching_key",
            TokenError::KeyTypeMismatch => "key_type_mismatch",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuerMismatch => "issuer_mismatch",
            TokenError::AudienceMismatch => "audience_mismatch",
        }
    }

    /// An [`TokenError::UnsupportedAlgorithm`] for an `alg` taken from a token.
    pub(crate) fn unsupported(alg: &str) -> TokenError {
        TokenError::UnsupportedAlgorithm(sanitize(alg, MAX_ALG_CHARS))
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::TooLarge => f.write_str("JWT too large"),
            TokenError::Malformed(why) => write!(f, "malformed JWT: {why}"),
            TokenError::UnsupportedAlgorithm(alg) => write!(f, "unsupported JWT alg {alg}"),
            TokenError::AlgorithmNone => f.write_str("unsigned JWT (alg none)"),
            TokenError::NoMatchingKey => f.write_str("no JWKS key has the JWT kid"),
            TokenError::KeyTypeMismatch => f.write_str("no JWKS key fits the JWT alg"),
            TokenError::BadSignature => f.write_str("JWT signature does not verify"),
            TokenError::Expired => f.write_str("JWT expired"),
            TokenError::NotYetValid => f.write_str("JWT not yet valid (nbf)"),
            TokenError::IssuerMismatch => f.write_str("JWT issuer not accepted"),
            TokenError::AudienceMismatch => f.write_str("JWT audience not accepted"),
        }
    }
}

impl std::error::Error for TokenError {}

/// How much of a client's `alg` an error repeats: enough to recognise `HS256` or `ES512`,
/// short enough that every message stays under 64 characters.
const MAX_ALG_CHARS: usize = 24;

/// At most `max` characters of `s`, each visible ASCII other than `"` and `\` (which would
/// confuse quoting in logs) or else `?`. The result is a valid header value whatever `s` is.
pub(crate) fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}
