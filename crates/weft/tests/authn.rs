//! RequestAuthentication through a real two-hop mesh on loopback: a JWT signed here (Ed25519)
//! is checked by the callee's proxy against the key set given inline. Valid tokens give the
//! request its principal and claims (an AuthorizationPolicy needs them for `/private`);
//! absent ones pass with none; invalid ones (bad signature, `alg: none`, expired, another
//! issuer or audience, oversized) are answered 401 with `weft-error` and never reach the
//! application. Tokens are removed before the application unless forwarded, and claims are
//! copied into headers as the rule says. `weft authz check --jwt-claims` agrees.

mod jwt_support;
mod mesh;
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jwt_support::{now, unsigned, Signer};
use mesh::TestMesh;
use serde_json::json;
use support::{send, WEFT};

const ISSUER: &str = "https://issuer.test";

fn policies(signer: &Signer) -> String {
    let jwks = signer.jwks().replace('"', "\\\"");
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: t}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: t}}
spec:
  jwtRules:
  - issuer: "{ISSUER}"
    audiences: [echo]
    jwks: "{jwks}"
    outputClaimToHeaders: [{{header: x-jwt-sub, claim: sub}}, {{header: x-jwt-team, claim: org.team}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: private-needs-jwt, namespace: t}}
spec:
  rules:
  - to: [{{operation: {{paths: ["/public/*"]}}}}]
  - from: [{{source: {{requestPrincipals: ["{ISSUER}/*"]}}}}]
    to: [{{operation: {{paths: ["/private/*"]}}}}]
    when: [{{key: "request.auth.claims[org][team]", values: [core]}}]
"#
    )
}

struct Answer {
    status: u16,
    weft_error: String,
    body: String,
}

async fn get(mesh: &TestMesh, path: &str, token: Option<&str>) -> Answer {
    let mut req = Request::get(format!("http://echo.t{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(Bytes::new())).expect("request");
    match send(mesh.client(), req, false).await {
        Ok(a) => Answer {
            status: a.status.as_u16(),
            weft_error: a
                .headers
                .get("weft-error")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            body: String::from_utf8_lossy(&a.body).into_owned(),
        },
        Err(e) => Answer {
            status: 0,
            weft_error: e,
            body: String::new(),
        },
    }
}

#[tokio::test]
async fn tokens_are_verified_and_give_requests_their_principal() {
    let signer = Signer::new("k1");
    let mesh = TestMesh::start(86, &policies(&signer), &[]).await;
    let claims = |exp: u64| json!({"iss": ISSUER, "sub": "alice", "aud": ["echo"], "exp": exp, "org": {"team": "core"}});
    let valid = signer.token(&claims(now() + 600));

    // Valid: allowed to /private, the claims in headers, the token not passed on.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ok = loop {
        let a = get(&mesh, "/private/x", Some(&valid)).await;
        if a.status == 200 || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        ok.status,
        200,
        "{} {}\n{}",
        ok.weft_error,
        ok.body,
        mesh.logs()
    );
    let seen: serde_json::Value = serde_json::from_str(&ok.body).expect("echo JSON");
    assert_eq!(seen["headers"]["X-Jwt-Sub"][0], "alice", "{seen}");
    assert_eq!(seen["headers"]["X-Jwt-Team"][0], "core", "{seen}");
    assert!(
        seen["headers"].get("Authorization").is_none(),
        "the token was forwarded: {seen}"
    );
    // The same token in the default query parameter.
    assert_eq!(
        get(&mesh, &format!("/private/x?access_token={valid}"), None)
            .await
            .status,
        200
    );

    // Absent: passes with no principal, so /private is denied (by authorization) and
    // /public allowed.
    let none = get(&mesh, "/private/x", None).await;
    assert_eq!(
        (none.status, none.weft_error.starts_with("denied;")),
        (403, true),
        "{}",
        none.weft_error
    );
    assert_eq!(get(&mesh, "/public/x", None).await.status, 200);

    // Invalid tokens: 401 with the reason, whatever the path.
    let other = Signer::new("k1");
    let cases = [
        ("another key", other.token(&claims(now() + 600))),
        (
            "tampered",
            signer.tampered(
                &claims(now() + 600),
                &json!({"iss": ISSUER, "sub": "mallory", "aud": "echo", "org": {"team": "core"}}),
            ),
        ),
        ("alg none", unsigned(&claims(now() + 600))),
        ("expired", signer.token(&claims(now() - 3600))),
        (
            "wrong audience",
            signer
                .token(&json!({"iss": ISSUER, "sub": "alice", "aud": "other", "exp": now() + 600})),
        ),
        (
            "another issuer",
            signer.token(&json!({"iss": "https://evil.test", "sub": "alice", "aud": "echo"})),
        ),
        ("garbage", "not.a.token".to_string()),
        ("oversized", format!("{}{}", "a".repeat(9000), ".b.c")),
    ];
    for (what, token) in cases {
        for path in ["/private/x", "/public/x"] {
            let a = get(&mesh, path, Some(&token)).await;
            assert_eq!(
                a.status, 401,
                "{what} on {path}: {} {}",
                a.weft_error, a.body
            );
            assert!(
                a.weft_error.starts_with("unauthenticated; "),
                "{what}: `{}`",
                a.weft_error
            );
        }
    }
    // A team the policy does not accept: authenticated, then denied.
    let dev =
        signer.token(&json!({"iss": ISSUER, "sub": "bob", "aud": "echo", "org": {"team": "dev"}}));
    assert_eq!(get(&mesh, "/private/x", Some(&dev)).await.status, 403);

    // `weft authz check` decides the same with the claims given as JSON.
    let dir = mesh.dir.join("config");
    let check = |claims: Option<&str>| {
        let mut args = vec![
            "authz",
            "check",
            "--plaintext",
            "--to",
            "echo.t:80",
            "--path",
            "/private/x",
        ];
        let dir = dir.display().to_string();
        let mut owned = vec!["--config-dir".to_string(), dir];
        if let Some(c) = claims {
            owned.push("--jwt-claims".into());
            owned.push(c.into());
        }
        args.extend(owned.iter().map(String::as_str));
        std::process::Command::new(WEFT)
            .args(&args)
            .output()
            .expect("weft authz check")
            .status
            .code()
    };
    let claims_json =
        format!(r#"{{"iss":"{ISSUER}","sub":"alice","aud":"echo","org":{{"team":"core"}}}}"#);
    assert_eq!(check(Some(&claims_json)), Some(0));
    assert_eq!(check(Some(&claims_json.replace("core", "dev"))), Some(1));
    assert_eq!(check(None), Some(1));
}
