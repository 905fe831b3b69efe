//! The seed articles' first steps with the real Docker CLI and Engine:
//! create a repository, log in with `aws ecr get-login-password`, tag, push,
//! remove, pull and run.

use berth_e2e::{BerthServer, assert_ok, ok_json, stderr_of, stdout_of, unique};

#[test]
fn create_login_push_pull_run() {
    let s = BerthServer::start();
    let name = unique("hello-");
    let repo = s.create_repo(&name, &[]);
    let uri = repo["repositoryUri"].as_str().unwrap().to_owned();
    assert_eq!(uri, format!("{}/{name}", s.host()));

    // aws ecr get-login-password | docker login --username AWS --password-stdin HOST
    let login = s.docker_login();
    assert_ok(&login, "docker login");
    assert!(
        stdout_of(&login).contains("Login Succeeded"),
        "{}",
        stdout_of(&login)
    );

    // docker build -t local; docker tag local URI:latest; docker push
    let local = unique("berth-local-");
    s.build_test_image(&local);
    let reference = format!("{uri}:latest");
    s.track_image(&reference);
    assert_ok(&s.docker(&["tag", &local, &reference]), "docker tag");
    let push = s.docker(&["push", &reference]);
    assert_ok(&push, "docker push");
    let pushed_digest = stdout_of(&push)
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .map(str::to_owned)
        .expect("docker push prints the digest");

    // ECR knows the image docker pushed.
    let v = ok_json(&s.aws(&["ecr", "describe-images", "--repository-name", &name]));
    assert_eq!(v["imageDetails"][0]["imageDigest"], pushed_digest.as_str());
    assert_eq!(v["imageDetails"][0]["imageTags"][0], "latest");

    // Gone from the engine, back from Berth.
    assert_ok(&s.docker(&["rmi", &reference, &local]), "docker rmi");
    let inspect = s.docker(&["image", "inspect", &reference]);
    assert!(
        !inspect.status.success(),
        "the image is still in the engine"
    );
    let pull = s.docker(&["pull", &reference]);
    assert_ok(&pull, "docker pull");
    assert!(
        stdout_of(&pull).contains(&pushed_digest),
        "{}",
        stdout_of(&pull)
    );
    let run = s.docker(&["run", "--rm", &reference]);
    assert_ok(&run, "docker run");
    assert_eq!(stdout_of(&run).trim(), "hello from berth");

    // Pull by digest too.
    let by_digest = format!("{uri}@{pushed_digest}");
    s.track_image(&by_digest);
    assert_ok(&s.docker(&["pull", &by_digest]), "docker pull by digest");
}

#[test]
fn pushing_to_a_missing_repository_is_name_unknown() {
    let s = BerthServer::start();
    assert_ok(&s.docker_login(), "docker login");
    let reference = format!("{}/{}:v1", s.host(), unique("never-created-"));
    s.build_test_image(&reference);
    let push = s.docker(&["push", &reference]);
    assert!(
        !push.status.success(),
        "push to a missing repository succeeded"
    );
    let err = stderr_of(&push).to_lowercase();
    assert!(
        err.contains("name unknown") || err.contains("name_unknown"),
        "expected NAME_UNKNOWN, got: {err}"
    );
}

#[test]
fn docker_login_with_a_wrong_password_fails() {
    let s = BerthServer::start();
    let login = s.docker_stdin(
        &["login", "--username", "AWS", "--password-stdin", &s.host()],
        Some("not-the-password"),
    );
    assert!(
        !login.status.success(),
        "login with a wrong password succeeded"
    );
    let err = stderr_of(&login).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("401"),
        "expected an authorization error, got: {err}"
    );

    // A password for another user name is refused too: ECR's user is AWS.
    let pw = s.login_password();
    let login = s.docker_stdin(
        &[
            "login",
            "--username",
            "admin",
            "--password-stdin",
            &s.host(),
        ],
        Some(&pw),
    );
    assert!(
        !login.status.success(),
        "login as `admin` with AWS's password succeeded"
    );
}

#[test]
fn push_without_login_fails_with_an_auth_error() {
    let s = BerthServer::start();
    let name = unique("nologin-");
    s.create_repo(&name, &[]);
    let reference = format!("{}/{name}:v1", s.host());
    s.build_test_image(&reference);
    let push = s.docker(&["push", &reference]);
    assert!(!push.status.success(), "push without login succeeded");
    let err = stderr_of(&push).to_lowercase();
    assert!(
        err.contains("no basic auth credentials")
            || err.contains("unauthorized")
            || err.contains("authentication required"),
        "expected an authentication error, got: {err}"
    );
    let v = ok_json(&s.aws(&["ecr", "list-images", "--repository-name", &name]));
    assert!(v["imageIds"].as_array().unwrap().is_empty(), "{v}");
}
