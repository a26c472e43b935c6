//! The bytes the load generator sends, chosen so that echoes can be checked cheaply.
//!
//! Byte `i` of a connection's stream is `i % PERIOD`. `PERIOD` is prime so that messages of a
//! power-of-two size do not all look alike, and any run of bytes starting at stream offset `o`
//! is a slice of one precomputed buffer starting at `o % PERIOD`. Sending is thus a write from
//! that buffer (no copy) and checking an echo is one `memcmp`.

/// Length of the repeating pattern (a prime below 256).
pub const PERIOD: usize = 251;

/// The longest run [`Pattern::slice`] hands out: one 64 KiB write.
pub const MAX_RUN: usize = 64 * 1024;

/// A precomputed stretch of the stream pattern, long enough for any run up to [`MAX_RUN`] bytes
/// starting at any offset.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// `MAX_RUN + PERIOD` bytes of the pattern, starting at stream offset 0.
    bytes: Box<[u8]>,
}

impl Default for Pattern {
    fn default() -> Self {
        Self::new()
    }
}

impl Pattern {
    /// Builds the pattern buffer.
    pub fn new() -> Self {
        let bytes = (0..MAX_RUN + PERIOD).map(|i| (i % PERIOD) as u8).collect();
        Self { bytes }
    }

    /// The `len` bytes at stream offset `offset`.
    ///
    /// # Panics
    ///
    /// If `len` exceeds [`MAX_RUN`].
    pub fn slice(&self, offset: u64, len: usize) -> &[u8] {
        assert!(len <= MAX_RUN, "run of {len} bytes is longer than MAX_RUN");
        let start = (offset % PERIOD as u64) as usize;
        &self.bytes[start..start + len]
    }

    /// Whether `data` is what the stream holds at `offset`. `data` may be of any length.
    pub fn matches(&self, offset: u64, data: &[u8]) -> bool {
        data.chunks(MAX_RUN)
            .enumerate()
            .all(|(i, chunk)| self.slice(offset + (i * MAX_RUN) as u64, chunk.len()) == chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_continue_the_stream() {
        let p = Pattern::new();
        let a = p.slice(0, 300).to_vec();
        let b = p.slice(300, 300);
        let whole: Vec<u8> = (0..600).map(|i| (i % PERIOD) as u8).collect();
        assert_eq!([&a[..], b].concat(), whole);
    }

    #[test]
    fn matches_rejects_a_shifted_echo() {
        let p = Pattern::new();
        let data = p.slice(1000, 64).to_vec();
        assert!(p.matches(1000, &data));
        assert!(!p.matches(1001, &data));
        let long: Vec<u8> = (0..3 * MAX_RUN + 7)
            .map(|i| ((i + 5) % PERIOD) as u8)
            .collect();
        assert!(p.matches(5, &long));
    }
}
