//! Apps kept in Redis, next to (or instead of) the config file, so an app can be added, changed or disabled
//! while the cluster runs (`herald apps`). Each app is one field of the hash `herald:apps` (id -> the same
//! keys as an `[[apps]]` table of the file, as JSON), and `herald:apps:version` is set to a new random value
//! by every change: every node looks at it twice a second and reloads the apps when it differs. (A random
//! value rather than a counter: after Redis lost its data and the apps were put back, a counter could come
//! back to a value a node saw before and hide a change.) The store only keeps and hands
//! out the records; the server checks them exactly as it checks the file.

use crate::connection::RedisConnection;
use crate::{endpoint, RedisConfigError, RedisSettings};
use redis::RedisError;

/// The apps kept in one Redis.
#[derive(Clone)]
pub struct AppStore {
    conn: std::sync::Arc<RedisConnection>,
    /// The hash of apps and its version key, named for the topology.
    apps: std::sync::Arc<(String, String)>,
}

impl AppStore {
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisConfigError> {
        let conn = RedisConnection::new(endpoint(settings)?);
        let layout = conn.layout();
        Ok(AppStore {
            conn: std::sync::Arc::new(conn),
            apps: std::sync::Arc::new((layout.apps(), layout.apps_version())),
        })
    }

    /// The version of the stored apps (None: no app was ever stored, or Redis lost them).
    pub async fn version(&self) -> Result<Option<String>, RedisError> {
        let version = &self.apps.1;
        self.conn
            .run("GET", |mut c| async move {
                redis::cmd("GET").arg(version).query_async(&mut c).await
            })
            .await
    }

    /// Every app's JSON, by id, with the version it was read at.
    pub async fn all(&self) -> Result<(Option<String>, Vec<(String, String)>), RedisError> {
        let (apps, version) = (&self.apps.0, &self.apps.1);
        self.conn
            .run("HGETALL", |mut c| async move {
                let (version, apps): (Option<String>, Vec<(String, String)>) = redis::pipe()
                    .atomic()
                    .cmd("GET")
                    .arg(version)
                    .cmd("HGETALL")
                    .arg(apps)
                    .query_async(&mut c)
                    .await?;
                Ok((version, apps))
            })
            .await
    }

    /// One app's JSON.
    pub async fn get(&self, id: &str) -> Result<Option<String>, RedisError> {
        let id = id.to_owned();
        let apps = &self.apps.0;
        self.conn
            .run("HGET", |mut c| {
                let id = id.clone();
                async move { redis::cmd("HGET").arg(apps).arg(id).query_async(&mut c).await }
            })
            .await
    }

    /// Stores an app (new or replaced) and bumps the version, in one transaction.
    pub async fn put(&self, id: &str, json: &str) -> Result<(), RedisError> {
        let (id, json) = (id.to_owned(), json.to_owned());
        let (apps, version) = (&self.apps.0, &self.apps.1);
        self.conn
            .run_once_only("HSET", |mut c| {
                let (id, json) = (id.clone(), json.clone());
                async move {
                    redis::pipe()
                        .atomic()
                        .hset(apps, id, json)
                        .ignore()
                        .set(version, new_version())
                        .ignore()
                        .query_async(&mut c)
                        .await
                }
            })
            .await
    }

    /// Removes an app; false when there was none of that id.
    pub async fn delete(&self, id: &str) -> Result<bool, RedisError> {
        let id = id.to_owned();
        let (apps, version) = (&self.apps.0, &self.apps.1);
        self.conn
            .run_once_only("HDEL", |mut c| {
                let id = id.clone();
                async move {
                    let (removed,): (u64,) = redis::pipe()
                        .atomic()
                        .hdel(apps, id)
                        .set(version, new_version())
                        .ignore()
                        .query_async(&mut c)
                        .await?;
                    Ok(removed > 0)
                }
            })
            .await
    }
}

fn new_version() -> String {
    format!("{:016x}", crate::redis_backbone::rand_u64())
}
