//! A real function binary started against a fake runtime, killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct LambdaProcess {
    child: Child,
}

impl LambdaProcess {
    /// Starts `binary` with `args`, as Lambda would: `AWS_LAMBDA_RUNTIME_API` and the function's
    /// variables set, plus `env`. Its logs go to the test's stderr.
    pub fn start(
        binary: impl AsRef<Path>,
        args: &[&str],
        runtime_api: &str,
        env: &[(&str, String)],
    ) -> LambdaProcess {
        let mut command = Command::new(binary.as_ref());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_REGION", "us-east-1")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.as_ref().display()));
        LambdaProcess { child }
    }

    /// Whether the process has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
