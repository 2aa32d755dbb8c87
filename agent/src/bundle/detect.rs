//! Telling what a bundle is: by file type, then by magic bytes, with the extension as a hint
//! only for old tar files that carry no magic.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use super::BundleKind;
use super::error::BundleError;

/// Finds out whether `path` is a directory, a tar, a gzip-compressed tar or a zip archive.
///
/// Content wins over the name: a gzip file called `bundle.zip` is a [`BundleKind::TarGz`].
pub fn detect(path: &Path) -> Result<BundleKind, BundleError> {
    let meta = fs::metadata(path).map_err(BundleError::io("inspect the bundle", path))?;
    if meta.is_dir() {
        return Ok(BundleKind::Directory);
    }
    let unsupported = |reason: &str| BundleError::UnsupportedFormat {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    if !meta.is_file() {
        return Err(unsupported("neither a regular file nor a directory"));
    }
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(BundleError::io("read the bundle", path))?;
    let tar_name = path.extension().is_some_and(|e| e == "tar");
    classify(&head, tar_name).map_err(unsupported)
}

/// Classifies the first 512 bytes of a file.
fn classify(head: &[u8], tar_name: bool) -> Result<BundleKind, &'static str> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(BundleKind::TarGz)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Ok(BundleKind::Zip)
    } else if head.get(257..262) == Some(b"ustar") {
        Ok(BundleKind::Tar)
    } else if tar_name && is_tar_header(head) {
        // A pre-POSIX (v7) tar has no magic, only a header checksum.
        Ok(BundleKind::Tar)
    } else if head.is_empty() {
        Err("the file is empty")
    } else if head.starts_with(b"BZh") {
        Err("it is bzip2-compressed")
    } else if head.starts_with(b"\xfd7zXZ\0") {
        Err("it is xz-compressed")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err("it is zstd-compressed")
    } else {
        Err("its content matches none of them")
    }
}

/// Whether `head` is a full tar header block whose checksum field matches its bytes.
fn is_tar_header(head: &[u8]) -> bool {
    let Some(block) = head.get(..512) else {
        return false;
    };
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_ascii_digit())
        .collect();
    let Ok(expected) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v7_header() -> Vec<u8> {
        let mut block = vec![0u8; 512];
        block[..5].copy_from_slice(b"a.txt");
        block[100..107].copy_from_slice(b"0000644");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * u32::from(b' ');
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        block
    }

    #[test]
    fn magic_decides() {
        assert_eq!(classify(&[0x1f, 0x8b, 8, 0], false), Ok(BundleKind::TarGz));
        assert_eq!(classify(b"PK\x03\x04rest", true), Ok(BundleKind::Zip));
        let mut ustar = vec![0u8; 512];
        ustar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(classify(&ustar, false), Ok(BundleKind::Tar));
    }

    #[test]
    fn extension_only_helps_a_valid_v7_header() {
        assert_eq!(classify(&v7_header(), true), Ok(BundleKind::Tar));
        assert!(classify(&v7_header(), false).is_err());
        assert!(classify(&[b'x'; 512], true).is_err());
    }

    #[test]
    fn other_compressors_are_named() {
        assert_eq!(classify(b"BZh91AY", true), Err("it is bzip2-compressed"));
        assert_eq!(classify(b"", true), Err("the file is empty"));
    }
}
