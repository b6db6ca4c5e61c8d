//! Which actions are privileged or destructive.
//!
//! The built-in classification ([`is_privileged`]) reads the action name
//! (`api.operation`) and its service (`api.service.name`) as words: the
//! name is cut at `.`, `/` and `:` into segments, and every segment into
//! lower-case words at other punctuation, spaces, case changes and digits
//! (`PutBucketPolicy` → put, bucket, policy; `org.remove_member` → org |
//! remove, member; `DROP TABLE` → drop, table). The *verb* is the first
//! word of the last segment, or of the one before when the last is a
//! generic `action` (Azure). An action is privileged or destructive when:
//!
//! - its verb destroys, stops or takes away: `delete`, `deletecollection`,
//!   `remove`, `terminate`, `detach`, `disable`, `stop`, `destroy`, `drop`,
//!   `truncate`, `revoke`, `deactivate`, `suspend`, `purge`, `erase`,
//!   `wipe`, `kill`, `deregister`, `disassociate`, `leave`, `transfer`,
//!   `shutdown` (CloudTrail `DeleteTrail`, `StopLogging`, Kubernetes
//!   `delete`, GitHub `repo.destroy`, `org.remove_member`, SQL `DROP
//!   TABLE`);
//! - or a word of its last segment is such a verb in the past tense
//!   (`deleted`, `removed`, `destroyed`, `disabled`, …: GitHub webhook
//!   `repository.deleted`, `org.saml_disabled`);
//! - or its verb grants or escalates by itself: `grant`, `authorize`,
//!   `escalate`, `bind`, `impersonate`, `approve` (SQL `GRANT`, Kubernetes
//!   `escalate`, CloudTrail `AuthorizeSecurityGroupIngress`);
//! - or its verb creates or changes (`put`, `attach`, `update`, `create`,
//!   `set`, `add`, `modify`, `replace`, `change`, `enable`, `assign`,
//!   `upload`, `reset`, `alter`, `write`, `patch`, `invite`, `import`,
//!   `schedule`) and a word of the action or its service names access or
//!   its keys: `policy`, `permission`, `role`, `rolebinding`,
//!   `clusterrole`, `clusterrolebinding`, `acl`, `key`, `credential`,
//!   `password`, `login`, `token`, `secret`, `mfa`, `privilege`, `member`,
//!   `membership`, `admin`, `owner`, `collaborator`, `trust`, `user`,
//!   `group`, `saml`, `oidc`, `sso`, `rbac`, `authorization`, `iam`, `kms`,
//!   `cloudtrail`, `organizations` (singular or plural) — CloudTrail
//!   `PutBucketPolicy`, `CreateAccessKey`, any write to `iam.amazonaws.com`,
//!   GCP `SetIamPolicy`, Kubernetes `create` in `rbac.authorization.k8s.io`,
//!   Azure `Microsoft.Authorization/roleAssignments/write`, SQL `ALTER
//!   ROLE`, GitHub `org.add_member`, `public_key.create`;
//! - or its first segment is a program that changes identity or accounts:
//!   `sudo`, `su`, `doas`, `pkexec`, `useradd`, `userdel`, `usermod`,
//!   `groupadd`, `groupdel`, `groupmod`, `passwd`, `chpasswd`, `gpasswd`
//!   (the syslog sources' `sudo.command`, `su.switch_user`).
//!
//! Reads (`Get…`, `List…`, `Describe…`, `get`, `list`, `watch`, `SELECT`)
//! never are. [`crate::behaviour::PrivilegedConfig`] adds patterns of
//! action names that are, and patterns that are not.

use super::config::PrivilegedConfig;

const DESTRUCTIVE: &[&str] = &[
    "delete",
    "deletecollection",
    "remove",
    "terminate",
    "detach",
    "disable",
    "stop",
    "destroy",
    "drop",
    "truncate",
    "revoke",
    "deactivate",
    "suspend",
    "purge",
    "erase",
    "wipe",
    "kill",
    "deregister",
    "disassociate",
    "leave",
    "transfer",
    "shutdown",
];

const DESTROYED: &[&str] = &[
    "deleted",
    "removed",
    "terminated",
    "detached",
    "disabled",
    "stopped",
    "destroyed",
    "dropped",
    "truncated",
    "revoked",
    "deactivated",
    "suspended",
    "purged",
    "erased",
    "wiped",
    "killed",
    "deregistered",
    "transferred",
];

const ESCALATING: &[&str] = &[
    "grant",
    "authorize",
    "escalate",
    "bind",
    "impersonate",
    "approve",
];

const CHANGING: &[&str] = &[
    "put", "attach", "update", "create", "set", "add", "modify", "replace", "change", "enable",
    "assign", "upload", "reset", "alter", "write", "patch", "invite", "import", "schedule",
];

const ACCESS_NOUNS: &[&str] = &[
    "policy",
    "policies",
    "permission",
    "permissions",
    "role",
    "roles",
    "rolebinding",
    "rolebindings",
    "clusterrole",
    "clusterroles",
    "clusterrolebinding",
    "clusterrolebindings",
    "acl",
    "acls",
    "key",
    "keys",
    "credential",
    "credentials",
    "password",
    "passwords",
    "login",
    "token",
    "tokens",
    "secret",
    "secrets",
    "mfa",
    "privilege",
    "privileges",
    "member",
    "members",
    "membership",
    "memberships",
    "admin",
    "admins",
    "owner",
    "owners",
    "collaborator",
    "collaborators",
    "trust",
    "user",
    "users",
    "group",
    "groups",
    "saml",
    "oidc",
    "sso",
    "rbac",
    "authorization",
    "iam",
    "kms",
    "cloudtrail",
    "organizations",
];

const PROGRAMS: &[&str] = &[
    "sudo", "su", "doas", "pkexec", "useradd", "userdel", "usermod", "groupadd", "groupdel",
    "groupmod", "passwd", "chpasswd", "gpasswd",
];

/// Whether the built-in classification holds an action of a service (if
/// known) privileged or destructive (see the module documentation).
pub fn is_privileged(service: Option<&str>, action: &str) -> bool {
    let mut words = Words::default();
    words.push_text(action);
    let segments = &words.segments;
    let Some(last) = segments.last() else {
        return false;
    };
    let verb_segment = match segments.len().checked_sub(2).and_then(|i| segments.get(i)) {
        Some(before) if words.segment(last) == ["action"] => before,
        _ => last,
    };
    let verb = words.segment(verb_segment).first().map(String::as_str);
    let Some(verb) = verb else {
        return false;
    };
    if DESTRUCTIVE.contains(&verb) || ESCALATING.contains(&verb) {
        return true;
    }
    if words
        .segment(last)
        .iter()
        .any(|w| DESTROYED.contains(&w.as_str()))
    {
        return true;
    }
    if let Some(first) = segments.first()
        && let [program] = words.segment(first)
        && PROGRAMS.contains(&program.as_str())
    {
        return true;
    }
    if CHANGING.contains(&verb) {
        if let Some(service) = service {
            words.push_text(service);
        }
        return words
            .words
            .iter()
            .any(|w| ACCESS_NOUNS.contains(&w.as_str()));
    }
    false
}

/// Lower-case words, grouped in segments (ranges of `words`).
#[derive(Default)]
struct Words {
    words: Vec<String>,
    segments: Vec<std::ops::Range<usize>>,
}

impl Words {
    fn segment(&self, range: &std::ops::Range<usize>) -> &[String] {
        self.words.get(range.clone()).unwrap_or_default()
    }

    /// Adds the words of a name, cut into segments at `.`, `/` and `:`.
    fn push_text(&mut self, text: &str) {
        for segment in text.split(['.', '/', ':']) {
            let start = self.words.len();
            let mut word = String::new();
            let mut prev: Option<char> = None;
            let mut chars = segment.chars().peekable();
            while let Some(c) = chars.next() {
                if !c.is_alphanumeric() {
                    self.flush(&mut word);
                    prev = None;
                    continue;
                }
                let boundary = match prev {
                    None => false,
                    Some(p) => {
                        (c.is_uppercase() && (p.is_lowercase() || p.is_ascii_digit()))
                            || (c.is_uppercase()
                                && p.is_uppercase()
                                && chars.peek().is_some_and(|n| n.is_lowercase()))
                            || (c.is_ascii_digit() != p.is_ascii_digit())
                    }
                };
                if boundary {
                    self.flush(&mut word);
                }
                word.extend(c.to_lowercase());
                prev = Some(c);
            }
            self.flush(&mut word);
            if self.words.len() > start {
                self.segments.push(start..self.words.len());
            }
        }
    }

    fn flush(&mut self, word: &mut String) {
        if !word.is_empty() {
            self.words.push(std::mem::take(word));
        }
    }
}

/// The built-in classification with a configuration's additions.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    extra: Vec<Vec<u8>>,
    exclude: Vec<Vec<u8>>,
}

impl Classifier {
    /// The built-in classification amended by `config`.
    pub fn new(config: &PrivilegedConfig) -> Classifier {
        let lower = |p: &String| p.to_ascii_lowercase().into_bytes();
        Classifier {
            extra: config.extra.iter().map(lower).collect(),
            exclude: config.exclude.iter().map(lower).collect(),
        }
    }

    /// Whether an action of a service is privileged or destructive.
    pub fn is_privileged(&self, service: Option<&str>, action: &str) -> bool {
        let name = action.as_bytes();
        if self.exclude.iter().any(|p| glob(p, name)) {
            return false;
        }
        self.extra.iter().any(|p| glob(p, name)) || is_privileged(service, action)
    }
}

/// Whether `text` matches `pattern` (lower-case ASCII, `*` for any run of
/// bytes), ASCII case-insensitively.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where the last `*` was, and the text position it now stands for.
    let mut star: Option<(usize, usize)> = None;
    loop {
        match (pattern.get(p), text.get(t)) {
            (Some(b'*'), _) => {
                star = Some((p, t));
                p += 1;
            }
            (Some(pc), Some(tc)) if *pc == tc.to_ascii_lowercase() => {
                p += 1;
                t += 1;
            }
            (None, None) => return true,
            _ => match star {
                Some((sp, st)) if st < text.len() => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                _ => return false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_actions_of_each_source() {
        let yes = [
            (Some("cloudtrail.amazonaws.com"), "DeleteTrail"),
            (Some("cloudtrail.amazonaws.com"), "StopLogging"),
            (Some("cloudtrail.amazonaws.com"), "PutEventSelectors"),
            (Some("s3.amazonaws.com"), "PutBucketPolicy"),
            (Some("iam.amazonaws.com"), "CreateAccessKey"),
            (Some("iam.amazonaws.com"), "CreateUser"),
            (Some("iam.amazonaws.com"), "UpdateLoginProfile"),
            (Some("iam.amazonaws.com"), "AttachRolePolicy"),
            (Some("lambda.amazonaws.com"), "AddPermission20150331v2"),
            (Some("ec2.amazonaws.com"), "AuthorizeSecurityGroupIngress"),
            (Some("ec2.amazonaws.com"), "TerminateInstances"),
            (Some("organizations.amazonaws.com"), "LeaveOrganization"),
            (Some("kms.amazonaws.com"), "ScheduleKeyDeletion"),
            (Some("cloudresourcemanager.googleapis.com"), "SetIamPolicy"),
            (
                Some("iam.googleapis.com"),
                "google.iam.admin.v1.CreateServiceAccountKey",
            ),
            (Some("storage.googleapis.com"), "storage.buckets.delete"),
            (Some("rbac.authorization.k8s.io"), "create"),
            (Some("core"), "delete"),
            (Some("core"), "deletecollection"),
            (Some("rbac.authorization.k8s.io"), "escalate"),
            (Some("core"), "impersonate"),
            (None, "Microsoft.Authorization/roleAssignments/write"),
            (None, "Microsoft.Compute/virtualMachines/delete"),
            (None, "repo.destroy"),
            (None, "org.remove_member"),
            (None, "org.add_member"),
            (None, "org.invite_member"),
            (None, "public_key.create"),
            (None, "org.set_default_workflow_permissions"),
            (None, "org.disable_two_factor_requirement"),
            (None, "org.saml_disabled"),
            (None, "repository.deleted"),
            (None, "secret_scanning.disable"),
            (None, "user.lifecycle.deactivate"),
            (None, "user.account.privilege.grant"),
            (None, "group.user_membership.add"),
            (None, "DROP TABLE"),
            (None, "GRANT"),
            (None, "REVOKE ROLE"),
            (None, "ALTER ROLE"),
            (None, "CREATE ROLE"),
            (None, "DELETE"),
            (None, "TRUNCATE"),
            (None, "sudo.command"),
            (None, "su.switch_user"),
        ];
        for (service, action) in yes {
            assert!(is_privileged(service, action), "{service:?} {action}");
        }
        let no = [
            (Some("ec2.amazonaws.com"), "DescribeInstances"),
            (Some("ec2.amazonaws.com"), "RunInstances"),
            (Some("secretsmanager.amazonaws.com"), "GetSecretValue"),
            (Some("iam.amazonaws.com"), "ListUsers"),
            (Some("sts.amazonaws.com"), "AssumeRole"),
            (Some("signin.amazonaws.com"), "ConsoleLogin"),
            (Some("s3.amazonaws.com"), "PutObject"),
            (Some("s3.amazonaws.com"), "GetBucketPolicy"),
            (Some("lambda.amazonaws.com"), "UpdateFunctionCode20150331v2"),
            (Some("core"), "create"),
            (Some("core"), "get"),
            (Some("rbac.authorization.k8s.io"), "list"),
            (None, "Microsoft.Storage/storageAccounts/listKeys/action"),
            (None, "repo.create"),
            (None, "git.clone"),
            (None, "workflow_job.completed"),
            (None, "SELECT"),
            (None, "INSERT"),
            (None, "CREATE TABLE"),
            (None, "sshd.accepted_publickey"),
            (None, "session.open"),
            (None, ""),
            (None, "..//"),
        ];
        for (service, action) in no {
            assert!(!is_privileged(service, action), "{service:?} {action}");
        }
    }

    #[test]
    fn configured_patterns_add_and_remove() {
        let c = Classifier::new(&PrivilegedConfig {
            extra: vec!["Modify*Attribute".into(), "*snapshot*".into()],
            exclude: vec!["TerminateSession".into(), "*Snapshot".into()],
        });
        assert!(c.is_privileged(None, "ModifySnapshotAttribute"));
        assert!(c.is_privileged(None, "modifyimageattribute"));
        assert!(!c.is_privileged(None, "DeleteSnapshot"));
        assert!(!c.is_privileged(None, "TerminateSession"));
        assert!(c.is_privileged(None, "TerminateInstances"));
        assert!(!c.is_privileged(None, "DescribeInstances"));
    }

    #[test]
    fn glob_matches_runs() {
        let g = |p: &str, t: &str| glob(p.as_bytes(), t.as_bytes());
        assert!(g("*", ""));
        assert!(g("*", "abc"));
        assert!(g("a*c", "abbbc"));
        assert!(g("a*c", "ac"));
        assert!(!g("a*c", "ab"));
        assert!(g("*b*", "abc"));
        assert!(!g("*b*", "ac"));
        assert!(g("a**", "a"));
        assert!(g("abc", "ABC"));
        assert!(!g("abc", "abcd"));
        assert!(!g("", "a"));
        assert!(g("*ab", "aab"));
    }
}
