//! `GET /static/{hash}/{name}`: compiled-in assets with year-long caching when the hash matches.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::assets;
use crate::error::AppError;

pub async fn asset(
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (hash, name) = path.into_inner();
    let asset = assets::get(&name).ok_or(AppError::NotFound)?;
    let etag = format!("\"{}\"", asset.hash);
    // A page from an older or newer instance may ask for another version: serve what we have,
    // but only let it be cached for long when the version is the one asked for.
    let cache = if hash == asset.hash {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag));
    if unchanged {
        return Ok(res.finish());
    }
    Ok(res.content_type(asset.content_type).body(asset.bytes))
}
