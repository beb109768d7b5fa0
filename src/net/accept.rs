//! The accept loop: a bounded number of connections, and accept errors that
//! neither spin nor flood the log.
//!
//! When the process runs out of descriptors (EMFILE, ENFILE) or kernel memory
//! (ENOBUFS, ENOMEM), the pending connection stays in the backlog and the
//! listener stays readable: retrying at once spins a core and starves the
//! connections that would free descriptors. So the loop sleeps, 50 ms doubling
//! to 500 ms, until an accept succeeds. Errors that belong to one connection
//! (ECONNABORTED: the client left before it was accepted) are skipped at once.
//!
//! Past `max_connections` a connection is accepted and closed at once, rather
//! than left in the backlog: its client learns at once that this replica is
//! full and can try another one, instead of waiting for its deadline behind
//! connections nobody accepts, and no descriptor is held for it.
//!
//! Both conditions come in episodes: a warning when one starts, an info line
//! with the count when it has been quiet for a second; never one line per
//! connection.

use std::{io, sync::Arc, time::Duration};

use tokio::{
    net::TcpListener,
    sync::Semaphore,
    time::{Instant, sleep, sleep_until},
};

use super::{Connection, ConnectionLimits, TlsAcceptor};

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// An episode ends after this long without the event that started it.
const QUIET: Duration = Duration::from_secs(1);

pub(super) struct Acceptor {
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    slots: Arc<Semaphore>,
    /// Accept errors that say the process lacks descriptors or memory.
    out_of_resources: Episode,
    backoff: Duration,
    /// Connections closed because `max_connections` were held.
    over_limit: Episode,
}

impl Acceptor {
    pub(super) fn new(
        listener: TcpListener,
        limits: ConnectionLimits,
        tls: Option<TlsAcceptor>,
    ) -> Acceptor {
        Acceptor {
            listener,
            limits,
            tls,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            out_of_resources: Episode::default(),
            backoff: FIRST_BACKOFF,
            over_limit: Episode::default(),
        }
    }

    /// The next connection within the limits; waits (and backs off) as long
    /// as it takes.
    pub(super) async fn accept(&mut self) -> Connection {
        loop {
            let quiet_check = [&self.out_of_resources, &self.over_limit]
                .into_iter()
                .filter_map(Episode::quiet_at)
                .min();
            // `accept` is cancel safe: a connection is never lost here.
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = sleep_until_some(quiet_check) => {
                    self.end_quiet_episodes();
                    continue;
                }
            };
            match accepted {
                Ok((stream, remote_addr)) => {
                    let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                        if self.over_limit.record(Instant::now()) {
                            tracing::warn!(
                                max_connections = self.limits.max_connections,
                                "connection limit reached: closing new connections at once"
                            );
                        }
                        drop(stream);
                        continue;
                    };
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "cannot disable nagle on an accepted connection");
                    }
                    // The material in force now; the handshake runs on the
                    // connection's own task.
                    let tls = self.tls.as_ref().map(TlsAcceptor::current);
                    return Connection::new(stream, remote_addr, slot, self.limits, tls);
                }
                Err(error) if is_per_connection(&error) => {
                    tracing::debug!(%error, "a connection failed before it was accepted");
                }
                Err(error) => {
                    if self.out_of_resources.record(Instant::now()) {
                        tracing::warn!(
                            errno = error.raw_os_error().unwrap_or(0),
                            %error,
                            "cannot accept connections: backing off until descriptors or memory \
                             are free"
                        );
                    }
                    sleep(self.backoff).await;
                    self.backoff = next_backoff(self.backoff);
                }
            }
        }
    }

    fn end_quiet_episodes(&mut self) {
        let now = Instant::now();
        if let Some((failed_accepts, lasted)) = self.out_of_resources.end_if_quiet(now) {
            self.backoff = FIRST_BACKOFF;
            tracing::info!(
                failed_accepts,
                lasted_ms = lasted.as_millis() as u64,
                "accepting connections again"
            );
        }
        // Still full: the episode goes on even if nobody tried to connect.
        if self.slots.available_permits() == 0 {
            self.over_limit.extend(now);
        } else if let Some((closed_connections, lasted)) = self.over_limit.end_if_quiet(now) {
            tracing::info!(
                closed_connections,
                lasted_ms = lasted.as_millis() as u64,
                "below the connection limit again"
            );
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(MAX_BACKOFF)
}

/// Errors of one pending connection (accept(2): "treat them like EAGAIN"),
/// as opposed to errors of the process (EMFILE, ENFILE, ENOBUFS, ENOMEM) or
/// unknown ones, which back off: a persistent one would otherwise spin.
#[cfg(unix)]
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EINTR
                | libc::EAGAIN
                | libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENOPROTOOPT
                | libc::EOPNOTSUPP
        )
    )
}

#[cfg(not(unix))]
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// A run of events (failed accepts, refused connections) logged as one.
#[derive(Debug, Default)]
struct Episode {
    /// When it started, and its last event.
    span: Option<(Instant, Instant)>,
    events: u64,
}

impl Episode {
    /// Counts an event; true when it starts an episode (the caller logs it).
    fn record(&mut self, now: Instant) -> bool {
        self.events += 1;
        match &mut self.span {
            Some((_, last)) => {
                *last = now;
                false
            }
            None => {
                self.span = Some((now, now));
                true
            }
        }
    }

    /// When the episode will have been quiet long enough to end.
    fn quiet_at(&self) -> Option<Instant> {
        self.span.map(|(_, last)| last + QUIET)
    }

    /// Pushes the end of a running episode back as if an event happened now.
    fn extend(&mut self, now: Instant) {
        if let Some((_, last)) = &mut self.span {
            *last = now;
        }
    }

    /// Ends the episode if it has been quiet: its events and its length.
    fn end_if_quiet(&mut self, now: Instant) -> Option<(u64, Duration)> {
        let (started, last) = self.span?;
        if now < last + QUIET {
            return None;
        }
        let events = std::mem::take(&mut self.events);
        self.span = None;
        Some((events, last - started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_50_ms_to_500_ms() {
        let mut backoff = FIRST_BACKOFF;
        let mut seen = vec![backoff.as_millis()];
        for _ in 0..5 {
            backoff = next_backoff(backoff);
            seen.push(backoff.as_millis());
        }
        assert_eq!(seen, [50, 100, 200, 400, 500, 500]);
    }

    #[test]
    fn an_episode_is_announced_once_and_ends_after_a_quiet_second() {
        let start = Instant::now();
        let mut episode = Episode::default();
        assert!(episode.record(start));
        for ms in 1..=100 {
            assert!(!episode.record(start + Duration::from_millis(ms * 5)));
        }
        let last = start + Duration::from_millis(500);
        assert_eq!(episode.quiet_at(), Some(last + QUIET));
        assert_eq!(episode.end_if_quiet(last + QUIET / 2), None);
        assert_eq!(
            episode.end_if_quiet(last + QUIET),
            Some((101, Duration::from_millis(500)))
        );
        assert_eq!(episode.quiet_at(), None);
        assert!(episode.record(last + QUIET * 2), "a new episode");
    }

    #[cfg(unix)]
    #[test]
    fn out_of_descriptors_backs_off_and_an_aborted_connection_does_not() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(!is_per_connection(&io::Error::from_raw_os_error(errno)));
        }
        assert!(is_per_connection(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
