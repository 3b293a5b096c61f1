//! Audit events committed before their request is answered, many to a transaction (group
//! commit). A handler hands its event to the one writer task and waits for the commit of the
//! batch that holds it. While the writer commits a batch, the events of concurrent requests queue
//! up and form the next one, so under load one transaction carries many events, and a lone event
//! is written at once (nothing lingers: every event has a request waiting for it).
//!
//! The writer also checkpoints SQLite's write-ahead log, about a second after a write (every
//! request that writes has an audit event, so the writer sees them all). The service opens
//! SQLite with automatic checkpoints off ([`Store::connect_for_service`]), which would otherwise
//! make the requests of a batch wait for copying the log and its `fsync`s, every 1,000 pages.
//! The bulk of the copy runs on another connection beside the writer's batches
//! ([`copy_back`]); the writer copies the rest between two batches, after the waiters of one
//! have their answer, while the events of the next gather, and those wait for the rest only. A
//! checkpoint between two batches lets the log start over from its beginning at the next one,
//! and one is made to (SQLite's `RESTART`) when the log has grown all the same. Checkpoints only
//! beside a stream of writes never let it: the log grew by 1.3 GB in 25 s of token requests
//! that way.
//!
//! Nothing is acknowledged before its commit, so a crash of the process (SIGKILL, an OOM kill)
//! loses no event of an answered request; what a power loss may lose is the database's
//! durability setting (SQLite's `synchronous`, PostgreSQL's `synchronous_commit`). If a batch
//! cannot be committed, every request waiting on it fails rather than answering without its
//! event on record.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::store::{AuditEvent, Store};

/// Events waiting to be written. When the writer falls this far behind, senders wait (back
/// pressure) rather than drop events: the trail must stay complete.
const QUEUE: usize = 16_384;
/// Largest batch written in one transaction. On PostgreSQL every large statement waits ~40 ms
/// here (sqlx 0.9.0 no longer sets TCP_NODELAY, so Nagle meets the server's delayed ACK;
/// transact-rs/sqlx#4335), so a batch must carry a busy server's events for that long. SQLite
/// writes it as several statements inside the one transaction; see `Store::insert_audit_events`.
const BATCH: usize = 4096;
/// How long the writer keeps retrying a batch that failed. Requests wait for it, and the
/// database's own wait for a lock or a connection already bounds each attempt, so a fault that
/// lasts longer fails the batch's requests instead of holding them.
const RETRY_FOR: Duration = Duration::from_secs(1);

/// What the writer tells the waiters of a batch: committed, or the one error that kept it from
/// being committed (shared by every waiter).
type Outcome = Result<(), Arc<anyhow::Error>>;

enum Message {
    /// An event, and the request waiting for its commit.
    Event(AuditEvent, oneshot::Sender<Outcome>),
    /// Answered once everything sent before it has been written.
    Barrier(oneshot::Sender<Outcome>),
}

/// Why an audit event is not on record. The cause (a `sqlx::Error`, say) is the next link of
/// the error's chain, as the database reported it.
#[derive(Debug)]
pub enum AuditError {
    /// The batch holding the event could not be committed.
    NotStored(Arc<anyhow::Error>),
    /// The writer task is gone (the runtime is shutting down).
    WriterStopped,
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::NotStored(_) => f.write_str("audit event could not be stored"),
            AuditError::WriterStopped => f.write_str("audit writer has stopped"),
        }
    }
}

impl std::error::Error for AuditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuditError::NotStored(cause) => Some(cause.as_ref().as_ref()),
            AuditError::WriterStopped => None,
        }
    }
}

/// Handle for recording audit events; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
}

impl AuditLog {
    /// Starts the writer task, which writes through a connection of its own
    /// ([`Store::dedicated`]) so that the pages it writes stay in that connection's cache. It
    /// ends, after writing what is queued, when every handle is dropped.
    pub fn spawn(db: Store) -> (AuditLog, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(db.dedicated(), db, rx));
        (AuditLog { tx }, task)
    }

    /// Returns once `event` is committed, together with whatever else was queued; an
    /// [`AuditError`] (in the `anyhow` chain) when it is not. A request whose event is not on
    /// record must not be answered as if it succeeded.
    pub async fn record(&self, event: AuditEvent) -> anyhow::Result<()> {
        self.record_all([event]).await
    }

    /// [`record`](Self::record) for several events of one request: all are handed over before
    /// any commit is awaited, so they share a batch rather than waiting for one commit each.
    pub async fn record_all(
        &self,
        events: impl IntoIterator<Item = AuditEvent>,
    ) -> anyhow::Result<()> {
        let mut waiting = Vec::new();
        for event in events {
            let (done, committed) = oneshot::channel();
            self.send(Message::Event(event, done)).await?;
            waiting.push(committed);
        }
        for committed in waiting {
            outcome(committed.await)?;
        }
        Ok(())
    }

    /// Waits until the writer is done with everything handed to it before this call, including
    /// events whose request went away before their commit (a dropped connection). A failed
    /// batch has already been logged by the writer.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.send(Message::Barrier(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    async fn send(&self, message: Message) -> Result<(), AuditError> {
        self.tx
            .send(message)
            .await
            .map_err(|_| AuditError::WriterStopped)
    }
}

/// What a waiter heard from the writer, as `record`'s result.
fn outcome(heard: Result<Outcome, oneshot::error::RecvError>) -> anyhow::Result<()> {
    match heard {
        Ok(Ok(())) => Ok(()),
        Ok(Err(cause)) => Err(AuditError::NotStored(cause).into()),
        // The writer went away with the event unwritten.
        Err(_) => Err(AuditError::WriterStopped.into()),
    }
}

/// Takes whatever is queued (up to [`BATCH`] events) as soon as the previous batch is done,
/// writes it in one transaction and tells each waiter how it went. `db` is the writer's own
/// connection; `shared` the service's pool, on which the bulk of each checkpoint runs beside the
/// writer's batches ([`copy_back`]).
async fn write_loop(db: Store, shared: Store, mut rx: mpsc::Receiver<Message>) {
    let mut events = Vec::with_capacity(BATCH);
    let mut waiters = Vec::with_capacity(BATCH);
    let mut busy = false;
    let mut checkpoint_due = false;
    // The checkpoint's bulk copy, while it runs beside the batches.
    let mut copying: Option<tokio::task::JoinHandle<()>> = None;
    // One timer for the writer's life, reset when a checkpoint falls due (about once a
    // second), not made anew for every batch.
    let timer = tokio::time::sleep(CHECKPOINT_AFTER);
    tokio::pin!(timer);
    loop {
        let first = tokio::select! {
            message = rx.recv() => match message {
                Some(message) => message,
                // Every handle is gone. What the log still holds, SQLite copies back when the
                // pool's last connection closes.
                None => break,
            },
            () = &mut timer, if checkpoint_due && copying.is_none() => {
                copying = Some(tokio::spawn(copy_back(shared.clone())));
                continue;
            }
            _ = async { copying.as_mut().expect("a copy is running").await }, if copying.is_some() => {
                copying = None;
                // The catch-up: only what was written during the bulk copy is left.
                checkpoint_due = !checkpoint(&db).await;
                if checkpoint_due {
                    timer.as_mut().reset(Instant::now() + CHECKPOINT_AFTER);
                }
                continue;
            }
        };
        take(first, &mut events, &mut waiters);
        drain(&mut rx, &mut events, &mut waiters);
        // Under concurrent load (the last batch held several events), let the requests that
        // are ready to run hand over their events first: each commit costs thread hand-offs
        // (to SQLite's connection thread and back), so fewer, larger batches cost less per
        // request. A yield waits for no timer, and a lone request never yields.
        if busy {
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
                drain(&mut rx, &mut events, &mut waiters);
            }
        }
        busy = events.len() > 1;
        let outcome = write_with_retry(&db, &events).await.map_err(Arc::new);
        if outcome.is_ok() && !events.is_empty() && db.has_wal() && !checkpoint_due {
            checkpoint_due = true;
            timer.as_mut().reset(Instant::now() + CHECKPOINT_AFTER);
        }
        events.clear();
        for done in waiters.drain(..) {
            // A waiter that went away (its connection dropped) needs no answer.
            let _ = done.send(outcome.clone());
        }
    }
    // A copy still running would hold a connection of a pool that is closing.
    if let Some(copy) = copying {
        copy.abort();
    }
}

/// The bulk of a checkpoint, on a connection of the service's pool while the writer goes on
/// committing batches: passive checkpoints, each copying what the log holds when it starts,
/// until one takes less than [`CATCH_UP_BELOW`] (what it leaves, the writes made while it ran,
/// is then small), at most [`COPY_PASSES`] of them. The writer's own checkpoint between two
/// batches then has only that rest to copy, so the requests of the next batch wait for a short
/// copy, not for a second's worth of writes: under refresh-token load that was up to 20,000
/// pages and 340 ms, once a second, for every request waiting on the writer.
async fn copy_back(shared: Store) {
    for _ in 0..COPY_PASSES {
        let began = Instant::now();
        match shared.checkpoint().await {
            Ok(done) => tracing::debug!(
                log_frames = done.log_frames,
                copied_frames = done.copied_frames,
                took_ms = began.elapsed().as_secs_f64() * 1e3,
                "WAL copied back beside the writer"
            ),
            // The writer's own checkpoint reports its failure, if it fails too.
            Err(err) => {
                tracing::debug!(
                    error = format!("{err:#}"),
                    "WAL copy beside the writer failed"
                );
                return;
            }
        }
        if began.elapsed() < CATCH_UP_BELOW {
            return;
        }
    }
}

/// A pass of [`copy_back`] shorter than this leaves little for the writer's own checkpoint.
const CATCH_UP_BELOW: Duration = Duration::from_millis(10);

/// The most passes [`copy_back`] makes: where the disk copies no faster than the log grows, the
/// writer's checkpoint takes what is left.
const COPY_PASSES: usize = 4;

/// How long the write-ahead log may hold a write before the writer checkpoints it. Under steady
/// load, one checkpoint a second copies what a second of commits wrote, which bounds the log.
const CHECKPOINT_AFTER: Duration = Duration::from_secs(1);

/// Copies the write-ahead log into the database file without waiting for any lock (`PASSIVE`).
/// Run between two of the writer's batches, that usually lets the log start over at the next
/// one; other connections' writes (a refresh token's rotation, say) or readers that began
/// before the copy can keep it from that, and the log grows. Once it holds more than
/// [`RESTART_ABOVE_FRAMES`], the checkpoint makes it start over (`RESTART`): other
/// connections' writes wait meanwhile, and the writer waits for them and for earlier readers,
/// for at most [`CHECKPOINT_WAIT`]. A checkpoint that gives up or fails is tried again a
/// second later.
async fn checkpoint(db: &Store) -> bool {
    let began = Instant::now();
    let done = match db.checkpoint().await {
        Ok(done) if done.log_frames > RESTART_ABOVE_FRAMES => db.restart_log(CHECKPOINT_WAIT).await,
        done => done,
    };
    match done {
        Ok(done) => {
            tracing::debug!(
                log_frames = done.log_frames,
                copied_frames = done.copied_frames,
                took_ms = began.elapsed().as_secs_f64() * 1e3,
                "WAL checkpoint"
            );
            done.complete()
        }
        Err(err) => {
            tracing::warn!(
                error = format!("{err:#}"),
                "WAL checkpoint failed; tried again in a second"
            );
            false
        }
    }
}

/// Frames (pages of 4 KiB) past which a checkpoint makes the log start over: 16 MiB, four times
/// what SQLite's own automatic checkpoints let it reach.
const RESTART_ABOVE_FRAMES: i64 = 4096;

/// The longest a `RESTART` checkpoint waits for other connections: their statements take a
/// millisecond or so, and every request queued behind the writer waits as long.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(20);

/// How often the writer yields to gather events before a batch under concurrent load.
const GATHER_YIELDS: usize = 2;

fn take(
    message: Message,
    events: &mut Vec<AuditEvent>,
    waiters: &mut Vec<oneshot::Sender<Outcome>>,
) {
    match message {
        Message::Event(event, done) => {
            events.push(event);
            waiters.push(done);
        }
        Message::Barrier(done) => waiters.push(done),
    }
}

/// Takes what is queued, up to [`BATCH`] events.
fn drain(
    rx: &mut mpsc::Receiver<Message>,
    events: &mut Vec<AuditEvent>,
    waiters: &mut Vec<oneshot::Sender<Outcome>>,
) {
    while events.len() < BATCH {
        match rx.try_recv() {
            Ok(message) => take(message, events, waiters),
            Err(_) => break,
        }
    }
}

async fn write_with_retry(db: &Store, events: &[AuditEvent]) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match db.insert_audit_events(events).await {
            Ok(()) => return Ok(()),
            Err(err) if started.elapsed() + delay < RETRY_FOR => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    attempt,
                    "audit write failed; retrying"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    events = events.len(),
                    "audit events could not be stored; their requests fail"
                );
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(migrated: bool) -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let db = Store::connect(&url).await.unwrap();
        if migrated {
            db.migrate().await.unwrap();
        }
        (db, dir)
    }

    fn event(n: usize) -> AuditEvent {
        AuditEvent::new("test", "test.event", 1, serde_json::json!({ "n": n }))
    }

    #[tokio::test]
    async fn record_returns_once_the_event_is_stored() {
        let (db, _dir) = store(true).await;
        let (audit, _writer) = AuditLog::spawn(db.clone());
        let records: Vec<_> = (0..100)
            .map(|n| {
                let audit = audit.clone();
                tokio::spawn(async move { audit.record(event(n)).await })
            })
            .collect();
        for record in records {
            record.await.unwrap().unwrap();
        }
        assert_eq!(db.list_audit(None, 1000).await.unwrap().len(), 100);
    }

    /// How many audit events the database file alone (without its write-ahead log) holds: what
    /// checkpoints have copied back so far. A file that has no schema yet holds none.
    async fn events_in_the_file_alone(path: &std::path::Path) -> usize {
        let (db, _dir) = crate::store::file_alone::copy(path).await;
        let events = db
            .list_audit(None, 100_000)
            .await
            .map_or(0, |events| events.len());
        db.close().await;
        events
    }

    #[tokio::test]
    async fn the_writer_checkpoints_the_log_so_it_stays_bounded() {
        const ROUNDS: usize = 5;
        const PER_ROUND: usize = 200;
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = crate::store::file_alone::service_store(dir.path(), "audit.db").await;
        let (audit, _writer) = AuditLog::spawn(db.clone());
        // About 1 KB each, so that a round fills dozens of pages of the log.
        let padding = "x".repeat(1000);
        let mut log_sizes = Vec::new();
        for round in 1..=ROUNDS {
            let records: Vec<_> = (0..PER_ROUND)
                .map(|n| {
                    let audit = audit.clone();
                    let detail = serde_json::json!({ "n": n, "padding": padding });
                    tokio::spawn(async move {
                        audit
                            .record(AuditEvent::new("test", "test.event", 1, detail))
                            .await
                    })
                })
                .collect();
            for record in records {
                record.await.unwrap().unwrap();
            }
            // With automatic checkpoints off, only the writer's checkpoint puts the events into
            // the file itself: without it the log would hold them all and grow every round.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let stored = events_in_the_file_alone(&path).await;
                if stored == round * PER_ROUND {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "round {round}: {stored} events in the database file after 30 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut log = path.clone().into_os_string();
            log.push("-wal");
            log_sizes.push(std::fs::metadata(&log).unwrap().len());
        }
        // Once a checkpoint has copied the whole log, the next write starts it over from the
        // beginning, so each round reuses the space of the last instead of appending.
        assert!(
            log_sizes[ROUNDS - 1] < 3 * log_sizes[0],
            "the write-ahead log grew: {log_sizes:?} bytes after each round"
        );
    }

    /// How many times SQLite's write-ahead log of `path` has started over from its beginning:
    /// the checkpoint sequence number in the log file's header, which each new start of the
    /// log writes one higher.
    fn log_restarts(path: &std::path::Path) -> u32 {
        use std::io::Read;
        let mut log = path.as_os_str().to_owned();
        log.push("-wal");
        let mut header = [0u8; 16];
        std::fs::File::open(&log)
            .and_then(|mut file| file.read_exact(&mut header))
            .unwrap();
        u32::from_be_bytes(header[12..16].try_into().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_starts_over_while_writes_never_stop() {
        // A checkpoint copies the log into the database file, but the log starts over from its
        // beginning only at a write that follows a complete checkpoint with no write between
        // them. One that ran beside the writer's batches never let it, and under steady load
        // the log file grew by the whole of what was written.
        let dir = tempfile::tempdir().unwrap();
        let (db, path) = crate::store::file_alone::service_store(dir.path(), "audit.db").await;
        let (audit, _writer) = AuditLog::spawn(db.clone());
        audit.record(event(0)).await.unwrap();
        let first = log_restarts(&path);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let padding = "x".repeat(2000);
        let mut load = Vec::new();
        // Writers that never pause, so a batch is always being written or gathered...
        for task in 0..16 {
            let (audit, stop, padding) = (audit.clone(), stop.clone(), padding.clone());
            load.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let detail = serde_json::json!({ "task": task, "padding": padding });
                    audit
                        .record(AuditEvent::new("test", "test.event", 1, detail))
                        .await
                        .unwrap();
                }
            }));
        }
        // ...and readers that never pause either, on the service's other connections.
        for _ in 0..2 {
            let (db, stop) = (db.clone(), stop.clone());
            load.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    db.list_audit(None, 1).await.unwrap();
                }
            }));
        }
        // Several checkpoints (about a second apart) each start the log over; the deadline only
        // tells that from never.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let restarts = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let restarts = log_restarts(&path) - first;
            if restarts >= 3 || tokio::time::Instant::now() > deadline {
                break restarts;
            }
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in load {
            task.await.unwrap();
        }
        assert!(
            restarts >= 3,
            "the log started over {restarts} times in 30 s of writing"
        );
    }

    #[tokio::test]
    async fn every_waiter_of_a_failed_batch_gets_the_database_error() {
        // No schema: every insert fails.
        let (db, _dir) = store(false).await;
        let (audit, _writer) = AuditLog::spawn(db);
        let records: Vec<_> = (0..20)
            .map(|n| {
                let audit = audit.clone();
                tokio::spawn(async move { audit.record(event(n)).await })
            })
            .collect();
        for record in records {
            let err = record.await.unwrap().unwrap_err();
            assert!(matches!(
                err.downcast_ref::<AuditError>(),
                Some(AuditError::NotStored(_))
            ));
            assert!(
                err.chain()
                    .any(|cause| cause.downcast_ref::<sqlx::Error>().is_some()),
                "{err:#}"
            );
        }
    }

    #[tokio::test]
    async fn a_stopped_writer_is_an_error() {
        let (db, _dir) = store(true).await;
        let (audit, writer) = AuditLog::spawn(db);
        writer.abort();
        let _ = writer.await;
        let err = audit.record(event(0)).await.unwrap_err();
        assert!(matches!(
            err.downcast_ref::<AuditError>(),
            Some(AuditError::WriterStopped)
        ));
    }
}
