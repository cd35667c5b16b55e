//! `herald apps`: the apps kept in Redis (`HERALD_REDIS_APPS`), managed from a terminal. Every change is
//! checked exactly as the config file is (and against the other apps: ids, keys and Redis prefixes of
//! their own) before it is written, and every node applies it within a second.

use super::Common;
use herald_redis::AppStore;
use herald_server::config::Config;
use serde_json::{Map, Value};

/// Manage the apps kept in Redis (HERALD_REDIS_APPS): every node follows a change within a second
#[derive(Debug, clap::Parser)]
pub struct Args {
    #[command(subcommand)]
    op: Op,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Subcommand)]
enum Op {
    /// Every app kept in Redis
    List,
    /// One app's settings (the secret masked unless --show-secret)
    Show {
        id: String,
        #[arg(long)]
        show_secret: bool,
    },
    /// A new app; the id, key and secret are generated unless given
    Create {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        secret: Option<String>,
        /// Any per-app setting of the config file, as KEY=VALUE (VALUE as JSON when it parses: 500, true, ["a"])
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Changes settings of an app
    Update {
        id: String,
        #[arg(long = "set", value_name = "KEY=VALUE", required = true)]
        set: Vec<String>,
    },
    /// A new secret; the old one stays accepted for HERALD_SECRET_OVERLAP_SECS on every node
    RotateSecret {
        id: String,
    },
    /// Closes the app's connections (4003) and refuses new ones and its HTTP API
    Disable {
        id: String,
    },
    Enable {
        id: String,
    },
    /// Removes the app (its connections are closed with 4003)
    Delete {
        id: String,
    },
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn store(config: &Config) -> Result<AppStore, String> {
    let Some(url) = &config.redis_url else {
        return Err(
            "herald apps keeps apps in Redis: set HERALD_REDIS_URL (and HERALD_REDIS_APPS=true on the nodes)".into(),
        );
    };
    let settings = herald_redis::RedisSettings {
        url: url.clone(),
        lease: config.lease,
        tls: config.redis_tls.clone(),
    };
    AppStore::new(&settings).map_err(|e| e.to_string())
}

fn unreachable(e: redis::RedisError) -> String {
    format!("Redis did not answer: {e}")
}

/// `KEY=VALUE` into the record (VALUE as JSON when it parses as JSON, else as a string).
fn apply_sets(record: &mut Map<String, Value>, sets: &[String]) -> Result<(), String> {
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(format!(
                "--set {set:?}: expected KEY=VALUE, such as max_connections=500"
            ));
        };
        if key == "id" {
            return Err("--set id=…: an app's id cannot change (create another app)".into());
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        record.insert(key.trim().to_owned(), value);
    }
    Ok(())
}

/// Checks `record` as the nodes will (alone, then with every other app), then stores it.
async fn save(config: &Config, store: &AppStore, id: &str, record: &Map<String, Value>) -> Result<(), String> {
    let json = Value::Object(record.clone()).to_string();
    let (apps, errors) = config.apps_from_store(&[(id.to_owned(), json.clone())]);
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let (_, mut others) = store.all().await.map_err(unreachable)?;
    others.retain(|(other, _)| other != id);
    let (mut stored, _) = config.apps_from_store(&others);
    stored.extend(apps);
    config.with_stored_apps(stored)?;
    store.put(id, &json).await.map_err(unreachable)
}

async fn load(store: &AppStore, id: &str) -> Result<Map<String, Value>, String> {
    let json = store
        .get(id)
        .await
        .map_err(unreachable)?
        .ok_or_else(|| format!("no app {id:?} is kept in Redis (herald apps list)"))?;
    match serde_json::from_str(&json) {
        Ok(Value::Object(record)) => Ok(record),
        _ => Err(format!(
            "the app {id:?} in Redis is not a JSON object; delete it and create it again"
        )),
    }
}

pub async fn run(args: Args) -> Result<i32, String> {
    let config = args.common.config()?;
    let store = store(&config)?;
    match args.op {
        Op::List => {
            let (_, records) = store.all().await.map_err(unreachable)?;
            if records.is_empty() {
                println!("no app is kept in Redis (herald apps create)");
            }
            let mut records = records;
            records.sort();
            for (id, json) in records {
                let record: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
                let enabled = record.get("enabled").and_then(Value::as_bool).unwrap_or(true);
                let key = record.get("key").and_then(Value::as_str).unwrap_or("?");
                println!("{id}\tkey {key}\t{}", if enabled { "enabled" } else { "disabled" });
            }
        }
        Op::Show { id, show_secret } => {
            let mut record = load(&store, &id).await?;
            if !show_secret {
                for masked in ["secret", "encryption_master_key", "dashboard_token"] {
                    if record.contains_key(masked) {
                        record.insert(masked.into(), "********".into());
                    }
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Object(record)).unwrap_or_default()
            );
        }
        Op::Create { id, key, secret, set } => {
            let id = match id {
                Some(id) => id,
                None => (u32::from_str_radix(&random_hex(4)?, 16).unwrap_or(1) % 9_000_000 + 1_000_000).to_string(),
            };
            if store.get(&id).await.map_err(unreachable)?.is_some() {
                return Err(format!(
                    "an app {id:?} is kept in Redis already (herald apps update {id} --set …)"
                ));
            }
            let mut record = Map::new();
            record.insert("id".into(), id.clone().into());
            record.insert("key".into(), key.map_or_else(|| random_hex(10), Ok)?.into());
            record.insert("secret".into(), secret.map_or_else(|| random_hex(20), Ok)?.into());
            apply_sets(&mut record, &set)?;
            save(&config, &store, &id, &record).await?;
            println!("created app {id}");
            for field in ["id", "key", "secret"] {
                println!("{field}\t{}", record[field].as_str().unwrap_or_default());
            }
        }
        Op::Update { id, set } => {
            let mut record = load(&store, &id).await?;
            apply_sets(&mut record, &set)?;
            save(&config, &store, &id, &record).await?;
            println!("updated app {id}");
        }
        Op::RotateSecret { id } => {
            let mut record = load(&store, &id).await?;
            let secret = random_hex(20)?;
            record.insert("secret".into(), secret.clone().into());
            save(&config, &store, &id, &record).await?;
            println!(
                "new secret for app {id}: {secret}\nthe old one stays accepted for {} s on every node: move Laravel to the new one before then",
                config.secret_overlap.as_secs()
            );
        }
        Op::Disable { id } => {
            let mut record = load(&store, &id).await?;
            record.insert("enabled".into(), false.into());
            save(&config, &store, &id, &record).await?;
            println!("disabled app {id}: its connections are closed with 4003");
        }
        Op::Enable { id } => {
            let mut record = load(&store, &id).await?;
            record.insert("enabled".into(), true.into());
            save(&config, &store, &id, &record).await?;
            println!("enabled app {id}");
        }
        Op::Delete { id } => {
            if !store.delete(&id).await.map_err(unreachable)? {
                return Err(format!("no app {id:?} is kept in Redis (herald apps list)"));
            }
            println!("deleted app {id}: its connections are closed with 4003");
        }
    }
    Ok(0)
}
