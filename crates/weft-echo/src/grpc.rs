//! The gRPC side of the conformance echo server: the messages of
//! `gateway_api_conformance.echo_basic.grpcecho` written by hand with prost's
//! derive (no protoc), the method paths, and gRPC's length-prefixed framing.
//!
//! ```proto
//! service GrpcEcho {
//!   rpc Echo(EchoRequest) returns (EchoResponse);
//!   rpc EchoTwo(EchoRequest) returns (EchoResponse);
//!   rpc EchoThree(EchoRequest) returns (EchoResponse); // never implemented
//! }
//! ```

use bytes::{BufMut, Bytes, BytesMut};

/// Fully qualified name of the service.
pub const SERVICE: &str = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";
/// Request path of `GrpcEcho/Echo`.
pub const ECHO_PATH: &str = "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo";
/// Request path of `GrpcEcho/EchoTwo`.
pub const ECHO_TWO_PATH: &str = "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/EchoTwo";
/// Request path of `GrpcEcho/EchoThree`, which answers `UNIMPLEMENTED` on purpose.
pub const ECHO_THREE_PATH: &str = "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/EchoThree";
/// Largest request message the server accepts (larger: `RESOURCE_EXHAUSTED`).
pub const MAX_MESSAGE_LEN: usize = 1 << 20;
/// Request header (a Weft extension) asking the server to answer with this `grpc-status`.
pub const ECHO_STATUS_HEADER: &str = "grpc-echo-status";

/// Length of the prefix before every message: compressed flag + u32 BE length.
const PREFIX_LEN: usize = 5;

/// One request header as the server received it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Header {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Who answered.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Context {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub ingress: String,
    #[prost(string, tag = "3")]
    pub service_name: String,
    #[prost(string, tag = "4")]
    pub pod: String,
}

/// The TLS connection the request came over (never set: this server speaks plaintext).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TlsAssertions {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub negotiated_protocol: String,
    #[prost(string, tag = "3")]
    pub server_name: String,
    #[prost(string, tag = "4")]
    pub cipher_suite: String,
    #[prost(string, repeated, tag = "5")]
    pub peer_certificates: Vec<String>,
}

/// What the server saw.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Assertions {
    #[prost(string, tag = "1")]
    pub fully_qualified_method: String,
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<Header>,
    #[prost(string, tag = "3")]
    pub authority: String,
    #[prost(message, optional, tag = "4")]
    pub context: Option<Context>,
    #[prost(message, optional, tag = "5")]
    pub tls_assertions: Option<TlsAssertions>,
}

/// The (empty) request of every method.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct EchoRequest {}

/// The answer of `Echo` and `EchoTwo`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EchoResponse {
    #[prost(message, optional, tag = "1")]
    pub assertions: Option<Assertions>,
    #[prost(message, optional, tag = "2")]
    pub request: Option<EchoRequest>,
}

/// Why a gRPC frame could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("gRPC frame truncated: need {needed} bytes, have {have}")]
    Truncated { needed: usize, have: usize },
    #[error("gRPC message is compressed (flag {0}); this server supports no compression")]
    Compressed(u8),
    #[error("gRPC message of {0} bytes is too large")]
    TooLarge(usize),
    #[error("{0} unexpected bytes after the gRPC message")]
    TrailingBytes(usize),
    #[error("gRPC body holds no message")]
    Empty,
    #[error("cannot decode gRPC message: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// Frames `payload` as one uncompressed gRPC message.
pub fn frame(payload: &[u8]) -> Result<Bytes, FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge(payload.len()))?;
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + payload.len());
    buf.put_u8(0);
    buf.put_u32(len);
    buf.put_slice(payload);
    Ok(buf.freeze())
}

/// Encodes and frames `msg`.
pub fn encode<M: prost::Message>(msg: &M) -> Result<Bytes, FrameError> {
    frame(&msg.encode_to_vec())
}

/// Splits the first framed message off `buf`: returns (message, rest).
pub fn unframe(buf: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    let Some((prefix, rest)) = buf.split_first_chunk::<PREFIX_LEN>() else {
        return Err(FrameError::Truncated {
            needed: PREFIX_LEN,
            have: buf.len(),
        });
    };
    if prefix[0] != 0 {
        return Err(FrameError::Compressed(prefix[0]));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if rest.len() < len {
        return Err(FrameError::Truncated {
            needed: PREFIX_LEN + len,
            have: buf.len(),
        });
    }
    Ok(rest.split_at(len))
}

/// Decodes a unary body: exactly one framed message and nothing after it.
pub fn decode<M: prost::Message + Default>(buf: &[u8]) -> Result<M, FrameError> {
    if buf.is_empty() {
        return Err(FrameError::Empty);
    }
    let (msg, rest) = unframe(buf)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(M::decode(msg)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let resp = EchoResponse {
            assertions: Some(Assertions {
                fully_qualified_method: ECHO_PATH.into(),
                headers: vec![Header {
                    key: "x".into(),
                    value: "y".into(),
                }],
                authority: "echo:80".into(),
                context: Some(Context {
                    namespace: "ns".into(),
                    ..Context::default()
                }),
                tls_assertions: None,
            }),
            request: Some(EchoRequest {}),
        };
        let framed = encode(&resp).expect("frame");
        assert_eq!(framed[0], 0);
        assert_eq!(decode::<EchoResponse>(&framed).expect("decode"), resp);
    }

    #[test]
    fn rejects_bad_frames() {
        assert!(matches!(decode::<EchoRequest>(&[]), Err(FrameError::Empty)));
        assert!(matches!(
            decode::<EchoRequest>(&[0, 0, 0]),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            decode::<EchoRequest>(&[0, 0, 0, 0, 9, 1]),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            decode::<EchoRequest>(&[1, 0, 0, 0, 0]),
            Err(FrameError::Compressed(1))
        ));
        assert!(matches!(
            decode::<EchoRequest>(&[0, 0, 0, 0, 0, 7]),
            Err(FrameError::TrailingBytes(1))
        ));
        assert!(matches!(
            decode::<EchoRequest>(&[0, 0, 0, 0, 1, 0xff]),
            Err(FrameError::Decode(_))
        ));
    }
}
