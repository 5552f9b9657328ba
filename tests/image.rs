//! `make image`: the image built without a Docker engine, an OCI archive at
//! `target/image/closte-operator-<appVersion>.oci.tar`. The test reads the
//! archive itself (tar and JSON; `gzip` unpacks the layer) and checks the
//! image's config and files, that the Dockerfile's final stage describes the
//! same image, and that a second build gives the same bytes.
//!
//! The first run builds the static (musl) release binary, which takes
//! minutes; afterwards `make image` only rewrites the archive.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::image::{Entry, app_version, make_image, read_image};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn git(args: &[&str]) -> String {
    common::git(root(), args)
}

/// Whether an ELF executable loads without a dynamic loader or shared
/// libraries: no PT_INTERP, and no DT_NEEDED in a PT_DYNAMIC (a static-pie
/// has one, to relocate itself).
fn static_elf(elf: &[u8]) -> Result<(), String> {
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    if u16_at(18) != 62 {
        return Err(format!("machine {} is not x86-64", u16_at(18)));
    }
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    for header in (0..phnum).map(|i| phoff + i * phentsize) {
        let p_type = u32::from_le_bytes(elf[header..header + 4].try_into().unwrap());
        let (offset, size) = (u64_at(header + 8), u64_at(header + 32));
        if p_type == 3 {
            return Err(format!(
                "it has an interpreter, {}",
                String::from_utf8_lossy(&elf[offset..offset + size])
            ));
        }
        if p_type == 2 {
            for tag in (offset..offset + size).step_by(16).map(u64_at) {
                match tag {
                    0 => break,
                    1 => return Err("it needs shared libraries (DT_NEEDED)".into()),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Every file and folder under `dir`, as paths relative to it.
fn tree(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(folder) = todo.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                found.insert(name, None);
                todo.push(path);
            } else {
                found.insert(name, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

/// The Dockerfile's final stage: what it sets and where it copies to.
#[derive(Debug, Default)]
struct FinalStage {
    user: Option<String>,
    entrypoint: Option<Value>,
    cmd: Option<Value>,
    workdir: Option<String>,
    labels: BTreeMap<String, String>,
    /// (sources, destination, from another stage)
    copies: Vec<(Vec<String>, String, bool)>,
}

/// Splits an instruction's arguments at blanks outside double quotes, and
/// drops the quotes.
fn words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn final_stage(dockerfile: &str) -> FinalStage {
    let joined = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let stage = joined
        .rsplit_once("\nFROM ")
        .expect("the Dockerfile has a FROM")
        .1;
    let mut found = FinalStage::default();
    for line in stage.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (instruction, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        let rest = rest.trim();
        let json = || -> Value {
            serde_json::from_str(rest)
                .unwrap_or_else(|e| panic!("{instruction} should be in JSON form ({e}): {rest}"))
        };
        match instruction.to_ascii_uppercase().as_str() {
            "USER" => found.user = Some(rest.to_owned()),
            "ENTRYPOINT" => found.entrypoint = Some(json()),
            "CMD" => found.cmd = Some(json()),
            "WORKDIR" => found.workdir = Some(rest.to_owned()),
            "ARG" => {}
            "LABEL" => {
                for word in words(rest) {
                    let (key, value) = word
                        .split_once('=')
                        .unwrap_or_else(|| panic!("LABEL {word}: expected key=value"));
                    found.labels.insert(key.to_owned(), value.to_owned());
                }
            }
            "COPY" => {
                let mut args = words(rest);
                let from = args.iter().any(|a| a.starts_with("--from="));
                args.retain(|a| !a.starts_with("--"));
                let destination = args.pop().expect("COPY has a destination");
                found.copies.push((args, destination, from));
            }
            other => panic!(
                "the Dockerfile's final stage has {other}, which this test does not know: \
                 teach it how {other} changes the image, and scripts/image.py to do the same"
            ),
        }
    }
    found
}

#[test]
fn make_image_builds_the_image_the_dockerfile_describes_and_again_the_same() {
    let version = app_version();
    let head = git(&["rev-parse", "HEAD"]);
    let commit_time: u64 = git(&["show", "-s", "--format=%ct", "HEAD"])
        .parse()
        .unwrap();
    let created = git(&[
        "show",
        "-s",
        "--format=%cd",
        "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
        "HEAD",
    ]);

    // Step 1: make image writes the archive at its one path, and says what it wrote.
    let said = make_image(None);
    let path: PathBuf = root().join(format!("target/image/closte-operator-{version}.oci.tar"));
    let digest_line = said
        .lines()
        .find(|l| l.starts_with("digest "))
        .unwrap_or_else(|| panic!("make image should end with the image's digest:\n{said}"));
    assert!(
        said.contains(" gzip'd, ") && said.contains(" unpacked"),
        "make image should print the layer's sizes:\n{said}"
    );
    let image = read_image(&path);
    assert_eq!(
        digest_line.split_whitespace().nth(1),
        Some(image.digest.as_str()),
        "the digest make image printed is not the archive's"
    );

    // Step 2: the config and the name containerd gives the image.
    let repository = {
        let values: Value = serde_yaml::from_str(
            &std::fs::read_to_string(root().join("charts/closte-operator/values.yaml")).unwrap(),
        )
        .unwrap();
        values["image"]["repository"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        image.descriptor["annotations"],
        serde_json::json!({
            "io.containerd.image.name": format!("docker.io/library/{repository}:{version}"),
            "org.opencontainers.image.ref.name": version,
        }),
        "index.json should name the chart's image (image.repository, tag appVersion)"
    );
    let config = &image.config;
    assert_eq!(config["User"], "65532:65532", "config: {config:#}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/closte-operator"]),
        "config: {config:#}"
    );
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["controller"]),
        "config: {config:#}"
    );
    assert_eq!(config["WorkingDir"], "/", "config: {config:#}");
    assert!(
        config["Env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|e| e
                .as_str()
                .is_some_and(|e| e.starts_with("PATH=") && e.contains(":/usr/local/bin:")))),
        "config should set a PATH with /usr/local/bin: {config:#}"
    );
    let labels = &config["Labels"];
    let label = |key: &str| labels[format!("org.opencontainers.image.{key}")].clone();
    assert_eq!(label("title"), "closte-operator", "labels: {labels:#}");
    assert_eq!(label("version"), version.as_str(), "labels: {labels:#}");
    assert_eq!(label("revision"), head.as_str(), "labels: {labels:#}");
    assert_eq!(label("created"), created.as_str(), "labels: {labels:#}");
    assert_eq!(label("licenses"), "Apache-2.0", "labels: {labels:#}");
    for key in ["description", "source"] {
        assert!(
            label(key).as_str().is_some_and(|v| !v.is_empty()),
            "label {key} should be set: {labels:#}"
        );
    }
    assert_eq!(image.created, created, "the config's created");

    // Step 3: the files in the layer: the binary, static, under both names;
    // the mu-plugin as in wordpress/; the users and folders of the distroless
    // non-root base; nothing else (no shell, no package manager).
    let layer = &image.layer;
    let entry = |name: &str| -> &Entry {
        layer.get(name).unwrap_or_else(|| {
            panic!(
                "the layer has no {name}; it has {:?}",
                layer.keys().collect::<Vec<_>>()
            )
        })
    };
    for (name, entry) in layer {
        assert_eq!(
            entry.mtime, commit_time,
            "{name}: every entry's time should be the HEAD commit's"
        );
    }
    let binary = entry("usr/local/bin/closte-operator");
    assert_eq!(
        (binary.kind, binary.mode, binary.uid, binary.gid),
        (b'0', 0o755, 0, 0),
        "the binary should be a file, mode 0755, owned by root"
    );
    if let Err(why) = static_elf(&binary.data) {
        panic!("the binary is not a static x86-64 executable: {why}");
    }
    let plugin = entry("usr/local/bin/kubectl-closte");
    assert!(
        (plugin.kind == b'1' && plugin.link == "usr/local/bin/closte-operator")
            || (plugin.kind == b'0' && plugin.data == binary.data && plugin.mode == 0o755),
        "kubectl-closte should be the binary, as a hard link or a copy: {plugin:?}"
    );
    let home = entry("home/nonroot");
    assert_eq!(
        (home.kind, home.uid, home.gid),
        (b'5', 65532, 65532),
        "/home/nonroot should be a folder owned by nonroot"
    );
    assert_eq!(
        (entry("tmp").kind, entry("tmp").mode),
        (b'5', 0o1777),
        "/tmp"
    );
    let passwd = String::from_utf8_lossy(&entry("etc/passwd").data).into_owned();
    for user in [
        "root:x:0:0:",
        "nonroot:x:65532:65532:nonroot:/home/nonroot:",
    ] {
        assert!(
            passwd.lines().any(|l| l.starts_with(user)),
            "/etc/passwd should have {user}...:\n{passwd}"
        );
    }
    let group = String::from_utf8_lossy(&entry("etc/group").data).into_owned();
    for line in ["root:x:0:", "nonroot:x:65532:"] {
        assert!(
            group.lines().any(|l| l == line),
            "/etc/group should have {line}:\n{group}"
        );
    }
    let mu_plugin = "usr/share/closte-operator/mu-plugin";
    let source = tree(&root().join("wordpress"));
    for (name, content) in &source {
        let entry = entry(&format!("{mu_plugin}/{name}"));
        match content {
            None => assert_eq!(entry.kind, b'5', "{name} should be a folder"),
            Some(content) => assert!(
                entry.kind == b'0' && &entry.data == content && entry.mode & 0o444 == 0o444,
                "{mu_plugin}/{name} should be a readable copy of wordpress/{name}"
            ),
        }
    }
    let mut expected: BTreeSet<String> = [
        "etc",
        "etc/group",
        "etc/passwd",
        "home",
        "home/nonroot",
        "tmp",
        "usr",
        "usr/local",
        "usr/local/bin",
        "usr/local/bin/closte-operator",
        "usr/local/bin/kubectl-closte",
        "usr/share",
        "usr/share/closte-operator",
        mu_plugin,
    ]
    .map(String::from)
    .into();
    expected.extend(source.keys().map(|name| format!("{mu_plugin}/{name}")));
    let found: BTreeSet<String> = layer.keys().cloned().collect();
    let forbidden: Vec<&String> = found
        .iter()
        .filter(|n| {
            let file = n.rsplit('/').next().unwrap();
            [
                "sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg", "apk",
            ]
            .contains(&file)
                || n.starts_with("var/lib/dpkg")
                || n.starts_with("var/lib/apt")
        })
        .collect();
    assert!(
        forbidden.is_empty(),
        "the image should have no shell and no package manager: {forbidden:?}"
    );
    assert_eq!(
        found.difference(&expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the layer has entries the image should not have"
    );
    assert_eq!(
        expected.difference(&found).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the layer lacks entries"
    );

    // Step 4: the Dockerfile's final stage describes this image.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let stage = final_stage(&dockerfile);
    assert_eq!(
        stage.user.as_deref(),
        config["User"].as_str(),
        "the Dockerfile's USER (left) should be the image's (right)"
    );
    assert_eq!(
        stage.entrypoint.as_ref(),
        Some(&config["Entrypoint"]),
        "the Dockerfile's ENTRYPOINT (left) should be the image's (right)"
    );
    assert_eq!(
        stage.cmd.as_ref(),
        Some(&config["Cmd"]),
        "the Dockerfile's CMD (left) should be the image's (right)"
    );
    assert_eq!(
        stage.workdir.as_deref().unwrap_or("/home/nonroot"),
        config["WorkingDir"].as_str().unwrap(),
        "the Dockerfile's WORKDIR (left; distroless nonroot's is /home/nonroot) should be the image's (right)"
    );
    assert_eq!(
        stage.labels.keys().collect::<Vec<_>>(),
        labels.as_object().unwrap().keys().collect::<Vec<_>>(),
        "the Dockerfile's LABELs (left) should be the image's (right)"
    );
    for (key, value) in &stage.labels {
        if !value.contains('$') {
            assert_eq!(
                labels[key].as_str(),
                Some(value.as_str()),
                "the image's LABEL {key} (left) should be the Dockerfile's (right)"
            );
        }
    }
    assert!(
        stage.copies.len() >= 3,
        "the final stage should copy the binary twice and the mu-plugin: {stage:?}"
    );
    for (sources, destination, from_stage) in &stage.copies {
        let destination = destination.trim_start_matches('/');
        if destination.ends_with('/') {
            let folder = destination.trim_end_matches('/');
            assert_eq!(entry(folder).kind, b'5', "COPY to /{destination}: a folder");
            if !from_stage {
                for source in sources {
                    for name in tree(&root().join(source)).keys() {
                        entry(&format!("{folder}/{name}"));
                    }
                }
            }
        } else {
            assert!(
                matches!(entry(destination).kind, b'0' | b'1'),
                "COPY to /{destination}: a file"
            );
        }
    }

    // Step 5: a second build gives the same bytes, so the same digest.
    let again = root().join(format!("target/image/again-{}.oci.tar", std::process::id()));
    make_image(Some(&again));
    let second = read_image(&again);
    std::fs::remove_file(&again).unwrap();
    assert_eq!(
        second.digest, image.digest,
        "a second build of the same commit should give the same manifest digest"
    );
    assert!(
        second.archive == image.archive,
        "a second build of the same commit should give the same archive, byte for byte"
    );
}
