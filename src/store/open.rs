//! Opening sled's files: a partial snapshot left by a full disk removed, a damaged
//! snapshot set aside so the log rebuilds the store, a panic in sled caught.

use super::*;

/// Why sled did not open a store.
pub(super) enum OpenFailure {
    /// sled found its files damaged (a checksum, a panic while reading its log).
    Damaged(String),
    Other(sled::Error),
}

impl OpenFailure {
    pub(super) fn into_error(
        self,
        path: &Path,
        other: impl FnOnce(sled::Error) -> StoreError,
    ) -> StoreError {
        match self {
            OpenFailure::Damaged(reason) => StoreError::Damaged {
                path: path.to_path_buf(),
                reason,
            },
            OpenFailure::Other(cause) => other(cause),
        }
    }
}

/// [`open_sled`], and when sled finds the store damaged and a snapshot is there, once
/// more without the snapshot. A damaged snapshot makes sled refuse the whole store,
/// though the snapshot only saves reading the log: without it sled rebuilds the pages
/// from the log. It is set aside (never deleted); if the store still does not open,
/// it is put back. [`SledStore::open`]'s lost-items check still refuses a store that
/// came back short.
pub(super) fn open_recovering(path: &Path) -> Result<sled::Db, OpenFailure> {
    let reason = match open_sled(path) {
        Err(OpenFailure::Damaged(reason)) => reason,
        other => return other,
    };
    let moved = match set_aside_snapshots(path) {
        Some(moved) if !moved.is_empty() => moved,
        _ => return Err(OpenFailure::Damaged(reason)),
    };
    let reopened = open_sled(path);
    for (from, to) in &moved {
        if reopened.is_ok() {
            tracing::warn!(snapshot = %from.display(), moved_to = %to.display(), reason = %reason, "The store's snapshot was damaged; set it aside and rebuilt the store from its log.");
        } else {
            let _ = std::fs::rename(to, from);
        }
    }
    reopened
}

pub(super) fn open_sled(path: &Path) -> Result<sled::Db, OpenFailure> {
    // sled panics on some damage to its log ("tried to serialize Uninitialized" when
    // a segment is zeroed); a damaged store is an error naming it, not a crash of
    // whichever command opened it.
    let opened = std::panic::catch_unwind(|| {
        sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_CAPACITY)
            .open()
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Corruption { .. })) => Err(OpenFailure::Damaged(
            "its files failed a checksum".to_string(),
        )),
        Ok(Err(cause)) => Err(OpenFailure::Other(cause)),
        Err(panic) => Err(OpenFailure::Damaged(panic_message(panic.as_ref()))),
    }
}

/// Renames the store's finished snapshots `snap.*` to `damaged-snap.*`, under the
/// store's lock: `None` when the lock is held elsewhere (another process has the
/// store open, so its files are not ours to move), else the renames made.
pub(super) fn set_aside_snapshots(path: &Path) -> Option<Vec<(PathBuf, PathBuf)>> {
    use std::os::fd::AsRawFd;
    let db = std::fs::OpenOptions::new()
        .read(true)
        .open(path.join("db"))
        .ok()?;
    // SAFETY: flock on a descriptor this function owns; released when `db` closes.
    if unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return None;
    }
    let snapshots: Vec<PathBuf> = std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && !n.ends_with(".generating"))
        })
        .collect();
    let mut moved = Vec::new();
    for from in snapshots {
        // sled reads every file named `snap.*`, so the new name must not start so.
        let Some(name) = from.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let to = path.join(format!("damaged-{name}"));
        if std::fs::rename(&from, &to).is_ok() {
            moved.push((from, to));
        }
    }
    Some(moved)
}

/// Removes snapshots that sled began and never finished, before sled reads them.
///
/// sled writes its snapshot to `snap.<lsn>.generating`, syncs it, then renames it to
/// `snap.<lsn>`; a write cut short (a full disk, a crash) leaves the partial file.
/// sled 0.34 takes the newest-named file as the snapshot, `.generating` or not, so a
/// 0-byte leftover made every later open fail with "Read corrupted data" although
/// nothing else was damaged. Such a file holds nothing the log does not: the older
/// snapshot is only removed after the rename, and sled replays the log from it.
///
/// Only while no process holds the store: a live daemon may be writing its snapshot
/// right now. sled locks the `db` file with `flock`; taking that lock here for a
/// moment proves the store is free (when it is not, sled's own open reports it).
pub(super) fn remove_partial_snapshots(path: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let partial: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"))
        })
        .collect();
    if partial.is_empty() {
        return;
    }
    let Ok(db) = std::fs::OpenOptions::new().read(true).open(path.join("db")) else {
        return;
    };
    // SAFETY: flock on a descriptor this function owns; it is released when `db` is
    // closed at the end of the function.
    let locked = unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        return;
    }
    for file in partial {
        match std::fs::remove_file(&file) {
            Ok(()) => tracing::warn!(
                file = %file.display(),
                "Removed a snapshot that was never finished (a full disk or a crash while it was written)."
            ),
            Err(err) => tracing::warn!(
                file = %file.display(),
                error = %err,
                "Could not remove a snapshot that was never finished; opening the store may fail."
            ),
        }
    }
}
