//! Both stores (memory and directory) through the same checks.

use super::*;
use futures_util::TryStreamExt;

fn chunks(data: &[u8], size: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let owned: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(owned)
}

fn sample(len: usize) -> Vec<u8> {
    // Deterministic, non-repeating at part boundaries.
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

async fn read_all(store: &Store, key: &ObjectKey, range: Option<Range<u64>>) -> Vec<u8> {
    let fetched = store.get(key, range).await.unwrap();
    let parts: Vec<Bytes> = fetched.body.try_collect().await.unwrap();
    parts.concat()
}

async fn round_trip(store: Store) {
    let case = Uuid::now_v7();
    for len in [0usize, 1, 70_000, PART_SIZE + 1, 3 * PART_SIZE + 12_345] {
        let data = sample(len);
        let key = ObjectKey::material(case, Uuid::now_v7());
        let stored = store
            .put_stream(&key, chunks(&data, 64 * 1024), u64::MAX)
            .await
            .unwrap();
        assert_eq!(stored.size, len as u64);
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(stored.sm3, hex::encode(<sm3::Sm3 as Digest>::digest(&data)));
        assert_eq!(stored.crc32, crc32fast::hash(&data));
        assert_eq!(store.size(&key).await.unwrap(), len as u64);
        assert_eq!(read_all(&store, &key, None).await, data);
        if len > 10 {
            let r = 3..(len as u64 - 2);
            assert_eq!(
                read_all(&store, &key, Some(r.clone())).await,
                data[3..len - 2]
            );
        }
    }
}

async fn refuses_oversize_and_leaves_nothing(store: Store) {
    let case = Uuid::now_v7();
    for len in [1000usize, 2 * PART_SIZE + 5] {
        let key = ObjectKey::material(case, Uuid::now_v7());
        let err = store
            .put_stream(&key, chunks(&sample(len), 8192), len as u64 - 1)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
        assert!(matches!(
            store.size(&key).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

async fn failing_body_leaves_nothing(store: Store) {
    let key = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
    let data = sample(PART_SIZE * 2);
    let failing = chunks(&data, 1 << 20).chain(futures_util::stream::iter([Err(
        std::io::Error::other("client went away"),
    )]));
    let err = store.put_stream(&key, failing, u64::MAX).await.unwrap_err();
    assert!(matches!(err, StoreError::Body(_)), "{err:?}");
    assert!(matches!(
        store.size(&key).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn memory_store_round_trips_and_limits() {
    let store = Store::open(&StoreUrl::Memory, &[]).unwrap();
    round_trip(store.clone()).await;
    refuses_oversize_and_leaves_nothing(store.clone()).await;
    failing_body_leaves_nothing(store.clone()).await;
    store.check(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn directory_store_round_trips_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let store = Store::open(&StoreUrl::Directory(root.clone()), &[]).unwrap();
    assert!(root.is_dir(), "the directory is created on open");
    round_trip(store.clone()).await;
    refuses_oversize_and_leaves_nothing(store.clone()).await;
    failing_body_leaves_nothing(store.clone()).await;
    store.check(Duration::from_secs(1)).await.unwrap();
}

/// The directory store reads through its own path (`local_get`); both paths must answer
/// alike at the edges.
async fn missing_objects_and_ranges_at_the_edges(store: Store) {
    let key = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
    assert!(matches!(
        store.get(&key, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.get(&key, Some(5..5)).await,
        Err(StoreError::RangeNotSatisfiable)
    ));
    let data = sample(1000);
    store
        .put_stream(&key, chunks(&data, 300), u64::MAX)
        .await
        .unwrap();
    let beyond = store.get(&key, Some(1000..1001)).await.map(|f| f.range);
    assert!(
        matches!(beyond, Err(StoreError::RangeNotSatisfiable)),
        "{beyond:?}"
    );
    let fetched = store.get(&key, Some(990..2000)).await.unwrap();
    assert_eq!(
        (fetched.total_size, fetched.range.clone()),
        (1000, 990..1000)
    );
    assert_eq!(read_all(&store, &key, Some(990..2000)).await, data[990..]);
    let empty = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
    store
        .put_stream(&empty, chunks(&[], 1), u64::MAX)
        .await
        .unwrap();
    assert_eq!(read_all(&store, &empty, None).await, Vec::<u8>::new());
}

#[tokio::test]
async fn missing_objects_and_ranges_at_the_edges_memory() {
    missing_objects_and_ranges_at_the_edges(Store::open(&StoreUrl::Memory, &[]).unwrap()).await;
}

#[tokio::test]
async fn missing_objects_and_ranges_at_the_edges_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreUrl::Directory(dir.path().join("objects")), &[]).unwrap();
    missing_objects_and_ranges_at_the_edges(store).await;
}

#[tokio::test]
async fn a_read_that_stops_short_ends_with_an_error_not_a_spin() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let store = Store::open(&StoreUrl::Directory(root.clone()), &[]).unwrap();
    let key = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
    let data = sample(3 * 1024 * 1024);
    store
        .put_stream(&key, chunks(&data, 65536), u64::MAX)
        .await
        .unwrap();
    let mut fetched = store.get(&key, None).await.unwrap();
    let first = fetched.body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    std::fs::OpenOptions::new()
        .write(true)
        .open(root.join(key.as_str()))
        .unwrap()
        .set_len(first.len() as u64)
        .unwrap();
    let rest: Vec<Result<Bytes, StoreError>> =
        tokio::time::timeout(Duration::from_secs(5), fetched.body.collect::<Vec<_>>())
            .await
            .expect("the read ends instead of spinning");
    assert!(
        matches!(rest.last(), Some(Err(StoreError::Truncated { .. }))),
        "{rest:?}"
    );
}

#[test]
fn keys_are_made_from_ids_only() {
    let case = Uuid::nil();
    let key = ObjectKey::material(case, Uuid::max());
    assert_eq!(
        key.as_str(),
        "cases/00000000-0000-0000-0000-000000000000/ffffffff-ffff-ffff-ffff-ffffffffffff"
    );
    assert_eq!(ObjectKey::from_stored(key.as_str()).unwrap(), key);
    assert!(ObjectKey::from_stored("cases/../etc").is_err());
}
