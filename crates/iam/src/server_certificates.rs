//! IAM server certificates (what HTTPS and TLS listeners of load balancers present):
//! UploadServerCertificate, GetServerCertificate, ListServerCertificates,
//! UpdateServerCertificate, DeleteServerCertificate. The body and chain are PEM
//! certificates; the private key is sealed at rest with the installation's data key
//! (`berth_kms`), bound to the certificate's id, and never shown (only the data plane
//! opens it, [`Iam::server_certificate_key`]).

use berth_store::{Compare, Op, TxnOutcome};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::users::{check_name, check_path};
use crate::{Iam, IamError, Result, decode, encode, now_epoch};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCertificate {
    pub path: String,
    pub server_certificate_name: String,
    pub server_certificate_id: String,
    pub arn: String,
    pub upload_date: f64,
    /// The certificate's `notAfter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<f64>,
    pub certificate_body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_chain: Option<String>,
    /// The private key, sealed (`berth_kms`), bound to `server_certificate_id`.
    pub sealed_private_key: String,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// UploadServerCertificate's request.
#[derive(Clone, Default)]
pub struct UploadServerCertificate {
    pub name: String,
    pub path: Option<String>,
    pub certificate_body: String,
    pub private_key: String,
    pub certificate_chain: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl std::fmt::Debug for UploadServerCertificate {
    // The private key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadServerCertificate")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn key_of(account: &str, name: &str) -> String {
    format!(
        "iam/{account}/server-certificates/{}",
        name.to_ascii_lowercase()
    )
}

fn no_such(name: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "The Server Certificate with name {name} cannot be found."
    ))
}

fn malformed(what: &str) -> IamError {
    IamError::MalformedCertificate(format!(
        "Unable to parse {what}. Please ensure the {what} is in PEM format."
    ))
}

/// The DER certificates of a PEM text (at least one).
fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| malformed(what))?;
    if certs.is_empty() {
        return Err(malformed(what));
    }
    Ok(certs)
}

/// One DER element: its tag, its content, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        (
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize),
            2 + n,
        )
    };
    let content = input.get(header..header + len)?;
    Some((tag, content, &input[header + len..]))
}

/// An X.509 certificate's `notAfter` (Certificate → tbsCertificate → validity), as epoch
/// seconds: read from the DER by hand, as no X.509 parser is in the tree.
fn not_after(der: &[u8]) -> Option<f64> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, when present.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    rest = tlv(rest)?.2; // serialNumber
    rest = tlv(rest)?.2; // signature
    rest = tlv(rest)?.2; // issuer
    let (_, validity, _) = tlv(rest)?;
    let after = tlv(validity)?.2;
    let (tag, text, _) = tlv(after)?;
    let text = std::str::from_utf8(text).ok()?;
    let digits = |s: &str| s.parse::<i32>().ok();
    let (year, rest) = match tag {
        0x17 => {
            let yy = digits(text.get(0..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (digits(text.get(0..4)?)?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| rest.get(i..i + 2).and_then(digits);
    let month = time::Month::try_from(u8::try_from(field(0)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(field(2)?).ok()?).ok()?;
    let at = date
        .with_hms(
            u8::try_from(field(4)?).ok()?,
            u8::try_from(field(6)?).ok()?,
            u8::try_from(field(8)?).ok()?,
        )
        .ok()?;
    Some(at.assume_utc().unix_timestamp() as f64)
}

/// A server certificate's id: `ASCA` and 17 more characters, as IAM makes them.
fn certificate_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let mut id = String::from("ASCA");
    while id.len() < 21 {
        id.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    id
}

impl Iam {
    /// UploadServerCertificate: the body and chain must be PEM certificates and the key a
    /// PEM private key.
    pub fn upload_server_certificate(
        &self,
        account: &str,
        req: UploadServerCertificate,
    ) -> Result<ServerCertificate> {
        check_name("serverCertificateName", &req.name, 128)?;
        let path = req.path.clone().unwrap_or_else(|| "/".into());
        check_path(&path)?;
        let body = certificates(&req.certificate_body, "certificate")?;
        if body.len() != 1 {
            return Err(IamError::MalformedCertificate(
                "The certificate body must hold exactly one certificate.".into(),
            ));
        }
        if let Some(chain) = &req.certificate_chain {
            certificates(chain, "certificate chain")?;
        }
        PrivateKeyDer::from_pem_slice(req.private_key.as_bytes())
            .map_err(|_| malformed("private key"))?;
        let data_key = self.data_key.as_ref().ok_or_else(|| {
            IamError::Corrupt("no data key to seal server certificates with".into())
        })?;
        let id = certificate_id();
        let sealed = data_key
            .seal(&id, req.private_key.as_bytes())
            .map_err(|e| IamError::Corrupt(format!("sealing a private key: {e}")))?;
        let certificate = ServerCertificate {
            arn: format!(
                "arn:aws:iam::{account}:server-certificate{path}{}",
                req.name
            ),
            path,
            server_certificate_name: req.name.clone(),
            server_certificate_id: id,
            upload_date: now_epoch(),
            expiration: not_after(&body[0]),
            certificate_body: req.certificate_body.clone(),
            certificate_chain: req.certificate_chain.clone(),
            sealed_private_key: sealed,
            tags: req.tags.clone(),
        };
        let key = key_of(account, &req.name);
        match self.store.txn(
            &[Compare::ModRevision(key.clone(), 0)],
            &[Op::put(&key, encode(&certificate))],
        )? {
            TxnOutcome::Committed(_) => Ok(certificate),
            TxnOutcome::Conflict => Err(IamError::EntityAlreadyExists(format!(
                "The Server Certificate with name {} already exists.",
                req.name
            ))),
        }
    }

    pub fn get_server_certificate(&self, account: &str, name: &str) -> Result<ServerCertificate> {
        let key = key_of(account, name);
        let kv = self.store.get(&key)?.ok_or_else(|| no_such(name))?;
        decode(&key, &kv.value)
    }

    /// ListServerCertificates: by name, those whose path starts with `path_prefix`.
    pub fn list_server_certificates(
        &self,
        account: &str,
        path_prefix: Option<&str>,
    ) -> Result<Vec<ServerCertificate>> {
        let mut out = Vec::new();
        for kv in self
            .store
            .range(&format!("iam/{account}/server-certificates/"), None, 0)?
        {
            let c: ServerCertificate = decode(&kv.key, &kv.value)?;
            if path_prefix.is_none_or(|p| c.path.starts_with(p)) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The certificate an ARN names, if it exists (CreateListener's check).
    pub fn server_certificate_by_arn(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<Option<ServerCertificate>> {
        let Some(name) = arn
            .strip_prefix(&format!("arn:aws:iam::{account}:server-certificate/"))
            .and_then(|rest| rest.rsplit('/').next())
        else {
            return Ok(None);
        };
        match self.get_server_certificate(account, name) {
            Ok(c) if c.arn == arn => Ok(Some(c)),
            Ok(_) | Err(IamError::NoSuchEntity(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The private key's PEM, opened (for the data plane only: no API shows it).
    pub fn server_certificate_key(&self, certificate: &ServerCertificate) -> Result<String> {
        let data_key = self.data_key.as_ref().ok_or_else(|| {
            IamError::Corrupt("no data key to open server certificates with".into())
        })?;
        let plain = data_key
            .open(
                &certificate.server_certificate_id,
                &certificate.sealed_private_key,
            )
            .map_err(|e| IamError::Corrupt(format!("opening a private key: {e}")))?;
        String::from_utf8(plain).map_err(|_| IamError::Corrupt("a private key is not UTF-8".into()))
    }

    /// UpdateServerCertificate: a new name and/or path (the ARN follows them).
    pub fn update_server_certificate(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<ServerCertificate> {
        let key = key_of(account, name);
        let kv = self.store.get(&key)?.ok_or_else(|| no_such(name))?;
        let mut c: ServerCertificate = decode(&key, &kv.value)?;
        if let Some(n) = new_name {
            check_name("newServerCertificateName", n, 128)?;
            c.server_certificate_name = n.to_string();
        }
        if let Some(p) = new_path {
            check_path(p)?;
            c.path = p.to_string();
        }
        c.arn = format!(
            "arn:aws:iam::{account}:server-certificate{}{}",
            c.path, c.server_certificate_name
        );
        let new_key = key_of(account, &c.server_certificate_name);
        let mut compares = vec![Compare::ModRevision(key.clone(), kv.mod_revision)];
        let mut ops = Vec::new();
        if new_key != key {
            compares.push(Compare::ModRevision(new_key.clone(), 0));
            ops.push(Op::delete(&key));
        }
        ops.push(Op::put(&new_key, encode(&c)));
        match self.store.txn(&compares, &ops)? {
            TxnOutcome::Committed(_) => Ok(c),
            TxnOutcome::Conflict if self.store.get(&new_key)?.is_some() && new_key != key => {
                Err(IamError::EntityAlreadyExists(format!(
                    "The Server Certificate with name {} already exists.",
                    c.server_certificate_name
                )))
            }
            TxnOutcome::Conflict => {
                self.update_server_certificate(account, name, new_name, new_path)
            }
        }
    }

    pub fn delete_server_certificate(&self, account: &str, name: &str) -> Result<()> {
        let key = key_of(account, name);
        if self.store.get(&key)?.is_none() {
            return Err(no_such(name));
        }
        self.store.delete(&key)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_after_is_read_from_a_der_certificate() {
        // A minimal structure: Certificate { tbs { [0] v3, serial, sigalg, issuer,
        // validity { UTCTime 250101000000Z, GeneralizedTime 20300102030405Z } } }.
        let mut validity = vec![0x17, 13];
        validity.extend_from_slice(b"250101000000Z");
        validity.extend_from_slice(&[0x18, 15]);
        validity.extend_from_slice(b"20300102030405Z");
        let mut tbs = vec![0xa0, 3, 0x02, 1, 2, 0x02, 1, 7, 0x30, 0, 0x30, 0];
        tbs.push(0x30);
        tbs.push(validity.len() as u8);
        tbs.extend_from_slice(&validity);
        let mut cert = vec![0x30, tbs.len() as u8];
        cert.extend_from_slice(&tbs);
        let der = [vec![0x30, cert.len() as u8], cert].concat();
        assert_eq!(not_after(&der), Some(1_893_553_445.0));
    }

    #[test]
    fn text_that_is_not_pem_is_a_malformed_certificate() {
        let e = certificates("not a certificate", "certificate").unwrap_err();
        assert!(matches!(e, IamError::MalformedCertificate(_)), "{e}");
    }
}
