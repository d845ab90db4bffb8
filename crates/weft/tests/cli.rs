//! The `weft` command line: `validate` output and exit codes, and `proxy` refusing to start
//! on a configuration it cannot use or an address it cannot bind, with messages that say what
//! to fix.

use std::path::Path;
use std::process::Command;

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(WEFT).args(args).output().expect("run weft");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_summarises_a_valid_mesh() {
    let dir = examples().join("quickstart");
    let (code, stdout, stderr) = run(&["validate", &dir.display().to_string()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("valid"), "{stdout}");
    assert!(stdout.contains("service shop/reviews vip"), "{stdout}");
    assert!(
        stdout.contains("port 9080: HTTPRoute shop/reviews-canary"),
        "{stdout}"
    );
    assert!(
        stdout.contains("workload shop/client at 127.0.50.1"),
        "{stdout}"
    );
}

#[test]
fn validate_reports_every_error_with_file_line_and_field() {
    let dir = examples().join("broken");
    let (code, _, stderr) = run(&["validate", &dir.display().to_string()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("route.yaml:17: error: HTTPRoute shop/reviews: spec.rules[0].matches[0].headres: unknown field `headres`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("route.yaml:29: error: HTTPRoute shop/reviews-canary: spec.rules[0].backendRefs[1].name: Service shop/reviews-v2 does not exist"),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn proxy_refuses_an_invalid_configuration() {
    let dir = examples().join("broken");
    let (code, _, stderr) = run(&[
        "proxy",
        "--config-dir",
        &dir.display().to_string(),
        "--outbound-addr",
        "127.0.0.1:0",
        "--inbound-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "an error exits 2");
    assert!(
        stderr.contains("is invalid") && stderr.contains("route.yaml:17"),
        "{stderr}"
    );
}

#[test]
fn proxy_names_an_unknown_workload_and_a_busy_address() {
    let dir = examples().join("quickstart").display().to_string();
    let (code, _, stderr) = run(&[
        "proxy",
        "--config-dir",
        &dir,
        "--workload",
        "nope",
        "--namespace",
        "shop",
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "an error exits 2");
    assert!(
        stderr.contains("no WorkloadEntry named `nope` in namespace `shop`")
            && stderr.contains("shop/client"),
        "{stderr}"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let (code, _, stderr) = run(&[
        "proxy",
        "--config-dir",
        &dir,
        "--outbound-addr",
        &addr,
        "--inbound-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "an error exits 2");
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (outbound)")),
        "{stderr}"
    );
}

#[test]
fn echo_names_an_address_it_cannot_bind() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let (code, _, stderr) = run(&["echo", "--http", &addr]);
    assert_eq!(code, 2, "an error exits 2");
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn validate_answers_in_json_for_scripts() {
    let dir = examples().join("broken");
    let (code, stdout, _) = run(&["validate", "-o", "json", &dir.display().to_string()]);
    assert_eq!(code, 1, "invalid: the answer is no");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["line"] == 17
            && e["field"] == "spec.rules[0].matches[0].headres"
            && e["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("route.yaml"))),
        "{v:#}"
    );
    let (code, stdout, _) = run(&[
        "validate",
        "-o",
        "json",
        &examples().join("shop").display().to_string(),
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v["valid"], true);
    assert!(
        v["services"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "shop/reviews")),
        "{v:#}"
    );
}

#[test]
fn help_documents_exit_codes_and_completions_cover_every_command() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "Exit codes:",
        "0  success",
        "1  the answer is \"no\"",
        "2  usage error",
        "WEFT_CONTROL",
    ] {
        assert!(stdout.contains(needle), "{needle} in --help:\n{stdout}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, stderr) = run(&["completions", shell]);
        assert_eq!(code, 0, "{stderr}");
        for command in ["proxy-config", "stat", "tap", "check", "--control"] {
            assert!(
                stdout.contains(command),
                "{shell} completions lack {command}"
            );
        }
    }
    // A usage error exits 2, as documented.
    let (code, _, _) = run(&["stat", "--window", "soon"]);
    assert_eq!(code, 2);
}
