//! One download per lazy route: its split file and the shared chunks it needs, in one
//! `<point>.pack`, which the loader fetches (and the page preloads) instead of each file.
//!
//! A pack is `NPK1`, the number of files (u32, little-endian), then per file its name's length,
//! its name (UTF-8) and its length, then the files' bytes in that order. The loader's runtime
//! ([`RUNTIME`]) reads it back. A chunk several routes share is in each of their packs; the
//! loader instantiates it once, from the first pack that brings it.

use std::collections::BTreeMap;
use std::path::Path;

/// Each split point's files (without `.wasm`), or after packing its pack (with `.pack`).
pub type Manifest = BTreeMap<String, Vec<String>>;

const MAGIC: &[u8; 4] = b"NPK1";

/// The files in one pack's layout (see the module's note).
pub fn encode(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let len = |n: usize| u32::try_from(n).map_err(|_| "a pack holds files under 4 GiB".to_owned());
    let mut out = MAGIC.to_vec();
    out.extend(len(files.len())?.to_le_bytes());
    for (name, bytes) in files {
        out.extend(len(name.len())?.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(len(bytes.len())?.to_le_bytes());
    }
    for (_, bytes) in files {
        out.extend(bytes);
    }
    Ok(out)
}

/// Reads a manifest.
pub fn read_json(path: &Path) -> Result<Manifest, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a manifest: {e}", path.display()))
}

/// Writes a manifest.
pub fn write_json(path: &Path, manifest: &Manifest) -> Result<(), String> {
    let json = serde_json::to_string_pretty(manifest).map_err(|e| e.to_string())?;
    std::fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Packs every split point of the bundle in `dir` (see the crate's note); returns how many packs.
pub fn pack(dir: &Path, manifest_name: &str, loader: &str) -> Result<usize, String> {
    let manifest = read_json(&dir.join(manifest_name))?;
    let read = |file: &str| {
        let path = dir.join(format!("{file}.wasm"));
        std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let mut packed = Manifest::new();
    for (point, files) in &manifest {
        let files = files
            .iter()
            .map(|file| Ok((format!("{file}.wasm"), read(file)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let name = format!("{point}.pack");
        let path = dir.join(&name);
        std::fs::write(&path, encode(&files)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        packed.insert(point.clone(), vec![name]);
    }
    // Every split and chunk file is in the packs now (an empty chunk is never fetched).
    for entry in
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?
    {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if (name.starts_with("split_") || name.starts_with("chunk_")) && name.ends_with(".wasm") {
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    let loader_path = dir.join(loader);
    let js = std::fs::read_to_string(&loader_path)
        .map_err(|e| format!("cannot read {}: {e}", loader_path.display()))?;
    std::fs::write(&loader_path, patch_loader(&js)?)
        .map_err(|e| format!("cannot write {}: {e}", loader_path.display()))?;
    write_json(&dir.join(manifest_name), &packed)?;
    Ok(packed.len())
}

/// What the loader's file fetches become: `packFile` (the file, from the pack of the split point
/// being loaded), and `inPack`, which names that split point while its loads start. Its loads
/// start synchronously (the chunks it needs, then its own file), so the name is set exactly then.
const RUNTIME: &str = r#"// Added by nest-wasm-split pack: each split point's files come in one `<point>.pack`.
const packs = new Map();
let packing = undefined;
function inPack(point, load) {
    return () => {
        const outer = packing;
        packing = point;
        try {
            return load();
        } finally {
            packing = outer;
        }
    };
}
function unpack(buffer) {
    const view = new DataView(buffer);
    if (new TextDecoder().decode(new Uint8Array(buffer, 0, 4)) !== "NPK1") {
        throw new Error("not a pack");
    }
    let at = 4;
    const u32 = () => { const value = view.getUint32(at, true); at += 4; return value; };
    const entries = [];
    for (let count = u32(); count > 0; count--) {
        const length = u32();
        const name = new TextDecoder().decode(new Uint8Array(buffer, at, length));
        at += length;
        entries.push([name, u32()]);
    }
    const files = new Map();
    for (const [name, length] of entries) {
        files.set(name, buffer.slice(at, at + length));
        at += length;
    }
    return files;
}
function packFile(file) {
    const point = packing;
    let files = packs.get(point);
    if (files === undefined) {
        files = fetch(new URL(`./${point}.pack`, import.meta.url)).then((response) => {
            if (!response.ok) throw new Error(`${point}.pack: ${response.status}`);
            return response.arrayBuffer();
        }).then(unpack);
        // A failed download is tried again at the next load.
        files.catch(() => { if (packs.get(point) === files) packs.delete(point); });
        packs.set(point, files);
    }
    return files.then((unpacked) => {
        const bytes = unpacked.get(file);
        if (bytes === undefined) throw new Error(`${file} is not in ${point}.pack`);
        return bytes;
    });
}
"#;

/// The loader, fetching packs: every `fetch(new URL("./<file>.wasm", …))` becomes
/// `packFile("<file>.wasm")`, instantiated from bytes, and every split point's load is wrapped
/// in `inPack`. Fails if the loader is not shaped as this version of the splitter writes it.
pub fn patch_loader(js: &str) -> Result<String, String> {
    const FETCH: &str = "fetch(new URL(\"./";
    const FETCH_END: &str = ".wasm\", import.meta.url))";
    const STREAMING: &str = "WebAssembly.instantiateStreaming(src, imports)";
    const EXPORT: &str = "export const __wasm_split_load_";
    const LOAD: &str = " = wrapAsyncCb(makeLoad(";
    let mut out = String::with_capacity(js.len() + RUNTIME.len());
    let mut points = 0;
    let mut in_export = false;
    for line in js.lines() {
        let mut line = line.to_owned();
        if let Some(start) = line.find(FETCH) {
            let rest = &line[start + FETCH.len()..];
            let end = rest
                .find(FETCH_END)
                .ok_or_else(|| format!("unexpected fetch in the loader: {line}"))?;
            let file = rest[..end].to_owned();
            line = format!(
                "{}packFile(\"{file}.wasm\"){}",
                &line[..start],
                &rest[end + FETCH_END.len()..]
            );
        }
        line = line.replace(STREAMING, "WebAssembly.instantiate(await src, imports)");
        if let Some(rest) = line.strip_prefix(EXPORT) {
            let (name, tail) = rest
                .split_once(LOAD)
                .ok_or_else(|| format!("unexpected export in the loader: {line}"))?;
            // `__wasm_split_load_<point>`
            line = format!("{EXPORT}{name} = wrapAsyncCb(inPack(\"{name}\", makeLoad({tail}");
            in_export = true;
            points += 1;
        }
        if in_export
            && line.starts_with(", [")
            && let Some(dependencies) = line.strip_suffix("]));")
        {
            // The end of the point's load: one more parenthesis closes `inPack(`.
            line = format!("{dependencies}])));");
            in_export = false;
        }
        out.push_str(&line);
        out.push('\n');
    }
    if in_export {
        return Err("a split point's load in the loader does not end as expected".to_owned());
    }
    if points == 0 {
        return Err("the loader loads no split point".to_owned());
    }
    if out.contains(FETCH) || out.contains("instantiateStreaming") {
        return Err("the loader still fetches files one by one".to_owned());
    }
    Ok(format!("{RUNTIME}{out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loader as wasm_split_cli_support 0.2.3 writes it (release build), cut short.
    const LOADER: &str = r#"import { initSync } from "./nest.js";
/* __a, __b */
const __chunk_1 = makeLoad(() => {
    const src = fetch(new URL("./chunk_1.wasm", import.meta.url));
    return async (imports) => (WebAssembly.instantiateStreaming(src, imports));
}
, []);
export const __wasm_split_load_jobs_page = wrapAsyncCb(makeLoad(() => {
    const src = fetch(new URL("./split_jobs_page.wasm", import.meta.url));
    return async (imports) => (WebAssembly.instantiateStreaming(src, imports));
}
, [__chunk_1]));
"#;

    #[test]
    fn the_loader_takes_every_file_from_the_pack_of_the_split_point_it_loads() {
        let patched = patch_loader(LOADER).unwrap();
        assert!(patched.starts_with(RUNTIME));
        let body = &patched[RUNTIME.len()..];
        assert!(
            body.contains(r#"const src = packFile("chunk_1.wasm");"#),
            "{body}"
        );
        assert!(
            body.contains(r#"const src = packFile("split_jobs_page.wasm");"#),
            "{body}"
        );
        assert!(
            body.contains(
                r#"export const __wasm_split_load_jobs_page = wrapAsyncCb(inPack("jobs_page", makeLoad(() => {"#
            ),
            "{body}"
        );
        assert!(body.contains(", [__chunk_1])));\n"), "{body}");
        assert!(
            body.contains("WebAssembly.instantiate(await src, imports)"),
            "{body}"
        );
        assert!(
            !body.contains("fetch(") && !body.contains("instantiateStreaming"),
            "{body}"
        );
    }

    #[test]
    fn a_loader_of_another_shape_is_refused_rather_than_half_patched() {
        assert!(patch_loader("import { initSync } from \"./nest.js\";\n").is_err());
        let unterminated = LOADER.replace(", [__chunk_1]));", ", [__chunk_1]);");
        assert!(patch_loader(&unterminated).is_err());
        let other_fetch = LOADER.replace(".wasm\", import.meta.url)", ".wasm\")");
        assert!(patch_loader(&other_fetch).is_err());
    }

    #[test]
    fn a_pack_lists_its_files_then_holds_their_bytes_in_order() {
        let packed = encode(&[
            ("chunk_1.wasm".to_owned(), vec![1, 2]),
            ("split_a.wasm".to_owned(), vec![3]),
        ])
        .unwrap();
        let mut expected = b"NPK1".to_vec();
        expected.extend(2u32.to_le_bytes());
        expected.extend(12u32.to_le_bytes());
        expected.extend(b"chunk_1.wasm");
        expected.extend(2u32.to_le_bytes());
        expected.extend(12u32.to_le_bytes());
        expected.extend(b"split_a.wasm");
        expected.extend(1u32.to_le_bytes());
        expected.extend([1, 2, 3]);
        assert_eq!(packed, expected);
    }
}
