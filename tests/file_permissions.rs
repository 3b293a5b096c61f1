//! The files that hold secrets (the SQLite databases of both services with their `-wal` and
//! `-shm` companions, and the master key file) are created owner-only, and a start names each
//! existing one that group or others may read in a WARN line.
//! (Its own test binary, so the global log subscriber captures these tests only.)
#![cfg(unix)]

// The end-to-end helpers of tests/e2e. This binary uses a few of them, so the module is `pub`
// here (a test crate's public items are not dead code); tests/e2e declares it private, so there
// an unused helper is still reported.
#[path = "e2e/common/mod.rs"]
pub mod common;

use common::system;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use common::{Backend, TestAuth, spawn_auth_with, test_db};
use keys::MasterKey;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every log line of this test binary so far. The subscriber is installed by the first test to
/// ask, whichever that is; tests running at the same time share it, so each looks only for
/// lines naming its own temporary files.
fn logs() -> String {
    static CAPTURE: LazyLock<Capture> = LazyLock::new(|| {
        let capture = Capture::default();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(capture.clone())
            .init();
        capture
    });
    String::from_utf8_lossy(&CAPTURE.0.lock().unwrap()).into_owned()
}

/// The WARN lines about loose permissions that name `path` as their `path` field (exactly:
/// `auth.db` does not match a line about `auth.db-wal`). Other warnings, such as the one about
/// a newly created master key, do not count.
fn loose_warnings_naming(logs: &str, path: &Path) -> Vec<String> {
    let field = format!("path={}", path.display());
    logs.lines()
        .filter(|line| line.contains(" WARN ") && line.contains("readable"))
        .filter(|line| line.split_whitespace().any(|word| word == field))
        .map(str::to_owned)
        .collect()
}

/// A SQLite database file and its write-ahead log and shared-memory index.
fn sqlite_files(database: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| PathBuf::from(format!("{}{suffix}", database.display()));
    [database.to_owned(), with("-wal"), with("-shm")]
}

fn mode(path: &Path) -> String {
    let metadata =
        std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    format!("{:o}", metadata.permissions().mode() & 0o777)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_creates_databases_and_master_key_owner_only() {
    // Installed first so that this test's own start is captured, too.
    logs();
    let (auth, api) = system::spawn_system(Backend::Sqlite).await.unwrap();
    let auth_db = auth.db.sqlite_path().unwrap();
    let api_db = api.db.sqlite_path().unwrap();
    // Both services hold their pools open, so SQLite keeps `-wal` and `-shm` beside each
    // database (it removes them when the last connection closes).
    let mut files = vec![auth.db.master_key_path()];
    files.extend(sqlite_files(&auth_db));
    files.extend(sqlite_files(&api_db));
    for file in &files {
        assert_eq!(mode(file), "600", "{}", file.display());
    }
    let logs = logs();
    for file in &files {
        assert!(
            loose_warnings_naming(&logs, file).is_empty(),
            "a file created owner-only is not warned about: {}",
            file.display()
        );
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_names_each_file_readable_by_others_in_a_warning() {
    logs();
    let loose = || std::fs::Permissions::from_mode(0o644);
    // The token service's database and master key exist already, readable by everyone, as after
    // a copy made with a lax umask.
    let auth_db = test_db(Backend::Sqlite).await.unwrap();
    let auth_db_path = auth_db.sqlite_path().unwrap();
    std::fs::write(&auth_db_path, b"").unwrap();
    std::fs::set_permissions(&auth_db_path, loose()).unwrap();
    let key = MasterKey::generate().unwrap();
    std::fs::write(auth_db.master_key_path(), key.to_file_contents().as_bytes()).unwrap();
    std::fs::set_permissions(auth_db.master_key_path(), loose()).unwrap();
    let settings = TestAuth::settings(&auth_db);
    let auth = spawn_auth_with(auth_db, settings).await;

    // The partner API's database is owner-only, but a write-ahead log left behind by an earlier
    // run is not (an empty log is what SQLite leaves after a checkpoint).
    let api_db = test_db(Backend::Sqlite).await.unwrap();
    let api_db_path = api_db.sqlite_path().unwrap();
    let [_, api_wal, _] = sqlite_files(&api_db_path);
    std::fs::write(&api_db_path, b"").unwrap();
    std::fs::set_permissions(&api_db_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&api_wal, b"").unwrap();
    std::fs::set_permissions(&api_wal, loose()).unwrap();
    let settings = system::resource_settings(&auth, &api_db);
    let api = system::spawn_resource_with(api_db, settings).await;

    // Both starts have finished (the servers are listening), so their warnings are written.
    let logs = logs();
    for file in [&auth_db_path, &auth.db.master_key_path(), &api_wal] {
        let warnings = loose_warnings_naming(&logs, file);
        assert_eq!(
            warnings.len(),
            1,
            "one WARN line naming {}:\n{logs}",
            file.display()
        );
        assert!(warnings[0].contains("chmod 600"), "{}", warnings[0]);
    }
    assert!(
        loose_warnings_naming(&logs, &api_db_path).is_empty(),
        "an owner-only database is not warned about:\n{logs}"
    );
    // SQLite gives the companions it creates the permissions of the database file: loose
    // beside the loose database, owner-only beside the owner-only one.
    for file in sqlite_files(&auth_db_path) {
        assert_eq!(mode(&file), "644", "{}", file.display());
    }
    let [_, _, api_shm] = sqlite_files(&api_db_path);
    assert_eq!(mode(&api_shm), "600");
    api.stop().await;
    auth.stop().await;
}
