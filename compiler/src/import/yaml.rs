//! dbt's YAML files through marked-yaml: every value keeps its line, for IMPORT.md.

use marked_yaml::types::{MarkedMappingNode, Node};
use serde_json::Value;

/// A YAML file: its shown path and its top-level mapping, or why it could not be read.
pub fn parse(shown: &str, text: &str) -> Result<MarkedMappingNode, String> {
    match marked_yaml::parse_yaml(0, text) {
        Ok(Node::Mapping(m)) => Ok(m),
        Ok(_) => Err(format!("`{shown}`: the top level is not a mapping")),
        // An empty file is an empty mapping (dbt reads it so).
        Err(_) if text.trim().is_empty() => {
            Ok(MarkedMappingNode::new_empty(marked_yaml::Span::new_blank()))
        }
        Err(e) => Err(format!("`{shown}`: not YAML stir can read: {e}")),
    }
}

/// The 1-based line a node starts on.
pub fn line(node: &Node) -> usize {
    node.span().start().map_or(1, |m| m.line())
}

/// A node as JSON: scalars typed as YAML 1.2 core would read them (`true`, `3`, `1.5`,
/// `null`), unless quoted.
pub fn to_json(node: &Node) -> Value {
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return Value::String(text.to_string());
            }
            match text {
                "true" | "True" | "TRUE" => return Value::Bool(true),
                "false" | "False" | "FALSE" => return Value::Bool(false),
                "null" | "Null" | "NULL" | "~" | "" => return Value::Null,
                _ => {}
            }
            if let Ok(i) = text.parse::<i64>() {
                return Value::from(i);
            }
            if let Some(n) = text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
            {
                return Value::Number(n);
            }
            Value::String(text.to_string())
        }
        Node::Sequence(seq) => Value::Array(seq.iter().map(to_json).collect()),
        Node::Mapping(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

/// A scalar's text, if the node is a scalar.
pub fn text(node: &Node) -> Option<&str> {
    node.as_scalar().map(|s| s.as_str())
}
