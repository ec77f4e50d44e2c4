//! Where connections come from: TCP by default; the simulator plugs in
//! turmoil's network; [`TlsConnector`] (feature `tls`) adds rustls.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream the client can talk RESP over.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;
/// What [`Connector::connect`] returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send>>;

/// Opens connections to an address.
pub trait Connector: Send + Sync + 'static {
    /// Opens a connection to `addr` (`host:port`).
    fn connect(&self, addr: &str) -> ConnectFuture;
}

/// Plain TCP with Nagle off.
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, addr: &str) -> ConnectFuture {
        let addr = addr.to_string();
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}

#[cfg(feature = "tls")]
pub use tls::TlsConnector;

#[cfg(feature = "tls")]
mod tls {
    use std::io;
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    use super::{BoxStream, ConnectFuture, Connector, TcpConnector};

    /// TLS over TCP (rustls). The server name checked against the
    /// certificate is the host part of the address.
    #[derive(Clone)]
    pub struct TlsConnector {
        config: Arc<ClientConfig>,
    }

    impl TlsConnector {
        /// Uses a rustls client configuration as it is.
        pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
            TlsConnector { config }
        }

        /// Trusts the CA certificates in `ca_file` (PEM) and, if given,
        /// presents `(cert_file, key_file)` as this client's certificate.
        pub fn from_pem_files(ca_file: &str, client: Option<(&str, &str)>) -> io::Result<TlsConnector> {
            let bad = |e: rustls_pki_types::pem::Error| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca_file).map_err(bad)? {
                roots.add(cert.map_err(bad)?).map_err(io::Error::other)?;
            }
            let builder = ClientConfig::builder().with_root_certificates(roots);
            let config = match client {
                None => builder.with_no_client_auth(),
                Some((cert_file, key_file)) => {
                    let certs = CertificateDer::pem_file_iter(cert_file)
                        .map_err(bad)?
                        .collect::<Result<_, _>>()
                        .map_err(bad)?;
                    let key = PrivateKeyDer::from_pem_file(key_file).map_err(bad)?;
                    builder.with_client_auth_cert(certs, key).map_err(io::Error::other)?
                }
            };
            Ok(TlsConnector::new(Arc::new(config)))
        }
    }

    impl Connector for TlsConnector {
        fn connect(&self, addr: &str) -> ConnectFuture {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(['[', ']']).to_string();
            let (tcp, config, addr) = (TcpConnector.connect(addr), self.config.clone(), addr.to_string());
            Box::pin(async move {
                let name = ServerName::try_from(host)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
                let stream = tcp.await?;
                let tls = tokio_rustls::TlsConnector::from(config).connect(name, stream).await?;
                Ok(Box::new(tls) as BoxStream)
            })
        }
    }
}
