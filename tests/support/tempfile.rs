//! [`TempFile`]: a file in the temporary directory for a flag that takes a
//! path (`--targets-file`, `--access-log`), removed when dropped.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{wait_for, WAIT};

/// A file in the temporary directory, removed when dropped. Its name is
/// unique in the test run (process id and a counter), `tag` says what it is.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// A path for a file that does not exist yet.
    pub fn new(tag: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("lb-tests-{}-{n}-{tag}", std::process::id()));
        let _ = fs::remove_file(&path);
        TempFile { path }
    }

    /// A file holding `text`.
    pub fn with(tag: &str, text: &str) -> TempFile {
        let file = TempFile::new(tag);
        file.write(text);
        file
    }

    /// The path, as a command-line argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }

    /// Replaces the content in one step (write aside, then rename), so that
    /// a reader never sees half of it.
    pub fn write(&self, text: &str) {
        let aside = self.path.with_extension("new");
        fs::write(&aside, text).expect("write temp file");
        fs::rename(&aside, &self.path).expect("rename temp file");
    }

    /// The content, or nothing if the file does not exist yet.
    pub fn read(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// Replaces the file by a FIFO at the same path: whoever reads it then
    /// waits for a writer (see [`TempFile::fifo_writer`]) and for its end.
    pub fn make_fifo(&self) {
        fs::remove_file(&self.path).expect("remove the file the FIFO replaces");
        let path = CString::new(self.arg()).expect("no NUL in the temp path");
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let rc = unsafe { libc::mkfifo(path.as_ptr(), 0o600) };
        assert_eq!(
            rc,
            0,
            "mkfifo {}: {}",
            self.arg(),
            std::io::Error::last_os_error()
        );
    }

    /// Waits until something has the FIFO open for reading (a reload,
    /// blocked on it) and opens it for writing. The reader then waits for
    /// what is written, until the writer is dropped.
    pub fn fifo_writer(&self) -> fs::File {
        let mut writer = None;
        wait_for(WAIT, || {
            // With no reader, a non-blocking open for writing fails (ENXIO)
            // instead of waiting for one.
            writer = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path)
                .ok();
            writer.is_some()
        });
        writer.unwrap_or_else(|| panic!("nothing opened the FIFO {} to read it", self.arg()))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
