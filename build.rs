//! Rebuilds `pipeline` when a file in a folder it embeds changes. `include_dir!` does not tell Cargo about
//! the files it reads, so without this a new or edited role, playbook, template or example app would not
//! reach the binary until some Rust file changed. Cargo scans a directory given to `rerun-if-changed`
//! recursively for any modification (including added and removed files).

fn main() {
    for dir in ["roles", "playbooks", "templates", "examples"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
