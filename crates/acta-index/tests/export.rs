#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Parquet export files: round trips, row groups and their checksums, damage, sizes, and an
//! independent engine (DuckDB and pyarrow, from Python) reading what acta writes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use acta_index::export::{self, ExportError, ExportWriter, StoredRow};
use acta_index::{CompactString, Row};

/// SplitMix64: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    fn maybe(&mut self, from: &[&str]) -> Option<CompactString> {
        (self.below(4) != 0).then(|| self.pick(from).into())
    }

    fn hex(&mut self, n: usize) -> String {
        let mut s = String::new();
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
}

const OUTCOMES: [&str; 4] = ["success", "failure", "unknown", "other"];

/// A row exercising every field variant: `None` and `Some`, empty, one- and many-element lists,
/// unicode, empty strings; with a raw record that is sometimes not UTF-8.
fn varied(index: u64, rng: &mut Rng) -> StoredRow {
    let names = ["alice", "bob", "Zoë", "运维", "svc-deploy", ""];
    let list = |rng: &mut Rng| -> Vec<CompactString> {
        let n = rng.below(4);
        (0..n)
            .map(|i| {
                format!(
                    "{}-{i}",
                    rng.pick(&["arn:aws:iam::1:user/x", "ns/pod", "ключ", "b"])
                )
                .into()
            })
            .collect()
    };
    let row = Row {
        index,
        time: match index % 50 {
            0 => -1_000,
            1 => 0,
            _ => 1_700_000_000_000 + rng.below(10_000_000_000) as i64,
        },
        source: rng
            .pick(&["cloudtrail", "k8s-audit", "pgaudit", "sshd"])
            .into(),
        class_uid: [3001, 3002, 6003, 1001][rng.below(4) as usize],
        activity_id: rng.below(256) as u8,
        outcome: OUTCOMES[rng.below(4) as usize],
        severity_id: rng.below(7) as u8,
        actor: rng.maybe(&names),
        actor_ids: list(rng),
        action: rng.maybe(&[
            "GetObject",
            "PutObject",
            "AssumeRole",
            "ConsoleLogin",
            "löschen",
        ]),
        service: rng.maybe(&["s3.amazonaws.com", "sts.amazonaws.com", "kube-apiserver"]),
        resources: list(rng),
        ip: rng.maybe(&["10.0.0.1", "2001:db8::1", "not-an-ip"]),
        account: rng.maybe(&["123456789012", "000000000000"]),
        region: rng.maybe(&["us-east-1", "eu-west-3"]),
        user_agent: rng.maybe(&["aws-cli/2.15", "kubectl/v1.30 (linux/amd64)", "🦀"]),
        status_code: rng.maybe(&["AccessDenied", "200", ""]),
    };
    let raw = match index % 7 {
        0 => vec![0xff, 0xfe, 0x00, index as u8, 0x80],
        1 => Vec::new(),
        _ => format!("{{\"i\":{index},\"n\":\"{}\"}}", rng.hex(20)).into_bytes(),
    };
    StoredRow {
        row,
        received_at_ms: 1_700_000_000_000 + index as i64,
        raw,
    }
}

fn varied_rows(range: std::ops::Range<u64>) -> Vec<StoredRow> {
    let mut rng = Rng(range.start);
    range.map(|i| varied(i, &mut rng)).collect()
}

fn push_all(w: &mut ExportWriter, rows: &[StoredRow]) {
    for r in rows {
        w.push(&r.row, r.received_at_ms, &r.raw).unwrap();
    }
}

/// The names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The row groups of a Parquet file, from its footer.
fn row_groups(path: &Path) -> Vec<parquet::file::metadata::RowGroupMetaData> {
    use parquet::file::reader::FileReader;
    let reader =
        parquet::file::serialized_reader::SerializedFileReader::new(fs::File::open(path).unwrap())
            .unwrap();
    reader.metadata().row_groups().to_vec()
}

#[test]
fn round_trip_of_varied_rows_and_wanted_subsets() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("export.parquet");
    let rows = varied_rows(0..700);
    // The rows hold every variant the schema must carry.
    assert!(rows.iter().any(|r| std::str::from_utf8(&r.raw).is_err()));
    assert!(rows.iter().any(|r| r.raw.is_empty()));
    assert!(rows.iter().any(|r| r.row.actor_ids.is_empty()));
    assert!(rows.iter().any(|r| r.row.resources.len() > 1));
    assert!(rows.iter().any(|r| r.row.actor.is_none()));
    assert!(rows.iter().any(|r| r.row.actor.as_deref() == Some("")));
    assert!(rows.iter().any(|r| r.row.time < 0));

    let mut w = ExportWriter::create(&path, &[]).unwrap();
    push_all(&mut w, &rows);
    // Until finished, the rows are in a hidden temporary file beside the export.
    assert!(!path.exists());
    let during = names(tmp.path());
    assert_eq!(during.len(), 1);
    assert!(during[0].starts_with('.'), "{during:?}");
    assert_eq!(w.finish().unwrap(), 700);
    assert_eq!(names(tmp.path()), ["export.parquet"]);

    // Everything reads back equal.
    assert_eq!(export::read_file(&path, None).unwrap(), rows);

    // Subsets: sorted, unsorted with duplicates and absent indices, none present, empty.
    let got = export::read_file(&path, Some(&[300, 301, 450, 698])).unwrap();
    assert_eq!(
        got,
        vec![
            rows[300].clone(),
            rows[301].clone(),
            rows[450].clone(),
            rows[698].clone()
        ]
    );
    let got = export::read_file(&path, Some(&[698, 5, 450, 450, 10_000, 300])).unwrap();
    assert_eq!(
        got.iter().map(|r| r.row.index).collect::<Vec<_>>(),
        [5, 300, 450, 698]
    );
    assert!(
        export::read_file(&path, Some(&[700, 10_000, u64::MAX]))
            .unwrap()
            .is_empty()
    );
    assert!(export::read_file(&path, Some(&[])).unwrap().is_empty());
}

#[test]
fn rows_that_cannot_be_stored_are_refused_and_leave_the_writer_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("export.parquet");
    let rows = varied_rows(0..3);
    let mut w = ExportWriter::create(&path, &[]).unwrap();
    push_all(&mut w, &rows[..1]);
    let mut bad = rows[1].row.clone();
    bad.class_uid = u32::MAX;
    let err = w.push(&bad, 0, b"").unwrap_err();
    assert!(
        matches!(err, ExportError::Unrepresentable { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("export.parquet"), "{err}");
    bad = rows[1].row.clone();
    bad.outcome = "";
    assert!(matches!(
        w.push(&bad, 0, b""),
        Err(ExportError::Unrepresentable { index: 1, .. })
    ));
    let mut huge = rows[1].row.clone();
    huge.index = u64::MAX;
    assert!(matches!(
        w.push(&huge, 0, b""),
        Err(ExportError::Unrepresentable { .. })
    ));
    // The refused rows left nothing behind: the file holds exactly the accepted ones.
    push_all(&mut w, &rows[1..]);
    assert_eq!(w.finish().unwrap(), 3);
    assert_eq!(export::read_file(&path, None).unwrap(), rows);

    // An export whose only row was refused is a valid file with no rows.
    let other = tmp.path().join("other.parquet");
    let mut w = ExportWriter::create(&other, &[]).unwrap();
    assert!(w.push(&huge, 0, b"").is_err());
    assert_eq!(w.finish().unwrap(), 0);
    assert!(export::read_file(&other, None).unwrap().is_empty());
}

#[test]
fn row_groups_are_bounded_checksummed_and_skipped_by_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("export.parquet");
    let n = export::ROW_GROUP_ROWS as u64 * 2 + 1000;
    let mut w = ExportWriter::create(&path, &[]).unwrap();
    let mut rng = Rng(1);
    let mut expected = Vec::new();
    for i in 0..n {
        let r = varied(i, &mut rng);
        w.push(&r.row, r.received_at_ms, &r.raw).unwrap();
        if i % 10_007 == 3 || i == n - 1 {
            expected.push(r);
        }
    }
    // Full row groups went to the temporary file already.
    let during = names(tmp.path());
    assert_eq!(during.len(), 1);
    assert!(fs::metadata(tmp.path().join(&during[0])).unwrap().len() > 1000);
    assert_eq!(w.finish().unwrap(), n);
    assert_eq!(names(tmp.path()), ["export.parquet"]);

    let groups = row_groups(&path);
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0].num_rows(), export::ROW_GROUP_ROWS as i64);
    // One checksum per row group.
    let crcs = &key_values(&path)[export::CRC_KEY];
    assert_eq!(crcs.split(',').count(), 3, "{crcs}");

    let wanted: Vec<u64> = expected.iter().map(|r| r.row.index).collect();
    assert_eq!(export::read_file(&path, Some(&wanted)).unwrap(), expected);
    assert_eq!(export::read_file(&path, None).unwrap().len() as u64, n);

    // Wreck the first row group's raw column: indices of the last row group still read, which
    // shows the first group was skipped by its statistics; reading it fails its checksum.
    let raw = groups[0].columns().last().unwrap();
    let (start, len) = raw.byte_range();
    let mut bytes = fs::read(&path).unwrap();
    for b in &mut bytes[start as usize + 100..(start + len) as usize - 100] {
        *b = 0x55;
    }
    fs::write(&path, &bytes).unwrap();
    let tail = [n - 2, n - 1];
    assert_eq!(export::read_file(&path, Some(&tail)).unwrap().len(), 2);
    let err = export::read_file(&path, Some(&[5])).unwrap_err();
    assert!(
        matches!(err, ExportError::Damaged { .. }) && err.to_string().contains("checksum"),
        "{err}"
    );
    assert!(export::read_file(&path, None).is_err());
}

#[test]
fn large_raw_records_close_row_groups_early() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("export.parquet");
    let mut rows = varied_rows(0..40);
    for (i, r) in rows.iter_mut().enumerate() {
        r.raw = vec![b'a' + (i % 26) as u8; 1 << 20];
    }
    assert_eq!(export::write_parquet(&path, &rows, &[]).unwrap(), 40);
    // A row group closes at about 16 MiB of values: 1 MiB records go 16 to a group.
    let groups: Vec<i64> = row_groups(&path).iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, [16, 16, 8]);
    assert_eq!(export::read_file(&path, None).unwrap(), rows);
}

#[test]
fn damaged_exports_are_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("export.parquet");
    let rows = varied_rows(0..400);
    export::write_parquet(&path, &rows, &[]).unwrap();
    let good = fs::read(&path).unwrap();

    // Truncated at many lengths.
    for len in [0, 3, 4, 8, good.len() / 2, good.len() - 9, good.len() - 1] {
        fs::write(&path, &good[..len]).unwrap();
        let err = export::read_file(&path, None).unwrap_err();
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }

    // One byte flipped at a time, across the whole file: an error or, where the byte does not
    // matter (padding, statistics), the rows exactly; never a panic escaping, never other rows.
    let wanted = [1, 200, 399];
    let mut errors = 0;
    let mut step = (good.len() / 600).max(1);
    if step.is_multiple_of(2) {
        step += 1;
    }
    for at in (0..good.len()).step_by(step) {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        fs::write(&path, &bad).unwrap();
        match export::read_file(&path, None) {
            Ok(back) => assert_eq!(back, rows, "flipped byte {at} changed the rows silently"),
            Err(_) => errors += 1,
        }
        if let Ok(some) = export::read_file(&path, Some(&wanted)) {
            let expected: Vec<_> = wanted.iter().map(|&i| rows[i as usize].clone()).collect();
            assert_eq!(
                some, expected,
                "flipped byte {at} changed the rows silently"
            );
        }
    }
    println!(
        "{errors} of {} flipped files were errors",
        good.len().div_ceil(step)
    );
    assert!(errors > 0);
}

#[test]
fn export_round_trip_with_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("export.parquet");
    // An export holds any indices in any order.
    let mut rows = varied_rows(0..50);
    rows.reverse();
    rows.retain(|r| r.row.index % 3 != 0);
    let md = vec![
        ("acta.checkpoint.size".to_owned(), "50".to_owned()),
        ("acta.query".to_owned(), "action:GetObject".to_owned()),
    ];
    assert_eq!(
        export::write_parquet(&path, &rows, &md).unwrap(),
        rows.len() as u64
    );
    assert_eq!(export::read_file(&path, None).unwrap(), rows);
    assert_eq!(
        export::read_file(&path, Some(&[49, 1, 2]))
            .unwrap()
            .iter()
            .map(|r| r.row.index)
            .collect::<Vec<_>>(),
        [49, 2, 1]
    );
    let kv = key_values(&path);
    assert_eq!(
        kv.get("acta.checkpoint.size").map(String::as_str),
        Some("50")
    );
    assert_eq!(
        kv.get("acta.query").map(String::as_str),
        Some("action:GetObject")
    );
    assert_eq!(
        kv.get(export::SCHEMA_VERSION_KEY).map(String::as_str),
        Some(export::SCHEMA_VERSION)
    );
    // Only the file is left.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);

    // Dropped unfinished: no file, no temporary file.
    let other = tmp.path().join("other.parquet");
    let mut w = ExportWriter::create(&other, &[]).unwrap();
    w.push(&rows[0].row, 0, b"x").unwrap();
    drop(w);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);

    // An empty export is a valid file with no rows.
    export::write_parquet(&other, Vec::<StoredRow>::new(), &[]).unwrap();
    assert!(export::read_file(&other, None).unwrap().is_empty());
}

fn key_values(path: &Path) -> BTreeMap<String, String> {
    use parquet::file::reader::FileReader;
    let reader =
        parquet::file::serialized_reader::SerializedFileReader::new(fs::File::open(path).unwrap())
            .unwrap();
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect()
}

/// A CloudTrail-like record of about 1 KB and its row.
fn cloudtrail(index: u64, rng: &mut Rng) -> StoredRow {
    const EVENTS: [(&str, &str); 12] = [
        ("s3.amazonaws.com", "GetObject"),
        ("s3.amazonaws.com", "PutObject"),
        ("s3.amazonaws.com", "ListBuckets"),
        ("sts.amazonaws.com", "AssumeRole"),
        ("sts.amazonaws.com", "GetCallerIdentity"),
        ("iam.amazonaws.com", "CreateUser"),
        ("iam.amazonaws.com", "AttachUserPolicy"),
        ("ec2.amazonaws.com", "DescribeInstances"),
        ("ec2.amazonaws.com", "RunInstances"),
        ("kms.amazonaws.com", "Decrypt"),
        ("lambda.amazonaws.com", "Invoke"),
        ("signin.amazonaws.com", "ConsoleLogin"),
    ];
    const REGIONS: [&str; 6] = [
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-south-1",
        "sa-east-1",
    ];
    const AGENTS: [&str; 5] = [
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12 prompt/off command/s3.cp",
        "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8",
        "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/s3#1.53.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0 Safari/537.36",
        "console.amazonaws.com",
    ];
    let (service, action) = EVENTS[rng.below(EVENTS.len() as u64) as usize];
    let account = format!("{:012}", 100_000_000_000 + rng.below(5));
    let user = format!("user-{}", rng.below(300));
    let arn = format!("arn:aws:iam::{account}:user/{user}");
    let key_id = format!("AKIA{}", rng.hex(16).to_uppercase());
    let ip = format!("203.0.113.{}", rng.below(200));
    let region = REGIONS[rng.below(REGIONS.len() as u64) as usize];
    let agent = AGENTS[rng.below(AGENTS.len() as u64) as usize];
    let denied = rng.below(20) == 0;
    let bucket = format!("acme-data-{}", rng.below(40));
    let object = format!("reports/2024/{:02}/{}.csv", rng.below(12) + 1, rng.hex(12));
    let time = 1_717_000_000_000 + index as i64 * 37 + rng.below(1000) as i64;
    let raw = format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDA{pid}","arn":"{arn}","accountId":"{account}","accessKeyId":"{key_id}","userName":"{user}","sessionContext":{{"attributes":{{"creationDate":"2024-05-29T12:00:00Z","mfaAuthenticated":"false"}}}}}},"eventTime":"{time}","eventSource":"{service}","eventName":"{action}","awsRegion":"{region}","sourceIPAddress":"{ip}","userAgent":"{agent}",{error}"requestParameters":{{"bucketName":"{bucket}","key":"{object}","Host":"{bucket}.s3.{region}.amazonaws.com"}},"responseElements":null,"additionalEventData":{{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"{amzid}","bytesTransferredOut":{bytes}}},"requestID":"{req}","eventID":"{eid}","readOnly":true,"resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::{bucket}/{object}"}},{{"accountId":"{account}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::{bucket}"}}],"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"{account}","eventCategory":"Data","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{bucket}.s3.{region}.amazonaws.com"}}}}"#,
        pid = rng.hex(17).to_uppercase(),
        error = if denied {
            r#""errorCode":"AccessDenied","errorMessage":"Access Denied","#
        } else {
            ""
        },
        amzid = rng.hex(56),
        bytes = rng.below(1 << 20),
        req = rng.hex(16).to_uppercase(),
        eid = rng.hex(32),
    );
    let row = Row {
        index,
        time,
        source: "cloudtrail".into(),
        class_uid: 6003,
        activity_id: 99,
        outcome: if denied { "failure" } else { "success" },
        severity_id: 1,
        actor: Some(user.as_str().into()),
        actor_ids: vec![user.into(), arn.into(), key_id.into()],
        action: Some(action.into()),
        service: Some(service.into()),
        resources: vec![
            format!("arn:aws:s3:::{bucket}/{object}").into(),
            format!("arn:aws:s3:::{bucket}").into(),
        ],
        ip: Some(ip.into()),
        account: Some(account.into()),
        region: Some(region.into()),
        user_agent: Some(agent.into()),
        status_code: denied.then(|| "AccessDenied".into()),
    };
    StoredRow {
        row,
        received_at_ms: time + 300_000 + rng.below(60_000) as i64,
        raw: raw.into_bytes(),
    }
}

#[test]
fn size_and_speed_of_cloudtrail_like_rows() {
    const N: u64 = 100_000;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("export.parquet");
    let mut rng = Rng(42);
    let rows: Vec<StoredRow> = (0..N).map(|i| cloudtrail(i, &mut rng)).collect();
    let raw_bytes: usize = rows.iter().map(|r| r.raw.len()).sum();

    let start = Instant::now();
    let mut w = ExportWriter::create(&path, &[]).unwrap();
    push_all(&mut w, &rows);
    assert_eq!(w.finish().unwrap(), N);
    let write = start.elapsed();
    let bytes = fs::metadata(&path).unwrap().len();

    let start = Instant::now();
    let back = export::read_file(&path, None).unwrap();
    let read = start.elapsed();
    assert_eq!(back.len() as u64, N);
    assert!(back == rows);

    let wanted: Vec<u64> = (0..N).step_by(9_973).collect();
    let start = Instant::now();
    let some = export::read_file(&path, Some(&wanted)).unwrap();
    let read_some = start.elapsed();
    assert_eq!(some.iter().map(|r| r.row.index).collect::<Vec<_>>(), wanted);

    println!(
        "{N} CloudTrail-like rows, raw {:.0} B/row: export {} bytes = {:.1} B/row ({:.1}% of raw); \
         write {:.2?} ({:.0} rows/s), read all {:.2?} ({:.0} rows/s), read {} scattered rows {:.2?}",
        raw_bytes as f64 / N as f64,
        bytes,
        bytes as f64 / N as f64,
        100.0 * bytes as f64 / raw_bytes as f64,
        write,
        N as f64 / write.as_secs_f64(),
        read,
        N as f64 / read.as_secs_f64(),
        wanted.len(),
        read_some,
    );
    assert!(
        bytes < raw_bytes as u64,
        "an export is larger than its raw records"
    );

    // Where the bytes go, per column.
    let mut per_column: BTreeMap<String, i64> = BTreeMap::new();
    for g in row_groups(&path) {
        for c in g.columns() {
            *per_column.entry(c.column_path().string()).or_default() += c.compressed_size();
        }
    }

    let mut per_column: Vec<_> = per_column.into_iter().collect();
    per_column.sort_by_key(|(_, b)| -b);
    let shown: Vec<String> = per_column
        .iter()
        .map(|(c, b)| format!("{c} {:.1}", *b as f64 / N as f64))
        .collect();
    println!("bytes per row by column: {}", shown.join(", "));
}

/// The Python that runs the engine test: `ACTA_TEST_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("ACTA_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

const ENGINES_PY: &str = r#"
import json, sys
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

out = {"versions": {"duckdb": duckdb.__version__, "pyarrow": pa.__version__}, "files": {}}
for path in sys.argv[1:]:
    con = duckdb.connect()
    src = "read_parquet('" + path.replace("'", "''") + "')"
    r = {}
    r["count"] = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
    r["by_action"] = [[a, n] for a, n in con.execute(
        f"SELECT action, count(*) FROM {src} GROUP BY action").fetchall()]
    r["duckdb_types"] = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    r["duckdb_index_10_to_19"] = con.execute(
        f"SELECT count(*) FROM {src} WHERE index >= 10 AND index < 20").fetchone()[0]
    r["duckdb_time_ms"] = {str(i): t for i, t in con.execute(
        f"SELECT index, epoch_ms(time) FROM {src}").fetchall()}
    r["duckdb_actor_ids_len"] = {str(i): n for i, n in con.execute(
        f"SELECT index, len(actor_ids) FROM {src}").fetchall()}
    t = pq.read_table(path)
    r["arrow_types"] = {f.name: str(f.type) for f in t.schema}
    r["index"] = t.column("index").to_pylist()
    r["time_ms"] = t.column("time").cast(pa.int64()).to_pylist()
    r["received_at_ms"] = t.column("received_at").cast(pa.int64()).to_pylist()
    r["actor_ids"] = t.column("actor_ids").to_pylist()
    r["resources"] = t.column("resources").to_pylist()
    r["resource"] = t.column("resource").to_pylist()
    r["outcome"] = t.column("outcome").to_pylist()
    r["raw_hex"] = [b.hex() for b in t.column("raw").to_pylist()]
    md = pq.read_metadata(path).metadata or {}
    r["metadata"] = {k.decode(): v.decode() for k, v in md.items()}
    out["files"][path] = r
print(json.dumps(out))
"#;

#[test]
fn independent_engines_read_exports() {
    let python = python();
    let probe = Command::new(&python)
        .args(["-c", "import duckdb, pyarrow"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run Python `{python}` (ACTA_TEST_PYTHON or python3): {e}; ./scripts/test installs a virtualenv with duckdb and pyarrow and points ACTA_TEST_PYTHON at it"));
    assert!(
        probe.status.success(),
        "Python `{python}` cannot import duckdb and pyarrow: {}\n./scripts/test installs them (a virtualenv with pinned versions, exported as ACTA_TEST_PYTHON); \
         or set ACTA_TEST_PYTHON to a Python that has them",
        String::from_utf8_lossy(&probe.stderr)
            .lines()
            .last()
            .unwrap_or_default()
    );

    let tmp = tempfile::tempdir().unwrap();
    // All rows in ledger order, without metadata; and a subset in reverse order, with it.
    let rows = varied_rows(0..500);
    let all = tmp.path().join("all.parquet");
    export::write_parquet(&all, &rows, &[]).unwrap();
    let subset = tmp.path().join("subset.parquet");
    let exported: Vec<&StoredRow> = rows
        .iter()
        .filter(|r| r.row.action.is_some())
        .rev()
        .collect();
    let md = vec![
        ("acta.checkpoint.size".to_owned(), "500".to_owned()),
        ("acta.checkpoint.root".to_owned(), "q83vEjRWeJA=".to_owned()),
        ("acta.query".to_owned(), "action:* | ünïcode".to_owned()),
    ];
    export::write_parquet(&subset, exported.iter().copied(), &md).unwrap();

    let script = tmp.path().join("engines.py");
    fs::write(&script, ENGINES_PY).unwrap();
    let run = Command::new(&python)
        .arg(&script)
        .arg(&all)
        .arg(&subset)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the engine script failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    println!("engines: {}", out["versions"]);

    for (path, rows, md) in [
        (&all, rows.iter().collect::<Vec<_>>(), &[][..]),
        (&subset, exported, &md[..]),
    ] {
        let r = &out["files"][path.to_str().unwrap()];
        let what = path.display();
        assert_eq!(r["count"], rows.len(), "{what}");

        let mut by_action: BTreeMap<Option<String>, u64> = BTreeMap::new();
        for row in &rows {
            *by_action
                .entry(row.row.action.as_deref().map(str::to_owned))
                .or_default() += 1;
        }
        let duck: BTreeMap<Option<String>, u64> = r["by_action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().map(str::to_owned), p[1].as_u64().unwrap()))
            .collect();
        assert_eq!(duck, by_action, "{what}");

        let types = &r["duckdb_types"];
        assert_eq!(types["index"], "BIGINT");
        assert_eq!(types["time"], "TIMESTAMP WITH TIME ZONE");
        assert_eq!(types["received_at"], "TIMESTAMP WITH TIME ZONE");
        assert_eq!(types["source"], "VARCHAR");
        assert_eq!(types["class_uid"], "INTEGER");
        assert_eq!(types["actor"], "VARCHAR");
        assert_eq!(types["actor_ids"], "VARCHAR[]");
        assert_eq!(types["resources"], "VARCHAR[]");
        assert_eq!(types["raw"], "BLOB");
        let in_10_to_19 = rows
            .iter()
            .filter(|r| (10..20).contains(&r.row.index))
            .count();
        assert_eq!(r["duckdb_index_10_to_19"], in_10_to_19);

        let types = &r["arrow_types"];
        assert_eq!(types["index"], "int64");
        assert_eq!(types["time"], "timestamp[ms, tz=UTC]");
        assert_eq!(types["received_at"], "timestamp[ms, tz=UTC]");
        assert_eq!(types["outcome"], "string");
        assert_eq!(types["raw"], "binary");
        for list in ["actor_ids", "resources"] {
            let t = types[list].as_str().unwrap();
            assert!(
                t.starts_with("list<") && t.contains("string"),
                "{list}: {t}"
            );
        }

        let indices: Vec<u64> = rows.iter().map(|r| r.row.index).collect();
        assert_eq!(r["index"], serde_json::json!(indices));
        for (i, row) in rows.iter().enumerate() {
            let key = row.row.index.to_string();
            assert_eq!(r["time_ms"][i], row.row.time, "{what} row {key}");
            assert_eq!(r["duckdb_time_ms"][&key], row.row.time, "{what} row {key}");
            assert_eq!(r["received_at_ms"][i], row.received_at_ms);
            assert_eq!(r["actor_ids"][i], serde_json::json!(row.row.actor_ids));
            assert_eq!(r["duckdb_actor_ids_len"][&key], row.row.actor_ids.len());
            assert_eq!(r["resources"][i], serde_json::json!(row.row.resources));
            assert_eq!(r["resource"][i], serde_json::json!(row.row.resource()));
            assert_eq!(r["outcome"][i], row.row.outcome);
            let hex: String = row.raw.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(r["raw_hex"][i], hex, "{what} row {key}");
        }

        let meta = &r["metadata"];
        assert_eq!(meta[export::SCHEMA_VERSION_KEY], export::SCHEMA_VERSION);
        for (k, v) in md {
            assert_eq!(meta[k], *v, "{what} metadata {k}");
        }
    }
}
