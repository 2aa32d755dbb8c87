//! What the man pages say beyond `--help`: one [`Page`] per page, keyed by the page's name
//! (`shoal`, `shoal-agent`, `shoal-appspec-check`, ...). A new subcommand needs an entry here
//! with at least EXAMPLES and EXIT STATUS; the tests fail until it has one.
//!
//! The facts come from the docs (`docs/commands.md`, `docs/configuration.md`,
//! `docs/status-api-and-metrics.md`, `docs/install.md`) and the code; keep them in step.

use super::super::exit::{FAILURE, OK, USAGE};

/// The sections a page adds to what clap_mangen renders.
pub(super) struct Page {
    /// The page's name: `shoal`, or `shoal-` and the subcommand's words joined by `-`.
    pub(super) name: &'static str,
    /// Paragraphs added to DESCRIPTION, after the command's own help line.
    pub(super) description: &'static [&'static str],
    /// EXIT STATUS: each code the command exits with, and what it means for this command.
    pub(super) exit_status: &'static [(u8, &'static str)],
    /// ENVIRONMENT: the variables the command reads (or sets for what it runs).
    pub(super) environment: &'static [Entry],
    /// FILES: the files and directories the command reads or writes.
    pub(super) files: &'static [Entry],
    /// EXAMPLES: realistic command lines, each with what it does.
    pub(super) examples: &'static [Example],
    /// SEE ALSO: other pages, as `name(section)`.
    pub(super) see_also: &'static [&'static str],
}

/// A variable or a file, and what it is to the command.
pub(super) struct Entry {
    pub(super) name: &'static str,
    pub(super) text: &'static str,
}

/// A command line and what it does. A long line goes on with ` \` and a newline, as in a shell.
pub(super) struct Example {
    pub(super) what: &'static str,
    pub(super) command: &'static str,
}

/// The page named `name`, if the table has it.
pub(super) fn find(name: &str) -> Option<&'static Page> {
    PAGES.iter().find(|page| page.name == name)
}

// Entries several pages share.

const RUST_LOG: Entry = Entry {
    name: "RUST_LOG",
    text: "A tracing filter for the log lines on stderr, such as debug or shoal_agent=debug; when \
           set, it overrides -v (and the agent's log.level).",
};

const NO_COLOR: Entry = Entry {
    name: "NO_COLOR",
    text: "When set and not empty, log lines carry no colour even on a terminal (off a terminal \
           they never do).",
};

const JOURNAL_STREAM: Entry = Entry {
    name: "JOURNAL_STREAM",
    text: "Set by systemd. While stderr is that journal stream, each log line starts with its \
           syslog priority (<3> error, <4> warning, <6> info, <7> debug), so journalctl -p \
           filters by level.",
};

const PROXIES: Entry = Entry {
    name: "HTTPS_PROXY, https_proxy, ALL_PROXY, NO_PROXY",
    text: "Proxies for fetching git repositories over https, as curl reads them; NO_PROXY names \
           the hosts to reach directly.",
};

const GIT_SSL_CAINFO: Entry = Entry {
    name: "GIT_SSL_CAINFO",
    text: "A CA file for a git server whose certificate a private CA signed.",
};

const SSH_AUTH_SOCK: Entry = Entry {
    name: "SSH_AUTH_SOCK",
    text: "The ssh-agent that ssh asks for a key when a git repository over ssh has no ssh_key.",
};

const STORE_CREDENTIALS: Entry = Entry {
    name: "AWS_*, GOOGLE_*, AZURE_*",
    text: "The credentials and settings of a store channel (s3://, gs://, az://): for S3 the \
           access keys, session token or web identity, else the EC2 instance profile; \
           AWS_REGION or AWS_DEFAULT_REGION is the region when none is given (else us-east-1).",
};

const TMPDIR: Entry = Entry {
    name: "TMPDIR",
    text: "Where the temporary directory is made.",
};

const CONFIG_OF_CLIENT: Entry = Entry {
    name: "/etc/shoal/agent.yaml",
    text: "The agent's configuration (another with --config), read for status.listen and \
           node.data_dir only, never for the files it names: any user who may read it can run \
           this command. Not read when --addr is given.",
};

const CONFIG_OF_STEERING: Entry = Entry {
    name: "/etc/shoal/agent.yaml",
    text: "The agent's configuration (another with --config), read for node.data_dir: where the \
           agent's control socket is.",
};

const CONTROL_SOCKET: Entry = Entry {
    name: "/var/lib/shoal/control.sock",
    text: "The agent's control socket, <node.data_dir>/control.sock: the status API served to \
           root alone (0600, in the 0700 data directory). status, fleet and logs ask there when \
           this user can reach it, else over TCP at status.listen; halt, resume, promote, forget \
           and leave steer only there.",
};

const ADMIN_TOKEN: Entry = Entry {
    name: "/var/lib/shoal/admin.token",
    text: "The admin token (status.token_file), made 0600 by the agent if missing: steering \
           calls and hook output over TCP need it. The control socket needs none.",
};

const DATA_DIR: Entry = Entry {
    name: "/var/lib/shoal/",
    text: "The agent's data directory (node.data_dir), 0700: the group journals (journal/), \
           channel state (channels/), git mirrors (mirrors/), the release cache (releases/), \
           the deployment root (deployment-root/), the admin token and the control socket.",
};

const ALLOWED_SIGNERS: Entry = Entry {
    name: "/etc/shoal/allowed_signers",
    text: "Who may sign releases, in OpenSSH's allowed_signers format (the file git verify-tag \
           reads), one signer a line with namespaces=\"git,shoal-release\" (git for tags, \
           shoal-release for store releases). A group names its file with allowed_signers; \
           this is where the packaged configuration and the README put it.",
};

const GOSSIP_KEY: Entry = Entry {
    name: "/etc/shoal/gossip.key",
    text: "The mesh's cluster key (mesh.key_file), mode 0600: one base64 key (32 bytes) a line; \
           the first seals every gossip datagram, all of them open. Every host of a mesh needs \
           the same file. The packages make one at install if it is missing.",
};

const ENVIRONMENT_FILE: Entry = Entry {
    name: "/etc/default/shoal, /etc/sysconfig/shoal",
    text: "KEY=value lines the service starts the agent with (Debian, RPM): store credentials, \
           HTTPS_PROXY, GIT_SSL_CAINFO, RUST_LOG. Hooks without runas get all of it; runas hooks \
           only the names on hooks.runas_env.",
};

const SCRIPTS_LOG: Entry = Entry {
    name: "/var/lib/shoal/deployment-root/GROUP/DEPLOYMENT/logs/scripts.log",
    text: "A deployment's hook output on this host (0600, root's: it may hold secrets).",
};

/// How status, fleet and logs find the agent.
const READS_THE_AGENT: &str = "It asks the agent on this host. Without --addr it reads the \
    configuration (--config) for status.listen and node.data_dir, and asks over the agent's \
    control socket when this user can reach it (root), else over TCP at status.listen (an \
    address of 0.0.0.0 is reached on loopback). With --addr HOST:PORT it asks there, over TCP.";

/// How halt, resume, promote, forget and leave reach the agent.
const STEERS_THE_AGENT: &str = "It steers the agent on this host over its control socket, found \
    from --config's node.data_dir, which only root can reach: run it with sudo. The command \
    takes effect on this host at once, is recorded in the group's journal, and spreads to the \
    other members by gossip (an agent without a mesh is a group of one).";

/// The exit status of the steering commands when the agent cannot be reached or the
/// request is wrong.
const STEERING_USAGE: &str = "The command was not run: not root (the control socket is \
    root's), not a group name, no such group on this host, or the configuration cannot be read.";

/// Every page; the order is the order of `shoal --help`.
pub(super) const PAGES: &[Page] = &[
    Page {
        name: "shoal",
        description: &[
            "Every host runs the same agent (shoal agent), which watches a signed release \
             channel: the tags of a git repository, or an object store (S3, Google Cloud \
             Storage, Azure, or a directory). Agents agree with their peers over gossip on who \
             upgrades when (rolling, canary, linear, one, half or all at a time), run the \
             application's lifecycle hooks from a standard AWS CodeDeploy appspec.yml, and hold \
             each host to a health check. One failure anywhere halts the release on every host, \
             and the hosts that already moved go back to their last known good revision. There \
             is no central server.",
            "The commands: shoal agent runs the agent. shoal status, shoal fleet and shoal logs \
             read it: this host's groups, every node of the mesh, a deployment's hook output. \
             shoal halt, resume, promote, forget and leave steer a group's rollout through it, \
             as root. The rest need no agent: shoal deploy installs a bundle on this host once \
             (like codedeploy-local), shoal appspec check validates an AppSpec, shoal release \
             and shoal verify publish and check signed releases, shoal keygen makes a gossip \
             key, shoal demo runs five agents on this machine, and shoal completions prints \
             shell completions. Each has a page of its own, listed under SUBCOMMANDS.",
            "To set up a host: put the keys that may sign releases in /etc/shoal/allowed_signers, \
             name a group (and a mesh, if hosts roll out together) in /etc/shoal/agent.yaml, \
             check it with shoal agent --check-config, then start the service with systemctl \
             start shoal. The packages enable the service but do not start it.",
            "Every key of agent.yaml, the rollout policy, signing and the status API are \
             described in the documentation installed in /usr/share/doc/shoal/.",
        ],
        exit_status: &[
            (OK, "Success."),
            (
                FAILURE,
                "A runtime failure: a deployment failed, a release is refused, no agent answers, \
                 or the rollout refuses the command.",
            ),
            (
                USAGE,
                "A usage or configuration error, and nothing was done: a command line that does \
                 not parse, a configuration, AppSpec or file that cannot be used. The error \
                 names the file, line or key, and the fix.",
            ),
        ],
        environment: &[RUST_LOG, NO_COLOR, JOURNAL_STREAM],
        files: &[
            Entry {
                name: "/etc/shoal/agent.yaml",
                text: "The agent's configuration, and where the other commands find the agent.",
            },
            ALLOWED_SIGNERS,
            GOSSIP_KEY,
            DATA_DIR,
            CONTROL_SOCKET,
            ENVIRONMENT_FILE,
            Entry {
                name: "/usr/share/doc/shoal/",
                text: "The documentation, example configurations, Prometheus alert rules and a \
                       Grafana dashboard.",
            },
        ],
        examples: &[
            Example {
                what: "Check the configuration, then start the agent under systemd:",
                command: "sudo shoal agent --check-config && sudo systemctl start shoal",
            },
            Example {
                what: "See this host's groups, then every host of the mesh:",
                command: "shoal status\nshoal fleet",
            },
            Example {
                what: "Stop a group's rollout on every host:",
                command: "sudo shoal halt web --reason \"bad build\"",
            },
        ],
        see_also: &[
            "shoal-agent(1)",
            "shoal-status(1)",
            "shoal-fleet(1)",
            "shoal-deploy(1)",
            "systemctl(1)",
            "journalctl(1)",
            "ssh-keygen(1)",
        ],
    },
    Page {
        name: "shoal-agent",
        description: &[
            "The agent runs until SIGTERM or SIGINT: it then starts no more work, lets each hook \
             still running go on for node.shutdown_grace (30s by default), and exits. SIGHUP \
             (systemctl reload shoal) reads the configuration again: groups added, changed or \
             removed apply between their deployments; node, status, log, hooks and mesh apply \
             at the next restart; a file that does not load changes nothing.",
            "One agent runs per data directory: a second shoal agent on the same node.data_dir \
             exits 2 and names the running one's pid. The agent takes its log format and level \
             from log: in its configuration; --log-format and -v do not apply to it. Under \
             systemd (Type=notify) it reports READY=1 once its status endpoint serves.",
            "--check-config checks the file, each group's allowed_signers file and the \
             credential files it names (token_file, ssh_key: present, regular, readable), prints \
             a summary and exits; it works while the agent runs.",
            "Hooks without runas run as the agent with its whole environment (without \
             NOTIFY_SOCKET); runas hooks get only their user's basics, the deployment's \
             variables and the names on hooks.runas_env.",
        ],
        exit_status: &[
            (
                OK,
                "The agent stopped on SIGTERM or SIGINT; with --check-config, the configuration \
                 is good.",
            ),
            (
                FAILURE,
                "The agent stopped on a runtime failure, or could not create its data directory \
                 or lock file. The service restarts it.",
            ),
            (
                USAGE,
                "The configuration does not load (it names no group and no mesh, a key is \
                 wrong, a credential file cannot be opened), or another agent holds \
                 node.data_dir. Nothing was started; the service does not restart it \
                 (RestartPreventExitStatus=2), and systemctl status shoal shows the reason.",
            ),
        ],
        environment: &[
            Entry {
                name: "RUST_LOG",
                text: "A tracing filter for the agent's log lines, such as \
                       info,shoal_agent=debug; when set, it overrides log.level.",
            },
            Entry {
                name: "NOTIFY_SOCKET",
                text: "Set by systemd for a Type=notify service: the agent reports READY=1, \
                       STATUS= lines as it deploys, RELOADING=1 around a reload and STOPPING=1 \
                       at shutdown. Hooks and health check commands do not get it.",
            },
            JOURNAL_STREAM,
            Entry {
                name: "NO_COLOR",
                text: "When set and not empty, log lines carry no colour on a terminal. The \
                       packaged unit sets NO_COLOR=1, and hooks inherit it.",
            },
            PROXIES,
            GIT_SSL_CAINFO,
            SSH_AUTH_SOCK,
            STORE_CREDENTIALS,
            Entry {
                name: "GLIBC_TUNABLES, MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_",
                text: "With glibc, the agent tunes its allocator to give freed memory back: \
                       unless GLIBC_TUNABLES is set, it starts itself again with \
                       glibc.malloc.tcache_count=0 (its hooks do not get that setting), and it \
                       sets 2 arenas and a 128 KiB mmap threshold unless MALLOC_ARENA_MAX or \
                       MALLOC_MMAP_THRESHOLD_ says otherwise.",
            },
        ],
        files: &[
            Entry {
                name: "/etc/shoal/agent.yaml",
                text: "The configuration (another with --config). Relative paths in it are \
                       taken from its own directory; unknown keys are errors.",
            },
            ALLOWED_SIGNERS,
            GOSSIP_KEY,
            DATA_DIR,
            Entry {
                name: "/var/lib/shoal/agent.lock",
                text: "Held (flock, with the agent's pid in it) while the agent runs; the \
                       kernel releases it however the agent ends.",
            },
            CONTROL_SOCKET,
            ADMIN_TOKEN,
            SCRIPTS_LOG,
            Entry {
                name: "/root/.ssh/known_hosts, /etc/ssh/ssh_known_hosts",
                text: "Host keys of git servers reached over ssh: an unknown key is refused, \
                       never trusted on first use.",
            },
            ENVIRONMENT_FILE,
            Entry {
                name: "/usr/lib/systemd/system/shoal.service",
                text: "The packaged unit; change its settings with systemctl edit shoal.",
            },
        ],
        examples: &[
            Example {
                what: "Check the configuration before starting or reloading the agent:",
                command: "sudo shoal agent --check-config",
            },
            Example {
                what: "Run the agent in the foreground, as the service runs it:",
                command: "sudo shoal agent --config /etc/shoal/agent.yaml",
            },
            Example {
                what: "Read agent.yaml again without a restart (SIGHUP):",
                command: "sudo systemctl reload shoal",
            },
            Example {
                what: "Show the agent's warnings and errors from the journal:",
                command: "journalctl -u shoal -p warning",
            },
        ],
        see_also: &[
            "shoal(1)",
            "shoal-status(1)",
            "shoal-fleet(1)",
            "shoal-logs(1)",
            "shoal-halt(1)",
            "shoal-keygen(1)",
            "systemctl(1)",
            "journalctl(1)",
            "ssh-keygen(1)",
        ],
    },
    Page {
        name: "shoal-deploy",
        description: &[
            "A one-shot in-place deployment of a bundle on this host, like codedeploy-local: no \
             channel, no signature, no gossip. It unpacks the bundle and checks its AppSpec \
             first (DownloadBundle), then runs the lifecycle, and prints one line per event and \
             the path of the hook output.",
            "A second shoal deploy into the same root and group runs the first revision's \
             ApplicationStop (and block-traffic hooks), then removes the files the first one \
             installed before installing its own. One deployment of a group runs at a time.",
        ],
        exit_status: &[
            (OK, "The deployment succeeded."),
            (
                FAILURE,
                "The deployment failed: a hook failed or ran past its timeout, the install \
                 failed, or the bundle was refused.",
            ),
            (
                USAGE,
                "Bad usage or a bad AppSpec, and nothing was run: the bundle does not exist, \
                 the AppSpec does not validate, or --events asks for an order codedeploy-local \
                 refuses.",
            ),
        ],
        environment: &[
            Entry {
                name: "LIFECYCLE_EVENT, DEPLOYMENT_ID, APPLICATION_NAME, DEPLOYMENT_GROUP_NAME, \
                       DEPLOYMENT_GROUP_ID",
                text: "Set for each hook script, as the CodeDeploy agent sets them \
                       (DEPLOYMENT_GROUP_ID is the group's name).",
            },
            Entry {
                name: "SHOAL_REVISION, SHOAL_PREVIOUS_REVISION, SHOAL_DEPLOYMENT_DIR, \
                       SHOAL_FILES_ROOT",
                text: "Also set for each hook: the revision (--revision), the one before it \
                       (empty on a first deployment), this deployment's directory, and \
                       --files-root when given.",
            },
            RUST_LOG,
        ],
        files: &[
            Entry {
                name: "/var/lib/shoal/deployment-root",
                text: "The default deployment root (--root).",
            },
            Entry {
                name: "ROOT/GROUP/DEPLOYMENT/deployment-archive/",
                text: "The unpacked bundle; scripts run from it.",
            },
            Entry {
                name: "ROOT/GROUP/DEPLOYMENT/logs/scripts.log",
                text: "The hook output of the deployment.",
            },
            Entry {
                name: "ROOT/GROUP/.lock",
                text: "Held while a deployment of the group runs.",
            },
            Entry {
                name: "ROOT/deployment-instructions/",
                text: "Which revision to stop and which files to remove next time, under the \
                       names the CodeDeploy agent uses.",
            },
        ],
        examples: &[
            Example {
                what: "Deploy a directory bundle as revision app-2 into a scratch root:",
                command: "shoal deploy --bundle ./app --root /tmp/shoal-example/root \\\n    \
                          --revision app-2",
            },
            Example {
                what: "Deploy an archive for the group web of the application shop:",
                command: "sudo shoal deploy --bundle shop-1.4.0.tar.gz --group web \\\n    \
                          --application shop",
            },
            Example {
                what: "Run these events in this order; Warmup runs the AppSpec's hooks of that \
                       name:",
                command: "sudo shoal deploy --bundle ./app \\\n    \
                          --events ApplicationStop,Warmup,ApplicationStart",
            },
            Example {
                what: "Go past a broken ApplicationStop of the running revision, once:",
                command: "sudo shoal deploy --bundle ./app --ignore-application-stop-failures",
            },
        ],
        see_also: &["shoal(1)", "shoal-appspec-check(1)", "shoal-agent(1)"],
    },
    Page {
        name: "shoal-appspec",
        description: &["Its one subcommand is shoal appspec check."],
        exit_status: &[
            (OK, "The AppSpec is valid (shoal appspec check)."),
            (
                USAGE,
                "The AppSpec is not valid or cannot be read; or no subcommand was given (the \
                 help is printed).",
            ),
        ],
        environment: &[],
        files: &[],
        examples: &[
            Example {
                what: "Check a bundle's AppSpec:",
                command: "shoal appspec check appspec.yml",
            },
            Example {
                what: "Check it for a deployment that runs a custom event:",
                command: "shoal appspec check appspec.yml --events ApplicationStop,Warmup",
            },
        ],
        see_also: &["shoal-appspec-check(1)", "shoal-deploy(1)"],
    },
    Page {
        name: "shoal-appspec-check",
        description: &[
            "It refuses what a deployment would refuse, in the same sentence, so a CI gate on it \
             stops a release before its canary does: an error in the file, and hooks for an \
             event an in-place deployment never runs (a misspelling such as ApplicationStrat, \
             DownloadBundle, Install, a custom event). Warnings (unknown or duplicate keys, \
             hooks with no scripts, relative destinations) go to stderr and do not change the \
             exit status.",
        ],
        exit_status: &[
            (
                OK,
                "The AppSpec is valid; ok is printed, and any warnings on stderr.",
            ),
            (
                USAGE,
                "The AppSpec is not valid, cannot be read, or has hooks a deployment would \
                 refuse; or the --events list is refused. One sentence names the file, line and \
                 key and what would be accepted. The command does not exit 1.",
            ),
        ],
        environment: &[],
        files: &[],
        examples: &[
            Example {
                what: "Check an AppSpec: ok, or one line naming the file, line and key:",
                command: "shoal appspec check appspec.yml",
            },
            Example {
                what: "Check it for a deployment run with these --events (hooks for Warmup are \
                       accepted):",
                command: "shoal appspec check app/appspec.yml \\\n    \
                          --events ApplicationStop,Warmup,ApplicationStart",
            },
        ],
        see_also: &["shoal-deploy(1)", "shoal-release(1)"],
    },
    Page {
        name: "shoal-release",
        description: &[
            "A store channel holds one directory per version: VERSION/release.yaml (the version, \
             application, bundle name, sha256 and size, and an optional rollout policy), \
             VERSION/release.yaml.sig (an SSH signature, namespace shoal-release) and the \
             bundle. A directory is packaged as a deterministic .tar.gz; an archive is uploaded \
             as it is.",
            "Releases are immutable: an existing version (also 1.4.0 beside v1.4.0) is refused \
             before anything is signed or uploaded, every upload is a create-only put, and the \
             signature goes last. An unencrypted ed25519 key signs in-process; an encrypted key, \
             or a .pub whose private half is in ssh-agent, signs through ssh-keygen -Y sign.",
        ],
        exit_status: &[
            (OK, "The release was published."),
            (
                FAILURE,
                "The store could not be read or written, the version already exists there, or \
                 ssh-keygen could not sign.",
            ),
            (
                USAGE,
                "Bad usage, and nothing was uploaded: a version that is not semver, a bad \
                 --application, --store URL or --rollout file, a store that cannot be opened \
                 with these settings, a bundle that does not exist or cannot be packaged, or a \
                 key file that cannot be read or is not a key.",
            ),
        ],
        environment: &[
            STORE_CREDENTIALS,
            Entry {
                name: "SSH_AUTH_SOCK",
                text: "The ssh-agent that ssh-keygen signs with when --key is a .pub file.",
            },
            RUST_LOG,
        ],
        files: &[],
        examples: &[
            Example {
                what: "Package ./app and publish it as v1.4.0 of the application web:",
                command: "shoal release --store s3://releases/web --application web \\\n    \
                          --version v1.4.0 --bundle ./app --key ~/.ssh/release_ed25519",
            },
            Example {
                what: "Publish an archive to a directory, signing through ssh-agent:",
                command: "shoal release --store file:///srv/releases/shop --application shop \\\n    \
                          --version 1.5.0 --bundle shop.tar.gz \\\n    \
                          --key ~/.ssh/release_ed25519.pub",
            },
            Example {
                what: "Publish to an S3-compatible server, with a rollout policy of its own:",
                command: "shoal release --store s3://releases/web \\\n    \
                          --endpoint http://127.0.0.1:9000 --allow-http \\\n    \
                          --application web --version v1.4.1 --bundle ./app \\\n    \
                          --key ~/.ssh/release_ed25519 --rollout rollout.yaml",
            },
        ],
        see_also: &["shoal-verify-store(1)", "shoal-agent(1)", "ssh-keygen(1)"],
    },
    Page {
        name: "shoal-verify",
        description: &[
            "Both subcommands run the agent's own checks and print good:, refused: (with the \
             reason) or missing:, or one JSON object with --json.",
        ],
        exit_status: &[
            (OK, "The tag or release verifies."),
            (
                FAILURE,
                "It is refused or missing, or could not be fetched.",
            ),
            (
                USAGE,
                "Bad usage or an allowed_signers file that cannot be read; or no subcommand was \
                 given (the help is printed).",
            ),
        ],
        environment: &[],
        files: &[ALLOWED_SIGNERS],
        examples: &[
            Example {
                what: "Check a signed tag as the hosts of the group shop would:",
                command: "shoal verify git --repo https://git.example.com/shop.git \\\n    \
                          --tag v1.4.0 --application shop \\\n    \
                          --allowed-signers /etc/shoal/allowed_signers",
            },
            Example {
                what: "Check a store release:",
                command: "shoal verify store --url s3://releases/web --version v1.4.0 \\\n    \
                          --allowed-signers /etc/shoal/allowed_signers",
            },
        ],
        see_also: &[
            "shoal-verify-git(1)",
            "shoal-verify-store(1)",
            "shoal-release(1)",
            "ssh-keygen(1)",
        ],
    },
    Page {
        name: "shoal-verify-git",
        description: &[
            "It fetches the one tag into a temporary mirror and checks it as the agent does: an \
             annotated tag, signed with an SSH key that the allowed_signers file trusts for the \
             namespace git, whose message binds it to an application with one \
             Shoal-Application: line. With --application the tag must be bound to that one; \
             without it, any binding is reported (an unbound tag is still refused). It prints \
             good:, refused: with the reason, or missing:; or one JSON object with --json.",
        ],
        exit_status: &[
            (OK, "The tag verifies."),
            (
                FAILURE,
                "The tag is refused (untrusted or expired key, wrong namespace, unsigned, \
                 unbound or bound to another application, ...) or missing, or the repository \
                 could not be fetched.",
            ),
            (
                USAGE,
                "Bad usage: not a tag name, or an allowed_signers file that cannot be read or \
                 has a bad line.",
            ),
        ],
        environment: &[PROXIES, GIT_SSL_CAINFO, SSH_AUTH_SOCK, TMPDIR, RUST_LOG],
        files: &[
            ALLOWED_SIGNERS,
            Entry {
                name: "~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts",
                text: "Host keys of a repository over ssh: an unknown key is refused.",
            },
        ],
        examples: &[
            Example {
                what: "Check a tag as the hosts of the group shop would:",
                command: "shoal verify git --repo https://git.example.com/shop.git \\\n    \
                          --tag v1.4.0 --application shop \\\n    \
                          --allowed-signers /etc/shoal/allowed_signers",
            },
            Example {
                what: "Check a tag of the repository in the current directory, as JSON:",
                command: "shoal verify git --repo . --tag v1.4.0 \\\n    \
                          --allowed-signers allowed_signers --json",
            },
            Example {
                what: "Check over ssh with the key the agent uses, as root:",
                command: "sudo shoal verify git --repo git@git.example.com:shop/deploy.git \\\n    \
                          --tag v1.4.0 --ssh-key /etc/shoal/deploy_ed25519 \\\n    \
                          --allowed-signers /etc/shoal/allowed_signers",
            },
        ],
        see_also: &[
            "shoal-verify-store(1)",
            "shoal-agent(1)",
            "git-verify-tag(1)",
            "ssh-keygen(1)",
        ],
    },
    Page {
        name: "shoal-verify-store",
        description: &[
            "It checks one release of a store channel from end to end: the signature of \
             release.yaml against the allowed_signers file (namespace shoal-release), the \
             application it is bound to, then the bundle's size and sha256 as it streams; \
             nothing is kept. It prints good:, refused: with the reason, or missing:; or one \
             JSON object with --json.",
        ],
        exit_status: &[
            (OK, "The release verifies."),
            (
                FAILURE,
                "The release is refused or missing, or the store could not be read.",
            ),
            (
                USAGE,
                "Bad usage: a version that is not semver, a bad --url, a store that cannot be \
                 opened with these settings, or an allowed_signers file that cannot be read or \
                 has a bad line.",
            ),
        ],
        environment: &[STORE_CREDENTIALS, RUST_LOG],
        files: &[ALLOWED_SIGNERS],
        examples: &[
            Example {
                what: "Check v1.4.0 of the application web:",
                command: "shoal verify store --url s3://releases/web --version v1.4.0 \\\n    \
                          --application web --allowed-signers /etc/shoal/allowed_signers",
            },
            Example {
                what: "Check a release in a directory store, as JSON:",
                command: "shoal verify store --url file:///srv/releases/shop --version 1.5.0 \\\n    \
                          --allowed-signers /etc/shoal/allowed_signers --json",
            },
        ],
        see_also: &[
            "shoal-release(1)",
            "shoal-verify-git(1)",
            "shoal-agent(1)",
            "ssh-keygen(1)",
        ],
    },
    Page {
        name: "shoal-status",
        description: &[
            "For each group: the current and target revision, the phase (with the lifecycle event \
             running and for how long), the floor, health; its channel and when this host last \
             looked at it, or that the group's pollers look for it; this host's part in the \
             rollout (its step, canary mark, turn, for how long, the rollout's deadline, why it \
             waits, the promote it waits for with the command, the halt, and its failed \
             script's last lines, which are root's); the last deployment and its events, the last failure, \
             refusal and channel error. --json prints GET /v1/status as the agent serves it.",
            READS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "The status was printed."),
            (
                FAILURE,
                "No agent answers (it is not running, listens elsewhere, or did not answer \
                 within 10 s), or its answer is not what this version of shoal reads.",
            ),
            (
                USAGE,
                "The configuration cannot be read (give --config or --addr).",
            ),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_CLIENT, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "This host's groups and the events of their last deployment:",
                command: "shoal status",
            },
            Example {
                what: "The same as JSON, for scripts:",
                command: "shoal status --json",
            },
            Example {
                what: "Ask the agent at this address, without reading a configuration:",
                command: "shoal status --addr 127.0.0.1:7701",
            },
        ],
        see_also: &[
            "shoal-fleet(1)",
            "shoal-logs(1)",
            "shoal-agent(1)",
            "journalctl(1)",
        ],
    },
    Page {
        name: "shoal-fleet",
        description: &[
            "Every node the mesh knows, alive or dead, with what it does in each group: the \
             revision it runs and the one it moves to, its phase, the lifecycle event it runs \
             and for how long, a canary mark and its health. Per group: the release, a progress \
             bar with how many members are done, running and failed, when the rollout started \
             and its deadline (or when it finished and how long it took), the promote it waits \
             for with the exact command, and the halt in force with the failed script's last \
             lines (root's, like hook output). --json prints GET /v1/fleet as the agent serves \
             it. The same view is the fleet page at http://127.0.0.1:7701/ on the host, which \
             follows the rollout by itself.",
            READS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "The fleet was printed."),
            (
                FAILURE,
                "No agent answers (it is not running, listens elsewhere, or did not answer \
                 within 10 s), or its answer is not what this version of shoal reads.",
            ),
            (
                USAGE,
                "The configuration cannot be read (give --config or --addr).",
            ),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_CLIENT, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "Every node and each group's rollout:",
                command: "shoal fleet",
            },
            Example {
                what: "The same as JSON:",
                command: "shoal fleet --json",
            },
            Example {
                what: "Ask an agent at another address, such as one that shoal demo --keep \
                       lists:",
                command: "shoal fleet --addr 127.0.0.1:40123",
            },
        ],
        see_also: &[
            "shoal-status(1)",
            "shoal-halt(1)",
            "shoal-promote(1)",
            "shoal-agent(1)",
        ],
    },
    Page {
        name: "shoal-history",
        description: &[
            "Each group's recent releases, newest first, as this host's agent saw them roll out: \
             when it first saw each, the result (in-progress, completed, halted, or superseded \
             by a newer release), how long the rollout took, who signed the release (the \
             principal of allowed_signers), and beneath it the hosts that failed and who \
             halted, resumed or promoted it (user@node). --json prints GET /v1/history as \
             the agent serves it, every event included. The history lives in \
             <node.data_dir>/history/ and survives restarts; a host keeps what it saw itself.",
            READS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "The history was printed."),
            (
                FAILURE,
                "No agent answers (it is not running, listens elsewhere, or did not answer \
                 within 10 s), it has no such group, or its answer is not what this version of \
                 shoal reads.",
            ),
            (
                USAGE,
                "Not a group name, or the configuration cannot be read (give --config or \
                 --addr).",
            ),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_CLIENT, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "Every group's recent releases:",
                command: "shoal history",
            },
            Example {
                what: "The group web's, with every event, as JSON:",
                command: "shoal history web --json",
            },
        ],
        see_also: &["shoal-fleet(1)", "shoal-status(1)", "shoal-halt(1)"],
    },
    Page {
        name: "shoal-logs",
        description: &[
            "Hook output holds whatever scripts print, secrets included, so the agent serves it \
             to root over its control socket, or over TCP with the admin token (unless \
             status.public_logs is true): sudo shoal logs needs nothing more, and --token-file \
             FILE sends the token over TCP. Control characters in the output are shown escaped.",
            READS_THE_AGENT,
        ],
        exit_status: &[
            (
                OK,
                "The output was printed (there may be none yet); with --follow, the deployment \
                 has ended, whatever its result.",
            ),
            (
                FAILURE,
                "No agent answers, the agent knows no such deployment on this host, or its \
                 answer is not what this version of shoal reads.",
            ),
            (
                USAGE,
                "Not a deployment id; the --token-file cannot be read; the agent refused the \
                 output (not root and no token, or the wrong token); or the configuration \
                 cannot be read.",
            ),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_CLIENT, CONTROL_SOCKET, ADMIN_TOKEN, SCRIPTS_LOG],
        examples: &[
            Example {
                what: "The hook output of a deployment that shoal status names:",
                command: "sudo shoal logs d-3074ff9de681",
            },
            Example {
                what: "Follow a deployment's output until it ends:",
                command: "sudo shoal logs --follow d-3074ff9de681",
            },
            Example {
                what: "Ask over TCP with a copy of the admin token:",
                command: "shoal logs d-3074ff9de681 --addr 127.0.0.1:7701 \\\n    \
                          --token-file ~/admin.token",
            },
        ],
        see_also: &["shoal-status(1)", "shoal-agent(1)", "journalctl(1)"],
    },
    Page {
        name: "shoal-halt",
        description: &[
            "No host starts the release any more; with auto_revert (the default) the hosts that \
             moved go back to their last known good revision. The halt lasts until shoal \
             resume, and shoal status, shoal fleet and the fleet page show it with its reason.",
            STEERS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "The halt was recorded on this host."),
            (
                FAILURE,
                "No agent runs with this configuration (no control socket), it did not answer \
                 within 10 s, or the group has no release to halt.",
            ),
            (USAGE, STEERING_USAGE),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_STEERING, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "Halt the rollout of the group web, saying why:",
                command: "sudo shoal halt web --reason \"error rate up after v1.4.0\"",
            },
            Example {
                what: "Halt it; the reason is optional:",
                command: "sudo shoal halt web",
            },
            Example {
                what: "Watch the halt reach every host:",
                command: "shoal fleet",
            },
        ],
        see_also: &[
            "shoal-resume(1)",
            "shoal-fleet(1)",
            "shoal-status(1)",
            "shoal-agent(1)",
        ],
    },
    Page {
        name: "shoal-resume",
        description: &[
            "The rollout goes on where it stopped, with its failures counted afresh. Fix the \
             cause first: a release that fails again halts again.",
            STEERS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "The resume was recorded on this host."),
            (
                FAILURE,
                "No agent runs with this configuration (no control socket), it did not answer \
                 within 10 s, the group has no release, or its rollout is not halted.",
            ),
            (USAGE, STEERING_USAGE),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_STEERING, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "Lift the halt of the group web after fixing the host:",
                command: "sudo shoal resume web",
            },
            Example {
                what: "See the rollout go on:",
                command: "shoal fleet",
            },
        ],
        see_also: &["shoal-halt(1)", "shoal-fleet(1)", "shoal-agent(1)"],
    },
    Page {
        name: "shoal-promote",
        description: &[
            "A canary rollout whose policy sets auto_promote: false stops once its canaries are \
             healthy, and waits (shoal fleet and the fleet page say so) until shoal promote lets \
             it go on to the other hosts.",
            STEERS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "The promotion was recorded on this host."),
            (
                FAILURE,
                "No agent runs with this configuration (no control socket), it did not answer \
                 within 10 s, or the rollout cannot be promoted: the group has no release, it \
                 is not a canary rollout, or it is halted, complete, promotes itself \
                 (auto_promote: true) or is already promoted.",
            ),
            (USAGE, STEERING_USAGE),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_STEERING, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "See whether the canaries are done and the rollout waits:",
                command: "shoal fleet",
            },
            Example {
                what: "Let the rollout of the group web go past its canaries:",
                command: "sudo shoal promote web",
            },
        ],
        see_also: &["shoal-fleet(1)", "shoal-halt(1)", "shoal-agent(1)"],
    },
    Page {
        name: "shoal-rollback",
        description: &[
            "Like CodeDeploy's \"redeploy a previous revision\": the group goes back to a \
             release it ran before as a rollout of its own, under the group's policy (canary, \
             batches, health check), although the release is below the anti-rollback floor. \
             The agent on this host writes the order: back from the newest release the group \
             verified, to --to or the newest older release this host ran. The key given with \
             --key signs it in namespace shoal-rollback: an allowed_signers line must give that \
             key namespaces=\"shoal-rollback\" (a release key limited to git or shoal-release \
             cannot order a rollback, and neither can the cluster key or the admin token), as in \
             ops@example.com namespaces=\"git,shoal-release,shoal-rollback\" ssh-ed25519 AAAA....",
            "The agent checks the signature and that the order is less than an hour old, then \
             gossips it; every host checks it again against its own allowed_signers before it \
             goes back. The order holds until a newer release is published, which rolls out as \
             usual; the release rolled back from is never offered again. shoal history and \
             notify: record it as rolled_back, with who gave the order.",
            STEERS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "The signed order was given to the agent on this host."),
            (
                FAILURE,
                "No agent runs with this configuration, it did not answer within 10 s, the \
                 signature failed, or the agent refused the order: the key is not in the \
                 group's allowed_signers for shoal-rollback, the group verified no release yet, \
                 --to is not older than its newest release or was never run on this host, or a \
                 later order is in force.",
            ),
            (
                USAGE,
                "The command was not run: not root (the control socket is root's), not a group \
                 name, no such group on this host, a key file that is not an ed25519 OpenSSH \
                 key, or the configuration cannot be read.",
            ),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_STEERING, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "Roll the group web back to the release it ran before, signing with the \
                       operator's key:",
                command: "sudo shoal rollback web --key ~/.ssh/id_ed25519",
            },
            Example {
                what: "Go back to a named release, signing through ssh-agent with the public \
                       half of the key:",
                command: "sudo shoal rollback web --to v1.4.2 --key ~/.ssh/id_ed25519.pub",
            },
            Example {
                what: "Follow the rollback:",
                command: "shoal fleet",
            },
        ],
        see_also: &[
            "shoal-history(1)",
            "shoal-fleet(1)",
            "shoal-halt(1)",
            "shoal-agent(1)",
        ],
    },
    Page {
        name: "shoal-forget",
        description: &[
            "For a member gone for good that did not run shoal leave (a host that died or was \
             deleted): it no longer counts in the group's quorum, on any host. It is refused \
             for this host itself and for a node the group does not know.",
            STEERS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "The forget was recorded on this host."),
            (
                FAILURE,
                "No agent runs with this configuration (no control socket), it did not answer \
                 within 10 s, or the node is this host or not a member of the group.",
            ),
            (USAGE, STEERING_USAGE),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_STEERING, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "Find the dead member:",
                command: "shoal fleet",
            },
            Example {
                what: "Drop web-3 from the group web on every host:",
                command: "sudo shoal forget web web-3",
            },
        ],
        see_also: &["shoal-leave(1)", "shoal-fleet(1)", "shoal-agent(1)"],
    },
    Page {
        name: "shoal-leave",
        description: &[
            "This host leaves the groups named, or every group of its configuration when none \
             is named: the other members drop it at once, and it starts nothing more. The \
             command does not stop the agent: once shoal fleet on another host no longer counts \
             this one, stop it with systemctl disable --now shoal. Starting the agent again \
             rejoins.",
            STEERS_THE_AGENT,
        ],
        exit_status: &[
            (OK, "This host left every group asked for."),
            (
                FAILURE,
                "No agent runs with this configuration (no control socket), or it did not \
                 answer within 10 s, for at least one group.",
            ),
            (
                USAGE,
                "For at least one group: not root, not a group name, no such group on this \
                 host, or the configuration cannot be read. The highest status of the groups \
                 is the command's.",
            ),
        ],
        environment: &[RUST_LOG],
        files: &[CONFIG_OF_STEERING, CONTROL_SOCKET],
        examples: &[
            Example {
                what: "Decommission this host: leave every group, then stop the agent for good:",
                command: "sudo shoal leave\nsudo systemctl disable --now shoal",
            },
            Example {
                what: "Leave the group web only:",
                command: "sudo shoal leave web",
            },
        ],
        see_also: &[
            "shoal-forget(1)",
            "shoal-fleet(1)",
            "shoal-agent(1)",
            "systemctl(1)",
        ],
    },
    Page {
        name: "shoal-demo",
        description: &[
            "It starts five agents on 127.0.0.1 as one mesh watching a git repository whose tags \
             it signs with a fresh SSH key, and releases three versions: v1 every host \
             installs; v2 goes to a canary, then rolls through the rest; v3's ValidateService \
             fails on the canary, the halt reaches every host, nothing else starts v3, and the \
             canary goes back to v2. It ends with what happened, each line checked against the \
             agents. It needs git and ssh-keygen, and runs in under a minute.",
            "With --keep it leaves the agents running and prints, per host, the shoal fleet \
             --addr command, the fleet page and the hello-app URL, and a stop.sh that stops \
             everything and removes the workspace.",
        ],
        exit_status: &[
            (OK, "Everything the demo expects held."),
            (
                FAILURE,
                "git or ssh-keygen is missing, a step of setting up failed, an expectation did \
                 not hold (the workspace is kept), or it was interrupted.",
            ),
            (USAGE, "--dir names a directory that is not empty."),
        ],
        environment: &[
            Entry {
                name: "PATH",
                text: "Where git and ssh-keygen are found.",
            },
            TMPDIR,
            Entry {
                name: "RUST_LOG",
                text: "The demo's own log filter; its agents do not get it.",
            },
        ],
        files: &[
            Entry {
                name: "$TMPDIR/shoal-demo-XXXXXX/",
                text: "The workspace (or --dir): the repository, the keys, and per host its \
                       agent.yaml, data directory and agent.log under hosts/. Removed at the \
                       end unless --keep is given or the demo failed.",
            },
            Entry {
                name: "WORKSPACE/stop.sh",
                text: "With --keep: stops the agents and the hello-apps, and removes the \
                       workspace.",
            },
        ],
        examples: &[
            Example {
                what: "Run the demo:",
                command: "shoal demo",
            },
            Example {
                what: "Run it and leave the agents running to explore them:",
                command: "shoal demo --keep",
            },
            Example {
                what: "Run it in a directory of your choice:",
                command: "shoal demo --dir ~/shoal-demo --keep",
            },
        ],
        see_also: &["shoal(1)", "shoal-fleet(1)", "shoal-agent(1)", "git(1)"],
    },
    Page {
        name: "shoal-keygen",
        description: &[
            "A gossip key is base64 of 32 random bytes. Every host of a mesh needs the same key \
             file (mesh.key_file). --out never overwrites a file. To rotate with no downtime, \
             add a new key as a second line on every host and restart; then make it the first \
             line everywhere and restart; then remove the old line.",
        ],
        exit_status: &[
            (OK, "The key was printed or written."),
            (
                FAILURE,
                "The OS gave no random bytes, or the file cannot be written.",
            ),
            (USAGE, "The file --out names exists; it is kept as it is."),
        ],
        environment: &[],
        files: &[GOSSIP_KEY],
        examples: &[
            Example {
                what: "Make the key of a new mesh:",
                command: "sudo shoal keygen --out /etc/shoal/gossip.key",
            },
            Example {
                what: "Print a new key, to add as a line of every host's key file when \
                       rotating:",
                command: "shoal keygen",
            },
        ],
        see_also: &["shoal-agent(1)", "shoal(1)"],
    },
    Page {
        name: "shoal-completions",
        description: &[
            "The packages install the bash and zsh scripts; the others are printed on demand.",
        ],
        exit_status: &[
            (OK, "The script was printed."),
            (FAILURE, "Standard output cannot be written."),
            (
                USAGE,
                "The shell is not one of bash, zsh, fish, elvish or powershell.",
            ),
        ],
        environment: &[],
        files: &[
            Entry {
                name: "/usr/share/bash-completion/completions/shoal",
                text: "The bash completion the packages install.",
            },
            Entry {
                name: "/usr/share/zsh/vendor-completions/_shoal, \
                       /usr/share/zsh/site-functions/_shoal",
                text: "The zsh completion the .deb and the .rpm install.",
            },
        ],
        examples: &[
            Example {
                what: "Complete shoal in bash for this user:",
                command: "shoal completions bash \\\n    \
                          > ~/.local/share/bash-completion/completions/shoal",
            },
            Example {
                what: "Complete shoal in fish:",
                command: "shoal completions fish > ~/.config/fish/completions/shoal.fish",
            },
        ],
        see_also: &["shoal(1)"],
    },
];
