//! OLPC canonical JSON, as securesystemslib and in-toto sign it: keys sorted
//! by code point, no whitespace, strings escaping only `\` and `"` (control
//! characters such as a PEM's newlines stay raw), integers only.
//! Hand-written: the JSON canonicalisation crates implement RFC 8785 (JCS),
//! which escapes control characters and formats numbers differently.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("canonical JSON cannot encode {0}")]
pub struct CanonicalError(pub String);

pub fn encode(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write(v, &mut out, 0)?;
    Ok(out)
}

fn write(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), CanonicalError> {
    if depth > 128 {
        return Err(CanonicalError("a structure nested over 128 levels".into()));
    }
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.extend_from_slice(i.to_string().as_bytes()),
            (_, Some(u)) => out.extend_from_slice(u.to_string().as_bytes()),
            _ => return Err(CanonicalError(format!("the float {n}"))),
        },
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // UTF-8 byte order is code point order.
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(k, out);
                out.push(b':');
                write(&map[k], out, depth + 1)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'\\' || b == b'"' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_compact_and_minimal_escaping() {
        let v = serde_json::json!({"b": [1, true, null], "a": "x\"y\\z\nw", "ä": 0});
        assert_eq!(
            encode(&v).unwrap(),
            b"{\"a\":\"x\\\"y\\\\z\nw\",\"b\":[1,true,null],\"\xc3\xa4\":0}".to_vec()
        );
        assert!(encode(&serde_json::json!(1.5)).is_err());
    }
}
