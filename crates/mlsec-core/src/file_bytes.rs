//! Whole files as one byte slice: memory-mapped when large, read when small.
//!
//! Reading a large file copies every byte from the page cache into fresh
//! anonymous memory, one single-threaded pass that faults in a page of the
//! destination every 4 KiB (an 87 MB CSV spent a quarter of its parse time
//! there). A read-only map shares the page-cache pages instead, and the
//! threads that parse the bytes fault them in themselves, in parallel.

use std::io;
use std::path::Path;

/// Files below this size are read: a map costs system calls of its own.
const MAP_FROM: u64 = 1 << 20;

/// A file's bytes; dereferences to `[u8]`.
pub enum FileBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

/// The whole file at `path`. Regular files of 1 MiB or more are mapped;
/// anything else (small files, pipes, character devices such as
/// `/dev/stdin`, procfs files that report size 0) is read.
pub fn read(path: &Path) -> io::Result<FileBytes> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() >= MAP_FROM {
        // SAFETY: the map is read-only and private to this process. If
        // another process truncates the file while it is mapped, touching
        // the lost pages raises SIGBUS: the documented risk every
        // memory-mapped reader (ripgrep, for one) accepts.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
            return Ok(FileBytes::Mapped(map));
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).min(1 << 30));
    io::Read::read_to_end(&mut { file }, &mut bytes)?;
    Ok(FileBytes::Owned(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn small_and_large_files_read_back_the_same_bytes() {
        let dir = std::env::temp_dir().join(format!("mlsec-file-bytes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0usize, 1, 4095, MAP_FROM as usize, MAP_FROM as usize + 3] {
            let path = dir.join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            std::fs::File::create(&path)
                .unwrap()
                .write_all(&data)
                .unwrap();
            let got = read(&path).unwrap();
            assert_eq!(
                matches!(got, FileBytes::Mapped(_)),
                len as u64 >= MAP_FROM,
                "{len}"
            );
            assert_eq!(&*got, &data[..], "{len}");
        }
        assert_eq!(
            read(&dir.join("missing")).err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
