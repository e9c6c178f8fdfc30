//! The README's configuration table and `.env.example` document every variable Nest reads.

use server::config::VARIABLES;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
}

#[test]
fn every_configuration_variable_is_in_the_readme_table() {
    let readme = read("README.md");
    for var in VARIABLES {
        assert!(
            readme.contains(&format!("| `{var}` |")),
            "README.md has no table row for {var}"
        );
    }
}

#[test]
fn every_configuration_variable_is_in_the_env_example() {
    let example = read(".env.example");
    for var in VARIABLES {
        assert!(
            example.contains(&format!("{var}=")),
            ".env.example does not mention {var}"
        );
    }
}
