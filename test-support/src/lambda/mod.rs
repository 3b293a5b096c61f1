//! AWS Lambda without an AWS account. [`FakeRuntime`] serves the documented Lambda Runtime API
//! (`2018-06-01/runtime/...`) on a loopback port: a function process started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at it asks for its next invocation and posts the response
//! (or an error), as on AWS. [`events`] builds events shaped like AWS's documented examples;
//! [`LambdaProcess`] starts a real binary as a function against a fake runtime.

pub mod events;
mod process;
mod runtime;

pub use process::LambdaProcess;
pub use runtime::{FakeRuntime, Outcome};
