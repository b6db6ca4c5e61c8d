//! Streaming evaluation of correlation rules.
//!
//! A [`Correlator`] is fed the events of a stream in order: for each, the
//! ids of the detection rules that matched it, its time, the event itself
//! (for the `group-by` and `value_count` fields, read by the same dotted
//! paths as detection rules) and a reference of the caller's (a ledger
//! index). It returns the correlation hits the event raised. It is
//! deterministic: the same calls give the same hits.
//!
//! # Semantics
//!
//! - **Groups.** Events are correlated with events of the same group: the
//!   same values of the correlation's `group-by` fields (through `aliases`,
//!   per referenced rule). A field the event lacks (or `null`) is a value
//!   of its own, "missing", as a SQL `GROUP BY` has it; a list is its
//!   elements joined with `,`. No `group-by`: one group for all events.
//! - **Windows.** A correlation looks at events no further apart than its
//!   `timespan` (inclusive), sliding: any `timespan`-long stretch of time
//!   counts, not fixed buckets.
//! - `event_count` counts events (an event matching several of the
//!   referenced rules counts once); `value_count` counts the distinct
//!   values of its `field` (exact text; events without the field are not
//!   counted); `temporal` counts how many of the referenced rules matched
//!   (by default it needs all of them, in any order); `temporal_ordered`
//!   needs all of them, with times in the order listed (equal times are in
//!   order).
//! - **Conditions with only lower bounds** (`gt`, `gte`, and the
//!   `temporal` defaults) fire as soon as the count in the window reaches
//!   the bound, on the event that brought it there.
//! - **Conditions with an upper bound** (`lt`, `lte`, `eq`) can only be
//!   decided once no more events can join the window: a group's window then
//!   opens with its first event and closes `timespan` later; when the clock
//!   passes its end (or at [`Correlator::finish`]), the count is compared
//!   with the condition. A group with no events at all has no window: a
//!   correlation is about events that happened.
//! - **One burst, one hit.** After a hit, the group's window starts afresh
//!   (the events that raised it are not counted again) and the group stays
//!   quiet for one timespan: it can fire again only once the timespan after
//!   the hit has passed, on the events that followed it. So a burst of 500
//!   calls against `gt: 50` within the timespan gives one hit, not one per
//!   call after the 51st (nor one per 51 calls); activity that goes on gives
//!   at most one hit per group per timespan.
//! - **Chains.** A correlation may refer to another: each hit of the inner
//!   one is an event of the outer one, at the hit's end time, whose fields
//!   are the inner hit's `group-by` values. The inner correlation's hits
//!   are not returned unless it alerts on its own
//!   ([`crate::Correlation::alerts`]).
//!
//! # Time
//!
//! Times are the events' own (epoch milliseconds, from the caller). Events
//! may arrive somewhat out of order: each group's clock is the latest time
//! it has seen, and an event older than that clock by more than the
//! timespan (or older than the group's last hit) is too late and not
//! counted ([`CorrelatorStats::late`]). Windows with an upper bound close
//! on the stream's clock, the latest time seen in any event. An event
//! stamped far in the future moves its group's clock (and the stream's)
//! that far ahead; a group's clock never goes back.
//!
//! # Memory
//!
//! State is per (correlation, group) and bounded. A group keeps at most
//! [`MAX_REFERENCES`] event references; for a lower bound of `n`, an
//! `event_count` group keeps the times of at most `max(n, 100)` events
//! (for `n` above 1024, as runs of at most `timespan / 1024`, so an event
//! may count up to that much longer), a `value_count` group at most `n`
//! values, a temporal group one event per rule. A window with an upper
//! bound `m` keeps a count and at most `m + 1` values. Events older than
//! the timespan are dropped as time moves on. The number of groups is
//! capped ([`Limits::max_groups`], 100,000 by default, over all
//! correlations): when it is reached, groups whose events have all aged
//! out are dropped, then the least recently seen ones
//! ([`CorrelatorStats::evicted`]), open windows with them.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;

use crate::correlation::{Correlation, CorrelationType, CountCondition};
use crate::event::{Event, FieldValue};

/// The most event references a hit carries: the latest ones of its window.
/// [`Hit::count`] says how many the window counted.
pub const MAX_REFERENCES: usize = 100;

/// Time runs a group keeps at most for a large `event_count` bound.
const MAX_RUNS: i64 = 1024;

/// Bounds on a correlator's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most groups kept at once, over all correlations.
    pub max_groups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups: 100_000,
        }
    }
}

/// A correlation that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The correlation's id.
    pub id: String,
    /// The correlation's title.
    pub title: String,
    /// The correlation's level.
    pub level: Option<String>,
    /// The correlation's type.
    pub kind: CorrelationType,
    /// The group: each `group-by` entry and its value (`None`: the events
    /// lack the field).
    pub group: Vec<(String, Option<String>)>,
    /// The time of the earliest event counted, epoch milliseconds.
    pub start_ms: i64,
    /// The time of the latest event counted.
    pub end_ms: i64,
    /// What the condition was compared with: events (`event_count`),
    /// distinct values (`value_count`), rules matched (temporal types). A
    /// sliding `event_count` counts exactly up to the larger of its bound
    /// and [`MAX_REFERENCES`], which it may exceed after a quiet period.
    pub count: u64,
    /// The references of the events that raised it, in time order: at most
    /// [`MAX_REFERENCES`], the latest ones.
    pub references: Vec<u64>,
}

/// What a correlator holds and has dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    /// Groups held now.
    pub groups: usize,
    /// Events not counted because they came too late (see the module docs).
    pub late: u64,
    /// Groups dropped, with what they had counted, to stay under
    /// [`Limits::max_groups`].
    pub evicted: u64,
}

/// Evaluates correlation rules over a stream of events; see the module
/// documentation for the semantics.
#[derive(Debug)]
pub struct Correlator {
    specs: Vec<Spec>,
    /// For each detection rule id, the correlation inputs it feeds.
    inputs: HashMap<String, Vec<Input>>,
    groups: HashMap<Box<str>, Group>,
    /// Windows with an upper-bound condition, by closing time.
    closing: BinaryHeap<Reverse<Closing>>,
    /// The latest time seen in any event.
    watermark: i64,
    /// Counts observations (recency, for eviction) and windows.
    seq: u64,
    limits: Limits,
    late: u64,
    evicted: u64,
    /// Reused buffers.
    key: String,
    matched: Vec<Input>,
}

/// A position in a correlation's `rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Input {
    corr: usize,
    position: usize,
}

/// A correlation, ready for evaluation.
#[derive(Debug)]
struct Spec {
    id: String,
    title: String,
    level: Option<String>,
    kind: CorrelationType,
    alerts: bool,
    group_by: Vec<String>,
    /// For each position, the field of each `group-by` entry.
    fields: Vec<Vec<String>>,
    value_field: Option<String>,
    span: i64,
    condition: CountCondition,
    least: u64,
    /// Set for conditions decided when a window closes.
    most: Option<u64>,
    positions: usize,
    /// The correlations this one's hits feed.
    downstream: Vec<Input>,
}

impl Spec {
    fn counts_events(&self) -> bool {
        matches!(
            self.kind,
            CorrelationType::EventCount | CorrelationType::ValueCount
        )
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Closing {
    at: i64,
    seq: u64,
    corr: usize,
    key: Box<str>,
}

#[derive(Debug)]
struct Group {
    corr: usize,
    values: Vec<Option<String>>,
    touched: u64,
    /// The latest time the group has seen.
    clock: i64,
    /// Events before this time are not counted (the last hit's end).
    floor: i64,
    /// No hit until the clock passes this time (a timespan after the last).
    quiet_until: i64,
    /// The latest events' (time, reference), in time order.
    refs: VecDeque<(i64, u64)>,
    state: State,
}

#[derive(Debug)]
enum State {
    /// `event_count`, lower bounds only: runs of event times.
    Count { runs: VecDeque<Run>, total: u64 },
    /// `value_count`, lower bounds only: each value's latest time.
    Values { latest: HashMap<String, i64> },
    /// `temporal`, lower bounds only: each rule's latest event.
    Temporal { latest: Vec<Option<Step>> },
    /// `temporal_ordered`: for each position, the latest-starting sequence
    /// of events matching the rules up to it.
    Ordered { chains: Vec<Option<Chain>> },
    /// A condition with an upper bound: the open window.
    Window(Box<Window>),
}

#[derive(Debug, Clone, Copy)]
struct Run {
    start: i64,
    end: i64,
    count: u64,
}

#[derive(Debug)]
struct Step {
    time: i64,
    refs: Vec<u64>,
}

#[derive(Debug)]
struct Chain {
    first: i64,
    last: i64,
    refs: Vec<u64>,
}

#[derive(Debug)]
struct Window {
    opened: u64,
    first: i64,
    last: i64,
    count: u64,
    values: HashSet<String>,
    seen: u64,
}

/// One input to a correlation: an event that matched a referenced rule, or
/// a hit of a referenced correlation.
struct Obs<'a> {
    time: i64,
    position: usize,
    refs: &'a [u64],
    source: Source<'a>,
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Event(&'a Event),
    Hit(&'a Hit),
}

/// A field's value as a group or value key.
enum Text<'a> {
    One(&'a str),
    List(&'a [String]),
}

impl Text<'_> {
    fn len(&self) -> usize {
        match self {
            Text::One(s) => s.len(),
            Text::List(items) => {
                items.iter().map(String::len).sum::<usize>() + items.len().saturating_sub(1)
            }
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Text::One(s) => out.push_str(s),
            Text::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(item);
                }
            }
        }
    }

    fn as_cow(&self) -> Cow<'_, str> {
        match self {
            Text::One(s) => Cow::Borrowed(s),
            Text::List(items) => Cow::Owned(items.join(",")),
        }
    }
}

impl<'a> Source<'a> {
    fn text(self, field: &str) -> Option<Text<'a>> {
        match self {
            Source::Event(event) => match event.field(field)? {
                FieldValue::Null => None,
                FieldValue::Text(text) => Some(Text::One(text)),
                FieldValue::List(items) => Some(Text::List(items)),
            },
            Source::Hit(hit) => hit
                .group
                .iter()
                .find(|(name, _)| name == field)
                .and_then(|(_, value)| value.as_deref())
                .map(Text::One),
        }
    }
}

impl Correlator {
    /// A correlator for these correlations, given in the order
    /// [`crate::RuleSet::correlations`] has them (each after the
    /// correlations it refers to); a reference to a correlation not before
    /// it is taken as a detection rule id.
    pub fn new(correlations: &[Correlation], limits: Limits) -> Correlator {
        let mut specs: Vec<Spec> = Vec::with_capacity(correlations.len());
        let mut inputs: HashMap<String, Vec<Input>> = HashMap::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (corr, c) in correlations.iter().enumerate() {
            let positions = c.rules.len();
            let fields = (0..positions)
                .map(|p| {
                    c.group_by
                        .iter()
                        .map(|entry| c.group_field(entry, p).to_owned())
                        .collect()
                })
                .collect();
            let all = u64::try_from(positions).unwrap_or(u64::MAX);
            let most = match c.kind {
                CorrelationType::TemporalOrdered => None,
                CorrelationType::Temporal => c.condition.most().filter(|m| *m < all),
                CorrelationType::EventCount | CorrelationType::ValueCount => c.condition.most(),
            };
            for (position, rule) in c.rules.iter().enumerate() {
                let input = Input { corr, position };
                match index.get(rule.as_str()).and_then(|j| specs.get_mut(*j)) {
                    Some(upstream) => upstream.downstream.push(input),
                    None => inputs.entry(rule.clone()).or_default().push(input),
                }
            }
            specs.push(Spec {
                id: c.id.clone(),
                title: c.title.clone(),
                level: c.level.clone(),
                kind: c.kind,
                alerts: c.alerts(),
                group_by: c.group_by.clone(),
                fields,
                value_field: c.field.clone(),
                span: c.timespan_ms.max(0),
                condition: c.condition,
                least: c.condition.least(),
                most,
                positions,
                downstream: Vec::new(),
            });
            index.insert(&c.id, corr);
        }
        Correlator {
            specs,
            inputs,
            groups: HashMap::new(),
            closing: BinaryHeap::new(),
            watermark: i64::MIN,
            seq: 0,
            limits,
            late: 0,
            evicted: 0,
            key: String::new(),
            matched: Vec::new(),
        }
    }

    /// Feeds one event: the ids of the detection rules that matched it
    /// (ids of rules no correlation refers to are ignored), its time in
    /// epoch milliseconds, the event, and the caller's reference for it.
    /// Returns the hits it raised, and those of windows that the event's
    /// time closed. An event that matched nothing still moves the clock.
    pub fn observe(
        &mut self,
        matched: &[&str],
        time_ms: i64,
        event: &Event,
        reference: u64,
    ) -> Vec<Hit> {
        self.seq += 1;
        self.watermark = self.watermark.max(time_ms);
        self.matched.clear();
        for id in matched {
            if let Some(inputs) = self.inputs.get(*id) {
                self.matched.extend_from_slice(inputs);
            }
        }
        if self.matched.is_empty() && !self.due() {
            return Vec::new();
        }
        // By correlation, and within one, the last position first: an event
        // matching two consecutive rules of a sequence fills one place.
        self.matched
            .sort_unstable_by_key(|i| (i.corr, Reverse(i.position)));
        self.matched.dedup();
        self.run(Some((event, time_ms, reference)), false)
    }

    /// Moves the clock to `time_ms` without an event, closing the windows
    /// that end before it; returns their hits.
    pub fn advance(&mut self, time_ms: i64) -> Vec<Hit> {
        self.watermark = self.watermark.max(time_ms);
        if !self.due() {
            return Vec::new();
        }
        self.matched.clear();
        self.run(None, false)
    }

    /// Ends the stream: closes every open window (conditions with an upper
    /// bound) and returns their hits.
    pub fn finish(&mut self) -> Vec<Hit> {
        self.matched.clear();
        self.run(None, true)
    }

    /// What the correlator holds and has dropped.
    pub fn stats(&self) -> CorrelatorStats {
        CorrelatorStats {
            groups: self.groups.len(),
            late: self.late,
            evicted: self.evicted,
        }
    }

    fn due(&self) -> bool {
        self.closing
            .peek()
            .is_some_and(|Reverse(c)| c.at < self.watermark)
    }

    fn run(&mut self, event: Option<(&Event, i64, u64)>, finishing: bool) -> Vec<Hit> {
        let mut out = Vec::new();
        let mut due = Vec::new();
        if !finishing {
            while self.due() {
                if let Some(Reverse(c)) = self.closing.pop() {
                    due.push(c);
                }
            }
            due.sort_unstable_by_key(|c| (c.corr, c.at, c.seq));
        }
        let matched = std::mem::take(&mut self.matched);
        // Hits of correlations that others refer to, waiting for them.
        let mut fed: Vec<(Input, Hit)> = Vec::new();
        let (mut d, mut m) = (0, 0);
        for corr in 0..self.specs.len() {
            let mut hits = Vec::new();
            while let Some(c) = due.get(d).filter(|c| c.corr == corr) {
                if let Some(hit) = self.close(c) {
                    hits.push(hit);
                }
                d += 1;
            }
            let mut counted = false;
            while let Some(input) = matched.get(m).filter(|i| i.corr == corr) {
                m += 1;
                let Some((event, time, reference)) = event else {
                    continue;
                };
                let counts_events = self.specs.get(corr).is_some_and(Spec::counts_events);
                if counts_events && counted {
                    continue;
                }
                counted = true;
                let obs = Obs {
                    time,
                    position: input.position,
                    refs: std::slice::from_ref(&reference),
                    source: Source::Event(event),
                };
                hits.extend(self.apply(corr, &obs));
            }
            for (input, hit) in fed.iter().filter(|(i, _)| i.corr == corr) {
                let obs = Obs {
                    time: hit.end_ms,
                    position: input.position,
                    refs: &hit.references,
                    source: Source::Hit(hit),
                };
                hits.extend(self.apply(corr, &obs));
            }
            if finishing {
                hits.extend(self.close_all(corr));
            }
            let Some(spec) = self.specs.get(corr) else {
                continue;
            };
            for hit in hits {
                for input in &spec.downstream {
                    fed.push((*input, hit.clone()));
                }
                if spec.alerts {
                    out.push(hit);
                }
            }
        }
        self.matched = matched;
        out
    }

    /// Closes every open window of a correlation, in closing order.
    fn close_all(&mut self, corr: usize) -> Vec<Hit> {
        let (mut mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.closing)
            .into_iter()
            .map(|Reverse(c)| c)
            .partition(|c| c.corr == corr);
        self.closing = rest.into_iter().map(Reverse).collect();
        mine.sort_unstable();
        mine.iter().filter_map(|c| self.close(c)).collect()
    }

    /// Closes one window, if it is still open; its hit, if the count
    /// satisfies the condition.
    fn close(&mut self, closing: &Closing) -> Option<Hit> {
        let open = self
            .groups
            .get(&closing.key)
            .is_some_and(|g| matches!(&g.state, State::Window(w) if w.opened == closing.seq));
        if !open {
            return None;
        }
        let group = self.groups.remove(&closing.key)?;
        let spec = self.specs.get(group.corr)?;
        let State::Window(w) = &group.state else {
            return None;
        };
        let count = match spec.kind {
            CorrelationType::EventCount => w.count,
            CorrelationType::ValueCount => w.values.len() as u64,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
                u64::from(w.seen.count_ones())
            }
        };
        spec.condition.holds(count).then(|| {
            let refs = group.refs.iter().map(|(_, r)| *r).collect();
            hit(spec, &group.values, w.first, w.last, count, refs)
        })
    }

    /// Counts one input in its group; the hit it raises, if any.
    fn apply(&mut self, corr: usize, obs: &Obs<'_>) -> Option<Hit> {
        let spec = self.specs.get(corr)?;
        let fields = spec.fields.get(obs.position)?;
        let key = &mut self.key;
        key.clear();
        let _ = write!(key, "{corr}|");
        for field in fields {
            match obs.source.text(field) {
                None => key.push('~'),
                Some(text) => {
                    let _ = write!(key, "{}:", text.len());
                    text.write(key);
                }
            }
        }
        if !self.groups.contains_key(self.key.as_str()) {
            self.make_room();
            let spec = self.specs.get(corr)?;
            let fields = spec.fields.get(obs.position)?;
            let values = fields
                .iter()
                .map(|f| obs.source.text(f).map(|t| t.as_cow().into_owned()))
                .collect();
            let state = match (spec.most, spec.kind) {
                (Some(_), _) => {
                    self.seq += 1;
                    self.closing.push(Reverse(Closing {
                        at: obs.time.saturating_add(spec.span),
                        seq: self.seq,
                        corr,
                        key: self.key.as_str().into(),
                    }));
                    State::Window(Box::new(Window {
                        opened: self.seq,
                        first: obs.time,
                        last: obs.time,
                        count: 0,
                        values: HashSet::new(),
                        seen: 0,
                    }))
                }
                (None, CorrelationType::EventCount) => State::Count {
                    runs: VecDeque::new(),
                    total: 0,
                },
                (None, CorrelationType::ValueCount) => State::Values {
                    latest: HashMap::new(),
                },
                (None, CorrelationType::Temporal) => State::Temporal {
                    latest: (0..spec.positions).map(|_| None).collect(),
                },
                (None, CorrelationType::TemporalOrdered) => State::Ordered {
                    chains: (0..spec.positions).map(|_| None).collect(),
                },
            };
            self.groups.insert(
                self.key.as_str().into(),
                Group {
                    corr,
                    values,
                    touched: 0,
                    clock: i64::MIN,
                    floor: i64::MIN,
                    quiet_until: i64::MIN,
                    refs: VecDeque::new(),
                    state,
                },
            );
        }
        let spec = self.specs.get(corr)?;
        let group = self.groups.get_mut(self.key.as_str())?;
        group.touched = self.seq;
        let value = spec.value_field.as_deref().and_then(|f| obs.source.text(f));
        if let State::Window(w) = &mut group.state {
            window_add(spec, w, &mut group.refs, obs, value);
            return None;
        }
        match slide(spec, group, obs, value) {
            Some(Ok(hit)) => Some(hit),
            Some(Err(())) => {
                self.late += 1;
                None
            }
            None => None,
        }
    }

    /// Keeps the number of groups under the limit, with room for one more.
    fn make_room(&mut self) {
        let max = self.limits.max_groups.max(1);
        if self.groups.len() < max {
            return;
        }
        let watermark = self.watermark;
        let specs = &self.specs;
        self.groups.retain(|_, g| {
            let sliding = !matches!(g.state, State::Window(_));
            let span = specs.get(g.corr).map_or(0, |s| s.span);
            !(sliding && g.clock < watermark.saturating_sub(span))
        });
        let target = (max - max / 8).min(max - 1);
        if self.groups.len() > target {
            let excess = self.groups.len() - target;
            let mut touched: Vec<u64> = self.groups.values().map(|g| g.touched).collect();
            let (_, threshold, _) = touched.select_nth_unstable(excess - 1);
            let threshold = *threshold;
            let before = self.groups.len();
            self.groups.retain(|_, g| g.touched > threshold);
            self.evicted += (before - self.groups.len()) as u64;
        }
        if self.closing.len() > 2 * max + 64 {
            let groups = &self.groups;
            self.closing.retain(|Reverse(c)| {
                groups
                    .get(&c.key)
                    .is_some_and(|g| matches!(&g.state, State::Window(w) if w.opened == c.seq))
            });
        }
    }
}

/// A hit of a correlation.
fn hit(
    spec: &Spec,
    values: &[Option<String>],
    start_ms: i64,
    end_ms: i64,
    count: u64,
    references: Vec<u64>,
) -> Hit {
    Hit {
        id: spec.id.clone(),
        title: spec.title.clone(),
        level: spec.level.clone(),
        kind: spec.kind,
        group: spec
            .group_by
            .iter()
            .cloned()
            .zip(values.iter().cloned())
            .collect(),
        start_ms,
        end_ms,
        count,
        references,
    }
}

/// Adds references at `time`, keeping them in time order, within the
/// window (not before `cutoff`), and at most [`MAX_REFERENCES`].
fn push_refs(refs: &mut VecDeque<(i64, u64)>, time: i64, new: &[u64], cutoff: i64) {
    for r in new {
        if refs.back().is_none_or(|(t, _)| *t <= time) {
            refs.push_back((time, *r));
        } else {
            let at = refs.partition_point(|(t, _)| *t <= time);
            refs.insert(at, (time, *r));
        }
    }
    while refs.front().is_some_and(|(t, _)| *t < cutoff) {
        refs.pop_front();
    }
    while refs.len() > MAX_REFERENCES {
        refs.pop_front();
    }
}

/// Counts an input in an open window (conditions with an upper bound).
fn window_add(
    spec: &Spec,
    w: &mut Window,
    refs: &mut VecDeque<(i64, u64)>,
    obs: &Obs<'_>,
    value: Option<Text<'_>>,
) {
    w.count = w.count.saturating_add(1);
    w.first = w.first.min(obs.time);
    w.last = w.last.max(obs.time);
    match spec.kind {
        CorrelationType::ValueCount => {
            // Past the upper bound the count no longer matters.
            let most = spec.most.unwrap_or(u64::MAX);
            if let Some(value) = value
                && (w.values.len() as u64) <= most
            {
                let value = value.as_cow();
                if !w.values.contains(value.as_ref()) {
                    w.values.insert(value.into_owned());
                }
            }
        }
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
            if let Some(bit) = 1u64.checked_shl(u32::try_from(obs.position).unwrap_or(u32::MAX)) {
                w.seen |= bit;
            }
        }
        CorrelationType::EventCount => {}
    }
    push_refs(refs, obs.time, obs.refs, i64::MIN);
}

/// Counts an input in a sliding window (conditions with only lower
/// bounds): `None` when nothing fired, `Some(Err(()))` when the input came
/// too late to count.
fn slide(
    spec: &Spec,
    g: &mut Group,
    obs: &Obs<'_>,
    value: Option<Text<'_>>,
) -> Option<Result<Hit, ()>> {
    let t = obs.time;
    if t < g.floor || t < g.clock.saturating_sub(spec.span) {
        return Some(Err(()));
    }
    g.clock = g.clock.max(t);
    let cutoff = g.clock.saturating_sub(spec.span);
    let may_fire = g.clock > g.quiet_until;
    let fired = match &mut g.state {
        State::Count { runs, total } => {
            let resolution = if spec.least > MAX_RUNS.unsigned_abs() {
                (spec.span / MAX_RUNS).max(1)
            } else {
                1
            };
            add_run(runs, t, resolution);
            *total += 1;
            // Events older than the timespan go; so do events beyond what
            // the bound and the hit's count need (only while quiet can the
            // count pass the bound).
            let keep = spec.least.max(MAX_REFERENCES as u64);
            while let Some(front) = runs
                .front()
                .filter(|r| r.end < cutoff || total.saturating_sub(r.count) >= keep)
            {
                *total = total.saturating_sub(front.count);
                runs.pop_front();
            }
            push_refs(&mut g.refs, t, obs.refs, cutoff);
            (may_fire && *total >= spec.least).then(|| {
                let start = runs.front().map_or(t, |r| r.start);
                (start, g.clock, *total, refs_of(&g.refs))
            })
        }
        State::Values { latest } => {
            let value = value?;
            let value = value.as_cow();
            match latest.get_mut(value.as_ref()) {
                Some(time) => *time = (*time).max(t),
                None => {
                    latest.insert(value.into_owned(), t);
                }
            }
            push_refs(&mut g.refs, t, obs.refs, cutoff);
            if latest.len() as u64 >= spec.least {
                latest.retain(|_, time| *time >= cutoff);
            }
            // While quiet, the values beyond the bound go, oldest first.
            while latest.len() as u64 > spec.least {
                let oldest = latest
                    .iter()
                    .min_by_key(|(value, time)| (**time, value.as_str()))
                    .map(|(value, _)| value.clone());
                match oldest {
                    Some(value) => latest.remove(&value),
                    None => break,
                };
            }
            (may_fire && latest.len() as u64 >= spec.least).then(|| {
                let start = latest.values().copied().min().unwrap_or(t);
                (start, g.clock, latest.len() as u64, refs_of(&g.refs))
            })
        }
        State::Temporal { latest } => {
            if let Some(slot) = latest.get_mut(obs.position) {
                match slot {
                    Some(step) if step.time > t => {}
                    Some(step) => {
                        step.time = t;
                        step.refs.clear();
                        step.refs.extend_from_slice(obs.refs);
                    }
                    None => {
                        *slot = Some(Step {
                            time: t,
                            refs: obs.refs.to_vec(),
                        });
                    }
                }
            }
            let live = || latest.iter().flatten().filter(|s| s.time >= cutoff);
            let count = live().count() as u64;
            (may_fire && count >= spec.least).then(|| {
                let mut steps: Vec<&Step> = live().collect();
                steps.sort_by_key(|s| s.time);
                let start = steps.first().map_or(t, |s| s.time);
                let end = steps.last().map_or(t, |s| s.time);
                let mut refs: Vec<u64> =
                    steps.iter().flat_map(|s| s.refs.iter().copied()).collect();
                keep_latest(&mut refs);
                (start, end, count, refs)
            })
        }
        State::Ordered { chains } => {
            extend_chain(chains, obs, spec.span);
            let last = chains.last_mut()?;
            if !may_fire {
                // A sequence completed while quiet is not a new one later.
                *last = None;
            }
            last.as_ref().map(|chain| {
                let mut refs = chain.refs.clone();
                keep_latest(&mut refs);
                (chain.first, chain.last, spec.positions as u64, refs)
            })
        }
        State::Window(_) => None,
    };
    let (start, end, count, refs) = fired?;
    reset(&mut g.state);
    g.refs.clear();
    g.floor = g.clock;
    g.quiet_until = g.clock.saturating_add(spec.span);
    Some(Ok(hit(spec, &g.values, start, end, count, refs)))
}

fn refs_of(refs: &VecDeque<(i64, u64)>) -> Vec<u64> {
    refs.iter().map(|(_, r)| *r).collect()
}

fn keep_latest(refs: &mut Vec<u64>) {
    if refs.len() > MAX_REFERENCES {
        refs.drain(..refs.len() - MAX_REFERENCES);
    }
}

/// Adds an event time to the runs, kept in time order: into the run it
/// falls in (runs span less than `resolution`), or a new one.
fn add_run(runs: &mut VecDeque<Run>, t: i64, resolution: i64) {
    let at = runs.partition_point(|r| r.start <= t);
    if let Some(run) = at.checked_sub(1).and_then(|i| runs.get_mut(i))
        && t.saturating_sub(run.start) < resolution
    {
        run.count += 1;
        run.end = run.end.max(t);
        return;
    }
    runs.insert(
        at,
        Run {
            start: t,
            end: t,
            count: 1,
        },
    );
}

/// Extends the sequences of a `temporal_ordered` group with an input at
/// its position: a sequence up to the position before, whose events are
/// no later than this one and which stays within the timespan, becomes a
/// sequence up to this position if it starts later than the one there.
fn extend_chain(chains: &mut [Option<Chain>], obs: &Obs<'_>, span: i64) {
    let t = obs.time;
    let p = obs.position;
    let (before, rest) = chains.split_at_mut(p);
    let Some(slot) = rest.first_mut() else {
        return;
    };
    let (first, prefix): (i64, &[u64]) = match before.last() {
        None => (t, &[]),
        Some(Some(prev)) if prev.last <= t && t.saturating_sub(prev.first) <= span => {
            (prev.first, &prev.refs)
        }
        Some(_) => return,
    };
    if slot.as_ref().is_some_and(|c| c.first > first) {
        return;
    }
    let chain = slot.get_or_insert_with(|| Chain {
        first,
        last: t,
        refs: Vec::new(),
    });
    chain.first = first;
    chain.last = t;
    chain.refs.clear();
    chain.refs.extend_from_slice(prefix);
    chain.refs.extend_from_slice(obs.refs);
}

/// Empties a group's counts after a hit.
fn reset(state: &mut State) {
    match state {
        State::Count { runs, total } => {
            runs.clear();
            *total = 0;
        }
        State::Values { latest } => latest.clear(),
        State::Temporal { latest } => latest.iter_mut().for_each(|s| *s = None),
        State::Ordered { chains } => chains.iter_mut().for_each(|c| *c = None),
        State::Window(_) => {}
    }
}
