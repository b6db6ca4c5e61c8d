//! Parquet export files: the investigation fields and raw record of ledger entries, for any
//! analytics engine (`acta export --format parquet`).
//!
//! Each row holds the investigation fields of one ledger entry, the time acta received it, and
//! the raw record bytes, in a plain Parquet schema (below) that DuckDB, pyarrow or Spark read
//! directly: `SELECT action, count(*) FROM 'export.parquet' GROUP BY action`.
//!
//! | column | Parquet type | from |
//! | --- | --- | --- |
//! | `index` | INT64 | [`Row::index`] |
//! | `time` | INT64 TIMESTAMP(MILLIS, UTC) | [`Row::time`] |
//! | `received_at` | INT64 TIMESTAMP(MILLIS, UTC) | the ledger envelope's receipt time |
//! | `source` | STRING | [`Row::source`] |
//! | `class_uid`, `activity_id`, `severity_id` | INT32 | the [`Row`] fields of those names |
//! | `outcome` | STRING | [`Row::outcome`] |
//! | `actor` … `status_code` | optional STRING | the optional [`Row`] fields of those names |
//! | `resource` | optional STRING | [`Row::resource`] (the first resource), for display |
//! | `actor_ids`, `resources` | LIST of STRING | [`Row::actor_ids`], [`Row::resources`] |
//! | `raw` | BINARY | the record, byte for byte |
//!
//! Writing streams: [`ExportWriter`] buffers one row group (at most [`ROW_GROUP_ROWS`] rows or
//! about 16 MiB of values) and appends it to a hidden temporary file beside the export;
//! [`ExportWriter::finish`] writes the footer, syncs the file, renames it into place and syncs
//! the directory, so an export is either whole or absent. [`write_parquet`] wraps it. Row groups
//! are zstd-compressed, low-cardinality strings are dictionary-encoded, and every column but
//! `raw` has min/max statistics, which [`read_file`] uses to skip row groups. Key-value metadata
//! holds the schema version ([`SCHEMA_VERSION_KEY`]) and whatever the caller adds (the
//! checkpoint an export was taken against, the query).
//!
//! Parquet's Rust encoder writes no page checksums, so each file's key-value metadata holds the
//! CRC-32C of every row group's bytes ([`CRC_KEY`]); [`read_file`] checks it before decoding a
//! row group, then checks the schema and the types and ranges of values. A damaged file is an
//! error, never a panic and never rows other than those written.

#![deny(clippy::indexing_slicing)]

use std::borrow::{Borrow, Cow};
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, RowGroupMetaData};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::{ColumnPath, SchemaDescriptor, Type};

use crate::{CompactString, Row};

/// Most rows in one row group.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// A row group is written early once its buffered values reach this many bytes, so that large
/// raw records keep memory bounded too.
const ROW_GROUP_BYTES: usize = 16 << 20;

/// zstd level of every column. On CloudTrail-like records (the export size test), level 1 gave
/// 203 bytes per row, level 3 215 at about the same speed, level 6 202 at 60% more write time.
const ZSTD_LEVEL: i32 = 1;

/// Rows decoded at a time per column when reading.
const READ_BATCH: usize = 1024;

/// Key-value metadata key stating the schema version of every file written here.
pub const SCHEMA_VERSION_KEY: &str = "acta.schema.version";

/// The schema version written under [`SCHEMA_VERSION_KEY`].
pub const SCHEMA_VERSION: &str = "1";

/// Key-value metadata key of the CRC-32C of each row group's bytes, as comma-separated
/// 8-digit hex numbers in row group order. Parquet's own page checksums are optional and not
/// written by the Rust encoder; without these, a flipped bit in compressed data could change a
/// value silently.
pub const CRC_KEY: &str = "acta.row_groups.crc32c";

/// The Parquet schema of export files.
const SCHEMA: &str = "
message acta_row {
  required int64 index;
  required int64 time (TIMESTAMP(MILLIS,true));
  required int64 received_at (TIMESTAMP(MILLIS,true));
  required binary source (STRING);
  required int32 class_uid;
  required int32 activity_id;
  required int32 severity_id;
  required binary outcome (STRING);
  optional binary actor (STRING);
  optional binary action (STRING);
  optional binary service (STRING);
  optional binary ip (STRING);
  optional binary account (STRING);
  optional binary region (STRING);
  optional binary user_agent (STRING);
  optional binary status_code (STRING);
  optional binary resource (STRING);
  required group actor_ids (LIST) {
    repeated group list {
      required binary element (STRING);
    }
  }
  required group resources (LIST) {
    repeated group list {
      required binary element (STRING);
    }
  }
  required binary raw;
}
";

/// Leaf column positions in [`SCHEMA`].
mod col {
    pub const INDEX: usize = 0;
    pub const TIME: usize = 1;
    pub const RECEIVED_AT: usize = 2;
    pub const SOURCE: usize = 3;
    pub const CLASS_UID: usize = 4;
    pub const ACTIVITY_ID: usize = 5;
    pub const SEVERITY_ID: usize = 6;
    pub const OUTCOME: usize = 7;
    /// The first optional string column; they follow in [`super::OPTIONAL`] order.
    pub const OPTIONAL: usize = 8;
    pub const ACTOR_IDS: usize = 17;
    pub const RESOURCES: usize = 18;
    pub const RAW: usize = 19;
    pub const COUNT: usize = 20;
}

/// Names of the optional string columns, in schema order (`resource` last).
const OPTIONAL: [&str; 9] = [
    "actor",
    "action",
    "service",
    "ip",
    "account",
    "region",
    "user_agent",
    "status_code",
    "resource",
];

/// Why an export file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file operation failed.
    #[error("cannot {op} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The Parquet encoder or decoder failed (for reading: the file is damaged).
    #[error("cannot {op} Parquet file `{}`: {source}", path.display())]
    Parquet {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// The Parquet library's error.
        source: ParquetError,
    },
    /// A file's contents are not what acta wrote.
    #[error("Parquet file `{}` is damaged or was not written by acta: {detail}", path.display())]
    Damaged {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A row cannot be stored: an index above `i64::MAX`, a `class_uid` above `i32::MAX`, an
    /// outcome other than the four a [`Row`] holds.
    #[error("cannot store ledger index {index} in `{}`: {detail}", path.display())]
    Unrepresentable {
        /// The export file.
        path: PathBuf,
        /// The ledger index of the row.
        index: u64,
        /// What does not fit.
        detail: String,
    },
}

type Result<T, E = ExportError> = std::result::Result<T, E>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ExportError + 'a {
    move |source| ExportError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn pq_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(ParquetError) -> ExportError + 'a {
    move |source| ExportError::Parquet {
        op,
        path: path.to_owned(),
        source,
    }
}

fn damaged(path: &Path, detail: impl Into<String>) -> ExportError {
    ExportError::Damaged {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// One row as stored: the investigation fields, the receipt time and the raw record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// The investigation fields.
    pub row: Row,
    /// When acta received the record (the ledger envelope's time), epoch milliseconds.
    pub received_at_ms: i64,
    /// The record, byte for byte.
    pub raw: Vec<u8>,
}

/// Syncs a directory, making the names in it durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_data())
        .map_err(io_err("sync directory", dir))
}

/// The directory holding `path`, for syncing after a rename.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// One optional string column of the row group being built.
#[derive(Debug, Default)]
struct OptionalColumn {
    values: Vec<ByteArray>,
    def: Vec<i16>,
}

/// One list-of-strings column of the row group being built (3-level list encoding).
#[derive(Debug, Default)]
struct ListColumn {
    values: Vec<ByteArray>,
    def: Vec<i16>,
    rep: Vec<i16>,
}

/// The row group being built, column by column.
#[derive(Debug, Default)]
struct RowGroup {
    rows: usize,
    bytes: usize,
    index: Vec<i64>,
    time: Vec<i64>,
    received_at: Vec<i64>,
    source: Vec<ByteArray>,
    class_uid: Vec<i32>,
    activity_id: Vec<i32>,
    severity_id: Vec<i32>,
    outcome: Vec<ByteArray>,
    optional: [OptionalColumn; 9],
    actor_ids: ListColumn,
    resources: ListColumn,
    raw: Vec<ByteArray>,
}

/// A column's values, as the row group writer takes them.
enum Values<'a> {
    I64(&'a [i64]),
    I32(&'a [i32]),
    Bytes {
        values: &'a [ByteArray],
        def: Option<&'a [i16]>,
        rep: Option<&'a [i16]>,
    },
}

impl RowGroup {
    fn is_full(&self) -> bool {
        self.rows >= ROW_GROUP_ROWS || self.bytes >= ROW_GROUP_BYTES
    }

    /// Adds a row. Checks every conversion before changing anything, so a failed push leaves
    /// the group as it was.
    fn push(&mut self, row: &Row, received_at_ms: i64, raw: &[u8], path: &Path) -> Result<()> {
        let unrepresentable = |detail: String| ExportError::Unrepresentable {
            path: path.to_owned(),
            index: row.index,
            detail,
        };
        let index = i64::try_from(row.index)
            .map_err(|_| unrepresentable("the index is above 2^63 - 1".into()))?;
        let class_uid = i32::try_from(row.class_uid).map_err(|_| {
            unrepresentable(format!("class_uid {} is above 2^31 - 1", row.class_uid))
        })?;
        if known_outcome(row.outcome).is_none() {
            return Err(unrepresentable(format!(
                "outcome `{}` is not success, failure, unknown or other",
                row.outcome
            )));
        }
        self.index.push(index);
        self.time.push(row.time);
        self.received_at.push(received_at_ms);
        self.source.push(ByteArray::from(row.source.as_str()));
        self.class_uid.push(class_uid);
        self.activity_id.push(i32::from(row.activity_id));
        self.severity_id.push(i32::from(row.severity_id));
        self.outcome.push(ByteArray::from(row.outcome));
        let optional = [
            &row.actor,
            &row.action,
            &row.service,
            &row.ip,
            &row.account,
            &row.region,
            &row.user_agent,
            &row.status_code,
        ]
        .map(Option::as_deref);
        let mut bytes = row.source.len() + raw.len();
        for (column, value) in self
            .optional
            .iter_mut()
            .zip(optional.into_iter().chain([row.resource()]))
        {
            match value {
                Some(v) => {
                    column.values.push(ByteArray::from(v));
                    column.def.push(1);
                    bytes += v.len();
                }
                None => column.def.push(0),
            }
        }
        for (column, values) in [
            (&mut self.actor_ids, &row.actor_ids),
            (&mut self.resources, &row.resources),
        ] {
            if values.is_empty() {
                column.def.push(0);
                column.rep.push(0);
            }
            for (i, v) in values.iter().enumerate() {
                column.values.push(ByteArray::from(v.as_str()));
                column.def.push(1);
                column.rep.push(if i == 0 { 0 } else { 1 });
                bytes += v.len();
            }
        }
        self.raw.push(ByteArray::from(raw));
        self.rows += 1;
        self.bytes += bytes;
        Ok(())
    }

    /// Writes the group as the next row group of `file` and empties it.
    fn write_to(
        &mut self,
        file: &mut SerializedFileWriter<Checksummed>,
    ) -> Result<(), ParquetError> {
        let mut group = file.next_row_group()?;
        let bytes = |values| Values::Bytes {
            values,
            def: None,
            rep: None,
        };
        write_column(&mut group, Values::I64(&self.index))?;
        write_column(&mut group, Values::I64(&self.time))?;
        write_column(&mut group, Values::I64(&self.received_at))?;
        write_column(&mut group, bytes(&self.source))?;
        write_column(&mut group, Values::I32(&self.class_uid))?;
        write_column(&mut group, Values::I32(&self.activity_id))?;
        write_column(&mut group, Values::I32(&self.severity_id))?;
        write_column(&mut group, bytes(&self.outcome))?;
        for c in &self.optional {
            write_column(
                &mut group,
                Values::Bytes {
                    values: &c.values,
                    def: Some(&c.def),
                    rep: None,
                },
            )?;
        }
        for c in [&self.actor_ids, &self.resources] {
            write_column(
                &mut group,
                Values::Bytes {
                    values: &c.values,
                    def: Some(&c.def),
                    rep: Some(&c.rep),
                },
            )?;
        }
        write_column(&mut group, bytes(&self.raw))?;
        group.close()?;
        *self = RowGroup::default();
        Ok(())
    }
}

/// Writes the next column of `group`.
fn write_column(
    group: &mut SerializedRowGroupWriter<'_, Checksummed>,
    values: Values<'_>,
) -> Result<(), ParquetError> {
    let Some(mut column) = group.next_column()? else {
        return Err(ParquetError::General(
            "the schema has fewer columns than acta writes".into(),
        ));
    };
    match (column.untyped(), values) {
        (ColumnWriter::Int64ColumnWriter(w), Values::I64(v)) => {
            w.write_batch(v, None, None)?;
        }
        (ColumnWriter::Int32ColumnWriter(w), Values::I32(v)) => {
            w.write_batch(v, None, None)?;
        }
        (ColumnWriter::ByteArrayColumnWriter(w), Values::Bytes { values, def, rep }) => {
            w.write_batch(values, def, rep)?;
        }
        _ => {
            return Err(ParquetError::General(
                "a column's type differs from the values acta writes".into(),
            ));
        }
    }
    column.close()
}

/// The schema, parsed.
fn schema() -> Result<Arc<Type>, ParquetError> {
    parse_message_type(SCHEMA).map(Arc::new)
}

/// Writer properties of export files, with key-value `metadata` after the schema version.
fn properties(metadata: &[(String, String)]) -> Result<Arc<WriterProperties>, ParquetError> {
    let mut kv = vec![KeyValue::new(
        SCHEMA_VERSION_KEY.to_owned(),
        SCHEMA_VERSION.to_owned(),
    )];
    kv.extend(
        metadata
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(kv));

    // Unique per row: a dictionary would only be built to be dropped.
    for name in ["index", "time", "received_at", "raw"] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    // Exports follow the ledger: indices and times grow, deltas are a few bits each.
    for name in ["index", "time", "received_at"] {
        b = b.set_column_encoding(ColumnPath::from(name), Encoding::DELTA_BINARY_PACKED);
    }
    // Min/max of raw records would be 64-byte prefixes of JSON: no use to any reader.
    b = b.set_column_statistics_enabled(ColumnPath::from("raw"), EnabledStatistics::None);
    Ok(Arc::new(b.build()))
}

/// The file under a Parquet writer: computes the CRC-32C of the bytes since the last
/// [`Checksummed::take`].
struct Checksummed {
    file: File,
    crc: u32,
}

impl io::Write for Checksummed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Checksummed {
    fn take(&mut self) -> u32 {
        std::mem::take(&mut self.crc)
    }
}

/// A Parquet file being written to a temporary path, with the CRC-32C of each row group's
/// bytes (Parquet's writer has no page checksums).
struct OpenFile {
    tmp: PathBuf,
    writer: SerializedFileWriter<Checksummed>,
    crcs: Vec<u32>,
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile").field("tmp", &self.tmp).finish()
    }
}

impl OpenFile {
    fn create(tmp: PathBuf, props: Arc<WriterProperties>) -> Result<Self> {
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        let started = schema().and_then(|schema| {
            let mut writer =
                SerializedFileWriter::new(Checksummed { file, crc: 0 }, schema, props)?;
            // The magic number is not part of any row group.
            writer.flush()?;
            writer.inner_mut().take();
            Ok(writer)
        });
        match started {
            Ok(writer) => Ok(OpenFile {
                tmp,
                writer,
                crcs: Vec::new(),
            }),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(pq_err("write", &tmp)(e))
            }
        }
    }

    fn write(&mut self, group: &mut RowGroup) -> Result<()> {
        if group.rows == 0 {
            return Ok(());
        }
        group
            .write_to(&mut self.writer)
            .and_then(|()| Ok(self.writer.flush()?))
            .map_err(pq_err("write", &self.tmp))?;
        self.crcs.push(self.writer.inner_mut().take());
        Ok(())
    }

    /// Writes the footer, syncs the file and renames it to `path`, then syncs `path`'s
    /// directory. Returns the file size.
    fn finish(self, path: &Path) -> Result<u64> {
        let OpenFile {
            tmp,
            mut writer,
            crcs,
        } = self;
        let crcs: Vec<String> = crcs.iter().map(|c| format!("{c:08x}")).collect();
        writer.append_key_value_metadata(KeyValue::new(CRC_KEY.to_owned(), crcs.join(",")));
        let file = writer.into_inner().map_err(pq_err("write", &tmp))?.file;
        file.sync_data().map_err(io_err("sync", &tmp))?;
        let bytes = file.metadata().map_err(io_err("stat", &tmp))?.len();
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
        sync_dir(parent_dir(path))?;
        Ok(bytes)
    }

    /// Deletes the temporary file, best effort.
    fn abandon(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Writes rows to one Parquet file of the export schema, in any order, with key-value
/// metadata: `acta export --format parquet`. The file appears at its path, whole, on
/// [`ExportWriter::finish`]; until then rows stream to a hidden temporary file beside it,
/// deleted if the writer is dropped.
#[derive(Debug)]
pub struct ExportWriter {
    path: PathBuf,
    rows: u64,
    group: RowGroup,
    file: Option<OpenFile>,
}

impl ExportWriter {
    /// Starts the export file `path`. `metadata` is stored as the file's key-value metadata
    /// (e.g. `acta.checkpoint.size`, `acta.checkpoint.root`, `acta.query`), after
    /// [`SCHEMA_VERSION_KEY`].
    pub fn create(path: &Path, metadata: &[(String, String)]) -> Result<Self> {
        let name = path
            .file_name()
            .ok_or_else(|| io_err("create", path)(io::ErrorKind::InvalidInput.into()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(".acta-export.tmp");
        let tmp = parent_dir(path).join(tmp_name);
        let props = properties(metadata).map_err(pq_err("configure", path))?;
        Ok(ExportWriter {
            path: path.to_owned(),
            rows: 0,
            group: RowGroup::default(),
            file: Some(OpenFile::create(tmp, props)?),
        })
    }

    /// Adds a row.
    pub fn push(&mut self, row: &Row, received_at_ms: i64, raw: &[u8]) -> Result<()> {
        self.group.push(row, received_at_ms, raw, &self.path)?;
        self.rows += 1;
        if self.group.is_full() {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<()> {
        match &mut self.file {
            Some(file) => file.write(&mut self.group),
            None => Err(damaged(&self.path, "the export was abandoned")),
        }
    }

    /// Writes the remaining rows and the footer, syncs the file and renames it into place.
    /// Returns the number of rows.
    pub fn finish(mut self) -> Result<u64> {
        self.flush_group()?;
        match self.file.take() {
            Some(file) => file.finish(&self.path)?,
            None => return Err(damaged(&self.path, "the export was abandoned")),
        };
        Ok(self.rows)
    }
}

impl Drop for ExportWriter {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            file.abandon();
        }
    }
}

/// Writes `rows` to the Parquet file `path` with the export schema and key-value `metadata`
/// (see [`ExportWriter`], which this wraps). Returns the number of rows.
pub fn write_parquet<I>(path: &Path, rows: I, metadata: &[(String, String)]) -> Result<u64>
where
    I: IntoIterator,
    I::Item: Borrow<StoredRow>,
{
    let mut w = ExportWriter::create(path, metadata)?;
    for r in rows {
        let r = r.borrow();
        w.push(&r.row, r.received_at_ms, &r.raw)?;
    }
    w.finish()
}

// ---------------------------------------------------------------------------------------------
// Reading

/// `wanted`, sorted and without duplicates (borrowed when it already is).
fn sorted(wanted: &[u64]) -> Cow<'_, [u64]> {
    if wanted.windows(2).all(|w| matches!(w, [a, b] if a < b)) {
        Cow::Borrowed(wanted)
    } else {
        let mut w = wanted.to_vec();
        w.sort_unstable();
        w.dedup();
        Cow::Owned(w)
    }
}

/// The rows of an export file, in file order: all, or those whose ledger index is in `wanted`
/// (sorted or not). Row groups whose `index` statistics exclude every wanted index are not
/// decoded.
///
/// Checks the schema, the row counts, UTF-8 strings and value ranges: any damage is an error.
pub fn read_file(path: &Path, wanted: Option<&[u64]>) -> Result<Vec<StoredRow>> {
    let wanted = wanted.map(sorted);
    let file = File::open(path).map_err(io_err("open", path))?;
    // The Parquet decoder has panicking paths (`expect`s on states that damaged input might
    // reach); a damaged file must be an error, so a panic inside is caught and reported.
    catch_unwind(AssertUnwindSafe(|| {
        read_rows(file, path, wanted.as_deref())
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(damaged(path, format!("the Parquet decoder failed: {what}")))
    })
}

fn read_rows(file: File, path: &Path, wanted: Option<&[u64]>) -> Result<Vec<StoredRow>> {
    let mut check = file.try_clone().map_err(io_err("open", path))?;
    let reader = SerializedFileReader::new(file).map_err(pq_err("read", path))?;
    let file_meta = reader.metadata().file_metadata();
    check_schema(file_meta.schema_descr(), path)?;
    let crcs = row_group_crcs(file_meta.key_value_metadata(), path)?;
    if crcs.len() != reader.num_row_groups() {
        return Err(damaged(
            path,
            "the row group checksums do not match the row groups",
        ));
    }
    let mut out = Vec::new();
    for (g, crc) in crcs.into_iter().enumerate() {
        let meta = reader.metadata().row_group(g);
        if let Some(w) = wanted
            && let Some((min, max)) =
                index_range(meta.columns().first().and_then(|c| c.statistics()))
        {
            let lo = w.partition_point(|&i| i < min);
            if w.get(lo).is_none_or(|&i| i > max) {
                continue;
            }
        }
        check_crc(&mut check, meta, crc, path)?;
        let rows = usize::try_from(meta.num_rows())
            .map_err(|_| damaged(path, format!("row group {g} has a negative row count")))?;
        let group = reader.get_row_group(g).map_err(pq_err("read", path))?;
        GroupReader::new(&*group, path)?.read(rows, wanted, &mut out)?;
    }
    Ok(out)
}

/// The row group checksums stored under [`CRC_KEY`].
fn row_group_crcs(kv: Option<&Vec<KeyValue>>, path: &Path) -> Result<Vec<u32>> {
    let value = kv
        .into_iter()
        .flatten()
        .find(|kv| kv.key == CRC_KEY)
        .and_then(|kv| kv.value.as_deref())
        .ok_or_else(|| damaged(path, format!("the `{CRC_KEY}` metadata is missing")))?;
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|h| {
            (h.len() == 8)
                .then(|| u32::from_str_radix(h, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()
        .ok_or_else(|| damaged(path, format!("the `{CRC_KEY}` metadata is malformed")))
}

/// Checks the CRC-32C of a row group's bytes (its column chunks, which are contiguous).
fn check_crc(file: &mut File, meta: &RowGroupMetaData, expected: u32, path: &Path) -> Result<()> {
    let bad_range = || damaged(path, "a column chunk's offsets are out of range");
    let mut start = u64::MAX;
    let mut end = 0;
    for c in meta.columns() {
        let s = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
        let s = u64::try_from(s).map_err(|_| bad_range())?;
        let len = u64::try_from(c.compressed_size()).map_err(|_| bad_range())?;
        start = start.min(s);
        end = end.max(s.checked_add(len).ok_or_else(bad_range)?);
    }
    if start >= end {
        return Err(bad_range());
    }
    file.seek(io::SeekFrom::Start(start))
        .map_err(io_err("read", path))?;
    let mut left = end - start;
    let mut crc = 0;
    let mut buf = vec![0; 256 << 10];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = file.read(chunk).map_err(io_err("read", path))?;
        if n == 0 {
            return Err(damaged(path, "the file is shorter than its row groups"));
        }
        crc = crc32c::crc32c_append(crc, chunk.get(..n).unwrap_or_default());
        left -= n as u64;
    }
    if crc == expected {
        Ok(())
    } else {
        Err(damaged(
            path,
            "a row group's checksum does not match its bytes",
        ))
    }
}

/// The `index` range of a row group from its statistics, when present.
fn index_range(stats: Option<&Statistics>) -> Option<(u64, u64)> {
    match stats? {
        Statistics::Int64(s) => {
            let min = u64::try_from(*s.min_opt()?).ok()?;
            let max = u64::try_from(*s.max_opt()?).ok()?;
            Some((min, max))
        }
        _ => None,
    }
}

/// Checks that a file's columns are those of [`SCHEMA`]: names, physical types and nesting.
fn check_schema(found: &SchemaDescriptor, path: &Path) -> Result<()> {
    let ours = SchemaDescriptor::new(schema().map_err(pq_err("read", path))?);
    let same = found.num_columns() == ours.num_columns()
        && found.columns().iter().zip(ours.columns()).all(|(f, o)| {
            f.path() == o.path()
                && f.physical_type() == o.physical_type()
                && f.max_def_level() == o.max_def_level()
                && f.max_rep_level() == o.max_rep_level()
        });
    if same {
        Ok(())
    } else {
        Err(damaged(
            path,
            "its columns are not those of acta's row schema",
        ))
    }
}

/// Column readers of one row group, advanced together in batches.
struct GroupReader<'a> {
    path: &'a Path,
    index: ColumnReaderImpl<Int64Type>,
    time: ColumnReaderImpl<Int64Type>,
    received_at: ColumnReaderImpl<Int64Type>,
    source: ColumnReaderImpl<ByteArrayType>,
    class_uid: ColumnReaderImpl<Int32Type>,
    activity_id: ColumnReaderImpl<Int32Type>,
    severity_id: ColumnReaderImpl<Int32Type>,
    outcome: ColumnReaderImpl<ByteArrayType>,
    /// The optional columns but `resource`, which is derived from `resources`.
    optional: Vec<ColumnReaderImpl<ByteArrayType>>,
    actor_ids: ColumnReaderImpl<ByteArrayType>,
    resources: ColumnReaderImpl<ByteArrayType>,
    raw: ColumnReaderImpl<ByteArrayType>,
}

impl<'a> GroupReader<'a> {
    fn new(group: &dyn RowGroupReader, path: &'a Path) -> Result<Self> {
        if group.num_columns() != col::COUNT {
            return Err(damaged(path, "a row group has the wrong number of columns"));
        }
        let column = |i| group.get_column_reader(i).map_err(pq_err("read", path));
        let wrong = || damaged(path, "a column chunk has the wrong type");
        let int64 = |i| match column(i)? {
            ColumnReader::Int64ColumnReader(r) => Ok(r),
            _ => Err(wrong()),
        };
        let int32 = |i| match column(i)? {
            ColumnReader::Int32ColumnReader(r) => Ok(r),
            _ => Err(wrong()),
        };
        let bytes = |i| match column(i)? {
            ColumnReader::ByteArrayColumnReader(r) => Ok(r),
            _ => Err(wrong()),
        };
        Ok(GroupReader {
            path,
            index: int64(col::INDEX)?,
            time: int64(col::TIME)?,
            received_at: int64(col::RECEIVED_AT)?,
            source: bytes(col::SOURCE)?,
            class_uid: int32(col::CLASS_UID)?,
            activity_id: int32(col::ACTIVITY_ID)?,
            severity_id: int32(col::SEVERITY_ID)?,
            outcome: bytes(col::OUTCOME)?,
            optional: (col::OPTIONAL..col::OPTIONAL + OPTIONAL.len() - 1)
                .map(bytes)
                .collect::<Result<_>>()?,
            actor_ids: bytes(col::ACTOR_IDS)?,
            resources: bytes(col::RESOURCES)?,
            raw: bytes(col::RAW)?,
        })
    }

    /// Reads the group's `rows` rows, appending those in `wanted` (all when `None`) to `out`.
    fn read(mut self, rows: usize, wanted: Option<&[u64]>, out: &mut Vec<StoredRow>) -> Result<()> {
        let mut index = Vec::new();
        let mut done = 0;
        while done < rows {
            let n = (rows - done).min(READ_BATCH);
            index.clear();
            read_required(&mut self.index, n, &mut index, self.path)?;
            let keep: Vec<bool> = match wanted {
                None => vec![true; n],
                Some(w) => index
                    .iter()
                    .map(|&i| u64::try_from(i).is_ok_and(|i| w.binary_search(&i).is_ok()))
                    .collect(),
            };
            if keep.contains(&true) {
                self.read_batch(&index, &keep, out)?;
            } else {
                self.skip_batch(n)?;
            }
            done += n;
        }
        Ok(())
    }

    fn skip_batch(&mut self, n: usize) -> Result<()> {
        let path = self.path;
        let short = |skipped: usize| {
            if skipped == n {
                Ok(())
            } else {
                Err(damaged(path, "a column has fewer rows than its row group"))
            }
        };
        let skip = |r: std::result::Result<usize, ParquetError>| {
            r.map_err(pq_err("read", path)).and_then(short)
        };
        skip(self.time.skip_records(n))?;
        skip(self.received_at.skip_records(n))?;
        skip(self.source.skip_records(n))?;
        skip(self.class_uid.skip_records(n))?;
        skip(self.activity_id.skip_records(n))?;
        skip(self.severity_id.skip_records(n))?;
        skip(self.outcome.skip_records(n))?;
        for c in &mut self.optional {
            skip(c.skip_records(n))?;
        }
        skip(self.actor_ids.skip_records(n))?;
        skip(self.resources.skip_records(n))?;
        skip(self.raw.skip_records(n))
    }

    /// Reads the next `index.len()` rows of every column, keeping those marked in `keep`.
    fn read_batch(&mut self, index: &[i64], keep: &[bool], out: &mut Vec<StoredRow>) -> Result<()> {
        let path = self.path;
        let n = index.len();
        let bad = |what: &str| damaged(path, format!("a row has an invalid {what}"));
        let kept = |values: &[i64]| {
            values
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| *v)
                .collect::<Vec<_>>()
        };
        let int64 = |r: &mut ColumnReaderImpl<Int64Type>| -> Result<Vec<i64>> {
            let mut v = Vec::with_capacity(n);
            read_required(r, n, &mut v, path)?;
            Ok(kept(&v))
        };
        let int32 = |r: &mut ColumnReaderImpl<Int32Type>| -> Result<Vec<i32>> {
            let mut v = Vec::with_capacity(n);
            read_required(r, n, &mut v, path)?;
            Ok(v.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| *v)
                .collect())
        };
        let indices = kept(index);
        let time = int64(&mut self.time)?;
        let received_at = int64(&mut self.received_at)?;
        let class_uid = int32(&mut self.class_uid)?;
        let activity_id = int32(&mut self.activity_id)?;
        let severity_id = int32(&mut self.severity_id)?;
        let source = read_strings(&mut self.source, n, keep, path)?;
        let outcome = read_strings(&mut self.outcome, n, keep, path)?;
        let mut optional = Vec::with_capacity(self.optional.len());
        for c in &mut self.optional {
            optional.push(read_optional(c, n, keep, path)?.into_iter());
        }
        let actor_ids = read_lists(&mut self.actor_ids, n, keep, path)?;
        let resources = read_lists(&mut self.resources, n, keep, path)?;
        let raw = read_bytes(&mut self.raw, n, keep, path)?;

        let mut source = source.into_iter();
        let mut outcome = outcome.into_iter();
        let mut actor_ids = actor_ids.into_iter();
        let mut resources = resources.into_iter();
        let mut raw = raw.into_iter();
        let mut optional = optional.into_iter();
        let mut next_optional = || optional.next().unwrap_or_default();
        let (mut actor, mut action, mut service, mut ip) = (
            next_optional(),
            next_optional(),
            next_optional(),
            next_optional(),
        );
        let (mut account, mut region, mut user_agent, mut status_code) = (
            next_optional(),
            next_optional(),
            next_optional(),
            next_optional(),
        );
        let lost = || damaged(path, "a column has fewer rows than its row group");
        for (i, index) in indices.into_iter().enumerate() {
            let get_i64 = |v: &[i64]| v.get(i).copied().ok_or_else(lost);
            let get_i32 = |v: &[i32]| v.get(i).copied().ok_or_else(lost);
            let outcome_text = outcome.next().ok_or_else(lost)?;
            let row = Row {
                index: u64::try_from(index).map_err(|_| bad("index"))?,
                time: get_i64(&time)?,
                source: source.next().ok_or_else(lost)?,
                class_uid: u32::try_from(get_i32(&class_uid)?).map_err(|_| bad("class_uid"))?,
                activity_id: u8::try_from(get_i32(&activity_id)?)
                    .map_err(|_| bad("activity_id"))?,
                outcome: known_outcome(&outcome_text).ok_or_else(|| bad("outcome"))?,
                severity_id: u8::try_from(get_i32(&severity_id)?)
                    .map_err(|_| bad("severity_id"))?,
                actor: actor.next().ok_or_else(lost)?,
                actor_ids: actor_ids.next().ok_or_else(lost)?,
                action: action.next().ok_or_else(lost)?,
                service: service.next().ok_or_else(lost)?,
                resources: resources.next().ok_or_else(lost)?,
                ip: ip.next().ok_or_else(lost)?,
                account: account.next().ok_or_else(lost)?,
                region: region.next().ok_or_else(lost)?,
                user_agent: user_agent.next().ok_or_else(lost)?,
                status_code: status_code.next().ok_or_else(lost)?,
            };
            out.push(StoredRow {
                row,
                received_at_ms: get_i64(&received_at)?,
                raw: raw.next().ok_or_else(lost)?,
            });
        }
        Ok(())
    }
}

/// The four outcomes a [`Row`] holds.
fn known_outcome(s: &str) -> Option<&'static str> {
    ["success", "failure", "unknown", "other"]
        .into_iter()
        .find(|o| *o == s)
}

/// Reads `n` rows of a required, non-repeated column into `values`.
fn read_required<T: parquet::data_type::DataType>(
    r: &mut ColumnReaderImpl<T>,
    n: usize,
    values: &mut Vec<T::T>,
    path: &Path,
) -> Result<()> {
    let start = values.len();
    let (records, _, _) = r
        .read_records(n, None, None, values)
        .map_err(pq_err("read", path))?;
    if records != n || values.len() - start != n {
        return Err(damaged(path, "a column has fewer rows than its row group"));
    }
    Ok(())
}

/// The bytes of a decoded value. Decoded values always hold data; this checks rather than
/// letting [`ByteArray::data`] panic.
fn value_bytes<'v>(v: &'v ByteArray, path: &Path) -> Result<&'v [u8]> {
    if *v == ByteArray::new() {
        return Err(damaged(path, "a value is missing"));
    }
    Ok(v.data())
}

fn utf8(v: &ByteArray, path: &Path) -> Result<CompactString> {
    std::str::from_utf8(value_bytes(v, path)?)
        .map(CompactString::from)
        .map_err(|_| damaged(path, "a string column holds invalid UTF-8"))
}

/// Reads `n` rows of a required byte-array column, keeping those marked in `keep`.
fn read_bytes(
    r: &mut ColumnReaderImpl<ByteArrayType>,
    n: usize,
    keep: &[bool],
    path: &Path,
) -> Result<Vec<Vec<u8>>> {
    let mut values = Vec::with_capacity(n);
    read_required(r, n, &mut values, path)?;
    values
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(v, _)| value_bytes(v, path).map(<[u8]>::to_vec))
        .collect()
}

/// Reads `n` rows of a required string column, keeping those marked in `keep`.
fn read_strings(
    r: &mut ColumnReaderImpl<ByteArrayType>,
    n: usize,
    keep: &[bool],
    path: &Path,
) -> Result<Vec<CompactString>> {
    let mut values = Vec::with_capacity(n);
    read_required(r, n, &mut values, path)?;
    values
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(v, _)| utf8(v, path))
        .collect()
}

/// Reads `n` rows of an optional string column, keeping those marked in `keep`.
fn read_optional(
    r: &mut ColumnReaderImpl<ByteArrayType>,
    n: usize,
    keep: &[bool],
    path: &Path,
) -> Result<Vec<Option<CompactString>>> {
    let mut def = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let (records, _, _) = r
        .read_records(n, Some(&mut def), None, &mut values)
        .map_err(pq_err("read", path))?;
    if records != n || def.len() != n {
        return Err(damaged(path, "a column has fewer rows than its row group"));
    }
    let mut values = values.iter();
    let mut out = Vec::new();
    for (d, k) in def.iter().zip(keep) {
        let v = match d {
            0 => None,
            1 => Some(
                values
                    .next()
                    .ok_or_else(|| damaged(path, "a value is missing"))?,
            ),
            _ => return Err(damaged(path, "a definition level is out of range")),
        };
        if *k {
            out.push(v.map(|v| utf8(v, path)).transpose()?);
        }
    }
    if values.next().is_some() {
        return Err(damaged(path, "a column has more values than rows"));
    }
    Ok(out)
}

/// Reads `n` rows of a list-of-strings column, keeping those marked in `keep`.
fn read_lists(
    r: &mut ColumnReaderImpl<ByteArrayType>,
    n: usize,
    keep: &[bool],
    path: &Path,
) -> Result<Vec<Vec<CompactString>>> {
    let mut def = Vec::with_capacity(n);
    let mut rep = Vec::with_capacity(n);
    let mut values = Vec::new();
    let (records, _, levels) = r
        .read_records(n, Some(&mut def), Some(&mut rep), &mut values)
        .map_err(pq_err("read", path))?;
    if records != n || def.len() != levels || rep.len() != levels {
        return Err(damaged(
            path,
            "a list column has fewer rows than its row group",
        ));
    }
    let mut values = values.iter();
    let mut keep = keep.iter();
    let mut out = Vec::new();
    // The list being read, when kept.
    let mut current: Option<Vec<CompactString>> = None;
    let mut started = false;
    for (&d, &r) in def.iter().zip(&rep) {
        match r {
            0 => {
                out.extend(current.take());
                started = true;
                let k = keep.next().ok_or_else(|| {
                    damaged(path, "a list column has more rows than its row group")
                })?;
                if *k {
                    current = Some(Vec::new());
                }
            }
            1 if started => {}
            _ => return Err(damaged(path, "a repetition level is out of place")),
        }
        match (d, r) {
            (0, 0) => {}
            (1, _) => {
                let v = values
                    .next()
                    .ok_or_else(|| damaged(path, "a list value is missing"))?;
                if let Some(list) = &mut current {
                    list.push(utf8(v, path)?);
                }
            }
            _ => return Err(damaged(path, "a definition level is out of place")),
        }
    }
    out.extend(current);
    if keep.next().is_some() || values.next().is_some() {
        return Err(damaged(path, "a list column's levels and values disagree"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parses_with_expected_columns() {
        let d = SchemaDescriptor::new(schema().unwrap());
        assert_eq!(d.num_columns(), col::COUNT);
        let names: Vec<String> = d.columns().iter().map(|c| c.path().string()).collect();
        assert_eq!(names[col::INDEX], "index");
        assert_eq!(names[col::OUTCOME], "outcome");
        for (i, name) in OPTIONAL.iter().enumerate() {
            assert_eq!(names[col::OPTIONAL + i], *name);
        }
        assert_eq!(names[col::ACTOR_IDS], "actor_ids.list.element");
        assert_eq!(names[col::RESOURCES], "resources.list.element");
        assert_eq!(names[col::RAW], "raw");
    }

    #[test]
    fn outcomes_map_back() {
        for o in ["success", "failure", "unknown", "other"] {
            assert_eq!(known_outcome(o), Some(o));
        }
        assert_eq!(known_outcome("Success"), None);
        assert_eq!(known_outcome(""), None);
    }

    #[test]
    fn wanted_is_sorted_and_deduplicated() {
        assert!(matches!(sorted(&[1, 2, 5]), Cow::Borrowed(_)));
        assert_eq!(&*sorted(&[5, 1, 2, 1]), &[1, 2, 5]);
    }
}
