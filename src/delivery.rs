//! Delivering evidence bytes: HTTP ranges, and a response body that reports, when it ends, how
//! many bytes really went out (the audit's "downloaded means downloaded").

use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use futures_util::Stream;

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranges {
    /// No (usable) Range header: the whole object.
    Whole,
    /// One or more satisfiable ranges, in the order asked (end exclusive).
    Parts(Vec<Range<u64>>),
    /// Syntactically fine, but nothing in it lies within the object: 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b,c-,-n` per RFC 9110 §14.1.2. Anything malformed is ignored (whole object),
/// as the RFC allows; more than 16 ranges too (a guard against range-request abuse).
pub fn parse_range(header: Option<&str>, size: u64) -> Ranges {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranges::Whole;
    };
    let mut parts = Vec::new();
    let mut any = false;
    for item in spec.split(',') {
        let item = item.trim();
        let Some((first, last)) = item.split_once('-') else {
            return Ranges::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // Suffix: the last n bytes.
            let Ok(n) = last.parse::<u64>() else {
                return Ranges::Whole;
            };
            any = true;
            if n == 0 || size == 0 {
                continue;
            }
            size.saturating_sub(n)..size
        } else {
            let Ok(start) = first.parse::<u64>() else {
                return Ranges::Whole;
            };
            let end = if last.is_empty() {
                size
            } else {
                let Ok(last) = last.parse::<u64>() else {
                    return Ranges::Whole;
                };
                if last < start {
                    return Ranges::Whole;
                }
                (last + 1).min(size)
            };
            any = true;
            if start >= size {
                continue;
            }
            start..end
        };
        parts.push(range);
    }
    if !any || parts.len() > 16 {
        return Ranges::Whole;
    }
    if parts.is_empty() {
        Ranges::Unsatisfiable
    } else {
        Ranges::Parts(parts)
    }
}

/// What a request's validators and `Range` ask of a representation with a strong `etag` and
/// `size` bytes: `If-None-Match` → 304; `If-Range` → the ranges apply only to the version the
/// client already has part of (else the whole).
pub struct Conditional {
    pub not_modified: bool,
    /// The `Range` header as it will be honoured (for the audit record).
    pub range_header: Option<String>,
    pub ranges: Ranges,
}

impl Conditional {
    pub fn evaluate(headers: &actix_web::http::header::HeaderMap, etag: &str, size: u64) -> Self {
        use actix_web::http::header;
        let get = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let not_modified = get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        let range_header =
            get(header::RANGE).filter(|_| get(header::IF_RANGE).is_none_or(|v| v.trim() == etag));
        let ranges = if not_modified {
            Ranges::Whole
        } else {
            parse_range(range_header.as_deref(), size)
        };
        Conditional {
            not_modified,
            range_header,
            ranges,
        }
    }

    /// The body bytes this answer will carry (multipart framing aside).
    pub fn planned_bytes(&self, size: u64) -> u64 {
        match &self.ranges {
            _ if self.not_modified => 0,
            Ranges::Whole => size,
            Ranges::Parts(p) => p.iter().map(|r| r.end - r.start).sum(),
            Ranges::Unsatisfiable => 0,
        }
    }
}

/// How a transfer ended, reported once when the response body is finished or dropped.
pub struct TransferEnd {
    pub bytes_sent: u64,
    pub expected: u64,
    /// All bytes went out.
    pub completed: bool,
    /// The source failed (as opposed to the client going away).
    pub failed: bool,
}

type Report = Box<dyn FnOnce(TransferEnd) + 'static>;

/// A streamed body of known length that counts what it hands to the connection and calls
/// `report` exactly once at the end (complete, failed, or cut off by the client).
pub struct MeteredBody<S> {
    stream: Pin<Box<S>>,
    expected: u64,
    sent: u64,
    failed: bool,
    report: Option<Report>,
}

impl<S> MeteredBody<S> {
    pub fn new(stream: S, expected: u64, report: impl FnOnce(TransferEnd) + 'static) -> Self {
        MeteredBody {
            stream: Box::pin(stream),
            expected,
            sent: 0,
            failed: false,
            report: Some(Box::new(report)),
        }
    }

    fn finish(&mut self) {
        if let Some(report) = self.report.take() {
            report(TransferEnd {
                bytes_sent: self.sent,
                expected: self.expected,
                completed: !self.failed && self.sent == self.expected,
                failed: self.failed,
            });
        }
    }
}

impl<S> Drop for MeteredBody<S> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<S, E> MessageBody for MeteredBody<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error + 'static,
{
    type Error = E;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.expected)
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let polled = self.stream.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => self.sent += chunk.len() as u64,
            Poll::Ready(Some(Err(_))) => {
                // The connection is aborted: the client sees a failed download, never a
                // shorter file that looks whole (Content-Length was promised).
                self.failed = true;
                self.finish();
            }
            Poll::Ready(None) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one range in a list of ranges is meant
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(None, 100), Ranges::Whole);
        assert_eq!(
            parse_range(Some("bytes=0-9"), 100),
            Ranges::Parts(vec![0..10])
        );
        assert_eq!(
            parse_range(Some("bytes=90-"), 100),
            Ranges::Parts(vec![90..100])
        );
        assert_eq!(
            parse_range(Some("bytes=-10"), 100),
            Ranges::Parts(vec![90..100])
        );
        assert_eq!(
            parse_range(Some("bytes=-1000"), 100),
            Ranges::Parts(vec![0..100])
        );
        assert_eq!(
            parse_range(Some("bytes=95-200"), 100),
            Ranges::Parts(vec![95..100])
        );
        assert_eq!(
            parse_range(Some("bytes=0-0, 50-59"), 100),
            Ranges::Parts(vec![0..1, 50..60])
        );
        assert_eq!(parse_range(Some("bytes=100-"), 100), Ranges::Unsatisfiable);
        assert_eq!(
            parse_range(Some("bytes=200-300, 150-"), 100),
            Ranges::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=-0"), 100), Ranges::Unsatisfiable);
        assert_eq!(
            parse_range(Some("bytes=9-0"), 100),
            Ranges::Whole,
            "invalid: ignored"
        );
        assert_eq!(parse_range(Some("items=0-9"), 100), Ranges::Whole);
        assert_eq!(parse_range(Some("bytes=abc"), 100), Ranges::Whole);
        let many = format!("bytes={}", vec!["0-0"; 17].join(","));
        assert_eq!(parse_range(Some(&many), 100), Ranges::Whole);
    }
}
