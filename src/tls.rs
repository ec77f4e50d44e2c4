//! TLS for the `tls-port` listener (rustls): certificates from PEM files,
//! optional or required client certificates, as Redis' `tls-*` settings.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
pub use tokio_rustls::TlsAcceptor;

/// Redis' `tls-auth-clients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Clients must present a certificate signed by the CA.
    Required,
    /// A certificate, if presented, must be signed by the CA.
    Optional,
    No,
}

impl ClientAuth {
    pub fn parse(text: &str) -> Result<ClientAuth, String> {
        match text.to_ascii_lowercase().as_str() {
            "yes" => Ok(ClientAuth::Required),
            "optional" => Ok(ClientAuth::Optional),
            "no" => Ok(ClientAuth::No),
            _ => Err(format!("tls-auth-clients must be yes, no or optional, not '{text}'")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Required => "yes",
            ClientAuth::Optional => "optional",
            ClientAuth::No => "no",
        }
    }
}

/// Where the TLS listener's certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
    pub ca_cert_file: Option<String>,
    pub auth_clients: ClientAuth,
}

impl TlsSettings {
    /// Loads the files; every failure names the file and the reason.
    pub fn acceptor(&self) -> Result<TlsAcceptor, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|certs| certs.collect())
            .map_err(|e| format!("tls-cert-file {}: {e}", self.cert_file))?;
        let key =
            PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| format!("tls-key-file {}: {e}", self.key_file))?;
        let builder = ServerConfig::builder();
        let builder = match (self.auth_clients, &self.ca_cert_file) {
            (ClientAuth::No, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, \
                            tls-replication or tls-auth-clients are enabled!"
                    .into())
            }
            (auth, Some(ca_file)) => {
                let mut roots = RootCertStore::empty();
                for cert in
                    CertificateDer::pem_file_iter(ca_file).map_err(|e| format!("tls-ca-cert-file {ca_file}: {e}"))?
                {
                    let cert = cert.map_err(|e| format!("tls-ca-cert-file {ca_file}: {e}"))?;
                    roots.add(cert).map_err(|e| format!("tls-ca-cert-file {ca_file}: {e}"))?;
                }
                let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
                let verifier = if auth == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("tls-ca-cert-file: {e}"))?)
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("tls-cert-file/tls-key-file {}: {e}", self.cert_file))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
