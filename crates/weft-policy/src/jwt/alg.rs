//! The ring primitive behind each JWS [`Algorithm`]. The algorithms themselves, their names
//! and the kind of key each needs are `weft_api::jwks`'s (shared with the key set parser);
//! only the mapping to ring lives here, where ring is a dependency. The matches list every
//! algorithm, so one added in `weft-api` does not compile here until it has a verifier.

use ring::signature::{self as sig, RsaParameters, VerificationAlgorithm};
use weft_api::jwks::Algorithm;

/// ring's parameters for the RSA algorithms; the 2048-bit floor is ring's and the key set
/// parser applies the same bound, so a key it accepts is one ring will use.
pub(super) fn rsa_params(alg: Algorithm) -> Option<&'static RsaParameters> {
    match alg {
        Algorithm::Rs256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::Rs384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::Rs512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::Ps256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
        Algorithm::Ps384 => Some(&sig::RSA_PSS_2048_8192_SHA384),
        Algorithm::Ps512 => Some(&sig::RSA_PSS_2048_8192_SHA512),
        Algorithm::Es256 | Algorithm::Es384 | Algorithm::EdDsa => None,
    }
}

/// ring's verifier for the algorithms whose key is a byte string (EC point, Ed25519).
/// The `_FIXED` ECDSA variants take `r || s`, which is the JWS signature format.
pub(super) fn raw_key_verifier(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    match alg {
        Algorithm::Es256 => Some(&sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::Es384 => Some(&sig::ECDSA_P384_SHA384_FIXED),
        Algorithm::EdDsa => Some(&sig::ED25519),
        Algorithm::Rs256
        | Algorithm::Rs384
        | Algorithm::Rs512
        | Algorithm::Ps256
        | Algorithm::Ps384
        | Algorithm::Ps512 => None,
    }
}
