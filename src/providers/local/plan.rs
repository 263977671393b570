//! Pure decisions of the local provider: names of machine-wide resources, address allocation, the subnet
//! check against the machine's routes, the base image recipe, and small parsers. No I/O here.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Prefix of every host-side veth interface the provider creates (`plv<slot>`).
pub const VETH_PREFIX: &str = "plv";
/// Prefix of network namespaces and nspawn machine names (`pipeline-<env>-<host>`).
pub const NAME_PREFIX: &str = "pipeline";
/// Longest environment or host name accepted (keeps machine names and paths short).
pub const MAX_NAME: usize = 24;

/// Checks an environment or host name: lowercase letters, digits and `-`, starting with a letter.
/// `what` is "environment" or "host" for the message.
pub fn validate_name(what: &str, name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts_ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars || !starts_ok || name.ends_with('-') {
        return Err(format!(
            "invalid {what} name `{name}`: use 1 to {MAX_NAME} lowercase letters, digits and `-`, starting with a letter and not ending with `-`"
        ));
    }
    Ok(())
}

/// The names one host's machine-wide resources get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNames {
    /// nspawn machine name and network namespace name: `pipeline-<env>-<host>`.
    pub machine: String,
    /// Host-side veth interface (at most 15 characters): `plv<slot>`.
    pub veth: String,
}

pub fn host_names(environment: &str, host: &str, slot: u32) -> HostNames {
    HostNames {
        machine: format!("{NAME_PREFIX}-{environment}-{host}"),
        veth: format!("{VETH_PREFIX}{slot}"),
    }
}

/// The nftables table (family `ip`) holding one environment's NAT rule.
pub fn nft_table(environment: &str) -> String {
    format!("{NAME_PREFIX}_{}", environment.replace('-', "_"))
}

/// An IPv4 network `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n` (or a bare address as /32); the host bits must be zero.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a,
                p.parse::<u8>()
                    .map_err(|_| format!("invalid prefix length in `{s}`"))?,
            ),
            None => (s, 32),
        };
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("invalid IPv4 address in `{s}`"))?;
        if prefix > 32 {
            return Err(format!("prefix length above 32 in `{s}`"));
        }
        let net = Subnet { addr, prefix };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(format!(
                "`{s}` has host bits set; did you mean {}/{prefix}?",
                Ipv4Addr::from(u32::from(addr) & net.mask())
            ));
        }
        Ok(net)
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let common = self.prefix.min(other.prefix);
        let m = if common == 0 {
            0
        } else {
            u32::MAX << (32 - common)
        };
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// How many /30 point-to-point links (one per host) fit.
    pub fn slots(&self) -> u32 {
        if self.prefix > 30 {
            0
        } else {
            1u32 << (30 - self.prefix)
        }
    }

    /// The link of `slot`: (machine-side gateway address, container address); a /30 each.
    pub fn link(&self, slot: u32) -> (Ipv4Addr, Ipv4Addr) {
        let base = u32::from(self.addr) + slot * 4;
        (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// FNV-1a, 64 bit: a hash that stays the same across Rust versions and machines (used for slots and
/// the base image recipe, which must be stable across runs).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Picks the link slot of (environment, host): a hash of the pair, so the same host gets the same IP on
/// every run, moved to the next free slot only when another host already holds it. `None` when full.
pub fn allocate_slot(
    environment: &str,
    host: &str,
    slots: u32,
    taken: &BTreeSet<u32>,
) -> Option<u32> {
    if slots == 0 || taken.len() as u64 >= u64::from(slots) {
        return None;
    }
    let start = (fnv1a(format!("{environment}/{host}").as_bytes()) % u64::from(slots)) as u32;
    (0..slots)
        .map(|i| (start + i) % slots)
        .find(|s| !taken.contains(s))
}

/// One route of the machine, as `ip -j route show table all` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: String,
    pub dev: Option<String>,
}

/// Parses `ip -j -4 route show table all` output.
pub fn parse_routes(json: &str) -> Result<Vec<Route>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("unexpected `ip -j route` output: {e}"))?;
    let arr = v
        .as_array()
        .ok_or("unexpected `ip -j route` output: not a list")?;
    Ok(arr
        .iter()
        .filter_map(|r| {
            Some(Route {
                dst: r.get("dst")?.as_str()?.to_string(),
                dev: r.get("dev").and_then(|d| d.as_str()).map(str::to_string),
            })
        })
        .collect())
}

/// The first machine route (other than the default route and the provider's own veth routes) that
/// overlaps `subnet`, if any.
pub fn colliding_route<'a>(subnet: &Subnet, routes: &'a [Route]) -> Option<&'a Route> {
    routes.iter().find(|r| {
        if r.dst == "default" || r.dev.as_deref().is_some_and(is_own_veth) {
            return false;
        }
        Subnet::parse(&r.dst)
            .or_else(|_| {
                // `ip` prints host routes in the local table with the address only; non-network
                // forms (e.g. with host bits) are compared as the address they name.
                r.dst
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .parse::<Ipv4Addr>()
                    .map(|a| Subnet {
                        addr: a,
                        prefix: 32,
                    })
            })
            .is_ok_and(|net| net.overlaps(subnet))
    })
}

fn is_own_veth(dev: &str) -> bool {
    dev.strip_prefix(VETH_PREFIX)
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Nameserver addresses in a resolv.conf text.
pub fn nameservers(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next().map(str::to_string))?
        })
        .collect()
}

/// Picks the resolv.conf the hosts get: the machine's `/etc/resolv.conf`, unless it only points at a
/// loopback stub resolver (which the hosts cannot reach from their own network namespace); then the
/// upstream list systemd-resolved keeps. `None` when neither has a usable nameserver.
pub fn choose_resolv_conf(etc: &str, resolved_upstream: Option<&str>) -> Option<String> {
    let usable = |text: &str| {
        nameservers(text)
            .iter()
            .any(|ns| ns.parse::<Ipv4Addr>().is_ok_and(|a| !a.is_loopback()))
    };
    if usable(etc) {
        return Some(strip_loopback(etc));
    }
    resolved_upstream.filter(|t| usable(t)).map(strip_loopback)
}

fn strip_loopback(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())))
        })
        .flat_map(|l| [l, "\n"])
        .collect()
}

/// The PEM certificate blocks of a CA bundle, each normalized to `-----BEGIN…END-----\n`.
pub fn pem_blocks(bundle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in bundle.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            cur = Some(String::new());
        }
        if let Some(c) = cur.as_mut() {
            c.push_str(line);
            c.push('\n');
        }
        if line == "-----END CERTIFICATE-----" {
            if let Some(c) = cur.take() {
                out.push(c);
            }
        }
    }
    out
}

/// Certificates the machine trusts that the Debian base does not (a company or egress-proxy CA, say):
/// the hosts must trust them too, or TLS to PyPI and npm fails where the machine's own works.
pub fn extra_cas(machine_bundle: &str, base_bundle: &str) -> Vec<String> {
    let base: BTreeSet<String> = pem_blocks(base_bundle).into_iter().collect();
    let mut seen = BTreeSet::new();
    pem_blocks(machine_bundle)
        .into_iter()
        .filter(|c| !base.contains(c) && seen.insert(c.clone()))
        .collect()
}

/// What the base root filesystem is built from; its hash names the cached image, so changing any part
/// (or [`RECIPE_VERSION`], bumped when the build steps change) builds a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub suite: String,
    pub mirror: String,
    /// Installed by debootstrap (`--include`): what every image has.
    pub packages: Vec<String>,
    /// `extra_packages`: installed afterwards with apt-get in a chroot (apt resolves their dependencies).
    pub extra: Vec<String>,
}

/// Bump when the steps that turn a debootstrap tree into the base image change.
pub const RECIPE_VERSION: u32 = 2;

/// Packages every base image has: what Ansible and these hosts need.
pub const BASE_PACKAGES: &[&str] = &[
    "ca-certificates",
    "dbus",
    "iproute2",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "systemd-sysv",
];

impl Recipe {
    /// The text hashed and stored beside the image (readable: `cat base-*/recipe.txt`).
    pub fn describe(&self) -> String {
        let mut pkgs = self.packages.clone();
        pkgs.sort();
        pkgs.dedup();
        let mut text = format!(
            "recipe-version {RECIPE_VERSION}\nsuite {}\nmirror {}\nvariant minbase\npackages {}\n",
            self.suite,
            self.mirror,
            pkgs.join(",")
        );
        // No line without extras: the image of the default recipe keeps its id (and its cache).
        let mut extra = self.extra.clone();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            text.push_str(&format!("apt-get install {}\n", extra.join(",")));
        }
        text
    }

    /// Short id naming the image directory: `base-<suite>-<hash>`.
    pub fn id(&self) -> String {
        format!(
            "base-{}-{:012x}",
            self.suite,
            fnv1a(self.describe().as_bytes()) & 0xffff_ffff_ffff
        )
    }

    /// `--include=` list for debootstrap.
    pub fn include_list(&self) -> String {
        let mut pkgs = self.packages.clone();
        pkgs.sort();
        pkgs.dedup();
        pkgs.join(",")
    }
}

/// Parses a memory limit such as `512M`, `2G` or `1073741824` into bytes.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let unit = t[i..].trim_end_matches(['b', 'B']).to_ascii_uppercase();
            let mult = match unit.as_str() {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("invalid memory limit `{s}`: use e.g. 512M or 2G")),
            };
            (&t[..i], mult)
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid memory limit `{s}`: use e.g. 512M or 2G"))?;
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("memory limit `{s}` is too large"))?;
    if bytes < (64 << 20) {
        return Err(format!(
            "memory limit `{s}` is below 64M, too little to boot systemd and sshd"
        ));
    }
    Ok(bytes)
}

/// Whether `cmdline` (NUL-separated argv from /proc) is a systemd-nspawn running machine `machine`.
pub fn is_nspawn_of(cmdline: &[u8], machine: &str) -> bool {
    let args: Vec<&[u8]> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    let Some(first) = args.first() else {
        return false;
    };
    if !first.ends_with(b"systemd-nspawn") {
        return false;
    }
    let long = format!("--machine={machine}");
    args.windows(2)
        .any(|w| (w[0] == b"-M" || w[0] == b"--machine") && w[1] == machine.as_bytes())
        || args.contains(&long.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_with_a_message_saying_what_is_allowed() {
        assert!(validate_name("host", "itrust").is_ok());
        assert!(validate_name("environment", "dev-local2").is_ok());
        for bad in ["", "Prod", "1x", "a_b", "a-", &"x".repeat(MAX_NAME + 1)] {
            let err = validate_name("host", bad).unwrap_err();
            assert!(err.contains("lowercase letters"), "{bad}: {err}");
        }
    }

    #[test]
    fn resource_names_fit_linux_limits_and_differ_per_environment() {
        let a = host_names("e2e", "itrust", 16383);
        assert_eq!(a.machine, "pipeline-e2e-itrust");
        assert_eq!(a.veth, "plv16383");
        assert!(a.veth.len() <= 15);
        let longest = "a".repeat(MAX_NAME);
        assert!(host_names(&longest, &longest, 4_194_303).veth.len() <= 15);
        assert_ne!(nft_table("dev-a"), nft_table("dev-b"));
        assert_eq!(nft_table("dev-a"), "pipeline_dev_a");
    }

    #[test]
    fn subnet_parses_checks_host_bits_and_splits_into_slash_30_links() {
        let s = Subnet::parse("10.213.0.0/16").unwrap();
        assert_eq!(s.slots(), 16384);
        assert_eq!(
            s.link(0),
            ("10.213.0.1".parse().unwrap(), "10.213.0.2".parse().unwrap())
        );
        assert_eq!(
            s.link(16383),
            (
                "10.213.255.253".parse().unwrap(),
                "10.213.255.254".parse().unwrap()
            )
        );
        assert!(s.contains("10.213.9.9".parse().unwrap()));
        assert!(!s.contains("10.214.0.1".parse().unwrap()));
        let err = Subnet::parse("10.213.0.1/16").unwrap_err();
        assert!(err.contains("10.213.0.0/16"), "{err}");
        assert!(Subnet::parse("10.0.0.0/33").is_err());
        assert_eq!(Subnet::parse("10.0.0.0/31").unwrap().slots(), 0);
    }

    #[test]
    fn slot_is_stable_for_a_host_and_moves_only_when_taken() {
        let none = BTreeSet::new();
        let a = allocate_slot("prod", "itrust", 16384, &none).unwrap();
        assert_eq!(allocate_slot("prod", "itrust", 16384, &none), Some(a));
        assert_ne!(allocate_slot("e2e", "itrust", 16384, &none), Some(a));
        let taken: BTreeSet<u32> = [a].into();
        assert_eq!(
            allocate_slot("prod", "itrust", 16384, &taken),
            Some((a + 1) % 16384)
        );
    }

    #[test]
    fn slot_allocation_wraps_around_and_reports_a_full_subnet() {
        let taken: BTreeSet<u32> = [0, 1, 2].into();
        assert_eq!(allocate_slot("x", "y", 4, &taken), Some(3));
        let full: BTreeSet<u32> = [0, 1, 2, 3].into();
        assert_eq!(allocate_slot("x", "y", 4, &full), None);
        assert_eq!(allocate_slot("x", "y", 0, &BTreeSet::new()), None);
    }

    #[test]
    fn routes_overlapping_the_subnet_are_found_but_default_and_own_veths_are_not() {
        let json = r#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},
            {"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel"},
            {"dst":"10.213.0.0/30","dev":"plv0"},
            {"type":"local","dst":"10.213.0.1","dev":"plv0","table":"local"},
            {"dst":"172.17.0.0/16","dev":"docker0"}]"#;
        let routes = parse_routes(json).unwrap();
        assert_eq!(routes.len(), 5);
        let ours = Subnet::parse("10.213.0.0/16").unwrap();
        assert_eq!(colliding_route(&ours, &routes), None);
        let docker = Subnet::parse("172.16.0.0/12").unwrap();
        assert_eq!(
            colliding_route(&docker, &routes).unwrap().dev.as_deref(),
            Some("docker0")
        );
        let lan = Subnet::parse("192.0.2.128/25").unwrap();
        assert_eq!(colliding_route(&lan, &routes).unwrap().dst, "192.0.2.0/24");
    }

    #[test]
    fn resolv_conf_skips_loopback_stub_for_the_upstream_list() {
        let stub = "nameserver 127.0.0.53\noptions edns0\n";
        let upstream = "nameserver 10.0.0.2\nsearch lan\n";
        assert_eq!(
            choose_resolv_conf(stub, Some(upstream)).as_deref(),
            Some(upstream)
        );
        let plain = "nameserver 10.255.255.53\n";
        assert_eq!(choose_resolv_conf(plain, None).as_deref(), Some(plain));
        let mixed = "nameserver 127.0.0.1\nnameserver 9.9.9.9\n";
        assert_eq!(
            choose_resolv_conf(mixed, None).as_deref(),
            Some("nameserver 9.9.9.9\n")
        );
        assert_eq!(choose_resolv_conf(stub, None), None);
    }

    #[test]
    fn extra_cas_are_the_machine_certificates_missing_from_the_base() {
        let a = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let b = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
        let machine = format!("# comment\n{a}{b}{b}");
        assert_eq!(extra_cas(&machine, a), vec![b.to_string()]);
        assert!(extra_cas(a, &machine).is_empty());
    }

    #[test]
    fn recipe_id_changes_with_mirror_or_packages_but_not_package_order() {
        let r = Recipe {
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            packages: vec!["python3".into(), "dbus".into()],
            extra: Vec::new(),
        };
        // The default recipe's text (and so the id of every image built so far) stays as it was.
        assert_eq!(
            r.describe(),
            "recipe-version 2\nsuite bookworm\nmirror http://deb.debian.org/debian\nvariant minbase\npackages dbus,python3\n"
        );
        let mut reordered = r.clone();
        reordered.packages.reverse();
        assert_eq!(r.id(), reordered.id());
        assert!(r.id().starts_with("base-bookworm-"));
        let mut other_mirror = r.clone();
        other_mirror.mirror = "http://ftp.de.debian.org/debian".into();
        assert_ne!(r.id(), other_mirror.id());
        let mut more = r.clone();
        more.packages.push("curl".into());
        assert_ne!(r.id(), more.id());
        assert_eq!(r.include_list(), "dbus,python3");
        let mut extra = r.clone();
        extra.extra = vec!["npm".into(), "nodejs".into()];
        let mut extra_reordered = extra.clone();
        extra_reordered.extra.reverse();
        assert_ne!(r.id(), extra.id());
        assert_eq!(extra.id(), extra_reordered.id());
        assert_eq!(
            extra.include_list(),
            "dbus,python3",
            "extras are not for debootstrap"
        );
        assert!(extra.describe().ends_with("apt-get install nodejs,npm\n"));
    }

    #[test]
    fn memory_limits_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_memory("512M").unwrap(), 512 << 20);
        assert_eq!(parse_memory("2G").unwrap(), 2 << 30);
        assert_eq!(parse_memory("2gb").unwrap(), 2 << 30);
        assert_eq!(parse_memory("1073741824").unwrap(), 1 << 30);
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("2X").is_err());
        assert!(parse_memory("1M").unwrap_err().contains("below 64M"));
    }

    #[test]
    fn nspawn_processes_are_recognized_by_machine_name_only() {
        let cmd = b"/usr/bin/systemd-nspawn\0-D\0/x\0--boot\0-M\0pipeline-e2e-itrust\0";
        assert!(is_nspawn_of(cmd, "pipeline-e2e-itrust"));
        assert!(!is_nspawn_of(cmd, "pipeline-e2e-itrus"));
        assert!(is_nspawn_of(
            b"systemd-nspawn\0--machine=pipeline-a-b\0",
            "pipeline-a-b"
        ));
        assert!(!is_nspawn_of(b"bash\0-M\0pipeline-a-b\0", "pipeline-a-b"));
        assert!(!is_nspawn_of(b"", "pipeline-a-b"));
    }
}
