//! Reading a request body with a bound, telling a body over the bound (413) from one that could
//! not be read at all (a malformed chunked encoding, a connection lost midway: 400).

use axum::body::{Body, Bytes};

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The body is larger than the bound (the handler's, or the envelope's backstop).
    TooLarge,
    /// The body's framing is broken, or the client went away before sending all of it.
    Unreadable,
}

/// The whole of `body`, at most `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        if is_length_limit(&error) {
            BodyError::TooLarge
        } else {
            BodyError::Unreadable
        }
    })
}

/// Whether `error`, or an error it wraps, is a body's length limit being reached (ours, or the
/// envelope's while the body streams in).
fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_over_the_limit_is_too_large_and_a_broken_one_unreadable() {
        assert_eq!(
            read_body(Body::from("abc"), 3).await.unwrap(),
            Bytes::from("abc")
        );
        assert_eq!(
            read_body(Body::from("abcd"), 3).await,
            Err(BodyError::TooLarge)
        );
        // The envelope's bound, met while the body streams in, is a length limit too.
        let limited = http_body_util::Limited::new(Body::from("abcd"), 2);
        assert_eq!(
            read_body(Body::new(limited), 100).await,
            Err(BodyError::TooLarge)
        );
        let broken = futures::stream::iter([
            Ok(Bytes::from("ab")),
            Err(std::io::Error::other("invalid chunk size")),
        ]);
        assert_eq!(
            read_body(Body::from_stream(broken), 100).await,
            Err(BodyError::Unreadable)
        );
    }
}
