//! Schema checks that answer as Ajv 8 does with default options (the original validates its
//! requests with Ajv): keywords in Ajv's order, the first error only, `#<schema path> <message>`.

use serde_json::{Map, Value};

/// A position in the schema, for Ajv-style messages: `#properties/request/properties/filters ...`.
pub(super) struct Schema {
    path: String,
}

/// Checks the envelope of a request whose schema requires all of it, as Obsrv's list and status
/// transition schemas do (`id` this `api_id`, `ver`, `ts`, `params.msgid`), and answers the
/// schema position of `request` with its value.
pub(super) fn strict_envelope<'v>(document: &'v Value, api_id: &str) -> Result<(Schema, &'v Value), String> {
    let root = Schema::root();
    let top =
        root.object(document, &["id", "ver", "ts", "params", "request"], &["id", "ver", "ts", "params", "request"])?;
    let id = root.property("id");
    if id.string(&top["id"])? != api_id {
        return Err(id.fail("enum", "must be equal to one of the allowed values"));
    }
    root.property("ver").string(&top["ver"])?;
    root.property("ts").string(&top["ts"])?;
    let params = root.property("params");
    let params_object = params.object(&top["params"], &["msgid"], &["msgid"])?;
    params.property("msgid").string(&params_object["msgid"])?;
    Ok((root.property("request"), &top["request"]))
}

impl Schema {
    pub(super) fn root() -> Self {
        Self { path: "#".to_owned() }
    }

    pub(super) fn child(&self, segment: &str) -> Self {
        let separator = if self.path == "#" { "" } else { "/" };
        Self { path: format!("{}{separator}{segment}", self.path) }
    }

    pub(super) fn property(&self, name: &str) -> Self {
        self.child("properties").child(name)
    }

    pub(super) fn fail(&self, keyword: &str, message: &str) -> String {
        let separator = if self.path == "#" { "" } else { "/" };
        format!("{}{separator}{keyword} {message}", self.path)
    }

    /// `type: object`, then `required` (in order), then `additionalProperties: false`.
    pub(super) fn object<'v>(
        &self,
        value: &'v Value,
        required: &[&str],
        allowed: &[&str],
    ) -> Result<&'v Map<String, Value>, String> {
        let object = value.as_object().ok_or_else(|| self.fail("type", "must be object"))?;
        if let Some(missing) = required.iter().find(|key| !object.contains_key(**key)) {
            return Err(self.fail("required", &format!("must have required property '{missing}'")));
        }
        if object.keys().any(|key| !allowed.contains(&key.as_str())) {
            return Err(self.fail("additionalProperties", "must NOT have additional properties"));
        }
        Ok(object)
    }

    /// `type: object` and nothing more (no `required`, any property).
    pub(super) fn open_object<'v>(&self, value: &'v Value) -> Result<&'v Map<String, Value>, String> {
        value.as_object().ok_or_else(|| self.fail("type", "must be object"))
    }

    pub(super) fn string<'v>(&self, value: &'v Value) -> Result<&'v str, String> {
        value.as_str().ok_or_else(|| self.fail("type", "must be string"))
    }

    /// `type: array`, then `minItems: 1`.
    pub(super) fn non_empty_array<'v>(&self, value: &'v Value) -> Result<&'v [Value], String> {
        let items = value.as_array().ok_or_else(|| self.fail("type", "must be array"))?;
        if items.is_empty() {
            return Err(self.fail("minItems", "must NOT have fewer than 1 items"));
        }
        Ok(items)
    }
}
