//! The spill file: JSON lines beside the database (`<db>-spill.jsonl`) that
//! hold what the database would not take (locked, full, read-only, gone),
//! until the writer replays them into it.
//!
//! Processes sharing a database share its spill file: every append and
//! every replay holds an exclusive `flock` on it, and an appender that finds
//! the file replaced or removed once it holds the lock opens it again.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::rows::Line;

/// Lines handed to one replay transaction at most.
const REPLAY_CHUNK: usize = 65_536;

/// What a replay did.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// Lines replayed into the database.
    pub(crate) lines: u64,
    /// Spans among them the database took (a span it already had is
    /// skipped).
    pub(crate) spans: u64,
    /// Lines that were not valid JSON of ours (a line torn by a crash);
    /// skipped.
    pub(crate) malformed: u64,
}

pub(crate) struct SpillFile {
    path: PathBuf,
    mode: u32,
}

impl SpillFile {
    /// The spill file of the database at `db`, created with `mode`.
    pub(crate) fn beside(db: &Path, mode: u32) -> SpillFile {
        SpillFile {
            path: crate::schema::spill_path(db),
            mode,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file holds anything to replay.
    pub(crate) fn has_lines(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0)
    }

    /// Appends `lines` in one write.
    pub(crate) fn append(&self, lines: &[Line<'_>]) -> io::Result<()> {
        let mut text = Vec::with_capacity(lines.len() * 256);
        for line in lines {
            serde_json::to_writer(&mut text, line)?;
            text.push(b'\n');
        }
        let mut file = self.open_locked(true)?;
        file.write_all(&text)
    }

    /// Hands the file's lines to `store`, at most `REPLAY_CHUNK` at a time,
    /// then removes the file; `store` returns how many spans it stored.
    /// When `store` fails, the lines it did not store stay in the file
    /// (those before are committed) and its error is returned with what
    /// was replayed before it.
    pub(crate) fn replay<E>(
        &self,
        mut store: impl FnMut(&[Line<'static>]) -> Result<u64, E>,
    ) -> Result<Replayed, ReplayError<E>> {
        let mut replayed = Replayed::default();
        let file = match self.open_locked(false) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(replayed),
            Err(e) => return Err(ReplayError::Io(e)),
        };
        let mut reader = BufReader::new(&file);
        let mut chunk = Vec::new();
        // Where the first line of `chunk` starts, and where reading is.
        let (mut chunk_start, mut offset) = (0u64, 0u64);
        let mut text = String::new();
        loop {
            text.clear();
            let read = reader.read_line(&mut text).map_err(ReplayError::Io)? as u64;
            let at_end = read == 0;
            if !at_end {
                offset += read;
                match serde_json::from_str::<Line<'static>>(text.trim_end()) {
                    Ok(line) => chunk.push(line),
                    Err(_) if text.trim().is_empty() => {}
                    Err(_) => replayed.malformed += 1,
                }
            }
            if chunk.len() >= REPLAY_CHUNK || (at_end && !chunk.is_empty()) {
                match store(&chunk) {
                    Ok(spans) => replayed.spans += spans,
                    Err(e) => {
                        drop(reader);
                        keep_from(&file, chunk_start).map_err(ReplayError::Io)?;
                        return Err(ReplayError::Store(e, replayed));
                    }
                }
                replayed.lines += chunk.len() as u64;
                chunk.clear();
                chunk_start = offset;
            }
            if at_end {
                break;
            }
        }
        // Still under the lock: an appender waiting for it reopens the path.
        std::fs::remove_file(&self.path).map_err(ReplayError::Io)?;
        Ok(replayed)
    }

    /// Opens the file with an exclusive lock on the inode the path names:
    /// to append (`create`), else to replay.
    fn open_locked(&self, create: bool) -> io::Result<File> {
        loop {
            let mut options = OpenOptions::new();
            // An appender appends; a replay (`create == false`) rewrites in
            // place, which O_APPEND would turn into appends.
            options.read(true).append(create).write(true).create(create);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                // A link planted at the path must not send spans (and a
                // chmod) to its target.
                options.mode(self.mode).custom_flags(libc::O_NOFOLLOW);
            }
            let file = match options.open(&self.path) {
                #[cfg(unix)]
                Err(e) if create && e.raw_os_error() == Some(libc::ELOOP) => {
                    self.move_link_aside()?;
                    continue;
                }
                opened => opened?,
            };
            lock_exclusive(&file)?;
            if still_at(&file, &self.path)? {
                #[cfg(unix)]
                if create {
                    // `mode` passed through the umask; the configured mode
                    // is what the user asked for (a wider one too).
                    use std::os::unix::fs::PermissionsExt;
                    if file.metadata()?.permissions().mode() & 0o777 != self.mode {
                        file.set_permissions(std::fs::Permissions::from_mode(self.mode))?;
                    }
                }
                return Ok(file);
            }
            // Replayed and removed while we waited: open the new one.
        }
    }

    /// Renames a symbolic link found at the spill file's path (the link,
    /// not its target) to `<path>.link-<unix seconds>`, and says so once.
    #[cfg(unix)]
    fn move_link_aside(&self) -> io::Result<()> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut aside = self.path.clone().into_os_string();
        aside.push(format!(".link-{secs}"));
        std::fs::rename(&self.path, &aside)?;
        eprintln!(
            "monitor: {} was a symbolic link; it is moved aside to {} and records spill to a new file",
            self.path.display(),
            std::path::Path::new(&aside).display()
        );
        Ok(())
    }
}

/// Why a replay stopped.
#[derive(Debug)]
pub(crate) enum ReplayError<E> {
    /// The spill file could not be read or rewritten.
    Io(io::Error),
    /// The database refused a chunk; what was replayed before it.
    Store(E, Replayed),
}

/// Drops the first `offset` bytes of the file, in place (the file stays
/// the same inode, so a waiting appender's lock still means something).
fn keep_from(mut file: &File, offset: u64) -> io::Result<()> {
    if offset == 0 {
        return Ok(());
    }
    let mut buf = vec![0u8; 1 << 16];
    let (mut read_at, mut write_at) = (offset, 0u64);
    loop {
        file.seek(SeekFrom::Start(read_at))?;
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        write_at_offset(file, &buf[..n], write_at)?;
        read_at += n as u64;
        write_at += n as u64;
    }
    file.set_len(write_at)
}

#[cfg(unix)]
fn write_at_offset(file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
}

#[cfg(not(unix))]
fn write_at_offset(file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    std::os::windows::fs::FileExt::seek_write(file, bytes, at).map(|_| ())
}

#[cfg(unix)]
fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: `flock` takes a descriptor this `File` owns and keeps open
        // for the duration of the call; it touches no memory of ours.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File) -> io::Result<()> {
    // One process per database file is the supported case here.
    Ok(())
}

/// Whether `path` still names the file `file` has open.
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn still_at(_file: &File, _path: &Path) -> io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::rows::ThreadRow;

    fn thread(id: i64) -> Line<'static> {
        Line::Thread(ThreadRow {
            id,
            pid: 1,
            name: format!("t{id}"),
        })
    }

    fn ids(lines: &[Line<'_>]) -> Vec<i64> {
        lines
            .iter()
            .map(|l| match l {
                Line::Thread(t) => t.id,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn lines_come_back_in_order_and_the_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        assert_eq!(spill.path(), dir.path().join("m.db-spill.jsonl"));
        assert!(!spill.has_lines());
        spill.append(&[thread(1), thread(2)]).unwrap();
        spill.append(&[thread(3)]).unwrap();
        assert!(spill.has_lines());
        let mut seen = Vec::new();
        let replayed = spill
            .replay(|lines| {
                seen.extend(ids(lines));
                Ok::<_, ()>(0)
            })
            .unwrap();
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!((replayed.lines, replayed.malformed), (3, 0));
        assert!(!spill.path().exists());
    }

    #[test]
    fn a_torn_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        spill.append(&[thread(1)]).unwrap();
        OpenOptions::new()
            .append(true)
            .open(spill.path())
            .unwrap()
            .write_all(b"{\"thread\":{\"id\":")
            .unwrap();
        let replayed = spill.replay(|_| Ok::<_, ()>(0)).unwrap();
        assert_eq!((replayed.lines, replayed.malformed), (1, 1));
    }

    #[test]
    fn a_failed_store_keeps_the_lines_it_did_not_take() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        let lines: Vec<_> = (0..REPLAY_CHUNK as i64 + 10).map(thread).collect();
        spill.append(&lines).unwrap();
        let mut calls = 0;
        let err = spill.replay(|_| {
            calls += 1;
            if calls == 2 {
                Err("refused")
            } else {
                Ok(0)
            }
        });
        assert!(matches!(err, Err(ReplayError::Store("refused", _))));
        let mut rest = Vec::new();
        spill
            .replay(|lines| {
                rest.extend(ids(lines));
                Ok::<_, ()>(0)
            })
            .unwrap();
        let expected: Vec<i64> = (REPLAY_CHUNK as i64..REPLAY_CHUNK as i64 + 10).collect();
        assert_eq!(
            rest, expected,
            "the first chunk was stored, the second kept"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_file_gets_the_configured_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o644] {
            let spill = SpillFile::beside(&dir.path().join(format!("{mode}.db")), mode);
            spill.append(&[thread(1)]).unwrap();
            let meta = std::fs::metadata(spill.path()).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode);
        }
    }
}
