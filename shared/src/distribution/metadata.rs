//! `metadata.json`: its documented shape, checked with messages that name the offending field.

use serde_json::{Map, Value};

use super::DistributionError;
use crate::domain::{Category, ConnectorId, Version};
use crate::quoting::quote;

/// A validated `metadata.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// `metadata.id` exactly as written: the source folder is named after it.
    pub raw_id: String,
    pub version: Version,
    pub category: Category,
    pub technology: String,
    pub runtime: String,
    pub licence: String,
    pub owner: String,
    /// One entry for a single-tenant package, one per element of `connectors` for a multi-tenant one.
    pub connectors: Vec<ConnectorSpec>,
}

/// One connector a package declares, with the package-level defaults already applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorSpec {
    pub connector_id: ConnectorId,
    /// The key of this connector's schema in a multi-tenant `ui-config.json`; `None` when the
    /// whole file is the schema (single tenant).
    pub ui_config_key: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub main_class: Option<String>,
    pub main_program: Option<String>,
}

impl Metadata {
    /// The `<id>-<version>` folder the archive must have at its top.
    pub fn source_folder(&self) -> String {
        format!("{}-{}", self.raw_id, self.version)
    }

    /// Every icon path the package refers to, without duplicates.
    pub fn icon_paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = self.connectors.iter().filter_map(|c| c.icon.as_deref()).collect();
        paths.sort_unstable();
        paths.dedup();
        paths
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, DistributionError> {
        let document: Value =
            serde_json::from_slice(bytes).map_err(|e| DistributionError::MetadataNotJson(e.to_string()))?;
        let root = match &document {
            Value::Object(map) if !map.is_empty() => map,
            // The original treats an empty document as no metadata at all.
            Value::Object(_) | Value::Null => return Err(DistributionError::MissingMetadata),
            _ => return Err(invalid("the document must be a JSON object")),
        };
        let metadata = Fields::required_object(root, "", "metadata")?;

        let raw_id = metadata.required_str("id")?;
        let package_id = ConnectorId::from_metadata(&raw_id).map_err(|e| invalid(format!("metadata.id: {e}")))?;
        let version = Version::parse(&metadata.required_str("version")?)
            .map_err(|e| invalid(format!("metadata.version: {e}")))?;
        let category = Category::parse(&metadata.required_str("category")?)
            .map_err(|e| invalid(format!("metadata.category: {e}")))?;
        let main_class = metadata.nullable_str("main_class")?;
        let main_program = metadata.nullable_str("main_program")?;
        let multi_tenant = match metadata.optional_str("tenant")?.as_deref() {
            None | Some("single") => false,
            Some("multiple") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "metadata.tenant must be \"single\" or \"multiple\", not {}",
                    quote(other)
                )));
            }
        };

        let connectors = if multi_tenant {
            let list = match root.get("connectors") {
                Some(Value::Array(list)) if !list.is_empty() => list,
                Some(Value::Array(_)) | None | Some(Value::Null) => {
                    return Err(invalid(
                        "connectors must list at least one connector when metadata.tenant is \"multiple\"",
                    ));
                }
                Some(_) => return Err(invalid("connectors must be an array")),
            };
            let mut specs = Vec::with_capacity(list.len());
            for (index, element) in list.iter().enumerate() {
                let path = format!("connectors[{index}]");
                let Value::Object(object) = element else {
                    return Err(invalid(format!("{path} must be an object")));
                };
                let fields = Fields { map: object, path };
                let raw = fields.required_str("id")?;
                let connector_id =
                    ConnectorId::from_metadata(&raw).map_err(|e| invalid(format!("{}.id: {e}", fields.path)))?;
                if specs.iter().any(|s: &ConnectorSpec| s.connector_id == connector_id) {
                    return Err(invalid(format!("{}.id {} is declared twice", fields.path, quote(&raw))));
                }
                specs.push(ConnectorSpec {
                    connector_id,
                    ui_config_key: Some(raw),
                    name: fields.required_str("name")?,
                    description: fields.optional_str("description")?,
                    icon: fields.optional_str("icon")?,
                    main_class: fields.override_of("main_class", &main_class)?,
                    main_program: fields.override_of("main_program", &main_program)?,
                });
            }
            specs
        } else {
            if matches!(root.get("connectors"), Some(Value::Array(list)) if !list.is_empty()) {
                return Err(invalid("connectors is only allowed when metadata.tenant is \"multiple\""));
            }
            vec![ConnectorSpec {
                connector_id: package_id,
                ui_config_key: None,
                name: metadata.required_str("name")?,
                description: metadata.optional_str("description")?,
                icon: metadata.optional_str("icon")?,
                main_class,
                main_program,
            }]
        };

        Ok(Metadata {
            raw_id,
            version,
            category,
            technology: metadata.required_str("technology")?,
            runtime: metadata.required_str("runtime")?,
            licence: metadata.required_str("licence")?,
            owner: metadata.required_str("owner")?,
            connectors,
        })
    }
}

fn invalid(message: impl Into<String>) -> DistributionError {
    DistributionError::InvalidMetadata(message.into())
}

/// An object of the document together with its path, for messages such as
/// `metadata.owner must be a non-empty string`.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    fn required_object(map: &'a Map<String, Value>, parent: &str, key: &str) -> Result<Self, DistributionError> {
        let path = if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") };
        match map.get(key) {
            Some(Value::Object(inner)) => Ok(Fields { map: inner, path }),
            None => Err(invalid(format!("{path} is required"))),
            Some(_) => Err(invalid(format!("{path} must be an object"))),
        }
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn required_str(&self, key: &str) -> Result<String, DistributionError> {
        match self.map.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            None => Err(invalid(format!("{} is required", self.field(key)))),
            Some(_) => Err(invalid(format!("{} must be a non-empty string", self.field(key)))),
        }
    }

    /// A key that may be absent or null.
    fn optional_str(&self, key: &str) -> Result<Option<String>, DistributionError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{} must be a string or null", self.field(key)))),
        }
    }

    /// A key that must be present but may be null.
    fn nullable_str(&self, key: &str) -> Result<Option<String>, DistributionError> {
        if self.map.contains_key(key) {
            self.optional_str(key)
        } else {
            Err(invalid(format!("{} is required (it may be null)", self.field(key))))
        }
    }

    /// A per-connector value that overrides the package's when the key is present.
    fn override_of(&self, key: &str, package_value: &Option<String>) -> Result<Option<String>, DistributionError> {
        if self.map.contains_key(key) { self.optional_str(key) } else { Ok(package_value.clone()) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn single() -> Value {
        json!({
            "type": "connector",
            "metadata": {
                "id": "kafka-connector", "name": "Kafka Connector", "description": "Pull data from a Kafka Source",
                "type": "source", "tenant": "single", "version": "1.0.0", "category": "stream",
                "technology": "scala", "runtime": "flink", "licence": "MIT", "owner": "Sunbird",
                "main_class": "org.sunbird.obsrv.connector.KafkaConnector",
                "main_program": "kafka-connector-1.0.0.jar", "icon": "kafka.svg"
            }
        })
    }

    fn multi() -> Value {
        json!({
            "type": "connector",
            "metadata": {
                "id": "jdbc-connector", "name": "JDBC Connector", "version": "1.0.0", "tenant": "multiple",
                "type": "source", "category": "batch", "technology": "scala", "runtime": "spark",
                "licence": "MIT", "owner": "Sunbird", "main_class": "org.sunbird.obsrv.connector.JDBCConnector",
                "main_program": "jdbc-connector-1.0.0.jar"
            },
            "connectors": [
                {"id": "postgres-connector", "name": "PostgreSQL", "description": "Postgres", "icon": "postgresql.svg"},
                {"id": "mysql connector", "name": "MySQL", "icon": "mysql.svg", "main_class": null}
            ]
        })
    }

    fn parse(v: &Value) -> Result<Metadata, DistributionError> {
        Metadata::parse(&serde_json::to_vec(v).unwrap())
    }

    fn message(v: &Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn single_tenant_package_declares_one_connector() {
        let m = parse(&single()).unwrap();
        assert_eq!(m.source_folder(), "kafka-connector-1.0.0");
        assert_eq!(m.connectors.len(), 1);
        let c = &m.connectors[0];
        assert_eq!(c.connector_id.as_str(), "kafka-connector");
        assert_eq!(c.ui_config_key, None);
        assert_eq!(c.icon.as_deref(), Some("kafka.svg"));
        assert_eq!(c.main_program.as_deref(), Some("kafka-connector-1.0.0.jar"));
        assert_eq!(m.icon_paths(), vec!["kafka.svg"]);
    }

    #[test]
    fn multi_tenant_package_declares_each_connector_with_overrides() {
        let m = parse(&multi()).unwrap();
        let ids: Vec<_> = m.connectors.iter().map(|c| c.connector_id.as_str()).collect();
        assert_eq!(ids, ["postgres-connector", "mysql-connector"]);
        assert_eq!(m.connectors[1].ui_config_key.as_deref(), Some("mysql connector"));
        assert_eq!(m.connectors[0].main_class.as_deref(), Some("org.sunbird.obsrv.connector.JDBCConnector"));
        assert_eq!(m.connectors[1].main_class, None, "a per-connector null overrides the package value");
        assert_eq!(m.connectors[1].description, None);
    }

    #[test]
    fn messages_name_the_field() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("metadata");
                }),
                "metadata.json: metadata is required",
            ),
            (Box::new(|v| v["metadata"] = json!([])), "metadata.json: metadata must be an object"),
            (
                Box::new(|v| {
                    v["metadata"].as_object_mut().unwrap().remove("version");
                }),
                "metadata.version is required",
            ),
            (Box::new(|v| v["metadata"]["version"] = json!(1)), "metadata.version must be a non-empty string"),
            (Box::new(|v| v["metadata"]["version"] = json!("1/2")), "metadata.version: \"1/2\" is not a valid version"),
            (Box::new(|v| v["metadata"]["id"] = json!("-bad")), "metadata.id: \"-bad\" is not a valid connector id"),
            (Box::new(|v| v["metadata"]["owner"] = json!("")), "metadata.owner must be a non-empty string"),
            (Box::new(|v| v["metadata"]["licence"] = json!(null)), "metadata.licence must be a non-empty string"),
            (
                Box::new(|v| {
                    v["metadata"].as_object_mut().unwrap().remove("main_class");
                }),
                "metadata.main_class is required (it may be null)",
            ),
            (Box::new(|v| v["metadata"]["main_program"] = json!(7)), "metadata.main_program must be a string or null"),
            (Box::new(|v| v["metadata"]["icon"] = json!(true)), "metadata.icon must be a string or null"),
            (
                Box::new(|v| v["metadata"]["category"] = json!("Data Base")),
                "metadata.category: \"Data Base\" is not a valid category",
            ),
            (
                Box::new(|v| v["metadata"]["tenant"] = json!("many")),
                "metadata.tenant must be \"single\" or \"multiple\"",
            ),
            (
                Box::new(|v| v["connectors"] = json!([{"id": "x", "name": "X"}])),
                "connectors is only allowed when metadata.tenant is \"multiple\"",
            ),
        ];
        for (mutate, expected) in cases {
            let mut v = single();
            mutate(&mut v);
            let got = message(&v);
            assert!(got.contains(expected), "expected {expected:?} in {got:?}");
        }
    }

    #[test]
    fn multi_tenant_rules() {
        let mut v = multi();
        v.as_object_mut().unwrap().remove("connectors");
        assert!(message(&v).contains("connectors must list at least one connector"));
        v["connectors"] = json!([]);
        assert!(message(&v).contains("connectors must list at least one connector"));
        v["connectors"] = json!({"id": "x"});
        assert!(message(&v).contains("connectors must be an array"));
        v["connectors"] = json!(["x"]);
        assert!(message(&v).contains("connectors[0] must be an object"));
        v["connectors"] = json!([{"id": "a", "name": "A"}, {"name": "B"}]);
        assert!(message(&v).contains("connectors[1].id is required"));
        v["connectors"] = json!([{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]);
        assert!(message(&v).contains("connectors[1].id \"a\" is declared twice"));
        v["connectors"] = json!([{"id": "a"}]);
        assert!(message(&v).contains("connectors[0].name is required"));
    }

    #[test]
    fn empty_or_non_json_documents() {
        assert_eq!(Metadata::parse(b"{}").unwrap_err(), DistributionError::MissingMetadata);
        assert_eq!(Metadata::parse(b"null").unwrap_err(), DistributionError::MissingMetadata);
        assert!(matches!(Metadata::parse(b"").unwrap_err(), DistributionError::MetadataNotJson(_)));
        assert!(matches!(Metadata::parse(b"{\"metadata\":").unwrap_err(), DistributionError::MetadataNotJson(_)));
        assert!(Metadata::parse(b"[1]").unwrap_err().to_string().contains("must be a JSON object"));
    }
}
