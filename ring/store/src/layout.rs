//! The data directory: paths, `store.meta` (ring geometry), `writer.state`, slot files.
//!
//! A store is created on first use from [`StoreOptions`]; afterwards its `store.meta` is
//! authoritative (a ring is not resized by a changed config: that would drop data).
//!
//! **Disk use.** The budget bounds everything in `segments/`: `slot_count = (budget -
//! META_RESERVE) / segment_size`, where [`META_RESERVE`] covers the directory, `store.meta`,
//! `writer.state` and the lock. Slot files are created (fallocated, never zero-filled, under a
//! temporary name, then renamed) the first time the writer reaches them, unless
//! [`Preallocate::All`] formats the whole ring up front (what the appliance's setup does).
//! So importing a small pcap into a fresh store takes one segment of disk, not the budget,
//! and the ring grows to its budget and then wraps, never past it.

use crate::error::StoreError;
use crate::sys;
use kuroko_ring_format::{self as fmt, Geometry, StoreMeta, WriterState};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, IntoBytes};

/// Bytes of the budget kept for everything in `segments/` that is not a segment file
/// (the directory itself, `store.meta`, `writer.state`, `.lock`, a temporary file name).
pub const META_RESERVE: u64 = 16 * 1024;

/// Default chunk (write buffer) size: the 1 MiB writes the research measured as best.
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;

/// When slot files are created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Preallocate {
    /// When the writer first reaches a slot (a fresh store takes one segment of disk).
    #[default]
    Lazy,
    /// Every slot when the store is created or opened for writing.
    All,
}

/// How the writer should reach the disk. `Auto` takes the fastest the system allows and
/// falls back on its own; the others force a fallback (tests, benchmarks, odd systems).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IoPreference {
    #[default]
    Auto,
    /// Synchronous pwrite, O_DIRECT if the file system takes it.
    Pwrite,
    /// Synchronous pwrite through the page cache.
    Buffered,
}

/// The store's own options. The `kuroko` binary converts its config into these.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Bytes the whole `segments/` directory may take. Never exceeded.
    pub budget: u64,
    /// Size of one segment file (rounded down to a multiple of `chunk_size`).
    pub segment_size: u64,
    /// Write buffer and time-index granularity (power of two, 64 KiB – 16 MiB).
    pub chunk_size: u64,
    /// io_uring writes in flight at most (also the number of spare buffers).
    pub queue_depth: u32,
    pub preallocate: Preallocate,
    pub io: IoPreference,
    /// `append` returns `Backpressure` instead of waiting when every buffer is in flight.
    pub nonblocking: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            budget: 2 << 30,
            segment_size: 64 << 20,
            chunk_size: DEFAULT_CHUNK_SIZE,
            queue_depth: 8,
            preallocate: Preallocate::Lazy,
            io: IoPreference::Auto,
            nonblocking: false,
        }
    }
}

/// The ring's geometry as recorded in `store.meta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    pub geometry: Geometry,
    pub slot_count: u32,
    pub budget: u64,
    pub created_wall_ns: u64,
    /// The store's first sequence number (`store.meta` `seq_base`; 0 for older stores):
    /// segment headers and blocks with a lower `seq` are not this store's.
    pub seq_base: u64,
}

/// Most segments one ring may have.
pub const MAX_SLOTS: u32 = 1_000_000;

impl RingGeometry {
    /// Bytes of all slot files of a full ring.
    pub fn capacity(&self) -> u64 {
        self.slot_count as u64 * self.geometry.segment_size
    }

    /// Whether sequence number `seq` can be this store's: every number of a store lies in
    /// the band of 2^32 numbers that starts at its `seq_base` (no store writes 2^32
    /// segments). Stores made before the base existed (`seq_base` 0) own every number.
    pub fn owns_seq(&self, seq: u64) -> bool {
        self.seq_base == 0 || seq >> 32 == self.seq_base >> 32
    }

    /// Computes the geometry for new options.
    pub fn from_options(opts: &StoreOptions) -> Result<RingGeometry, StoreError> {
        let chunk = opts.chunk_size;
        let seg = if chunk.is_power_of_two() {
            opts.segment_size / chunk * chunk
        } else {
            opts.segment_size
        };
        let geometry = Geometry::new(seg, chunk).map_err(|e| StoreError::Options {
            message: format!(
                "segment size {} with chunk size {}: {e}",
                opts.segment_size, opts.chunk_size
            ),
        })?;
        let usable = opts.budget.saturating_sub(META_RESERVE);
        let slots = usable / geometry.segment_size;
        if slots < 2 {
            return Err(StoreError::Options {
                message: format!(
                    "a budget of {} bytes holds fewer than two segments of {} bytes (plus {} bytes of metadata); raise the budget or lower the segment size",
                    opts.budget, geometry.segment_size, META_RESERVE
                ),
            });
        }
        if slots > u64::from(MAX_SLOTS) {
            return Err(StoreError::Options {
                message: format!("{slots} segments is too many; raise the segment size"),
            });
        }
        Ok(RingGeometry {
            geometry,
            slot_count: slots as u32,
            budget: opts.budget,
            created_wall_ns: now_ns(),
            seq_base: random_seq_base(),
        })
    }
}

/// A new store's first sequence number: a random multiple of 2^32 in [2^32, 2^52]. Slot
/// files are fallocated, never zero-filled, so nothing but the file system stands between
/// a new segment and whatever bytes its blocks held before; on ext4 and XFS fresh extents
/// read as zeros, but a slot file left by an earlier store (copied back, a reused disk
/// image, a file system that exposes stale blocks) may hold valid-looking blocks of that
/// store's generations. Starting every store at its own base keeps those numbers out of
/// this store's band ([`RingGeometry::owns_seq`]), so a probe or a scan (recovery's tail
/// walk above all) never takes them for data: two stores collide only when they draw the
/// same base (one chance in 2^20).
/// Below 2^53 so that every number survives a JSON double.
fn random_seq_base() -> u64 {
    let mut b = [0u8; 8];
    let r = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    let x = match r {
        Ok(()) => u64::from_le_bytes(b),
        // No /dev/urandom (a bare chroot): the clock and the pid, mixed.
        Err(_) => {
            let mut x = now_ns() ^ (u64::from(std::process::id()) << 40);
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^ (x >> 33)
        }
    };
    ((x % (1 << 20)) + 1) << 32
}

/// Paths inside a data directory.
#[derive(Clone, Debug)]
pub struct Paths {
    pub data: PathBuf,
    pub segments: PathBuf,
}

impl Paths {
    pub fn new(data: &Path) -> Paths {
        Paths {
            data: data.to_path_buf(),
            segments: data.join("segments"),
        }
    }
    pub fn meta(&self) -> PathBuf {
        self.segments.join("store.meta")
    }
    pub fn writer_state(&self) -> PathBuf {
        self.segments.join("writer.state")
    }
    pub fn lock(&self) -> PathBuf {
        self.segments.join(".lock")
    }
    pub fn slot(&self, slot: u32) -> PathBuf {
        self.segments.join(format!("seg-{slot:05}.kseg"))
    }
    fn slot_tmp(&self) -> PathBuf {
        self.segments.join(".formatting.kseg")
    }
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What a file that is not a regular file is, in words (`None`: a regular file).
pub fn special_kind(ft: &fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Refuses a store whose directories are not directories or whose files (`store.meta`,
/// `writer.state`, `.lock`, segments) are special files: opening a FIFO for reading
/// blocks until a writer comes, so every command would hang on it, and a device would be
/// read or written as if it were a segment. Checked before the first read of every store
/// user ([`read_meta`]); symlinks are followed (a link to a regular file is fine).
pub fn check_file_types(paths: &Paths) -> Result<(), StoreError> {
    let refuse = |path: &Path, what: &str, want: &str| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: format!(
            "is {what}, not {want}: a store never makes one; move it away (or point --data at the data directory)"
        ),
    };
    for dir in [&paths.data, &paths.segments] {
        if let Ok(m) = fs::metadata(dir)
            && !m.is_dir()
        {
            let what = special_kind(&m.file_type()).unwrap_or("a regular file");
            return Err(refuse(dir, what, "a directory"));
        }
    }
    let Ok(entries) = fs::read_dir(&paths.segments) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = name == "store.meta"
            || name == "writer.state"
            || name == ".lock"
            || name == "damage.tsv"
            || name == "scrub.state"
            || name.ends_with(".kseg");
        if !ours {
            continue;
        }
        if let Ok(m) = fs::metadata(&path)
            && let Some(what) = special_kind(&m.file_type())
        {
            return Err(refuse(&path, what, "a regular file"));
        }
    }
    Ok(())
}

/// Reads `store.meta`. `Ok(None)` when the store does not exist yet.
pub fn read_meta(paths: &Paths) -> Result<Option<RingGeometry>, StoreError> {
    check_file_types(paths)?;
    let path = paths.meta();
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let bad = |what: &str| StoreError::Corrupt {
        path: path.clone(),
        message: what.to_string(),
    };
    let meta = StoreMeta::read_from_prefix(&bytes)
        .map_err(|_| bad("store.meta is too short"))?
        .0;
    if meta.magic != fmt::STORE_MAGIC {
        return Err(bad("store.meta has the wrong magic: not a Kuroko store"));
    }
    if meta.version.get() > fmt::FORMAT_VERSION {
        return Err(bad(&format!(
            "store.meta is format version {}; this build reads up to {}",
            meta.version.get(),
            fmt::FORMAT_VERSION
        )));
    }
    if crc32c::crc32c(meta.crc_input()) != meta.crc.get() {
        return Err(bad("store.meta fails its checksum"));
    }
    let geometry = Geometry::new(meta.segment_size.get(), meta.chunk_size.get() as u64)
        .map_err(|e| bad(&format!("store.meta geometry: {e}")))?;
    // Readers and recovery allocate per slot and index slots modulo the count: a count a
    // writer could not have made (0, 1, more than MAX_SLOTS, more than the budget holds)
    // is corruption, reported, never a panic or an unbounded allocation.
    let slots = meta.slot_count.get();
    let fits = u64::from(slots).saturating_mul(geometry.segment_size) <= meta.budget.get();
    if !(2..=MAX_SLOTS).contains(&slots) || !fits {
        return Err(bad(&format!(
            "store.meta says {slots} segments of {} bytes in a budget of {} bytes, which no writer makes (2 to {MAX_SLOTS} that fit the budget); the file is damaged: restore it or move the segments away",
            geometry.segment_size,
            meta.budget.get()
        )));
    }
    Ok(Some(RingGeometry {
        geometry,
        slot_count: meta.slot_count.get(),
        budget: meta.budget.get(),
        created_wall_ns: meta.created_wall_ns.get(),
        seq_base: meta.seq_base.get(),
    }))
}

/// The writer's durable sequence-number reservation from `store.meta` (0: not recorded).
pub fn read_seq_reserved(paths: &Paths) -> Result<u64, StoreError> {
    let path = paths.meta();
    let bytes = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
    Ok(StoreMeta::read_from_prefix(&bytes)
        .ok()
        .filter(|(m, _)| crc32c::crc32c(m.crc_input()) == m.crc.get())
        .map_or(0, |(m, _)| m.seq_reserved.get()))
}

/// Writes `store.meta` atomically (temporary file, fsync, rename, fsync of the directory).
pub fn write_meta(paths: &Paths, ring: &RingGeometry) -> Result<(), StoreError> {
    write_meta_with(paths, ring, 1)
}

/// [`write_meta`] with a sequence-number reservation: once it returns, the reservation is
/// durable.
pub fn write_meta_with(
    paths: &Paths,
    ring: &RingGeometry,
    seq_reserved: u64,
) -> Result<(), StoreError> {
    let mut meta = StoreMeta {
        magic: fmt::STORE_MAGIC,
        version: U16::new(fmt::WRITE_VERSION),
        reserved0: [0; 6],
        segment_size: U64::new(ring.geometry.segment_size),
        chunk_size: U32::new(ring.geometry.chunk_size as u32),
        slot_count: U32::new(ring.slot_count),
        budget: U64::new(ring.budget),
        created_wall_ns: U64::new(ring.created_wall_ns),
        seq_reserved: U64::new(seq_reserved),
        seq_base: U64::new(ring.seq_base),
        reserved: [0; 28],
        crc: U32::new(0),
    };
    meta.crc = U32::new(crc32c::crc32c(meta.crc_input()));
    write_atomic(&paths.meta(), meta.as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let r = (|| -> io::Result<()> {
        let f = File::create(&tmp)?;
        std::io::Write::write_all(&mut &f, bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    r.map_err(|e| StoreError::io(path, e))
}

/// Opens the store for reading: its geometry, or `NotAStore`.
pub fn open_existing(data: &Path) -> Result<(Paths, RingGeometry), StoreError> {
    let paths = Paths::new(data);
    match read_meta(&paths)? {
        Some(ring) => Ok((paths, ring)),
        None => Err(StoreError::NotAStore {
            path: data.to_path_buf(),
        }),
    }
}

/// Creates the data directory and the store if missing; returns the geometry in force.
pub fn create_or_open(
    data: &Path,
    opts: &StoreOptions,
) -> Result<(Paths, RingGeometry), StoreError> {
    let paths = Paths::new(data);
    if let Some(ring) = read_meta(&paths)? {
        return Ok((paths, ring));
    }
    // No store.meta but segment files: a store whose metadata was lost. Creating a new
    // store here would reformat (or, with another geometry, misread and overwrite)
    // packets nobody rotated out, so refuse and say what to do.
    let segs = existing_slot_files(&paths);
    if segs > 0 {
        return Err(StoreError::Corrupt {
            path: paths.meta(),
            message: format!(
                "missing, but {} holds {segs} segment file(s): refusing to create a new store over them (their packets would be lost); restore store.meta, or move the segment files away to start a new store",
                paths.segments.display()
            ),
        });
    }
    fs::create_dir_all(&paths.segments).map_err(|e| StoreError::io(&paths.segments, e))?;
    let ring = RingGeometry::from_options(opts)?;
    // The writer starts at the reservation: the store's numbers begin at its base.
    write_meta_with(&paths, &ring, ring.seq_base.max(1))?;
    Ok((paths, ring))
}

/// Segment files (`seg-*.kseg`) in `segments/`.
fn existing_slot_files(paths: &Paths) -> usize {
    let Ok(dir) = fs::read_dir(&paths.segments) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("seg-") && n.ends_with(".kseg")
        })
        .count()
}

/// Takes the writer lock (`segments/.lock`, flock), writing our pid into it.
pub fn lock_writer(paths: &Paths) -> Result<File, StoreError> {
    let path = paths.lock();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    if !sys::try_lock_exclusive(&file).map_err(|e| StoreError::io(&path, e))? {
        let mut pid = String::new();
        let _ = (&file).read_to_string(&mut pid);
        return Err(StoreError::Locked {
            path: paths.data.clone(),
            holder: pid.trim().to_string(),
        });
    }
    let _ = file.set_len(0);
    let _ = std::io::Write::write_all(&mut &file, std::process::id().to_string().as_bytes());
    Ok(file)
}

/// Creates slot file `slot` at full size: fallocate (metadata only: unwritten extents,
/// which read as zeros), a FREE header, then an atomic rename so readers never map a file
/// that is still growing. No zero fill: it doubled the disk writes of a ring's first pass,
/// cost the capture box CPU while capture ran, and made a large disk's `disk prepare` take
/// most of an hour; writes into unwritten extents cost the writer's process no more CPU
/// (the kernel converts the extents at completion; the crate's `prealloc_bench` example
/// measures all three ways on the store's file system). Stale bytes are no hazard: blocks are only
/// taken with this store's `seq` (see [`random_seq_base`]) and valid checksums.
pub fn format_slot(paths: &Paths, ring: &RingGeometry, slot: u32) -> Result<(), StoreError> {
    let tmp = paths.slot_tmp();
    let dst = paths.slot(slot);
    let size = ring.geometry.segment_size;
    let r = (|| -> io::Result<()> {
        let file = new_free_slot_file(&tmp, ring, slot, size)?;
        file.sync_all()?;
        // The header page is on disk: drop it from the page cache, or the writer's first
        // O_DIRECT write of that page must invalidate it.
        let _ = sys::drop_cache(&file);
        fs::rename(&tmp, &dst)?;
        File::open(&paths.segments)?.sync_all()?;
        Ok(())
    })();
    r.map_err(|e| StoreError::io(&dst, e))
}

/// `tmp` made anew at `size` (fallocated, never zero-filled) with slot `slot`'s FREE header
/// written, not yet synced or renamed: the part [`format_slot`] and
/// [`format_missing_slots`] share (they differ in when they sync).
fn new_free_slot_file(tmp: &Path, ring: &RingGeometry, slot: u32, size: u64) -> io::Result<File> {
    let _ = fs::remove_file(tmp);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(tmp)?;
    sys::fallocate(&file, size)?;
    file.set_len(size)?;
    let header = crate::segment::free_header(ring, slot);
    sys::pwrite_all(&file, header.as_bytes(), 0)?;
    Ok(file)
}

/// Creates every missing slot file at once (`Preallocate::All`, what `disk prepare` does):
/// as [`format_slot`], but with one `syncfs` at the end instead of two fsyncs per slot, so
/// a multi-terabyte ring is prepared in seconds (measured: the `prealloc_bench` example's
/// `--prepare-slots`). A crash midway leaves slot files whose header may not be on disk
/// yet: an all-zero header with no block behind it is a slot never written, FREE to the
/// probe, and running the preparation again creates the rest.
pub fn format_missing_slots(paths: &Paths, ring: &RingGeometry) -> Result<(), StoreError> {
    let tmp = paths.slot_tmp();
    let size = ring.geometry.segment_size;
    let mut made = 0u32;
    for slot in 0..ring.slot_count {
        let dst = paths.slot(slot);
        if dst.exists() {
            continue;
        }
        let r = new_free_slot_file(&tmp, ring, slot, size).and_then(|_| fs::rename(&tmp, &dst));
        r.map_err(|e| StoreError::io(&dst, e))?;
        made += 1;
    }
    if made > 0 {
        let dir = File::open(&paths.segments).map_err(|e| StoreError::io(&paths.segments, e))?;
        nix::unistd::syncfs(&dir)
            .map_err(|e| StoreError::io(&paths.segments, io::Error::from(e)))?;
    }
    Ok(())
}

/// Waits until every direct write still in flight to the store's slot files has landed,
/// those of a writer that was killed included. A killed process's io_uring writes complete
/// after it is gone, and a write into a fresh (fallocated, unwritten) extent becomes
/// readable only when the kernel has converted the extent, in a worker, after the device
/// finished it: a recovery (or a check) that read the slots before then would see a tail
/// that is still growing. `fallocate` over the already allocated range changes nothing but
/// waits for the inode's direct I/O first (ext4, XFS: `inode_dio_wait`).
pub fn settle_writes(paths: &Paths, ring: &RingGeometry) -> Result<(), StoreError> {
    for slot in 0..ring.slot_count {
        let path = paths.slot(slot);
        let f = match OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        sys::fallocate(&f, ring.geometry.segment_size).map_err(|e| StoreError::io(&path, e))?;
    }
    Ok(())
}

/// [`settle_writes`] for the store in `data` (for tests and tools that inspect a store a
/// killed writer left).
pub fn settle_store(data: &Path) -> Result<(), StoreError> {
    let (paths, ring) = open_existing(data)?;
    settle_writes(&paths, &ring)
}

/// Reads `writer.state`, if a writer ever ran.
pub fn read_writer_state(paths: &Paths) -> Option<WriterState> {
    let bytes = fs::read(paths.writer_state()).ok()?;
    let st = WriterState::read_from_prefix(&bytes).ok()?.0;
    if st.magic != fmt::WRITER_STATE_MAGIC || crc32c::crc32c(st.crc_input()) != st.crc.get() {
        return None;
    }
    Some(st)
}

/// Writes `writer.state` (small; temporary file and rename, no fsync: these are counters
/// for `status`, not data).
pub fn write_writer_state(paths: &Paths, st: &mut WriterState) -> io::Result<()> {
    st.magic = fmt::WRITER_STATE_MAGIC;
    st.crc = U32::new(crc32c::crc32c(st.crc_input()));
    let path = paths.writer_state();
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, st.as_bytes())?;
    fs::rename(&tmp, &path)
}
