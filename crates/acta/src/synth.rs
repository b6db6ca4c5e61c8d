//! Synthetic CloudTrail-shaped events for benchmarks.
//!
//! The events look like real management events (same fields, nesting and sizes, about 1 KB) and
//! are spread the way real trails are: a few thousand principals across twenty accounts with
//! Zipf-skewed activity, a few hundred API operations from fifteen services (reads far more common
//! than writes), a million resources with a heavy head, each principal working mostly from its own
//! few addresses, a few percent of calls denied, and times running forward over 90 days. The same
//! seed always gives the same events.

use std::io::Write;

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Samples `0..n` with probability proportional to `1 / (i + 1)^s`.
#[derive(Debug)]
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 0..n {
            acc += 1.0 / ((i + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf
            .partition_point(|c| *c < u)
            .min(self.cdf.len().saturating_sub(1))
    }
}

#[derive(Debug)]
struct Principal {
    kind: &'static str,
    account: String,
    name: String,
    arn: String,
    principal_id: String,
    access_key: String,
    /// For assumed roles: the role's ARN (session issuer).
    issuer: Option<String>,
    ips: [u32; 3],
}

#[derive(Debug)]
struct Action {
    service: &'static str,
    name: String,
    read_only: bool,
    resource_type: &'static str,
    param: &'static str,
}

const SERVICES: &[(&str, &str, &str, &[&str])] = &[
    (
        "s3",
        "AWS::S3::Object",
        "bucketName",
        &[
            "Object",
            "Bucket",
            "BucketPolicy",
            "BucketAcl",
            "BucketEncryption",
            "BucketVersioning",
            "ObjectTagging",
            "BucketLogging",
        ],
    ),
    (
        "ec2",
        "AWS::EC2::Instance",
        "instanceId",
        &[
            "Instances",
            "SecurityGroups",
            "Volumes",
            "Snapshots",
            "Images",
            "KeyPairs",
            "NetworkInterfaces",
            "Vpcs",
            "Subnets",
            "RouteTables",
        ],
    ),
    (
        "iam",
        "AWS::IAM::Role",
        "roleName",
        &[
            "Role",
            "User",
            "Policy",
            "AccessKey",
            "Group",
            "RolePolicy",
            "LoginProfile",
            "InstanceProfile",
        ],
    ),
    (
        "sts",
        "AWS::IAM::Role",
        "roleArn",
        &[
            "CallerIdentity",
            "SessionToken",
            "FederationToken",
            "AccessKeyInfo",
        ],
    ),
    (
        "kms",
        "AWS::KMS::Key",
        "keyId",
        &["Key", "Alias", "Grant", "KeyPolicy", "KeyRotationStatus"],
    ),
    (
        "lambda",
        "AWS::Lambda::Function",
        "functionName",
        &[
            "Function",
            "FunctionConfiguration",
            "Alias",
            "EventSourceMapping",
            "LayerVersion",
        ],
    ),
    (
        "cloudtrail",
        "AWS::CloudTrail::Trail",
        "name",
        &["Trail", "TrailStatus", "EventSelectors", "InsightSelectors"],
    ),
    (
        "rds",
        "AWS::RDS::DBInstance",
        "dBInstanceIdentifier",
        &["DBInstance", "DBSnapshot", "DBCluster", "DBParameterGroup"],
    ),
    (
        "dynamodb",
        "AWS::DynamoDB::Table",
        "tableName",
        &["Table", "Backup", "ContinuousBackups", "TimeToLive"],
    ),
    (
        "secretsmanager",
        "AWS::SecretsManager::Secret",
        "secretId",
        &["Secret", "SecretValue", "ResourcePolicy"],
    ),
    (
        "ssm",
        "AWS::SSM::Parameter",
        "name",
        &["Parameter", "Parameters", "Document", "CommandInvocation"],
    ),
    (
        "logs",
        "AWS::Logs::LogGroup",
        "logGroupName",
        &[
            "LogGroup",
            "LogStream",
            "SubscriptionFilter",
            "RetentionPolicy",
        ],
    ),
    (
        "ecr",
        "AWS::ECR::Repository",
        "repositoryName",
        &["Repository", "Image", "RepositoryPolicy", "LifecyclePolicy"],
    ),
    (
        "eks",
        "AWS::EKS::Cluster",
        "name",
        &["Cluster", "Nodegroup", "Addon", "AccessEntry"],
    ),
    (
        "organizations",
        "AWS::Organizations::Account",
        "accountId",
        &["Account", "Organization", "Policy", "OrganizationalUnit"],
    ),
];

const VERBS: &[(&str, bool, f64)] = &[
    ("Get", true, 10.0),
    ("Describe", true, 10.0),
    ("List", true, 8.0),
    ("Put", false, 1.5),
    ("Create", false, 1.0),
    ("Update", false, 1.0),
    ("Delete", false, 0.4),
    ("Attach", false, 0.2),
];

const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-cloud-amd64 exe/x86_64.debian.12",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.210 lang/python#3.12.2",
    "Terraform/1.7.5 terraform-provider-aws/5.42.0 aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1",
    "console.amazonaws.com",
    "aws-sdk-java/2.25.16 Linux/5.10.213 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10",
    "aws-sdk-go/1.51.6 (go1.21.8; linux; amd64)",
    "kubernetes/v1.29.1-eks-b9c9ed7 aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)",
    "AWS Internal",
    "cloudformation.amazonaws.com",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0",
];

const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-south-1",
    "sa-east-1",
    "ca-central-1",
    "me-south-1",
];

const ERRORS: &[(&str, &str)] = &[
    (
        "AccessDenied",
        "User is not authorized to perform this operation because no identity-based policy allows the action",
    ),
    (
        "UnauthorizedOperation",
        "You are not authorized to perform this operation.",
    ),
    ("ThrottlingException", "Rate exceeded"),
    ("NoSuchEntity", "The role with name cannot be found."),
];

/// Generates events; see the module documentation.
#[derive(Debug)]
pub struct Synth {
    rng: Rng,
    principals: Vec<Principal>,
    principal_dist: Zipf,
    actions: Vec<Action>,
    action_dist: Zipf,
    ip_pool: Vec<u32>,
    start_ms: u64,
    span_ms: u64,
    total: u64,
}

/// Number of distinct resources.
pub const RESOURCES: u64 = 1_000_000;

fn hex_id(rng: &mut Rng, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(*DIGITS.get(rng.below(16)).unwrap_or(&b'0')))
        .collect()
}

fn upper_id(rng: &mut Rng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..len)
        .map(|_| char::from(*CHARS.get(rng.below(32)).unwrap_or(&b'A')))
        .collect()
}

impl Synth {
    /// A generator of `total` events over 90 days ending 2026-11-01.
    pub fn new(seed: u64, total: u64) -> Synth {
        let mut rng = Rng::new(seed);
        let accounts: Vec<String> = (0..20)
            .map(|_| format!("{:012}", rng.next_u64() % 1_000_000_000_000))
            .collect();
        let ip_pool: Vec<u32> = (0..50_000).map(|_| (rng.next_u64() >> 32) as u32).collect();
        let mut principals = Vec::with_capacity(3_000);
        for i in 0..3_000usize {
            let account = accounts
                .get(rng.below(accounts.len()))
                .cloned()
                .unwrap_or_default();
            let roll = rng.below(100);
            let ips = [
                *ip_pool.get(rng.below(ip_pool.len())).unwrap_or(&0),
                *ip_pool.get(rng.below(ip_pool.len())).unwrap_or(&0),
                *ip_pool.get(rng.below(ip_pool.len())).unwrap_or(&0),
            ];
            let access_key = format!("ASIA{}", upper_id(&mut rng, 16));
            let p = if roll < 70 {
                let role = format!(
                    "{}-role-{i}",
                    ["deploy", "ci", "app", "admin", "readonly", "data"][i % 6]
                );
                let session = format!("session-{}", hex_id(&mut rng, 8));
                Principal {
                    kind: "AssumedRole",
                    arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
                    principal_id: format!("AROA{}:{session}", upper_id(&mut rng, 17)),
                    issuer: Some(format!("arn:aws:iam::{account}:role/{role}")),
                    name: role,
                    account,
                    access_key,
                    ips,
                }
            } else if roll < 95 {
                let user = format!("user{i}");
                Principal {
                    kind: "IAMUser",
                    arn: format!("arn:aws:iam::{account}:user/{user}"),
                    principal_id: format!("AIDA{}", upper_id(&mut rng, 17)),
                    issuer: None,
                    name: user,
                    account,
                    access_key: format!("AKIA{}", upper_id(&mut rng, 16)),
                    ips,
                }
            } else if roll < 98 {
                let svc = [
                    "lambda.amazonaws.com",
                    "ec2.amazonaws.com",
                    "ecs-tasks.amazonaws.com",
                ][i % 3];
                Principal {
                    kind: "AWSService",
                    arn: String::new(),
                    principal_id: String::new(),
                    issuer: None,
                    name: svc.into(),
                    account,
                    access_key: String::new(),
                    ips,
                }
            } else {
                Principal {
                    kind: "Root",
                    arn: format!("arn:aws:iam::{account}:root"),
                    principal_id: account.clone(),
                    issuer: None,
                    name: "root".into(),
                    account,
                    access_key: format!("AKIA{}", upper_id(&mut rng, 16)),
                    ips,
                }
            };
            principals.push(p);
        }
        let mut actions = Vec::new();
        let mut weights = Vec::new();
        for (service, resource_type, param, nouns) in SERVICES {
            for noun in *nouns {
                for (verb, read_only, w) in VERBS {
                    let name = if *verb == "List" || *verb == "Describe" {
                        format!("{verb}{noun}s")
                    } else {
                        format!("{verb}{noun}")
                    };
                    actions.push(Action {
                        service,
                        name,
                        read_only: *read_only,
                        resource_type,
                        param,
                    });
                    weights.push(*w);
                }
            }
        }
        // Order actions by weight so the Zipf head lands on common reads.
        let mut order: Vec<usize> = (0..actions.len()).collect();
        order.sort_by(|a, b| {
            let wa = weights.get(*a).copied().unwrap_or(0.0);
            let wb = weights.get(*b).copied().unwrap_or(0.0);
            wb.total_cmp(&wa).then(a.cmp(b))
        });
        let mut sorted = Vec::with_capacity(actions.len());
        let mut taken: Vec<Option<Action>> = actions.into_iter().map(Some).collect();
        for i in order {
            if let Some(a) = taken.get_mut(i).and_then(Option::take) {
                sorted.push(a);
            }
        }
        let action_dist = Zipf::new(sorted.len(), 0.9);
        Synth {
            principal_dist: Zipf::new(principals.len(), 1.1),
            principals,
            actions: sorted,
            action_dist,
            ip_pool,
            rng,
            start_ms: 1_754_438_400_000, // 2025-08-06, 90 days before 2025-11-04
            span_ms: 90 * 86_400_000,
            total: total.max(1),
        }
    }

    /// Number of distinct operations generated.
    #[cfg(test)]
    pub fn action_count(&self) -> usize {
        self.actions.len()
    }

    /// Appends event number `i` (one JSON object, no newline) to `out`.
    pub fn event(&mut self, i: u64, out: &mut Vec<u8>) {
        let rng = &mut self.rng;
        let p = self.principals.get(self.principal_dist.sample(rng));
        let a = self.actions.get(self.action_dist.sample(rng));
        let (Some(p), Some(a)) = (p, a) else { return };
        let t = self.start_ms + i * self.span_ms / self.total + rng.below(1000) as u64;
        let time = format_time(t / 1000);
        let ip = if rng.below(10) < 9 {
            *p.ips.get(rng.below(3)).unwrap_or(&0)
        } else {
            *self
                .ip_pool
                .get(rng.below(self.ip_pool.len()))
                .unwrap_or(&0)
        };
        let ip = format!(
            "{}.{}.{}.{}",
            ip >> 24,
            (ip >> 16) & 255,
            (ip >> 8) & 255,
            ip & 255
        );
        let region = REGIONS
            .get(rng.below(4).min(rng.below(REGIONS.len())))
            .copied()
            .unwrap_or("us-east-1");
        let agent = USER_AGENTS
            .get(rng.below(USER_AGENTS.len()))
            .copied()
            .unwrap_or("");
        // Resources: a heavy head over a million ids.
        let resource = (RESOURCES as f64 * rng.unit().powi(3)) as u64;
        let resource_name = format!("{}-{resource:07}", a.param.to_ascii_lowercase());
        let error = (rng.below(100) < 3)
            .then(|| ERRORS.get(rng.below(ERRORS.len())).copied())
            .flatten();
        let event_id = uuid(rng);
        let request_id = uuid(rng);
        let service = a.service;
        let _ = write!(
            out,
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"{}","principalId":"{}","arn":"{}","accountId":"{}""#,
            p.kind, p.principal_id, p.arn, p.account
        );
        if p.kind == "AWSService" {
            let _ = write!(out, r#","invokedBy":"{}""#, p.name);
        } else {
            let _ = write!(out, r#","accessKeyId":"{}""#, p.access_key);
        }
        match (&p.issuer, p.kind) {
            (Some(issuer), _) => {
                let _ = write!(
                    out,
                    r#","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"{}","arn":"{issuer}","accountId":"{}","userName":"{}"}},"attributes":{{"creationDate":"{time}","mfaAuthenticated":"false"}}}}"#,
                    p.principal_id.split(':').next().unwrap_or(""),
                    p.account,
                    p.name
                );
            }
            (None, "IAMUser") => {
                let _ = write!(out, r#","userName":"{}""#, p.name);
            }
            _ => {}
        }
        let _ = write!(
            out,
            r#"}},"eventTime":"{time}","eventSource":"{service}.amazonaws.com","eventName":"{}","awsRegion":"{region}","sourceIPAddress":"{ip}","userAgent":"{agent}""#,
            a.name
        );
        if let Some((code, message)) = error {
            let _ = write!(out, r#","errorCode":"{code}","errorMessage":"{message}""#);
        }
        let _ = write!(
            out,
            r#","requestParameters":{{"{}":"{resource_name}"}},"responseElements":null,"requestID":"{request_id}","eventID":"{event_id}","readOnly":{},"resources":[{{"accountId":"{}","type":"{}","ARN":"arn:aws:{service}:{region}:{}:{resource_name}"}}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{}","eventCategory":"Management"}}"#,
            a.param, a.read_only, p.account, a.resource_type, p.account, p.account
        );
    }
}

fn uuid(rng: &mut Rng) -> String {
    let h = hex_id(rng, 32);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or(""),
        h.get(8..12).unwrap_or(""),
        h.get(12..16).unwrap_or(""),
        h.get(16..20).unwrap_or(""),
        h.get(20..32).unwrap_or("")
    )
}

/// `2025-08-06T12:34:56Z` from seconds since the epoch.
pub fn format_time(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = crate::units::civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_valid_json_of_about_one_kilobyte() {
        let mut s = Synth::new(7, 10_000);
        assert!(s.action_count() >= 300, "{}", s.action_count());
        let mut total = 0usize;
        let mut actors = std::collections::HashSet::new();
        for i in 0..10_000 {
            let mut buf = Vec::new();
            s.event(i, &mut buf);
            let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert!(v["eventName"].is_string());
            actors.insert(v["userIdentity"]["principalId"].to_string());
            total += buf.len();
        }
        let mean = total / 10_000;
        assert!((900..=1100).contains(&mean), "mean size {mean}");
        assert!(actors.len() > 500, "{} actors", actors.len());
    }

    #[test]
    fn same_seed_same_events() {
        let (mut a, mut b) = (Synth::new(3, 100), Synth::new(3, 100));
        for i in 0..100 {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            a.event(i, &mut x);
            b.event(i, &mut y);
            assert_eq!(x, y);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_754_438_400), "2025-08-06T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
    }
}
