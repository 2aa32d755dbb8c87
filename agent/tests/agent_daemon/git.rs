//! The git channel of the stories: a local repository (watched by the agent), releases tagged
//! with `git tag -s` and an ssh key; a refused release is an unsigned annotated tag.

use shoal_agent::channel::git::GitSource;
use shoal_tests::signing::git::Repo;

use crate::story::Channel;
use crate::world::{APPLICATION, GROUP, Hooks, World};

pub struct GitChannel {
    repo: Repo,
}

impl GitChannel {
    pub fn boxed(world: &World) -> Box<dyn Channel> {
        let repo = Repo::init(&world.dir.path().join("repo")).for_application(Some(APPLICATION));
        repo.commit_file("README", "shop\n", "initial");
        Box::new(GitChannel { repo })
    }

    fn commit(&self, world: &World, revision: &str, hooks: Hooks) {
        world.write_bundle(self.repo.dir(), revision, hooks);
        self.repo.git(&["add", "-A"]);
        self.repo.git(&["commit", "-q", "-m", revision]);
    }
}

impl Channel for GitChannel {
    fn config(&self) -> String {
        format!(
            // Polled every 30 s: the agent must see tags through its watch on the repository.
            "{{ git: {{ url: {}, tags: \"v*\", poll: 30s }} }}",
            self.repo.dir().display()
        )
    }

    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn publish(&self, world: &World, revision: &str, hooks: Hooks) {
        self.commit(world, revision, hooks);
        self.repo
            .tag_signed(revision, &format!("release {revision}"), &world.key, None);
    }

    fn publish_refused(&self, world: &World, revision: &str) -> &'static str {
        self.commit(world, revision, Hooks::Good);
        self.repo
            .tag_annotated_unsigned(revision, &format!("release {revision}"));
        "unsigned_tag"
    }

    fn poll_as_agent(&self, world: &World) -> Option<String> {
        let source = GitSource::new(self.repo.dir().display().to_string());
        let mut channel = shoal_agent::channel::git::GitChannel::open(
            source,
            &world.data_dir,
            GROUP,
            APPLICATION,
        )
        .unwrap();
        let mut state = world.channel_state();
        let poll = channel
            .poll(&world.signers(), &mut state, world.now())
            .unwrap();
        poll.newest.map(|r| r.version.name().to_owned())
    }
}
