//! The parts of a parsed request head, sliced out of the buffer it was
//! parsed from: method, target and header fields. For cold paths that
//! answer a request themselves (the admin endpoint); the proxy forwards
//! heads as they came and needs none of this.

use super::RequestHead;

impl RequestHead {
    /// The method, as sent. `buf` is the buffer the head was parsed from.
    pub fn method<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        let line = self.request_line(buf);
        let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        &line[..end]
    }

    /// The request target (path and query, or an absolute URI), as sent.
    pub fn target<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        let line = self.request_line(buf);
        let start = self.method(buf).len() + 1;
        // `METHOD SP target SP HTTP/1.x`: the parser allows one space each.
        &line[start..line.len() - " HTTP/1.x".len()]
    }

    /// The header fields in the order sent, as `(name, value)` with the
    /// value's surrounding whitespace trimmed.
    pub fn fields<'b>(&self, buf: &'b [u8]) -> impl Iterator<Item = (&'b [u8], &'b [u8])> {
        // After the request line's CRLF, up to the empty line's. The head
        // was checked: every line ends in CRLF and every field has a colon.
        let start = self.line.1 as usize + 2;
        let end = self.head_len - 2;
        let lines = buf.get(start..end).unwrap_or_default();
        lines.split(|&b| b == b'\n').filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
    }

    fn request_line<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.line.0 as usize..self.line.1 as usize]
    }
}

#[cfg(test)]
mod tests {
    use crate::http::parse_request;

    fn parts(head: &str) -> (String, String, Vec<(String, String)>) {
        let buf = head.as_bytes();
        let req = parse_request(buf, 16 * 1024).unwrap().unwrap();
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        (
            text(req.method(buf)),
            text(req.target(buf)),
            req.fields(buf).map(|(n, v)| (text(n), text(v))).collect(),
        )
    }

    #[test]
    fn slices_method_target_and_fields() {
        let (method, target, fields) =
            parts("POST /reload?x=1 HTTP/1.1\r\nHost: a\r\nAccept:  application/json \r\n\r\n");
        assert_eq!(method, "POST");
        assert_eq!(target, "/reload?x=1");
        assert_eq!(
            fields,
            [
                ("Host".to_string(), "a".to_string()),
                ("Accept".to_string(), "application/json".to_string())
            ]
        );
    }

    #[test]
    fn skips_leading_empty_lines_and_takes_any_target_form() {
        let (method, target, _) = parts("\r\nGET http://a/metrics HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            (method.as_str(), target.as_str()),
            ("GET", "http://a/metrics")
        );
        let (method, target, _) = parts("OPTIONS * HTTP/1.0\r\n\r\n");
        assert_eq!((method.as_str(), target.as_str()), ("OPTIONS", "*"));
    }

    #[test]
    fn a_head_without_fields_has_none_and_an_empty_value_is_kept() {
        assert!(parts("GET / HTTP/1.0\r\n\r\n").2.is_empty());
        let (_, _, fields) = parts("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n");
        assert_eq!(fields[1], ("X-Empty".to_string(), String::new()));
    }

    #[test]
    fn stops_at_the_head_and_ignores_the_body() {
        let buf = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nNot: this";
        let req = parse_request(buf, 16 * 1024).unwrap().unwrap();
        assert_eq!(req.fields(buf).count(), 2);
    }
}
