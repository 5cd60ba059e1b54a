//! Objects to and from local files: a stored original copied to a temporary file for a program
//! that needs a file (`pdftoppm`, `ffmpeg`), and a finished file put into the store, streamed
//! both ways.

use std::path::Path;

use futures_util::StreamExt;

use super::{ObjectKey, Purpose, Store, StoreError, Stored};

impl Store {
    /// The object at `key` copied into a temporary file in `dir` (removed when dropped), opened
    /// for `purpose` as `open_evidence` would for someone who may not receive originals: only
    /// rendering reads an original this way.
    pub async fn spool(
        &self,
        key: &ObjectKey,
        purpose: Purpose,
        dir: &Path,
    ) -> Result<tempfile::NamedTempFile, StoreError> {
        use tokio::io::AsyncWriteExt;
        let fetched = self.open_evidence(key, None, purpose, false).await?;
        let file = tempfile::NamedTempFile::new_in(dir).map_err(StoreError::Local)?;
        let mut out = tokio::fs::File::from_std(file.reopen().map_err(StoreError::Local)?);
        let mut body = fetched.body;
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?).await.map_err(StoreError::Local)?;
        }
        out.flush().await.map_err(StoreError::Local)?;
        Ok(file)
    }

    /// Puts the file at `path` under `key`, streamed; returns what was measured on the way.
    pub async fn put_file(&self, key: &ObjectKey, path: &Path) -> Result<Stored, StoreError> {
        use tokio::io::AsyncReadExt;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(StoreError::Local)?;
        let size = file.metadata().await.map_err(StoreError::Local)?.len();
        let body = futures_util::stream::try_unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 256 * 1024];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.truncate(n);
            Ok(Some((bytes::Bytes::from(buf), file)))
        });
        self.put_stream(key, body, size + 1).await
    }
}
