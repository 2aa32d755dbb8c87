//! POSIX ACLs as the kernel stores them (`system.posix_acl_access` / `_default` extended
//! attributes), built from an AppSpec's `acls` the way `setfacl --set` builds them, so they can
//! be set on an open file rather than by path.
//!
//! `setfacl --set` takes the owner, group and other entries from the file's mode, adds the
//! named entries, and computes the mask (the union of the group entry and every named entry)
//! unless one is given. Default entries that leave out the owner, group or other entry take it
//! from the new access ACL. The format is `linux/posix_acl_xattr.h`: a little-endian version
//! (2), then sorted entries of tag (u16), permissions (u16) and id (u32).

use std::collections::BTreeSet;

use shoal_shared::appspec::{AclEntry, AclTag};

/// The access ACL's attribute.
pub const ACCESS: &str = "system.posix_acl_access";
/// The default ACL's attribute (directories only).
pub const DEFAULT: &str = "system.posix_acl_default";

const VERSION: u32 = 2;
const UNDEFINED_ID: u32 = u32::MAX;

/// Entry tags, in the order the kernel wants them.
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// The attribute values to set: the access ACL, and the default ACL when entries name one.
#[derive(Debug, PartialEq, Eq)]
pub struct Encoded {
    /// `system.posix_acl_access`.
    pub access: Vec<u8>,
    /// `system.posix_acl_default`, if any default entry was given.
    pub default: Option<Vec<u8>>,
}

/// Why a list of ACL entries cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum AclError<E> {
    /// Two entries for one slot: the same tag, and the same user or group.
    #[error("`{0}` is given twice")]
    Twice(AclEntry),
    /// A user or group name that could not be turned into an id.
    #[error("{0}")]
    Id(E),
}

/// One ACL under construction: the three base entries, named ones by id, and a mask.
#[derive(Default)]
struct Acl {
    user_obj: Option<u8>,
    group_obj: Option<u8>,
    other: Option<u8>,
    mask: Option<u8>,
    users: BTreeSet<(u32, u8)>,
    groups: BTreeSet<(u32, u8)>,
}

impl Acl {
    fn add<E>(&mut self, entry: &AclEntry, id: Option<u32>) -> Result<(), AclError<E>> {
        let duplicate = || AclError::Twice(entry.clone());
        let slot = match (entry.tag, id) {
            (AclTag::User, Some(id)) => {
                if self.users.iter().any(|(u, _)| *u == id) {
                    return Err(duplicate());
                }
                self.users.insert((id, entry.perms));
                return Ok(());
            }
            (AclTag::Group, Some(id)) => {
                if self.groups.iter().any(|(g, _)| *g == id) {
                    return Err(duplicate());
                }
                self.groups.insert((id, entry.perms));
                return Ok(());
            }
            (AclTag::User, None) => &mut self.user_obj,
            (AclTag::Group, None) => &mut self.group_obj,
            (AclTag::Mask, _) => &mut self.mask,
            (AclTag::Other, _) => &mut self.other,
        };
        if slot.replace(entry.perms).is_some() {
            return Err(duplicate());
        }
        Ok(())
    }

    /// The attribute value, with the base entries filled in from `base` and the mask computed
    /// when named entries need one.
    fn encode(&self, base: (u8, u8, u8)) -> Vec<u8> {
        let group_obj = self.group_obj.unwrap_or(base.1);
        let named = !self.users.is_empty() || !self.groups.is_empty();
        let mask = self.mask.or_else(|| {
            named.then(|| {
                self.users
                    .iter()
                    .chain(&self.groups)
                    .fold(group_obj, |m, (_, p)| m | p)
            })
        });
        let mut out = VERSION.to_le_bytes().to_vec();
        let mut push = |tag: u16, perms: u8, id: u32| {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&u16::from(perms).to_le_bytes());
            out.extend_from_slice(&id.to_le_bytes());
        };
        push(USER_OBJ, self.user_obj.unwrap_or(base.0), UNDEFINED_ID);
        for (id, perms) in &self.users {
            push(USER, *perms, *id);
        }
        push(GROUP_OBJ, group_obj, UNDEFINED_ID);
        for (id, perms) in &self.groups {
            push(GROUP, *perms, *id);
        }
        if let Some(mask) = mask {
            push(MASK, mask, UNDEFINED_ID);
        }
        push(OTHER, self.other.unwrap_or(base.2), UNDEFINED_ID);
        out
    }
}

/// Encodes `entries` for a file whose mode is `mode`. `id_of` turns a user (`true`) or group
/// name into its id.
pub fn encode<E>(
    entries: &[AclEntry],
    mode: u32,
    id_of: impl Fn(bool, &str) -> Result<u32, E>,
) -> Result<Encoded, AclError<E>> {
    let mut access = Acl::default();
    let mut default = Acl::default();
    let mut any_default = false;
    for entry in entries {
        let id = match entry.tag {
            AclTag::User | AclTag::Group if !entry.name.is_empty() => {
                Some(id_of(entry.tag == AclTag::User, &entry.name).map_err(AclError::Id)?)
            }
            _ => None,
        };
        if entry.default {
            any_default = true;
            default.add(entry, id)?;
        } else {
            access.add(entry, id)?;
        }
    }
    let bits = |shift: u32| ((mode >> shift) & 7) as u8;
    let base = (bits(6), bits(3), bits(0));
    let new_base = (
        access.user_obj.unwrap_or(base.0),
        access.group_obj.unwrap_or(base.1),
        access.other.unwrap_or(base.2),
    );
    Ok(Encoded {
        access: access.encode(base),
        default: any_default.then(|| default.encode(new_base)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_shared::appspec::acl_entry;

    fn entries(written: &[&str]) -> Vec<AclEntry> {
        written
            .iter()
            .map(|w| acl_entry(w).expect("valid entry"))
            .collect()
    }

    fn ids(is_user: bool, name: &str) -> Result<u32, String> {
        match (is_user, name) {
            (true, "bob") => Ok(1001),
            (true, "amy") => Ok(1000),
            (false, "staff") => Ok(50),
            _ => Err(format!("no such name {name}")),
        }
    }

    fn decode(bytes: &[u8]) -> Vec<(u16, u16, u32)> {
        assert_eq!(bytes[..4], VERSION.to_le_bytes());
        bytes[4..]
            .chunks(8)
            .map(|c| {
                (
                    u16::from_le_bytes([c[0], c[1]]),
                    u16::from_le_bytes([c[2], c[3]]),
                    u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect()
    }

    #[test]
    fn named_entries_are_sorted_and_get_a_computed_mask() {
        let acl =
            encode(&entries(&["u:bob:rw", "g:staff:r", "u:amy:x"]), 0o640, ids).expect("encoded");
        let u = UNDEFINED_ID;
        assert_eq!(
            decode(&acl.access),
            [
                (USER_OBJ, 6, u),
                (USER, 1, 1000),
                (USER, 6, 1001),
                (GROUP_OBJ, 4, u),
                (GROUP, 4, 50),
                (MASK, 7, u),
                (OTHER, 0, u),
            ]
        );
        assert_eq!(acl.default, None);
    }

    #[test]
    fn defaults_take_missing_base_entries_from_the_new_access_acl() {
        let acl = encode(&entries(&["m::r", "d:u:bob:rw", "d:o::x"]), 0o751, ids).expect("ok");
        let u = UNDEFINED_ID;
        assert_eq!(
            decode(&acl.access),
            [
                (USER_OBJ, 7, u),
                (GROUP_OBJ, 5, u),
                (MASK, 4, u),
                (OTHER, 1, u)
            ]
        );
        assert_eq!(
            decode(&acl.default.expect("a default ACL")),
            [
                (USER_OBJ, 7, u),
                (USER, 6, 1001),
                (GROUP_OBJ, 5, u),
                (MASK, 7, u),
                (OTHER, 1, u)
            ]
        );
    }

    #[test]
    fn duplicates_and_unknown_names_are_refused_by_name() {
        let error = encode(&entries(&["u:bob:rw", "u:bob:r"]), 0o644, ids)
            .expect_err("dup")
            .to_string();
        assert!(error.contains("`user:bob:r--` is given twice"), "{error}");
        let error = encode(&entries(&["g:nobody-here:r"]), 0o644, ids)
            .expect_err("unknown")
            .to_string();
        assert!(error.contains("nobody-here"), "{error}");
    }
}
