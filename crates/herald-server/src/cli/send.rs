//! `herald send CHANNEL EVENT [DATA]`: publishes an event through a node's HTTP API, signed with the
//! app's key and secret as Laravel's pusher driver signs it, so a developer can check the browser side
//! without touching the Laravel app.

use super::{text, Common};
use bytes::Bytes;
use herald_protocol::signature;
use http_body_util::Full;

/// Send an event to channels through the HTTP API, with the configured app's credentials
#[derive(Debug, clap::Parser)]
pub struct Args {
    /// The channel, or several separated by commas
    channel: String,
    /// The event name (what Echo's .listen() or pusher-js's bind() waits for)
    event: String,
    /// The event's data, JSON [default: {}]
    data: Option<String>,
    /// A socket id that should not receive it (as Laravel's toOthers())
    #[arg(long)]
    except: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub async fn run(args: Args) -> Result<i32, String> {
    let config = args.common.config()?;
    let app = args.common.app(&config)?;
    let data = args.data.unwrap_or_else(|| "{}".into());
    if serde_json::from_str::<serde_json::Value>(&data).is_err() {
        return Err(format!(
            "the data {data:?} is not JSON; quote it for the shell, e.g. '{{\"id\":1}}'"
        ));
    }
    let channels: Vec<&str> = args
        .channel
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let mut body = serde_json::json!({ "name": args.event, "channels": channels, "data": data });
    if let Some(except) = &args.except {
        body["socket_id"] = except.as_str().into();
    }
    let body = body.to_string();
    let path = format!("/apps/{}/events", app.id);
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let md5 = signature::body_md5(body.as_bytes());
    let params = [
        ("auth_key", app.key.as_str()),
        ("auth_timestamp", timestamp.as_str()),
        ("auth_version", "1.0"),
        ("body_md5", md5.as_str()),
    ];
    let signed = signature::sign_api(&app.secret, "POST", &path, params);
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .append_pair("auth_signature", &signed)
        .finish();
    let url = format!("{}{path}?{query}", args.common.url(&config));
    let client = crate::tls::app_client(config.app_ca_file.as_deref()).map_err(|e| e.to_string())?;
    let request = hyper::Request::post(&url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("{url}: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{}: {}", args.common.url(&config), crate::tls::cause(&e)))?;
    let status = response.status();
    let answer = text(response).await;
    if status.is_success() {
        println!(
            "sent {} to {} (app {}, HTTP {})",
            args.event,
            channels.join(", "),
            app.id,
            status.as_u16()
        );
        Ok(0)
    } else {
        println!("not sent: HTTP {} {answer}", status.as_u16());
        Ok(1)
    }
}
