//! Hostile input to the parsers and decoders that read what arrives from a channel or a peer
//! (release files, AppSpecs, gossip values): parsing returns a value or an error and never
//! panics, what is accepted keeps its promises, and alias bombs are refused quickly. The same
//! entry points are fuzzed with coverage guidance by `scripts/fuzz.sh` (fuzz/); these
//! properties run on every test run.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use shoal_shared::appspec;
use shoal_shared::gossip::{
    self, GroupState, Groups, Halt, Health, MAX_VALUE, Promote, Resume, Step, Target,
    split_group_key, state_key,
};
use shoal_shared::release::{AllowedSigners, Manifest, Version, split_signed_tag, verify};
use shoal_shared::rollout::{Shape, parse_policy_file};

/// Text built from the pieces these formats are made of, so cases reach deep into the parsers.
fn release_like_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "ssh-ed25519 ",
        "AAAAC3NzaC1lZDI1NTE5AAAA",
        "namespaces=\"",
        "valid-after=\"2024",
        "Z\"",
        "cert-authority",
        ",",
        "\"",
        " ",
        "\n",
        "#",
        "*",
        "!",
        "-----BEGIN SSH SIGNATURE-----\n",
        "-----END SSH SIGNATURE-----\n",
        "object ",
        "type commit\n",
        "tag v1.0.0\n",
        "tagger a <b> 17 +0000\n",
        "\n\n",
        "version: v1.0.0\n",
        "bundle:\n  path: b.tar\n",
        "  sha256: ",
        "  size: 18446744073709551616\n",
        "created: 2026-11-21T00:00:00Z\n",
        "rollout:\n  canary: 200%\n",
        "&a [*a, *a]\n",
        "\u{0}",
        "é",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn allowed_signers_never_panics(text in release_like_text()) {
        let _ = AllowedSigners::parse(&text);
    }

    #[test]
    fn tag_splitting_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), text in release_like_text()) {
        let _ = split_signed_tag("v1", &bytes);
        let _ = split_signed_tag("v1", text.as_bytes());
    }

    #[test]
    fn manifest_and_version_never_panic(text in release_like_text()) {
        let _ = Manifest::parse(&text);
        let _ = Version::parse(&text);
    }

    #[test]
    fn signature_checking_never_panics(sig in release_like_text(), msg in any::<Vec<u8>>()) {
        let signers = AllowedSigners::default();
        prop_assert!(verify(sig.as_bytes(), &msg, "git", &signers, 0).is_err());
    }
}

/// AppSpec text built from the pieces AppSpecs are made of (and YAML's own: anchors, aliases,
/// merge keys, flow collections, tags), so cases get past the YAML reader into the rules.
fn appspec_like_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "version: 0.0\n",
        "version: '0.0'\n",
        "os: linux\n",
        "os: windows\n",
        "hooks:\n",
        "  BeforeInstall:\n",
        "  ApplicationStart:\n",
        "  DownloadBundle:\n",
        "  :\n",
        "  Deploy:\n",
        "    - location: scripts/run.sh\n",
        "      timeout: 300\n",
        "      timeout: 30s\n",
        "      timeout: 0\n",
        "      runas: deploy\n",
        "      sudo: yes\n",
        "files:\n",
        "  - source: /\n",
        "    destination: /srv/app\n",
        "    destination: relative\n",
        "permissions:\n",
        "  - object: /srv/app\n",
        "    pattern: \"**\"\n",
        "    except: [a]\n",
        "    owner: root\n",
        "    mode: 0644\n",
        "    mode: 4755\n",
        "    acls:\n",
        "      - d:u:bob:rw\n",
        "    context:\n",
        "      type: httpd_sys_content_t\n",
        "      range: s0-s0:c0.c1023\n",
        "    type: [file, directory]\n",
        "file_exists_behavior: OVERWRITE\n",
        "&a ",
        "*a",
        "<<: *a\n",
        "!!str ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "- ",
        "  ",
        "\n",
        "\"",
        "'",
        "#",
        "~",
        "\t",
        "\u{feff}",
        "é",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

/// Line breaks as a YAML reader may count them.
fn last_line(text: &str) -> u64 {
    let breaks = text
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
        .count();
    breaks as u64 + 1
}

/// Gossip value text built from the fields of every value type, valid or not.
fn gossip_like_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        "\"v\":1",
        "\"v\":0",
        "\"v\":7",
        "\"v\":1.5",
        "\"groups\":[\"web\",\"api\"]",
        "\"id\":\"d-0123456789ab\"",
        "\"epoch\":4294967295",
        "\"epoch\":4294967296",
        "\"epoch\":-1",
        "\"host\":\"a\"",
        "\"reason\":\"\\u00e9\\n\\ud800\"",
        "\"reason\":\"x\"",
        "\"revision\":\"v1\"",
        "\"digest\":\"git:abc\"",
        "\"target\":{\"id\":\"d-1\",\"revision\":\"v2\",\"digest\":\"sha256:ff\"}",
        "\"step\":\"running\"",
        "\"step\":\"Running\"",
        "\"health\":\"healthy\"",
        "\"members\":null",
        "\"failures\":3",
        "\"signed_by\":{\"k\":[1,2]}",
        "null",
        " ",
        "\"",
        "\\",
        "é",
    ]);
    prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9.-]{0,12}",
        Just("é\u{0}\"\\\u{2028}".to_owned())
    ]
}

fn group_state() -> impl Strategy<Value = GroupState> {
    let target = (any_text(), any_text(), any_text()).prop_map(|(id, revision, digest)| Target {
        id,
        revision,
        digest,
    });
    let step = prop::sample::select(vec![
        Step::Waiting,
        Step::Running,
        Step::Done,
        Step::Failed,
        Step::Reverting,
        Step::Reverted,
    ]);
    let health = prop::sample::select(vec![
        Health::None,
        Health::Unknown,
        Health::Healthy,
        Health::Unhealthy,
    ]);
    (
        prop::option::of(any_text()),
        prop::option::of(any_text()),
        prop::option::of(target),
        prop::option::of(step),
        any::<u32>(),
        any::<u32>(),
        prop::option::of(any_text()),
        health,
        prop::option::of(any_text()),
        prop::collection::vec(any_text(), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(
                revision,
                digest,
                target,
                step,
                epoch,
                failures,
                reason,
                health,
                members,
                forgets,
                leaving,
            )| {
                GroupState {
                    revision,
                    digest,
                    target,
                    step,
                    epoch,
                    failures,
                    reason,
                    health,
                    members,
                    forgets,
                    leaving,
                }
            },
        )
}

/// Decoding answers without panicking; what decodes encodes and decodes back to itself.
fn decodes_back<T>(text: &str) -> Result<(), TestCaseError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = gossip::decode::<T>(text) {
        let encoded = gossip::encode(&value);
        if encoded.len() <= MAX_VALUE {
            prop_assert_eq!(
                gossip::decode::<T>(&encoded),
                Ok(value),
                "{} -> {}",
                text,
                encoded
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn appspec_parsing_never_panics_and_keeps_its_promises(text in appspec_like_text()) {
        let last = last_line(&text);
        match appspec::parse(&text) {
            Ok(parsed) => {
                for hook in &parsed.spec.hooks {
                    // An event no deployment runs is kept with a warning that names it.
                    if appspec::lifecycle::find(&hook.event).is_none() {
                        let key = format!("hooks.{}", hook.event);
                        prop_assert!(parsed.warnings.iter().any(|w| w.key == key), "{}", key);
                    }
                    for script in &hook.scripts {
                        prop_assert!(!script.location.is_empty());
                        prop_assert!(script.timeout >= Duration::from_secs(1));
                    }
                }
                for file in &parsed.spec.files {
                    prop_assert!(!file.source.is_empty() && !file.destination.is_empty());
                }
                for permission in &parsed.spec.permissions {
                    prop_assert!(permission.mode.is_none_or(|m| m.0 <= 0o7777));
                }
                for warning in &parsed.warnings {
                    prop_assert!(warning.line.is_none_or(|l| (1..=last).contains(&l)), "{}", warning);
                }
            }
            Err(error) => {
                prop_assert!(error.line.is_none_or(|l| (1..=last).contains(&l)), "{}", error);
                prop_assert!(!error.message.is_empty());
            }
        }
    }

    #[test]
    fn gossip_values_decode_back_to_themselves(text in gossip_like_text()) {
        decodes_back::<Groups>(&text)?;
        decodes_back::<GroupState>(&text)?;
        decodes_back::<Halt>(&text)?;
        decodes_back::<Resume>(&text)?;
        decodes_back::<Promote>(&text)?;
        if let Some((group, kind)) = split_group_key(&text) {
            prop_assert_eq!(format!("g:{group}:{kind}"), text.clone());
        }
    }

    #[test]
    fn every_published_value_reads_back(
        state in group_state(),
        groups in prop::collection::vec(any_text(), 0..4),
        (id, epoch, host, reason) in (any_text(), any::<u32>(), any_text(), any_text()),
    ) {
        let text = gossip::encode(&state);
        prop_assume!(text.len() <= MAX_VALUE);
        prop_assert_eq!(gossip::decode::<GroupState>(&text), Ok(state));
        let groups = Groups { groups };
        prop_assert_eq!(gossip::decode::<Groups>(&gossip::encode(&groups)), Ok(groups));
        let by = Some(host.clone());
        let halt = Halt { id: id.clone(), epoch, host, reason: gossip::short_reason(&reason), by: by.clone() };
        prop_assert_eq!(gossip::decode::<Halt>(&gossip::encode(&halt)), Ok(halt));
        let resume = Resume { id: id.clone(), epoch, by: by.clone() };
        prop_assert_eq!(gossip::decode::<Resume>(&gossip::encode(&resume)), Ok(resume));
        let promote = Promote { id: id.clone(), by };
        prop_assert_eq!(gossip::decode::<Promote>(&gossip::encode(&promote)), Ok(promote));
        if !id.is_empty() {
            let key = state_key(&id);
            prop_assert_eq!(split_group_key(&key), Some((id.as_str(), "state")));
        }
    }
}

/// A "billion laughs": nine levels of anchors, each a list of ten aliases of the one before,
/// so 10^9 strings once expanded, in under a kilobyte of YAML.
fn billion_laughs() -> String {
    laughs(9)
}

/// `levels` levels of anchors, each a list of ten aliases of the one before: 10^levels strings
/// once expanded.
fn laughs(levels: usize) -> String {
    let mut anchors = vec![format!("&l0 [{}]", ["lol"; 10].join(", "))];
    for level in 1..levels {
        let aliases = vec![format!("*l{}", level - 1); 10].join(", ");
        anchors.push(format!("&l{level} [{aliases}]"));
    }
    format!("[{}]", anchors.join(", "))
}

/// Runs `parse` on its own thread and gives its answer, failing the test if there is none
/// within a few seconds (an unbounded expansion takes minutes and gigabytes).
fn answered_quickly<T: Send + 'static>(parse: impl FnOnce() -> T + Send + 'static) -> T {
    let (answer_tx, answer_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = answer_tx.send(parse());
    });
    answer_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("an alias bomb is refused within 5 s")
}

#[test]
fn an_appspec_alias_bomb_is_refused_quickly_in_one_sentence() {
    let text = format!("version: 0.0\nos: linux\nlaughs: {}\n", billion_laughs());
    let error = answered_quickly(move || appspec::parse(&text)).expect_err("an alias bomb");
    let message = error.to_string();
    assert_eq!(error.kind(), "too-large", "{message}");
    assert_eq!(error.line, Some(3), "{message}");
    assert!(
        message.contains("aliases") && message.contains("billion laughs"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_release_yaml_alias_bomb_is_refused_quickly_in_one_sentence() {
    // Inside `rollout.canary`, a value serde buffers whole before it can refuse its type.
    let text = format!(
        "version: v1.0.0\ncreated: 2026-11-21T19:57:40Z\nbundle:\n  path: b.tar\n  \
         sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n  size: 1\n\
         rollout:\n  canary: {}\n",
        billion_laughs()
    );
    let error = answered_quickly(move || Manifest::parse(&text)).expect_err("an alias bomb");
    let message = error.to_string();
    assert!(
        message.starts_with("line 8: the manifest is refused"),
        "{message}"
    );
    assert!(
        message.contains("aliases") && message.contains("billion laughs"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_shoal_yaml_alias_bomb_is_refused_quickly_in_one_sentence() {
    // 10^5 strings expand within a YAML reader's default bounds (to be refused afterwards as
    // the wrong type); 10^9 do not. Both are refused for their size, before they are built.
    for (levels, shape) in [
        (5, Shape::Block),
        (9, Shape::Block),
        (9, Shape::BlockOrKeys),
    ] {
        let text = format!("# shoal.yaml\nrollout:\n  canary: {}\n", laughs(levels));
        let error =
            answered_quickly(move || parse_policy_file(&text, "the bundle's shoal.yaml", shape))
                .expect_err("an alias bomb");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "the bundle's shoal.yaml: line 3: the rollout policy is refused because its \
                 aliases (`*name`) expand beyond 1000 nodes"
            ),
            "{message}"
        );
        assert!(message.contains("billion laughs"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
