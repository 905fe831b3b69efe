//! The `nextToken` of every paged list operation (ECS, ECR, Logs): the sort key of the last
//! item a page returned, hex-encoded so that it is opaque to clients. A token names a
//! position in the key order, not an offset, so following pages stay right while items
//! are added and removed between calls; the next page starts strictly after that key.

/// The token for a page whose last item has sort key `last_key`.
pub fn encode(last_key: &str) -> String {
    hex::encode(last_key.as_bytes())
}

/// The sort key a token holds, or `None` if it is not a token this module made.
pub fn decode(token: &str) -> Option<String> {
    hex::decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_travel_through_tokens_and_garbage_is_refused() {
        for key in ["a", "web:10", "ecs/000/us-east-1/task/c/ü"] {
            assert_eq!(decode(&encode(key)).as_deref(), Some(key));
        }
        for garbage in ["", "zz", "abc", "ff"] {
            assert_eq!(decode(garbage), None, "{garbage}");
        }
    }
}
