//! Limits on what a client may make the server wait for: a request body that trickles (one byte
//! every two seconds kept a connection for minutes) is cut once an interval passes without
//! enough bytes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::config::SLOW_BODY_MIN_BYTES;
use crate::state::AppState;

/// Middleware: wraps every request body in a [`PacedBody`].
pub async fn pace_bodies(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Only requests that have a body (most are GETs without one: no timer for them).
    let has_body = req
        .headers()
        .contains_key(actix_web::http::header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if has_body && let Some(state) = req.app_data::<web::Data<AppState>>() {
        let window = state.settings.slow_body;
        let inner = req.take_payload();
        let paced = PacedBody::new(inner, window, SLOW_BODY_MIN_BYTES);
        req.set_payload(Payload::Stream {
            payload: Box::pin(paced),
        });
    }
    next.call(req).await
}

/// Middleware: a request must have its answer's head within three database deadlines and one
/// store deadline (25 s by default), or it is answered 503 with `Retry-After` — a hung database
/// or store never holds a person for longer. Uploads are exempt: their bodies take as long as
/// they take (their pace is bounded by [`PacedBody`], and each store call by its own deadline).
pub async fn answer_in_time(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let deadline = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.db_timeout * 3 + s.settings.store_timeout);
    let upload = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let Some(deadline) = deadline.filter(|_| !upload) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let request = req.request().clone();
    match tokio::time::timeout(deadline, next.call(req)).await {
        Ok(res) => res.map(ServiceResponse::map_into_left_body),
        Err(_) => {
            let error = crate::error::AppError::Unavailable {
                part: "deadline",
                cause: Some(format!("no answer within {deadline:?}").into()),
            };
            let res = actix_web::ResponseError::error_response(&error);
            Ok(ServiceResponse::new(request, res).map_into_right_body())
        }
    }
}

/// A body stream that fails with a timeout when an interval of `window` ends before `min_bytes`
/// arrived in it (the body ending is always fine).
pub struct PacedBody<S> {
    inner: S,
    window: Duration,
    min_bytes: u64,
    in_window: u64,
    deadline: Pin<Box<Sleep>>,
    done: bool,
}

impl<S> PacedBody<S> {
    pub fn new(inner: S, window: Duration, min_bytes: u64) -> Self {
        PacedBody {
            inner,
            window,
            min_bytes,
            in_window: 0,
            deadline: Box::pin(tokio::time::sleep(window)),
            done: false,
        }
    }
}

impl<S> Stream for PacedBody<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.in_window += chunk.len() as u64;
                if this.in_window >= this.min_bytes {
                    // Enough for this interval: the next one starts now.
                    this.in_window = 0;
                    let next = Instant::now() + this.window;
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => {
                this.done = other.is_none();
                Poll::Ready(other)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    tracing::info!("request body too slow: cut");
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body arrived too slowly",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_and_a_steady_body_is_not() {
        // One byte every 2 s: cut at the end of the first 30 s interval.
        let trickle = futures_util::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Some((Ok::<_, PayloadError>(Bytes::from_static(b"x")), n + 1))
        });
        let mut paced = PacedBody::new(Box::pin(trickle), Duration::from_secs(30), 1024);
        let started = Instant::now();
        let mut got = 0;
        let failed = loop {
            match paced.next().await {
                Some(Ok(_)) => got += 1,
                Some(Err(e)) => break e,
                None => panic!("the trickle never ends"),
            }
        };
        assert!(
            matches!(failed, PayloadError::Io(ref e) if e.kind() == std::io::ErrorKind::TimedOut)
        );
        assert!(
            got >= 14 && started.elapsed() <= Duration::from_secs(31),
            "{got}"
        );
        assert!(paced.next().await.is_none());

        // 2 KiB a second: never cut, and it ends.
        let steady = futures_util::stream::iter(0..100).then(|_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, PayloadError>(Bytes::from(vec![0u8; 2048]))
        });
        let paced = PacedBody::new(Box::pin(steady), Duration::from_secs(30), 1024);
        let all: Vec<_> = paced.collect().await;
        assert_eq!(all.len(), 100);
        assert!(all.iter().all(Result::is_ok));
    }
}
