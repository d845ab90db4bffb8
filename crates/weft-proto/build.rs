//! Generates the Rust types and gRPC stubs of Weft's own `.proto` files with a vendored
//! `protoc`, so a build needs nothing installed. Envoy's discovery API comes pre-generated
//! from `envoy-types`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Only this build script's process reads it: prost-build looks for `PROTOC`.
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .compile_protos(
            &[
                "proto/weft/v1/identity.proto",
                "proto/weft/v1/resources.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
