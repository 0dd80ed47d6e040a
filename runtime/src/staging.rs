//! The staged object's bytes: the export stream cut into multipart parts (one LZ4 frame
//! across them when the plan's `staging s3 compression=lz4`, the default), and an object read
//! back into plain TabSeparated for COPY.
//!
//! Both directions run on a blocking thread between two channels, so compressing overlaps
//! the export and COPY instead of adding to them.

use std::io::{self, Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use lz4_flex::frame::{FrameDecoder, FrameEncoder, FrameInfo};
use stir_plan::StagingCompression;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The object key's ending: `.tsv.lz4` (what `lz4 -d` expects) or `.tsv`.
pub fn suffix(c: StagingCompression) -> &'static str {
    match c {
        StagingCompression::Lz4 => ".tsv.lz4",
        StagingCompression::None => ".tsv",
    }
}

/// Cut the export stream into parts of at least `part_size` bytes; only the last part is
/// shorter (S3's rule), and a single short part means the object fits one PUT. Parts grow by
/// `part_size` every 1000 parts, as S3 allows at most 10 000.
pub fn spawn_parts(
    mut chunks: mpsc::Receiver<Bytes>,
    parts: mpsc::Sender<Bytes>,
    part_size: usize,
    compression: StagingCompression,
) -> JoinHandle<Result<(), String>> {
    tokio::task::spawn_blocking(move || {
        let mut out = Encoder::new(compression, with_headroom(part_size));
        let mut size = part_size;
        let mut sent = 0usize;
        while let Some(chunk) = chunks.blocking_recv() {
            out.write_all(&chunk)
                .map_err(|e| format!("compressing the export: {e}"))?;
            if out.ready() >= size {
                if parts.blocking_send(out.take(with_headroom(size))).is_err() {
                    return Err("the S3 upload stopped".into());
                }
                sent += 1;
                if sent % 1000 == 0 {
                    size += part_size;
                }
            }
        }
        let last = out
            .finish()
            .map_err(|e| format!("compressing the export: {e}"))?;
        if (!last.is_empty() || sent == 0) && parts.blocking_send(last).is_err() {
            return Err("the S3 upload stopped".into());
        }
        Ok(())
    })
}

/// A part buffer's capacity: the part size plus room for the chunk that crosses it.
fn with_headroom(size: usize) -> usize {
    size + size / 8
}

/// Turn a staged object's bytes back into TabSeparated chunks.
pub fn spawn_decode(
    object: mpsc::Receiver<Bytes>,
    tsv: mpsc::Sender<Bytes>,
    compression: StagingCompression,
) -> JoinHandle<Result<(), String>> {
    tokio::task::spawn_blocking(move || {
        let mut reader = ChannelReader {
            rx: object,
            current: Bytes::new(),
        };
        match compression {
            StagingCompression::None => {
                while let Some(b) = reader.rx.blocking_recv() {
                    if tsv.blocking_send(b).is_err() {
                        return Ok(());
                    }
                }
            }
            StagingCompression::Lz4 => {
                let mut decoder = FrameDecoder::new(reader);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = decoder.read(&mut buf).map_err(|e| {
                        format!("the staged object is not a complete LZ4 frame: {e}")
                    })?;
                    if n == 0 {
                        break;
                    }
                    if tsv
                        .blocking_send(Bytes::copy_from_slice(&buf[..n]))
                        .is_err()
                    {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    })
}

/// Plain or LZ4-framed bytes accumulating into the next part.
enum Encoder {
    Plain(BytesMut),
    Lz4(Box<FrameEncoder<bytes::buf::Writer<BytesMut>>>),
}

impl Encoder {
    fn new(c: StagingCompression, capacity: usize) -> Encoder {
        let buf = BytesMut::with_capacity(capacity);
        match c {
            StagingCompression::None => Encoder::Plain(buf),
            StagingCompression::Lz4 => {
                // The content checksum lets a reload notice a damaged object.
                let info = FrameInfo::new().content_checksum(true);
                Encoder::Lz4(Box::new(FrameEncoder::with_frame_info(info, buf.writer())))
            }
        }
    }

    fn buffer(&mut self) -> &mut BytesMut {
        match self {
            Encoder::Plain(b) => b,
            Encoder::Lz4(e) => e.get_mut().get_mut(),
        }
    }

    /// Bytes ready for a part.
    fn ready(&mut self) -> usize {
        self.buffer().len()
    }

    /// The bytes so far as a part, and a fresh buffer of `capacity` for the next one. Left to
    /// grow by itself the buffer would start small after the split and double its way past the
    /// part size: copies on every doubling and parts holding twice their size.
    fn take(&mut self, capacity: usize) -> Bytes {
        let b = self.buffer();
        let part = b.split().freeze();
        b.reserve(capacity);
        part
    }

    fn finish(self) -> io::Result<Bytes> {
        match self {
            Encoder::Plain(b) => Ok(b.freeze()),
            Encoder::Lz4(e) => Ok(e.finish()?.into_inner().freeze()),
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(b) => {
                b.extend_from_slice(data);
                Ok(data.len())
            }
            Encoder::Lz4(e) => e.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `Read` over chunks arriving on a channel (the S3 response body).
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(c: StagingCompression, input: Vec<Bytes>, part_size: usize) -> Vec<Bytes> {
        let (chunk_tx, chunk_rx) = mpsc::channel(4);
        let (part_tx, mut part_rx) = mpsc::channel(4);
        let parts = spawn_parts(chunk_rx, part_tx, part_size, c);
        let feed = tokio::spawn(async move {
            for b in input {
                chunk_tx.send(b).await.unwrap();
            }
        });
        let mut out = Vec::new();
        while let Some(p) = part_rx.recv().await {
            out.push(p);
        }
        feed.await.unwrap();
        parts.await.unwrap().unwrap();
        out
    }

    async fn decode(c: StagingCompression, parts: Vec<Bytes>) -> Result<Vec<u8>, String> {
        let (obj_tx, obj_rx) = mpsc::channel(4);
        let (tsv_tx, mut tsv_rx) = mpsc::channel(4);
        let dec = spawn_decode(obj_rx, tsv_tx, c);
        tokio::spawn(async move {
            for p in parts {
                // Uneven pieces, as an HTTP body arrives.
                for piece in p.chunks(7777) {
                    if obj_tx.send(Bytes::copy_from_slice(piece)).await.is_err() {
                        return;
                    }
                }
            }
        });
        let mut out = Vec::new();
        while let Some(b) = tsv_rx.recv().await {
            out.extend_from_slice(&b);
        }
        dec.await.unwrap()?;
        Ok(out)
    }

    fn tsv(rows: usize) -> Vec<Bytes> {
        (0..rows)
            .collect::<Vec<_>>()
            .chunks(997)
            .map(|c| {
                let s: String = c
                    .iter()
                    .map(|i| format!("{i}\thandle_{i}\tName \\t {}\t2024-01-01\n", i % 77))
                    .collect();
                Bytes::from(s)
            })
            .collect()
    }

    #[tokio::test]
    async fn parts_round_trip_in_both_formats() {
        for c in [StagingCompression::Lz4, StagingCompression::None] {
            let input = tsv(200_000);
            let whole: Vec<u8> = input.iter().flat_map(|b| b.to_vec()).collect();
            let parts = round_trip(c, input, 256 * 1024).await;
            assert!(parts.len() > 2, "{c:?}: {} parts", parts.len());
            let (last, full) = parts.split_last().unwrap();
            assert!(full.iter().all(|p| p.len() >= 256 * 1024), "{c:?}");
            assert!(!last.is_empty());
            let stored: usize = parts.iter().map(|p| p.len()).sum();
            match c {
                StagingCompression::Lz4 => {
                    assert!(stored * 2 < whole.len(), "{stored} of {}", whole.len())
                }
                StagingCompression::None => assert_eq!(stored, whole.len()),
            }
            assert_eq!(decode(c, parts).await.unwrap(), whole, "{c:?}");
        }
    }

    #[tokio::test]
    async fn a_small_export_is_one_short_part() {
        for c in [StagingCompression::Lz4, StagingCompression::None] {
            let parts = round_trip(c, tsv(10), 1 << 20).await;
            assert_eq!(parts.len(), 1);
            assert!(parts[0].len() < 1 << 20);
            let empty = round_trip(c, Vec::new(), 1 << 20).await;
            assert_eq!(empty.len(), 1, "an empty export still makes an object");
            assert!(decode(c, empty).await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_damaged_or_truncated_lz4_object_is_refused() {
        let parts = round_trip(StagingCompression::Lz4, tsv(50_000), 1 << 30).await;
        let whole = parts[0].clone();
        let truncated = whole.slice(..whole.len() - 100);
        let err = decode(StagingCompression::Lz4, vec![truncated])
            .await
            .unwrap_err();
        assert!(err.contains("not a complete LZ4 frame"), "{err}");
        let mut flipped = whole.to_vec();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        assert!(decode(StagingCompression::Lz4, vec![Bytes::from(flipped)])
            .await
            .is_err());
    }
}
