//! Raw byte echo: used for the TCP ports and for connections handed over by an
//! HTTP Upgrade. Bytes go back as they arrive until the peer half-closes.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::shutdown::Shutdown;

/// Serves one accepted TCP connection.
pub(crate) async fn serve_connection(stream: TcpStream, peer: SocketAddr, shutdown: Shutdown) {
    tracing::debug!(%peer, "echo: tcp connection");
    echo_stream(stream, peer, "tcp", shutdown).await;
}

/// Copies everything read from `io` back to it, then closes its write side.
/// `tokio::io::copy` works through an 8 KiB buffer, so nothing is held beyond that.
/// Ends early when the server closes.
pub(crate) async fn echo_stream<T>(io: T, peer: SocketAddr, what: &'static str, shutdown: Shutdown)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(io);
    let copy = async {
        let n = tokio::io::copy(&mut reader, &mut writer).await?;
        writer.shutdown().await?;
        Ok::<u64, std::io::Error>(n)
    };
    tokio::select! {
        res = copy => match res {
            Ok(bytes) => tracing::debug!(%peer, bytes, "echo: {what} stream done"),
            Err(error) => tracing::debug!(%peer, %error, "echo: {what} stream failed"),
        },
        () = shutdown.closed() => tracing::debug!(%peer, "echo: {what} stream closed by shutdown"),
    }
}
