//! The fixed RSA key the tests sign with: 2048 bits, PKCS#8 DER in base64url, made for these
//! tests with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` and
//! `openssl pkcs8 -topk8 -nocrypt -outform DER`. Fixed because ring cannot generate RSA keys;
//! its public JWK (`n`, `e`) is derived from it in code, so the two cannot drift apart.

/// Test-only private key; it protects nothing.
pub(super) const RSA_2048_PKCS8: &str = concat!(
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDWM_AT2oG8tC73pt7ZjeXJsTbwcIr15e1Mvl-0jEkiKaWi",
    "fEteiEiBii2QbAomtXTlzvBimUikeQkP7jU8p1SQaM6lA-acWqSNIWfX5cIyT9fdbmlhGYW1k_KM_S6W3ISR2S6PHZJ_CysU",
    "5-aXZsIf7Q1qDnPzqozBgKeGnzxxl4FebckI4ez4omR_hHtx9B1RE9gkwdG4rhGrZboKn3w0mu8o7brdyJOSbjgKD_njVmho",
    "gnDrbO7v82ZNBck81nT7BB7zdl-GRoshniaHhFK6sks8lDpoJ0dkFQSPMYn4hzAEckQPjpTlio2CRvkQBw_N43bnqqclAUiD",
    "u7UuL60lAgMBAAECggEAKOtIEArcYNeM51tV0_qC7JoxdBITwbC4OcJeVwe7is6o6RbUcQ0YyMJEPQQellFwsNvs2PEOSvki",
    "LYxkWB9hDKsw2p4ZpkG8kIdSppAqHmFZS-AlOlrdS5glLCDLjx82JgR2m_lavHE-PCKmzsJfEClBOELljKVGeUqh9hoiOlKM",
    "9szW3uRrI8mFogMhYanwZ9VrCeLiBDfEZqWzocVTDLiBVre8pv6GBMgkLkojzVMTZzxbHxBM7w8E9uAYre_p22VURdkRqQYa",
    "miyjUDiabfmk5z3SB7caP5Fk2Tm12AwKRjNErHP6SpVsNHpgU8DifsIZ-44RDmjEhzvZ7NMggQKBgQDtO0MDEFs0qCxo69zg",
    "ft1rDvcZs5kQAyM6PC-DEmTAz7zBiYzRkW4LnmvgrKHUjn9CAjISZHquHzS196tlvVyELkdCooVlbfe2zAyM2qrDTEXn-5Z4",
    "bBvaWgePqDcp6o8Uy1WmsN42dPAleO37lsoWP8sbNf2XioUNNn6v0TtsZQKBgQDnJkTckkpBGQCXgMk0JAZORY0ZPu4X0wMy",
    "VpR26_DlyDGDYzf8suMVTfzcqEYjIkuTqv5qisLvs19Ea7Oc4oZob23i9-ncXypY8dlCy0neTuvszOR_sOpkjMEAvo-nuEtD",
    "H2W9XduSHGdaD_DCih0fL9ZwVUz7t9ozwZ8Gg8tRwQKBgAWJzqSxqw9tpavFZeCv1Yd8T_R_puEi0Z24bfuHYGbH8sYp6emy",
    "lXkb97TFEvodYYcu-fBH_D04aUieQZgcdZ54Xh2GIcseaBwSY3CeYkIw86jYzMh-7Z-JXofSC4ek_DYmERfVJTrsO_cD_bpT",
    "6N_gGWPHPOZey4Bld0uvfM2pAoGBALjQsF5r2VMTWpXIMxetdh0_HwIAfv4tiXDGKQ6st4ACARS8UBeMMGToZjVHlkyhLyxy",
    "m9kz-YkOMi3Sr1nRBQabkZDYB_RbYtCbDsuJHxbQo3JCoLA4FDExGWAu_U1s3UBd6krusJCyhTBNboMdSwuUhDBtA5B__8dC",
    "GJRs7DQBAoGBAOQ5pGX6VLaFt8TtD-MZJIKl8Eovbx7h4yxolyaV8aVng-BANWWBjVWvWSNN5IjhhnIQHWB0kx4lC683Lbpm",
    "qymxX8lJwHSkItDHFNmIpH-wwtYVkeugPtxCbyzvzydELIKkLYPN69ddIPJzSpJFOSzsiphTmHfHrOZOgXnMi6J8",);
