//! `commands` and `apt_packages` layers run in the sandbox: one step per
//! command (or one for the group) and platform, keyed by the layers and
//! configuration it runs on, what it runs, and what its mounts hold.

use super::common::{ImageCx, at};
use super::{Action, Step, apply_config};
use crate::digest::KeyHasher;
use crate::error::Result;
use crate::layer::files::{self, CollectOptions};
use crate::layer::ignore::IgnoreRules;
use crate::spec::{Layer, LayerKind};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What `apt_packages` runs: lists and downloads live in cache mounts, and
/// the logs that record install times are removed so reruns match.
pub fn apt_script(packages: &[String]) -> String {
    let opts = "-o APT::Sandbox::User=root";
    format!(
        "apt-get {opts} update && apt-get {opts} install -y --no-install-recommends {} && rm -f /var/log/dpkg.log /var/log/alternatives.log /var/log/apt/history.log /var/log/apt/term.log /var/log/apt/eipp.log.xz /var/cache/ldconfig/aux-cache",
        packages.join(" ")
    )
}

/// The steps of a `commands` or `apt_packages` layer: one per command (or
/// one for the group) and platform, each keyed by what it runs on.
pub(super) fn plan(cx: &ImageCx, l: &Layer, steps: &[Step]) -> Result<Vec<Step>> {
    use crate::sandbox::{CacheMount, ImageMount, RUN_FORMAT, RunStep, SecretMount, SshSocket};
    let (env, img, o) = (cx.env, cx.img, cx.env.o);
    let (base_configs, base_chain) = (cx.base_configs, cx.base_chain);
    let (scripts, run, extra_env, caches): (
        Vec<String>,
        _,
        Vec<(String, String)>,
        Vec<CacheMount>,
    ) = match &l.kind {
        LayerKind::Commands {
            commands,
            group,
            run,
        } => (
            if *group {
                vec![commands.join(" && ")]
            } else {
                commands.clone()
            },
            run,
            vec![],
            run.cache_mounts
                .iter()
                .map(|t| CacheMount {
                    id: format!("cache:{t}"),
                    target: t.clone(),
                })
                .collect(),
        ),
        LayerKind::AptPackages { packages, run } => (
            vec![apt_script(packages)],
            run,
            vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())],
            vec![],
        ),
        _ => unreachable!("only RUN kinds"),
    };
    // Bind mounts: what they hold is part of the key.
    let no_rules = IgnoreRules::from_patterns(Vec::<&str>::new()).expect("empty");
    let mut binds: Vec<(PathBuf, String)> = Vec::new();
    let mut bind_key = KeyHasher::new("binds", 1);
    for b in &run.bind_mounts {
        let (src, dst) = b.split_once(':').expect("validated when loaded");
        let path = env.context.join(src);
        let co = CollectOptions {
            context: env.context,
            rules: &no_rules,
            owner: None,
            chmod: None,
            stat: env.stat,
            exclude: &o.exclude,
            hash: true,
        };
        let c = if path.is_dir() {
            files::collect_folder(&path, "", false, &co)
        } else {
            files::collect_file(&path, "f", &co)
        }
        .map_err(|e| at(&l.loc, e))?;
        bind_key.str(src).str(dst);
        files::key_entries(&mut bind_key, &c.entries);
        binds.push((path, dst.to_string()));
    }
    let bind_key = bind_key.finish();
    // Folders of other images: the image must be planned first; its
    // content key stands for what the folder holds.
    let mut sources: Vec<usize> = Vec::new();
    for m in &run.from_mounts {
        let Some(si) = cx.done.iter().position(|p| p.id == m.image) else {
            return Err(crate::error::Error::Definition {
                loc: Box::new(l.loc.clone()),
                message: format!("no image {:?} to mount from", m.image),
            });
        };
        sources.push(si);
    }
    let ssh: Vec<SshSocket> = run
        .ssh_mounts
        .iter()
        .map(|m| SshSocket {
            id: m.id.clone(),
            target: m.target.clone(),
            required: m.required,
        })
        .collect();
    let mut out: Vec<Step> = Vec::new();
    for script in &scripts {
        for (pi, p) in img.platforms.iter().enumerate() {
            // The configuration and layers this step stands on.
            let mut cfg = base_configs[pi].clone();
            let mut chain = KeyHasher::new("chain", 1);
            chain.digest(&base_chain[pi]);
            for s in steps.iter().chain(out.iter()).filter(|s| s.applies_to(pi)) {
                match &s.action {
                    Action::Config(k) => apply_config(&mut cfg, k),
                    _ => {
                        chain.digest(&s.key);
                    }
                }
            }
            let chain = chain.finish();
            let mut caches = caches.clone();
            let mut image_mounts = Vec::new();
            for (m, &si) in run.from_mounts.iter().zip(&sources) {
                let src_img = &cx.done[si];
                // A stage pinned to one platform (`FROM --platform`) serves all.
                let src_p = if src_img.platforms.contains(p) {
                    p
                } else if let [only] = src_img.platforms.as_slice() {
                    only
                } else {
                    return Err(crate::error::Error::Definition {
                        loc: Box::new(l.loc.clone()),
                        message: format!("image {:?} is not built for {p}", m.image),
                    });
                };
                // A cache seeded from another image is a cache of its own
                // per seed: the seed's content key names it.
                let cache = m.cache.as_ref().map(|id| {
                    format!(
                        "cache:{id}:from:{}:{src_p}:{}",
                        src_img.content_key.hex(),
                        m.source
                    )
                });
                if let Some(id) = &cache {
                    caches.push(CacheMount {
                        id: id.clone(),
                        target: m.target.clone(),
                    });
                }
                image_mounts.push((
                    src_img.content_key,
                    ImageMount {
                        image: si,
                        platform: src_p.to_string(),
                        source: m.source.clone(),
                        target: m.target.clone(),
                        cache,
                    },
                ));
            }
            if matches!(l.kind, LayerKind::AptPackages { .. }) {
                for t in ["/var/cache/apt", "/var/lib/apt/lists"] {
                    caches.push(CacheMount {
                        id: format!("apt:{p}:{t}"),
                        target: t.into(),
                    });
                }
            }
            // The base's SHELL (Docker's config field), else /bin/sh -c.
            let mut argv: Vec<String> = cfg
                .config
                .extra
                .get("Shell")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            argv.push(script.clone());
            let rs = RunStep {
                argv,
                env: extra_env.clone(),
                network: run.network,
                caches,
                secrets: run
                    .secret_mounts
                    .iter()
                    .map(|s| SecretMount::parse(s).expect("validated when loaded"))
                    .collect(),
                binds: binds.clone(),
                tmpfs: run.tmpfs_mounts.clone(),
                timeout: run.timeout.map(std::time::Duration::from_secs),
                platform: p.clone(),
                ssh: ssh.clone(),
                image_mounts: image_mounts.iter().map(|(_, m)| m.clone()).collect(),
                source_date_epoch: !run.no_source_date_epoch,
                insecure: run.insecure,
            };
            let mut k = KeyHasher::new("run", RUN_FORMAT);
            k.digest(&chain).str(&p.to_string());
            k.u64(rs.argv.len() as u64);
            for a in &rs.argv {
                k.str(a);
            }
            let env_list = cfg.config.env.clone().unwrap_or_default();
            k.u64(env_list.len() as u64);
            for e in &env_list {
                k.str(e);
            }
            k.u64(rs.env.len() as u64);
            for (a, b) in &rs.env {
                k.str(a).str(b);
            }
            k.opt_str(cfg.config.working_dir.as_deref())
                .opt_str(cfg.config.user.as_deref())
                .u64(rs.network as u64);
            k.u64(rs.caches.len() as u64);
            for c in &rs.caches {
                k.str(&c.id).str(&c.target);
            }
            k.digest(&bind_key);
            // A read-only folder of another image: that image's content.
            let ro: Vec<_> = image_mounts
                .iter()
                .filter(|(_, m)| m.cache.is_none())
                .collect();
            k.u64(ro.len() as u64);
            for (ck, m) in ro {
                k.digest(ck).str(&m.platform).str(&m.source).str(&m.target);
            }
            // SSH sockets by id and place only: never the host's path.
            k.u64(rs.ssh.len() as u64);
            for s in &rs.ssh {
                k.str(&s.id).str(&s.target).bool(s.required);
            }
            k.u64(rs.tmpfs.len() as u64);
            for t in &rs.tmpfs {
                k.str(t);
            }
            // Secrets by name and place only: never their values.
            k.u64(rs.secrets.len() as u64);
            for s in &rs.secrets {
                k.str(&s.id)
                    .opt_str(s.env.as_deref())
                    .opt_str(s.target.as_deref());
            }
            k.bool(rs.source_date_epoch);
            // A step run without containment is another step (contained
            // steps keep the keys they had before the field existed).
            if rs.insecure {
                k.str("security").str("insecure");
            }
            k.str(o.compression.name())
                .u64(o.compression.level() as u64)
                .u64(o.source_date_epoch);
            // zstd's framing changed the bytes of its layers; gzip steps
            // keep the keys they had.
            if o.compression == crate::layer::compress::Compression::Zstd {
                k.str("framing").u64(o.compression.framing());
            }
            let key = k.finish();
            let shown = match &l.kind {
                LayerKind::AptPackages { packages, .. } => {
                    format!("apt_packages {}", packages.join(" "))
                }
                _ => format!("commands {script}"),
            };
            let name = if img.platforms.len() > 1 {
                format!("{shown} ({p})")
            } else {
                shown
            };
            let mut options = BTreeMap::new();
            options.insert("command".into(), script.clone());
            options.insert("layers below".into(), chain.hex()[..16].to_string());
            options.insert(
                "network".into(),
                if rs.network { "host" } else { "none" }.into(),
            );
            options.insert(
                "security".into(),
                if rs.insecure { "insecure" } else { "sandbox" }.into(),
            );
            options.insert("compression".into(), o.compression.name().into());
            options.insert("source_date_epoch".into(), o.source_date_epoch.to_string());
            let mut notes = Vec::new();
            if rs.insecure {
                notes.push(
                    "runs without containment (every capability, no seccomp filter, writable /proc/sys): only with `--allow security.insecure`".into(),
                );
            }
            if !crate::sandbox::can_execute(p) {
                notes.push(format!(
                    "cannot run here: no binfmt_misc handler for {p} on this {} host",
                    crate::oci::host_arch()
                ));
            }
            out.push(Step {
                name,
                loc: l.loc.clone(),
                action: Action::Run(Box::new(rs)),
                key,
                cached: env.cached(&key),
                why: vec![],
                notes,
                options,
                platform: Some(pi),
            });
        }
    }
    Ok(out)
}
