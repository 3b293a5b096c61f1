//! What a budget is and what a decision says, apart from who decides (in process or in Redis).

use std::num::NonZeroU32;
use std::time::Duration;

/// A GCRA budget: `burst` cells at once, then one more every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval: Duration,
    pub burst: NonZeroU32,
}

impl Rate {
    /// `per_second` sustained, `burst` at once.
    pub fn per_second(per_second: NonZeroU32, burst: NonZeroU32) -> Rate {
        Rate {
            interval: Duration::from_secs(1) / per_second.get(),
            burst,
        }
    }

    /// `burst` at once, then one more every `interval` (at least a microsecond).
    pub fn every(interval: Duration, burst: u32) -> Rate {
        Rate {
            interval: interval.max(Duration::from_micros(1)),
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        }
    }

    /// The emission interval in whole microseconds, as the Lua scripts take it.
    pub(crate) fn interval_micros(&self) -> u64 {
        u64::try_from(self.interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// The outcome of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; `remaining` more would be allowed at once right now.
    Allowed { remaining: u32 },
    /// Refused; the next cell is allowed after `retry_after`.
    Denied { retry_after: Duration },
}
