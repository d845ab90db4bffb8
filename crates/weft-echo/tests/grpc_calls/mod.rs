//! gRPC calls to the echo server over h2c: `Echo`/`EchoTwo` answers, the
//! unimplemented `EchoThree`, and the `grpc-echo-status` extension.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use weft_echo::grpc;

use crate::support::{collect, h2, Echo};

fn grpc_request(path: &str) -> http::request::Builder {
    Request::post(format!("http://grpc.echo.test:9000{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
}

fn grpc_body() -> Full<Bytes> {
    Full::new(grpc::encode(&grpc::EchoRequest {}).expect("frame"))
}

#[tokio::test]
async fn grpc_echo_answers_assertions() {
    let echo = Echo::start().await;
    let mut client = h2(echo.http).await;
    for path in [grpc::ECHO_PATH, grpc::ECHO_TWO_PATH] {
        let req = grpc_request(path)
            .header("x-grpc-test", "a")
            .header("x-grpc-test", "b")
            .body(grpc_body())
            .expect("request");
        let resp = client.send_request(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/grpc");
        let collected = resp.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");
        let answer: grpc::EchoResponse = grpc::decode(&collected.to_bytes()).expect("decode");
        let assertions = answer.assertions.expect("assertions");
        assert_eq!(assertions.fully_qualified_method, path);
        assert_eq!(assertions.authority, "grpc.echo.test:9000");
        let values: Vec<&str> = assertions
            .headers
            .iter()
            .filter(|h| h.key == "x-grpc-test")
            .map(|h| h.value.as_str())
            .collect();
        assert_eq!(values, ["a", "b"]);
        assert!(assertions
            .headers
            .iter()
            .any(|h| h.key == "content-type" && h.value == "application/grpc"));
        assert!(!assertions.headers.iter().any(|h| h.key.starts_with(':')));
        let context = assertions.context.expect("context");
        assert_eq!(
            (
                context.namespace.as_str(),
                context.service_name.as_str(),
                context.pod.as_str()
            ),
            ("weft-test", "echo", "echo-0")
        );
    }
    echo.stop().await;
}

#[tokio::test]
async fn grpc_echo_three_is_unimplemented() {
    let echo = Echo::start().await;
    let mut client = h2(echo.http).await;
    for path in [grpc::ECHO_THREE_PATH, "/some.Other/Method"] {
        let req = grpc_request(path).body(grpc_body()).expect("request");
        let (parts, body) = collect(client.send_request(req).await.expect("response")).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(parts.headers["grpc-status"], "12", "{path}");
        assert!(parts.headers.contains_key("grpc-message"));
        assert!(body.is_empty());
    }
    echo.stop().await;
}

#[tokio::test]
async fn grpc_echo_status_header_sets_the_status() {
    let echo = Echo::start().await;
    let mut client = h2(echo.http).await;
    let req = grpc_request(grpc::ECHO_PATH)
        .header("grpc-echo-status", "7")
        .body(grpc_body())
        .expect("request");
    let (parts, _) = collect(client.send_request(req).await.expect("response")).await;
    assert_eq!(parts.headers["grpc-status"], "7");
    echo.stop().await;
}
