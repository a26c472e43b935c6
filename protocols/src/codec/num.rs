//! Small integer formatting for encoders, without the `fmt` machinery.

/// Appends the decimal digits of `n` to `dst`.
pub(crate) fn write_u64(dst: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 digits; fill the buffer from its end.
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&buf[i..]);
}

/// Appends the decimal digits of `n` to `dst`, with a `-` when negative.
pub(crate) fn write_i64(dst: &mut Vec<u8>, n: i64) {
    if n < 0 {
        dst.push(b'-');
    }
    // `unsigned_abs` is exact for i64::MIN too.
    write_u64(dst, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_display() {
        for n in [0i64, 1, -1, 9, 10, 99, 100, 12345, i64::MAX, i64::MIN] {
            let mut v = Vec::new();
            write_i64(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
        let mut v = Vec::new();
        write_u64(&mut v, u64::MAX);
        assert_eq!(v, u64::MAX.to_string().into_bytes());
    }
}
