//! The journal: the one writer of the database, with group commit.
//!
//! Invariants (tests cite them by number):
//! 1. Only the journal thread opens write transactions.
//! 2. A waiter gets `Ok` only after the commit holding its write returned `Ok` with
//!    `Durability::Immediate` (fsync).
//! 3. Everything one job writes (an event and its delivery rows, a source and its indexes)
//!    is in one transaction.
//! 4. If a commit fails, or a job hits a storage error, every waiter in that batch gets an
//!    error; nothing of the batch is visible afterwards.
//! 5. A job that returns a logical error (not found, conflict, invalid) has written nothing,
//!    so the rest of its batch commits unaffected. Jobs check before they write.
//!
//! Throughput comes from batching, not from weaker durability: the writer takes the first
//! waiting job, drains whatever else is already queued (up to `max_batch`), runs all of them in
//! one transaction, takes in and runs what arrived meanwhile until the queue is empty, commits
//! once, then answers every waiter. No linger timer: under light load a job commits alone at
//! once; under heavy load batches grow by themselves while the previous fsync is in progress.
//! The queue is bounded; a full queue is back-pressure that callers turn into 503 after
//! `enqueue_timeout`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};
use redb::{Database, Durability, Table, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::deliveries::DueEntry;
use super::tables::{DEDUPE, DELIVERIES, DUE, EVENTS};
use super::{DueListener, StoreError};

/// The open write transaction of one batch, as jobs see it.
///
/// The hot tables of the ingest path stay open across consecutive jobs of a batch instead of
/// being opened and closed by each job (redb allows one open handle per table, and opening one
/// is a lookup in the table tree). Asking for the raw transaction closes them first, so a job
/// that opens tables itself can never collide with a cached handle.
pub struct Batch<'t> {
    txn: &'t WriteTransaction,
    hot: Option<HotTables<'t>>,
}

/// Tables every event append writes.
pub struct HotTables<'t> {
    pub events: Table<'t, (u128, u128), &'static [u8]>,
    pub deliveries: Table<'t, (u128, u128), &'static [u8]>,
    pub due: Table<'t, (u64, u128), (u128, u128, u128)>,
    pub dedupe: Table<'t, (u128, &'static str), (u128, u64)>,
}

impl<'t> Batch<'t> {
    /// The transaction itself, with the cached hot tables closed.
    pub fn txn(&mut self) -> &'t WriteTransaction {
        self.hot = None;
        self.txn
    }

    /// The hot tables, opened on first use in the batch.
    pub fn hot(&mut self) -> Result<&mut HotTables<'t>, StoreError> {
        let hot = match self.hot.take() {
            Some(hot) => hot,
            None => HotTables {
                events: self.txn.open_table(EVENTS)?,
                deliveries: self.txn.open_table(DELIVERIES)?,
                due: self.txn.open_table(DUE)?,
                dedupe: self.txn.open_table(DEDUPE)?,
            },
        };
        Ok(self.hot.insert(hot))
    }
}

/// One unit of work for the writer thread.
trait Job: Send {
    /// Runs inside the batch transaction. `Err` is a storage failure that dooms the batch
    /// (invariant 4); logical outcomes are kept inside the job and reported in `finish`.
    fn apply(&mut self, batch: &mut Batch<'_>) -> Result<(), StoreError>;
    /// After a successful commit, before any waiter of the batch is answered: adds the queue
    /// entries the job created.
    fn queued(&mut self, out: &mut Vec<DueEntry>);
    /// Called once the batch's fate is known.
    fn finish(self: Box<Self>, batch: Result<(), Arc<StoreError>>);
}

/// Names the queue entries a job's result created, for the due listener.
pub type QueuedBy<R> = Box<dyn FnOnce(&R, &mut Vec<DueEntry>) + Send>;

struct TypedJob<F, R> {
    work: Option<F>,
    outcome: Option<Result<R, StoreError>>,
    queued_by: Option<QueuedBy<R>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Job for TypedJob<F, R>
where
    F: FnOnce(&mut Batch<'_>) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn apply(&mut self, batch: &mut Batch<'_>) -> Result<(), StoreError> {
        let Some(work) = self.work.take() else {
            return Ok(());
        };
        match work(batch) {
            Err(e) if e.is_storage_failure() => Err(e),
            outcome => {
                self.outcome = Some(outcome);
                Ok(())
            }
        }
    }

    fn queued(&mut self, out: &mut Vec<DueEntry>) {
        if let (Some(Ok(value)), Some(queued_by)) = (&self.outcome, self.queued_by.take()) {
            queued_by(value, out);
        }
    }

    fn finish(self: Box<Self>, batch: Result<(), Arc<StoreError>>) {
        let answer = match (batch, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Err(cause), _) => Err(StoreError::BatchFailed(cause)),
            // apply() always records an outcome when the batch succeeds; a job the writer never
            // applied cannot be in a successful batch.
            (Ok(()), None) => Err(StoreError::ShuttingDown),
        };
        // The waiter may have gone (client disconnected); its write stands regardless.
        let _ = self.reply.send(answer);
    }
}

/// Journal metrics, registered on the gateway's registry.
#[derive(Clone)]
pub struct JournalMetrics {
    commit_duration: Histogram,
    batch_size: Histogram,
    commits: IntCounter,
    commit_failures: IntCounter,
}

impl JournalMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let commit_duration = Histogram::with_opts(
            HistogramOpts::new(
                "hookgate_journal_commit_duration_seconds",
                "Time to write and fsync one journal batch.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "hookgate_journal_batch_size",
                "Writes committed together in one journal transaction.",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ]),
        )?;
        let commits = IntCounter::new(
            "hookgate_journal_commits_total",
            "Journal transactions committed durably.",
        )?;
        let commit_failures = IntCounter::new(
            "hookgate_journal_commit_failures_total",
            "Journal batches that failed; every write in them was answered with an error.",
        )?;
        registry.register(Box::new(commit_duration.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(commits.clone()))?;
        registry.register(Box::new(commit_failures.clone()))?;
        Ok(Self {
            commit_duration,
            batch_size,
            commits,
            commit_failures,
        })
    }
}

/// Shared counters a caller can read: commits vs writes, and whether the last commit worked.
#[derive(Debug, Default)]
pub struct JournalStats {
    pub commits: AtomicU64,
    pub writes: AtomicU64,
    /// False after a failed commit until the next successful one; `/readyz` reports it.
    pub writable: AtomicBool,
}

/// The sending side: cheap to clone, one per request handler.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Box<dyn Job>>,
    enqueue_timeout: Duration,
    stats: Arc<JournalStats>,
}

/// Completes when the writer thread has committed its last batch and exited.
pub struct JournalThread {
    done: oneshot::Receiver<()>,
}

impl JournalThread {
    /// Waits for the writer to finish; it does so once every `Journal` clone is dropped.
    pub async fn join(self) {
        let _ = self.done.await;
    }
}

pub struct JournalOptions {
    pub queue_capacity: usize,
    pub max_batch: usize,
    pub enqueue_timeout: Duration,
}

// === impl Journal ===

impl Journal {
    /// `due_listener`, once set, hears of every batch's new queue entries (see
    /// [`submit_then`](Self::submit_then)).
    pub fn spawn(
        db: Arc<Database>,
        options: JournalOptions,
        metrics: JournalMetrics,
        due_listener: Arc<OnceLock<DueListener>>,
    ) -> Result<(Journal, JournalThread), StoreError> {
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let (done_tx, done) = oneshot::channel();
        let stats = Arc::new(JournalStats {
            writable: AtomicBool::new(true),
            ..Default::default()
        });
        let writer_stats = stats.clone();
        let max_batch = options.max_batch.max(1);
        std::thread::Builder::new()
            .name("hookgate-journal".into())
            .spawn(move || {
                writer_loop(&db, rx, max_batch, &metrics, &writer_stats, &due_listener);
                // Close the database only after the last batch; dropping our Arc is enough
                // once readers are gone too.
                drop(db);
                let _ = done_tx.send(());
            })
            .map_err(StoreError::SpawnWriter)?;
        Ok((
            Journal {
                tx,
                enqueue_timeout: options.enqueue_timeout,
                stats,
            },
            JournalThread { done },
        ))
    }

    pub fn stats(&self) -> &Arc<JournalStats> {
        &self.stats
    }

    /// Runs `work` inside the next batch and answers once that batch is durable.
    ///
    /// `work` must follow invariant 5: any logical `Err` is returned before the first write.
    pub fn submit<F, R>(&self, work: F) -> impl Future<Output = Result<R, StoreError>> + Send + '_
    where
        F: FnOnce(&mut Batch<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.submit_then(work, None)
    }

    /// Like [`submit`](Self::submit), and once the commit succeeded, `queued_by` names the queue
    /// entries the result created, on the writer thread — even if the waiter has gone away
    /// meanwhile. The whole batch's entries go to the due listener (the scheduler) in one call,
    /// before any waiter of the batch is answered: the scheduler learns of every committed
    /// delivery whatever happens to the request that caused it, and before anything the
    /// request's client does next. `queued_by` must be quick and must not block.
    ///
    /// The job is built here and enqueued on the first poll; the returned future holds only the
    /// boxed job and the reply channel, not `work` (an `async fn` would keep `work` as its
    /// argument and again inside the job while it awaits).
    pub fn submit_then<F, R>(
        &self,
        work: F,
        queued_by: Option<QueuedBy<R>>,
    ) -> impl Future<Output = Result<R, StoreError>> + Send + '_
    where
        F: FnOnce(&mut Batch<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob {
            work: Some(work),
            outcome: None,
            queued_by,
            reply,
        });
        async move {
            self.enqueue(job).await?;
            answer.await.map_err(|_| StoreError::ShuttingDown)?
        }
    }

    async fn enqueue(&self, job: Box<dyn Job>) -> Result<(), StoreError> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::ShuttingDown),
            Err(mpsc::error::TrySendError::Full(job)) => {
                match self.tx.send_timeout(job, self.enqueue_timeout).await {
                    Ok(()) => Ok(()),
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(StoreError::Overloaded),
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(StoreError::ShuttingDown),
                }
            }
        }
    }
}

fn writer_loop(
    db: &Database,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    metrics: &JournalMetrics,
    stats: &JournalStats,
    due_listener: &OnceLock<DueListener>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    let mut queued = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        take_queued(&mut rx, &mut batch, max_batch);
        let started = Instant::now();
        let outcome = commit_batch(db, &mut batch, &mut rx, max_batch).map_err(Arc::new);
        let n = batch.len();
        metrics
            .commit_duration
            .observe(started.elapsed().as_secs_f64());
        metrics.batch_size.observe(n as f64);
        match &outcome {
            Ok(()) => {
                metrics.commits.inc();
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.writes.fetch_add(n as u64, Ordering::Relaxed);
                stats.writable.store(true, Ordering::Relaxed);
                // One announcement per batch, not per write: the scheduler takes a batch's
                // entries in one message.
                for job in batch.iter_mut() {
                    job.queued(&mut queued);
                }
                if let (false, Some(listener)) = (queued.is_empty(), due_listener.get()) {
                    listener(&queued);
                }
                queued.clear();
            }
            Err(e) => {
                metrics.commit_failures.inc();
                stats.writable.store(false, Ordering::Relaxed);
                tracing::error!(writes = n, error = %e, "Journal batch failed; its writes were refused.");
            }
        }
        for job in batch.drain(..) {
            job.finish(outcome.clone());
        }
    }
    tracing::debug!("Journal writer stopped.");
}

/// Moves what is already queued into `batch`, up to `max_batch`, without waiting.
fn take_queued(
    rx: &mut mpsc::Receiver<Box<dyn Job>>,
    batch: &mut Vec<Box<dyn Job>>,
    max_batch: usize,
) {
    while batch.len() < max_batch {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Applies `batch` and commits it. Writes that arrive while the batch is being applied join
/// it before the commit, up to `max_batch`: otherwise they would wait for this commit's fsync
/// and then the next batch's, and each fsync would cover fewer writes.
#[tracing::instrument(skip_all)]
fn commit_batch(
    db: &Database,
    batch: &mut Vec<Box<dyn Job>>,
    rx: &mut mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    // Immediate is redb's default; it is set explicitly because invariant 2 depends on it.
    txn.set_durability(Durability::Immediate)
        .map_err(redb::Error::from)?;
    let mut applied = Ok(());
    {
        let mut open = Batch {
            txn: &txn,
            hot: None,
        };
        let mut done = 0;
        'apply: loop {
            for job in batch[done..].iter_mut() {
                if let Err(e) = job.apply(&mut open) {
                    applied = Err(e);
                    break 'apply;
                }
            }
            done = batch.len();
            take_queued(rx, batch, max_batch);
            if batch.len() == done {
                break;
            }
        }
        // `open` drops here, closing cached tables before the commit needs the transaction.
    }
    if let Err(e) = applied {
        txn.abort()?;
        return Err(e);
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A journal on a fresh database in `dir`.
    fn test_journal(
        dir: &tempfile::TempDir,
        capacity: usize,
        due_listener: Arc<OnceLock<DueListener>>,
    ) -> (Journal, JournalThread) {
        let db = Database::create(dir.path().join("j.redb")).unwrap();
        let options = JournalOptions {
            queue_capacity: capacity,
            max_batch: capacity,
            enqueue_timeout: Duration::from_secs(5),
        };
        let metrics = JournalMetrics::register(&Registry::new()).unwrap();
        Journal::spawn(Arc::new(db), options, metrics, due_listener).unwrap()
    }

    /// A job's captures live in its box, not in the waiting future as well: appends carry the
    /// whole event, and the future is part of every request's state.
    #[tokio::test]
    async fn submit_future_does_not_hold_the_work() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, thread) = test_journal(&dir, 16, Arc::default());
        let payload = [7u8; 4096];
        let pending = journal.submit(move |_batch| Ok(payload.len()));
        assert!(
            std::mem::size_of_val(&pending) < 512,
            "submit future is {} bytes",
            std::mem::size_of_val(&pending)
        );
        assert_eq!(pending.await.unwrap(), 4096);
        drop(journal);
        thread.join().await;
    }

    /// Every write's queue entries reach the listener before its waiter is answered, a whole
    /// batch in one call, and none from a write whose result was a logical error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_s_queue_entries_reach_the_listener_in_one_call_before_any_answer() {
        use crate::ids::{AccountId, DeliveryId, DestinationId, EventId};
        use std::collections::HashSet;
        use std::sync::Mutex;

        let dir = tempfile::tempdir().unwrap();
        let heard: Arc<Mutex<(usize, HashSet<u128>)>> = Arc::default();
        let listener: Arc<OnceLock<DueListener>> = Arc::default();
        let record = heard.clone();
        let _ = listener.set(Arc::new(move |entries: &[DueEntry]| {
            let mut heard = record.lock().unwrap();
            heard.0 += 1;
            heard.1.extend(entries.iter().map(|e| e.delivery.raw()));
        }));
        let (journal, thread) = test_journal(&dir, 1024, listener);
        let journal = Arc::new(journal);
        let waiters: Vec<_> = (0..200u128)
            .map(|i| {
                let (journal, heard) = (journal.clone(), heard.clone());
                tokio::spawn(async move {
                    let queued_by: QueuedBy<u128> = Box::new(|id: &u128, out| {
                        out.push(DueEntry {
                            due_ms: 0,
                            delivery: DeliveryId(*id),
                            account: AccountId(1),
                            event: EventId(1),
                            destination: DestinationId(1),
                        })
                    });
                    let answer = journal
                        .submit_then(
                            move |_| {
                                if i % 10 == 0 {
                                    Err(StoreError::NotFound("odd one out"))
                                } else {
                                    Ok(i)
                                }
                            },
                            Some(queued_by),
                        )
                        .await;
                    if let Ok(id) = answer {
                        assert!(heard.lock().unwrap().1.contains(&id), "{id} answered first");
                    }
                })
            })
            .collect();
        for w in waiters {
            w.await.unwrap();
        }
        let commits = journal.stats().commits.load(Ordering::Relaxed) as usize;
        let (calls, ids) = std::mem::take(&mut *heard.lock().unwrap());
        assert_eq!(
            ids,
            (0..200).filter(|i| i % 10 != 0).collect::<HashSet<_>>()
        );
        assert!(calls <= commits, "{calls} calls for {commits} commits");
        drop(journal);
        thread.join().await;
    }

    /// A write that arrives while the writer is applying a batch is committed with that batch,
    /// not after its fsync in a batch of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_arriving_while_a_batch_is_applied_joins_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, thread) = test_journal(&dir, 16, Arc::default());
        let journal = Arc::new(journal);
        let (applying, writer_inside) = std::sync::mpsc::channel();
        let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let journal = journal.clone();
            async move {
                journal
                    .submit(move |_| {
                        applying.send(()).unwrap();
                        wait_for_go.recv().unwrap();
                        Ok(1u8)
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || writer_inside.recv().unwrap())
            .await
            .unwrap();
        let mut second = Box::pin(journal.submit(|_| Ok(2u8)));
        // One poll puts it in the queue; its answer cannot come before the first batch commits.
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut second)
            .await
            .is_err());
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(second.await.unwrap(), 2);
        assert_eq!(journal.stats().commits.load(Ordering::Relaxed), 1);
        drop(journal);
        thread.join().await;
    }
}
