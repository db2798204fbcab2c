//! A program linking imgbuild gives it the HTTP configuration (here a CA
//! for a registry served over TLS) and every agent uses it: the registry
//! client and the verified downloads into the store. Nothing comes from
//! the process environment (`SSL_CERT_FILE` is neither set nor read). A
//! registry failure carries its kind for the program to match on.

mod support;

use imgbuild::digest::Digest;
use imgbuild::oci::Platform;
use imgbuild::registry::{Client, ClientOptions, Reference, RegistryErrorKind};
use imgbuild::store::Store;
use imgbuild::{BuildRequest, Error, HttpConfig, PlanRequest, Source};
use std::path::Path;
use support::registry::{Registry, RegistryOptions};
use support::write;

/// Only the caller's CA besides the distribution's bundle: no file or
/// folder named by the environment.
fn trusting(ca: &Path) -> HttpConfig {
    HttpConfig {
        ca_certs: vec![ca.to_path_buf()],
        ..HttpConfig::default()
    }
}

/// Builds a one-layer image onto scratch with the library and pushes it
/// to `target`; returns the digest of its layer, read back through
/// `client`.
fn push_small_image(dir: &Path, store: &Store, client: &Client, target: &Reference) -> Digest {
    write(dir, "app/hello.txt", "hello over TLS\n");
    write(
        dir,
        "imgbuild.toml",
        "[images.app]\nbase = \"scratch\"\ntag = \"v1\"\n\n[[images.app.layers]]\nsource_folder = \"app\"\ndst = \"/app\"\n",
    );
    let req = BuildRequest {
        output: None,
        push: true,
        tags: vec![target.clone()],
        ..BuildRequest::new(PlanRequest::new(Source::Path {
            path: dir.to_path_buf(),
            context: None,
        }))
    };
    imgbuild::build(&req, store, client, &imgbuild::progress::Silent).expect("build and push");
    let (bytes, _, _) = client
        .get_manifest(target)
        .expect("the manifest")
        .expect("pushed");
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    Digest::parse_oci(m["layers"][0]["digest"].as_str().unwrap()).expect("a layer digest")
}

#[test]
fn a_caller_given_ca_reaches_the_registry_client_and_the_store_downloads() {
    let r = Registry::start(RegistryOptions::tls());
    let ca = r.ca_cert().expect("a TLS registry has a CA");
    let t = tempfile::tempdir().unwrap();
    let target = Reference::parse(&format!("{}/team/app:v1", r.host())).unwrap();

    let store = Store::open(&t.path().join("store"))
        .unwrap()
        .with_http(trusting(&ca));
    let client = Client::new(ClientOptions {
        http: trusting(&ca),
        ..ClientOptions::default()
    })
    .unwrap();
    let layer = push_small_image(&t.path().join("ctx"), &store, &client, &target);

    // A verified download of the layer over HTTPS into another store: it
    // trusts the registry only through the CA it was given.
    let url = format!("{}/v2/team/app/blobs/{}", r.base_url(), layer.oci());
    assert!(url.starts_with("https://"), "{url}");
    let trusted = Store::open(&t.path().join("trusted"))
        .unwrap()
        .with_http(trusting(&ca));
    let (path, got) =
        imgbuild::store::fetch::fetch_url(&trusted, &url, Some(layer), None, "the manifest")
            .expect("the download trusts the caller's CA");
    assert_eq!(got, layer);
    assert!(path.is_file());

    // The same download without the CA is refused, so the CA is what made
    // it work.
    let plain = Store::open(&t.path().join("plain")).unwrap();
    let e = imgbuild::store::fetch::fetch_url(&plain, &url, Some(layer), None, "the manifest")
        .expect_err("an unknown CA is not trusted");
    assert!(e.to_string().contains("GET https://"), "{e}");
    assert!(!plain.has_blob(&layer));

    // And so is the registry, for a client without it (HTTPS fails; the
    // plain HTTP a loopback registry may be tried with gets HTTP 400).
    let untrusting = Client::new(ClientOptions::default()).unwrap();
    let e = untrusting.get_manifest(&target).expect_err("untrusted");
    let status = e.registry_status().expect("a registry error");
    assert_eq!(status.registry, r.host(), "{e}");
    assert_ne!(status.http, 200, "{e}");
}

#[test]
fn registry_failures_carry_a_kind_to_match_on() {
    // A tag that is not there.
    let r = Registry::start(RegistryOptions::plain());
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("store")).unwrap();
    let client = Client::new(ClientOptions::default()).unwrap();
    let missing = Reference::parse(&format!("{}/team/missing:v1", r.host())).unwrap();
    let e = imgbuild::registry::resolve(
        &client,
        &store,
        &missing,
        &[Platform::parse("linux/amd64").unwrap()],
    )
    .expect_err("nothing pushed");
    match &e {
        Error::Registry { status, message } => {
            assert_eq!(status.kind, RegistryErrorKind::NotFound);
            assert_eq!(status.http, 404);
            assert_eq!(status.registry, r.host());
            assert_eq!(status.repository, "team/missing");
            assert!(message.ends_with("not found (check the repository and tag)"));
        }
        other => panic!("not a registry error: {other:?}"),
    }
    assert_eq!(e.exit_code(), imgbuild::error::exit::REGISTRY);

    // No credentials for a registry that wants them.
    let r = Registry::start(RegistryOptions::basic("alice", "s3cret-pass"));
    let target = Reference::parse(&format!("{}/team/app:v1", r.host())).unwrap();
    let e = client.get_manifest(&target).expect_err("no credentials");
    let status = e.registry_status().expect("a registry error");
    assert_eq!(status.kind, RegistryErrorKind::Unauthorized, "{e}");
    assert_eq!(status.http, 401);
    assert!(e.to_string().contains("HTTP 401"), "{e}");
}
