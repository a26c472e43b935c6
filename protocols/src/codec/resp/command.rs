//! A decoded request and the iterator over its arguments, both borrowing the input.

use std::fmt;

/// Whitespace that separates inline arguments (C's `isspace`, as Redis uses).
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c')
}

/// The two request forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// `bytes` holds the array's elements, `$<len>\r\n<data>\r\n` each, already validated.
    Array,
    /// `bytes` holds the inline line without its terminator.
    Inline,
}

/// One decoded request: its arguments, borrowed from the input.
///
/// The first argument is the command name; compare it with `eq_ignore_ascii_case`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RespCommand<'a> {
    /// Which form `bytes` is in.
    pub(super) form: Form,
    /// The validated bytes the arguments are read from (see [`Form`]).
    pub(super) bytes: &'a [u8],
    /// Number of arguments in `bytes`.
    pub(super) argc: usize,
}

impl<'a> RespCommand<'a> {
    /// The arguments, name first.
    pub fn args(&self) -> Args<'a> {
        Args {
            form: self.form,
            rest: self.bytes,
            left: self.argc,
        }
    }

    /// The command name: the first argument, if any.
    pub fn name(&self) -> Option<&'a [u8]> {
        self.args().next()
    }

    /// Number of arguments, name included.
    pub fn len(&self) -> usize {
        self.argc
    }

    /// Whether the command has no arguments at all (`*0`, or a blank inline line): ignore it.
    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    /// Whether the command came as an inline line rather than an array.
    pub fn is_inline(&self) -> bool {
        self.form == Form::Inline
    }
}

impl fmt::Debug for RespCommand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RespCommand")?;
        f.debug_list()
            .entries(self.args().map(|a| String::from_utf8_lossy(a)))
            .finish()
    }
}

/// Iterator over a [`RespCommand`]'s arguments.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    /// Which form `rest` is in.
    form: Form,
    /// The bytes not yet walked.
    rest: &'a [u8],
    /// Arguments left in `rest`.
    left: usize,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match self.form {
            Form::Array => {
                // `$<len>\r\n<data>\r\n`, validated by the decoder; `get` keeps this panic-free
                // all the same.
                let cr = self.rest.iter().position(|&b| b == b'\r')?;
                let len = self.rest.get(1..cr)?.iter().try_fold(0usize, |n, &d| {
                    n.checked_mul(10)?
                        .checked_add(usize::from(d.checked_sub(b'0')?))
                })?;
                let data_at = cr + 2;
                let data = self.rest.get(data_at..data_at.checked_add(len)?)?;
                self.rest = self.rest.get(data_at + len + 2..).unwrap_or(&[]);
                Some(data)
            }
            Form::Inline => {
                let start = self.rest.iter().position(|&b| !is_space(b))?;
                let rest = &self.rest[start..];
                let len = rest.iter().position(|&b| is_space(b)).unwrap_or(rest.len());
                self.rest = &rest[len..];
                Some(&rest[..len])
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Args<'_> {}
