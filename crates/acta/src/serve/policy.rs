//! Who may do what through `acta serve`: Cedar policies, evaluated on every request.
//!
//! The policies live in `<data-dir>/policies.cedar`, written with the built-in roles
//! (`policies.cedar` next to this file) the first time the server starts; an operator may edit or
//! replace the file to make roles finer, and the server rereads it when it changes. Policies are
//! validated against acta's schema (`acta.cedarschema`) in strict mode, so a misspelt entity type,
//! action or attribute is refused with the file's position rather than silently never matching.
//! A file that fails to load keeps the server on the policies it had (and says why on standard
//! error); at start it is an error.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use anyhow::{Context as _, Result, anyhow};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::tokens::Action;

/// The schema policies are validated against.
const SCHEMA: &str = include_str!("acta.cedarschema");
/// The built-in policies: `admin`, `auditor`, `ingest`.
pub const DEFAULT_POLICIES: &str = include_str!("policies.cedar");

/// The policy file of a data directory.
pub fn policies_file(root: &Path) -> PathBuf {
    root.join("policies.cedar")
}

/// What a request acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The whole trail.
    Trail,
    /// One source of the trail.
    Source(String),
    /// acta's own tokens.
    Tokens,
}

/// Who is asking: the token the request carries.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
    pub name: String,
    pub role: String,
}

/// A loaded, validated policy set.
pub struct Policies {
    set: PolicySet,
    schema: Schema,
    authorizer: Authorizer,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("policies", &self.set.policies().count())
            .finish()
    }
}

fn uid(kind: &str, id: &str) -> Result<EntityUid> {
    let kind = EntityTypeName::from_str(kind).map_err(|e| anyhow!("{e}"))?;
    let id = EntityId::from_str(id).map_err(|e| anyhow!("{e}"))?;
    Ok(EntityUid::from_type_name_and_id(kind, id))
}

impl Policies {
    /// Parses and validates `text`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Policies> {
        let (schema, _warnings) = Schema::from_cedarschema_str(SCHEMA)
            .map_err(|e| anyhow!("acta's Cedar schema: {e}"))?;
        let set = PolicySet::from_str(text).map_err(|e| {
            let detail: Vec<String> = miette_lines(&e, text);
            anyhow!("{origin}: not valid Cedar: {e}{}", detail.join(""))
        })?;
        let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        if !result.validation_passed() {
            let problems: Vec<String> = result
                .validation_errors()
                .map(|e| format!("\n  - {e}{}", miette_lines(e, text).join("")))
                .collect();
            anyhow::bail!(
                "{origin}: the policies do not fit acta's schema:{}",
                problems.join("")
            );
        }
        Ok(Policies {
            set,
            schema,
            authorizer: Authorizer::new(),
        })
    }

    /// Loads the policy file of a data directory, writing the built-in policies there first if
    /// there is none.
    pub fn load_or_create(root: &Path) -> Result<(Policies, PathBuf)> {
        let path = policies_file(root);
        if !path.exists() {
            std::fs::write(&path, DEFAULT_POLICIES)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        Ok((Policies::parse(&text, &path.display().to_string())?, path))
    }

    /// Whether `caller` may do `action` on `resource`, by the policies; `route` names the route
    /// for policies that tell routes apart (`context.route`).
    pub fn allows(
        &self,
        caller: &Caller,
        action: Action,
        resource: &Resource,
        route: &str,
    ) -> Result<bool> {
        let principal = uid("Acta::Token", &caller.id)?;
        let role = uid("Acta::Role", &caller.role)?;
        let token = Entity::new(
            principal.clone(),
            HashMap::from([
                (
                    "name".to_owned(),
                    RestrictedExpression::new_string(caller.name.clone()),
                ),
                (
                    "role".to_owned(),
                    RestrictedExpression::new_string(caller.role.clone()),
                ),
            ]),
            HashSet::from([role.clone()]),
        )
        .map_err(|e| anyhow!("{e}"))?;
        let resource = match resource {
            Resource::Trail => uid("Acta::Trail", "all")?,
            Resource::Source(s) => uid("Acta::Source", s)?,
            Resource::Tokens => uid("Acta::Tokens", "all")?,
        };
        let entities = Entities::from_entities(
            [token, Entity::new_no_attrs(role, HashSet::new())],
            Some(&self.schema),
        )
        .map_err(|e| anyhow!("{e}"))?;
        let context = Context::from_pairs([(
            "route".to_owned(),
            RestrictedExpression::new_string(route.to_owned()),
        )])
        .map_err(|e| anyhow!("{e}"))?;
        let request = Request::new(
            principal,
            uid("Acta::Action", action.name())?,
            resource,
            context,
            Some(&self.schema),
        )
        .map_err(|e| anyhow!("{e}"))?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.set, &entities);
        Ok(response.decision() == Decision::Allow)
    }

    /// Whether any policy names `role` (to warn about tokens no policy grants anything).
    pub fn mentions_role(&self, role: &str) -> bool {
        let needle = format!("Acta::Role::\"{role}\"");
        self.set.policies().any(|p| p.to_string().contains(&needle))
    }
}

/// Line and column of each labelled span of a Cedar diagnostic, for error messages.
fn miette_lines(e: &dyn miette::Diagnostic, text: &str) -> Vec<String> {
    let Some(labels) = e.labels() else {
        return Vec::new();
    };
    labels
        .map(|l| {
            let offset = l.offset().min(text.len());
            let before = text.get(..offset).unwrap_or("");
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
            format!(" (line {line}, column {column})")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: &str) -> Caller {
        Caller {
            id: "0123456789ab".into(),
            name: "t".into(),
            role: role.into(),
        }
    }

    #[test]
    fn built_in_roles_allow_what_they_name() {
        let p = Policies::parse(DEFAULT_POLICIES, "built-in").unwrap();
        let gh = Resource::Source("github-audit".into());
        for (role, action, resource, want) in [
            ("admin", Action::Read, &Resource::Trail, true),
            ("admin", Action::Write, &gh, true),
            ("admin", Action::Manage, &Resource::Tokens, true),
            ("auditor", Action::Read, &Resource::Trail, true),
            ("auditor", Action::Read, &gh, true),
            ("auditor", Action::Write, &Resource::Trail, false),
            ("auditor", Action::Manage, &Resource::Tokens, false),
            ("ingest", Action::Write, &Resource::Trail, true),
            ("ingest", Action::Write, &gh, true),
            ("ingest", Action::Read, &Resource::Trail, false),
            ("ingest", Action::Manage, &Resource::Tokens, false),
            ("nobody", Action::Read, &Resource::Trail, false),
        ] {
            assert_eq!(
                p.allows(&caller(role), action, resource, "test").unwrap(),
                want,
                "{role} {action:?} {resource:?}"
            );
        }
        assert!(p.mentions_role("auditor") && !p.mentions_role("auditor-github"));
        // The example in the file's comments is valid Cedar that fits the schema.
        let example: String = DEFAULT_POLICIES
            .lines()
            .skip_while(|l| !l.starts_with("// @id(\"auditor-github\")"))
            .map(|l| l.strip_prefix("// ").unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let p = Policies::parse(&example, "example").unwrap();
        let c = caller("auditor-github");
        assert!(
            p.allows(
                &c,
                Action::Read,
                &Resource::Source("github-webhook".into()),
                "search"
            )
            .unwrap()
        );
        assert!(
            !p.allows(&c, Action::Read, &Resource::Trail, "search")
                .unwrap()
        );
    }

    #[test]
    fn a_role_can_be_limited_to_one_source() {
        let text = format!(
            "{DEFAULT_POLICIES}\npermit (principal in Acta::Role::\"auditor-github\", action == Acta::Action::\"read\", resource) when {{ resource in [Acta::Source::\"github-audit\", Acta::Source::\"github-webhook\"] }};\n\
             forbid (principal, action, resource) when {{ principal.role == \"ingest\" && context.route == \"ingest-gitlab\" }};"
        );
        let p = Policies::parse(&text, "test").unwrap();
        let c = caller("auditor-github");
        let gh = Resource::Source("github-audit".into());
        let ct = Resource::Source("cloudtrail".into());
        assert!(p.allows(&c, Action::Read, &gh, "search").unwrap());
        assert!(!p.allows(&c, Action::Read, &ct, "search").unwrap());
        assert!(
            !p.allows(&c, Action::Read, &Resource::Trail, "search")
                .unwrap()
        );
        assert!(!p.allows(&c, Action::Write, &gh, "ingest").unwrap());
        let i = caller("ingest");
        assert!(p.allows(&i, Action::Write, &gh, "ingest").unwrap());
        assert!(!p.allows(&i, Action::Write, &gh, "ingest-gitlab").unwrap());
    }

    #[test]
    fn invalid_policies_are_refused_with_their_position() {
        let e = Policies::parse("permit (principal, action, resource", "p.cedar")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.cedar: not valid Cedar"), "{e}");
        // Parses, but names an action the schema does not have.
        let e = Policies::parse(
            "permit (principal, action == Acta::Action::\"delete\", resource);",
            "p.cedar",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("do not fit acta's schema"), "{e}");
        let e = Policies::parse(
            "permit (principal, action, resource) when { principal.team == \"x\" };",
            "p.cedar",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
