//! A small in-test schema registry: RFC 7643 User (core + enterprise extension) and Group,
//! plus a test-only extension with numeric and simple multi-valued attributes.

use crate::scim::attr::{
    AttrInfo, AttrType, AttributeResolver, Mutability, ResolvedPath, Returned, Uniqueness,
};

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Test-only extension: `level` (Integer), `score` (Decimal), `tags` (multi-valued
/// String), `code` (caseExact String).
pub const TEST_URN: &str = "urn:example:scim:schemas:extension:test:1.0:User";

pub(crate) fn attr(name: &str, attr_type: AttrType) -> AttrInfo {
    AttrInfo {
        name: name.to_string(),
        attr_type,
        multi_valued: false,
        case_exact: false,
        required: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: Vec::new(),
        reference_types: Vec::new(),
        description: String::new(),
        sub_attributes: Vec::new(),
    }
}

fn s(name: &str) -> AttrInfo {
    attr(name, AttrType::String)
}

fn complex(name: &str, subs: Vec<AttrInfo>) -> AttrInfo {
    AttrInfo {
        sub_attributes: subs,
        ..attr(name, AttrType::Complex)
    }
}

fn multi(mut a: AttrInfo) -> AttrInfo {
    a.multi_valued = true;
    a
}

fn exact(mut a: AttrInfo) -> AttrInfo {
    a.case_exact = true;
    a
}

fn mutability(mut a: AttrInfo, m: Mutability) -> AttrInfo {
    a.mutability = m;
    a
}

fn common() -> Vec<AttrInfo> {
    vec![
        mutability(exact(s("id")), Mutability::ReadOnly),
        exact(s("externalId")),
        mutability(
            complex(
                "meta",
                vec![
                    s("resourceType"),
                    attr("created", AttrType::DateTime),
                    attr("lastModified", AttrType::DateTime),
                    exact(attr("location", AttrType::Reference)),
                    exact(s("version")),
                ],
            ),
            Mutability::ReadOnly,
        ),
    ]
}

fn multi_complex(name: &str) -> AttrInfo {
    multi(complex(
        name,
        vec![
            s("value"),
            s("type"),
            attr("primary", AttrType::Boolean),
            s("display"),
        ],
    ))
}

pub struct MockResolver {
    core_urn: &'static str,
    core: Vec<AttrInfo>,
    extensions: Vec<(&'static str, Vec<AttrInfo>)>,
}

impl MockResolver {
    pub fn user() -> MockResolver {
        let mut core = common();
        let mut user_name = s("userName");
        user_name.required = true;
        user_name.uniqueness = Uniqueness::Server;
        core.extend([
            user_name,
            s("displayName"),
            complex(
                "name",
                vec![s("givenName"), s("familyName"), s("formatted")],
            ),
            multi_complex("emails"),
            multi_complex("phoneNumbers"),
            attr("active", AttrType::Boolean),
            s("title"),
            mutability(
                multi(complex(
                    "groups",
                    vec![
                        s("value"),
                        s("display"),
                        exact(attr("$ref", AttrType::Reference)),
                    ],
                )),
                Mutability::ReadOnly,
            ),
        ]);
        MockResolver {
            core_urn: USER_URN,
            core,
            extensions: vec![
                (
                    ENTERPRISE_URN,
                    vec![
                        s("employeeNumber"),
                        s("department"),
                        complex("manager", vec![s("value"), s("displayName")]),
                    ],
                ),
                (
                    TEST_URN,
                    vec![
                        attr("level", AttrType::Integer),
                        attr("score", AttrType::Decimal),
                        multi(s("tags")),
                        exact(s("code")),
                        mutability(s("badge"), Mutability::Immutable),
                    ],
                ),
            ],
        }
    }

    pub fn group() -> MockResolver {
        let mut core = common();
        core.extend([
            s("displayName"),
            multi(complex(
                "members",
                vec![
                    mutability(s("value"), Mutability::Immutable),
                    mutability(s("type"), Mutability::Immutable),
                    s("display"),
                    mutability(
                        exact(attr("$ref", AttrType::Reference)),
                        Mutability::Immutable,
                    ),
                ],
            )),
        ]);
        MockResolver {
            core_urn: GROUP_URN,
            core,
            extensions: Vec::new(),
        }
    }
}

impl AttributeResolver for MockResolver {
    fn resolve(&self, urn: Option<&str>, attr: &str, sub: Option<&str>) -> Option<ResolvedPath> {
        let (extension, attrs) = match urn {
            None => (None, &self.core),
            Some(u) if u.eq_ignore_ascii_case(self.core_urn) => (None, &self.core),
            Some(u) => {
                let (urn, attrs) = self
                    .extensions
                    .iter()
                    .find(|(e, _)| e.eq_ignore_ascii_case(u))?;
                (Some(urn.to_string()), attrs)
            }
        };
        let info = attrs.iter().find(|a| a.name.eq_ignore_ascii_case(attr))?;
        let sub = match sub {
            Some(name) => Some(info.sub(name)?.clone()),
            None => None,
        };
        Some(ResolvedPath {
            extension,
            attr: info.clone(),
            sub,
        })
    }

    fn folded_column(&self, path: &ResolvedPath) -> Option<&'static str> {
        (self.column(path)? == "user_name").then_some("user_name_fold")
    }

    fn column(&self, path: &ResolvedPath) -> Option<&'static str> {
        if path.extension.is_some() || path.attr.multi_valued {
            return None;
        }
        match (
            path.attr.name.as_str(),
            path.sub.as_ref().map(|s| s.name.as_str()),
        ) {
            ("id", None) => Some("id"),
            ("userName", None) => Some("user_name"),
            ("externalId", None) => Some("external_id"),
            ("displayName", None) => Some("display_name"),
            ("meta", Some("created")) => Some("created_at"),
            ("meta", Some("lastModified")) => Some("last_modified"),
            _ => None,
        }
    }
}
