//! Attachments: the bytes go to a content-addressed [`BlobStore`] (a folder in the data
//! directory by default; an S3-compatible store can implement the same two calls), and a row per
//! file is written in the message's transaction. Blobs are written first and named by their
//! SHA-256, so a failed transaction leaves at most an unreferenced file, never a row without
//! its bytes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use seva_domain::conversation::{clean_content_type, clean_filename};
use seva_domain::{Attachment, AttachmentId};
use sha2::{Digest, Sha256};

use crate::{App, AppError, Result, not_found};

/// Largest file accepted, and most files per message.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_FILES: usize = 10;

/// Where attachment bytes live, by SHA-256 (lower-case hex).
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` durably under `sha256`; storing the same bytes again is a no-op.
    fn put(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()>;
    fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>>;
    /// Removes the bytes (erasure); bytes already gone are not an error.
    fn delete(&self, sha256: &str) -> std::io::Result<()>;
}

/// Blobs as files `ROOT/ab/abcdef…`, written to a temporary name, synced, then renamed.
#[derive(Debug)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, sha256: &str) -> std::io::Result<PathBuf> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a SHA-256",
            ));
        }
        Ok(self.root.join(&sha256[..2]).join(sha256))
    }
}

impl BlobStore for LocalBlobs {
    fn put(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(sha256)?;
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let temp = dir.join(format!(".{sha256}.{}", std::process::id()));
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    }

    fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(sha256)?)
    }

    fn delete(&self, sha256: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(sha256)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A file as a sender gave it.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A file checked, named and stored, ready for its row.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
}

impl App {
    /// Uses `blobs` for attachments. Without it, messages with files are refused.
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Checks the files against the limits and writes their bytes to the blob store.
    pub(crate) async fn store_files(&self, files: &[NewFile]) -> Result<Vec<StoredFile>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        if files.len() > MAX_FILES {
            return Err(AppError::TooManyAttachments { max: MAX_FILES });
        }
        if let Some(file) = files.iter().find(|f| f.bytes.len() > MAX_FILE_BYTES) {
            return Err(AppError::AttachmentTooLarge {
                filename: clean_filename(&file.filename),
                max_bytes: MAX_FILE_BYTES,
            });
        }
        let blobs = self.blobs.clone().ok_or(AppError::AttachmentsUnavailable)?;
        let files = files.to_vec();
        tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|file| {
                    let sha256 = hex::encode(Sha256::digest(&file.bytes));
                    blobs.put(&sha256, &file.bytes)?;
                    Ok(StoredFile {
                        filename: clean_filename(&file.filename),
                        content_type: clean_content_type(&file.content_type),
                        size: file.bytes.len() as u64,
                        sha256,
                    })
                })
                .collect::<std::io::Result<Vec<_>>>()
        })
        .await
        .map_err(|e| AppError::AttachmentStore(e.to_string()))?
        .map_err(|e| AppError::AttachmentStore(e.to_string()))
    }

    /// Writes bytes that have no row of their own (a mail's raw source) and names them.
    pub(crate) async fn put_blob(&self, bytes: Vec<u8>) -> Result<String> {
        let blobs = self.blobs.clone().ok_or(AppError::AttachmentsUnavailable)?;
        tokio::task::spawn_blocking(move || {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            blobs.put(&sha256, &bytes).map(|()| sha256)
        })
        .await
        .map_err(|e| AppError::AttachmentStore(e.to_string()))?
        .map_err(|e| AppError::AttachmentStore(e.to_string()))
    }

    /// Bytes from the blob store by their SHA-256.
    pub async fn blob(&self, sha256: &str) -> Result<Vec<u8>> {
        let blobs = self.blobs.clone().ok_or(AppError::AttachmentsUnavailable)?;
        let sha256 = sha256.to_owned();
        tokio::task::spawn_blocking(move || blobs.get(&sha256))
            .await
            .map_err(|e| AppError::AttachmentStore(e.to_string()))?
            .map_err(|e| AppError::AttachmentStore(e.to_string()))
    }

    /// An attachment and its bytes.
    pub async fn attachment(&self, id: AttachmentId) -> Result<(Attachment, Vec<u8>)> {
        let mut conn = self.store.conn().await?;
        let attachment = seva_store::attachments::get(&mut conn, id)
            .await
            .map_err(not_found("attachment"))?;
        drop(conn);
        let blobs = self.blobs.clone().ok_or(AppError::AttachmentsUnavailable)?;
        let sha256 = attachment.sha256.clone();
        let bytes = tokio::task::spawn_blocking(move || blobs.get(&sha256))
            .await
            .map_err(|e| AppError::AttachmentStore(e.to_string()))?
            .map_err(|e| AppError::AttachmentStore(e.to_string()))?;
        Ok((attachment, bytes))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn local_blobs_store_once_by_hash_and_refuse_other_names() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::new(dir.path());
        let sha = hex::encode(Sha256::digest(b"hello"));
        blobs.put(&sha, b"hello").unwrap();
        blobs.put(&sha, b"hello").unwrap();
        assert_eq!(blobs.get(&sha).unwrap(), b"hello");
        assert!(dir.path().join(&sha[..2]).join(&sha).exists());
        assert!(blobs.get("../../etc/passwd").is_err());
        assert!(blobs.put("zz", b"x").is_err());
    }
}
