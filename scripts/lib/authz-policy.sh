# Sourced by scripts/count-instructions.sh and scripts/lib/training.sh: policy on the callee
# of the loopback mesh (scripts/lib/loopback-mesh.sh), as a service owner writes it.
#
#   authz_policy_init DIR   # DIR: a copy of $work/mesh plus policy.yaml; sets $token
#
# The policy: a RequestAuthentication with an inline Ed25519 key made with openssl for this
# run (so no private key is committed), a DENY policy of 2 rules and an ALLOW policy of 18.
# `GET /item/N` with `Authorization: Bearer $token` matches no DENY rule and only the last
# ALLOW rule, so it walks all 20; without the token it is refused (403).

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

authz_policy_init() {
  local dir=$1 x claims signed
  openssl genpkey -algorithm ed25519 -out "$work/jwt.pem" 2>/dev/null
  x=$(openssl pkey -in "$work/jwt.pem" -pubout -outform DER | tail -c 32 | b64url)
  claims=$(printf '{"iss":"https://issuer.prof","sub":"bench","aud":"echo","scope":"read write","exp":%d}' $(( $(date +%s) + 3600 )))
  signed="$(printf '{"alg":"EdDSA","kid":"k1"}' | b64url).$(printf '%s' "$claims" | b64url)"
  printf '%s' "$signed" >"$work/jwt.in"  # EdDSA signs in one shot: a file, not a pipe
  token="$signed.$(openssl pkeyutl -sign -inkey "$work/jwt.pem" -rawin -in "$work/jwt.in" | b64url)"
  mkdir -p "$dir"
  cp "$work/mesh/mesh.yaml" "$dir/"
  cat >"$dir/policy.yaml" <<YAML
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: prof}
spec:
  selector: {matchLabels: {app: echo}}
  jwtRules:
  - issuer: https://issuer.prof
    audiences: [echo]
    jwks: '{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"$x"}]}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: prof}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin/*", "/debug/{**}"]}}]
  - when: [{key: "request.headers[x-block]", values: ["*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: prof}
spec:
  selector: {matchLabels: {app: echo}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/prof/sa/frontend"]}}]
  - from: [{source: {namespaces: [billing]}}]
  - from: [{source: {serviceAccounts: [prof/ops]}}]
  - to: [{operation: {methods: [POST], paths: ["/orders/*"]}}]
  - to: [{operation: {methods: [PUT, PATCH]}}]
  - to: [{operation: {hosts: ["admin.prof", "admin.prof:*"]}}]
  - to: [{operation: {ports: ["9090"]}}]
  - to: [{operation: {paths: ["/api/{*}/export"]}}]
  - from: [{source: {ipBlocks: [10.9.0.0/16]}}]
  - from: [{source: {requestPrincipals: ["https://other.issuer/*"]}}]
  - when: [{key: "request.headers[x-tenant]", values: [globex]}]
  - when: [{key: "request.auth.claims[groups]", values: [admins]}]
  - to: [{operation: {paths: ["/health", "/ready"]}}]
  - to: [{operation: {methods: [DELETE]}}]
  - from: [{source: {namespaces: ["staging-*"]}}]
  - to: [{operation: {paths: ["*.css", "*.js"]}}]
  - when: [{key: destination.port, values: ["9999"]}]
  - from: [{source: {requestPrincipals: ["https://issuer.prof/*"]}}]
    to: [{operation: {methods: [GET], paths: ["/item/{*}"]}}]
    when: [{key: "request.auth.claims[scope]", values: [read]}]
YAML
}
