//! Fuzzes what RequestAuthentication reads from a request and a configuration: a JWT
//! (`weft_policy::jwt::unverified_issuer` and `verify` against a fixed key set, with and
//! without audiences) and a JSON Web Key Set (`weft_api::jwks` parsing, as a validator, the
//! control plane's fetcher and a proxy each do). Checks: nothing panics, whatever the bytes
//! (the verifier bounds its work: an oversized token is refused before it is decoded).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weft_policy::jwt::fuzz_token(data);
    weft_policy::jwt::fuzz_jwks(data);
});
