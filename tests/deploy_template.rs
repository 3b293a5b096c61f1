//! The AWS SAM template (`deploy/aws/template.yaml`) passes cfn-lint, with no error and no
//! warning: a template that CloudFormation would refuse, or that says one thing and does another,
//! fails here rather than at `sam deploy`. cfn-lint comes from PyPI (`pip install cfn-lint`;
//! `.ci/run` installs it); without it this test fails, naming it, rather than skip.

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;

const TEMPLATE: &str = "deploy/aws/template.yaml";

#[test]
fn the_aws_sam_template_passes_cfn_lint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join(TEMPLATE).is_file(),
        "{TEMPLATE} is missing from {}",
        root.display()
    );
    // Warnings fail too: each one is either fixed in the template or ignored there, in its
    // `Metadata: cfn-lint` section, with a comment saying why.
    let output = Command::new("cfn-lint")
        .args(["--non-zero-exit-code", "warning", "--", TEMPLATE])
        .current_dir(root)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "cfn-lint is not installed (not found on PATH), so {TEMPLATE} cannot be checked: \
             install it from PyPI with `pip install cfn-lint` (.ci/run does)"
        ),
        Err(err) => panic!("cannot run cfn-lint on {TEMPLATE}: {err}"),
    };
    assert!(
        output.status.success(),
        "cfn-lint found problems in {TEMPLATE} ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
