//! The registry test harness works: a real distribution registry in each
//! mode (plain, Basic, TLS, bearer tokens) takes an image pushed by skopeo
//! and gives it back, its access log shows the uploads, and the
//! fault-injecting proxy forwards, counts and breaks requests as told.

mod support;

use support::proxy::{Fault, Proxy};
use support::registry::{
    self, Auth, Registry, RegistryOptions, blob_upload_requests, blob_upload_sessions,
    blob_uploads_completed, manifest_puts, raw_http,
};
use support::token::{base32, base64, base64_decode, base64url, jwt_claims, libtrust_key_id};
use support::*;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A one-layer image built by imgbuild onto scratch, as an OCI layout.
struct Tiny {
    _tmp: tempfile::TempDir,
    layout: PathBuf,
    /// The manifest's digest.
    digest: String,
    /// (digest, size) of the config and each layer: the blobs a push uploads.
    blobs: Vec<(String, u64)>,
}

impl Tiny {
    /// `oci:LAYOUT:v1`.
    fn oci_ref(&self) -> String {
        format!("oci:{}:v1", self.layout.display())
    }

    fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, n)| n).sum()
    }
}

fn tiny_image(seed: u64) -> Tiny {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src");
    write(
        &src,
        DEF,
        "[images.tiny]\nbase = \"scratch\"\ntag = \"v1\"\n\n\
         [[images.tiny.layers]]\nsource_file = \"data.bin\"\ndst = \"/data/\"\n",
    );
    // ~300 KB that compress to ~100+ KB: several upload chunks' worth for some clients.
    write_file(&src, "data.bin", mixed_bytes(300_000, seed), 0o644);
    let layout = tmp.path().join("layout");
    let v = build_json(&src.join(DEF), &tmp.path().join("cache"), &layout, &[]);
    let digest = v["images"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let l = Layout::new(&layout);
    let (m, _) = l.image("v1");
    let mut blobs = vec![(
        m["config"]["digest"].as_str().expect("config").to_string(),
        m["config"]["size"].as_u64().expect("size"),
    )];
    for layer in m["layers"].as_array().expect("layers") {
        blobs.push((
            layer["digest"].as_str().expect("digest").to_string(),
            layer["size"].as_u64().expect("size"),
        ));
    }
    Tiny {
        _tmp: tmp,
        layout,
        digest,
        blobs,
    }
}

/// Pushes with skopeo, inspects it back and checks the digest, the blobs
/// and the access log. Returns the access log.
#[track_caller]
fn push_and_check(reg: &Registry, img: &Tiny, repo: &str) -> Vec<registry::AccessEntry> {
    reg.skopeo_push(&img.oci_ref(), &format!("{repo}:v1"))
        .unwrap_or_else(|e| panic!("push to {}: {e}", reg.host()));
    let v = reg
        .skopeo_inspect(&format!("{repo}:v1"))
        .unwrap_or_else(|e| panic!("inspect on {}: {e}", reg.host()));
    assert_eq!(v["Digest"], img.digest.as_str(), "digest as pushed: {v:#}");
    for (d, _) in &img.blobs {
        assert!(reg.has_blob(repo, d), "blob {d} is in {repo}");
    }
    let (digest, _) = reg.manifest(repo, "v1").expect("manifest v1");
    assert_eq!(digest, img.digest);

    let log = reg.access_log();
    let n = img.blobs.len();
    assert!(
        blob_upload_sessions(&log) >= n && blob_uploads_completed(&log) == n,
        "one upload per blob ({n}) in the access log: {log:#?}"
    );
    assert!(blob_upload_requests(&log) >= 2 * n, "{log:#?}");
    assert_eq!(manifest_puts(&log), 1, "{log:#?}");
    assert!(
        log.iter()
            .any(|e| e.method == "GET" && e.path == format!("/v2/{repo}/manifests/v1")),
        "the inspect is logged too"
    );
    log
}

#[test]
fn plain_registry_takes_a_push_and_logs_it() {
    let img = tiny_image(1);
    let reg = Registry::start(RegistryOptions::plain());
    assert_eq!(reg.skopeo_dest_args(), ["--dest-tls-verify=false"]);
    assert!(reg.ca_cert().is_none() && reg.creds().is_none());
    let log = push_and_check(&reg, &img, "harness/plain");
    // Every access-log entry has a status and a method; uploads answer 202/201.
    assert!(
        log.iter()
            .filter(|e| e.path.contains("/blobs/uploads/"))
            .all(|e| e.status == 202 || e.status == 201),
        "{log:#?}"
    );
    // The registry's own API helper sees the same thing.
    let r = reg.http("GET", "/v2/", &[], None).expect("GET /v2/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{}");
}

#[test]
fn basic_auth_registry_needs_the_password() {
    let img = tiny_image(2);
    let reg = Registry::start(RegistryOptions::basic("alice", "s3cret"));
    let r = reg.http("GET", "/v2/", &[], None).expect("GET /v2/");
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic")),
        "{r:?}"
    );
    push_and_check(&reg, &img, "harness/basic");

    let d = reg.docker_ref("harness/basic:v1");
    let err = registry::skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        &d,
    ])
    .expect_err("a wrong password must fail");
    assert!(
        err.contains("unauthorized") || err.contains("401"),
        "why the wrong password failed: {err}"
    );
    registry::skopeo(&["inspect", "--tls-verify=false", "--no-creds", &d])
        .expect_err("no credentials must fail");
}

#[test]
fn tls_registry_is_trusted_only_with_its_ca() {
    let img = tiny_image(3);
    let reg = Registry::start(RegistryOptions::tls());
    let dir = reg.cert_dir().expect("cert dir");
    assert!(dir.join("ca.crt").is_file());
    assert_eq!(
        std::fs::read_dir(&dir).expect("cert dir").count(),
        1,
        "only ca.crt"
    );
    assert!(reg.base_url().starts_with("https://127.0.0.1:"));
    push_and_check(&reg, &img, "harness/tls");

    let d = reg.docker_ref("harness/tls:v1");
    let err = registry::skopeo(&["inspect", &d]).expect_err("an unknown CA must fail");
    assert!(
        err.contains("certificate") || err.contains("x509"),
        "why the unknown CA failed: {err}"
    );
    // Plain HTTP to the TLS port is refused.
    let r = raw_http(&reg.host(), "GET", "/v2/", &[], None).expect("an answer");
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn bearer_registry_issues_tokens_and_refuses_a_wrong_password() {
    let img = tiny_image(4);
    let reg = Registry::start(RegistryOptions::bearer("bob", "hunter2", 300, true));
    let r = reg.http("GET", "/v2/", &[], None).expect("GET /v2/");
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").expect("a challenge");
    let ts = reg.token_server().expect("token server");
    assert!(
        challenge.starts_with("Bearer realm=\"") && challenge.contains(&ts.realm()),
        "{challenge}"
    );

    push_and_check(&reg, &img, "harness/bearer");
    assert!(reg.tokens_issued() > 0);
    let reqs = ts.requests();
    assert!(
        reqs.iter().any(|r| r.status == 200
            && r.user.as_deref() == Some("bob")
            && r.granted
                .iter()
                .any(|g| g == "repository:harness/bearer:pull,push")),
        "a push token was issued: {reqs:#?}"
    );

    let d = reg.docker_ref("harness/bearer:v1");
    let before = reg.tokens_issued();
    let err = registry::skopeo(&["inspect", "--tls-verify=false", "--creds", "bob:wrong", &d])
        .expect_err("a wrong password must fail");
    assert!(
        err.contains("401") || err.contains("unauthorized") || err.contains("authentication"),
        "why the wrong password failed: {err}"
    );
    assert_eq!(reg.tokens_issued(), before, "no token for a wrong password");
    assert!(ts.requests().iter().any(|r| r.status == 401));

    // Anonymous pull is allowed in this configuration; anonymous push is not.
    let args = reg.skopeo_inspect_args_anonymous();
    let mut a: Vec<&str> = vec!["inspect"];
    a.extend(args.iter().map(String::as_str));
    a.push(&d);
    let v: serde_json::Value =
        serde_json::from_str(&registry::skopeo(&a).expect("anonymous pull")).expect("JSON");
    assert_eq!(v["Digest"], img.digest.as_str());
    let anon = ts.requests().into_iter().rfind(|r| r.user.is_none());
    assert!(
        anon.as_ref()
            .is_some_and(|r| r.status == 200 && r.granted == ["repository:harness/bearer:pull"]),
        "{anon:?}"
    );
    let push = registry::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &img.oci_ref(),
        &reg.docker_ref("harness/anon:v1"),
    ]);
    assert!(push.is_err(), "anonymous push must fail");
}

#[test]
fn bearer_tokens_expire_after_their_ttl() {
    let reg = Registry::start(RegistryOptions::bearer("carol", "pw", 2, false));
    let ts = reg.token_server().expect("token server");
    let realm = ts.realm();
    let tok_host = realm
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/token"))
        .expect("realm")
        .to_string();
    let auth = format!("Basic {}", base64(b"carol:pw"));
    let q = "/token?service=imgbuild-test-registry&scope=repository%3Aharness%2Fexp%3Apull%2Cpush";
    let r = raw_http(&tok_host, "GET", q, &[("Authorization", &auth)], None).expect("token");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(v["expires_in"], 2);
    assert_eq!(v["token"], v["access_token"]);
    let token = v["token"].as_str().expect("token").to_string();
    let header: serde_json::Value = serde_json::from_slice(
        &base64_decode(token.split('.').next().expect("header")).expect("b64"),
    )
    .expect("JSON header");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], ts.kid());
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], "imgbuild-test-registry");
    assert_eq!(claims["sub"], "carol");
    // `exp` is back-dated by distribution's 60 s leeway (see
    // token::REGISTRY_LEEWAY_SECS): already past, yet accepted below.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(claims["exp"].as_i64().expect("exp") < now, "{claims}");
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "harness/exp", "actions": ["pull", "push"]}])
    );
    assert_eq!(reg.tokens_issued(), 1);

    // Anonymous requests and wrong passwords get no token in this configuration.
    let r = raw_http(&tok_host, "GET", q, &[], None).expect("answer");
    assert_eq!(r.status, 401);
    let bad = format!("Basic {}", base64(b"carol:nope"));
    let r = raw_http(&tok_host, "GET", q, &[("Authorization", &bad)], None).expect("answer");
    assert_eq!(r.status, 401);
    assert_eq!(reg.tokens_issued(), 1);

    // Valid now: an upload can start. Refused once the TTL has passed.
    let t0 = Instant::now();
    let bearer = format!("Bearer {token}");
    let post = |h: &str| {
        reg.http(
            "POST",
            "/v2/harness/exp/blobs/uploads/",
            &[("Authorization", h)],
            None,
        )
        .expect("POST")
    };
    let r = post(&bearer);
    assert_eq!(r.status, 202, "{}\n{}", r.text(), reg.log_tail(5));
    std::thread::sleep(
        Duration::from_secs(3).saturating_sub(t0.elapsed()) + Duration::from_millis(100),
    );
    let r = post(&bearer);
    assert_eq!(
        r.status,
        401,
        "an expired token must be refused: {}",
        r.text()
    );

    // The OAuth2 form (POST /token, grant_type=password) works as well.
    let form = "grant_type=password&username=carol&password=pw&service=imgbuild-test-registry&scope=repository%3Aharness%2Fexp%3Apull&client_id=test";
    let r = raw_http(
        &tok_host,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    )
    .expect("token");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    let r = reg
        .http(
            "GET",
            "/v2/harness/exp/tags/list",
            &[(
                "Authorization",
                &format!("Bearer {}", v["access_token"].as_str().expect("token")),
            )],
            None,
        )
        .expect("GET tags");
    // Authorized (the repository does not exist, hence 404 rather than 401).
    assert_eq!(r.status, 404, "{}", r.text());
}

/// `skopeo copy --dest-tls-verify=false [EXTRA] oci:… docker://HOST/REPO:v1`.
fn skopeo_copy(img: &Tiny, host: &str, repo: &str, extra: &[&str]) -> Result<String, String> {
    let src = img.oci_ref();
    let dest = format!("docker://{host}/{repo}:v1");
    let mut a = vec!["copy", "--dest-tls-verify=false"];
    a.extend_from_slice(extra);
    a.push(&src);
    a.push(&dest);
    registry::skopeo(&a)
}

#[test]
fn proxy_forwards_counts_and_injects_a_500() {
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = Proxy::start(&reg.host());

    // A clean push through the proxy: every blob byte crosses it once.
    let img = tiny_image(11);
    skopeo_copy(&img, &proxy.host(), "harness/proxied", &[]).expect("push through the proxy");
    assert_eq!(
        proxy.uploaded_bytes(),
        img.blob_bytes(),
        "{:#?}",
        proxy.requests()
    );
    assert_eq!(proxy.body_bytes("PUT", "/manifests/v1"), {
        let top = Layout::new(&img.layout).tagged("v1");
        top["size"].as_u64().expect("size")
    });
    let log = reg.access_log();
    assert_eq!(blob_uploads_completed(&log), img.blobs.len());
    // The upload URLs (Location) named the proxy: every registry request
    // for the repository came through it.
    assert_eq!(
        proxy.count("*", "/v2/harness/proxied/"),
        requests_in(&log, "/v2/harness/proxied/"),
        "every registry request came through the proxy"
    );
    assert!(
        proxy
            .requests()
            .iter()
            .all(|r| r.fault.is_none() && r.status.is_some()),
        "{:#?}",
        proxy.requests()
    );

    // One 500 on the blob PATCH. skopeo 1.9 (containers/image) does not
    // retry it, not even with --retry-times (a 5xx status is not a
    // retryable error there): the push fails and names the status.
    proxy.reset_log();
    proxy.add_fault(Fault::status("PATCH", "/blobs/uploads/", 500, None, 1));
    let img = tiny_image(13);
    let err = skopeo_copy(
        &img,
        &proxy.host(),
        "harness/faulty",
        &["--retry-times", "2"],
    )
    .expect_err("skopeo 1.9 does not retry a 500");
    assert!(err.contains("500 Internal Server Error"), "{err}");
    assert_eq!(proxy.faults_fired(), 1);
    let faulted: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.fault.is_some())
        .collect();
    assert_eq!(faulted.len(), 1);
    assert_eq!(faulted[0].status, Some(500));
    assert!(
        faulted[0].body_received > 0 && faulted[0].body_forwarded == 0,
        "{faulted:?}"
    );
    assert_eq!(
        proxy.uploaded_bytes(),
        0,
        "the answered PATCH never reached the registry"
    );
    assert!(!reg.has_blob("harness/faulty", &img.blobs[1].0));

    // The fault is used up: the same push now works.
    skopeo_copy(&img, &proxy.host(), "harness/faulty", &[]).expect("push after the fault");
    assert_eq!(proxy.faults_fired(), 1);

    // 429 with Retry-After: the client gets distribution's TOOMANYREQUESTS code.
    proxy.add_fault(Fault::status("PATCH", "/blobs/uploads/", 429, Some(1), 1));
    let err = skopeo_copy(&tiny_image(15), &proxy.host(), "harness/limited", &[])
        .expect_err("skopeo 1.9 does not wait and retry after a 429");
    assert!(err.contains("toomanyrequests"), "{err}");
}

fn requests_in(log: &[registry::AccessEntry], path_contains: &str) -> usize {
    registry::requests_matching(log, "*", path_contains).len()
}

#[test]
fn proxy_drops_a_request_mid_body() {
    let reg = Registry::start(RegistryOptions::plain());
    let proxy = Proxy::start(&reg.host());

    // skopeo fails naming the PATCH. (Its error is EOF or a write on a
    // closed connection, depending on which of the Go transport's reader
    // and writer notices first; `--retry-times` retries only the former,
    // so it is no oracle here.)
    proxy.add_fault(Fault::drop_mid_body("PATCH", "/blobs/uploads/", 1000, 1));
    let img = tiny_image(17);
    let err = skopeo_copy(&img, &proxy.host(), "harness/dropped", &[])
        .expect_err("a dropped PATCH fails the push");
    assert!(err.contains("writing blob: Patch"), "{err}");
    let dropped: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.fault == Some("drop-mid-body"))
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].status, None);
    assert_eq!(dropped[0].body_forwarded, 1000);
    assert!(!reg.has_blob("harness/dropped", &img.blobs[1].0));

    // The fault is used up: the push works, and the proxy has counted the
    // 1000 dropped bytes as well as the whole blobs.
    skopeo_copy(&img, &proxy.host(), "harness/dropped", &[]).expect("push after the drop");
    assert_eq!(proxy.uploaded_bytes(), img.blob_bytes() + 1000);
    let v = reg.skopeo_inspect("harness/dropped:v1").expect("inspect");
    assert_eq!(v["Digest"], img.digest.as_str());

    // A blob PUT that took effect although the client never saw the answer:
    // the retried copy finds the blob with HEAD and does not upload it again.
    proxy.reset_log();
    proxy.add_fault(Fault::drop_response("PUT", "/blobs/uploads/", 1));
    let img = tiny_image(21);
    skopeo_copy(
        &img,
        &proxy.host(),
        "harness/lost-answer",
        &["--retry-times", "2"],
    )
    .expect("the retried copy works");
    assert_eq!(proxy.uploaded_bytes(), img.blob_bytes());
    assert_eq!(proxy.faults_fired(), 2);
}

/// What distribution 2.8 does with the less common requests a client may
/// send; the harness's users rely on these.
#[test]
fn distribution_behaviour() {
    let reg = Registry::start(RegistryOptions::plain());
    let data = mixed_bytes(50_000, 23);
    let digest = format!("sha256:{}", sha256_hex(&data));
    let post = |repo: &str, query: &str| {
        let r = reg
            .http(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/{query}"),
                &[],
                None,
            )
            .expect("POST");
        assert_eq!(r.status, 202, "{}", r.text());
        let loc = r.header("location").expect("Location").to_string();
        // Absolute, built from the request's Host header.
        let prefix = format!("http://{}", reg.host());
        assert!(loc.starts_with(&prefix), "{loc}");
        loc[prefix.len()..].to_string()
    };
    let octet = [("Content-Type", "application/octet-stream")];

    // Chunked upload: two PATCHes; Content-Range is not checked at all
    // (a wrong range is appended as if it were right).
    let loc = post("facts/a", "");
    let r = reg
        .http(
            "PATCH",
            &loc,
            &[octet[0], ("Content-Range", "0-29999")],
            Some(&data[..30_000]),
        )
        .expect("PATCH");
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-29999"));
    let stale = loc;
    let loc = r.header("location").expect("Location").to_string();
    let loc = loc[format!("http://{}", reg.host()).len()..].to_string();
    let r = reg
        .http(
            "PATCH",
            &loc,
            &[octet[0], ("Content-Range", "12345-99999")],
            Some(&data[30_000..]),
        )
        .expect("PATCH");
    assert_eq!(r.status, 202, "a wrong Content-Range is accepted");
    assert_eq!(r.header("range"), Some("0-49999"));
    let loc = r_location(&reg, &r);
    // Upload status: GET on the Location answers 204 with the Range so far.
    let r = reg.http("GET", &loc, &[], None).expect("GET");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-49999"));
    // The first PATCH's Location (its _state) is stale now: 404
    // BLOB_UPLOAD_INVALID, and nothing is written; the upload goes on.
    let r = reg
        .http("PATCH", &stale, &octet, Some(b"x"))
        .expect("PATCH");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("BLOB_UPLOAD_INVALID"), "{}", r.text());
    // The bytes went in in order whatever Content-Range said: the digest matches.
    let r = reg
        .http("PUT", &format!("{loc}&digest={digest}"), &[], None)
        .expect("PUT");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(reg.has_blob("facts/a", &digest));

    // A PATCH whose Content-Type is not application/octet-stream (or absent)
    // fails with 500 UNKNOWN.
    let loc = post("facts/b", "");
    let r = reg
        .http(
            "PATCH",
            &loc,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(b"abc"),
        )
        .expect("PATCH");
    assert_eq!(r.status, 500);

    // A monolithic POST ?digest= with a body is NOT supported: 202 and the
    // body is ignored (a large body is not even read: the connection is
    // reset); the blob does not exist.
    let small = b"a small blob";
    let small_digest = format!("sha256:{}", sha256_hex(small));
    let r = reg
        .http(
            "POST",
            &format!("/v2/facts/c/blobs/uploads/?digest={small_digest}"),
            &octet,
            Some(small),
        )
        .expect("POST");
    assert_eq!(r.status, 202);
    assert!(!reg.has_blob("facts/c", &small_digest));
    // A monolithic PUT (POST, then PUT ?digest= with the whole body) works.
    let loc = post("facts/c", "");
    let r = reg
        .http(
            "PUT",
            &format!("{loc}&digest={digest}"),
            &octet,
            Some(&data),
        )
        .expect("PUT");
    assert_eq!(r.status, 201);
    // A wrong digest: 400 DIGEST_INVALID.
    let loc = post("facts/d", "");
    let zero = format!("sha256:{}", "0".repeat(64));
    let r = reg
        .http("PUT", &format!("{loc}&digest={zero}"), &octet, Some(&data))
        .expect("PUT");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("DIGEST_INVALID"));

    // Cross-repository mount works in this configuration: 201 at once.
    let r = reg
        .http(
            "POST",
            &format!("/v2/facts/e/blobs/uploads/?mount={digest}&from=facts/a"),
            &[],
            None,
        )
        .expect("POST");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert!(reg.has_blob("facts/e", &digest));
    // A mount from a repository without the blob starts a normal upload.
    let r = reg
        .http(
            "POST",
            &format!("/v2/facts/f/blobs/uploads/?mount={digest}&from=facts/none"),
            &[],
            None,
        )
        .expect("POST");
    assert_eq!(r.status, 202);

    // The access log has all of it; bytes are response bytes.
    let log = reg.access_log();
    assert_eq!(registry::blob_mounts(&log), 1);
    assert_eq!(registry::blob_patches(&log), 4);
    assert!(log.iter().all(|e| e.bytes < 1000), "{log:#?}");
}

/// The Location of a response, without the registry's scheme and host.
fn r_location(reg: &Registry, r: &registry::HttpResponse) -> String {
    let loc = r.header("location").expect("Location");
    loc[format!("http://{}", reg.host()).len()..].to_string()
}

#[test]
fn encoders_and_key_ids() {
    assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    assert_eq!(base64(b"a"), "YQ==");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    assert_eq!(base64_decode("-_8").expect("b64"), [0xfb, 0xff]);
    assert_eq!(base64_decode("YQ==").expect("b64"), b"a");
    assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    let kid = libtrust_key_id(b"any bytes");
    assert_eq!(kid.len(), 12 * 4 + 11);
    assert!(kid.split(':').all(|g| g.len() == 4), "{kid}");
    assert_eq!(
        registry::repo_of("/v2/a/b/blobs/uploads/x?y"),
        Some("a/b".into())
    );
    assert_eq!(registry::repo_of("/v2/_catalog"), None);
    let e = registry::parse_access_log(
        "127.0.0.1 - - [26/Nov/2026:17:42:38 +0000] \"PATCH /v2/foo/blobs/uploads/u?_state=x HTTP/1.1\" 202 0 \"\" \"curl/7.88.1\"\n\
         time=\"2026\" level=info msg=\"response completed\"\n",
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].method, "PATCH");
    assert_eq!(e[0].path, "/v2/foo/blobs/uploads/u");
    assert_eq!(e[0].query, "_state=x");
    assert_eq!((e[0].status, e[0].bytes), (202, 0));
    assert_eq!(e[0].user_agent, "curl/7.88.1");
    let _ = Auth::None;
    let _: &Path = Path::new("");
}
