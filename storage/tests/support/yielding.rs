//! A disk adapter that yields to the executor once before every operation and counts syncs, so
//! tests can interleave tasks deterministically on a single-threaded `block_on` (the simulated
//! disk alone never returns `Pending`).

#![allow(dead_code, reason = "each test crate uses a different part of the harness")]

use nacre_storage::io::{DirLock, Disk, DiskFile, IoBuf, IoResult, OpenMode};
use std::cell::Cell;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Returns `Pending` once, waking itself, then `Ready`.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Runs every future to completion, interleaving them at each `Pending`; results in order.
pub async fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut futures: Vec<Option<Pin<Box<dyn Future<Output = T> + '_>>>> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, result) in futures.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot
                && let Poll::Ready(v) = f.as_mut().poll(cx)
            {
                *result = Some(v);
                *slot = None;
            }
        }
        if futures.iter().all(Option::is_none) { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future completed")).collect()
}

/// Wraps a disk; yields before each op and counts file syncs.
#[derive(Clone)]
pub struct YieldingDisk<D: Disk> {
    pub inner: D,
    pub syncs: Rc<Cell<u64>>,
}

impl<D: Disk> YieldingDisk<D> {
    pub fn new(inner: D) -> Self {
        Self { inner, syncs: Rc::new(Cell::new(0)) }
    }
}

pub struct YieldingFile<F: DiskFile> {
    inner: F,
    syncs: Rc<Cell<u64>>,
}

impl<D: Disk> Disk for YieldingDisk<D> {
    type File = YieldingFile<D::File>;

    async fn open(&self, path: &Path, mode: OpenMode) -> IoResult<Self::File> {
        yield_now().await;
        Ok(YieldingFile { inner: self.inner.open(path, mode).await?, syncs: self.syncs.clone() })
    }
    async fn create_dir_all(&self, path: &Path) -> IoResult<()> {
        yield_now().await;
        self.inner.create_dir_all(path).await
    }
    async fn list(&self, dir: &Path) -> IoResult<Vec<String>> {
        yield_now().await;
        self.inner.list(dir).await
    }
    async fn exists(&self, path: &Path) -> IoResult<bool> {
        yield_now().await;
        self.inner.exists(path).await
    }
    async fn remove(&self, path: &Path) -> IoResult<()> {
        yield_now().await;
        self.inner.remove(path).await
    }
    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()> {
        yield_now().await;
        self.inner.rename(from, to).await
    }
    async fn hard_link(&self, from: &Path, to: &Path) -> IoResult<()> {
        yield_now().await;
        self.inner.hard_link(from, to).await
    }
    async fn sync_dir(&self, dir: &Path) -> IoResult<()> {
        yield_now().await;
        self.inner.sync_dir(dir).await
    }
    async fn lock(&self, path: &Path) -> IoResult<DirLock> {
        yield_now().await;
        self.inner.lock(path).await
    }
}

impl<F: DiskFile> DiskFile for YieldingFile<F> {
    async fn read_at(&self, offset: u64, len: usize) -> IoResult<IoBuf> {
        yield_now().await;
        self.inner.read_at(offset, len).await
    }
    async fn write_at(&self, offset: u64, buf: IoBuf) -> IoResult<()> {
        yield_now().await;
        self.inner.write_at(offset, buf).await
    }
    async fn sync(&self) -> IoResult<()> {
        yield_now().await;
        self.syncs.set(self.syncs.get() + 1);
        self.inner.sync().await
    }
    async fn preallocate(&self, len: u64) -> IoResult<()> {
        yield_now().await;
        self.inner.preallocate(len).await
    }
    async fn truncate(&self, len: u64) -> IoResult<()> {
        yield_now().await;
        self.inner.truncate(len).await
    }
    async fn size(&self) -> IoResult<u64> {
        yield_now().await;
        self.inner.size().await
    }
    async fn close(self) -> IoResult<()> {
        yield_now().await;
        self.inner.close().await
    }
}
