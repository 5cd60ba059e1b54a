//! The portal's clock: the current time, which tests may move.
//!
//! Production never moves it. Integration tests move it (through the `AppState` they hold) to
//! make events at chosen instants — 23:59:59 or 07:59 CST — whatever the hour they run at.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// Cheap to clone; clones share one setting.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Added to the system's time, in microseconds.
    skew_micros: Arc<AtomicI64>,
}

impl Clock {
    /// The current time in UTC.
    pub fn now(&self) -> OffsetDateTime {
        let skew = self.skew_micros.load(Ordering::Relaxed);
        let now = OffsetDateTime::now_utc();
        if skew == 0 {
            now
        } else {
            now.saturating_add(time::Duration::microseconds(skew))
        }
    }

    /// From now on, time runs on from `t`.
    pub fn set(&self, t: OffsetDateTime) {
        let skew = (t - OffsetDateTime::now_utc()).whole_microseconds();
        self.skew_micros
            .store(i64::try_from(skew).unwrap_or(i64::MAX), Ordering::Relaxed);
    }
}
