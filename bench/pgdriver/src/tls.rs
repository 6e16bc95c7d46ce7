//! The rustls client configuration that trusts scripts/pg.sh's CA (target/pg/ca.pem), for
//! postgres and tokio-postgres (sqlx reads the CA itself).

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

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
