//! `.nova/stack.env`: the addresses of the running stack as shell `KEY=value` lines.

use std::{fs, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

/// Writes `vars` to `path` (mode 0600: it holds the service token), one `KEY=value`
/// per line, values single-quoted when they need it.
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

/// Renders `vars` as `KEY=value` lines.
pub fn render(vars: &[(&str, String)]) -> String {
    vars.iter()
        .map(|(k, v)| format!("{k}={}\n", quote(v)))
        .collect()
}

/// Reads `KEY=value` lines written by [`write`].
pub fn read(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    Ok(fs::read_to_string(path)?
        .lines()
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
            text.starts_with("NOVA_GRPC_ADDR=127.0.0.1:50051\n"),
            "{text}"
        );
        let back = read(&path).unwrap();
        assert_eq!(
            back[1],
            ("ODD".to_owned(), "it's got spaces & $dollars".to_owned())
        );
    }
}
