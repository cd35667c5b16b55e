//! `herald apps`: the apps kept in Redis (`HERALD_REDIS_APPS`), managed from a terminal. Every change is
//! checked exactly as the config file is (and against the other apps: ids, keys and Redis prefixes of
//! their own) before it is written, and every node applies it within a second.

use super::Common;
use crate::app_admin::{masked, AdminError, AppAdmin};
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

/// `KEY=VALUE` settings as fields (VALUE as JSON when it parses as JSON, else as a string).
fn fields(sets: &[String]) -> Result<Map<String, Value>, String> {
    let mut fields = Map::new();
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(format!(
                "--set {set:?}: expected KEY=VALUE, such as max_connections=500"
            ));
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        fields.insert(key.trim().to_owned(), value);
    }
    Ok(fields)
}

pub async fn run(args: Args) -> Result<i32, String> {
    let admin = AppAdmin::new(args.common.config()?)?;
    let e = |e: AdminError| e.to_string();
    match args.op {
        Op::List => {
            let apps = admin.list().await.map_err(e)?;
            if apps.is_empty() {
                println!("no app is kept in Redis (herald apps create)");
            }
            for record in apps {
                let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
                let enabled = record.get("enabled").and_then(Value::as_bool).unwrap_or(true);
                let state = if enabled { "enabled" } else { "disabled" };
                println!("{}\tkey {}\t{state}", text("id"), text("key"));
            }
        }
        Op::Show { id, show_secret } => {
            let record = admin.get(&id).await.map_err(e)?;
            let record = if show_secret { record } else { masked(record) };
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Object(record)).unwrap_or_default()
            );
        }
        Op::Create { id, key, secret, set } => {
            let mut given = fields(&set)?;
            for (name, value) in [("id", id), ("key", key), ("secret", secret)] {
                if let Some(value) = value {
                    given.insert(name.into(), value.into());
                }
            }
            let record = admin.create(given).await.map_err(e)?;
            let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
            println!("created app {}", text("id"));
            for field in ["id", "key", "secret"] {
                println!("{field}\t{}", text(field));
            }
        }
        Op::Update { id, set } => {
            admin.update(&id, fields(&set)?).await.map_err(e)?;
            println!("updated app {id}");
        }
        Op::RotateSecret { id } => {
            let secret = admin.rotate_secret(&id).await.map_err(e)?;
            println!(
                "new secret for app {id}: {secret}\nthe old one stays accepted for {} s on every node: move Laravel to the new one before then",
                admin.secret_overlap_secs()
            );
        }
        Op::Disable { id } => {
            admin.set_enabled(&id, false).await.map_err(e)?;
            println!("disabled app {id}: its connections are closed with 4003");
        }
        Op::Enable { id } => {
            admin.set_enabled(&id, true).await.map_err(e)?;
            println!("enabled app {id}");
        }
        Op::Delete { id } => {
            admin.delete(&id).await.map_err(e)?;
            println!("deleted app {id}: its connections are closed with 4003");
        }
    }
    Ok(0)
}
