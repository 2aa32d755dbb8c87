//! How the commands that read this host's agent (`status`, `fleet`, `logs`) reach it: over its
//! control socket when this user can (root; nothing then goes to whoever holds the status
//! port, and hook output needs no token), else at `--addr` or the config's `status.listen`;
//! a small HTTP/1 client (GET through [`crate::net`]) with timeouts and errors that say what to
//! check. Steering goes over the control socket only (`control`).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};
use shoal_shared::status::ErrorBody;

use super::exit;
use crate::config::{self, ClientSettings, ConfigError};
use crate::net::{self, GetError};

/// How long connecting and getting the response head may take, and then each piece of body.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where to find the agent (shared by the commands that read it).
#[derive(Debug, clap::Args)]
pub(super) struct AgentArgs {
    /// The agent's status address (default: status.listen from the config).
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<SocketAddr>,
    /// The agent's config file, read for status.listen when --addr is not given.
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    pub(super) config: PathBuf,
}

/// The agent's status endpoint, and where its address came from (for error messages).
#[derive(Debug, Clone)]
pub(super) struct Agent {
    addr: SocketAddr,
    hint: String,
    /// Its control socket, tried first when the address came from the config.
    control: Option<PathBuf>,
}

/// Why the agent could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ClientError {
    /// Nothing listens at the address.
    #[error(
        "no shoal agent answers at {addr} (connection refused): is `shoal agent` running, and is {hint} this address?"
    )]
    Refused {
        /// The address tried.
        addr: SocketAddr,
        /// Where the address came from.
        hint: String,
    },
    /// Something listens but did not answer in time.
    #[error(
        "the shoal agent at {addr} did not answer within {} s: is it stuck? (`journalctl -u shoal`)",
        TIMEOUT.as_secs()
    )]
    Timeout {
        /// The address tried.
        addr: SocketAddr,
    },
    /// The connection failed otherwise.
    #[error("cannot connect to the shoal agent at {addr}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The HTTP exchange failed.
    #[error("the exchange with the shoal agent at {addr} failed")]
    Http {
        /// The address tried.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: hyper::Error,
    },
    /// The agent answered with an error.
    #[error("{message}")]
    Agent {
        /// The HTTP status.
        status: StatusCode,
        /// The agent's `error`, or the status when it sent none.
        message: String,
    },
    /// The answer is not what this command expects.
    #[error("unexpected answer from the shoal agent at {addr}: {what}")]
    Unexpected {
        /// The address tried.
        addr: SocketAddr,
        /// What was wrong.
        what: String,
    },
    /// Writing the output failed.
    #[error("cannot write the output")]
    Output(#[source] io::Error),
}

impl ClientError {
    /// Whether the request itself was wrong (exit 2) rather than the agent or the host (exit 1).
    pub(super) fn is_usage(&self) -> bool {
        matches!(self, Self::Agent { status, .. } if *status == StatusCode::BAD_REQUEST)
    }
}

impl AgentArgs {
    /// The agent and a runtime to ask it on; on failure, the error is printed and the exit
    /// code returned (2 for a config that cannot be read, 1 otherwise).
    pub(super) fn connect(&self) -> Result<(Agent, tokio::runtime::Runtime), u8> {
        let agent = self.agent().map_err(|e| {
            print_config_error(&e);
            exit::USAGE
        })?;
        let runtime = super::runtime(0).map_err(|message| {
            errln!("error: {message}");
            exit::FAILURE
        })?;
        Ok((agent, runtime))
    }

    /// The agent to ask: `--addr`, or `status.listen` of the config (loopback when it listens
    /// on every address).
    pub(super) fn agent(&self) -> Result<Agent, ConfigError> {
        let settings = self.settings(self.addr.is_none())?;
        self.agent_from(settings.as_ref())
    }

    /// What a client needs of the config, when `needed` (never its root-only files).
    fn settings(&self, needed: bool) -> Result<Option<ClientSettings>, ConfigError> {
        needed
            .then(|| config::load_client(&self.config))
            .transpose()
    }

    fn agent_from(&self, settings: Option<&ClientSettings>) -> Result<Agent, ConfigError> {
        if let Some(addr) = self.addr {
            return Ok(Agent {
                addr,
                hint: "its status.listen".to_owned(),
                control: None,
            });
        }
        let loaded;
        let settings = match settings {
            Some(settings) => settings,
            None => {
                loaded = config::load_client(&self.config)?;
                &loaded
            }
        };
        let mut addr = settings.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        Ok(Agent {
            addr,
            hint: format!("status.listen in {}", self.config.display()),
            control: Some(crate::report::http::control_socket(&settings.data_dir)),
        })
    }
}

impl Agent {
    /// The status address.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET path`, the whole body; an error status is [`ClientError::Agent`].
    pub(super) async fn get(&self, path: &str) -> Result<Bytes, ClientError> {
        let response = self.send(path, None).await?;
        let body = self.body(response.into_body()).await?;
        Ok(body)
    }

    /// `GET path`, over TCP with the admin `token` when one is given (the caller chose to send
    /// it), the body written to `out` as it arrives; returns the response headers.
    pub(super) async fn get_into(
        &self,
        path: &str,
        token: Option<&str>,
        out: &mut impl Write,
    ) -> Result<(HeaderMap, u64), ClientError> {
        let response = self.send(path, token).await?;
        let (parts, mut body) = response.into_parts();
        let mut written = 0;
        while let Some(frame) = self.next_frame(&mut body).await? {
            if let Ok(data) = frame.into_data() {
                out.write_all(&data).map_err(ClientError::Output)?;
                written += data.len() as u64;
            }
        }
        out.flush().map_err(ClientError::Output)?;
        Ok((parts.headers, written))
    }

    /// Sends `GET path`: over the control socket when this user can reach it and no `token`
    /// is given, else over TCP (with `token`, if given); the response once its head arrived
    /// with a success status.
    async fn send(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<Response<Incoming>, ClientError> {
        let addr = self.addr;
        if let (Some(socket), None) = (&self.control, token)
            && let Ok(stream) = tokio::net::UnixStream::connect(socket).await
        {
            let request = async {
                let request = net::request(Method::GET, "localhost", path, None, None)?;
                net::send_on(stream, request).await
            };
            return self.exchange(path, request).await;
        }
        let request = async {
            let request = net::request(Method::GET, &addr.to_string(), path, token, None)?;
            net::send(addr, request).await
        };
        self.exchange(path, request).await
    }

    /// Waits (bounded) for the response head of `request` to `path`; the response when its
    /// status is a success.
    async fn exchange(
        &self,
        path: &str,
        request: impl Future<Output = Result<Response<Incoming>, GetError>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let addr = self.addr;
        let exchange = async {
            request.await.map_err(|e| match e {
                GetError::Connect(source) if source.kind() == io::ErrorKind::ConnectionRefused => {
                    ClientError::Refused {
                        addr,
                        hint: self.hint.clone(),
                    }
                }
                GetError::Connect(source) => ClientError::Connect { addr, source },
                GetError::Http(source) => ClientError::Http { addr, source },
                GetError::Request(e) => ClientError::Unexpected {
                    addr,
                    what: format!("cannot build a request for {path}: {e}"),
                },
            })
        };
        let response = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| ClientError::Timeout { addr })??;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = self.body(response.into_body()).await?;
        let message = agent_error(status, &body, path);
        Err(ClientError::Agent { status, message })
    }

    async fn body(&self, mut body: Incoming) -> Result<Bytes, ClientError> {
        let mut bytes = Vec::new();
        while let Some(frame) = self.next_frame(&mut body).await? {
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(bytes))
    }

    async fn next_frame(
        &self,
        body: &mut Incoming,
    ) -> Result<Option<hyper::body::Frame<Bytes>>, ClientError> {
        let addr = self.addr;
        match tokio::time::timeout(TIMEOUT, body.frame()).await {
            Err(_) => Err(ClientError::Timeout { addr }),
            Ok(None) => Ok(None),
            Ok(Some(frame)) => frame
                .map(Some)
                .map_err(|source| ClientError::Http { addr, source }),
        }
    }

    /// Decodes a JSON body as `T`.
    pub(super) fn decode<T: serde::de::DeserializeOwned>(
        &self,
        body: &[u8],
    ) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Unexpected {
            addr: self.addr,
            what: format!("the JSON does not fit this version of shoal: {e}"),
        })
    }
}

/// The agent's error answer to `path` as one sentence: its `error`, else the status.
pub(super) fn agent_error(status: StatusCode, body: &[u8], path: &str) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| format!("the agent answered {status} for {path}"))
}

/// Why the token file cannot be used, in one sentence with the fix.
pub(super) fn token_error(path: &Path, error: &io::Error) -> String {
    let file = path.display();
    match (error.kind(), error.raw_os_error()) {
        (io::ErrorKind::NotFound, Some(_)) => format!(
            "the admin token file {file} does not exist: the agent makes it when it starts; is \
             it running, and is that file its status.token_file?"
        ),
        (io::ErrorKind::PermissionDenied, Some(_)) => format!(
            "cannot read the admin token file {file} (permission denied): run as root (sudo), \
             or as the user the agent runs as"
        ),
        (_, Some(_)) => format!("cannot read the admin token file {file}: {error}"),
        // The checks of the token file say what is wrong and how to fix it.
        (_, None) => error.to_string(),
    }
}

/// Shows what the agent answers at `path`: as served with `json`, else `render`ed. Exit code.
pub(super) fn show<T: serde::de::DeserializeOwned>(
    agent: AgentArgs,
    path: &str,
    json: bool,
    render: fn(&T) -> String,
) -> u8 {
    let (agent, runtime) = match agent.connect() {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let result: Result<Vec<u8>, ClientError> = runtime.block_on(async {
        let body = agent.get(path).await?;
        if json {
            return Ok(body.to_vec());
        }
        let value: T = agent.decode(&body)?;
        Ok(super::output::shown(&render(&value))
            .into_owned()
            .into_bytes())
    });
    match result {
        Ok(text) => {
            // A closed stdout (`| head`) is not worth an error.
            let _ = std::io::stdout().write_all(&text);
            exit::OK
        }
        Err(e) => fail(&e),
    }
}

/// Prints why the agent's address is unknown; a config that cannot be read at all gets the
/// other ways to say where the agent is.
pub(super) fn print_config_error(error: &ConfigError) {
    errln!("error: {error}");
    if let ConfigError::Read { .. } = error {
        errln!("  give --config FILE (the agent's config) or --addr HOST:PORT (its status.listen)");
    }
}

/// Prints `error` and its causes, one a line, on stderr.
pub(super) fn print_error(error: &dyn std::error::Error) {
    errln!("error: {}", super::error_chain(error));
}

/// Prints `error` and returns its exit code: 2 for a usage mistake, 1 otherwise.
pub(super) fn fail(error: &ClientError) -> u8 {
    print_error(error);
    if error.is_usage() {
        exit::USAGE
    } else {
        exit::FAILURE
    }
}
