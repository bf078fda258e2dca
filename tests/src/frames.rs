//! The WebSocket contract: `docs/asyncapi.yaml` read once, and a JSON Schema
//! validator for each of its messages. [`crate::edge::Viewer`] checks every frame it
//! receives with [`assert_valid`], so every WebSocket test also checks the edge
//! against its published contract.

use std::{collections::BTreeMap, sync::LazyLock};

use serde_json::Value;

/// The AsyncAPI document, parsed (panics with the reason if it cannot be).
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let path = crate::tools::workspace_root().join("docs/asyncapi.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
});

/// A validator of each message's payload, by message name (which is the frame's
/// `type`).
static MESSAGES: LazyLock<BTreeMap<String, jsonschema::Validator>> = LazyLock::new(|| {
    let messages = DOCUMENT["components"]["messages"]
        .as_object()
        .expect("docs/asyncapi.yaml has components.messages");
    messages
        .keys()
        .map(|name| {
            (
                name.clone(),
                validator(&format!("/components/messages/{name}/payload")),
            )
        })
        .collect()
});

/// Returns the parsed AsyncAPI document.
pub fn document() -> &'static Value {
    &DOCUMENT
}

/// Returns the names of the messages the document defines.
pub fn message_names() -> Vec<&'static str> {
    MESSAGES.keys().map(String::as_str).collect()
}

/// Builds a validator for the schema at `pointer` (a JSON pointer into the
/// document), resolving its `$ref`s within the document. AsyncAPI 3.0's default
/// schema format is JSON Schema draft 7, where a `$ref` ignores its siblings, so the
/// document itself, with a `$ref` at its root, is the schema. Formats (uuid,
/// date-time) are checked too.
pub fn validator(pointer: &str) -> jsonschema::Validator {
    let mut schema = DOCUMENT.clone();
    schema
        .as_object_mut()
        .expect("the document is an object")
        .insert("$ref".into(), Value::String(format!("#{pointer}")));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("docs/asyncapi.yaml {pointer} is not a usable schema: {e}"))
}

/// Returns why `frame` breaks the contract: no message of its `type`, or every
/// schema error (instance path and message); `Ok` when it conforms.
pub fn check(frame: &Value) -> Result<(), String> {
    let kind = frame["type"].as_str().unwrap_or_default();
    let Some(validator) = MESSAGES.get(kind) else {
        return Err(format!(
            "no message named {kind:?} in docs/asyncapi.yaml (it has {:?})",
            message_names()
        ));
    };
    let errors: Vec<String> = validator
        .iter_errors(frame)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Panics, naming the frame and every error, when `frame` breaks the contract.
pub fn assert_valid(frame: &Value) {
    if let Err(why) = check(frame) {
        panic!(
            "the edge sent a frame that docs/asyncapi.yaml does not allow: {why}\nframe: {frame}"
        );
    }
}
