//! `lakebase __generate-docs DIR` (not in the command line's definition): man pages and shell completions generated from the
//! clap definitions, for packages (`make dist` puts them into the Debian package of the command).
//!
//! Writes `DIR/man/lakebase.1` plus one page per command (`lakebase-password.1`, ...,
//! `lakebase-cache-list.1`) and `DIR/completions/{lakebase.bash,_lakebase,lakebase.fish}`.
//! Each file is written to a temporary name and renamed, so a failed run leaves no half-written
//! file behind.

use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The argument that selects this instead of the command line (`lakebase __generate-docs DIR`).
pub const COMMAND: &str = "__generate-docs";

/// `lakebase __generate-docs DIR`: prints each file written; exit status 0, 1 on an I/O error, 2
/// on a usage error.
pub fn run(args: &[std::ffi::OsString]) -> u8 {
    let [dir] = args else {
        crate::eprint_error("usage: lakebase __generate-docs DIR");
        return crate::EXIT_USAGE;
    };
    match generate(Path::new(dir)) {
        Ok(files) => {
            let list: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
            crate::out(&list)
        }
        Err(e) => {
            crate::eprint_error(&format!("cannot write the docs into {}: {e}", Path::new(dir).display()));
            crate::EXIT_FAILURE
        }
    }
}

/// Generate everything into `dir`; returns the files written.
pub fn generate(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = Vec::new();
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    man_pages(&cmd, &man, &mut written)?;
    let comp = dir.join("completions");
    std::fs::create_dir_all(&comp)?;
    for (shell, name) in [(Shell::Bash, "lakebase.bash"), (Shell::Zsh, "_lakebase"), (Shell::Fish, "lakebase.fish")] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "lakebase", &mut buf);
        write_atomic(&comp.join(name), &buf)?;
        written.push(comp.join(name));
    }
    Ok(written)
}

/// The page of `cmd`, then one per visible subcommand. After `Command::build`, a subcommand's
/// display name is its man page name (`lakebase-cache-list`) and its bin name the words to type.
fn man_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section("1")
        .source(concat!("lakebase ", env!("CARGO_PKG_VERSION")))
        .manual("lakebase manual")
        .render(&mut buf)?;
    let file = dir.join(format!("{name}.1"));
    write_atomic(&file, &buf)?;
    written.push(file);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        man_pages(sub, dir, written)?;
    }
    Ok(())
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp~");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_and_completions_for_every_command() {
        let dir = std::env::temp_dir().join(format!("lakebase-gendocs-{}", std::process::id()));
        let files = super::generate(&dir).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        for want in [
            "lakebase.1",
            "lakebase-password.1",
            "lakebase-exec.1",
            "lakebase-proxy.1",
            "lakebase-cache-list.1",
            "_lakebase",
            "lakebase.bash",
            "lakebase.fish",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
        let page = std::fs::read_to_string(dir.join("man/lakebase-proxy.1")).unwrap();
        assert!(
            page.starts_with(".ie")
                && page.contains(concat!(".TH LAKEBASE-PROXY 1  \"lakebase ", env!("CARGO_PKG_VERSION"), "\""))
                && page.contains("allow\\-non\\-loopback"),
            "{page}"
        );
        let bash = std::fs::read_to_string(dir.join("completions/lakebase.bash")).unwrap();
        assert!(bash.contains("whoami") && !bash.contains("__generate-docs"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
