//! A power cut for SQLite, simulated in-process.
//!
//! SIGKILL keeps the kernel's page cache, so a crash test that kills a
//! process cannot tell a write that was fsynced from one that was only
//! handed to the kernel. This module registers a SQLite VFS (as the default
//! for the whole test process) that wraps the platform's own and keeps, per
//! file, a copy of its bytes as of its last `xSync`: what a disk would hold
//! after the power went out. [`cut`] takes those copies; [`restore`] writes
//! them into an empty directory to open again.
//!
//! The model is the one SQLite's own durability rests on: a synced byte
//! survives, an unsynced one may not (here: never does). Files are copied
//! whole on each sync, which is fine for the small databases of a test.
//! Syncs are slowed down a little, so that a write acknowledged before its
//! sync has a window to be caught in.
//!
//! Only for test binaries of their own: registering the VFS changes every
//! SQLite connection the process opens afterwards.

// A VFS is a C interface: the wrapper has to speak it through raw pointers.
#![allow(unsafe_code)]

use rusqlite::ffi;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, MutexGuard, Once};
use std::time::Duration;

/// Each file's bytes as of its last sync.
static SYNCED: LazyLock<Mutex<Disk>> = LazyLock::new(Default::default);

/// How long each sync takes on top of the real one.
const SLOW_SYNC: Duration = Duration::from_millis(10);

/// What the disk holds at the moment of a cut: file path to bytes.
pub type Disk = HashMap<PathBuf, Vec<u8>>;

/// Makes the power-cut VFS the process's default. Idempotent; call it
/// before opening any database.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` returns the built-in default VFS,
        // which lives for the whole process; the wrapper is leaked, so it
        // does too, as `sqlite3_vfs_register` requires.
        unsafe {
            let real = ffi::sqlite3_vfs_find(std::ptr::null());
            assert!(!real.is_null(), "SQLite has no default VFS");
            let mut vfs: ffi::sqlite3_vfs = *real;
            vfs.szOsFile = (real_offset() + (*real).szOsFile as usize) as c_int;
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = c"weft-power-cut".as_ptr();
            vfs.pAppData = real.cast();
            vfs.xOpen = Some(open);
            vfs.xDelete = Some(delete);
            let vfs = Box::leak(Box::new(vfs));
            let rc = ffi::sqlite3_vfs_register(vfs, 1);
            assert_eq!(rc, ffi::SQLITE_OK, "cannot register the power-cut VFS");
        }
    });
}

/// The power goes out: what every file held at its last sync.
pub fn cut() -> Disk {
    synced().clone()
}

/// Writes what survived a cut under `dir` (which should be empty), each
/// file at its original name below `from`.
pub fn restore(disk: &Disk, from: &Path, dir: &Path) -> std::io::Result<()> {
    for (path, bytes) in disk {
        if let Ok(relative) = path.strip_prefix(from) {
            let target = dir.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, bytes)?;
        }
    }
    Ok(())
}

fn synced() -> MutexGuard<'static, Disk> {
    SYNCED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wrapper's file: SQLite's header (our methods), the path, and the
/// platform VFS's own file right after it.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    path: *mut PathBuf,
}

/// Where the platform's file starts inside ours, aligned for it.
const fn real_offset() -> usize {
    std::mem::size_of::<File>().next_multiple_of(16)
}

unsafe fn real(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: every file of this VFS was allocated with `szOsFile`, which
    // leaves room for the platform's file at this offset.
    unsafe { file.cast::<u8>().add(real_offset()).cast() }
}

unsafe fn real_methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: only called on files whose platform open succeeded, so the
    // platform file has its methods set, and they are static.
    unsafe { &*(*real(file)).pMethods }
}

unsafe fn platform(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: `install` put the platform VFS in `pAppData`.
    unsafe { (*vfs).pAppData.cast() }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite hands us a buffer of `szOsFile` bytes and a valid VFS;
    // on failure `pMethods` must be null, so SQLite will not call close.
    unsafe {
        let ours = file.cast::<File>();
        (*ours).base.pMethods = std::ptr::null();
        (*ours).path = std::ptr::null_mut();
        let platform = platform(vfs);
        let rc = ((*platform).xOpen.expect("platform xOpen"))(
            platform,
            name,
            real(file),
            flags,
            out_flags,
        );
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        if !name.is_null() {
            let path = PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned());
            (*ours).path = Box::into_raw(Box::new(path));
        }
        (*ours).base.pMethods = &METHODS;
        rc
    }
}

unsafe extern "C" fn delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    // SAFETY: forwards to the platform VFS with its own pointer.
    unsafe {
        if !name.is_null() {
            let path = PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned());
            synced().remove(&path);
        }
        let platform = platform(vfs);
        ((*platform).xDelete.expect("platform xDelete"))(platform, name, sync_dir)
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each open file once; the path was boxed by open.
    unsafe {
        let rc = (real_methods(file).xClose.expect("xClose"))(real(file));
        let ours = file.cast::<File>();
        if !(*ours).path.is_null() {
            drop(Box::from_raw((*ours).path));
            (*ours).path = std::ptr::null_mut();
        }
        rc
    }
}

/// The one method that does more than forward: once the platform's sync
/// returned, the file's current bytes are what a power cut leaves.
unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    std::thread::sleep(SLOW_SYNC);
    // SAFETY: forwards to the platform file; the path is ours.
    unsafe {
        let rc = (real_methods(file).xSync.expect("xSync"))(real(file), flags);
        let path = (*file.cast::<File>()).path;
        if rc == ffi::SQLITE_OK && !path.is_null() {
            let Some(bytes) = contents(file) else {
                return ffi::SQLITE_IOERR_FSYNC;
            };
            synced().insert((*path).clone(), bytes);
        }
        rc
    }
}

/// The file's bytes, read through the platform file itself: opening the
/// path again and closing it would drop the process's POSIX locks on it.
unsafe fn contents(file: *mut ffi::sqlite3_file) -> Option<Vec<u8>> {
    // SAFETY: forwards to the platform file with a buffer of the size it
    // reported.
    unsafe {
        let methods = real_methods(file);
        let mut size: ffi::sqlite3_int64 = 0;
        if (methods.xFileSize?)(real(file), &mut size) != ffi::SQLITE_OK {
            return None;
        }
        let mut bytes = vec![0u8; usize::try_from(size).ok()?];
        if !bytes.is_empty() {
            let amount = c_int::try_from(size).ok()?;
            let rc = (methods.xRead?)(real(file), bytes.as_mut_ptr().cast(), amount, 0);
            if rc != ffi::SQLITE_OK {
                return None;
            }
        }
        Some(bytes)
    }
}

/// Forwards a method to the platform file unchanged.
macro_rules! forward {
    ($name:ident, $field:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: the platform file was opened by `open`.
            unsafe { (real_methods(file).$field.expect(stringify!($field)))(real(file) $(, $arg)*) }
        }
    };
}

forward!(read, xRead(buf: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64) -> c_int);
forward!(write, xWrite(buf: *const c_void, amount: c_int, offset: ffi::sqlite3_int64) -> c_int);
forward!(truncate, xTruncate(size: ffi::sqlite3_int64) -> c_int);
forward!(file_size, xFileSize(size: *mut ffi::sqlite3_int64) -> c_int);
forward!(lock, xLock(level: c_int) -> c_int);
forward!(unlock, xUnlock(level: c_int) -> c_int);
forward!(check_reserved_lock, xCheckReservedLock(out: *mut c_int) -> c_int);
forward!(file_control, xFileControl(op: c_int, arg: *mut c_void) -> c_int);
forward!(sector_size, xSectorSize() -> c_int);
forward!(device_characteristics, xDeviceCharacteristics() -> c_int);
forward!(shm_map, xShmMap(page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int);
forward!(shm_lock, xShmLock(offset: c_int, n: c_int, flags: c_int) -> c_int);
forward!(shm_barrier, xShmBarrier() -> ());
forward!(shm_unmap, xShmUnmap(delete: c_int) -> c_int);

/// No memory-mapped reads: every byte goes through `xRead`, so nothing
/// bypasses the wrapper.
unsafe extern "C" fn fetch(
    _file: *mut ffi::sqlite3_file,
    _offset: ffi::sqlite3_int64,
    _amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes a valid out pointer.
    unsafe { *out = std::ptr::null_mut() };
    ffi::SQLITE_OK
}

unsafe extern "C" fn unfetch(
    _file: *mut ffi::sqlite3_file,
    _offset: ffi::sqlite3_int64,
    _page: *mut c_void,
) -> c_int {
    ffi::SQLITE_OK
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};
