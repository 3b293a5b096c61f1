//! The master key that encrypts private signing keys at rest, and its file.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::KeyError;

/// The length of an AES-256 key.
const KEY_LEN: usize = 32;

/// The length of 32 bytes in base64url without padding.
const ENCODED_LEN: usize = 43;

/// The length of an AES-GCM authentication tag.
const TAG_LEN: usize = 16;

/// A master key file is one line of 43 characters; anything much larger is not a master key file,
/// and refusing it early keeps us from reading a large file into memory by mistake.
const MAX_FILE_LEN: u64 = 4096;

/// 256-bit AES-256-GCM key protecting private keys at rest.
///
/// It is deliberately not `Clone`: there should be one copy of the key bytes in memory, zeroized
/// when dropped. Share it behind an `Arc` instead.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

/// The result of [`MasterKey::load_or_create`], with what the caller should warn about.
#[derive(Debug)]
pub struct LoadedMasterKey {
    /// The key itself.
    pub key: MasterKey,
    /// The file did not exist and was created with mode 0600.
    pub created: bool,
    /// The existing file is readable or writable by group or others.
    pub loose_permissions: bool,
}

impl MasterKey {
    /// A new random master key from the operating system's random source.
    pub fn generate() -> Result<MasterKey, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut *bytes)
            .map_err(|_| KeyError::Generation)?;
        Ok(MasterKey { bytes })
    }

    /// Parses a master key file: base64url without padding of 32 bytes, surrounding whitespace
    /// ignored.
    pub fn from_file_contents(text: &str) -> Result<MasterKey, KeyError> {
        parse(text).map_err(|problem| KeyError::MasterKeyFile(format!("the master key {problem}")))
    }

    /// The master key file contents: base64url without padding, then a newline.
    pub fn to_file_contents(&self) -> Zeroizing<String> {
        // The capacity is exact so that encoding never reallocates and leaves an unzeroized copy
        // of the key behind in freed memory.
        let mut text = Zeroizing::new(String::with_capacity(ENCODED_LEN + 1));
        URL_SAFE_NO_PAD.encode_string(*self.bytes, &mut text);
        text.push('\n');
        text
    }

    /// Reads the file; if missing, creates it owner-only (mode 0600, see [`owner_only`]) and
    /// returns created=true. Also reports whether an existing file's permissions allow group or
    /// other access ([`owner_only::is_loose`]).
    pub fn load_or_create(path: &Path) -> Result<LoadedMasterKey, KeyError> {
        match File::open(path) {
            Ok(file) => read_key_file(path, file),
            Err(err) if err.kind() == io::ErrorKind::NotFound => create_key_file(path),
            Err(err) => Err(io_error(path, err)),
        }
    }

    /// Reads an existing master key file; a missing file is an error naming the path.
    pub fn load(path: &Path) -> Result<MasterKey, KeyError> {
        Ok(MasterKey::load_checked(path)?.key)
    }

    /// Like [`MasterKey::load`], and also reports whether the file's permissions allow group or
    /// other access, as [`MasterKey::load_or_create`] does (`created` is always false).
    pub fn load_checked(path: &Path) -> Result<LoadedMasterKey, KeyError> {
        match File::open(path) {
            Ok(file) => read_key_file(path, file),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                Err(file_error(path, "does not exist"))
            }
            Err(err) => Err(io_error(path, err)),
        }
    }

    /// AES-256-GCM with a fresh random 96-bit nonce; output = nonce || ciphertext || tag. `aad`
    /// binds the ciphertext to its row (callers pass the kid).
    ///
    /// Random nonces are safe here because one master key seals only a handful of signing keys,
    /// far below the 2^32 messages at which a nonce collision becomes a concern.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.aead_key()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Generation)?;

        // The buffer is sized up front so the plaintext copied into it is encrypted in place and
        // never left behind by a reallocation.
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| KeyError::Seal)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    /// Reverses [`MasterKey::seal`]. Any authentication failure, including input too short to
    /// hold a nonce and a tag, is [`KeyError::WrongMasterKey`].
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(KeyError::WrongMasterKey);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::WrongMasterKey)?;
        let key = self.aead_key()?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plaintext_len = key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| KeyError::WrongMasterKey)?
            .len();
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }

    /// Builds ring's key on demand rather than keeping it in the struct, because ring does not
    /// zeroize its expanded key schedule and this way only the zeroized bytes live long.
    fn aead_key(&self) -> Result<LessSafeKey, KeyError> {
        let unbound = UnboundKey::new(&AES_256_GCM, &*self.bytes).map_err(|_| KeyError::Seal)?;
        Ok(LessSafeKey::new(unbound))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Parses master key text, or says what is wrong with it as a predicate ("is empty") that the
/// caller gives a subject: the file, or the key given another way.
fn parse(text: &str) -> Result<MasterKey, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty".to_owned());
    }
    // The decode error is not echoed because it quotes a byte of the file, which could be part
    // of a key.
    let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(text).map_err(|_| {
        "is not base64url without padding (expected 43 characters encoding 32 bytes)".to_owned()
    })?);
    if decoded.len() != KEY_LEN {
        return Err(format!(
            "decodes to {} bytes, expected {KEY_LEN}",
            decoded.len()
        ));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    bytes.copy_from_slice(&decoded);
    Ok(MasterKey { bytes })
}

/// A refusal of the master key file at `path`: `master key file PATH PROBLEM`.
fn file_error(path: &Path, problem: impl fmt::Display) -> KeyError {
    KeyError::MasterKeyFile(format!("master key file {} {problem}", path.display()))
}

/// Reads and parses an open key file, checking the permissions of the file actually opened rather
/// than of whatever the path names a moment later.
fn read_key_file(path: &Path, mut file: File) -> Result<LoadedMasterKey, KeyError> {
    let metadata = file.metadata().map_err(|err| io_error(path, err))?;
    if metadata.len() > MAX_FILE_LEN {
        return Err(file_error(
            path,
            format_args!("is {} bytes, too large to be a master key", metadata.len()),
        ));
    }
    // Reserving the whole length first means the read never reallocates, so no unzeroized partial
    // copy of the key is left in freed memory.
    let mut text = Zeroizing::new(String::with_capacity(
        usize::try_from(metadata.len()).unwrap_or(0) + 1,
    ));
    file.read_to_string(&mut text).map_err(|err| {
        if err.kind() == io::ErrorKind::InvalidData {
            file_error(path, "is not UTF-8 text")
        } else {
            io_error(path, err)
        }
    })?;
    let key = parse(&text).map_err(|problem| file_error(path, problem))?;
    Ok(LoadedMasterKey {
        key,
        created: false,
        loose_permissions: owner_only::is_loose(&metadata),
    })
}

/// Creates a new key file that only its owner can read.
///
/// The key is written to a private temporary file first and then hard-linked into place, so the
/// key file appears complete or not at all: a second process starting at the same moment either
/// wins the link or reads the winner's whole key, never an empty or half-written file.
fn create_key_file(path: &Path) -> Result<LoadedMasterKey, KeyError> {
    let key = MasterKey::generate()?;
    let temporary = temporary_path(path);
    let mut options = OpenOptions::new();
    // `create_new` refuses to follow a symlink or overwrite a file, and the mode is set at
    // creation so the key is never readable by others, even briefly.
    options.write(true).create_new(true);
    let mut file = owner_only::restrict(&mut options)
        .open(&temporary)
        .map_err(|err| io_error(&temporary, err))?;
    let contents = key.to_file_contents();
    let written = file
        .write_all(contents.as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(io_error(&temporary, err));
    }
    let linked = fs::hard_link(&temporary, path);
    // The temporary name is ours alone; removing it is best effort either way.
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(LoadedMasterKey {
            key,
            created: true,
            loose_permissions: false,
        }),
        // Another process created the file first; use its key so both processes agree.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let file = File::open(path).map_err(|err| io_error(path, err))?;
            read_key_file(path, file)
        }
        Err(err) => Err(io_error(path, err)),
    }
}

/// A temporary name beside `path`, unique to this process and moment.
fn temporary_path(path: &Path) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = path
        .file_name()
        .map_or_else(|| "master-key".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()))
}

fn io_error(path: &Path, source: io::Error) -> KeyError {
    KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_with_the_same_key_and_aad() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"private key bytes", b"kid-1").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 17 + TAG_LEN);
        assert_eq!(
            key.open(&sealed, b"kid-1").unwrap().as_slice(),
            b"private key bytes"
        );
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"", b"").unwrap();
        assert!(key.open(&sealed, b"").unwrap().is_empty());
    }

    #[test]
    fn another_master_key_cannot_open() {
        let sealed = MasterKey::generate()
            .unwrap()
            .seal(b"secret", b"kid")
            .unwrap();
        let other = MasterKey::generate().unwrap();
        assert!(matches!(
            other.open(&sealed, b"kid"),
            Err(KeyError::WrongMasterKey)
        ));
    }

    #[test]
    fn any_tampered_byte_is_detected() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret", b"kid").unwrap();
        // Nonce, ciphertext and tag are each covered by authentication.
        for index in [0, NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert!(matches!(
                key.open(&tampered, b"kid"),
                Err(KeyError::WrongMasterKey)
            ));
        }
    }

    #[test]
    fn ciphertext_moved_to_another_row_is_rejected() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret", b"kid-a").unwrap();
        assert!(matches!(
            key.open(&sealed, b"kid-b"),
            Err(KeyError::WrongMasterKey)
        ));
    }

    #[test]
    fn truncated_input_is_rejected_without_panicking() {
        let key = MasterKey::generate().unwrap();
        for len in [0, 1, NONCE_LEN, NONCE_LEN + TAG_LEN - 1] {
            assert!(matches!(
                key.open(&vec![0u8; len], b""),
                Err(KeyError::WrongMasterKey)
            ));
        }
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let key = MasterKey::generate().unwrap();
        let first = key.seal(b"same", b"kid").unwrap();
        let second = key.seal(b"same", b"kid").unwrap();
        assert_ne!(first, second);
        assert_ne!(first[..NONCE_LEN], second[..NONCE_LEN]);
    }

    #[test]
    fn file_contents_round_trip_with_surrounding_whitespace() {
        let key = MasterKey::generate().unwrap();
        let contents = key.to_file_contents();
        assert_eq!(contents.len(), 44);
        assert!(contents.ends_with('\n'));
        let padded = format!("  \n{}\t\n", contents.as_str());
        let parsed = MasterKey::from_file_contents(&padded).unwrap();
        let sealed = key.seal(b"x", b"").unwrap();
        assert_eq!(parsed.open(&sealed, b"").unwrap().as_slice(), b"x");
    }

    #[test]
    fn malformed_file_contents_give_clear_errors() {
        let valid = MasterKey::generate().unwrap().to_file_contents();
        let valid = valid.trim();
        let cases = [
            (String::new(), "empty"),
            ("   \n".to_owned(), "empty"),
            ("not base64 at all!".to_owned(), "base64url"),
            (format!("{valid}="), "base64url"),
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/A".to_owned(),
                "base64url",
            ),
            (URL_SAFE_NO_PAD.encode([7u8; 16]), "16 bytes, expected 32"),
            (URL_SAFE_NO_PAD.encode([7u8; 33]), "33 bytes, expected 32"),
        ];
        for (text, expected) in cases {
            match MasterKey::from_file_contents(&text) {
                Err(KeyError::MasterKeyFile(message)) => {
                    assert!(message.contains(expected), "{message:?} for {text:?}")
                }
                other => panic!("unexpected result for {text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = MasterKey::generate().unwrap();
        let debug = format!("{key:?}");
        assert_eq!(debug, "MasterKey(<redacted>)");
        assert!(!debug.contains(key.to_file_contents().trim()));
        let loaded = LoadedMasterKey {
            key,
            created: true,
            loose_permissions: false,
        };
        assert!(format!("{loaded:?}").contains("MasterKey(<redacted>)"));
    }

    #[cfg(unix)]
    #[test]
    fn load_or_create_creates_an_owner_only_file_then_loads_the_same_key() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");

        let first = MasterKey::load_or_create(&path).unwrap();
        assert!(first.created);
        assert!(!first.loose_permissions);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let second = MasterKey::load_or_create(&path).unwrap();
        assert!(!second.created);
        assert!(!second.loose_permissions);
        let sealed = first.key.seal(b"signing key", b"kid").unwrap();
        assert_eq!(
            second.key.open(&sealed, b"kid").unwrap().as_slice(),
            b"signing key"
        );
        let loaded = MasterKey::load(&path).unwrap();
        assert_eq!(
            loaded.open(&sealed, b"kid").unwrap().as_slice(),
            b"signing key"
        );
    }

    #[cfg(unix)]
    #[test]
    fn load_or_create_and_load_checked_report_loose_permissions() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::generate().unwrap();
        fs::write(&path, key.to_file_contents().as_bytes()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

        let loaded = MasterKey::load_or_create(&path).unwrap();
        assert!(!loaded.created);
        assert!(loaded.loose_permissions);
        let checked = MasterKey::load_checked(&path).unwrap();
        assert!(!checked.created);
        assert!(checked.loose_permissions);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!MasterKey::load_checked(&path).unwrap().loose_permissions);
    }

    #[test]
    fn load_or_create_refuses_a_malformed_file_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs::write(&path, "hunter2\n").unwrap();

        let err = MasterKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, KeyError::MasterKeyFile(_)), "{err:?}");
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "hunter2\n");
    }

    #[test]
    fn load_or_create_refuses_binary_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("binary.key");
        fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&binary),
            Err(KeyError::MasterKeyFile(_))
        ));
        let large = dir.path().join("large.key");
        fs::write(&large, vec![b'a'; 5000]).unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&large),
            Err(KeyError::MasterKeyFile(_))
        ));
    }

    #[test]
    fn load_names_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.key");
        let err = MasterKey::load(&path).unwrap_err();
        assert!(matches!(err, KeyError::MasterKeyFile(_)));
        // Each clause once: callers add nothing to it.
        assert_eq!(
            err.to_string(),
            format!("master key file {} does not exist", path.display())
        );
        assert!(!path.exists());
    }

    #[test]
    fn load_or_create_reports_io_errors_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("master.key");
        let err = MasterKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, KeyError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn processes_starting_at_once_all_get_the_same_complete_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    MasterKey::load_or_create(&path).unwrap()
                })
            })
            .collect();
        let loaded: Vec<LoadedMasterKey> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(loaded.iter().filter(|l| l.created).count(), 1);
        let sealed = loaded[0].key.seal(b"x", b"aad").unwrap();
        for other in &loaded {
            assert_eq!(other.key.open(&sealed, b"aad").unwrap().as_slice(), b"x");
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
