//! Image-classification folders: one sub-folder per class holding PNG or
//! JPEG files (the layout of torchvision's `ImageFolder`).
//!
//! Scanning reads every file once to hash it and decodes only image headers
//! (dimensions and colour type), so inspecting a large folder is I/O-bound.
//! Symbolic links are not followed: a dataset folder must not reach outside itself.

use crate::error::{DataError, Result};
use image::ImageDecoder;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageEntry {
    /// Path relative to the folder, with `/` separators.
    pub path: String,
    pub class: String,
    pub sha256: String,
    pub bytes: u64,
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    /// `L8`, `Rgb8`, `Rgba8`, …
    pub color: String,
}

/// A scanned image folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageFolder {
    pub classes: Vec<String>,
    pub images: Vec<ImageEntry>,
    /// Files that are not images, or not in a class folder, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Manifest digest over every regular file (see `mlsec_core::digest::manifest_digest`).
    pub sha256: String,
    pub total_bytes: u64,
}

/// Scans `root`; `progress` is called once per file with the files done so far.
pub fn scan(root: &Path, progress: &dyn Fn(u64)) -> Result<ImageFolder> {
    let shown = root.display().to_string();
    let mut classes = Vec::new();
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    let mut digests: Vec<(String, String)> = Vec::new();
    let mut total_bytes = 0u64;
    let mut done = 0u64;
    let mut top = read_dir_sorted(root).map_err(|e| e.at(&shown))?;
    top.retain(|(name, _)| !name.starts_with('.'));
    for (name, ty) in top {
        let path = root.join(&name);
        if ty.is_symlink() {
            skipped.push((name, "symbolic link (not followed)".into()));
            continue;
        }
        if ty.is_file() {
            let bytes =
                std::fs::read(&path).map_err(|e| DataError::io(&path.display().to_string(), &e))?;
            total_bytes += bytes.len() as u64;
            digests.push((name.clone(), mlsec_core::digest::sha256_hex(&bytes)));
            skipped.push((name, "not inside a class folder".into()));
            continue;
        }
        if !ty.is_dir() {
            continue;
        }
        let mut class_has_images = false;
        for (file, fty) in read_dir_sorted(&path).map_err(|e| e.at(&shown))? {
            let rel = format!("{name}/{file}");
            if file.starts_with('.') {
                continue;
            }
            if fty.is_symlink() {
                skipped.push((rel, "symbolic link (not followed)".into()));
                continue;
            }
            if fty.is_dir() {
                skipped.push((
                    rel,
                    "nested folder (only one level of class folders is read)".into(),
                ));
                continue;
            }
            let full = path.join(&file);
            let bytes =
                std::fs::read(&full).map_err(|e| DataError::io(&full.display().to_string(), &e))?;
            total_bytes += bytes.len() as u64;
            let sha = mlsec_core::digest::sha256_hex(&bytes);
            digests.push((rel.clone(), sha.clone()));
            done += 1;
            progress(done);
            match image_header(&bytes) {
                Ok((format, width, height, color)) => {
                    class_has_images = true;
                    images.push(ImageEntry {
                        path: rel,
                        class: name.clone(),
                        sha256: sha,
                        bytes: bytes.len() as u64,
                        format,
                        width,
                        height,
                        color,
                    });
                }
                Err(reason) => skipped.push((rel, reason)),
            }
        }
        if class_has_images {
            classes.push(name);
        }
    }
    if images.is_empty() {
        return Err(DataError::malformed(
            "no PNG or JPEG images in class sub-folders (expected FOLDER/<class>/<image>)",
        )
        .at(&shown));
    }
    let sha256 =
        mlsec_core::digest::manifest_digest(digests.iter().map(|(p, h)| (p.as_str(), h.as_str())));
    Ok(ImageFolder {
        classes,
        images,
        skipped,
        sha256,
        total_bytes,
    })
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, std::fs::FileType)>> {
    let shown = dir.display().to_string();
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(&shown, &e))? {
        let entry = entry.map_err(|e| DataError::io(&shown, &e))?;
        let ty = entry.file_type().map_err(|e| DataError::io(&shown, &e))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| DataError::malformed(format!("file name {n:?} is not valid UTF-8")))?;
        entries.push((name, ty));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// Format, size and colour type from the header alone, detected by content.
fn image_header(bytes: &[u8]) -> std::result::Result<(&'static str, u32, u32, String), String> {
    let cursor = std::io::Cursor::new(bytes);
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => {
            let d = image::codecs::png::PngDecoder::new(cursor)
                .map_err(|e| format!("corrupt PNG: {e}"))?;
            let (w, h) = d.dimensions();
            Ok(("png", w, h, format!("{:?}", d.color_type())))
        }
        Ok(image::ImageFormat::Jpeg) => {
            let d = image::codecs::jpeg::JpegDecoder::new(cursor)
                .map_err(|e| format!("corrupt JPEG: {e}"))?;
            let (w, h) = d.dimensions();
            Ok(("jpeg", w, h, format!("{:?}", d.color_type())))
        }
        Ok(other) => Err(format!("{other:?} image (mlsec reads PNG and JPEG)")),
        Err(_) => Err("not an image".into()),
    }
}

impl ImageFolder {
    /// How many images share each `WxH colour` combination.
    pub fn dimension_counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for img in &self.images {
            *m.entry(format!("{}x{} {}", img.width, img.height, img.color))
                .or_default() += 1;
        }
        m
    }
}
