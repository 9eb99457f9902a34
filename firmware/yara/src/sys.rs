//! The few libyara 4.2 entry points Kuroko uses, declared by hand from Debian's
//! `/usr/include/yara/*.h` (4.2.3): no bindgen, so no libclang on the build machine.
//!
//! Layouts mirrored here (`YR_RULE`, `YR_META`) are those of 4.2's `types.h` on 64-bit
//! Linux: every `DECLARE_REFERENCE` is a union of a pointer and an 8-byte arena reference,
//! so each is one pointer wide. A test compiles a rule with metadata and reads it back
//! through these layouts, so a libyara whose layout differs fails the build's tests.

#![allow(unsafe_code)]

use crate::{CompileError, CompileErrors, Match, ScanError};
use libc::{c_char, c_int, c_void};
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const ERROR_SUCCESS: c_int = 0;
pub const ERROR_INSUFFICIENT_MEMORY: c_int = 1;
pub const ERROR_SCAN_TIMEOUT: c_int = 26;
pub const ERROR_TOO_MANY_MATCHES: c_int = 30;

pub const CALLBACK_MSG_RULE_MATCHING: c_int = 1;
pub const CALLBACK_MSG_RULE_NOT_MATCHING: c_int = 2;
pub const CALLBACK_CONTINUE: c_int = 0;

/// Stop at the first occurrence of each string: Kuroko records which rules matched, not
/// where.
pub const SCAN_FLAGS_FAST_MODE: c_int = 1;
/// Report the rules that matched / did not match (4.2 `scan.h`); both together list every
/// (non-private) rule of a set, which is how [`Rules::names`] reads them.
pub const SCAN_FLAGS_REPORT_RULES_MATCHING: c_int = 8;
pub const SCAN_FLAGS_REPORT_RULES_NOT_MATCHING: c_int = 16;

pub const META_TYPE_INTEGER: i32 = 1;
pub const META_TYPE_STRING: i32 = 2;
pub const META_TYPE_BOOLEAN: i32 = 3;
const META_FLAGS_LAST_IN_RULE: i32 = 1;

pub const YARA_ERROR_LEVEL_ERROR: c_int = 0;

#[repr(C)]
pub struct YrCompiler {
    _opaque: [u8; 0],
}

#[repr(C)]
pub struct YrRules {
    _opaque: [u8; 0],
}

/// `struct YR_RULE` (4.2 `types.h`).
#[repr(C)]
pub struct YrRule {
    pub flags: i32,
    pub num_atoms: i32,
    pub identifier: *const c_char,
    pub tags: *const c_char,
    pub metas: *const YrMeta,
    pub strings: *const c_void,
    pub ns: *const c_void,
}

/// `struct YR_META` (4.2 `types.h`).
#[repr(C)]
pub struct YrMeta {
    pub identifier: *const c_char,
    pub string: *const c_char,
    pub integer: i64,
    pub kind: i32,
    pub flags: i32,
}

pub type CompilerCallback = extern "C" fn(
    error_level: c_int,
    file_name: *const c_char,
    line_number: c_int,
    rule: *const YrRule,
    message: *const c_char,
    user_data: *mut c_void,
);

pub type ScanCallback = extern "C" fn(
    context: *mut c_void,
    message: c_int,
    message_data: *mut c_void,
    user_data: *mut c_void,
) -> c_int;

unsafe extern "C" {
    pub fn yr_initialize() -> c_int;
    pub fn yr_compiler_create(compiler: *mut *mut YrCompiler) -> c_int;
    pub fn yr_compiler_destroy(compiler: *mut YrCompiler);
    pub fn yr_compiler_set_callback(
        compiler: *mut YrCompiler,
        callback: CompilerCallback,
        user_data: *mut c_void,
    );
    pub fn yr_compiler_add_fd(
        compiler: *mut YrCompiler,
        rules_fd: c_int,
        namespace_: *const c_char,
        file_name: *const c_char,
    ) -> c_int;
    pub fn yr_compiler_get_rules(compiler: *mut YrCompiler, rules: *mut *mut YrRules) -> c_int;
    pub fn yr_rules_destroy(rules: *mut YrRules) -> c_int;
    pub fn yr_rules_scan_mem(
        rules: *mut YrRules,
        buffer: *const u8,
        buffer_size: usize,
        flags: c_int,
        callback: ScanCallback,
        user_data: *mut c_void,
        timeout: c_int,
    ) -> c_int;
}

/// A NUL-terminated C string owned by libyara, copied out (lossy: rule text is ASCII
/// identifiers, metadata may be anything).
///
/// # Safety
/// `p` is null or points to a NUL-terminated string alive for the call.
pub unsafe fn string_of(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// One metadata value of a matched rule.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Int(i64),
    Str(String),
    Bool(bool),
}

/// The identifier and metadata of a rule libyara handed to a callback.
///
/// # Safety
/// `rule` points to a `YR_RULE` of live compiled rules (libyara's callback argument).
pub unsafe fn read_rule(rule: *const YrRule) -> (String, Vec<(String, MetaValue)>) {
    // SAFETY: valid per the caller's contract.
    let r = unsafe { &*rule };
    // SAFETY: identifiers are NUL-terminated strings in the rules' arena.
    let name = unsafe { string_of(r.identifier) };
    let mut metas = Vec::new();
    let mut m = r.metas;
    // Bounded in case a corrupt `flags` never marks the last one.
    for _ in 0..4096 {
        if m.is_null() {
            break;
        }
        // SAFETY: `metas` is an array ending with the entry flagged LAST_IN_RULE
        // (`yr_rule_metas_foreach` in 4.2's `rules.h` walks it the same way).
        let meta = unsafe { &*m };
        // SAFETY: as above, arena strings.
        let key = unsafe { string_of(meta.identifier) };
        let value = match meta.kind {
            META_TYPE_INTEGER => MetaValue::Int(meta.integer),
            META_TYPE_BOOLEAN => MetaValue::Bool(meta.integer != 0),
            // SAFETY: a string meta's `string` is an arena string.
            _ => MetaValue::Str(unsafe { string_of(meta.string) }),
        };
        metas.push((key, value));
        if meta.flags & META_FLAGS_LAST_IN_RULE != 0 {
            break;
        }
        // SAFETY: not the last entry, so the next one is in the same array.
        m = unsafe { m.add(1) };
    }
    (name, metas)
}

/// Compiled rules. Scans may run from several threads at once (libyara allows it).
pub struct Rules {
    ptr: *mut YrRules,
    files: Vec<PathBuf>,
}

// SAFETY: libyara's compiled rules are immutable after compilation and documented as
// safe to scan from several threads (up to YR_MAX_THREADS); destroy happens in Drop only.
unsafe impl Send for Rules {}
// SAFETY: as above.
unsafe impl Sync for Rules {}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules").field("files", &self.files).finish()
    }
}

impl Drop for Rules {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from yr_compiler_get_rules and is destroyed once.
        unsafe { yr_rules_destroy(self.ptr) };
    }
}

static INIT: OnceLock<c_int> = OnceLock::new();

fn initialize() -> Result<(), String> {
    // SAFETY: called once per process (OnceLock); never finalized, so the library stays
    // initialised for every later use.
    let rc = *INIT.get_or_init(|| unsafe { yr_initialize() });
    if rc == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(format!("libyara failed to initialise (error {rc})"))
    }
}

extern "C" fn on_compile_message(
    level: libc::c_int,
    file_name: *const libc::c_char,
    line: libc::c_int,
    _rule: *const YrRule,
    message: *const libc::c_char,
    user_data: *mut libc::c_void,
) {
    if level != YARA_ERROR_LEVEL_ERROR {
        return; // warnings (slow rules) do not stop a compilation
    }
    // SAFETY: `user_data` is the `Vec<CompileError>` that `compile` passed and keeps alive
    // for the whole compilation; libyara calls back on the compiling thread only.
    let errors = unsafe { &mut *(user_data as *mut Vec<CompileError>) };
    // SAFETY: libyara passes NUL-terminated strings (or null) valid during the call.
    let (file, message) = unsafe { (string_of(file_name), string_of(message)) };
    errors.push(CompileError {
        file: PathBuf::from(file),
        line: line.max(0) as u32,
        message,
    });
}

/// Compiles `files` (each in a namespace of its own, so two packs may reuse a rule name).
/// An empty list compiles to a set that matches nothing.
pub fn compile(files: &[PathBuf]) -> Result<Rules, CompileErrors> {
    let fail = |file: &Path, message: String| {
        CompileErrors(vec![CompileError {
            file: file.to_path_buf(),
            line: 0,
            message,
        }])
    };
    initialize().map_err(|m| fail(Path::new("libyara"), m))?;
    let mut compiler: *mut YrCompiler = std::ptr::null_mut();
    // SAFETY: out-pointer to a local.
    let rc = unsafe { yr_compiler_create(&mut compiler) };
    if rc != ERROR_SUCCESS || compiler.is_null() {
        return Err(fail(
            Path::new("libyara"),
            format!("cannot create a compiler (error {rc})"),
        ));
    }
    struct Guard(*mut YrCompiler);
    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: created above, destroyed once; rules taken from it stay valid.
            unsafe { yr_compiler_destroy(self.0) };
        }
    }
    let guard = Guard(compiler);
    let mut errors: Vec<CompileError> = Vec::new();
    // SAFETY: `errors` outlives every call on this compiler (the guard drops first).
    unsafe {
        yr_compiler_set_callback(
            guard.0,
            on_compile_message,
            &mut errors as *mut Vec<CompileError> as *mut libc::c_void,
        )
    };
    for file in files {
        let f = match std::fs::File::open(file) {
            Ok(f) => f,
            Err(e) => {
                errors.push(CompileError {
                    file: file.clone(),
                    line: 0,
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let text = file.to_string_lossy();
        let Ok(name) = CString::new(text.as_bytes()) else {
            errors.push(CompileError {
                file: file.clone(),
                line: 0,
                message: "file name contains a NUL byte".into(),
            });
            continue;
        };
        // SAFETY: the fd is open for the call; `name` is NUL-terminated and used as both
        // namespace and file name (libyara copies both).
        let n = unsafe { yr_compiler_add_fd(guard.0, f.as_raw_fd(), name.as_ptr(), name.as_ptr()) };
        if n > 0 {
            // libyara refuses further sources after an error.
            break;
        }
    }
    if !errors.is_empty() {
        return Err(CompileErrors(errors));
    }
    let mut rules: *mut YrRules = std::ptr::null_mut();
    // SAFETY: out-pointer to a local; the compiler had no errors.
    let rc = unsafe { yr_compiler_get_rules(guard.0, &mut rules) };
    if rc != ERROR_SUCCESS || rules.is_null() {
        return Err(fail(
            Path::new("libyara"),
            format!("cannot build the rules (error {rc})"),
        ));
    }
    Ok(Rules {
        ptr: rules,
        files: files.to_vec(),
    })
}

extern "C" fn on_scan_message(
    _context: *mut libc::c_void,
    message: libc::c_int,
    message_data: *mut libc::c_void,
    user_data: *mut libc::c_void,
) -> libc::c_int {
    if message == CALLBACK_MSG_RULE_MATCHING && !message_data.is_null() {
        // SAFETY: `user_data` is the `Vec<Match>` `scan` keeps alive for the scan; the
        // callback runs on the scanning thread.
        let out = unsafe { &mut *(user_data as *mut Vec<Match>) };
        // SAFETY: for RULE_MATCHING, `message_data` is the matching YR_RULE.
        let (rule, metas) = unsafe { read_rule(message_data as *const YrRule) };
        out.push(Match {
            rule,
            level: crate::level_of(&metas),
        });
    }
    CALLBACK_CONTINUE
}

extern "C" fn on_name_message(
    _context: *mut libc::c_void,
    message: libc::c_int,
    message_data: *mut libc::c_void,
    user_data: *mut libc::c_void,
) -> libc::c_int {
    if (message == CALLBACK_MSG_RULE_MATCHING || message == CALLBACK_MSG_RULE_NOT_MATCHING)
        && !message_data.is_null()
    {
        // SAFETY: `user_data` is the `Vec<String>` `names` keeps alive for the scan; the
        // callback runs on the scanning thread.
        let out = unsafe { &mut *(user_data as *mut Vec<String>) };
        // SAFETY: for both messages, `message_data` is a YR_RULE of the scanned rules.
        let (rule, _) = unsafe { read_rule(message_data as *const YrRule) };
        out.push(rule);
    }
    CALLBACK_CONTINUE
}

impl Rules {
    /// The names of every (non-private) rule of the set, sorted and de-duplicated (read by
    /// a scan of nothing that reports matching and non-matching rules alike). The re-check
    /// of stored files counts only the rules a change brought (`kuroko_detect`'s YARA
    /// re-check).
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        // SAFETY: `self.ptr` is live compiled rules; the empty buffer and `out` outlive the
        // synchronous call.
        let rc = unsafe {
            yr_rules_scan_mem(
                self.ptr,
                [0u8; 1].as_ptr(),
                0,
                SCAN_FLAGS_FAST_MODE
                    | SCAN_FLAGS_REPORT_RULES_MATCHING
                    | SCAN_FLAGS_REPORT_RULES_NOT_MATCHING,
                on_name_message,
                &mut out as *mut Vec<String> as *mut libc::c_void,
                0,
            )
        };
        if rc != ERROR_SUCCESS && rc != ERROR_TOO_MANY_MATCHES {
            out.clear();
        }
        out.sort();
        out.dedup();
        out
    }

    /// The rule files these rules were compiled from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The rules that match `bytes`, in rule order. `timeout_secs` 0 means no limit.
    pub fn scan(&self, bytes: &[u8], timeout_secs: u32) -> Result<Vec<Match>, ScanError> {
        let mut out: Vec<Match> = Vec::new();
        // SAFETY: `self.ptr` is live compiled rules; `bytes` and `out` outlive the
        // synchronous call.
        let rc = unsafe {
            yr_rules_scan_mem(
                self.ptr,
                bytes.as_ptr(),
                bytes.len(),
                SCAN_FLAGS_FAST_MODE,
                on_scan_message,
                &mut out as *mut Vec<Match> as *mut libc::c_void,
                timeout_secs.min(i32::MAX as u32) as libc::c_int,
            )
        };
        match rc {
            ERROR_SUCCESS | ERROR_TOO_MANY_MATCHES => Ok(out),
            ERROR_SCAN_TIMEOUT => Err(ScanError::Timeout),
            other => Err(ScanError::Failed(other)),
        }
    }
}
