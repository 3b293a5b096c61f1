//! Redis for the shared-limit tests: the machine's server (`TEST_REDIS_URL`, default
//! 127.0.0.1:6379) with a key prefix per test, or a `redis-server` of the test's own, for tests
//! that kill it or make it slow.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shared_limits::RedisSettings;

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Settings for the machine's Redis with a key prefix of this test's own, so tests running at
/// once never share a budget.
pub fn shared_redis(test: &str) -> RedisSettings {
    let mut settings = RedisSettings::new(redis_url());
    settings.key_prefix = format!("test:{test}:{}:", uuid::Uuid::new_v4().simple());
    settings
}

/// A `redis-server` of the test's own on a free loopback port, stopped by its process id.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub async fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Settings pointing at this server, with the default 50 ms timeout.
    pub fn settings(&self) -> RedisSettings {
        RedisSettings::new(self.url())
    }

    /// (Re)starts the server on its port and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server must be installed for the shared-limit tests (.ci/run installs it)",
            );
        self.child = Some(child);
        let url = self.url();
        super::eventually(Duration::from_secs(30), "redis-server answers", || {
            let url = url.clone();
            async move {
                let mut connection = redis::Client::open(url)
                    .ok()?
                    .get_multiplexed_async_connection()
                    .await
                    .ok()?;
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .ok()
            }
        })
        .await;
    }

    /// SIGKILL, as a crash or an out-of-memory kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill redis-server");
            child.wait().expect("reap redis-server");
        }
    }

    /// A plain connection, to do to the server what the test needs, that waits for answers as
    /// long as they take.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("connect to the test's redis-server")
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
