//! The request a setup is measured with: `GET <path>` with a `Host` and, for the setups that
//! need them (weft-2-authz: a bearer token and a tenant header), extra header fields. The
//! load generator sends it on every request and the readiness probes send the same, so a
//! setup is only measured once the request it will be measured with gets a 200.

/// `GET path` with `Host: host` and `headers`, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestShape {
    pub host: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl RequestShape {
    /// `GET /` with only `Host`: what every setup but weft-2-authz sends.
    pub fn plain(host: &str) -> RequestShape {
        RequestShape {
            host: host.to_string(),
            path: "/".to_string(),
            headers: Vec::new(),
        }
    }

    /// The same request without the header field `name` (case-insensitive).
    pub fn without(&self, name: &str) -> RequestShape {
        let mut shape = self.clone();
        shape.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        shape
    }

    /// The same request with the header field `name` set to `value` (replacing it).
    pub fn with(&self, name: &str, value: &str) -> RequestShape {
        let mut shape = self.without(name);
        shape.headers.push((name.to_string(), value.to_string()));
        shape
    }

    /// The HTTP/1.1 request head, ending the connection after the response (for the
    /// blocking probes, which read one response and close).
    pub fn head_closing(&self) -> String {
        let mut head = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", self.path, self.host);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_the_extra_fields_in_order() {
        assert_eq!(
            RequestShape::plain("bench").head_closing(),
            "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
        );
        let shape = RequestShape {
            host: "backend.bench:8080".to_string(),
            path: "/api/v1/orders/42".to_string(),
            headers: vec![
                ("authorization".to_string(), "Bearer t".to_string()),
                ("x-tenant".to_string(), "acme".to_string()),
            ],
        };
        assert_eq!(
            shape.head_closing(),
            "GET /api/v1/orders/42 HTTP/1.1\r\nHost: backend.bench:8080\r\n\
             authorization: Bearer t\r\nx-tenant: acme\r\nConnection: close\r\n\r\n"
        );
        let swapped = shape.with("Authorization", "Bearer u");
        assert_eq!(
            swapped.headers,
            vec![
                ("x-tenant".to_string(), "acme".to_string()),
                ("Authorization".to_string(), "Bearer u".to_string()),
            ]
        );
        assert_eq!(shape.without("AUTHORIZATION").headers.len(), 1);
    }
}
