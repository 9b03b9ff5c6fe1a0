//! Debian packages the checks need (the load generator, the browser for end-to-end tests, the
//! IMAP server for the mail tests), and the odd Python module, installed when missing so that a
//! fresh machine runs everything with one command.

use std::process::{Command, Stdio};

use anyhow::bail;

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).ends_with("installed"))
}

/// Installs the packages not yet installed; fails with the command to run by hand.
pub fn ensure(why: &str, packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("==> installing {} ({why})", missing.join(", "));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get")
            .arg("update")
            .stdout(Stdio::null())
            .status();
        install();
    }
    let still: Vec<&str> = missing.into_iter().filter(|p| !installed(p)).collect();
    if !still.is_empty() {
        bail!(
            "{why} needs these Debian packages: apt-get install --no-install-recommends {}",
            still.join(" ")
        );
    }
    Ok(())
}

/// Installs a Python module with pip when `python3` cannot import it (there is no Debian
/// package of it, or only an older one).
pub fn ensure_python_module(why: &str, module: &str, package: &str) -> anyhow::Result<()> {
    let importable = || {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if importable() {
        return Ok(());
    }
    println!("==> installing {package} with pip ({why})");
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", package])
        .status();
    if !importable() {
        bail!("{why} needs the Python module {module}: python3 -m pip install {package}");
    }
    Ok(())
}
