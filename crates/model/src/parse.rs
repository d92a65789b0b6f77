//! Reading and writing the plan file (YAML).
//!
//! Reading is strict about shape but lenient about content: a YAML syntax error or a value of the
//! wrong type is a [`ParseError`] (with line and column, or the field's path), while unknown fields
//! become findings naming the field, so that a typo such as `macc:` is reported together with every
//! other problem instead of being silently dropped.

use serde_yaml_ng::Value;

use crate::finding::{Finding, Severity, Target};
use crate::plan::{FORMAT_VERSION, Plan, node_path, switch_path};

/// A plan read from a file, with the unknown fields it contained.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPlan {
    pub plan: Plan,
    /// One error finding per unknown field; these fields are not kept in `plan`.
    pub unknown_fields: Vec<Finding>,
}

/// Why a plan file could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line {line}, column {column}: {message}")]
    Syntax { line: usize, column: usize, message: String },
    #[error("the file is empty; a plan starts with `version: 1`")]
    Empty,
    #[error("a plan is a YAML mapping that starts with `version: 1`, not a {found}")]
    NotAMapping { found: &'static str },
    #[error(
        "plan format version {found} is newer than this Flatlab understands (up to {FORMAT_VERSION}); upgrade Flatlab to open it"
    )]
    NewerFormat { found: u64 },
    #[error("{path}: {message}")]
    Shape { path: String, message: String, target: Target },
}

impl ParseError {
    /// The error as a finding, for callers that report everything as findings (`--json`).
    pub fn to_finding(&self) -> Finding {
        match self {
            ParseError::Shape { path, message, target } => Finding {
                severity: Severity::Error,
                path: path.clone(),
                message: message.clone(),
                target: target.clone(),
            },
            other => Finding::error("", other.to_string()),
        }
    }
}

/// Reads a plan file.
pub fn parse_plan(text: &str) -> Result<ParsedPlan, ParseError> {
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        // The library's message repeats the location; keep only the description.
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        ParseError::Syntax { line, column, message }
    })?;
    let map = match &value {
        Value::Mapping(m) => m,
        Value::Null => return Err(ParseError::Empty),
        other => return Err(ParseError::NotAMapping { found: kind(other) }),
    };
    if let Some(found) = map.get("version").and_then(Value::as_u64)
        && found > u64::from(FORMAT_VERSION)
    {
        return Err(ParseError::NewerFormat { found });
    }

    let names = RawNames::from(map);
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(segments_of_ignored(&path));
    let de = serde_ignored::Deserializer::new(value, &mut record);
    let plan: Plan = serde_path_to_error::deserialize(de).map_err(|e| {
        let segments = segments_of_error(e.path());
        let message = e.into_inner().to_string();
        ParseError::Shape {
            path: names.render(&segments),
            message: tidy_serde_message(&message),
            target: target_of(&segments),
        }
    })?;

    let unknown_fields = unknown
        .into_iter()
        .map(|segments| {
            let field = match segments.last() {
                Some(Segment::Key(k)) => k.clone(),
                _ => String::from("?"),
            };
            let mut message = format!("unknown field `{field}`");
            if let Some(suggestion) = suggest(&segments) {
                message.push_str(&format!("; did you mean `{suggestion}`?"));
            } else {
                message.push_str("; remove it (see docs/plan-format.md for the fields a plan has)");
            }
            Finding { severity: Severity::Error, path: names.render(&segments), message, target: target_of(&segments) }
        })
        .collect();
    Ok(ParsedPlan { plan, unknown_fields })
}

/// Writes a plan as YAML, in the field order of the format documentation.
pub fn to_yaml(plan: &Plan) -> String {
    // Serializing plain structs of strings, numbers and lists cannot fail.
    serde_yaml_ng::to_string(plan).expect("a plan always serializes to YAML")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "mapping",
        Value::Tagged(_) => "tagged value",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn segments_of_ignored(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path as P;
    let mut out = match path {
        P::Root => return Vec::new(),
        P::Seq { parent, .. }
        | P::Map { parent, .. }
        | P::Some { parent }
        | P::NewtypeStruct { parent }
        | P::NewtypeVariant { parent } => segments_of_ignored(parent),
    };
    match path {
        P::Seq { index, .. } => out.push(Segment::Index(*index)),
        P::Map { key, .. } => out.push(Segment::Key(key.clone())),
        _ => {}
    }
    out
}

fn segments_of_error(path: &serde_path_to_error::Path) -> Vec<Segment> {
    use serde_path_to_error::Segment as S;
    path.iter()
        .filter_map(|s| match s {
            S::Seq { index } => Some(Segment::Index(*index)),
            S::Map { key } => Some(Segment::Key(key.clone())),
            S::Enum { .. } | S::Unknown => None,
        })
        .collect()
}

/// The target of a field path: the node or switch it is in, by index, and the rest as the field.
fn target_of(segments: &[Segment]) -> Target {
    let field = |rest: &[Segment]| {
        let mut out = String::new();
        for seg in rest {
            match seg {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    };
    match segments {
        [Segment::Key(list), Segment::Index(i), rest @ ..] if list == "nodes" => Target::node(*i, field(rest)),
        [Segment::Key(list), Segment::Index(i), rest @ ..] if list == "switches" => Target::switch(*i, field(rest)),
        all => Target::plan(field(all)),
    }
}

/// Node and switch names as written, to turn `nodes.2` into `nodes[cp3]`.
struct RawNames {
    nodes: Vec<Option<String>>,
    switches: Vec<Option<String>>,
}

impl RawNames {
    fn from(map: &serde_yaml_ng::Mapping) -> Self {
        let names = |key: &str| -> Vec<Option<String>> {
            map.get(key)
                .and_then(Value::as_sequence)
                .map(|items| {
                    items.iter().map(|item| item.get("name").and_then(Value::as_str).map(str::to_owned)).collect()
                })
                .unwrap_or_default()
        };
        Self { nodes: names("nodes"), switches: names("switches") }
    }

    fn render(&self, segments: &[Segment]) -> String {
        let mut out = String::new();
        let mut previous_key: Option<&str> = None;
        for (i, seg) in segments.iter().enumerate() {
            match seg {
                Segment::Key(k) => {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(k);
                    previous_key = Some(k);
                }
                Segment::Index(index) => {
                    // `nodes[cp1]` replaces the `nodes` we just wrote.
                    let keyed = match (i, previous_key) {
                        (1, Some("nodes")) => {
                            Some(node_path(self.nodes.get(*index).and_then(|n| n.as_deref()), *index))
                        }
                        (1, Some("switches")) => {
                            Some(switch_path(self.switches.get(*index).and_then(|n| n.as_deref()), *index))
                        }
                        _ => None,
                    };
                    match keyed {
                        Some(k) => out = k,
                        None => out.push_str(&format!("[{index}]")),
                    }
                    previous_key = None;
                }
            }
        }
        out
    }
}

/// The fields a mapping at this place may have, for "did you mean" suggestions.
fn known_fields(parent: &[Segment]) -> &'static [&'static str] {
    let keys: Vec<&str> = parent
        .iter()
        .filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
        .collect();
    match keys.as_slice() {
        [] => &["version", "name", "os", "kubernetes", "network", "ssh_authorized_keys", "switches", "nodes"],
        ["os"] => &["channel", "version", "arch", "ignition_version", "reboot_window"],
        ["os", "reboot_window"] => &["days", "start", "end", "time_zone"],
        ["kubernetes"] => &["k3s_version", "api_endpoint", "disable", "k3s_sha256", "snapshots"],
        ["kubernetes", "snapshots"] => &["schedule", "retention", "enabled"],
        ["network"] => &["subnet", "gateway", "dns", "ntp"],
        ["switches"] => &["name", "position"],
        ["nodes"] => &["name", "mac", "role", "install_disk", "address", "switch", "position"],
        ["nodes" | "switches", "position"] => &["x", "y"],
        _ => &[],
    }
}

fn suggest(segments: &[Segment]) -> Option<&'static str> {
    let (Segment::Key(field), parent) = segments.split_last()? else { return None };
    let field = field.to_ascii_lowercase();
    known_fields(parent)
        .iter()
        .map(|k| (strsim::levenshtein(&field, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// serde's messages speak of "variant" and "struct"; speak of values and fields instead.
fn tidy_serde_message(message: &str) -> String {
    message.replace("unknown variant", "unknown value").replace("invalid type", "wrong type")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "version: 1\nname: lab\nos: {channel: stable, version: 4593.2.5, arch: amd64}\n\
        kubernetes: {k3s_version: v1.32.2+k3s1}\nnodes:\n  - name: cp1\n    mac: \"52:54:00:00:00:01\"\n    \
        role: server\n    install_disk: /dev/sda\n";

    #[test]
    fn reads_a_minimal_plan() {
        let parsed = parse_plan(MINIMAL).expect("parses");
        assert!(parsed.unknown_fields.is_empty());
        assert_eq!(parsed.plan.nodes[0].name, "cp1");
    }

    #[test]
    fn unknown_fields_are_findings_with_paths_and_suggestions() {
        let text = MINIMAL.replace("    role: server", "    role: server\n    macc: x\n    colour: red")
            + "extra: 1\nos_typo: 2\n";
        let parsed = parse_plan(&text).expect("parses");
        let found: Vec<(String, String)> =
            parsed.unknown_fields.iter().map(|f| (f.path.clone(), f.message.clone())).collect();
        assert!(
            found.contains(&("nodes[cp1].macc".into(), "unknown field `macc`; did you mean `mac`?".into())),
            "{found:?}"
        );
        let macc = parsed.unknown_fields.iter().find(|f| f.path == "nodes[cp1].macc").expect("macc");
        assert_eq!(macc.target, Target::node(0, "macc"));
        let extra = parsed.unknown_fields.iter().find(|f| f.path == "extra").expect("extra");
        assert_eq!(extra.target, Target::plan("extra"));
        assert!(found.iter().any(|(p, m)| p == "nodes[cp1].colour" && m.contains("remove it")), "{found:?}");
        assert!(found.iter().any(|(p, _)| p == "extra"), "{found:?}");
        assert!(found.iter().any(|(p, _)| p == "os_typo"), "{found:?}");
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse_plan("version: 1\nname: [unclosed\n").expect_err("bad yaml");
        match err {
            ParseError::Syntax { line, .. } => assert!(line >= 2, "{err}"),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_plan(&MINIMAL.replace("role: server", "role: srever")).expect_err("bad role");
        assert_eq!(err.to_finding().path, "nodes[cp1].role");
        assert_eq!(err.to_finding().target, Target::node(0, "role"));
        assert!(err.to_string().contains("unknown value `srever`"), "{err}");
    }

    #[test]
    fn newer_format_is_refused_with_advice() {
        let err = parse_plan("version: 2\nname: lab\nsomething_new: {}\n").expect_err("newer");
        assert_eq!(err, ParseError::NewerFormat { found: 2 });
        assert!(err.to_string().contains("upgrade Flatlab"));
    }

    #[test]
    fn empty_and_non_mapping_files_are_refused() {
        assert_eq!(parse_plan("").expect_err("empty"), ParseError::Empty);
        assert_eq!(parse_plan("- a\n- b\n").expect_err("list"), ParseError::NotAMapping { found: "list" });
    }

    #[test]
    fn writing_and_reading_round_trips() {
        let plan = parse_plan(MINIMAL).expect("parses").plan;
        let again = parse_plan(&to_yaml(&plan)).expect("re-parses");
        assert_eq!(again.plan, plan);
        assert!(again.unknown_fields.is_empty());
    }
}
