//! TLS for `acta serve --tls-cert FILE --tls-key FILE`: rustls (TLS 1.2 and 1.3, the ring
//! provider), HTTP/1.1 over it. The certificate file holds the chain in PEM, leaf first; the key
//! file one PEM private key (PKCS#8, PKCS#1 or SEC1).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The acceptor for a certificate chain and its key, checked to belong together.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the certificate `{}`", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("`{}`: not a PEM certificate chain: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("`{}` holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow!("`{}`: no PEM private key: {e}", key.display()))?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            anyhow!("TLS: the certificate and the key do not make a server identity: {e}")
        })?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
