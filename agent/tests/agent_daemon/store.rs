//! The store channel of the stories: a bucket on a real moto_server S3, releases published
//! with the real `shoal release`; a refused release is one signed by an untrusted key.

use std::path::Path;
use std::process::Command;

use shoal_agent::channel::store::StoreSource;
use shoal_tests::s3::MotoServer;

use crate::story::Channel;
use crate::world::{APPLICATION, GROUP, Hooks, World};

const BUCKET: &str = "releases";

pub struct StoreChannel {
    moto: MotoServer,
}

impl StoreChannel {
    pub fn boxed(_world: &World) -> Box<dyn Channel> {
        let moto = MotoServer::start();
        moto.create_bucket(BUCKET);
        Box::new(StoreChannel { moto })
    }

    fn release(&self, world: &World, revision: &str, hooks: Hooks, key: &Path) {
        let bundle = world.dir.path().join("bundles").join(revision);
        world.write_bundle(&bundle, revision, hooks);
        let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(["release", "--store", &format!("s3://{BUCKET}/shop")])
            .args([
                "--application",
                APPLICATION,
                "--version",
                revision,
                "--bundle",
            ])
            .arg(&bundle)
            .arg("--key")
            .arg(key)
            .args(["--endpoint", &self.moto.endpoint(), "--allow-http"])
            .envs(self.moto.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "shoal release {revision}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Channel for StoreChannel {
    fn config(&self) -> String {
        format!(
            "{{ store: {{ url: \"s3://{BUCKET}/shop\", endpoint: \"{}\", allow_http: true, region: us-east-1, poll: 300ms }} }}",
            self.moto.endpoint()
        )
    }

    fn env(&self) -> Vec<(String, String)> {
        self.moto.env()
    }

    fn publish(&self, world: &World, revision: &str, hooks: Hooks) {
        self.release(world, revision, hooks, &world.key.private);
    }

    fn publish_refused(&self, world: &World, revision: &str) -> &'static str {
        self.release(world, revision, Hooks::Good, &world.stranger.private);
        "untrusted_key"
    }

    fn poll_as_agent(&self, world: &World) -> Option<String> {
        let mut source = StoreSource::new(format!("s3://{BUCKET}/shop"));
        source.endpoint = Some(self.moto.endpoint());
        source.allow_http = true;
        source.region = Some("us-east-1".into());
        let mut channel = shoal_agent::channel::store::StoreChannel::open(
            &source,
            &self.moto.env(),
            &world.data_dir,
            GROUP,
            APPLICATION,
        )
        .unwrap();
        let mut state = world.channel_state();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let poll = runtime
            .block_on(channel.poll(&world.signers(), &mut state, world.now()))
            .unwrap();
        poll.newest.map(|r| r.version.name().to_owned())
    }
}
