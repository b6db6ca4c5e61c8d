//! The framing state machine.
//!
//! The reader's buffer is borrowed, never copied into a staging area: each
//! state looks at the bytes currently buffered, consumes what it can decide on
//! and appends record bytes straight to the caller's batch. Whatever a state
//! needs to remember across refills lives in small `Copy` state values, and any
//! partial record lives at the end of `batch.data` (`Open::start` onwards).
//! `next_batch` only returns when no partial record is held, so the caller may
//! clear the batch between calls.
//!
//! Deciding something may require bytes not yet buffered (is this `{"Rec` an
//! envelope start? does the first value end on its line?). The bytes seen while
//! undecided are appended as if they were record bytes; the verdict then either
//! keeps them or truncates them away. They are bounded by `max_record_bytes`
//! like any record.

use std::fmt;
use std::io::{self, BufRead};

use memchr::memchr;

use super::scan::{
    EnvelopeMatcher, Match, Scan, ValueScan, count_newlines, is_json_ws, is_line_ws, is_value_start,
};
use super::validate::validate;
use super::{
    Flag, FramerConfig, FramingError, FramingReport, QuotedNewlines, RecordBatch, RecordMeta,
    Rejected, Shape,
};

const BOM: &[u8] = b"\xEF\xBB\xBF";

const ARRAY_EOF: &str = "JSON array ends unexpectedly";
const ENVELOPE_EOF: &str = "envelope ends unexpectedly";
const VALUE_EOF: &str = "JSON value ends unexpectedly";
const BAD_ELEMENT_START: &str = "unexpected byte where an array element should start";
const TRAILING_COMMA: &str = "unexpected ']' after ','";
const BAD_AFTER_ELEMENT: &str = "unexpected byte after an array element (expected ',' or ']')";
const COMMA_AFTER_ENVELOPE_ARRAY: &str = "unexpected byte ',' after envelope array";
const BAD_AFTER_ENVELOPE_ARRAY: &str = "unexpected byte after envelope array (expected '}')";
const BAD_AFTER_ARRAY: &str = "unexpected content after the JSON array";
const BAD_AFTER_ENVELOPE: &str = "unexpected content after the envelope";
const BAD_BETWEEN_VALUES: &str = "unexpected byte between JSON values";
const ENVELOPE_LINE_ENDS: &str = "envelope line ends before the envelope closes";

/// Splits one input into records. See the [module docs](super) for the shapes
/// and the guarantees.
pub struct Framer<R> {
    reader: R,
    core: Core,
    /// An I/O error to return on the next call, once the records read before
    /// it have been delivered.
    pending: Option<FramingError>,
}

impl<R> fmt::Debug for Framer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("name", &self.core.name)
            .field("line", &self.core.line)
            .field("state", &self.core.state)
            .field("report", &self.core.report)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> Framer<R> {
    /// `name` identifies the input in errors (usually its path).
    pub fn new(name: impl Into<String>, reader: R, config: FramerConfig) -> Self {
        Self {
            reader,
            core: Core {
                name: name.into(),
                max: config.max_record_bytes,
                quoted: config.quoted_newlines,
                check_json: config.check_json,
                state: State::Init,
                lines: LineState::default(),
                line: 1,
                ordinal: 0,
                report: FramingReport::default(),
                scratch: String::new(),
                bom: Some(0),
            },
            pending: None,
        }
    }

    /// Appends records to `batch` until it holds at least `max_bytes` of
    /// record data (and at least one new record) or the input ends.
    ///
    /// Returns `Ok(true)` while more input may follow, `Ok(false)` at the end
    /// of input. A reader that pauses (fails with `WouldBlock`) ends the
    /// batch early, possibly with no new record. After an I/O error, the records read before it (the partial
    /// one flagged [`Flag::Truncated`]) come first with `Ok(true)`; the error
    /// comes on the next call, which appends nothing; calls after that return
    /// `Ok(false)`.
    pub fn next_batch(
        &mut self,
        batch: &mut RecordBatch,
        max_bytes: usize,
    ) -> Result<bool, FramingError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let base = batch.records.len();
        loop {
            if matches!(self.core.state, State::Done) {
                return Ok(false);
            }
            if self.core.full(batch, base, max_bytes) {
                return Ok(true);
            }
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The input paused (standard input, `open_input`) between records: hand on what
                // is here, maybe nothing; the next call goes on reading. Paused inside a record,
                // wait on: the record's start is in this batch.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.core.at_boundary() {
                        return Ok(true);
                    }
                    continue;
                }
                Err(source) => {
                    self.core.interrupt(batch);
                    let err = FramingError::Io {
                        name: self.core.name.clone(),
                        line: self.core.line,
                        source,
                    };
                    if batch.records.len() > base {
                        self.pending = Some(err);
                        return Ok(true);
                    }
                    return Err(err);
                }
            };
            let n = self.core.feed(buf, batch, base, max_bytes);
            self.reader.consume(n);
        }
    }

    /// What framing did so far (complete once `next_batch` returned
    /// `Ok(false)` or an error).
    pub fn report(&self) -> &FramingReport {
        &self.core.report
    }

    /// The input's name, as given to [`Framer::new`].
    pub fn name(&self) -> &str {
        &self.core.name
    }
}

/// A record in progress: its bytes so far are `data[start..]`.
#[derive(Debug, Clone, Copy)]
struct Open {
    start: usize,
    line: u64,
}

/// An oversize line being skipped.
#[derive(Debug, Clone, Copy)]
struct Skip {
    line: u64,
    bytes: u64,
    /// The last byte skipped is `\r` (not counted if a `\n` follows).
    cr: bool,
}

/// Whitespace before the first content, on the first content line: part of
/// that line's record if the input turns out to be NDJSON.
#[derive(Debug, Clone, Copy)]
struct Lead {
    start: usize,
    line: u64,
    bytes: u64,
    /// The bytes are held at `data[start..]` (not when over the size limit).
    kept: bool,
    /// Whitespace-only lines before it.
    blank: u64,
}

/// The first value of an input starting with `{`, while its shape is
/// undecided: `data[lead.start..val]` is the lead, `data[val..]` the value.
#[derive(Debug, Clone, Copy)]
struct First {
    lead: Lead,
    val: usize,
    vlen: u64,
    /// The value's bytes are held (false once it exceeded the size limit).
    stored: bool,
}

impl First {
    fn open(&self) -> Open {
        Open {
            start: self.val,
            line: self.lead.line,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Nothing read yet.
    Init,
    /// Skipping leading whitespace.
    Start(Lead),
    /// On a leading `{`: is it an envelope start?
    Detect(First, EnvelopeMatcher),
    /// Scanning the first value; `bool`: it contains a `\n`.
    FirstValue(First, ValueScan, bool),
    /// After a first value that fits on its line: only whitespace until `\n`
    /// means NDJSON. Holds the trailing whitespace length and whether it is
    /// held in `data`.
    FirstTrail(First, u64, bool),
    /// One record per line; details in `Core::lines`.
    Lines,
    Seq(Kind, Pos),
    Done,
}

/// What sequence of values is being split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Top-level `[...]`.
    Array,
    /// Top-level `{"Records":[...]}`.
    Envelope,
    /// An envelope on one NDJSON line.
    LineEnvelope,
    /// Top-level values one after another.
    Concatenated,
}

/// Position within a sequence.
#[derive(Debug, Clone, Copy)]
enum Pos {
    /// After `[` (or between concatenated values).
    Open,
    AfterComma,
    Element(Elem),
    AfterElement,
    /// After the `]` closing an array.
    AfterArray,
    /// After the `}` closing an envelope.
    AfterEnvelope,
    /// Matching the start of a further top-level envelope, held from `Open`.
    Prefix(EnvelopeMatcher, Open),
}

#[derive(Debug, Clone, Copy)]
struct Elem {
    scan: ValueScan,
    start: usize,
    line: u64,
    /// Bytes skipped so far, once the element exceeded the size limit.
    skipped: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct LineState {
    /// The current line's record so far.
    open: Option<Open>,
    /// The current line, over the size limit.
    skip: Option<Skip>,
    /// Envelope check of the current line's start, its bytes held in `open`.
    matcher: Option<EnvelopeMatcher>,
    /// At the start of a line, nothing of it consumed.
    at_start: bool,
    /// Set after the input's structure broke: every line is malformed.
    tail: Option<&'static str>,
    /// The current line is the rest of a broken envelope line.
    this_line: Option<&'static str>,
    /// Quoted-field state of the current record.
    quote: Quote,
}

/// Where a line record stands with [`QuotedNewlines`]; offsets are relative
/// to the record's start.
#[derive(Debug, Clone, Copy, Default)]
struct Quote {
    /// Bytes of the record whose quotes were counted.
    counted: usize,
    /// An odd number of quotes so far: a quoted field is open.
    open: bool,
    /// Bytes of the record searched for the marker.
    searched: usize,
    /// The marker was found.
    marked: bool,
    /// The record holds a newline already.
    joined: bool,
    /// Joining was given up for this record (size limit).
    off: bool,
}

impl LineState {
    fn at_line_start() -> Self {
        Self {
            at_start: true,
            ..Self::default()
        }
    }

    fn forced_flag(&self) -> Option<Flag> {
        self.this_line.or(self.tail).map(Flag::Malformed)
    }
}

/// What follows a broken envelope line.
#[derive(Debug, Clone, Copy)]
enum Next {
    Newline,
    Eof,
    Byte,
}

/// The framer minus its reader, so that states can borrow the reader's buffer
/// while mutating themselves.
struct Core {
    name: String,
    max: usize,
    quoted: QuotedNewlines,
    state: State,
    lines: LineState,
    /// 1-based line of the next byte to consume.
    line: u64,
    ordinal: u64,
    report: FramingReport,
    /// Reused to read serde_json error messages.
    scratch: String,
    /// [`FramerConfig::check_json`].
    check_json: bool,
    /// Bytes of a leading UTF-8 byte order mark matched so far; `None` once
    /// decided.
    bom: Option<usize>,
}

impl Core {
    /// Whether to hand the batch back: something was added, it is big
    /// enough, and no partial record is held.
    fn full(&self, batch: &RecordBatch, base: usize, max_bytes: usize) -> bool {
        batch.records.len() > base && batch.data.len() >= max_bytes && self.at_boundary()
    }

    fn at_boundary(&self) -> bool {
        match self.state {
            State::Lines => self.lines.open.is_none() && self.lines.matcher.is_none(),
            State::Seq(_, Pos::Element(e)) => e.skipped.is_some(),
            State::Seq(_, Pos::Prefix(..)) => false,
            State::Seq(..) | State::Done | State::Init => true,
            State::Start(_) | State::Detect(..) | State::FirstValue(..) | State::FirstTrail(..) => {
                false
            }
        }
    }

    /// Processes `buf` (empty: end of input) and returns how much of it was
    /// consumed.
    fn feed(
        &mut self,
        buf: &[u8],
        batch: &mut RecordBatch,
        base: usize,
        max_bytes: usize,
    ) -> usize {
        let mut pos = 0usize;
        loop {
            if matches!(self.state, State::Done) || self.full(batch, base, max_bytes) {
                break;
            }
            let rest = buf.get(pos..).unwrap_or_default();
            if rest.is_empty() && !buf.is_empty() {
                break;
            }
            // Every step consumes bytes or moves to a state that will; at end
            // of input every state moves towards `Done`.
            let n = self.step(rest, batch);
            pos = pos.saturating_add(n).min(buf.len());
        }
        self.report.bytes += pos as u64;
        pos
    }

    /// One step on the unconsumed bytes `rest` (empty: end of input).
    fn step(&mut self, rest: &[u8], batch: &mut RecordBatch) -> usize {
        match self.state {
            State::Init => {
                self.state = State::Start(Lead {
                    start: batch.data.len(),
                    line: 1,
                    bytes: 0,
                    kept: true,
                    blank: 0,
                });
                0
            }
            State::Start(lead) => self.start_step(lead, rest, batch),
            State::Detect(first, m) => self.detect_step(first, m, rest, batch),
            State::FirstValue(first, scan, newline) => {
                self.first_value_step(first, scan, newline, rest, batch)
            }
            State::FirstTrail(first, trail, stored) => {
                self.first_trail_step(first, trail, stored, rest, batch)
            }
            State::Lines => self.lines_step(rest, batch),
            State::Seq(kind, pos) => self.seq_step(kind, pos, rest, batch),
            State::Done => 0,
        }
    }

    // ---- detection -------------------------------------------------------

    fn start_step(&mut self, mut lead: Lead, rest: &[u8], batch: &mut RecordBatch) -> usize {
        if let Some(matched) = self.bom {
            // A byte order mark is matched byte by byte so that the verdict
            // does not depend on how the reader splits the input.
            match (rest.first(), BOM.get(matched)) {
                (Some(&b), Some(&expected)) if b == expected => {
                    if matched + 1 == BOM.len() {
                        batch.data.truncate(lead.start);
                        self.bom = None;
                    } else {
                        batch.data.push(b);
                        self.bom = Some(matched + 1);
                    }
                    return 1;
                }
                _ => {
                    self.bom = None;
                    if matched > 0 {
                        // Not a BOM after all: those bytes start a text line.
                        self.start_lines(lead, batch);
                        return 0;
                    }
                }
            }
        }
        let ws = rest
            .iter()
            .position(|&b| !is_json_ws(b))
            .unwrap_or(rest.len());
        if ws > 0 {
            self.start_ws(&mut lead, rest.get(..ws).unwrap_or_default(), batch);
            self.state = State::Start(lead);
            return ws;
        }
        match rest.first() {
            None => {
                batch.data.truncate(lead.start);
                self.report.blank_lines += lead.blank + u64::from(lead.bytes > 0);
                self.report.empty = true;
                self.state = State::Done;
            }
            Some(b'[') => {
                batch.data.truncate(lead.start);
                self.report.shape = Some(Shape::JsonArray);
                self.state = State::Seq(Kind::Array, Pos::Open);
                return 1;
            }
            Some(b'{') => {
                let first = First {
                    lead,
                    val: batch.data.len(),
                    vlen: 0,
                    stored: true,
                };
                self.state = State::Detect(first, EnvelopeMatcher::top());
            }
            Some(_) => self.start_lines(lead, batch),
        }
        0
    }

    /// The input is text lines; the held lead starts the first one.
    fn start_lines(&mut self, lead: Lead, batch: &mut RecordBatch) {
        self.report.shape = Some(Shape::Lines);
        self.report.blank_lines += lead.blank;
        self.lines = LineState::default();
        if lead.kept {
            self.lines.open = Some(Open {
                start: lead.start,
                line: lead.line,
            });
        } else {
            batch.data.truncate(lead.start);
            self.lines.skip = Some(Skip {
                line: lead.line,
                bytes: lead.bytes,
                cr: false,
            });
        }
        self.state = State::Lines;
    }

    /// Leading whitespace: whole lines of it are blank lines; the part on the
    /// current line is held as its possible start.
    fn start_ws(&mut self, lead: &mut Lead, ws: &[u8], batch: &mut RecordBatch) {
        let same_line = match memchr::memrchr(b'\n', ws) {
            Some(last) => {
                let newlines = count_newlines(ws);
                self.line += newlines;
                batch.data.truncate(lead.start);
                *lead = Lead {
                    start: lead.start,
                    line: self.line,
                    bytes: 0,
                    kept: true,
                    blank: lead.blank + newlines,
                };
                ws.get(last + 1..).unwrap_or_default()
            }
            None => ws,
        };
        lead.bytes += same_line.len() as u64;
        if lead.kept && lead.bytes <= self.max as u64 {
            batch.data.extend_from_slice(same_line);
        } else {
            lead.kept = false;
            batch.data.truncate(lead.start);
        }
    }

    fn detect_step(
        &mut self,
        first: First,
        mut m: EnvelopeMatcher,
        rest: &[u8],
        batch: &mut RecordBatch,
    ) -> usize {
        if rest.is_empty() {
            self.report.shape = Some(Shape::Concatenated);
            self.top_break(batch, VALUE_EOF, Some(first.open()));
            return 0;
        }
        match m.feed(rest) {
            Match::Matched(n) => {
                batch.data.truncate(first.lead.start);
                self.line += count_newlines(rest.get(..n).unwrap_or_default());
                self.report.shape = Some(Shape::Envelope);
                self.state = State::Seq(Kind::Envelope, Pos::Open);
                n
            }
            Match::NeedMore => {
                batch.data.extend_from_slice(rest);
                self.line += count_newlines(rest);
                self.state = State::Detect(first, m);
                rest.len()
            }
            Match::Failed => {
                // Not an envelope: what was held is the start of the first
                // value (a prefix of an envelope start never closes a value).
                let held = batch.data.get(first.val..).unwrap_or_default();
                let mut scan = ValueScan::new();
                let _ = scan.scan(held, false);
                let newline = memchr(b'\n', held).is_some();
                let first = First {
                    vlen: held.len() as u64,
                    ..first
                };
                self.state = State::FirstValue(first, scan, newline);
                0
            }
        }
    }

    fn first_value_step(
        &mut self,
        mut first: First,
        mut scan: ValueScan,
        mut newline: bool,
        rest: &[u8],
        batch: &mut RecordBatch,
    ) -> usize {
        if rest.is_empty() {
            self.report.shape = Some(Shape::Concatenated);
            let tail = if first.stored {
                Some(first.open())
            } else {
                self.reject(first.lead.line, first.vlen);
                None
            };
            self.top_break(batch, VALUE_EOF, tail);
            return 0;
        }
        let (n, ended) = match scan.scan(rest, false) {
            Scan::End(n) => (n, true),
            Scan::More | Scan::Newline(_) => (rest.len(), false),
        };
        let piece = rest.get(..n).unwrap_or_default();
        let newlines = count_newlines(piece);
        self.line += newlines;
        newline |= newlines > 0;
        first.vlen += n as u64;
        if first.stored {
            let len = batch.data.len().saturating_sub(first.val).saturating_add(n);
            if len > self.max {
                batch.data.truncate(first.lead.start);
                first.stored = false;
            } else {
                batch.data.extend_from_slice(piece);
            }
        }
        if !ended {
            self.state = State::FirstValue(first, scan, newline);
        } else if newline {
            self.first_as_value(batch, first);
        } else {
            self.state = State::FirstTrail(first, 0, true);
        }
        n
    }

    fn first_trail_step(
        &mut self,
        first: First,
        mut trail: u64,
        mut trail_held: bool,
        rest: &[u8],
        batch: &mut RecordBatch,
    ) -> usize {
        let ws = rest
            .iter()
            .position(|&b| !is_line_ws(b))
            .unwrap_or(rest.len());
        if ws > 0 {
            trail += ws as u64;
            let line_len = batch.data.len().saturating_sub(first.lead.start);
            if trail_held
                && first.stored
                && first.lead.kept
                && line_len.saturating_add(ws) <= self.max.saturating_add(1)
            {
                batch
                    .data
                    .extend_from_slice(rest.get(..ws).unwrap_or_default());
            } else {
                trail_held = false;
            }
            self.state = State::FirstTrail(first, trail, trail_held);
            return ws;
        }
        match rest.first() {
            None | Some(b'\n') => {
                // The first line is one value: NDJSON.
                let newline = !rest.is_empty();
                self.report.shape = Some(Shape::Lines);
                self.report.blank_lines += first.lead.blank;
                self.lines = LineState::at_line_start();
                self.state = State::Lines;
                let open = Open {
                    start: first.lead.start,
                    line: first.lead.line,
                };
                if first.stored && first.lead.kept && trail_held {
                    self.finish_line(batch, open, newline, None);
                } else {
                    batch.data.truncate(first.lead.start);
                    self.reject(first.lead.line, first.lead.bytes + first.vlen + trail);
                }
                if newline {
                    self.line += 1;
                    1
                } else {
                    0
                }
            }
            Some(_) => {
                self.first_as_value(batch, first);
                0
            }
        }
    }

    /// The first value is a record of concatenated values: drop the
    /// whitespace around it.
    fn first_as_value(&mut self, batch: &mut RecordBatch, first: First) {
        self.report.shape = Some(Shape::Concatenated);
        if first.stored {
            let end = first
                .val
                .saturating_add(usize::try_from(first.vlen).unwrap_or(usize::MAX));
            batch.data.truncate(end);
            if first.lead.start < first.val && first.val <= batch.data.len() {
                batch.data.drain(first.lead.start..first.val);
            }
            self.emit_validated(
                batch,
                Open {
                    start: first.lead.start,
                    line: first.lead.line,
                },
            );
        } else {
            self.reject(first.lead.line, first.vlen);
        }
        self.state = State::Seq(Kind::Concatenated, Pos::Open);
    }

    // ---- lines -----------------------------------------------------------

    fn lines_step(&mut self, rest: &[u8], batch: &mut RecordBatch) -> usize {
        let mut ls = self.lines;
        if rest.is_empty() {
            if let Some(mut open) = ls.open {
                if ls.quote.joined && batch.data.len().saturating_sub(open.start) > self.max {
                    open = self.split_joined(batch, &mut ls, open);
                }
                self.finish_line(batch, open, false, ls.forced_flag());
            }
            if let Some(skip) = ls.skip {
                self.reject(skip.line, skip.bytes);
            }
            self.lines = LineState::default();
            self.state = State::Done;
            return 0;
        }
        if ls.at_start {
            ls.at_start = false;
            ls.quote = Quote::default();
            ls.open = Some(Open {
                start: batch.data.len(),
                line: self.line,
            });
            if ls.tail.is_none() && matches!(rest.first(), Some(b'{' | b' ' | b'\t')) {
                ls.matcher = Some(EnvelopeMatcher::line());
            }
        }
        if let (Some(mut m), Some(open)) = (ls.matcher.take(), ls.open) {
            match m.feed(rest) {
                Match::Matched(n) => {
                    // The line is an envelope: its start is structure.
                    batch.data.truncate(open.start);
                    self.lines = LineState::default();
                    self.state = State::Seq(Kind::LineEnvelope, Pos::Open);
                    return n;
                }
                Match::NeedMore => {
                    batch.data.extend_from_slice(rest);
                    ls.matcher = Some(m);
                    self.lines = ls;
                    return rest.len();
                }
                // A plain line; what was held is its start.
                Match::Failed => {}
            }
        }
        let n = match memchr(b'\n', rest) {
            Some(i) => {
                if let Some(skip) = ls.skip.take() {
                    let piece = rest.get(..i).unwrap_or_default();
                    let cr = piece.last().map_or(skip.cr, |&b| b == b'\r');
                    self.reject(skip.line, skip.bytes + i as u64 - u64::from(cr));
                } else if let Some(mut open) = ls.open.take() {
                    let piece = rest.get(..i).unwrap_or_default();
                    if ls.quote.joined
                        && batch
                            .data
                            .len()
                            .saturating_sub(open.start)
                            .saturating_add(i)
                            > self.max.saturating_add(1)
                    {
                        open = self.split_joined(batch, &mut ls, open);
                    }
                    let held = batch.data.len().saturating_sub(open.start);
                    let len = held.saturating_add(i);
                    if len > self.max.saturating_add(1) {
                        // Too long even without a final `\r`: not copied.
                        let last = piece.last().or_else(|| batch.data.last());
                        let cr = len > 0 && last == Some(&b'\r');
                        batch.data.truncate(open.start);
                        self.reject(open.line, (len - usize::from(cr)) as u64);
                    } else {
                        batch.data.extend_from_slice(piece);
                        let fits = batch.data.len().saturating_sub(open.start) < self.max;
                        let joins = self.joins(batch, &mut ls, open);
                        if joins && fits {
                            // The newline is part of the record, which goes on.
                            batch.data.push(b'\n');
                            ls.quote.joined = true;
                            ls.open = Some(open);
                            self.report.quoted_newlines += 1;
                            self.line += 1;
                            self.lines = ls;
                            return i + 1;
                        }
                        if ls.quote.joined {
                            let mut end = batch.data.len();
                            if batch.data.last() == Some(&b'\r') {
                                end -= 1;
                            }
                            // Joined lines that cannot all be one record
                            // are kept line by line.
                            if joins || end.saturating_sub(open.start) > self.max {
                                open = self.split_joined(batch, &mut ls, open);
                            }
                        }
                        self.finish_line(batch, open, true, ls.forced_flag());
                    }
                }
                self.line += 1;
                ls.at_start = true;
                ls.this_line = None;
                i + 1
            }
            None => {
                if let Some(skip) = &mut ls.skip {
                    skip.bytes += rest.len() as u64;
                    skip.cr = rest.last() == Some(&b'\r');
                } else if let Some(mut open) = ls.open {
                    let len = batch
                        .data
                        .len()
                        .saturating_sub(open.start)
                        .saturating_add(rest.len());
                    if ls.quote.joined && len > self.max.saturating_add(1) {
                        open = self.split_joined(batch, &mut ls, open);
                        ls.open = Some(open);
                    }
                    let len = batch
                        .data
                        .len()
                        .saturating_sub(open.start)
                        .saturating_add(rest.len());
                    // One byte of slack: a `\r` before the `\n` is not counted.
                    if len > self.max.saturating_add(1) {
                        batch.data.truncate(open.start);
                        ls.open = None;
                        ls.skip = Some(Skip {
                            line: open.line,
                            bytes: len as u64,
                            cr: rest.last() == Some(&b'\r'),
                        });
                    } else {
                        batch.data.extend_from_slice(rest);
                    }
                }
                rest.len()
            }
        };
        self.lines = ls;
        n
    }

    /// Whether the newline after the record held at `data[open.start..]`
    /// falls inside a quoted field and so does not end it (see
    /// [`QuotedNewlines`]). Only the bytes added since the last call are
    /// looked at.
    fn joins(&self, batch: &RecordBatch, ls: &mut LineState, open: Open) -> bool {
        let marker = match self.quoted {
            QuotedNewlines::Off => return false,
            QuotedNewlines::Always => None,
            QuotedNewlines::WithMarker(m) => Some(m),
        };
        if ls.quote.off || ls.tail.is_some() || ls.this_line.is_some() {
            return false;
        }
        let held = batch.data.get(open.start..).unwrap_or_default();
        if !ls.quote.joined && matches!(held.iter().find(|&&b| !is_line_ws(b)), Some(b'{' | b'[')) {
            return false;
        }
        let q = &mut ls.quote;
        let fresh = held.get(q.counted..).unwrap_or_default();
        if memchr::memchr_iter(b'"', fresh).count() % 2 == 1 {
            q.open = !q.open;
        }
        q.counted = held.len();
        if !q.open {
            return false;
        }
        if let Some(m) = marker
            && !q.marked
        {
            // Resume a little before where the last search ended, in case
            // the marker straddles it.
            let from = q.searched.saturating_sub(m.len().saturating_sub(1));
            q.marked = memchr::memmem::find(held.get(from..).unwrap_or_default(), m).is_some();
            q.searched = held.len();
            if !q.marked {
                return false;
            }
        }
        true
    }

    /// A record joined across quoted newlines grew over the size limit: its
    /// complete lines become records of their own and the current line goes
    /// on alone, as in plain line mode. Returns the current line's start.
    fn split_joined(&mut self, batch: &mut RecordBatch, ls: &mut LineState, open: Open) -> Open {
        self.report.quoted_splits += 1;
        let Open {
            mut start,
            mut line,
        } = open;
        while let Some(i) = batch.data.get(start..).and_then(|held| memchr(b'\n', held)) {
            let mut end = start + i;
            if end > start && batch.data.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
            self.finish_held(batch, start, end, line, ls.forced_flag());
            self.report.quoted_newlines = self.report.quoted_newlines.saturating_sub(1);
            start += i + 1;
            line += 1;
        }
        ls.quote = Quote {
            off: true,
            ..Quote::default()
        };
        Open { start, line }
    }

    /// Completes the line record `data[open.start..]`. `newline`: the line
    /// ended with `\n`, so a `\r` right before it is not part of it.
    fn finish_line(
        &mut self,
        batch: &mut RecordBatch,
        open: Open,
        newline: bool,
        flag: Option<Flag>,
    ) {
        let mut end = batch.data.len();
        if !newline && end <= open.start {
            // End of input right after a `\n`: there is no further line.
            batch.data.truncate(open.start);
            return;
        }
        if newline && end > open.start && batch.data.last() == Some(&b'\r') {
            end -= 1;
        }
        if self.finish_held(batch, open.start, end, open.line, flag) {
            batch.data.truncate(end);
        } else {
            batch.data.truncate(open.start);
        }
    }

    /// Emits `data[start..end]` as a line record unless it is blank or too
    /// large. Returns whether it was emitted.
    fn finish_held(
        &mut self,
        batch: &mut RecordBatch,
        start: usize,
        end: usize,
        line: u64,
        flag: Option<Flag>,
    ) -> bool {
        let len = end.saturating_sub(start);
        let bytes = batch.data.get(start..end).unwrap_or_default();
        if len > self.max {
            self.reject(line, len as u64);
            return false;
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            self.report.blank_lines += 1;
            return false;
        }
        let flag = flag.unwrap_or_else(|| self.check(bytes));
        self.emit(batch, start, end, line, flag);
        true
    }

    // ---- arrays, envelopes, concatenated values ---------------------------

    fn seq_step(&mut self, kind: Kind, pos: Pos, rest: &[u8], batch: &mut RecordBatch) -> usize {
        let bounded = kind == Kind::LineEnvelope;
        match pos {
            Pos::Element(e) => return self.element_step(kind, e, rest, batch),
            Pos::Prefix(m, open) => return self.prefix_step(m, open, rest, batch),
            _ => {}
        }
        let ws = rest
            .iter()
            .position(|&b| !(is_line_ws(b) || (b == b'\n' && !bounded)))
            .unwrap_or(rest.len());
        if ws > 0 {
            if !bounded {
                self.line += count_newlines(rest.get(..ws).unwrap_or_default());
            }
            return ws;
        }
        let Some(&b) = rest.first() else {
            return self.seq_eof(kind, pos, batch);
        };
        if b == b'\n' {
            // Only line-bounded sequences stop at `\n`.
            if matches!(pos, Pos::AfterEnvelope) {
                self.line += 1;
                self.lines = LineState::at_line_start();
                self.state = State::Lines;
                return 1;
            }
            return self.line_break(batch, ENVELOPE_LINE_ENDS, None, Next::Newline);
        }
        let goto = |this: &mut Self, pos: Pos| {
            this.state = State::Seq(kind, pos);
            1
        };
        match (pos, b) {
            (Pos::Open, b']') if kind != Kind::Concatenated => goto(self, Pos::AfterArray),
            (Pos::Open | Pos::AfterComma, b) if is_value_start(b) => {
                let e = Elem {
                    scan: ValueScan::new(),
                    start: batch.data.len(),
                    line: self.line,
                    skipped: None,
                };
                self.state = State::Seq(kind, Pos::Element(e));
                0
            }
            (Pos::Open, _) if kind == Kind::Concatenated => {
                self.broken(kind, batch, BAD_BETWEEN_VALUES)
            }
            (Pos::AfterComma, b']') => self.broken(kind, batch, TRAILING_COMMA),
            (Pos::Open | Pos::AfterComma, _) => self.broken(kind, batch, BAD_ELEMENT_START),
            (Pos::AfterElement, b',') => goto(self, Pos::AfterComma),
            (Pos::AfterElement, b']') => goto(self, Pos::AfterArray),
            (Pos::AfterElement, _) => self.broken(kind, batch, BAD_AFTER_ELEMENT),
            (Pos::AfterArray, b'[') if kind == Kind::Array => goto(self, Pos::Open),
            (Pos::AfterArray, _) if kind == Kind::Array => {
                self.broken(kind, batch, BAD_AFTER_ARRAY)
            }
            (Pos::AfterArray, b'}') => goto(self, Pos::AfterEnvelope),
            (Pos::AfterArray, b',') => self.broken(kind, batch, COMMA_AFTER_ENVELOPE_ARRAY),
            (Pos::AfterArray, _) => self.broken(kind, batch, BAD_AFTER_ENVELOPE_ARRAY),
            (Pos::AfterEnvelope, b'{') if kind == Kind::Envelope => {
                let open = Open {
                    start: batch.data.len(),
                    line: self.line,
                };
                self.state = State::Seq(kind, Pos::Prefix(EnvelopeMatcher::top(), open));
                0
            }
            (Pos::AfterEnvelope, _) => self.broken(kind, batch, BAD_AFTER_ENVELOPE),
            // Handled above.
            (Pos::Element(_) | Pos::Prefix(..), _) => 0,
        }
    }

    /// End of input between tokens of a sequence.
    fn seq_eof(&mut self, kind: Kind, pos: Pos, batch: &mut RecordBatch) -> usize {
        match (kind, pos) {
            (Kind::Array, Pos::AfterArray)
            | (Kind::Envelope | Kind::LineEnvelope, Pos::AfterEnvelope)
            | (Kind::Concatenated, Pos::Open) => {
                self.state = State::Done;
                0
            }
            (Kind::LineEnvelope, _) => self.line_break(batch, ENVELOPE_LINE_ENDS, None, Next::Eof),
            (Kind::Array, _) => {
                self.top_break(batch, ARRAY_EOF, None);
                0
            }
            (Kind::Envelope, _) => {
                self.top_break(batch, ENVELOPE_EOF, None);
                0
            }
            (Kind::Concatenated, _) => {
                self.top_break(batch, VALUE_EOF, None);
                0
            }
        }
    }

    /// An unexpected byte between tokens of a sequence.
    fn broken(&mut self, kind: Kind, batch: &mut RecordBatch, reason: &'static str) -> usize {
        if kind == Kind::LineEnvelope {
            self.line_break(batch, reason, None, Next::Byte)
        } else {
            self.top_break(batch, reason, None);
            0
        }
    }

    fn element_step(
        &mut self,
        kind: Kind,
        mut e: Elem,
        rest: &[u8],
        batch: &mut RecordBatch,
    ) -> usize {
        let bounded = kind == Kind::LineEnvelope;
        if rest.is_empty() {
            let held = match e.skipped {
                Some(bytes) => {
                    self.reject(e.line, bytes);
                    None
                }
                None => Some(Open {
                    start: e.start,
                    line: e.line,
                }),
            };
            let reason = match kind {
                Kind::Array => ARRAY_EOF,
                Kind::Envelope => ENVELOPE_EOF,
                Kind::LineEnvelope => {
                    return self.line_break(batch, ENVELOPE_LINE_ENDS, held, Next::Eof);
                }
                Kind::Concatenated => VALUE_EOF,
            };
            self.top_break(batch, reason, held);
            return 0;
        }
        let outcome = e.scan.scan(rest, bounded);
        let n = match outcome {
            Scan::End(n) | Scan::Newline(n) => n,
            Scan::More => rest.len(),
        };
        let piece = rest.get(..n).unwrap_or_default();
        if !bounded {
            self.line += count_newlines(piece);
        }
        self.hold(batch, &mut e, piece);
        match outcome {
            Scan::More => self.state = State::Seq(kind, Pos::Element(e)),
            Scan::End(_) => {
                match e.skipped {
                    Some(bytes) => self.reject(e.line, bytes),
                    None => self.emit_validated(
                        batch,
                        Open {
                            start: e.start,
                            line: e.line,
                        },
                    ),
                }
                let next = if kind == Kind::Concatenated {
                    Pos::Open
                } else {
                    Pos::AfterElement
                };
                self.state = State::Seq(kind, next);
            }
            Scan::Newline(_) => {
                let held = match e.skipped {
                    Some(bytes) => {
                        self.reject(e.line, bytes);
                        None
                    }
                    None => Some(Open {
                        start: e.start,
                        line: e.line,
                    }),
                };
                return n + self.line_break(batch, ENVELOPE_LINE_ENDS, held, Next::Newline);
            }
        }
        n
    }

    /// Appends element bytes, or counts them once the element is over the
    /// limit.
    fn hold(&self, batch: &mut RecordBatch, e: &mut Elem, piece: &[u8]) {
        match &mut e.skipped {
            Some(bytes) => *bytes += piece.len() as u64,
            None => {
                let len = batch
                    .data
                    .len()
                    .saturating_sub(e.start)
                    .saturating_add(piece.len());
                if len > self.max {
                    batch.data.truncate(e.start);
                    e.skipped = Some(len as u64);
                } else {
                    batch.data.extend_from_slice(piece);
                }
            }
        }
    }

    /// After a top-level envelope: another one, or broken structure.
    fn prefix_step(
        &mut self,
        mut m: EnvelopeMatcher,
        open: Open,
        rest: &[u8],
        batch: &mut RecordBatch,
    ) -> usize {
        if rest.is_empty() {
            self.top_break(batch, ENVELOPE_EOF, Some(open));
            return 0;
        }
        match m.feed(rest) {
            Match::Matched(n) => {
                batch.data.truncate(open.start);
                self.line += count_newlines(rest.get(..n).unwrap_or_default());
                self.state = State::Seq(Kind::Envelope, Pos::Open);
                n
            }
            Match::NeedMore => {
                batch.data.extend_from_slice(rest);
                self.line += count_newlines(rest);
                self.state = State::Seq(Kind::Envelope, Pos::Prefix(m, open));
                rest.len()
            }
            Match::Failed => {
                self.top_break(batch, BAD_AFTER_ENVELOPE, Some(open));
                0
            }
        }
    }

    // ---- broken structure -------------------------------------------------

    /// The input's structure broke: the rest of it, starting with the bytes
    /// held from `tail` (the broken element), becomes malformed lines.
    fn top_break(&mut self, batch: &mut RecordBatch, reason: &'static str, tail: Option<Open>) {
        let Open {
            mut start,
            mut line,
        } = tail.unwrap_or(Open {
            start: batch.data.len(),
            line: self.line,
        });
        if self.report.switched_to_lines.is_none() {
            self.report.switched_to_lines = Some((line, reason));
        }
        // Complete lines among the held bytes are records now; the `\n`s stay
        // in `data` between them.
        while let Some(i) = batch.data.get(start..).and_then(|held| memchr(b'\n', held)) {
            let mut end = start + i;
            if end > start && batch.data.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
            self.finish_held(batch, start, end, line, Some(Flag::Malformed(reason)));
            start += i + 1;
            line += 1;
        }
        self.lines = LineState {
            open: Some(Open { start, line }),
            tail: Some(reason),
            ..LineState::default()
        };
        self.state = State::Lines;
    }

    /// An envelope on an NDJSON line broke: keep what is held of it and the
    /// rest of the line as malformed records, then carry on with the next
    /// line. Returns the bytes consumed (the `\n`, if any).
    fn line_break(
        &mut self,
        batch: &mut RecordBatch,
        reason: &'static str,
        held: Option<Open>,
        next: Next,
    ) -> usize {
        self.report.broken_envelope_lines += 1;
        if let Some(open) = held {
            self.finish_line(
                batch,
                open,
                matches!(next, Next::Newline),
                Some(Flag::Malformed(reason)),
            );
        }
        self.state = State::Lines;
        self.lines = LineState::at_line_start();
        match next {
            Next::Newline => {
                self.line += 1;
                1
            }
            Next::Eof => 0,
            Next::Byte => {
                self.lines = LineState {
                    open: Some(Open {
                        start: batch.data.len(),
                        line: self.line,
                    }),
                    this_line: Some(reason),
                    ..LineState::default()
                };
                0
            }
        }
    }

    /// A read error: deliver what is held as a truncated record and stop.
    fn interrupt(&mut self, batch: &mut RecordBatch) {
        let held = match self.state {
            State::Start(lead) => {
                batch.data.truncate(lead.start);
                None
            }
            State::Detect(first, _) => Some(first.open()),
            State::FirstValue(first, ..) => {
                if first.stored {
                    Some(first.open())
                } else {
                    self.reject(first.lead.line, first.vlen);
                    None
                }
            }
            State::FirstTrail(first, ..) => {
                // The first value is complete; only its line's end is unknown.
                self.report.shape.get_or_insert(Shape::Lines);
                if first.stored {
                    let end = first
                        .val
                        .saturating_add(usize::try_from(first.vlen).unwrap_or(0));
                    batch.data.truncate(end);
                    self.emit_validated(batch, first.open());
                } else {
                    self.reject(first.lead.line, first.vlen);
                }
                None
            }
            State::Lines => {
                if let Some(skip) = self.lines.skip {
                    self.reject(skip.line, skip.bytes);
                }
                self.lines.open
            }
            State::Seq(_, Pos::Element(e)) => match e.skipped {
                Some(bytes) => {
                    self.reject(e.line, bytes);
                    None
                }
                None => Some(Open {
                    start: e.start,
                    line: e.line,
                }),
            },
            State::Seq(_, Pos::Prefix(_, open)) => Some(open),
            State::Init | State::Done | State::Seq(..) => None,
        };
        if let Some(open) = held {
            let bytes = batch.data.get(open.start..).unwrap_or_default();
            if bytes.iter().all(u8::is_ascii_whitespace) {
                batch.data.truncate(open.start);
            } else {
                let end = batch.data.len();
                self.emit(batch, open.start, end, open.line, Flag::Truncated);
            }
        }
        self.lines = LineState::default();
        self.state = State::Done;
    }

    // ---- output -------------------------------------------------------------

    fn emit_validated(&mut self, batch: &mut RecordBatch, open: Open) {
        let end = batch.data.len();
        let bytes = batch.data.get(open.start..end).unwrap_or_default();
        let flag = self.check(bytes);
        self.emit(batch, open.start, end, open.line, flag);
    }

    fn check(&mut self, bytes: &[u8]) -> Flag {
        if self.check_json {
            validate(bytes, &mut self.scratch)
        } else {
            Flag::Unchecked
        }
    }

    fn emit(&mut self, batch: &mut RecordBatch, start: usize, end: usize, line: u64, flag: Flag) {
        batch.records.push(RecordMeta {
            range: start..end,
            line,
            ordinal: self.ordinal,
            flag,
        });
        self.ordinal += 1;
        self.report.records += 1;
        self.report.record_bytes += end.saturating_sub(start) as u64;
        if flag.reason().is_some() {
            self.report.flagged += 1;
        }
    }

    fn reject(&mut self, line: u64, bytes: u64) {
        self.report.rejected_count += 1;
        if self.report.rejected.len() < FramingReport::MAX_REJECTED_KEPT {
            self.report.rejected.push(Rejected {
                line,
                bytes,
                reason: format!(
                    "record of {bytes} bytes exceeds the limit of {} bytes",
                    self.max
                ),
            });
        }
    }
}
