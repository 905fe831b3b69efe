//! The ways a SigV4 check fails, each carrying the error code, wording and HTTP status
//! that AWS's JSON services answer with, so the API layer can reply like AWS does.

/// Why a request's SigV4 authentication was refused.
///
/// Messages follow AWS's wording, as the aws CLI prints them verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor an `X-Amz-Algorithm` query parameter.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    /// The authentication data is there but malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not known to the [`CredentialLookup`](crate::CredentialLookup).
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature is well formed but does not match the request. The canonical request
    /// and string to sign are kept for server-side logs; they are not part of the message
    /// sent to the client.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    SignatureDoesNotMatch {
        canonical_request: String,
        string_to_sign: String,
    },
    /// The request time is outside the allowed clock skew, or a presigned URL has expired.
    #[error("{0}")]
    SignatureExpired(String),
    /// The signature cannot be valid for any secret: the host is not signed, or the
    /// credential scope does not agree with the request.
    #[error("{0}")]
    InvalidSignature(String),
}

impl SigV4Error {
    /// The error code AWS's JSON protocols put in `__type` (and the `x-amzn-ErrorType` header).
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::SignatureDoesNotMatch { .. }
            | Self::SignatureExpired(_)
            | Self::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The error code AWS's Query protocol services (IAM, STS, EC2, ...) answer with.
    pub fn query_code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::IncompleteSignature(_) => "IncompleteSignature",
            Self::UnrecognizedClient => "InvalidClientTokenId",
            Self::SignatureDoesNotMatch { .. }
            | Self::SignatureExpired(_)
            | Self::InvalidSignature(_) => "SignatureDoesNotMatch",
        }
    }

    /// The client-facing message, in AWS's wording.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The HTTP status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::IncompleteSignature(_) => 400,
            Self::MissingAuthenticationToken
            | Self::UnrecognizedClient
            | Self::SignatureDoesNotMatch { .. }
            | Self::SignatureExpired(_)
            | Self::InvalidSignature(_) => 403,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SigV4Error;

    #[test]
    fn codes_and_statuses_follow_aws() {
        let cases = [
            (
                SigV4Error::MissingAuthenticationToken,
                "MissingAuthenticationTokenException",
                403,
            ),
            (
                SigV4Error::IncompleteSignature("x".into()),
                "IncompleteSignatureException",
                400,
            ),
            (
                SigV4Error::UnrecognizedClient,
                "UnrecognizedClientException",
                403,
            ),
            (
                SigV4Error::SignatureDoesNotMatch {
                    canonical_request: String::new(),
                    string_to_sign: String::new(),
                },
                "InvalidSignatureException",
                403,
            ),
            (
                SigV4Error::SignatureExpired("x".into()),
                "InvalidSignatureException",
                403,
            ),
            (
                SigV4Error::InvalidSignature("x".into()),
                "InvalidSignatureException",
                403,
            ),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.aws_code(), code);
            assert_eq!(error.status(), status);
        }
    }
}
