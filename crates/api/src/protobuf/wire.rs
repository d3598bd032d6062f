//! The protobuf wire format: tags, varints, fixed-width and length-delimited values, read from
//! untrusted bytes without trusting any length.

use super::DecodeError;

/// One field value as it travels, before the schema says what it means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl WireValue<'_> {
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            WireValue::Varint(_) => "varint",
            WireValue::Fixed64(_) => "fixed64",
            WireValue::Bytes(_) => "length-delimited",
            WireValue::Fixed32(_) => "fixed32",
        }
    }
}

/// A cursor over one message's bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next field: its number and value.
    pub(super) fn field(&mut self) -> Result<(u32, WireValue<'a>), DecodeError> {
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(malformed(format!("invalid field number {number}")));
        }
        let value = match tag & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(self.fixed64()?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| malformed("length does not fit in memory"))?;
                WireValue::Bytes(self.take(len)?)
            }
            5 => WireValue::Fixed32(self.fixed32()?),
            // Groups (3, 4) are proto2's deprecated nesting; no Kubernetes message uses them.
            t => return Err(malformed(format!("unsupported wire type {t} in field {number}"))),
        };
        Ok((number as u32, value))
    }

    /// A base-128 varint of at most ten bytes.
    pub(super) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(malformed(if self.buf.len() < 10 { "truncated varint" } else { "varint too long" }))
    }

    pub(super) fn fixed32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }

    pub(super) fn fixed64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take_array()?))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.buf.len() {
            return Err(malformed(format!(
                "a field claims {len} bytes but only {} remain",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

pub(super) fn malformed(message: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type() {
        let bytes = [
            0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0,
            0,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.field().unwrap(), (1, WireValue::Varint(150)));
        assert_eq!(r.field().unwrap(), (2, WireValue::Bytes(b"hi")));
        assert_eq!(r.field().unwrap(), (3, WireValue::Fixed32(1)));
        assert_eq!(r.field().unwrap(), (4, WireValue::Fixed64(2)));
        assert!(r.is_empty());
    }

    #[test]
    fn truncation_and_overlong_varints_are_errors() {
        for bytes in [&[0x0a, 0x05, b'a'][..], &[0x08, 0x80], &[0x08; 1], &[0x80; 12], &[0x0b]] {
            assert!(Reader::new(bytes).field().is_err(), "{bytes:?}");
        }
        assert!(Reader::new(&[0x00, 0x01]).field().is_err(), "field number 0");
    }
}
