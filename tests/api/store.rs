//! The object store of this run's backend (a directory, or S3 in CI), through the portal's own
//! `store` module, as a running instance opened it.

use bytes::Bytes;
use evidence_portal::store::{ObjectKey, StoreError};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::spawn_app;

fn body(data: &[u8]) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + use<> {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(256 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn the_configured_store_round_trips_large_objects_with_ranges() {
    let app = spawn_app().await;
    let store = &app.state.store;
    // Larger than one multipart part, so the multipart path runs on every backend.
    let data: Vec<u8> = (0..12 * 1024 * 1024 + 777u32)
        .map(|i| (i % 251) as u8)
        .collect();
    let key = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());

    let stored = store.put_stream(&key, body(&data), u64::MAX).await.unwrap();
    assert_eq!(stored.size, data.len() as u64);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
    assert_eq!(stored.crc32, crc32fast::hash(&data));
    assert_eq!(store.size(&key).await.unwrap(), data.len() as u64);

    let all: Vec<Bytes> = store
        .get(&key, None)
        .await
        .unwrap()
        .body
        .try_collect()
        .await
        .unwrap();
    assert_eq!(Sha256::digest(all.concat()), Sha256::digest(&data));

    let fetched = store.get(&key, Some(5_000_000..5_000_100)).await.unwrap();
    assert_eq!(fetched.total_size, data.len() as u64);
    assert_eq!(fetched.range, 5_000_000..5_000_100);
    let part: Vec<Bytes> = fetched.body.try_collect().await.unwrap();
    assert_eq!(part.concat(), data[5_000_000..5_000_100]);
}

#[tokio::test]
async fn an_oversize_upload_leaves_no_object_on_the_configured_store() {
    let app = spawn_app().await;
    let store = &app.state.store;
    let data = vec![7u8; 11 * 1024 * 1024];
    let key = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
    let err = store
        .put_stream(&key, body(&data), 10 * 1024 * 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
    assert!(matches!(
        store.size(&key).await,
        Err(StoreError::NotFound(_))
    ));
}
