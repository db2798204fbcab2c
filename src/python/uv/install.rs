//! Installing uv into the store from a package index, without Python: the
//! newest final release's wheel for this machine, verified, unpacked to
//! `<store>/tools/uv-<version>/`.

use super::index::{SIMPLE_ACCEPT, choose_uv_wheel, parse_simple_page};
use super::{Uv, UvOrigin, is_executable, probe};
use crate::error::{Error, IoContext, Result};
use crate::python::tags::{self, Arch, Target};
use crate::store::Store;
use std::path::Path;

/// This machine as a wheel target (the Python version does not matter for
/// uv's `py3-none-<platform>` wheels).
fn host_target() -> Result<Target> {
    if std::env::consts::OS != "linux" {
        return Err(Error::Other(format!(
            "installing uv into the store is only supported on Linux, not {}",
            std::env::consts::OS
        )));
    }
    let arch = Arch::from_oci(std::env::consts::ARCH).ok_or_else(|| {
        Error::Other(format!(
            "installing uv into the store is not supported on {}",
            std::env::consts::ARCH
        ))
    })?;
    let a = arch.as_str();
    let libcs = [
        format!("/lib/{a}-linux-gnu/libc.so.6"),
        format!("/usr/lib/{a}-linux-gnu/libc.so.6"),
        "/lib64/libc.so.6".to_string(),
        "/usr/lib64/libc.so.6".to_string(),
        "/lib/libc.so.6".to_string(),
        "/usr/lib/libc.so.6".to_string(),
    ];
    for p in &libcs {
        if let Ok(bytes) = std::fs::read(p)
            && let Some(v) = tags::glibc_version_from_libc(&bytes)
        {
            return Ok(Target::manylinux((3, 12), arch, v));
        }
    }
    if Path::new(&format!("/lib/ld-musl-{a}.so.1")).exists() {
        return Ok(Target::musllinux((3, 12), arch, (1, 2)));
    }
    Ok(Target::manylinux(
        (3, 12),
        arch,
        tags::DEBIAN_BOOKWORM_GLIBC,
    ))
}

/// Installs uv into `<store>/tools/uv-<version>/` from a package index
/// (simple API, PEP 691 JSON or PEP 503 HTML), without Python: the newest
/// final release's wheel for this machine, verified against the index's
/// sha256. Concurrent installs of the same version wait for each other.
pub fn install_into_store(store: &Store, index: &str) -> Result<Uv> {
    let task = crate::progress::start("install uv into the store", 0);
    let shown = crate::net::redact(index);
    let target = host_target()?;
    let (page_url, body) = match crate::net::local_path(index) {
        Some(dir) => {
            let page = dir.join("uv").join("index.html");
            let body = std::fs::read(&page)
                .map_err(|e| Error::input(&page, format!("cannot read: {e}")))?;
            let abs = std::path::absolute(&dir).unwrap_or(dir);
            let page_url = url::Url::from_directory_path(abs.join("uv"))
                .map_err(|()| Error::input(&abs, "cannot be written as a file: URL"))?;
            (page_url.into(), body)
        }
        None => {
            let url = format!("{}/uv/", index.trim_end_matches('/'));
            let body = crate::net::get_bytes_with(&url, 64 << 20, &[("Accept", SIMPLE_ACCEPT)])?;
            (url, body)
        }
    };
    let files = parse_simple_page(&body, &page_url)
        .map_err(|e| Error::Other(format!("{}: {e}", crate::net::redact(&page_url))))?;
    let (file, wheel) = choose_uv_wheel(&files, &target).ok_or_else(|| {
        Error::Other(format!(
            "the index {shown} lists no final release of uv with a wheel for {} and a sha256 \
             ({} files on its page)",
            target.platform_tags()[0],
            files.len()
        ))
    })?;
    let tools = store.root().join("tools");
    std::fs::create_dir_all(&tools).ctx(|| format!("creating {}", tools.display()))?;
    let dest = tools.join(format!("uv-{}", wheel.version));
    let _lock = store.lock_named(&dest)?;
    let exe = dest.join("uv");
    if !is_executable(&exe) {
        let sha = file.sha256.as_deref().expect("chosen wheels have a sha256");
        let blob = crate::store::fetch::fetch_file(store, &file.url, sha, file.size)?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-uv-")
            .tempdir_in(&tools)
            .ctx(|| format!("creating a temp folder in {}", tools.display()))?;
        extract_uv(&blob, &wheel.filename, tmp.path())?;
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .ctx(|| format!("setting the mode of {}", tmp.path().display()))?;
        if dest.exists() {
            // A partial folder from an interrupted install without its lock.
            std::fs::remove_dir_all(&dest).ctx(|| format!("removing {}", dest.display()))?;
        }
        let tmp_path = tmp.keep();
        std::fs::rename(&tmp_path, &dest).map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp_path);
            Error::io(format!("moving uv into {}", dest.display()), e)
        })?;
    }
    let uv = probe(&exe, UvOrigin::Store).map_err(|e| {
        Error::Other(format!(
            "uv {} installed at {} does not run: {e}",
            wheel.version,
            exe.display()
        ))
    })?;
    task.finish(&format!("uv {}", wheel.version));
    Ok(uv)
}

/// Extracts `*.data/scripts/uv` (and `uvx`) from the wheel into `dir`, mode 0755.
fn extract_uv(wheel: &Path, filename: &str, dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let f = std::fs::File::open(wheel).ctx(|| format!("opening {}", wheel.display()))?;
    let bad = |m: String| Error::Other(format!("{filename}: {m}"));
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(format!("not a zip archive: {e}")))?;
    let mut found = false;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| bad(format!("reading entry {i}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| bad(format!("reading entry {i}: {e}")))?
            .into_owned();
        let mut parts = name.split('/');
        let (Some(top), Some("scripts"), Some(script), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !top.ends_with(".data") || !matches!(script, "uv" | "uvx") {
            continue;
        }
        let out = dir.join(script);
        let mut w = std::fs::File::create(&out).ctx(|| format!("creating {}", out.display()))?;
        std::io::copy(&mut entry, &mut w).map_err(|e| bad(format!("extracting {name}: {e}")))?;
        w.sync_all().ctx(|| format!("writing {}", out.display()))?;
        drop(w);
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755))
            .ctx(|| format!("setting the mode of {}", out.display()))?;
        found |= script == "uv";
    }
    if !found {
        return Err(bad("the wheel has no `<name>.data/scripts/uv`".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::locate;
    use super::super::testutil::*;
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    fn fake_uv_wheel(version: &str) -> (String, Vec<u8>) {
        use zip::write::SimpleFileOptions;
        let arch = std::env::consts::ARCH;
        let name = format!("uv-{version}-py3-none-manylinux_2_17_{arch}.manylinux2014_{arch}.whl");
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().unix_permissions(0o644);
        for (path, body) in [
            (
                format!("uv-{version}.dist-info/METADATA"),
                "Name: uv\n".to_string(),
            ),
            (
                format!("uv-{version}.data/scripts/uv"),
                version_script(version),
            ),
            (
                format!("uv-{version}.data/scripts/uvx"),
                "#!/bin/sh\necho uvx\n".to_string(),
            ),
            (format!("uv-{version}.dist-info/RECORD"), String::new()),
        ] {
            w.start_file(path, opts).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        (name, w.finish().unwrap().into_inner())
    }

    type Routes = HashMap<String, (String, Vec<u8>)>;

    /// A one-thread HTTP/1.1 server; returns its base URL and the request heads it saw.
    fn serve(routes: Routes) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut head = Vec::new();
                let mut b = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().unwrap().push(head);
                let (status, ctype, body) = match routes.get(&path) {
                    Some((c, body)) => ("200 OK", c.as_str(), body.as_slice()),
                    None => ("404 Not Found", "text/plain", &b"not found"[..]),
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(body);
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn check_installed(store: &Store, uv: &Uv) {
        let dir = store.root().join("tools/uv-0.0.1");
        assert_eq!(uv.version, "0.0.1");
        assert_eq!(uv.origin, UvOrigin::Store);
        assert_eq!(uv.exe, dir.join("uv"));
        for f in ["uv", "uvx"] {
            let m = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o755, "{f}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(store.root().join("tools"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![OsString::from("uv-0.0.1")]);
        let found = locate(store.root(), None, Some(OsString::new()))
            .unwrap()
            .unwrap();
        assert_eq!(&found, uv);
    }

    #[test]
    fn install_from_a_json_index_over_http() {
        let (name, wheel) = fake_uv_wheel("0.0.1");
        let sha = crate::digest::hex_sha256(&wheel);
        let arch = std::env::consts::ARCH;
        let page = serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": "uv",
            "files": [
                {"filename": name, "url": format!("../../files/{name}"),
                 "hashes": {"sha256": sha}, "size": wheel.len()},
                {"filename": format!("uv-0.0.2a1-py3-none-manylinux_2_17_{arch}.whl"),
                 "url": "/files/pre.whl", "hashes": {"sha256": "00"}},
                {"filename": format!("uv-0.0.3-py3-none-manylinux_2_17_{arch}.whl"),
                 "url": "/files/yanked.whl", "hashes": {"sha256": "00"}, "yanked": "bad build"},
                {"filename": "uv-0.0.4-py3-none-win_amd64.whl",
                 "url": "/files/win.whl", "hashes": {"sha256": "00"}},
            ]
        });
        let mut routes = Routes::new();
        routes.insert(
            "/simple/uv/".into(),
            (
                "application/vnd.pypi.simple.v1+json".into(),
                page.to_string().into_bytes(),
            ),
        );
        routes.insert(
            format!("/files/{name}"),
            ("application/octet-stream".into(), wheel),
        );
        let (base, seen) = serve(routes);
        let (_d, store) = new_store();
        let uv = install_into_store(&store, &format!("{base}/simple/")).unwrap();
        check_installed(&store, &uv);
        let heads = seen.lock().unwrap().clone();
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains("application/vnd.pypi.simple.v1+json"),
            "{}",
            heads[0]
        );
        assert_eq!(heads.len(), 2, "the page and the wheel");
        // Installed already: only the page is asked for again.
        let again = install_into_store(&store, &format!("{base}/simple")).unwrap();
        assert_eq!(again, uv);
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn install_from_an_html_index_over_http_and_from_a_folder() {
        let (name, wheel) = fake_uv_wheel("0.0.1");
        let sha = crate::digest::hex_sha256(&wheel);
        let page = format!(
            "<html><body>\n<a href=\"../../files/{name}#sha256={sha}\">{name}</a><br>\n\
             <a href=\"../../files/bad.whl#sha256={sha}\" data-yanked=\"\">uv-0.0.9-py3-none-any.whl</a>\n\
             </body></html>"
        );
        let mut routes = Routes::new();
        routes.insert(
            "/simple/uv/".into(),
            ("text/html".into(), page.clone().into_bytes()),
        );
        routes.insert(
            format!("/files/{name}"),
            ("application/octet-stream".into(), wheel.clone()),
        );
        let (base, _) = serve(routes);
        let (_d, store) = new_store();
        let uv = install_into_store(&store, &format!("{base}/simple")).unwrap();
        check_installed(&store, &uv);

        // A simple index laid out in a folder.
        let idx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(idx.path().join("simple/uv")).unwrap();
        std::fs::create_dir_all(idx.path().join("files")).unwrap();
        std::fs::write(idx.path().join("simple/uv/index.html"), &page).unwrap();
        std::fs::write(idx.path().join("files").join(&name), &wheel).unwrap();
        let (_d2, store2) = new_store();
        let uv2 = install_into_store(
            &store2,
            &format!("file://{}", idx.path().join("simple").display()),
        )
        .unwrap();
        check_installed(&store2, &uv2);
    }

    #[test]
    fn install_errors_name_the_index_without_credentials() {
        let mut routes = Routes::new();
        routes.insert(
            "/simple/uv/".into(),
            ("text/html".into(), b"<html><body></body></html>".to_vec()),
        );
        let (base, _) = serve(routes);
        let (_d, store) = new_store();
        let index = base.replace("http://", "http://user:hunter2@") + "/simple";
        let e = install_into_store(&store, &index).unwrap_err().to_string();
        assert!(e.contains("lists no final release of uv"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = install_into_store(&store, &format!("{base}/missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("404"), "{e}");
    }

    #[test]
    fn extraction_needs_the_uv_script() {
        use zip::write::SimpleFileOptions;
        let dir = tempfile::tempdir().unwrap();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("uv-1.data/scripts/other", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        let p = dir.path().join("w.whl");
        std::fs::write(&p, w.finish().unwrap().into_inner()).unwrap();
        let e = extract_uv(&p, "w.whl", dir.path()).unwrap_err().to_string();
        assert!(e.contains("w.whl") && e.contains("scripts/uv"), "{e}");
    }
}
