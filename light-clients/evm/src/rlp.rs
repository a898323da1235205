//! A small, strict RLP decoder and encoder.
//!
//! Strict means canonical: every value has exactly one accepted encoding, so two
//! different byte strings can never decode to the same header or trie node. The
//! decoder rejects single bytes wrapped in a string header, long-form lengths that
//! fit the short form, lengths with leading zero bytes, scalars with leading zero
//! bytes, truncated input and trailing bytes.

use crate::error::{Error, RlpError};

/// One decoded RLP item, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// A byte string (its payload).
    Bytes(&'a [u8]),
    /// A list: its payload (the concatenated encodings of its elements) and the
    /// full encoding including the list header.
    List { payload: &'a [u8], raw: &'a [u8] },
}

/// Reads the big-endian length of `len_of_len` bytes at the start of `input`.
fn read_length(input: &[u8], len_of_len: usize) -> Result<usize, RlpError> {
    let bytes = input.get(..len_of_len).ok_or(RlpError::Truncated)?;
    if bytes.first() == Some(&0) {
        return Err(RlpError::NonCanonical);
    }
    if len_of_len > core::mem::size_of::<usize>() {
        return Err(RlpError::Overflow);
    }
    let mut len = 0usize;
    for b in bytes {
        len = (len << 8) | usize::from(*b);
    }
    if len < 56 {
        return Err(RlpError::NonCanonical);
    }
    Ok(len)
}

/// Decodes the first item of `input`; returns it and the rest of the input.
pub(crate) fn decode_item(input: &[u8]) -> Result<(Item<'_>, &[u8]), RlpError> {
    let first = *input.first().ok_or(RlpError::Truncated)?;
    let (is_list, header_len, payload_len) = match first {
        0x00..=0x7f => return Ok((Item::Bytes(&input[..1]), &input[1..])),
        0x80..=0xb7 => (false, 1, usize::from(first - 0x80)),
        0xb8..=0xbf => {
            let lol = usize::from(first - 0xb7);
            (false, 1 + lol, read_length(&input[1..], lol)?)
        }
        0xc0..=0xf7 => (true, 1, usize::from(first - 0xc0)),
        0xf8..=0xff => {
            let lol = usize::from(first - 0xf7);
            (true, 1 + lol, read_length(&input[1..], lol)?)
        }
    };
    let end = header_len
        .checked_add(payload_len)
        .ok_or(RlpError::Overflow)?;
    if input.len() < end {
        return Err(RlpError::Truncated);
    }
    let payload = &input[header_len..end];
    let rest = &input[end..];
    if is_list {
        Ok((
            Item::List {
                payload,
                raw: &input[..end],
            },
            rest,
        ))
    } else {
        if payload_len == 1 && payload[0] < 0x80 {
            return Err(RlpError::NonCanonical);
        }
        Ok((Item::Bytes(payload), rest))
    }
}

/// Decodes exactly one item that spans the whole input.
pub(crate) fn decode_exact(input: &[u8]) -> Result<Item<'_>, RlpError> {
    let (item, rest) = decode_item(input)?;
    if !rest.is_empty() {
        return Err(RlpError::TrailingBytes);
    }
    Ok(item)
}

/// Decodes `input` as exactly one list and returns its elements.
pub(crate) fn decode_list(input: &[u8]) -> Result<Vec<Item<'_>>, RlpError> {
    match decode_exact(input)? {
        Item::List { payload, .. } => list_items(payload),
        Item::Bytes(_) => Err(RlpError::ExpectedList),
    }
}

/// Splits a list payload into at most `N` elements stored in `out`, without
/// allocating; returns how many there were. More than `N` is an error.
pub(crate) fn list_items_into<'a, const N: usize>(
    mut payload: &'a [u8],
    out: &mut [Item<'a>; N],
) -> Result<usize, RlpError> {
    let mut n = 0;
    while !payload.is_empty() {
        let (item, rest) = decode_item(payload)?;
        *out.get_mut(n).ok_or(RlpError::Overflow)? = item;
        n += 1;
        payload = rest;
    }
    Ok(n)
}

/// Splits a list payload into its elements.
pub(crate) fn list_items(mut payload: &[u8]) -> Result<Vec<Item<'_>>, RlpError> {
    let mut items = Vec::new();
    while !payload.is_empty() {
        let (item, rest) = decode_item(payload)?;
        items.push(item);
        payload = rest;
    }
    Ok(items)
}

impl<'a> Item<'a> {
    /// The payload of a byte string.
    pub(crate) fn bytes(&self) -> Result<&'a [u8], RlpError> {
        match *self {
            Item::Bytes(b) => Ok(b),
            Item::List { .. } => Err(RlpError::ExpectedBytes),
        }
    }

    /// A byte string of exactly `N` bytes.
    pub(crate) fn fixed<const N: usize>(&self) -> Result<[u8; N], RlpError> {
        let b = self.bytes()?;
        b.try_into().map_err(|_| RlpError::WrongLength {
            expected: N,
            found: b.len(),
        })
    }

    /// A canonical big-endian scalar of at most 8 bytes.
    pub(crate) fn u64(&self) -> Result<u64, RlpError> {
        let b = self.scalar_bytes(8)?;
        Ok(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
    }

    /// The bytes of a canonical big-endian scalar of at most `max` bytes
    /// (no leading zero byte; zero is the empty string).
    pub(crate) fn scalar_bytes(&self, max: usize) -> Result<&'a [u8], RlpError> {
        let b = self.bytes()?;
        if b.len() > max {
            return Err(RlpError::Overflow);
        }
        if b.first() == Some(&0) {
            return Err(RlpError::NonCanonical);
        }
        Ok(b)
    }

    /// The elements of a list.
    pub(crate) fn list(&self) -> Result<Vec<Item<'a>>, RlpError> {
        match *self {
            Item::List { payload, .. } => list_items(payload),
            Item::Bytes(_) => Err(RlpError::ExpectedList),
        }
    }
}

/// Appends the RLP header for a payload of `len` bytes.
fn encode_header(out: &mut Vec<u8>, len: usize, list: bool) {
    let (short, long) = if list {
        (0xc0u8, 0xf7u8)
    } else {
        (0x80u8, 0xb7u8)
    };
    if len < 56 {
        // `len < 56` so the sum stays below 0xf8.
        out.push(short + len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        out.push(long + (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
}

/// Appends the encoding of a byte string.
pub(crate) fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() == 1 && bytes[0] < 0x80 {
        out.push(bytes[0]);
    } else {
        encode_header(out, bytes.len(), false);
        out.extend_from_slice(bytes);
    }
}

/// Appends the encoding of an unsigned scalar (minimal big-endian bytes).
pub(crate) fn encode_u64(out: &mut Vec<u8>, v: u64) {
    let be = v.to_be_bytes();
    let skip = be.iter().take_while(|b| **b == 0).count();
    encode_bytes(out, &be[skip..]);
}

/// Wraps already-encoded elements into a list.
pub(crate) fn encode_list(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    encode_header(&mut out, payload.len(), true);
    out.extend_from_slice(payload);
    out
}

impl From<RlpError> for Error {
    fn from(e: RlpError) -> Self {
        Error::Rlp(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_canonical_forms() {
        // single byte below 0x80 wrapped in a string header
        assert_eq!(decode_exact(&[0x81, 0x05]), Err(RlpError::NonCanonical));
        // long form for a short string
        let mut long = vec![0xb8, 0x02, 1, 2];
        assert_eq!(decode_exact(&long), Err(RlpError::NonCanonical));
        // length with a leading zero byte
        long = vec![0xb9, 0x00, 0x40];
        long.extend(std::iter::repeat_n(1u8, 0x40));
        assert_eq!(decode_exact(&long), Err(RlpError::NonCanonical));
        // scalar with a leading zero
        let (item, _) = decode_item(&[0x82, 0x00, 0x01]).expect("valid string");
        assert_eq!(item.u64(), Err(RlpError::NonCanonical));
    }

    #[test]
    fn rejects_truncated_and_trailing() {
        assert_eq!(decode_exact(&[0x83, 1, 2]), Err(RlpError::Truncated));
        assert_eq!(decode_exact(&[0xc2, 0x01]), Err(RlpError::Truncated));
        assert_eq!(decode_exact(&[0x01, 0x02]), Err(RlpError::TrailingBytes));
        assert_eq!(decode_exact(&[]), Err(RlpError::Truncated));
    }

    #[test]
    fn encode_decode_round_trip() {
        for len in [0usize, 1, 55, 56, 300] {
            let data: Vec<u8> = (0..len).map(|i| (i % 120) as u8 + 0x80).collect();
            let mut out = Vec::new();
            encode_bytes(&mut out, &data);
            assert_eq!(decode_exact(&out).and_then(|i| i.bytes()), Ok(&data[..]));
        }
        for v in [0u64, 1, 0x7f, 0x80, 0xffff, u64::MAX] {
            let mut out = Vec::new();
            encode_u64(&mut out, v);
            assert_eq!(decode_exact(&out).and_then(|i| i.u64()), Ok(v));
        }
    }
}
