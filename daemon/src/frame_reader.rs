//! A connection's input buffer for length-prefixed frames: one `recv` takes whatever the socket
//! holds (a pipelined client's many frames at once), and frames are handed out as slices of the
//! buffer, with no copy and no allocation per frame. The buffer holds at most one chunk, or one
//! frame when a frame is larger; it shrinks back to a chunk once such a frame is consumed.

use futures_lite::{AsyncRead, AsyncReadExt};

/// Bytes read from the socket at a time, and the buffer's resting size.
pub const CHUNK_BYTES: usize = 16 << 10;

/// Bytes of the little-endian length that starts every frame (the length counts what follows).
pub const LENGTH_BYTES: usize = 4;

/// Buffered input: bytes `start..end` of `buf` are read and not yet consumed.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self { buf: vec![0; CHUNK_BYTES], start: 0, end: 0 }
    }
}

impl FrameReader {
    /// The bytes read and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The body length the next frame declares, once its length is buffered.
    pub fn next_frame_body(&self) -> Option<usize> {
        let length: [u8; LENGTH_BYTES] = self.buffered().get(..LENGTH_BYTES)?.try_into().ok()?;
        Some(u32::from_le_bytes(length) as usize)
    }

    /// Marks the first `n` buffered bytes consumed.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.end - self.start, "consumed only what is buffered");
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > CHUNK_BYTES {
                self.buf = vec![0; CHUNK_BYTES];
            }
        }
    }

    /// Reads once from `reader`, making room for at least `want` buffered bytes in all (moving
    /// what is buffered to the front, or growing the buffer for a frame larger than a chunk).
    /// Returns the bytes read: 0 at the end of the stream.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, reader: &mut R, want: usize) -> std::io::Result<usize> {
        let needed = want.max(CHUNK_BYTES);
        if self.buf.len() < needed {
            self.buf.resize(needed, 0);
        }
        if self.end == self.buf.len() || self.buf.len() - self.start < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        debug_assert!(self.end < self.buf.len(), "a caller fills only while the next frame is not whole");
        let n = reader.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that hands out its bytes in the given pieces, one per read.
    struct Pieces(std::collections::VecDeque<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            out: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let Some(mut piece) = self.0.pop_front() else { return std::task::Poll::Ready(Ok(0)) };
            let n = piece.len().min(out.len());
            out[..n].copy_from_slice(&piece[..n]);
            if n < piece.len() {
                self.0.push_front(piece.split_off(n));
            }
            std::task::Poll::Ready(Ok(n))
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    /// Reads every frame of `stream` as the native door does: fill until the next frame is
    /// whole, take it, consume it.
    fn frames(stream: Pieces) -> Vec<Vec<u8>> {
        futures_lite::future::block_on(async {
            let mut stream = stream;
            let mut input = FrameReader::default();
            let mut out = Vec::new();
            loop {
                let whole = input.next_frame_body().map(|body| LENGTH_BYTES + body);
                match whole {
                    Some(n) if input.buffered().len() >= n => {
                        out.push(input.buffered()[LENGTH_BYTES..n].to_vec());
                        input.consume(n);
                    }
                    _ => {
                        let want = whole.unwrap_or(LENGTH_BYTES);
                        if input.fill(&mut stream, want).await.expect("reads") == 0 {
                            assert!(input.buffered().is_empty(), "the stream ended inside a frame");
                            return out;
                        }
                    }
                }
            }
        })
    }

    #[test]
    fn frames_split_anywhere_across_reads_come_out_whole_and_in_order() {
        let bodies: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![7; 40_000], b"last".to_vec()];
        let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        for piece in [1, 3, 5, 4096, CHUNK_BYTES + 1, stream.len()] {
            let pieces = Pieces(stream.chunks(piece).map(<[u8]>::to_vec).collect());
            assert_eq!(frames(pieces), bodies, "pieces of {piece} bytes");
        }
    }

    #[test]
    fn the_buffer_grows_for_a_large_frame_and_shrinks_back_once_it_is_consumed() {
        let mut input = FrameReader::default();
        let big = frame(&vec![1; 3 * CHUNK_BYTES]);
        let mut stream = Pieces(vec![big.clone(), frame(b"small")].into());
        futures_lite::future::block_on(async {
            while input.buffered().len() < big.len() {
                input.fill(&mut stream, big.len()).await.expect("reads");
            }
        });
        assert!(input.buf.len() >= big.len());
        input.consume(big.len());
        assert_eq!(input.buf.len(), CHUNK_BYTES, "back to one chunk once the large frame is gone");
    }
}
