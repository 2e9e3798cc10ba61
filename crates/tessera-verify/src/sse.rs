//! A `text/event-stream` parser (the WHATWG HTML "server-sent events" interpretation rules),
//! fed the response body chunk by chunk.
//!
//! Design decision: the event id a caller may resume from ([`SseParser::committed_id`]) moves
//! only when an event is complete (its blank line has arrived), never when its `id:` line is
//! read — so a connection that breaks in the middle of an event resumes from before it, and
//! a caller that applies the events of a chunk before reading the id never skips one.

/// The longest line accepted, in bytes: a revocation is a small JSON object, and a server
/// sending endless bytes without a newline must not grow memory without bound.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// What one chunk of the stream produced, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SseItem {
    /// A comment line (`:` …): the server's heartbeat.
    Comment,
    /// A complete event with data.
    Event {
        /// The `event:` type (`message` when absent).
        event: String,
        /// The `data:` lines joined by `\n`.
        data: String,
    },
}

/// The stream broke the format.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SseError {
    /// A line longer than [`MAX_LINE_BYTES`].
    #[error("event-stream line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// A line that is not UTF-8.
    #[error("event-stream line is not UTF-8")]
    NotUtf8,
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// A line was completed already (a byte-order mark is only dropped before the first).
    started: bool,
    event: String,
    data: String,
    id: Option<String>,
    committed_id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The last event id of a completed event, if any: where to resume (`Last-Event-ID`).
    pub(crate) fn committed_id(&self) -> Option<&str> {
        self.committed_id.as_deref()
    }

    /// Feeds a chunk; returns the items it completed.
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Result<Vec<SseItem>, SseError> {
        let mut items = Vec::new();
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            chunk = chunk.strip_prefix(b"\n").unwrap_or(chunk);
        }
        while let Some(end) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (head, rest) = chunk.split_at(end);
            self.push(head)?;
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut items)?;
            // `rest` starts with the line terminator.
            let crlf = rest.starts_with(b"\r\n");
            let skip = if crlf { 2 } else { 1 };
            chunk = rest.get(skip..).unwrap_or_default();
            if !crlf && rest.starts_with(b"\r") && chunk.is_empty() {
                self.after_cr = true;
            }
        }
        self.push(chunk)?;
        Ok(items)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(SseError::LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], items: &mut Vec<SseItem>) -> Result<(), SseError> {
        let mut line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if !self.started {
            self.started = true;
            line = line.strip_prefix('\u{FEFF}').unwrap_or(line);
        }
        if line.is_empty() {
            self.committed_id.clone_from(&self.id);
            let event = std::mem::take(&mut self.event);
            let mut data = std::mem::take(&mut self.data);
            if !data.is_empty() {
                data.pop(); // the `\n` after the last data line
                let event = if event.is_empty() {
                    "message".to_owned()
                } else {
                    event
                };
                items.push(SseItem::Event { event, data });
            }
            return Ok(());
        }
        if line.starts_with(':') {
            items.push(SseItem::Comment);
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            // `retry` is the server's reconnection hint; the follower keeps its own backoff.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> SseItem {
        SseItem::Event {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_comments_and_ids_in_one_chunk() {
        let mut p = SseParser::new();
        let items = p
            .feed(b": hello\n\nevent: revocation\nid: 7\ndata: {\"jti\":\"a\"}\n\ndata: x\ndata: y\n\n")
            .unwrap();
        assert_eq!(
            items,
            [
                SseItem::Comment,
                event("revocation", "{\"jti\":\"a\"}"),
                event("message", "x\ny")
            ]
        );
        assert_eq!(
            p.committed_id(),
            Some("7"),
            "the id stays until another is sent"
        );
    }

    #[test]
    fn the_id_commits_only_when_its_event_is_complete() {
        let mut p = SseParser::new();
        assert!(p.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n").unwrap().len() == 1);
        assert_eq!(p.committed_id(), Some("1"));
        assert_eq!(p.feed(b"\n").unwrap(), [event("message", "b")]);
        assert_eq!(p.committed_id(), Some("2"));
    }

    #[test]
    fn every_line_terminator_and_split_points() {
        let text = b"\xEF\xBB\xBFevent:revocation\r\nid:3\rdata:d\r\r\n:beat\r\n";
        for split in 0..text.len() {
            let mut p = SseParser::new();
            let (a, b) = text.split_at(split);
            let mut items = p.feed(a).unwrap();
            items.extend(p.feed(b).unwrap());
            assert_eq!(
                items,
                [event("revocation", "d"), SseItem::Comment],
                "split at {split}"
            );
            assert_eq!(p.committed_id(), Some("3"));
        }
    }

    #[test]
    fn unbounded_lines_and_bad_utf8_are_refused() {
        let mut p = SseParser::new();
        let long = vec![b'a'; MAX_LINE_BYTES + 1];
        assert!(matches!(p.feed(&long), Err(SseError::LineTooLong)));
        let mut p = SseParser::new();
        assert!(matches!(p.feed(b"data: \xFF\n"), Err(SseError::NotUtf8)));
    }

    #[test]
    fn ids_with_nul_and_unknown_fields_are_ignored() {
        let mut p = SseParser::new();
        let items = p.feed(b"id: 1\0\nretry: 10\nfoo\ndata\n\n").unwrap();
        assert_eq!(items, [event("message", "")]);
        assert_eq!(p.committed_id(), None);
    }
}
