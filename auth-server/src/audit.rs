//! Audit events written off the request path: handlers hand events to a channel and one task
//! stores them in batches, one transaction per batch, so issuing a token never waits for a write.
//!
//! Where a process may be frozen or reclaimed the moment it has answered (AWS Lambda), the log is
//! durable instead: `record` returns only once the batch holding the event is committed, so every
//! event of an invocation is stored before its response leaves. Events recorded while a batch is
//! being written form the next batch (group commit), and a waiting event is written at once
//! rather than after the linger.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{AuditEvent, Store};

/// Events waiting to be written. When the writer falls this far behind, senders wait (back
/// pressure) rather than drop events: the trail must stay complete.
const QUEUE: usize = 16_384;
/// Largest batch written in one transaction. On PostgreSQL every large statement waits ~40 ms
/// here (sqlx 0.9.0 no longer sets TCP_NODELAY, so Nagle meets the server's delayed ACK;
/// transact-rs/sqlx#4335), so a batch must carry a busy server's events for that long. SQLite
/// writes it as several statements inside the one transaction; see `Store::insert_audit_events`.
const BATCH: usize = 4096;
/// How long the writer gathers events after the first before writing them (unless the batch
/// fills or a flush is asked for): under load, one transaction per 50 ms instead of one per
/// handful of requests, and far fewer wake-ups. At a stop the queue is flushed; a crash can lose
/// at most this much of the trail.
const LINGER: Duration = Duration::from_millis(50);

enum Message {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

/// When `record` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Once the event is queued (a long-running server: a stop flushes the queue).
    Queued,
    /// Once the event is committed (AWS Lambda: nothing runs after the response).
    Committed,
}

/// Handle for recording audit events; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
    durability: Durability,
}

impl AuditLog {
    /// Starts the writer task. It ends, after writing what is queued, when every handle is dropped.
    pub fn spawn(db: Store, durability: Durability) -> (AuditLog, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(db, rx));
        (AuditLog { tx, durability }, task)
    }

    pub async fn record(&self, event: AuditEvent) {
        if self.tx.send(Message::Event(event)).await.is_err() {
            tracing::error!("audit writer has stopped; an audit event was not recorded");
            return;
        }
        if self.durability == Durability::Committed {
            self.flush().await;
        }
    }

    /// Waits until every event recorded before this call is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(db: Store, mut rx: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        loop {
            while let Some(message) = next.take() {
                match message {
                    Message::Event(event) => batch.push(event),
                    Message::Flush(done) => waiters.push(done),
                }
                if batch.len() < BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if batch.len() >= BATCH || !waiters.is_empty() {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(message)) => next = Some(message),
                // Every handle dropped, or lingered long enough.
                Ok(None) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write_with_retry(&db, &batch).await;
            batch.clear();
        }
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write_with_retry(db: &Store, batch: &[AuditEvent]) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match db.insert_audit_events(batch).await {
            Ok(()) => return,
            Err(err) if attempt < 5 => {
                tracing::warn!(error = %err, attempt, "audit write failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(err) => {
                tracing::error!(error = %err, events = batch.len(), "audit events could not be stored");
            }
        }
    }
}
