//! The match forms, as Istio documents them.

use super::*;

#[test]
fn string_forms() {
    let m = |p: &str, v: &str| StringMatch::parse(p).expect(p).matches(v);
    assert!(m("GET", "GET") && !m("GET", "GETX") && !m("GET", "get"));
    assert!(m("/api*", "/api") && m("/api*", "/api/x") && !m("/api*", "/ap"));
    assert!(m("*.txt", "a.txt") && m("*.txt", ".txt") && !m("*.txt", "a.txt2"));
    assert!(m("*", "x") && !m("*", ""));
    assert!(StringMatch::parse("").is_err());
    let host = StringMatch::parse("Example.COM").expect("host");
    assert!(host.matches_ignore_case("example.com") && !host.matches("example.com"));
    let suffix = StringMatch::parse("*.Example.com").expect("suffix");
    assert!(suffix.matches_ignore_case("api.EXAMPLE.com"));
    assert!(!suffix.matches_ignore_case("com"));
    for p in ["GET", "/api*", "*.txt", "*"] {
        assert_eq!(StringMatch::parse(p).expect(p).to_string(), p);
    }
}

#[test]
fn path_templates() {
    let m = |p: &str, v: &str| PathMatch::parse(p).expect(p).matches(v);
    assert!(m("/foo/{*}", "/foo/bar"));
    assert!(!m("/foo/{*}", "/foo/bar/baz"));
    assert!(!m("/foo/{*}", "/foo/"));
    assert!(!m("/foo/{*}", "/foo"));
    assert!(m("/foo/{**}/", "/foo/bar/"));
    assert!(m("/foo/{**}/", "/foo//"));
    assert!(!m("/foo/{**}/", "/foo/bar"));
    assert!(m("/foo/{*}/bar/{**}", "/foo/buzz/bar/"));
    assert!(m("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz"));
    assert!(m("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz/qux"));
    assert!(!m("/foo/{*}/bar/{**}", "/foo/buzz/baz/x"));
    assert!(m("/{**}", "/") && m("/{**}", "/a/b/c"));
    assert!(m("/api/{*}/read", "/api/v1/read") && !m("/api/{*}/read", "/api/v1/write"));
    // Without braces a path is a string form: `/api/*` is a prefix.
    assert!(m("/api/*", "/api/a/b/c"));
    for bad in [
        "/*/baz/{*}",
        "/**/baz/{*}",
        "/{**}/foo/{*}",
        "/foo/{*}.txt",
        "/foo/{x}",
        "/foo/{x=*}",
        "/foo/{}",
        "/{**}/{**}",
        "foo/{*}",
    ] {
        assert!(PathMatch::parse(bad).is_err(), "{bad} should be refused");
    }
    for p in ["/foo/{*}", "/foo/{*}/bar/{**}", "/foo/{**}/"] {
        assert_eq!(PathMatch::parse(p).expect(p).to_string(), p);
    }
}

#[test]
fn ip_blocks() {
    let b = |s: &str| IpBlock::parse(s).expect(s);
    assert!(b("10.0.0.0/8").contains("10.2.3.4".parse().expect("ip")));
    assert!(!b("10.0.0.0/8").contains("11.2.3.4".parse().expect("ip")));
    assert!(b("10.1.2.3").contains("10.1.2.3".parse().expect("ip")));
    assert!(!b("10.1.2.3").contains("10.1.2.4".parse().expect("ip")));
    assert!(b("0.0.0.0/0").contains("192.0.2.1".parse().expect("ip")));
    assert!(b("2001:db8::/32").contains("2001:db8::1".parse().expect("ip")));
    assert!(!b("2001:db8::/32").contains("10.0.0.1".parse().expect("ip")));
    // An IPv4 client on an IPv6 socket.
    assert!(b("10.0.0.0/8").contains("::ffff:10.0.0.1".parse().expect("ip")));
    for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::/129", ""] {
        assert!(IpBlock::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn condition_keys() {
    use ConditionKey::*;
    let ok = |k: &str| ConditionKey::parse(k).unwrap_or_else(|e| panic!("{k}: {e}"));
    assert_eq!(
        ok("request.headers[X-Token]"),
        RequestHeader("x-token".into())
    );
    assert_eq!(
        ok("request.auth.claims[groups]"),
        RequestAuthClaim(vec!["groups".into()])
    );
    assert_eq!(
        ok("request.auth.claims[a][b]"),
        RequestAuthClaim(vec!["a".into(), "b".into()])
    );
    assert_eq!(ok("source.ip"), SourceIp);
    assert_eq!(ok("destination.port"), DestinationPort);
    assert!(ok("request.auth.principal").is_http() && !ok("source.principal").is_http());
    for bad in [
        "request.headers",
        "request.headers[]",
        "request.headers[a b]",
        "request.auth.claims",
        "request.auth.claims[]",
        "request.auth.claims[a]b",
        "destination.labels[app]",
        "destination.namespace",
        "experimental.envoy.filters.network.mysql_proxy[db.table]",
        "source.user",
    ] {
        assert!(ConditionKey::parse(bad).is_err(), "{bad}");
    }
}
