//! Request bodies of bounded size, read once for every endpoint that takes one (the
//! OAuth2 forms and the SCIM JSON documents): a declared `Content-Length` over the limit is
//! refused before a byte is read, a chunked body as soon as it passes the limit, and a
//! body that arrives in one chunk (nearly every request) is taken without a copy. Each
//! caller maps [`BodyError`] to its protocol's error (OAuth2 `invalid_request` / SCIM
//! `invalidSyntax`, 413 for a body too large).

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body is unreadable: {0}")]
    Unreadable(String),
}

/// The body of `req`, at most `limit` bytes.
pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        len += chunk.len();
        if len > limit {
            return Err(BodyError::TooLarge(limit));
        }
        match &mut joined {
            None if first.is_empty() => first = chunk,
            None => {
                let mut b = BytesMut::with_capacity(len);
                b.extend_from_slice(&first);
                b.extend_from_slice(&chunk);
                joined = Some(b);
            }
            Some(b) => b.extend_from_slice(&chunk),
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}
