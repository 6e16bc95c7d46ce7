//! The rustls client configuration that trusts scripts/pg.sh's CA (target/pg/ca.pem).

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

#[allow(dead_code)] // unused when only sqlx is built (it reads the CA itself)
pub fn client_config(ca: &Path) -> Result<rustls::ClientConfig, crate::BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    // ring, as scimgate's own TLS uses (rustls 0.23.48 deprecates it for lacking post-quantum
    // key exchange; irrelevant to a comparison of drivers).
    #[expect(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
