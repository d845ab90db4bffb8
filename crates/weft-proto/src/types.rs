//! Type URLs of Weft's resources and the (de)coding of their payloads.

use prost::Message;

use crate::weft::{ProxyConfig, ServiceConfig, WorkloadConfig};
use crate::xds::Any;

/// The version of the JSON shape inside a resource's `view`. A proxy NACKs a schema it does
/// not know instead of misreading it.
pub const SCHEMA: u32 = 1;

pub const PROXY_CONFIG: &str = "type.googleapis.com/weft.v1.ProxyConfig";
pub const SERVICE_CONFIG: &str = "type.googleapis.com/weft.v1.ServiceConfig";
pub const WORKLOAD_CONFIG: &str = "type.googleapis.com/weft.v1.WorkloadConfig";

/// Every type a proxy subscribes to, in the order it subscribes.
pub const ALL: [&str; 3] = [PROXY_CONFIG, SERVICE_CONFIG, WORKLOAD_CONFIG];

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("resource has type {found}, expected {expected}")]
    WrongType {
        found: String,
        expected: &'static str,
    },
    #[error("resource payload is not a valid {what} message: {source}")]
    Protobuf {
        what: &'static str,
        source: prost::DecodeError,
    },
    #[error("resource schema {found} is not supported (this proxy reads schema {SCHEMA})")]
    Schema { found: u32 },
}

/// Wraps an encoded message in an `Any` of the given type.
pub fn to_any(type_url: &str, message: &impl Message) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: message.encode_to_vec(),
    }
}

/// Decodes one of the payload messages into its (schema, view).
fn payload<M: Message + Default>(
    bytes: &[u8],
    what: &'static str,
    parts: fn(M) -> (u32, Vec<u8>),
) -> Result<(u32, Vec<u8>), DecodeError> {
    M::decode(bytes)
        .map(parts)
        .map_err(|source| DecodeError::Protobuf { what, source })
}

/// A `view` payload of the given type, checked for type and schema.
pub fn view_of(any: &Any, expected: &'static str) -> Result<Vec<u8>, DecodeError> {
    if any.type_url != expected {
        return Err(DecodeError::WrongType {
            found: any.type_url.clone(),
            expected,
        });
    }
    let bytes = any.value.as_slice();
    let (schema, view) = match expected {
        PROXY_CONFIG => payload(bytes, "ProxyConfig", |m: ProxyConfig| (m.schema, m.view))?,
        SERVICE_CONFIG => payload(bytes, "ServiceConfig", |m: ServiceConfig| {
            (m.schema, m.view)
        })?,
        _ => payload(bytes, "WorkloadConfig", |m: WorkloadConfig| {
            (m.schema, m.view)
        })?,
    };
    if schema != SCHEMA {
        return Err(DecodeError::Schema { found: schema });
    }
    Ok(view)
}

/// The control plane serves as `spiffe://<trust-domain>/ns/weft-system/sa/weft-control`.
pub const CONTROL_NAMESPACE: &str = "weft-system";
pub const CONTROL_SERVICE_ACCOUNT: &str = "weft-control";
