//! TLS termination for HTTPS and TLS listeners: rustls with the ring provider, the
//! listener's certificate from PEM.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::LbError;
use crate::plan::CertificatePem;

/// `alpn`: what the listener offers, most preferred first (`h2`, `http/1.1` for HTTPS).
pub(crate) fn acceptor(
    cert: &CertificatePem,
    port: u16,
    alpn: &[&[u8]],
) -> Result<TlsAcceptor, LbError> {
    let err = |message: String| LbError::Certificate { port, message };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.certificate_chain.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| err(format!("certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(err("no certificate in the chain".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(cert.private_key.as_bytes())
        .map_err(|e| err(format!("private key: {e}")))?;
    // ring, not aws-lc (DEPENDENCIES.md). rustls 0.23.48 deprecates ring's provider for its
    // lack of post-quantum key exchange; classical key exchange is what ALB's default
    // security policies offer too.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| err(e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl CertificatePem {
    /// Whether a listener can serve with it (the chain and key parse, the key is the
    /// certificate's): a plan whose certificate cannot be served is refused whole by
    /// `DataPlane::apply`, so the integrator leaves such a listener out first.
    pub fn check(&self) -> Result<(), LbError> {
        acceptor(self, 0, &[]).map(|_| ())
    }
}
