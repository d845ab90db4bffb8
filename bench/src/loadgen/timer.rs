//! A precise periodic ticker for the open-loop schedule.
//!
//! tokio's timer has millisecond granularity, which at 5,000 req/s (one request every
//! 200 µs) would send requests in bursts and charge up to a millisecond of scheduling delay
//! to every latency. A `timerfd` on `CLOCK_MONOTONIC` fires with the kernel's hrtimer
//! precision and is awaited through tokio's reactor ([`AsyncFd`]), so the load generator
//! sleeps between requests instead of spinning.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock the ticker's schedule is written in.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes into the valid timespec we pass; CLOCK_MONOTONIC is
    // always supported on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// Fires at `start_ns`, `start_ns + interval_ns`, `start_ns + 2 * interval_ns`, …
pub struct Ticker {
    fd: AsyncFd<OwnedFd>,
}

impl Ticker {
    /// Arms a ticker whose first expiry is at the absolute monotonic time `start_ns`.
    /// Must be called inside a tokio runtime with IO enabled.
    pub fn new(start_ns: u64, interval_ns: u64) -> Result<Ticker> {
        if start_ns == 0 || interval_ns == 0 {
            bail!("ticker needs a non-zero start and interval");
        }
        // SAFETY: timerfd_create(2) has no memory-safety preconditions.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("timerfd_create");
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let spec = libc::itimerspec {
            it_interval: timespec(interval_ns),
            it_value: timespec(start_ns),
        };
        // SAFETY: `fd` is a valid timerfd, `spec` is a valid itimerspec, and a null old
        // value pointer is allowed.
        let rc = unsafe {
            libc::timerfd_settime(
                fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("timerfd_settime");
        }
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and returns the same
        // descriptor from as_raw_fd() until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .context("registering the timerfd with tokio")?;
        Ok(Ticker { fd })
    }

    /// Waits for the next expiry; returns how many expiries happened since the last call
    /// (more than one when the caller was busy).
    pub async fn tick(&self) -> Result<u64> {
        loop {
            let mut guard = self.fd.readable().await.context("waiting on the timerfd")?;
            let mut count: u64 = 0;
            // SAFETY: reading 8 bytes into a u64 from a valid, non-blocking timerfd.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    (&mut count as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n == std::mem::size_of::<u64>() as isize {
                return Ok(count);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(err).context("reading the timerfd");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_on_schedule() -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let interval = 1_000_000; // 1 ms
            let start = mono_ns() + interval;
            let ticker = Ticker::new(start, interval)?;
            let mut fired = 0;
            while fired < 20 {
                fired += ticker.tick().await?;
            }
            let elapsed = mono_ns() - start;
            // 20 expiries: the 20th is at start + 19 ms.
            assert!(elapsed >= 19 * interval, "too early: {elapsed} ns");
            assert!(elapsed < 200 * interval, "far too late: {elapsed} ns");
            Ok(())
        })
    }
}
