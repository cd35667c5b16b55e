//! Laravel's own environment names, read when Herald's are not set, so a node started with the app's `.env`
//! uses what Laravel uses: `PUSHER_APP_*` / `REVERB_APP_*` (the default app), `REVERB_SERVER_HOST` /
//! `REVERB_SERVER_PORT` (where Reverb listens),
//! `REDIS_URL` or `REDIS_HOST` / `REDIS_PORT` / `REDIS_USERNAME` / `REDIS_PASSWORD` / `REDIS_DB` (Laravel's
//! `database.redis.default`), and the key prefix Laravel gives its Redis channels: `REDIS_PREFIX`, or
//! `APP_NAME` made into a slug followed by `_database_`, exactly as `config/database.php` derives it.
//! Each setting taken from here is reported with the variable it came from.

/// A value and the variable (or variables) it came from.
pub type Sourced<T> = (T, &'static str);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Laravel's names for the default app's id, key and secret, in the order they are read.
pub const APP_ID: [&str; 2] = ["PUSHER_APP_ID", "REVERB_APP_ID"];
pub const APP_KEY: [&str; 2] = ["PUSHER_APP_KEY", "REVERB_APP_KEY"];
pub const APP_SECRET: [&str; 2] = ["PUSHER_APP_SECRET", "REVERB_APP_SECRET"];

/// The first of `names` that is set and not empty, and which it was.
pub fn first_set(names: &[&'static str]) -> Option<Sourced<String>> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()).map(|v| (v, *n)))
}

/// `REVERB_SERVER_HOST`.
pub fn host() -> Option<Sourced<String>> {
    var("REVERB_SERVER_HOST").map(|h| (h, "REVERB_SERVER_HOST"))
}

/// `REVERB_SERVER_PORT`; an error names the variable and the value.
pub fn port() -> Result<Option<Sourced<u16>>, String> {
    match var("REVERB_SERVER_PORT") {
        None => Ok(None),
        Some(p) => match p.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(Some((port, "REVERB_SERVER_PORT"))),
            _ => Err(format!(
                "REVERB_SERVER_PORT={p:?} is not a port number; for example REVERB_SERVER_PORT=8080"
            )),
        },
    }
}

/// `REDIS_URL`, or a URL made of `REDIS_HOST` and its companions when `REDIS_HOST` is set.
pub fn redis_url() -> Result<Option<Sourced<String>>, String> {
    if let Some(url) = var("REDIS_URL") {
        return Ok(Some((url, "REDIS_URL")));
    }
    let Some(host) = var("REDIS_HOST") else {
        return Ok(None);
    };
    let port = var("REDIS_PORT").unwrap_or_else(|| "6379".into());
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "REDIS_PORT={port:?} is not a port number; for example REDIS_PORT=6379"
        ));
    }
    let db = var("REDIS_DB").unwrap_or_else(|| "0".into());
    if db.parse::<u32>().is_err() {
        return Err(format!(
            "REDIS_DB={db:?} is not a database number; for example REDIS_DB=0"
        ));
    }
    // Laravel's .env says `null` for "no password".
    let secret = |name: &str| var(name).filter(|v| v != "null");
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let auth = match (secret("REDIS_USERNAME"), secret("REDIS_PASSWORD")) {
        (Some(user), Some(pass)) => format!("{}:{}@", enc(&user), enc(&pass)),
        (None, Some(pass)) => format!(":{}@", enc(&pass)),
        (Some(user), None) => format!("{}@", enc(&user)),
        (None, None) => String::new(),
    };
    let scheme = match var("REDIS_SCHEME").as_deref() {
        Some("tls") | Some("rediss") => "rediss",
        _ => "redis",
    };
    Ok(Some((
        format!("{scheme}://{auth}{host}:{port}/{db}"),
        "REDIS_HOST/REDIS_PORT/REDIS_USERNAME/REDIS_PASSWORD/REDIS_DB",
    )))
}

/// `REDIS_PREFIX`, or Laravel's defaults derived from `APP_NAME`: `Str::slug(APP_NAME, '_') . '_database_'`
/// (Laravel 12 and earlier) and `Str::slug(APP_NAME) . '-database-'` (Laravel 13), both listened to, since
/// the Laravel version is not known here.
pub fn redis_prefixes() -> Option<Sourced<Vec<String>>> {
    if let Ok(prefix) = std::env::var("REDIS_PREFIX") {
        // An empty REDIS_PREFIX is a real choice in Laravel: no prefix at all.
        return Some((vec![prefix], "REDIS_PREFIX"));
    }
    var("APP_NAME").map(|name| {
        let prefixes = vec![
            format!("{}_database_", slug(&name, '_')),
            format!("{}-database-", slug(&name, '-')),
        ];
        (prefixes, "APP_NAME")
    })
}

/// Laravel's `Str::slug($name, $separator)` for the names apps use: `@` becomes `at`, the other separator
/// (`-` or `_`) and every run of characters other than letters, digits and whitespace become one
/// separator, punctuation is dropped, no separator at either end, lower case. (Letters outside ASCII are
/// kept as they are; Laravel would transliterate them: set REDIS_PREFIX for such names.)
pub fn slug(name: &str, separator: char) -> String {
    let replaced = name.replace('@', &format!("{separator}at{separator}"));
    let mut out = String::new();
    let mut gap = false;
    for c in replaced.chars() {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(separator);
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else if c == '_' || c == '-' || c.is_whitespace() {
            gap = true;
        }
        // Anything else (punctuation) is dropped, as Laravel drops it.
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_become_laravels_prefixes() {
        for (name, underscored, dashed) in [
            ("Laravel", "laravel", "laravel"),
            ("My Shop", "my_shop", "my-shop"),
            ("my-app 2", "my_app_2", "my-app-2"),
            ("Acme & Co.", "acme_co", "acme-co"),
            ("  Spaced__Out  ", "spaced_out", "spaced-out"),
            ("team@work", "team_at_work", "team-at-work"),
        ] {
            assert_eq!(slug(name, '_'), underscored, "{name}");
            assert_eq!(slug(name, '-'), dashed, "{name}");
        }
    }
}
