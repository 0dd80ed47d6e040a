//! The export pass: ClickHouse -> S3 multipart (and COPY in the one-pass mode), and COPY from S3.

use super::*;
use crate::warehouse::{Answer, AnswerError};

impl Job<'_> {
    /// Abort multipart uploads a killed run left under this sync's prefix.
    pub(super) async fn abort_stale_uploads(&self) -> Result<(), Fail> {
        let uploads = self
            .s3
            .list_multipart(&self.sync.s3_prefix)
            .await
            .map_err(s3_err)?;
        for u in uploads {
            match self.s3.abort_multipart(&u.key, &u.upload_id).await {
                Ok(()) => {
                    info!(sync = %self.sync.name, key = %u.key, "aborted an unfinished upload of an earlier run")
                }
                Err(e) => {
                    warn!(sync = %self.sync.name, key = %u.key, error = %e, "cannot abort an unfinished upload")
                }
            }
        }
        Ok(())
    }

    /// Export into S3; every chunk is also sent to `copy` when given. Answers rows and bytes.
    pub(super) async fn export(
        &self,
        select: &str,
        copy: Option<mpsc::Sender<Bytes>>,
    ) -> Result<Exported, Fail> {
        let qid = self.next_qid();
        let (chunk_tx, chunk_rx) = mpsc::channel::<Bytes>(4);
        let (part_tx, part_rx) = mpsc::channel::<Bytes>(1);
        let parts = staging::spawn_parts(
            chunk_rx,
            part_tx,
            self.runner.options.part_size,
            self.compression,
        );
        let producer = async {
            self.ctx.queries.begin(&qid);
            let r = produce(
                &self.ch,
                select,
                &self.sync.clickhouse.format,
                &qid,
                chunk_tx,
                copy,
            )
            .await;
            self.ctx.queries.end(&qid);
            let exported = r?;
            parts
                .await
                .map_err(|e| other(format!("the staging thread failed: {e}")))?
                .map_err(other)?;
            Ok(exported)
        };
        let uploader = upload(
            &self.s3,
            &self.key,
            self.runner.options.part_size,
            part_rx,
            &self.upload_id,
        );
        let (mut exported, parts) = tokio::try_join!(producer, uploader)?;
        exported.parts = parts;
        Ok(exported)
    }

    /// The one-pass export: ClickHouse -> (S3, COPY). COPY is committed after the upload.
    pub(super) async fn export_and_copy(&mut self, select: &str) -> Result<(Exported, u64), Fail> {
        let (copy_tx, copy_rx) = mpsc::channel::<Bytes>(8);
        let pg = self
            .pg
            .take()
            .ok_or_else(|| other("no PostgreSQL connection"))?;
        let copy_sql = self.sync.postgres.copy.clone();
        let runner = self.runner;
        let feeding = async {
            let sink: CopyInSink<Bytes> = pg
                .copy_in(copy_sql.as_str())
                .await
                .map_err(|e| pg_err("start COPY", &e))?;
            feed(runner, Box::pin(sink), copy_rx, Some(&self.upload_id)).await
        };
        let result = tokio::try_join!(self.export(select, Some(copy_tx)), feeding);
        let (exported, mut sink) = match result {
            Ok(x) => x,
            Err(e) => {
                self.pg = Some(pg);
                return Err(e);
            }
        };
        let after = self.runner.failpoint(Failpoint::AfterExport).await;
        if let Err(e) = after {
            drop(sink);
            drop(pg);
            return Err(e);
        }
        let rows = sink.as_mut().finish().await.map_err(|e| pg_err("COPY", &e));
        self.pg = Some(pg);
        Ok((exported, rows?))
    }

    /// Stream the staged object from S3 into COPY.
    pub(super) async fn copy_from_s3(&mut self) -> Result<u64, Fail> {
        let pg = self.pg()?;
        let sink: CopyInSink<Bytes> = pg
            .copy_in(self.sync.postgres.copy.as_str())
            .await
            .map_err(|e| pg_err("start COPY", &e))?;
        let (tx, object_rx) = mpsc::channel::<Bytes>(8);
        let (tsv_tx, rx) = mpsc::channel::<Bytes>(8);
        let decode = staging::spawn_decode(object_rx, tsv_tx, self.compression);
        let s3 = &self.s3;
        let key = &self.key;
        let reading = async move {
            let mut resp = s3.get_object(key).await.map_err(s3_err)?;
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        if tx.send(c).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(s3_err(e)),
                }
            }
        };
        let (_, mut sink) = tokio::try_join!(reading, feed(self.runner, Box::pin(sink), rx, None))?;
        decode
            .await
            .map_err(|e| other(format!("the staging thread failed: {e}")))?
            .map_err(|e| other(format!("s3: `s3://{}/{key}`: {e}", s3.bucket())))?;
        sink.as_mut().finish().await.map_err(|e| pg_err("COPY", &e))
    }
}

/// Stream the export: chunks into parts for the uploader, and into `copy` when given.
async fn produce(
    ch: &clickhouse::Client,
    select: &str,
    format: &str,
    qid: &str,
    staged: mpsc::Sender<Bytes>,
    copy: Option<mpsc::Sender<Bytes>>,
) -> Result<Exported, Fail> {
    let cursor = ch
        .query_raw(select)
        .with_setting("query_id", qid)
        .fetch_bytes(format)
        .map_err(|e| ch_err("export", e))?;
    let mut answer = Answer::new(cursor);
    let mut out = Exported::default();
    let mut last = b'\n';
    while let Some(chunk) = answer.next().await.map_err(|e| match e {
        // An error raised after the 200: ClickHouse writes it into the body (found by
        // `Answer`, or by the crate) and cuts the answer. Nothing of it was passed on.
        AnswerError::Exception(m) if out.bytes > 0 => other(format!(
            "clickhouse: export: ClickHouse failed after sending {} rows (query_id `{qid}`); \
                 nothing of this answer is loaded: {}",
            out.rows,
            redact_text(m.trim())
        )),
        AnswerError::Exception(m) => other(format!(
            "clickhouse: export: ClickHouse failed (query_id `{qid}`): {}",
            redact_text(m.trim())
        )),
        AnswerError::Client(e @ clickhouse::error::Error::Network(_)) if out.bytes > 0 => ch_err(
            &format!(
                "export: the answer stopped after {} rows (ClickHouse failed during the query, \
                 or the connection broke; its system.query_log has query_id `{qid}`)",
                out.rows
            ),
            e,
        ),
        AnswerError::Client(e) => ch_err(&format!("export (query_id `{qid}`)"), e),
    })? {
        if chunk.is_empty() {
            continue;
        }
        out.rows += count_lines(&chunk);
        out.bytes += chunk.len() as u64;
        last = chunk[chunk.len() - 1];
        if let Some(tx) = &copy {
            if tx.send(chunk.clone()).await.is_err() {
                return Err(other("COPY stopped reading"));
            }
        }
        if staged.send(chunk).await.is_err() {
            return Err(other("the S3 upload stopped"));
        }
    }
    if last != b'\n' {
        return Err(other(
            "the ClickHouse export ended in the middle of a row (truncated answer)",
        ));
    }
    Ok(out)
}

/// Upload parts as they come; a single small part becomes one PUT. Answers the part count.
async fn upload(
    s3: &S3,
    key: &str,
    part_size: usize,
    mut rx: mpsc::Receiver<Bytes>,
    upload_id: &Mutex<Option<String>>,
) -> Result<u32, Fail> {
    let Some(first) = rx.recv().await else {
        return Err(other("the export produced nothing"));
    };
    if first.len() < part_size {
        // The producer sends a short part only as the last one.
        s3.put_object(key, first).await.map_err(s3_err)?;
        return Ok(1);
    }
    let id = s3.create_multipart(key).await.map_err(s3_err)?;
    if let Ok(mut g) = upload_id.lock() {
        *g = Some(id.clone());
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut next = Some(first);
    // One part uploading while the producer fills the next one.
    while let Some(data) = next.take() {
        let number = parts.len() as u32 + 1;
        let (part, following) = tokio::join!(s3.upload_part(key, &id, number, data), rx.recv());
        parts.push(part.map_err(s3_err)?);
        next = following;
    }
    s3.complete_multipart(key, &id, &parts)
        .await
        .map_err(s3_err)?;
    if let Ok(mut g) = upload_id.lock() {
        *g = None;
    }
    Ok(parts.len() as u32)
}

/// Feed chunks into COPY; answers the sink unfinished (the caller commits it).
///
/// The `DuringCopy` failpoint fires once COPY has data and, in the one-pass mode, the
/// multipart upload is open (or the stream ended), so a simulated kill leaves both behind.
async fn feed(
    runner: &Syncer,
    mut sink: Pin<Box<CopyInSink<Bytes>>>,
    mut rx: mpsc::Receiver<Bytes>,
    upload_id: Option<&Mutex<Option<String>>>,
) -> Result<Pin<Box<CopyInSink<Bytes>>>, Fail> {
    let mut armed = runner.options.failpoint.is_some();
    while let Some(chunk) = rx.recv().await {
        sink.send(chunk).await.map_err(|e| pg_err("COPY", &e))?;
        if armed {
            let open = upload_id.is_none_or(|m| m.lock().map(|g| g.is_some()).unwrap_or(true));
            if open {
                armed = false;
                runner.failpoint(Failpoint::DuringCopy).await?;
            }
        }
    }
    if armed {
        runner.failpoint(Failpoint::DuringCopy).await?;
    }
    Ok(sink)
}
