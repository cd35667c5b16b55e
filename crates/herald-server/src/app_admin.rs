//! The operations on apps kept in Redis, shared by `herald apps` and the admin HTTP endpoint, so both check
//! a change the same way: as the config file is checked, and against every other app (ids, keys, Redis
//! prefixes of their own), before anything is stored. Generated ids, keys and secrets come from the
//! operating system's randomness.

use herald_redis::AppStore;
use herald_server::config::Config;
use serde_json::{Map, Value};

/// Why an operation did not happen, with the HTTP status the admin endpoint answers.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Redis did not answer: {0}")]
    Unavailable(String),
}

impl AdminError {
    pub fn status(&self) -> u16 {
        match self {
            AdminError::NotFound(_) => 404,
            AdminError::Invalid(_) => 422,
            AdminError::Conflict(_) => 409,
            AdminError::Unavailable(_) => 503,
        }
    }
}

fn unavailable(e: redis::RedisError) -> AdminError {
    AdminError::Unavailable(e.to_string())
}

/// Keys whose values are secrets: masked when an app is shown.
const SECRET_KEYS: [&str; 3] = ["secret", "encryption_master_key", "dashboard_token"];

pub fn random_hex(bytes: usize) -> Result<String, AdminError> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(|e| AdminError::Invalid(format!("no randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// An app's record with its secrets masked.
pub fn masked(mut record: Map<String, Value>) -> Map<String, Value> {
    for key in SECRET_KEYS {
        if record.contains_key(key) {
            record.insert(key.into(), "********".into());
        }
    }
    record
}

/// The apps kept in the Redis of one configuration.
pub struct AppAdmin {
    config: Config,
    store: AppStore,
}

impl AppAdmin {
    pub fn new(config: Config) -> Result<Self, String> {
        let Some(settings) = config.redis_settings() else {
            return Err(
                "apps are kept in Redis: set HERALD_REDIS_URL (and HERALD_REDIS_APPS=true on the nodes)".into(),
            );
        };
        let store = AppStore::new(&settings).map_err(|e| e.to_string())?;
        Ok(AppAdmin { config, store })
    }

    /// The token that signs the admin endpoint's requests; None: that endpoint is off.
    pub fn admin_token(&self) -> Option<&str> {
        self.config.admin_token.as_deref()
    }

    pub fn secret_overlap_secs(&self) -> u64 {
        self.config.secret_overlap.as_secs()
    }

    /// Every app kept, by id.
    pub async fn list(&self) -> Result<Vec<Map<String, Value>>, AdminError> {
        let (_, mut records) = self.store.all().await.map_err(unavailable)?;
        records.sort();
        Ok(records
            .into_iter()
            .filter_map(|(_, json)| match serde_json::from_str(&json) {
                Ok(Value::Object(record)) => Some(record),
                _ => None,
            })
            .collect())
    }

    pub async fn get(&self, id: &str) -> Result<Map<String, Value>, AdminError> {
        let json = self
            .store
            .get(id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AdminError::NotFound(format!("no app {id:?} is kept in Redis")))?;
        match serde_json::from_str(&json) {
            Ok(Value::Object(record)) => Ok(record),
            _ => Err(AdminError::Invalid(format!(
                "the app {id:?} in Redis is not a JSON object; delete it and create it again"
            ))),
        }
    }

    /// A new app from `fields` (any per-app key of the file); id, key and secret are generated when absent.
    pub async fn create(&self, mut fields: Map<String, Value>) -> Result<Map<String, Value>, AdminError> {
        let id = match fields.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                let n = u32::from_str_radix(&random_hex(4)?, 16).unwrap_or(1);
                (n % 9_000_000 + 1_000_000).to_string()
            }
        };
        if self.store.get(&id).await.map_err(unavailable)?.is_some() {
            return Err(AdminError::Conflict(format!("an app {id:?} is kept in Redis already")));
        }
        fields.insert("id".into(), id.clone().into());
        if !fields.contains_key("key") {
            fields.insert("key".into(), random_hex(10)?.into());
        }
        if !fields.contains_key("secret") {
            fields.insert("secret".into(), random_hex(20)?.into());
        }
        self.save(&id, &fields).await?;
        Ok(fields)
    }

    /// Enables or disables the app (a disabled app's connections are closed with 4003, new ones refused).
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<Map<String, Value>, AdminError> {
        self.update(id, Map::from_iter([("enabled".into(), enabled.into())]))
            .await
    }

    /// Changes some settings of an app (the id cannot change).
    pub async fn update(&self, id: &str, fields: Map<String, Value>) -> Result<Map<String, Value>, AdminError> {
        if fields.get("id").is_some_and(|v| v.as_str() != Some(id)) {
            return Err(AdminError::Invalid(
                "an app's id cannot change (create another app)".into(),
            ));
        }
        let mut record = self.get(id).await?;
        record.extend(fields);
        self.save(id, &record).await?;
        Ok(record)
    }

    /// A new secret for an app; the old one stays accepted for the overlap on every node.
    pub async fn rotate_secret(&self, id: &str) -> Result<String, AdminError> {
        let secret = random_hex(20)?;
        let mut record = self.get(id).await?;
        record.insert("secret".into(), secret.clone().into());
        self.save(id, &record).await?;
        Ok(secret)
    }

    pub async fn delete(&self, id: &str) -> Result<(), AdminError> {
        if !self.store.delete(id).await.map_err(unavailable)? {
            return Err(AdminError::NotFound(format!("no app {id:?} is kept in Redis")));
        }
        Ok(())
    }

    /// Checks `record` as the nodes will (alone, then with every other app), then stores it.
    async fn save(&self, id: &str, record: &Map<String, Value>) -> Result<(), AdminError> {
        let json = Value::Object(record.clone()).to_string();
        let (apps, errors) = self.config.apps_from_store(&[(id.to_owned(), json.clone())]);
        if let Some(e) = errors.into_iter().next() {
            return Err(AdminError::Invalid(e));
        }
        let (_, mut others) = self.store.all().await.map_err(unavailable)?;
        others.retain(|(other, _)| other != id);
        let (mut stored, _) = self.config.apps_from_store(&others);
        stored.extend(apps);
        self.config.with_stored_apps(stored).map_err(AdminError::Invalid)?;
        self.store.put(id, &json).await.map_err(unavailable)
    }
}
