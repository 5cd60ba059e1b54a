//! Delivering evidence bytes: HTTP ranges and validators, the answer to a request for a stored
//! representation ([`respond`], shared by materials and bundles), and a response body that
//! reports, when it ends, how many bytes really went out (the audit's "downloaded means
//! downloaded").

use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::{self, HeaderValue};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};

use crate::error::{AppError, AppResult};
use crate::store::StoreError;

/// The bytes of one range of a representation, as the store (or a bundle's layout) streams them.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

/// What is served: its length, strong validator, type and how the browser should take it.
pub struct Representation {
    pub size: u64,
    /// A strong `ETag`, quoted.
    pub etag: String,
    pub content_type: String,
    pub disposition: header::ContentDisposition,
    /// Headers of this kind of content (e.g. the viewer's framing policy).
    pub headers: Vec<(header::HeaderName, &'static str)>,
    /// `Cache-Control`: evidence is `no-store`; a thumbnail may stay in the person's own
    /// browser for a while (each fetch that reaches the server is still audited).
    pub cache: &'static str,
}

/// The answer to a request for `what`, after its access was recorded: 304 for a matching
/// `If-None-Match`, 416 for ranges outside it, the headers alone for `HEAD`, else the whole (200),
/// one range (206) or several as `multipart/byteranges` (206) — each range opened from `open`
/// only when the body reaches it, and the body metered into `report`. If the first range cannot
/// be opened, no byte has gone: `refused` records that and says what to answer.
pub async fn respond<Open>(
    conditional: Conditional,
    head: bool,
    what: Representation,
    open: Open,
    report: impl FnOnce(TransferEnd) + 'static,
    refused: impl AsyncFnOnce(StoreError) -> AppError,
) -> AppResult<HttpResponse>
where
    Open: Fn(Range<u64>) -> BoxFuture<'static, Result<ByteStream, StoreError>> + Send + 'static,
{
    let size = what.size;
    let Conditional {
        not_modified,
        ranges,
        ..
    } = conditional;
    let mut res = match (&ranges, not_modified) {
        (_, true) => HttpResponse::NotModified(),
        (Ranges::Unsatisfiable, _) => HttpResponse::RangeNotSatisfiable(),
        (Ranges::Parts(_), _) => HttpResponse::PartialContent(),
        (Ranges::Whole, _) => HttpResponse::Ok(),
    };
    res.insert_header((header::ETAG, what.etag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, what.cache))
        // The exact stored bytes, never re-encoded: the compression of pages stays off them
        // (lengths, ranges and checksums are of these bytes).
        .insert_header((header::CONTENT_ENCODING, "identity"));
    if not_modified {
        return Ok(res.finish());
    }
    let parts = match ranges {
        Ranges::Unsatisfiable => {
            res.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
            return Ok(res.finish());
        }
        Ranges::Whole => None,
        Ranges::Parts(parts) => Some(parts),
    };
    res.insert_header((header::CONTENT_DISPOSITION, what.disposition));
    for (name, value) in what.headers {
        res.insert_header((name, value));
    }
    match parts {
        None => {
            res.insert_header((header::CONTENT_TYPE, what.content_type));
            if head {
                return Ok(res.body(HeadBody(size)));
            }
            let body = match open(0..size).await {
                Ok(body) => body,
                Err(e) => return Err(refused(e).await),
            };
            Ok(res.body(MeteredBody::new(body, size, report)))
        }
        Some(parts) if parts.len() == 1 => {
            let r = parts[0].clone();
            res.insert_header((header::CONTENT_TYPE, what.content_type))
                .insert_header((header::CONTENT_RANGE, content_range(&r, size)));
            if head {
                return Ok(res.body(HeadBody(r.end - r.start)));
            }
            let body = match open(r.clone()).await {
                Ok(body) => body,
                Err(e) => return Err(refused(e).await),
            };
            Ok(res.body(MeteredBody::new(body, r.end - r.start, report)))
        }
        Some(_) if head => {
            // The headers of the whole: a HEAD has no parts to frame.
            res.status(actix_web::http::StatusCode::OK)
                .insert_header((header::CONTENT_TYPE, what.content_type));
            Ok(res.body(HeadBody(size)))
        }
        Some(parts) => byteranges(res, &parts, &what.content_type, size, open, report),
    }
}

/// `Content-Range` of `r` in a representation of `size` bytes.
fn content_range(r: &Range<u64>, size: u64) -> String {
    format!("bytes {}-{}/{size}", r.start, r.end - 1)
}

/// The answer to several ranges, as `multipart/byteranges`: each part framed, and opened from
/// `open` only when the body reaches it; the body metered into `report`.
fn byteranges<Open>(
    mut res: actix_web::HttpResponseBuilder,
    parts: &[Range<u64>],
    content_type: &str,
    size: u64,
    open: Open,
    report: impl FnOnce(TransferEnd) + 'static,
) -> AppResult<HttpResponse>
where
    Open: Fn(Range<u64>) -> BoxFuture<'static, Result<ByteStream, StoreError>> + Send + 'static,
{
    let boundary = format!("evidence-{}", uuid::Uuid::now_v7().simple());
    let mut segments: Vec<Result<Bytes, Range<u64>>> = Vec::new();
    let mut total = 0u64;
    for r in parts {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Range: {}\r\n\r\n",
            content_type,
            content_range(r, size)
        );
        total += head.len() as u64 + (r.end - r.start);
        segments.push(Ok(Bytes::from(head)));
        segments.push(Err(r.clone()));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    total += tail.len() as u64;
    segments.push(Ok(Bytes::from(tail)));
    let body = futures_util::stream::iter(segments)
        .then(move |segment| {
            let opened = match segment {
                Ok(bytes) => Ok(bytes),
                Err(range) => Err(open(range)),
            };
            async move {
                match opened {
                    Ok(bytes) => Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed()),
                    Err(opening) => opening.await,
                }
            }
        })
        .try_flatten();
    res.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
            .map_err(AppError::internal)?,
    ));
    Ok(res.body(MeteredBody::new(body, total, report)))
}

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
/// as the RFC allows; more than 16 ranges too (a guard against range-request abuse). Positions
/// past `u64` are malformed; a last position past the end means the end. Overlapping and
/// adjacent ranges are coalesced (§14.2: `16 × 0-` is the object once, not sixteen times), so the
/// parts come back sorted, disjoint and non-adjacent.
pub fn parse_range(header: Option<&str>, size: u64) -> Ranges {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranges::Whole;
    };
    let mut parts = Vec::new();
    let mut any = false;
    // More than 16 ranges asked is answered whole, however many of them are satisfiable (the
    // guard counts what the client asked for, not what survives).
    if spec.split(',').count() > 16 {
        return Ranges::Whole;
    }
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
                last.saturating_add(1).min(size)
            };
            any = true;
            if start >= size {
                continue;
            }
            start..end
        };
        parts.push(range);
    }
    if !any {
        return Ranges::Whole;
    }
    if parts.is_empty() {
        Ranges::Unsatisfiable
    } else {
        Ranges::Parts(coalesce(parts))
    }
}

/// Sorted, with overlapping or touching ranges merged.
fn coalesce(mut parts: Vec<Range<u64>>) -> Vec<Range<u64>> {
    parts.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(parts.len());
    for r in parts {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
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

/// The body of a `HEAD` answer: its length is announced, no byte is ever produced (the server
/// sends none for `HEAD`), so no evidence is read from the store.
pub struct HeadBody(pub u64);

impl MessageBody for HeadBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one range in a list of ranges is meant
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(None, 100), Ranges::Whole);
        // Found by the property test in CI: 17 unsatisfiable ranges are more than 16 asked.
        let many = format!("bytes={}0-", "-0, ".repeat(16));
        assert_eq!(parse_range(Some(&many), 0), Ranges::Whole);
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
        // The review's overflow: the last position is u64::MAX.
        assert_eq!(
            parse_range(Some("bytes=0-18446744073709551615"), 100),
            Ranges::Parts(vec![0..100])
        );
        assert_eq!(
            parse_range(Some("bytes=0-18446744073709551616"), 100),
            Ranges::Whole,
            "past u64: malformed"
        );
        // Overlapping and touching ranges are served once.
        let sixteen = format!("bytes={}", vec!["0-"; 16].join(","));
        assert_eq!(
            parse_range(Some(&sixteen), 100),
            Ranges::Parts(vec![0..100])
        );
        assert_eq!(
            parse_range(Some("bytes=50-59, 0-9, 10-19, 55-70"), 100),
            Ranges::Parts(vec![0..20, 50..71])
        );
    }

    /// One range spec as a model sees it: `None` for a position left out.
    #[derive(Clone, Debug)]
    struct Spec(Option<u64>, Option<u64>);

    /// RFC 9110 §14.1.2, computed with u128 so nothing can overflow, byte by byte.
    fn model(specs: &[Spec], size: u64) -> Ranges {
        let size = u128::from(size);
        let mut covered = std::collections::BTreeSet::new();
        let mut any = false;
        for Spec(first, last) in specs {
            let (start, end) = match (first, last) {
                (None, None) => return Ranges::Whole,
                (None, Some(n)) => (size.saturating_sub(u128::from(*n)), size),
                (Some(a), None) => (u128::from(*a), size),
                (Some(a), Some(b)) if b < a => return Ranges::Whole,
                (Some(a), Some(b)) => (u128::from(*a), (u128::from(*b) + 1).min(size)),
            };
            any = true;
            covered.extend(start..end.max(start));
        }
        if !any || specs.len() > 16 {
            return Ranges::Whole;
        }
        if covered.is_empty() {
            return Ranges::Unsatisfiable;
        }
        let mut parts: Vec<Range<u64>> = Vec::new();
        for byte in covered {
            let byte = u64::try_from(byte).unwrap();
            match parts.last_mut() {
                Some(last) if last.end == byte => last.end += 1,
                _ => parts.push(byte..byte + 1),
            }
        }
        Ranges::Parts(parts)
    }

    fn position() -> impl proptest::strategy::Strategy<Value = Option<u64>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(None),
            (0u64..300).prop_map(Some),
            (u64::MAX - 2..=u64::MAX).prop_map(Some),
        ]
    }

    fn spec() -> impl proptest::strategy::Strategy<Value = Spec> {
        use proptest::prelude::*;
        (position(), position()).prop_map(|(a, b)| Spec(a, b))
    }

    proptest::proptest! {
        #[test]
        fn ranges_match_the_rfc_model(
            specs in proptest::collection::vec(spec(), 1..20),
            size in 0u64..260,
        ) {
            let header = format!(
                "bytes={}",
                specs
                    .iter()
                    .map(|Spec(a, b)| format!(
                        "{}-{}",
                        a.map(|a| a.to_string()).unwrap_or_default(),
                        b.map(|b| b.to_string()).unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let parsed = parse_range(Some(&header), size);
            proptest::prop_assert_eq!(&parsed, &model(&specs, size), "{}", header);
            if let Ranges::Parts(parts) = parsed {
                for p in &parts {
                    proptest::prop_assert!(p.start < p.end && p.end <= size);
                }
                for w in parts.windows(2) {
                    proptest::prop_assert!(w[0].end < w[1].start);
                }
            }
        }

        /// Any header at all: an answer, never a panic.
        #[test]
        fn any_header_is_answered(header in "\\PC{0,60}", size in 0u64..u64::MAX) {
            let _ = parse_range(Some(&header), size);
        }
    }
}
