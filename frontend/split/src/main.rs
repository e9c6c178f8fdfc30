//! Build step (`Makefile.toml`): splits a bundle's WASM, as linked by rustc with `--emit-relocs`,
//! at its `#[lazy]` split points (Leptos' lazy routes), the way `cargo leptos --split` does.
//!
//! `nest-wasm-split <input.wasm> <bundle dir> <main out.wasm> <bundle name>` writes, in the
//! bundle's directory, one `split_<point>.wasm` per split point and `chunk_<n>.wasm` per group of
//! code several points share, the loader `__wasm_split.js` (which fetches them relative to
//! itself), and `__wasm_split_manifest.json` (each split point's files, which the server names
//! in `<link rel="preload">` when a page renders one). The main module goes to `main out.wasm`,
//! for wasm-bindgen to bind as `<bundle name>.js`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The loader's file name, in the bundle's directory; the main module imports it by this path.
const LOADER: &str = "./__wasm_split.js";
/// The split points' file lists, read by the server at start.
const MANIFEST: &str = "__wasm_split_manifest.json";

struct Args {
    input: PathBuf,
    bundle_dir: PathBuf,
    main_out: PathBuf,
    bundle_name: String,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [input, bundle_dir, main_out, bundle_name] => Ok(Args {
            input: input.into(),
            bundle_dir: bundle_dir.into(),
            main_out: main_out.into(),
            bundle_name: bundle_name.clone(),
        }),
        _ => Err(
            "usage: nest-wasm-split <input.wasm> <bundle dir> <main out.wasm> <bundle name>"
                .to_owned(),
        ),
    }
}

fn split(args: &Args) -> Result<usize, String> {
    let input = std::fs::read(&args.input)
        .map_err(|e| format!("cannot read {}: {e}", args.input.display()))?;
    std::fs::create_dir_all(&args.bundle_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.bundle_dir.display()))?;
    let main_module = format!("./{}.js", args.bundle_name);
    let mut options = wasm_split_cli_support::Options::new(&input);
    options.output_dir = &args.bundle_dir;
    options.main_out_path = &args.main_out;
    options.main_module = &main_module;
    options.link_name = LOADER;
    let split = wasm_split_cli_support::transform(options)
        .map_err(|e| format!("cannot split {}: {e:#}", args.input.display()))?;
    // Sorted, so the same build writes the same manifest.
    let manifest: std::collections::BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?;
    write(&args.bundle_dir.join(MANIFEST), &json)?;
    Ok(split.split_modules.len())
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| split(&args).map(|n| (args, n))) {
        Ok((args, modules)) => {
            println!(
                "split {} into its main module and {modules} lazily loaded ones",
                args.bundle_name
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
