//! Build step (`Makefile.toml`): splits a bundle's WASM at its lazy routes' split points, the
//! way `cargo leptos --split` does, then packs each route's files into one download.
//!
//! `nest-wasm-split split <input.wasm> <bundle dir> <main out.wasm> <bundle name>` cuts the
//! module, as linked by rustc with `--emit-relocs`: in the bundle's directory, one
//! `split_<point>.wasm` per split point and one `chunk_<n>.wasm` per piece of code several
//! points share, the loader `__wasm_split.js`, and `__wasm_split_manifest.json` (each point's
//! files). The main module goes to `main out.wasm`, for wasm-bindgen to bind as
//! `<bundle name>.js`.
//!
//! `nest-wasm-split pack <bundle dir>`, once the files are optimized, writes each split point's
//! files into one `<point>.pack` (see [`pack`]), rewrites the manifest to name it, and makes
//! the loader fetch the packs. A page's code in one file compresses about a third smaller than
//! in the hundred small files the split makes, and is one request.

mod pack;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The loader's file name, in the bundle's directory; the main module imports it by this path.
const LOADER: &str = "./__wasm_split.js";
/// Each split point's files (without `.wasm`); after `pack`, its pack (with `.pack`).
const MANIFEST: &str = "__wasm_split_manifest.json";

/// What to do, from the command line.
enum Command {
    Split {
        input: PathBuf,
        bundle_dir: PathBuf,
        main_out: PathBuf,
        bundle_name: String,
    },
    Pack {
        bundle_dir: PathBuf,
    },
}

const USAGE: &str = "usage: nest-wasm-split split <input.wasm> <bundle dir> <main out.wasm> <bundle name>\n       nest-wasm-split pack <bundle dir>";

fn parse_args(args: &[String]) -> Result<Command, String> {
    match args {
        [command, input, bundle_dir, main_out, bundle_name] if command == "split" => {
            Ok(Command::Split {
                input: input.into(),
                bundle_dir: bundle_dir.into(),
                main_out: main_out.into(),
                bundle_name: bundle_name.clone(),
            })
        }
        [command, bundle_dir] if command == "pack" => Ok(Command::Pack {
            bundle_dir: bundle_dir.into(),
        }),
        _ => Err(USAGE.to_owned()),
    }
}

/// Splits `input`; returns how many files besides the main module it wrote.
fn split(
    input: &Path,
    bundle_dir: &Path,
    main_out: &Path,
    bundle_name: &str,
) -> Result<usize, String> {
    let bytes =
        std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    std::fs::create_dir_all(bundle_dir)
        .map_err(|e| format!("cannot create {}: {e}", bundle_dir.display()))?;
    let main_module = format!("./{bundle_name}.js");
    let mut options = wasm_split_cli_support::Options::new(&bytes);
    options.output_dir = bundle_dir;
    options.main_out_path = main_out;
    options.main_module = &main_module;
    options.link_name = LOADER;
    let split = wasm_split_cli_support::transform(options)
        .map_err(|e| format!("cannot split {}: {e:#}", input.display()))?;
    // Sorted, so the same build writes the same manifest.
    let manifest: pack::Manifest = split.prefetch_map.into_iter().collect();
    pack::write_json(&bundle_dir.join(MANIFEST), &manifest)?;
    Ok(split.split_modules.len())
}

fn run(command: &Command) -> Result<String, String> {
    match command {
        Command::Split {
            input,
            bundle_dir,
            main_out,
            bundle_name,
        } => split(input, bundle_dir, main_out, bundle_name).map(|files| {
            format!("split {bundle_name} into its main module and {files} lazily loaded files")
        }),
        Command::Pack { bundle_dir } => pack::pack(bundle_dir, MANIFEST, LOADER)
            .map(|packs| format!("packed {} into {packs} files", bundle_dir.display())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args).and_then(|command| run(&command)) {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
