//! `gc`'s part for the render cache (`{data_dir}/render-cache/`, derived data): the files beyond
//! `PORTAL_RENDER_CACHE_BYTES`, least recently used first, and temporary files a killed process
//! left; removed with `--delete`. The whole cache goes with `PORTAL_RENDER_CACHE_BYTES=0
//! evidence-portal gc --delete`: every file is then beyond the bound, and views draw them again.

use super::*;

pub(super) async fn gc(settings: &Settings, delete: bool) -> Result<(), Failure> {
    let cache = crate::render::Cache::new(&settings.data_dir, settings.render_cache_bytes);
    let dir = cache.dir().display().to_string();
    let walked = tokio::task::spawn_blocking(move || cache.beyond_bound(delete))
        .await
        .map_err(|e| format!("cannot walk the render cache {dir}: {e}"))?
        .map_err(|e| format!("cannot walk the render cache {dir}: {e}"))?;
    let when = |t: std::time::SystemTime| time::OffsetDateTime::from(t).to_offset(CST);
    for e in &walked.beyond {
        println!(
            "{}  {}  {}/{}  ({} bytes of a cached rendering, beyond the bound)",
            if delete { "deleted" } else { "cached" },
            when(e.used),
            dir,
            e.name,
            e.bytes
        );
    }
    for e in &walked.dead_temporaries {
        println!(
            "{}  {}  {}/{}  ({} bytes of a rendering being cached when its process stopped)",
            if delete { "deleted" } else { "temporary" },
            when(e.used),
            dir,
            e.name,
            e.bytes
        );
    }
    videos(settings, delete).await?;
    let found = walked.beyond.len() + walked.dead_temporaries.len();
    println!(
        "render cache: {} file(s), {} bytes kept of {} allowed; {found} beyond{}",
        walked.kept,
        walked.kept_bytes,
        settings.render_cache_bytes,
        if delete || found == 0 {
            ""
        } else {
            "; run with --delete to remove them"
        }
    );
    Ok(())
}

/// The view-only videos' transcodes (`render-cache/video/`): those past their 24 hours, and
/// what a transcode killed mid-way left (its temporary files, which no one holds any more).
async fn videos(settings: &Settings, delete: bool) -> Result<(), Failure> {
    let videos = crate::render::video::Videos::new(&settings.data_dir, &settings.ffmpeg);
    let dir = videos.dir().display().to_string();
    let swept =
        tokio::task::spawn_blocking(move || videos.sweep(delete, std::time::SystemTime::now()))
            .await
            .map_err(|e| format!("cannot walk the video transcodes {dir}: {e}"))?
            .map_err(|e| format!("cannot walk the video transcodes {dir}: {e}"))?;
    let when = |t: std::time::SystemTime| time::OffsetDateTime::from(t).to_offset(CST);
    let gone = if delete { "deleted" } else { "expired" };
    for e in &swept.expired {
        println!(
            "{gone}  {}  {dir}/{}  ({} bytes of a watermarked video past its 24 hours)",
            when(e.used),
            e.name,
            e.bytes
        );
    }
    let dead = if delete { "deleted" } else { "temporary" };
    for e in &swept.dead_temporaries {
        println!(
            "{dead}  {}  {dir}/{}  ({} bytes of a transcode whose process stopped)",
            when(e.used),
            e.name,
            e.bytes
        );
    }
    println!(
        "video transcodes: {} file(s), {} bytes kept; {} past their time, {} left by stopped transcodes{}",
        swept.kept,
        swept.kept_bytes,
        swept.expired.len(),
        swept.dead_temporaries.len(),
        if delete || swept.expired.len() + swept.dead_temporaries.len() == 0 {
            ""
        } else {
            "; run with --delete to remove them"
        }
    );
    Ok(())
}
