//! A host's network: its namespace and veth pair, the environment's nftables NAT table, and IPv4
//! forwarding (saved before it is turned on, restored by the last `down`).

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use super::{remove_file, write_file};
use crate::process::Cmd;
use crate::providers::local::plan::Subnet;
use crate::providers::local::state::HostRecord;
use crate::providers::local::Error;

pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

pub fn delete_netns(name: &str) -> Result<(), Error> {
    if netns_exists(name) {
        Cmd::new(format!("delete network namespace {name}"), "ip")
            .args(["netns", "delete", name])
            .run()?;
    }
    Ok(())
}

pub fn delete_link(name: &str) -> Result<(), Error> {
    if !link_exists(name) {
        return Ok(());
    }
    // Deleting the namespace removes its veth pair asynchronously: the link may vanish under us.
    match Cmd::new(format!("delete network interface {name}"), "ip")
        .args(["link", "delete", name])
        .run()
    {
        Err(_) if !link_exists(name) => Ok(()),
        other => other.map(|_| ()).map_err(Error::from),
    }
}

/// Makes the host's network namespace and veth pair from scratch: `<veth>` on the machine with the
/// gateway address, `host0` inside with the host's address and a default route through the gateway.
pub fn create_network(h: &HostRecord) -> Result<(), Error> {
    delete_netns(&h.machine)?;
    delete_link(&h.veth)?;
    let ip = |action: &str, args: &[&str]| -> Result<(), Error> {
        Cmd::new(format!("{action} for host {}", h.name), "ip")
            .args(args)
            .run()?;
        Ok(())
    };
    let gw = format!("{}/30", h.gateway);
    let addr = format!("{}/30", h.ip);
    let ns = h.machine.as_str();
    ip("create the network namespace", &["netns", "add", ns])?;
    ip(
        "create the veth pair",
        &[
            "link", "add", &h.veth, "type", "veth", "peer", "name", "host0", "netns", ns,
        ],
    )?;
    ip(
        "address the machine end",
        &["addr", "add", &gw, "dev", &h.veth],
    )?;
    ip("bring up the machine end", &["link", "set", &h.veth, "up"])?;
    ip(
        "address the host end",
        &["-n", ns, "addr", "add", &addr, "dev", "host0"],
    )?;
    ip(
        "bring up the host end",
        &["-n", ns, "link", "set", "host0", "up"],
    )?;
    ip("bring up loopback", &["-n", ns, "link", "set", "lo", "up"])?;
    ip(
        "add the default route",
        &[
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &h.gateway.to_string(),
        ],
    )?;
    Ok(())
}

/// The nftables script that (re)defines an environment's table: masquerade traffic from its hosts to
/// anything outside the sandbox subnet (traffic between hosts keeps its source address).
pub fn nft_script(table: &str, subnet: &Subnet, ips: &[Ipv4Addr]) -> String {
    let set = ips
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let rule = if ips.is_empty() {
        String::new()
    } else {
        format!("    ip saddr {{ {set} }} ip daddr != {subnet} masquerade\n")
    };
    format!(
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{rule}  }}\n}}\n"
    )
}

pub fn nft_apply(script: &str, table: &str) -> Result<(), Error> {
    Cmd::new(format!("load nftables table {table}"), "nft")
        .args(["-f", "-"])
        .stdin_bytes(script)
        .run()?;
    Ok(())
}

pub fn nft_table_exists(table: &str) -> Result<bool, Error> {
    Ok(Cmd::new("list nftables tables", "nft")
        .args(["list", "tables", "ip"])
        .run()?
        .stdout
        .lines()
        .any(|l| l.trim() == format!("table ip {table}")))
}

pub fn nft_delete(table: &str) -> Result<(), Error> {
    if nft_table_exists(table)? {
        Cmd::new(format!("delete nftables table {table}"), "nft")
            .args(["delete", "table", "ip", table])
            .run()?;
    }
    Ok(())
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Turns on IPv4 forwarding, first saving the previous value in `saved` (once) so the last `down`
/// can put it back.
pub fn enable_forwarding(saved: &Path) -> Result<(), Error> {
    let now = fs::read_to_string(IP_FORWARD).map_err(|e| Error::io("read ip_forward", e))?;
    if !saved.exists() {
        write_file(saved, now.trim().as_bytes(), 0o600)?;
    }
    if now.trim() != "1" {
        fs::write(IP_FORWARD, "1").map_err(|e| Error::io("enable net.ipv4.ip_forward", e))?;
    }
    Ok(())
}

/// Restores the ip_forward value saved by [`enable_forwarding`] and forgets it.
pub fn restore_forwarding(saved: &Path) -> Result<(), Error> {
    let Ok(value) = fs::read_to_string(saved) else {
        return Ok(());
    };
    fs::write(IP_FORWARD, value.trim()).map_err(|e| Error::io("restore net.ipv4.ip_forward", e))?;
    remove_file(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_script_replaces_the_table_and_masquerades_only_outbound_traffic() {
        let subnet = Subnet::parse("10.213.0.0/16").unwrap();
        let s = nft_script(
            "pipeline_e2e",
            &subnet,
            &["10.213.0.2".parse().unwrap(), "10.213.0.6".parse().unwrap()],
        );
        assert!(s.starts_with("table ip pipeline_e2e\ndelete table ip pipeline_e2e\n"));
        assert!(
            s.contains("ip saddr { 10.213.0.2, 10.213.0.6 } ip daddr != 10.213.0.0/16 masquerade")
        );
        assert!(!nft_script("t", &subnet, &[]).contains("masquerade"));
    }
}
