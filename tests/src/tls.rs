//! Test certificates made with the `openssl` command: a CA and a server certificate
//! for `127.0.0.1` only (no DNS name), so host-name checks can be seen to bite.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// PEM files in one folder.
#[derive(Debug)]
pub struct Certs {
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The server certificate, signed by the CA, valid for IP 127.0.0.1.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA named `name` and a server certificate it signs, under `dir`.
pub fn make(dir: &Path, name: &str) -> Certs {
    std::fs::create_dir_all(dir).expect("certificate folder");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days", "2", "-subj", &subject, "-keyout", "ca.key", "-out", "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write the extensions file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}
