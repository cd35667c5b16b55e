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

use crate::keys::{APPS, APPS_VERSION};

/// The apps kept in one Redis.
#[derive(Clone)]
pub struct AppStore {
    conn: std::sync::Arc<RedisConnection>,
}

impl AppStore {
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisConfigError> {
        Ok(AppStore {
            conn: std::sync::Arc::new(RedisConnection::new(endpoint(settings)?)),
        })
    }

    /// The version of the stored apps (None: no app was ever stored, or Redis lost them).
    pub async fn version(&self) -> Result<Option<String>, RedisError> {
        self.conn
            .run("GET", |mut c| async move {
                redis::cmd("GET").arg(APPS_VERSION).query_async(&mut c).await
            })
            .await
    }

    /// Every app's JSON, by id, with the version it was read at.
    pub async fn all(&self) -> Result<(Option<String>, Vec<(String, String)>), RedisError> {
        self.conn
            .run("HGETALL", |mut c| async move {
                let (version, apps): (Option<String>, Vec<(String, String)>) = redis::pipe()
                    .atomic()
                    .cmd("GET")
                    .arg(APPS_VERSION)
                    .cmd("HGETALL")
                    .arg(APPS)
                    .query_async(&mut c)
                    .await?;
                Ok((version, apps))
            })
            .await
    }

    /// One app's JSON.
    pub async fn get(&self, id: &str) -> Result<Option<String>, RedisError> {
        let id = id.to_owned();
        self.conn
            .run("HGET", |mut c| {
                let id = id.clone();
                async move { redis::cmd("HGET").arg(APPS).arg(id).query_async(&mut c).await }
            })
            .await
    }

    /// Stores an app (new or replaced) and bumps the version, in one transaction.
    pub async fn put(&self, id: &str, json: &str) -> Result<(), RedisError> {
        let (id, json) = (id.to_owned(), json.to_owned());
        self.conn
            .run_once_only("HSET", |mut c| {
                let (id, json) = (id.clone(), json.clone());
                async move {
                    redis::pipe()
                        .atomic()
                        .hset(APPS, id, json)
                        .ignore()
                        .set(APPS_VERSION, new_version())
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
        self.conn
            .run_once_only("HDEL", |mut c| {
                let id = id.clone();
                async move {
                    let (removed,): (u64,) = redis::pipe()
                        .atomic()
                        .hdel(APPS, id)
                        .set(APPS_VERSION, new_version())
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
