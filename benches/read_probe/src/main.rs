//! Reads every file of a folder once and prints the bytes read and the
//! time taken, three ways:
//! - `std`: `File::open` by full path, one `read`, `close`, as `mlsec scan`
//!   reads a small file;
//! - `at`: `openat` relative to the folder's descriptor, one `read`, `close`;
//! - `N` (a number): io_uring, each file's open, read and close linked in
//!   one submission, N files per `io_uring_enter`.
//!
//! cargo run --release --manifest-path benches/read_probe/Cargo.toml -- DIR std|at|N

use io_uring::{opcode, squeue, types, IoUring};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Instant;

const BUFFER: usize = 64 * 1024;

fn by_path(paths: &[std::path::PathBuf]) -> usize {
    let mut buf = vec![0u8; BUFFER];
    paths
        .iter()
        .map(|p| std::fs::File::open(p).and_then(|mut f| f.read(&mut buf)).expect("read"))
        .sum()
}

fn relative_to_folder(dir: &str, names: &[CString]) -> usize {
    let folder = std::fs::File::open(dir).expect("open folder");
    let mut buf = vec![0u8; BUFFER];
    names
        .iter()
        .map(|n| {
            // SAFETY: a valid folder descriptor and a NUL-terminated name;
            // the returned descriptor is owned by the File made from it.
            let fd = unsafe { libc::openat(folder.as_raw_fd(), n.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            assert!(fd >= 0, "openat failed");
            let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
            f.read(&mut buf).expect("read")
        })
        .sum()
}

fn io_uring(paths: &[CString], batch: usize) -> usize {
    let mut ring = IoUring::new((batch * 4) as u32).expect("io_uring");
    ring.submitter().register_files_sparse(batch as u32).expect("file slots");
    let mut bufs = vec![vec![0u8; BUFFER]; batch];
    let mut total = 0;
    for chunk in paths.chunks(batch) {
        {
            let mut sq = ring.submission();
            for (i, p) in chunk.iter().enumerate() {
                let slot = types::DestinationSlot::try_from_slot_target(i as u32).expect("slot");
                // Direct descriptors refuse O_CLOEXEC; a short read breaks a
                // soft link, so the read is hard-linked to the close.
                let open = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), p.as_ptr())
                    .flags(libc::O_RDONLY)
                    .file_index(Some(slot))
                    .build()
                    .flags(squeue::Flags::IO_LINK)
                    .user_data(0);
                let read = opcode::Read::new(types::Fixed(i as u32), bufs[i].as_mut_ptr(), BUFFER as u32)
                    .build()
                    .flags(squeue::Flags::IO_HARDLINK)
                    .user_data(1);
                let close = opcode::Close::new(types::Fixed(i as u32)).build().user_data(2);
                // SAFETY: the paths and buffers outlive the submission,
                // which is waited for below before they are reused.
                unsafe {
                    sq.push(&open).expect("queue");
                    sq.push(&read).expect("queue");
                    sq.push(&close).expect("queue");
                }
            }
        }
        ring.submit_and_wait(chunk.len() * 3).expect("submit");
        for cqe in ring.completion() {
            assert!(cqe.result() >= 0, "operation {} failed: {}", cqe.user_data(), cqe.result());
            if cqe.user_data() == 1 {
                total += cqe.result() as usize;
            }
        }
    }
    total
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, mode] = args.as_slice() else {
        eprintln!("usage: read_probe DIR std|at|N");
        std::process::exit(2);
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("read folder")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    let c = |b: &[u8]| CString::new(b).expect("no NUL in names");
    let full: Vec<CString> = paths.iter().map(|p| c(p.as_os_str().as_encoded_bytes())).collect();
    let names: Vec<CString> = paths
        .iter()
        .map(|p| c(p.file_name().expect("a file").as_encoded_bytes()))
        .collect();
    let t = Instant::now();
    let bytes = match mode.as_str() {
        "std" => by_path(&paths),
        "at" => relative_to_folder(dir, &names),
        n => io_uring(&full, n.parse().expect("std, at or a batch size")),
    };
    println!("{mode}: {bytes} bytes from {} files in {:.2} ms", paths.len(), t.elapsed().as_secs_f64() * 1e3);
}
