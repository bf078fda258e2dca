//! `.nova/stack.env`: the addresses of the running stack as shell `export KEY=value`
//! lines, so `source .nova/stack.env` hands them to every program started from that
//! shell (a plain `KEY=value` would stay a shell variable, and a binary would quietly
//! fall back to its defaults).

use std::{fs, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

/// Writes `vars` to `path` (mode 0600: it holds the service token), one
/// `export KEY=value` per line, values single-quoted when they need it.
pub fn write(path: &Path, vars: &[(&str, String)]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(render(vars).as_bytes())?;
    Ok(())
}

/// Renders `vars` as `export KEY=value` lines.
pub fn render(vars: &[(&str, String)]) -> String {
    vars.iter()
        .map(|(k, v)| format!("export {k}={}\n", quote(v)))
        .collect()
}

/// Reads `KEY=value` lines written by [`write`].
pub fn read(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    Ok(fs::read_to_string(path)?
        .lines()
        .map(|line| line.strip_prefix("export ").unwrap_or(line))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), unquote(v)))
        .collect())
}

fn quote(value: &str) -> String {
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:@,+=".contains(&b))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace(r"'\''", "'"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.env");
        let vars = [
            ("NOVA_GRPC_ADDR", "127.0.0.1:50051".to_owned()),
            ("ODD", "it's got spaces & $dollars".to_owned()),
        ];
        write(&path, &vars).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("export NOVA_GRPC_ADDR=127.0.0.1:50051\n"),
            "{text}"
        );
        let back = read(&path).unwrap();
        assert_eq!(
            back[1],
            ("ODD".to_owned(), "it's got spaces & $dollars".to_owned())
        );
    }

    #[test]
    fn sourcing_the_file_exports_every_variable_to_child_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.env");
        let vars = [
            (
                "NOVA_DATABASE_URL",
                "postgres://postgres@127.0.0.1:15432/nova".to_owned(),
            ),
            ("ODD", "it's got spaces & $dollars".to_owned()),
        ];
        write(&path, &vars).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                ". '{}' && env | grep -E '^(NOVA_DATABASE_URL|ODD)=' | sort",
                path.display()
            ))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "NOVA_DATABASE_URL=postgres://postgres@127.0.0.1:15432/nova\nODD=it's got spaces & $dollars\n"
        );
    }
}
