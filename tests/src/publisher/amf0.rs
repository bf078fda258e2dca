//! AMF0: enough to speak RTMP commands (encode) and read the server's answers (decode).

use super::RtmpError;

/// An AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Number (a double).
    Number(f64),
    /// Boolean.
    Bool(bool),
    /// String.
    Str(String),
    /// Object or ECMA array: ordered properties.
    Object(Vec<(String, Value)>),
    /// Null or undefined.
    Null,
}

impl Value {
    /// Returns the property `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Object(props) => props.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Returns the string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Returns the number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends the encoding of `value` to `out`.
pub fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Number(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::Str(s) => {
            out.push(2);
            put_str(out, s);
        }
        Value::Object(props) => {
            out.push(3);
            for (k, v) in props {
                put_str(out, k);
                encode(out, v);
            }
            out.extend_from_slice(&[0, 0, 9]);
        }
        Value::Null => out.push(5),
    }
}

/// Encodes a sequence of values (a command message body).
pub fn encode_all(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode(&mut out, v);
    }
    out
}

/// Decodes every value in `bytes`.
pub fn decode_all(mut bytes: &[u8]) -> Result<Vec<Value>, RtmpError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        out.push(decode(&mut bytes)?);
    }
    Ok(out)
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], RtmpError> {
    if bytes.len() < n {
        return Err(RtmpError::Protocol("AMF0: truncated value".into()));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn read_str(bytes: &mut &[u8]) -> Result<String, RtmpError> {
    let len = take(bytes, 2)?;
    let len = u16::from_be_bytes([len[0], len[1]]) as usize;
    Ok(String::from_utf8_lossy(take(bytes, len)?).into_owned())
}

fn read_props(bytes: &mut &[u8]) -> Result<Vec<(String, Value)>, RtmpError> {
    let mut props = Vec::new();
    loop {
        let key = read_str(bytes)?;
        if key.is_empty() && bytes.first() == Some(&9) {
            take(bytes, 1)?;
            return Ok(props);
        }
        let value = decode(bytes)?;
        props.push((key, value));
    }
}

/// Decodes one value from the front of `bytes`.
pub fn decode(bytes: &mut &[u8]) -> Result<Value, RtmpError> {
    let marker = take(bytes, 1)?[0];
    Ok(match marker {
        0 => {
            let b = take(bytes, 8)?;
            Value::Number(f64::from_be_bytes([
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
            ]))
        }
        1 => Value::Bool(take(bytes, 1)?[0] != 0),
        2 => Value::Str(read_str(bytes)?),
        3 => Value::Object(read_props(bytes)?),
        5 | 6 => Value::Null,
        8 => {
            take(bytes, 4)?;
            Value::Object(read_props(bytes)?)
        }
        other => {
            return Err(RtmpError::Protocol(format!(
                "AMF0: unsupported marker {other}"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let values = vec![
            Value::Str("connect".into()),
            Value::Number(1.0),
            Value::Object(vec![
                ("app".into(), Value::Str("live".into())),
                ("ok".into(), Value::Bool(true)),
            ]),
            Value::Null,
        ];
        let bytes = encode_all(&values);
        assert_eq!(decode_all(&bytes).unwrap(), values);
        assert!(decode_all(&bytes[..bytes.len() - 3]).is_err());
        assert!(decode_all(&[0x11]).is_err());
    }
}
