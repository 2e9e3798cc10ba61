//! Signing keys sealed at rest under a key-encryption key (KEK), against the real binary and
//! the real SQLite file: a database copied without its KEK gives up no key material and
//! starts nothing; a wrong KEK is refused without a write; `keys rewrap` moves every key to a
//! new KEK; keys stored plain by an older version are sealed on first start.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, Server, password_grant, register, tessera, userinfo_bearer};
use tessera_core::jose::Algorithm;
use tessera_core::keys::kek::{self, Kek};
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};
use tessera_core::time::UnixTime;
use tessera_store::KeyStore as _;
use tessera_store::sqlite::SqliteStore;

const DB: &str = "tessera.db";
/// One issuer across restarts (the port changes), so earlier tokens stay checkable.
const ISSUER: &str = "http://tessera.test";

fn serve(data_dir: &Path) -> Server {
    Server::start(|cmd, addr| {
        cmd.arg("--listen")
            .arg(addr.to_string())
            .args(["--issuer", ISSUER])
            .arg("--data-dir")
            .arg(data_dir);
    })
}

/// Runs `cmd` to its exit (a server that starts after all is killed and fails the test).
fn run_to_exit(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the command did not exit: it started when it should have refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// `tessera serve` on `data_dir` with `configure`'s extra settings, expected to refuse.
fn serve_refuses(data_dir: &Path, configure: impl FnOnce(&mut Command)) -> String {
    let mut cmd = tessera();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir);
    configure(&mut cmd);
    let out = run_to_exit(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "started: {stderr}");
    stderr
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The stored key records of the SQLite file in `data_dir`, as the store holds them.
fn stored_keys(data_dir: &Path) -> Vec<KeyRecord> {
    runtime().block_on(async {
        let store = SqliteStore::open(&data_dir.join(DB)).await.unwrap();
        store.keys().await.unwrap()
    })
}

fn insert_plain(data_dir: &Path, record: &KeyRecord) {
    runtime().block_on(async {
        let store = SqliteStore::open(&data_dir.join(DB)).await.unwrap();
        store.insert_key(record).await.unwrap();
    });
}

/// Comparable form of stored keys: (kid, status, stored secret bytes).
fn snapshot(keys: &[KeyRecord]) -> Vec<(String, KeyStatus, Vec<u8>)> {
    keys.iter()
        .map(|k| (k.kid.clone(), k.status, k.secret.to_vec()))
        .collect()
}

fn read_kek(path: &Path) -> Kek {
    Kek::from_base64(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_kek(path: &Path, kek: &Kek) {
    std::fs::write(path, format!("{}\n", kek.to_base64().as_str())).unwrap();
}

/// Every byte of the database files (main file, write-ahead log, shared-memory index) under
/// `data_dir`. A closing store's last connection deletes the log after copying it into the
/// main file, so a file may vanish between listing and reading: the whole read starts over.
fn database_bytes(data_dir: &Path) -> Vec<u8> {
    loop {
        if let Some(all) = read_database_files(data_dir) {
            return all;
        }
    }
}

/// The database files' bytes, or `None` if one vanished while they were read.
fn read_database_files(data_dir: &Path) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with(DB) {
            match std::fs::read(&path) {
                Ok(bytes) => all.extend(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    Some(all)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Fails if any 16-byte run of `secret` is anywhere in the database files under `data_dir`:
/// `what` names the secret.
fn assert_nowhere_in_database(data_dir: &Path, secret: &[u8], what: &str) {
    let bytes = database_bytes(data_dir);
    for window in secret.windows(16) {
        assert!(!contains(&bytes, window), "{what} in the database files");
    }
}

fn copy_database(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        if name.to_string_lossy().starts_with(DB) {
            std::fs::copy(&path, to.join(name)).unwrap();
        }
    }
}

#[test]
fn copied_database_without_its_kek_gives_up_no_key_material_and_starts_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path());
    register(&server, "alice", PASSWORD);
    assert_eq!(server.kill().code(), None);

    let kek = read_kek(&data.path().join("kek"));
    let stored = stored_keys(data.path());
    assert_eq!(stored.len(), 1);
    for record in &stored {
        assert!(kek::is_sealed(&record.secret), "stored sealed");
        let opened = kek.open_record(record).unwrap();
        // The private key is PKCS#8, holding the Ed25519 seed.
        assert_nowhere_in_database(data.path(), &opened.secret, "key material");
    }

    // A fresh data directory holding only the copied database: no KEK, so no start, and no
    // new key made over the one it cannot open.
    let stolen = tempfile::tempdir().unwrap();
    copy_database(data.path(), stolen.path());
    let before = snapshot(&stored_keys(stolen.path()));
    let stderr = serve_refuses(stolen.path(), |_| {});
    assert!(
        stderr.contains("does not open under this KEK") && stderr.contains("Refusing to start"),
        "{stderr}"
    );
    assert_eq!(
        snapshot(&stored_keys(stolen.path())),
        before,
        "keys unchanged"
    );
    assert!(
        !stolen.path().join("kek").exists(),
        "the KEK file made up by the refused start is removed again"
    );
    // The admin commands refuse the same way.
    let out = run_to_exit({
        let mut cmd = tessera();
        cmd.args(["keys", "list", "--data-dir"]).arg(stolen.path());
        cmd
    });
    assert!(!out.status.success());
    assert_eq!(snapshot(&stored_keys(stolen.path())), before);
}

#[test]
fn wrong_kek_refuses_to_start_and_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    serve(data.path()).kill();
    let before = snapshot(&stored_keys(data.path()));
    let kek_text = std::fs::read(data.path().join("kek")).unwrap();

    let wrong = tempfile::tempdir().unwrap();
    let wrong_file = wrong.path().join("wrong.kek");
    write_kek(&wrong_file, &Kek::generate().unwrap());
    let stderr = serve_refuses(data.path(), |cmd| {
        cmd.arg("--kek-file").arg(&wrong_file);
    });
    assert!(stderr.contains("does not open under this KEK"), "{stderr}");
    let stderr = serve_refuses(data.path(), |cmd| {
        cmd.env("TESSERA_KEK", Kek::generate().unwrap().to_base64().as_str());
    });
    assert!(stderr.contains("does not open under this KEK"), "{stderr}");
    // Replacing the default KEK file is refused the same way.
    write_kek(&data.path().join("kek"), &Kek::generate().unwrap());
    let stderr = serve_refuses(data.path(), |_| {});
    assert!(stderr.contains("does not open under this KEK"), "{stderr}");
    assert_eq!(
        snapshot(&stored_keys(data.path())),
        before,
        "keys unchanged"
    );

    // A malformed KEK is refused before the store is touched.
    let stderr = serve_refuses(data.path(), |cmd| {
        cmd.env("TESSERA_KEK", "c2hvcnQ=");
    });
    assert!(stderr.contains("TESSERA_KEK"), "{stderr}");

    // The right KEK still starts it, with the same key.
    std::fs::write(data.path().join("kek"), kek_text).unwrap();
    serve(data.path()).kill();
    assert_eq!(snapshot(&stored_keys(data.path())), before);
}

#[test]
fn rewrap_reseals_every_key_and_the_old_kek_then_fails() {
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path());
    register(&server, "alice", PASSWORD);
    let (access, _) = password_grant(&server, "alice", PASSWORD);
    server.kill();
    let out = run_to_exit({
        let mut cmd = tessera();
        cmd.args(["keys", "rotate", "--data-dir"]).arg(data.path());
        cmd
    });
    assert!(out.status.success(), "{out:?}");
    let old = read_kek(&data.path().join("kek"));
    let before = stored_keys(data.path());
    assert_eq!(before.len(), 2);

    let elsewhere = tempfile::tempdir().unwrap();
    let new_file = elsewhere.path().join("new.kek");
    let new = Kek::generate().unwrap();
    write_kek(&new_file, &new);
    let out = run_to_exit({
        let mut cmd = tessera();
        cmd.args(["keys", "rewrap", "--new-kek-file"])
            .arg(&new_file)
            .arg("--data-dir")
            .arg(data.path());
        cmd
    });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("\"rewrapped\":2"), "{stdout}");
    assert!(
        stderr.contains("Replace it")
            && stderr.contains(&*data.path().join("kek").to_string_lossy()),
        "the operator is told to replace the default KEK file: {stderr}"
    );
    assert!(
        stderr.contains("every instance stopped"),
        "and to stop every instance: {stderr}"
    );
    assert!(!stderr.contains("   "), "no run of spaces: {stderr:?}");

    let after = stored_keys(data.path());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((&b.kid, b.status), (&a.kid, a.status));
        // Neither the key nor its old-KEK ciphertext lingers in free pages or the log.
        let plain = old.open_record(b).unwrap();
        assert_nowhere_in_database(data.path(), &plain.secret, "a plain key");
        assert_nowhere_in_database(data.path(), &b.secret, "an old-KEK ciphertext");
        assert!(
            old.open_record(a).is_err(),
            "the old KEK no longer opens {}",
            a.kid
        );
        assert_eq!(
            new.open_record(a).unwrap().secret.as_slice(),
            old.open_record(b).unwrap().secret.as_slice()
        );
    }

    // The old KEK (still in the default file) fails to start; the new one works.
    let stderr = serve_refuses(data.path(), |_| {});
    assert!(stderr.contains("does not open under this KEK"), "{stderr}");
    let server = Server::start(|cmd, addr| {
        cmd.arg("--listen")
            .arg(addr.to_string())
            .args(["--issuer", ISSUER])
            .arg("--data-dir")
            .arg(data.path())
            .arg("--kek-file")
            .arg(&new_file);
    });
    let resp = userinfo_bearer(&server, &access);
    assert_eq!(resp.status, 200, "same keys, re-wrapped: {resp:?}");
    drop(server);
    std::fs::copy(&new_file, data.path().join("kek")).unwrap();
    let server = serve(data.path());
    assert_eq!(userinfo_bearer(&server, &access).status, 200);
    let (fresh, _) = password_grant(&server, "alice", PASSWORD);
    assert_eq!(userinfo_bearer(&server, &fresh).status, 200);
    assert_eq!(snapshot(&stored_keys(data.path())), snapshot(&after));
}

#[test]
fn legacy_plain_keys_are_sealed_on_first_start() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path()).unwrap();
    // As a version before sealing stored them: the secret in the clear, and no KEK file.
    let mut legacy = KeyRing::generate_record(
        Algorithm::EdDSA,
        KeyStatus::Current,
        UnixTime(1_700_000_000),
    )
    .unwrap();
    // Stamped by the schedule's migration with the time it ran: today, so no rotation is due.
    legacy.status_since = tessera_core::time::Clock::now(&tessera_core::time::SystemClock);
    let retired = KeyRing::generate_record(
        Algorithm::ES256,
        KeyStatus::Revoked,
        UnixTime(1_600_000_000),
    )
    .unwrap();
    insert_plain(data.path(), &retired);
    insert_plain(data.path(), &legacy);
    assert!(!kek::is_sealed(&legacy.secret));
    assert!(contains(&database_bytes(data.path()), &legacy.secret));

    let server = serve(data.path());
    let jwks = server.get("/.well-known/jwks.json", &[]).json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [legacy.kid.as_str()], "the legacy key keeps signing");
    server.kill();

    let kek = read_kek(&data.path().join("kek"));
    let stored = stored_keys(data.path());
    assert_eq!(stored.len(), 2, "no key added");
    for (record, original) in stored.iter().zip([&retired, &legacy]) {
        assert_eq!(record.kid, original.kid);
        assert!(kek::is_sealed(&record.secret), "{} sealed", record.kid);
        // Not left behind in free space or the write-ahead log either.
        assert_nowhere_in_database(data.path(), &original.secret, "a formerly plain key");
        assert_eq!(
            kek.open_record(record).unwrap().secret.as_slice(),
            original.secret.as_slice()
        );
    }

    // A second start finds nothing left to seal and changes nothing.
    serve(data.path()).kill();
    assert_eq!(snapshot(&stored_keys(data.path())), snapshot(&stored));
}

#[test]
fn shared_stores_need_a_kek_and_memory_makes_its_own() {
    let out = run_to_exit({
        let mut cmd = tessera();
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "postgres://postgres@127.0.0.1:1/none",
        ]);
        cmd
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--kek-file"), "{stderr}");
    let out = run_to_exit({
        let mut cmd = tessera();
        cmd.args([
            "keys",
            "list",
            "--store",
            "postgres://postgres@127.0.0.1:1/none",
        ]);
        cmd
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kek-file"));
    let out = run_to_exit({
        let mut cmd = tessera();
        cmd.args(["keys", "list", "--store", "memory:"]);
        cmd
    });
    assert!(out.status.success(), "{out:?}");
}
