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
use std::time::Duration;

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
    /// The whole file was replayed and removed (else the round stopped at
    /// its bound, and the rest waits for the next one).
    pub(crate) finished: bool,
    /// Bytes of the file read in this round.
    pub(crate) bytes: u64,
}

pub(crate) struct SpillFile {
    path: PathBuf,
    mode: u32,
    /// Where the previous replay round stopped, in the file it read.
    resume: Option<Resume>,
}

/// A replay round that stopped before the end: the lines before `offset`
/// are stored, and only spans, callsites and threads were among them (a
/// second insert of those is refused or ignored), so nothing is lost or
/// stored twice if the next reader starts from the top instead. The bytes
/// before `offset` are kept to check that the file is still the one read:
/// another process may have rewritten it in place, or removed it and a new
/// one got the same inode.
struct Resume {
    file: (u64, u64),
    offset: u64,
    tail: Vec<u8>,
}

/// Bytes before a resume offset compared on resume: enough to hold a span
/// id, which no two lines share.
const RESUME_TAIL: u64 = 256;

impl SpillFile {
    /// The spill file of the database at `db`, created with `mode`.
    pub(crate) fn beside(db: &Path, mode: u32) -> SpillFile {
        SpillFile {
            path: crate::schema::spill_path(db),
            mode,
            resume: None,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file holds anything to replay.
    pub(crate) fn has_lines(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0)
    }

    /// Its size in bytes (0 when there is none).
    pub(crate) fn len(&self) -> u64 {
        std::fs::symlink_metadata(&self.path).map_or(0, |m| m.len())
    }

    /// Appends `lines` in one write.
    pub(crate) fn append(&self, lines: &[Line<'_>]) -> io::Result<()> {
        let mut text = Vec::with_capacity(lines.len() * 256);
        for line in lines {
            push_line(&mut text, line)?;
        }
        self.append_text(&text)
    }

    /// Appends lines already serialised with [`push_line`], in one write.
    pub(crate) fn append_text(&self, text: &[u8]) -> io::Result<()> {
        let mut file = self.open_locked(true, Wait::Forever)?;
        file.write_all(text)
    }

    /// [`append`](Self::append) that waits for the lock at most `wait`
    /// (a forked child: the lock may be held by a thread it did not
    /// inherit).
    pub(crate) fn append_within(&self, lines: &[Line<'_>], wait: Duration) -> io::Result<()> {
        let mut text = Vec::new();
        for line in lines {
            push_line(&mut text, line)?;
        }
        let mut file = self.open_locked(true, Wait::AtMost(wait))?;
        file.write_all(&text)
    }

    /// Hands the file's lines to `store`, at most `REPLAY_CHUNK` at a time,
    /// then removes the file; `store` returns how many spans it stored.
    /// After `max_chunks` chunks the round stops, if every line it stored
    /// is one a second replay ignores, and the next round goes on from
    /// there: a long file is replayed between batches instead of holding
    /// the writer (and the lock) for all of it. A round that stored a stats,
    /// event, sample or `tracing` event line goes on to the end, so that no
    /// reader can store it twice. When `store` fails, the lines it did not store stay in the
    /// file (those before are committed) and its error is returned with
    /// what was replayed before.
    pub(crate) fn replay<E>(
        &mut self,
        max_chunks: usize,
        mut store: impl FnMut(&[Line<'static>]) -> Result<u64, E>,
    ) -> Result<Replayed, ReplayError<E>> {
        let mut replayed = Replayed::default();
        let resume = self.resume.take();
        let mut file = match self.open_locked(false, Wait::Forever) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                replayed.finished = true;
                return Ok(replayed);
            }
            Err(e) => return Err(ReplayError::Io(e)),
        };
        let start = match resume {
            Some(r) if r.still_fits(&file).map_err(ReplayError::Io)? => r.offset,
            _ => 0,
        };
        file.seek(SeekFrom::Start(start)).map_err(ReplayError::Io)?;
        let mut reader = BufReader::new(&*file);
        let mut chunk = Vec::new();
        // Where the first line of `chunk` starts, and where reading is.
        let (mut chunk_start, mut offset) = (start, start);
        let (mut chunks, mut stored_twice_if_replayed) = (0, false);
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
                stored_twice_if_replayed |= chunk.iter().any(|line| {
                    matches!(
                        line,
                        Line::Stats(_) | Line::Event(_) | Line::Sample(_) | Line::TracingEvent(_)
                    )
                });
                replayed.lines += chunk.len() as u64;
                chunk.clear();
                chunk_start = offset;
                chunks += 1;
                if chunks >= max_chunks && !at_end && !stored_twice_if_replayed {
                    drop(reader);
                    replayed.bytes = offset - start;
                    self.resume = Some(Resume::at(&file, offset).map_err(ReplayError::Io)?);
                    return Ok(replayed);
                }
            }
            if at_end {
                break;
            }
        }
        // Still under the lock: an appender waiting for it reopens the path.
        std::fs::remove_file(&self.path).map_err(ReplayError::Io)?;
        replayed.finished = true;
        replayed.bytes = offset - start;
        Ok(replayed)
    }

    /// Opens the file with an exclusive lock on the inode the path names:
    /// to append (`create`), else to replay.
    fn open_locked(&self, create: bool, wait: Wait) -> io::Result<Locked> {
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
            let file = Locked::take(file, wait)?;
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

/// Serialises `line` as one line of a spill file.
pub(crate) fn push_line(text: &mut Vec<u8>, line: &Line<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *text, line)?;
    text.push(b'\n');
    Ok(())
}

/// (device, inode) and length of an open file.
fn identity_and_len(file: &File) -> io::Result<((u64, u64), u64)> {
    let meta = file.metadata()?;
    #[cfg(unix)]
    let identity = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let identity = (0, 0);
    Ok((identity, meta.len()))
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

/// How long to wait for the file's lock.
#[derive(Clone, Copy)]
enum Wait {
    Forever,
    AtMost(Duration),
}

/// The open spill file under its exclusive `flock`, released on drop.
///
/// Released explicitly (`LOCK_UN`), not by closing: a child forked while
/// the lock is held shares it through its copy of the descriptor, and
/// closing ours would leave it held until the child exits.
struct Locked(File);

impl Locked {
    #[cfg(unix)]
    fn take(file: File, wait: Wait) -> io::Result<Locked> {
        use std::os::unix::io::AsRawFd;
        let deadline = match wait {
            Wait::Forever => None,
            Wait::AtMost(d) => Some(std::time::Instant::now() + d),
        };
        let flags = libc::LOCK_EX | if deadline.is_some() { libc::LOCK_NB } else { 0 };
        loop {
            // SAFETY: `flock` takes a descriptor this `File` owns and keeps
            // open for the duration of the call; it touches no memory.
            if unsafe { libc::flock(file.as_raw_fd(), flags) } == 0 {
                return Ok(Locked(file));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock
                    if deadline.is_some_and(|d| std::time::Instant::now() < d) =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => return Err(err),
            }
        }
    }

    #[cfg(not(unix))]
    fn take(file: File, _wait: Wait) -> io::Result<Locked> {
        // One process per database file is the supported case here.
        Ok(Locked(file))
    }
}

impl std::ops::Deref for Locked {
    type Target = File;
    fn deref(&self) -> &File {
        &self.0
    }
}

impl std::ops::DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut File {
        &mut self.0
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: as in `take`; unlocking a descriptor we own.
            unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

impl Resume {
    /// The position `offset` of `file`, with the bytes before it.
    fn at(file: &File, offset: u64) -> io::Result<Resume> {
        let (identity, _) = identity_and_len(file)?;
        let from = offset.saturating_sub(RESUME_TAIL);
        let mut tail = vec![0; (offset - from) as usize];
        read_exact_at(file, &mut tail, from)?;
        Ok(Resume {
            file: identity,
            offset,
            tail,
        })
    }

    /// Whether `file` is the file this position was taken in, unchanged up
    /// to it.
    fn still_fits(&self, file: &File) -> io::Result<bool> {
        let (identity, len) = identity_and_len(file)?;
        if identity != self.file || len < self.offset {
            return Ok(false);
        }
        let from = self.offset - self.tail.len() as u64;
        let mut tail = vec![0; self.tail.len()];
        read_exact_at(file, &mut tail, from)?;
        Ok(tail == self.tail)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(buf)
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
        let mut spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        assert_eq!(spill.path(), dir.path().join("m.db-spill.jsonl"));
        assert!(!spill.has_lines());
        spill.append(&[thread(1), thread(2)]).unwrap();
        spill.append(&[thread(3)]).unwrap();
        assert!(spill.has_lines());
        let mut seen = Vec::new();
        let replayed = spill
            .replay(usize::MAX, |lines| {
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
        let mut spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        spill.append(&[thread(1)]).unwrap();
        OpenOptions::new()
            .append(true)
            .open(spill.path())
            .unwrap()
            .write_all(b"{\"thread\":{\"id\":")
            .unwrap();
        let replayed = spill.replay(usize::MAX, |_| Ok::<_, ()>(0)).unwrap();
        assert_eq!((replayed.lines, replayed.malformed), (1, 1));
    }

    #[test]
    fn a_failed_store_keeps_the_lines_it_did_not_take() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        let lines: Vec<_> = (0..REPLAY_CHUNK as i64 + 10).map(thread).collect();
        spill.append(&lines).unwrap();
        let mut calls = 0;
        let err = spill.replay(usize::MAX, |_| {
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
            .replay(usize::MAX, |lines| {
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

    #[test]
    fn a_bounded_round_goes_on_where_the_last_one_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        let n = 2 * REPLAY_CHUNK as i64 + 10;
        spill
            .append(&(0..n).map(thread).collect::<Vec<_>>())
            .unwrap();
        let mut seen = Vec::new();
        let mut round = |spill: &mut SpillFile, max| {
            spill
                .replay(max, |lines| {
                    seen.extend(ids(lines));
                    Ok::<_, ()>(0)
                })
                .unwrap()
        };
        assert!(!round(&mut spill, 1).finished);
        // Appended between rounds: read in its turn, nothing twice.
        spill.append(&[thread(n)]).unwrap();
        assert!(!round(&mut spill, 1).finished);
        assert!(round(&mut spill, 1).finished);
        assert!(!spill.path().exists());
        assert_eq!(seen, (0..=n).collect::<Vec<_>>());
    }

    #[test]
    fn a_round_that_stored_stats_goes_on_to_the_end() {
        use crate::writer::rows::StatsRow;
        let dir = tempfile::tempdir().unwrap();
        let mut spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        let mut lines = vec![Line::Stats(StatsRow::default())];
        lines.extend((0..2 * REPLAY_CHUNK as i64).map(thread));
        spill.append(&lines).unwrap();
        let round = spill.replay(1, |_| Ok::<_, ()>(0)).unwrap();
        // A stats row stored and a position kept in memory only: another
        // reader starting from the top would store it twice.
        assert!(round.finished);
        assert_eq!(round.lines, lines.len() as u64);
        assert!(!spill.path().exists());
    }

    /// Rounds of a long file, with `other` (another process) doing
    /// something to it between the first and the second.
    fn resumed_after(other: impl FnOnce(&Path)) -> Vec<i64> {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("m.db");
        let mut spill = SpillFile::beside(&db, 0o600);
        let n = 3 * REPLAY_CHUNK as i64;
        spill
            .append(&(0..n).map(thread).collect::<Vec<_>>())
            .unwrap();
        let mut seen = Vec::new();
        spill
            .replay(1, |lines| {
                seen.extend(ids(lines));
                Ok::<_, ()>(0)
            })
            .unwrap();
        other(&db);
        spill
            .replay(usize::MAX, |lines| {
                seen.extend(ids(lines));
                Ok::<_, ()>(0)
            })
            .unwrap();
        seen
    }

    #[test]
    fn a_file_rewritten_in_place_by_another_reader_is_read_from_the_top() {
        // Another process stores the first chunk, fails on the second and
        // cuts the first off: the file is the same inode, shifted.
        let seen = resumed_after(|db| {
            let mut calls = 0;
            let _ = SpillFile::beside(db, 0o600).replay(usize::MAX, |_| {
                calls += 1;
                if calls == 2 {
                    Err(())
                } else {
                    Ok(0)
                }
            });
        });
        let chunk = REPLAY_CHUNK as i64;
        let mut expected: Vec<i64> = (0..chunk).collect();
        expected.extend(chunk..3 * chunk);
        assert_eq!(seen, expected, "no line skipped");
    }

    #[test]
    fn a_new_file_at_the_same_inode_is_read_from_the_top() {
        // Replayed to the end and removed by another process; a new spill
        // of other lines (the same length) takes the same inode here.
        let seen = resumed_after(|db| {
            let path = crate::schema::spill_path(db);
            let mut text = Vec::new();
            for id in 0..3 * REPLAY_CHUNK as i64 {
                push_line(&mut text, &thread(id + 1_000_000)).unwrap();
            }
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(0).unwrap();
            // Longer than where the first round stopped: only the bytes
            // before that position tell the files apart.
            write_at_offset(&file, &text, 0).unwrap();
        });
        let chunk = REPLAY_CHUNK as i64;
        assert_eq!(&seen[..chunk as usize], (0..chunk).collect::<Vec<_>>());
        assert_eq!(seen[chunk as usize], 1_000_000, "the new file from its top");
    }

    /// A child forked while this process holds the lock must not keep it:
    /// once we release it, the child (and anyone) can take it.
    #[cfg(unix)]
    #[test]
    fn a_lock_held_at_a_fork_is_released_for_the_child_too() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillFile::beside(&dir.path().join("m.db"), 0o600);
        spill.append(&[thread(1)]).unwrap();
        let held = spill.open_locked(true, Wait::Forever).unwrap();
        let (read_fd, write_fd) = {
            let mut fds = [0; 2];
            // SAFETY: `pipe` fills the two-element array we pass.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            (fds[0], fds[1])
        };
        // SAFETY: the child only takes a file lock, writes one byte to a
        // pipe and leaves with `_exit`; it takes no lock another thread of
        // this process may hold.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = spill
                .append_within(&[thread(2)], Duration::from_secs(10))
                .is_ok();
            let byte = [u8::from(ok)];
            // SAFETY: writes one byte from a live buffer, then exits.
            unsafe {
                libc::write(write_fd, byte.as_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        // The child waits for the lock it shares with us, until we let go.
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        let mut byte = [0u8];
        // SAFETY: reads one byte into a live buffer; the fds are ours.
        unsafe {
            assert_eq!(libc::read(read_fd, byte.as_mut_ptr().cast(), 1), 1);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
            libc::close(read_fd);
            libc::close(write_fd);
        }
        assert_eq!(byte, [1], "the child appended once the parent let go");
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
