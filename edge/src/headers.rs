//! Bounds on the size of request headers: one header, and all of them together. A request over
//! either is answered 431 Request Header Fields Too Large (RFC 6585 §5) before any handler or
//! per-client bookkeeping sees it.

use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::future::{Either, Ready, ready};

use crate::refusal::Refusal;

/// How large request headers may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLimits {
    /// Bytes of one header: its name and its value. Tokens and certificates are a few KiB; a
    /// single header far beyond that is an attack or a mistake.
    pub max_header_bytes: usize,
    /// Bytes of all headers together, each counted as it travels in HTTP/1.1: name, `": "`,
    /// value and CRLF.
    pub max_header_list_bytes: usize,
}

impl HeaderLimits {
    /// What hyper may buffer of a request head beyond [`HeaderLimits::max_header_list_bytes`],
    /// for the request line (or HTTP/2's pseudo-headers and per-field overhead). A head within
    /// it always reaches [`HeaderLimitLayer`], which answers in the service's error format.
    pub const REQUEST_LINE_ALLOWANCE: usize = 8 * 1024;

    /// hyper's HTTP/1.1 read buffer limit (`max_buf_size`) and the HTTP/2
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`: the list limit plus [`Self::REQUEST_LINE_ALLOWANCE`],
    /// and never below hyper's minimum of 8 KiB, under which it panics.
    ///
    /// hyper refuses an HTTP/1.1 head when it has buffered at least this many bytes without
    /// finding the head's end: it answers 431 itself, with no body (`content-length: 0`), and
    /// closes the connection. Its buffer grows by doubling and a read may fill it, so a head up
    /// to about twice this size can still arrive whole and be answered by the layer; none
    /// larger is ever held in memory.
    pub fn head_buffer_bytes(&self) -> usize {
        self.max_header_list_bytes
            .saturating_add(Self::REQUEST_LINE_ALLOWANCE)
            .max(8 * 1024)
    }

    /// Which limit `headers` exceed, if any.
    fn exceeded_by(&self, headers: &HeaderMap) -> Option<Exceeded> {
        let mut list = 0usize;
        for (name, value) in headers {
            let size = name.as_str().len() + value.len();
            if size > self.max_header_bytes {
                return Some(Exceeded::Header(self.max_header_bytes));
            }
            list = list.saturating_add(size + 4);
        }
        (list > self.max_header_list_bytes).then_some(Exceeded::List(self.max_header_list_bytes))
    }
}

impl Default for HeaderLimits {
    fn default() -> HeaderLimits {
        HeaderLimits {
            max_header_bytes: 16 * 1024,
            max_header_list_bytes: 32 * 1024,
        }
    }
}

enum Exceeded {
    Header(usize),
    List(usize),
}

impl Exceeded {
    /// 431 as a [`Refusal`], as the edge answers its other refusals. The detail
    /// names the limit but never echoes the header, which is the client's and could be anything.
    fn into_response(self) -> Response {
        let detail = match self {
            Exceeded::Header(max) => format!("a request header is larger than {max} bytes"),
            Exceeded::List(max) => {
                format!("the request headers together are larger than {max} bytes")
            }
        };
        Refusal::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, detail).into_response()
    }
}

/// Answers 431 to a request whose headers exceed [`HeaderLimits`].
///
/// hyper bounds the whole head only roughly (by its read buffer, see
/// [`HeaderLimits::head_buffer_bytes`]) and has no bound per header; this layer applies both
/// limits exactly, and answers as the edge's other refusals (problem+json, or the service's
/// format inside the envelope).
#[derive(Clone, Copy)]
pub struct HeaderLimitLayer {
    limits: HeaderLimits,
}

impl HeaderLimitLayer {
    pub fn new(limits: HeaderLimits) -> HeaderLimitLayer {
        HeaderLimitLayer { limits }
    }
}

impl<S> tower::Layer<S> for HeaderLimitLayer {
    type Service = HeaderLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HeaderLimit {
            inner,
            limits: self.limits,
        }
    }
}

#[derive(Clone)]
pub struct HeaderLimit<S> {
    inner: S,
    limits: HeaderLimits,
}

impl<S> tower::Service<Request> for HeaderLimit<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.limits.exceeded_by(request.headers()) {
            Some(exceeded) => Either::Left(ready(Ok(exceeded.into_response()))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&'static str, usize)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, size) in fields {
            let value = axum::http::HeaderValue::from_str(&"a".repeat(*size)).unwrap();
            map.append(*name, value);
        }
        map
    }

    #[test]
    fn one_header_is_bounded_by_name_and_value_and_the_list_by_its_wire_size() {
        let limits = HeaderLimits {
            max_header_bytes: 100,
            max_header_list_bytes: 300,
        };
        // "x-a" and 97 bytes of value make exactly 100.
        assert!(limits.exceeded_by(&headers(&[("x-a", 97)])).is_none());
        assert!(matches!(
            limits.exceeded_by(&headers(&[("x-a", 98)])),
            Some(Exceeded::Header(100))
        ));
        // Three headers of 100 bytes are 312 on the wire; two are 208.
        assert!(
            limits
                .exceeded_by(&headers(&[("x-a", 97), ("x-b", 97)]))
                .is_none()
        );
        assert!(matches!(
            limits.exceeded_by(&headers(&[("x-a", 97), ("x-b", 97), ("x-c", 97)])),
            Some(Exceeded::List(300))
        ));
        // A repeated name counts every value.
        assert!(matches!(
            limits.exceeded_by(&headers(&[("x-a", 97), ("x-a", 97), ("x-a", 97)])),
            Some(Exceeded::List(300))
        ));
    }

    #[test]
    fn hyper_gets_a_buffer_above_the_list_limit_and_never_below_its_minimum() {
        assert_eq!(
            HeaderLimits::default().head_buffer_bytes(),
            32 * 1024 + HeaderLimits::REQUEST_LINE_ALLOWANCE
        );
        let tiny = HeaderLimits {
            max_header_bytes: 10,
            max_header_list_bytes: 0,
        };
        assert_eq!(tiny.head_buffer_bytes(), 8 * 1024);
    }
}
