//! [`Tasks`]: the connection tasks of one accept loop, kept only so that a
//! shutdown can wait for them and abort the ones that outlive its timeout.
//!
//! Not a `JoinSet`: a set registers a waker with every task and moves the
//! task between two locked lists when it ends (an `Arc` per task, lock round
//! trips; callgrind: ~775 of ~39,000 instructions per handshake). Here a
//! task is a `JoinHandle` pushed onto a `Vec` that only the loop touches;
//! nothing is woken when a task ends, and ended tasks are dropped in batches
//! (one atomic load each), amortized O(1) per connection.

use std::future::Future;
use tokio::task::JoinHandle;

/// Fewest handles kept before a sweep for ended tasks.
const MIN_SWEEP_AT: usize = 64;

/// The live connection tasks of one `serve`, and the ended ones not yet
/// swept (each keeps its task's allocation until then).
pub(super) struct Tasks {
    handles: Vec<JoinHandle<()>>,
    /// Sweep when this many handles are held: twice what the last sweep
    /// left, so that each sweep pays for itself.
    sweep_at: usize,
}

impl Tasks {
    pub(super) fn new() -> Self {
        Tasks {
            handles: Vec::new(),
            sweep_at: MIN_SWEEP_AT,
        }
    }

    /// Spawns `task` on the runtime and keeps its handle.
    pub(super) fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.handles.push(tokio::spawn(task));
        if self.handles.len() >= self.sweep_at {
            self.sweep();
        }
    }

    /// Drops the handles of ended tasks, which frees their memory.
    pub(super) fn sweep(&mut self) {
        self.handles.retain(|h| !h.is_finished());
        self.sweep_at = (2 * self.handles.len()).max(MIN_SWEEP_AT);
        // After a crowd has left, do not keep room for it.
        if self.handles.capacity() > 2 * self.sweep_at {
            self.handles.shrink_to(self.sweep_at);
        }
    }

    /// Handles held: live tasks plus ended ones not yet swept.
    pub(super) fn len(&self) -> usize {
        self.handles.len()
    }

    /// Waits until every task has ended (a panicked task counts as ended).
    /// Cancel-safe: a handle is let go only once its task has ended, so
    /// after a timeout the rest can still be aborted and waited for.
    pub(super) async fn join_all(&mut self) {
        while let Some(h) = self.handles.last_mut() {
            let _ = h.await;
            self.handles.pop();
        }
        self.sweep_at = MIN_SWEEP_AT;
    }

    /// Asks every task still running to stop at its next await point.
    pub(super) fn abort_all(&self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn ended_tasks_are_swept_and_live_ones_kept() {
        let mut tasks = Tasks::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = rx.await;
        });
        for _ in 0..200 {
            tasks.spawn(async {});
        }
        // Let the short tasks run to their end.
        tokio::time::sleep(Duration::from_millis(20)).await;
        tasks.sweep();
        assert_eq!(tasks.len(), 1, "only the waiting task is left");
        assert_eq!(tasks.sweep_at, MIN_SWEEP_AT);
        drop(tx);
        tasks.join_all().await;
        assert_eq!(tasks.len(), 0);
    }

    #[tokio::test]
    async fn handles_of_ended_tasks_do_not_pile_up() {
        let mut tasks = Tasks::new();
        let mut most = 0;
        for _ in 0..10_000 {
            tasks.spawn(async {});
            most = most.max(tasks.len());
            // This runtime runs the task when the test yields.
            tokio::task::yield_now().await;
        }
        assert!(most <= MIN_SWEEP_AT, "held {most} handles at once");
    }

    #[tokio::test]
    async fn room_for_a_crowd_is_given_back_once_it_left() {
        let mut tasks = Tasks::new();
        let (tx, rx) = tokio::sync::watch::channel(false);
        for _ in 0..10_000 {
            let mut rx = rx.clone();
            tasks.spawn(async move {
                let _ = rx.wait_for(|gone| *gone).await;
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        tasks.sweep();
        assert_eq!(tasks.len(), 10_000, "a live task's handle is kept");
        tx.send(true).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tasks.sweep();
        assert_eq!(tasks.len(), 0);
        assert!(
            tasks.handles.capacity() <= 2 * MIN_SWEEP_AT,
            "capacity {} kept after the crowd left",
            tasks.handles.capacity()
        );
    }

    #[tokio::test]
    async fn join_all_after_a_timeout_and_abort_waits_for_the_rest() {
        let mut tasks = Tasks::new();
        let dropped = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Drop for Count {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        for _ in 0..3 {
            let c = Count(dropped.clone());
            tasks.spawn(async move {
                let _c = c;
                std::future::pending::<()>().await;
            });
        }
        tasks.spawn(async {});
        let waited = tokio::time::timeout(Duration::from_millis(50), tasks.join_all()).await;
        assert!(waited.is_err(), "the pending tasks never end by themselves");
        assert_eq!(
            tasks.len(),
            3,
            "the ended task was let go, the live ones kept"
        );
        tasks.abort_all();
        tasks.join_all().await;
        assert_eq!(
            dropped.load(SeqCst),
            3,
            "aborted tasks dropped their futures"
        );
    }
}
