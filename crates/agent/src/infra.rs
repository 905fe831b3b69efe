//! The awsvpc infra container ("pause" container): it holds an awsvpc task's network
//! namespace, attached to the subnet's Docker network with the task's address, and the task's
//! containers join it (`container:<id>`), so they share one address and reach each other on
//! localhost.
//!
//! Its image is built here, never pulled: `FROM scratch` plus a 129-byte static ELF written
//! below that only waits (`pause(2)` in a loop on x86-64, `ppoll` with no descriptors on
//! arm64). So the agent needs neither network access nor a helper binary on the host, and the
//! image costs nothing to build. As PID 1 the process ignores SIGTERM; it is stopped with a
//! zero timeout (SIGKILL), which loses nothing since it holds no state.

use std::collections::BTreeMap;

use berth_agent_protocol::acs::Task;
use berth_model::{InstallationId, LABEL_INSTALLATION};
use berth_runtime::{ContainerSpec, NetworkMode, NetworkSpec};

use crate::translate::{self, TaskEni};

/// The image tag; the version changes whenever the program or the Dockerfile does.
pub const PAUSE_IMAGE: &str = "berth/pause:1";
/// The infra container's `com.amazonaws.ecs.container-name` label, as the official agent
/// names its pause container; never a task definition's container name (`~` is not allowed).
pub const PAUSE_CONTAINER_NAME: &str = "~internal~ecs~pause";
/// Labels the agent puts on the networks it creates.
pub const LABEL_SUBNET: &str = "berth.subnet-id";

const DOCKERFILE: &str = "FROM scratch\nCOPY pause /pause\nENTRYPOINT [\"/pause\"]\n";

/// The Docker network of an installation's subnet: `berth-<installation>-<subnet id>`, so
/// installations sharing a Docker Engine never share a network.
pub fn network_name(installation: &InstallationId, subnet_id: &str) -> String {
    format!("berth-{installation}-{subnet_id}")
}

/// The network an awsvpc task's interface lives on.
pub fn network_spec(installation: &InstallationId, eni: &TaskEni) -> NetworkSpec {
    NetworkSpec {
        name: network_name(installation, &eni.subnet_id),
        subnet: eni.subnet_cidr.clone(),
        gateway: eni.gateway.clone(),
        labels: BTreeMap::from([
            (LABEL_SUBNET.to_owned(), eni.subnet_id.clone()),
            (LABEL_INSTALLATION.to_owned(), installation.to_string()),
        ]),
    }
}

/// The infra container of an awsvpc task: the pause image on the subnet's network with the
/// task's address and MAC, labelled like the task's containers so a restarted agent finds it.
pub fn infra_spec(
    task: &Task,
    eni: &TaskEni,
    docker_name: &str,
    cluster: &str,
    instance_arn: &str,
    installation: &InstallationId,
) -> ContainerSpec {
    ContainerSpec {
        name: Some(docker_name.to_owned()),
        image: PAUSE_IMAGE.to_owned(),
        network_mode: NetworkMode::Named(network_name(installation, &eni.subnet_id)),
        ipv4_address: Some(eni.ipv4_address.clone()),
        mac_address: Some(eni.mac_address.clone()).filter(|m| !m.is_empty()),
        labels: translate::ecs_labels(
            task,
            PAUSE_CONTAINER_NAME,
            cluster,
            instance_arn,
            installation,
        ),
        // The smallest limits Docker takes: it only waits.
        cpu_shares: Some(2),
        memory_mib: Some(6),
        ..ContainerSpec::default()
    }
}

/// The pause program for Docker's architecture name (`x86_64`, `aarch64`), as a static ELF
/// executable: one loadable segment holding the 64-byte ELF header, one 56-byte program
/// header and the code.
pub fn pause_program(architecture: &str) -> Option<Vec<u8>> {
    let (machine, code): (u16, Vec<u8>) = match architecture {
        "x86_64" | "amd64" => (
            0x3e,
            vec![
                0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
                0x0f, 0x05, // syscall
                0xeb, 0xf7, // jmp back to the mov
            ],
        ),
        "aarch64" | "arm64" => {
            let words: [u32; 7] = [
                0xd280_0000, // mov x0, #0   (fds = NULL)
                0xd280_0001, // mov x1, #0   (nfds = 0)
                0xd280_0002, // mov x2, #0   (no timeout)
                0xd280_0003, // mov x3, #0   (no signal mask)
                0xd280_0928, // mov x8, #73  (ppoll)
                0xd400_0001, // svc #0
                0x17ff_fffa, // b back to the first mov
            ];
            (0xb7, words.iter().flat_map(|w| w.to_le_bytes()).collect())
        }
        _ => return None,
    };
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let size = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(size as usize);
    // ELF header: 64-bit, little-endian, version 1, System V ABI.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry: the code
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers follow this header
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // header size
    elf.extend_from_slice(&56u16.to_le_bytes()); // program header size
    elf.extend_from_slice(&1u16.to_le_bytes()); // one program header
    elf.extend_from_slice(&[0; 6]); // section header size, count, names index
    // Program header: PT_LOAD, readable and executable, the whole file at BASE.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&code);
    Some(elf)
}

/// The build context of the pause image: a tar archive with the Dockerfile and the program.
pub fn build_context(architecture: &str) -> Option<Vec<u8>> {
    let program = pause_program(architecture)?;
    let mut tar = Vec::new();
    append_file(&mut tar, "Dockerfile", 0o644, DOCKERFILE.as_bytes());
    append_file(&mut tar, "pause", 0o755, &program);
    // Two zero blocks end the archive.
    tar.extend_from_slice(&[0; 1024]);
    Some(tar)
}

/// One regular file as a ustar header and its data padded to 512-byte blocks.
fn append_file(tar: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], u64::from(mode));
    octal(&mut header[108..116], 0); // uid
    octal(&mut header[116..124], 0); // gid
    octal(&mut header[124..136], data.len() as u64);
    octal(&mut header[136..148], 0); // mtime
    header[156] = b'0'; // regular file
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    tar.extend_from_slice(&header);
    tar.extend_from_slice(data);
    let padding = (512 - data.len() % 512) % 512;
    tar.extend(std::iter::repeat_n(0, padding));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_is_a_tar_of_the_dockerfile_and_the_program() {
        let tar = build_context("x86_64").unwrap();
        assert_eq!(tar.len() % 512, 0);
        let name = |offset: usize| {
            let field = &tar[offset..offset + 100];
            String::from_utf8(field.iter().take_while(|b| **b != 0).copied().collect()).unwrap()
        };
        assert_eq!(name(0), "Dockerfile");
        assert_eq!(&tar[257..262], b"ustar");
        // The checksum matches the header as tar computes it.
        let mut header = tar[..512].to_vec();
        let stored =
            u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, header.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert_eq!(name(1024), "pause");
        assert_eq!(&tar[1024 + 100..1024 + 107], b"0000755");
        assert!(build_context("mips").is_none());
    }

    #[test]
    fn the_program_is_an_elf_executable_for_the_architecture() {
        for (arch, machine) in [("x86_64", 0x3e), ("aarch64", 0xb7)] {
            let elf = pause_program(arch).unwrap();
            assert_eq!(&elf[..4], b"\x7fELF");
            assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), machine);
            let size = u64::from_le_bytes(elf[96..104].try_into().unwrap());
            assert_eq!(size, elf.len() as u64);
        }
    }

    /// On an x86-64 host the program really runs and waits until it is killed.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn the_program_waits_until_killed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause");
        std::fs::write(&path, pause_program("x86_64").unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&path).spawn().unwrap();
        // Still there after a moment (it would have crashed or exited at once).
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }

    #[test]
    fn a_subnets_network_is_named_after_its_installation_and_it() {
        let eni = TaskEni {
            attachment_arn: "arn".into(),
            eni_id: "eni-1".into(),
            mac_address: "02:42:0a:c0:03:07".into(),
            ipv4_address: "10.192.3.7".into(),
            subnet_id: "subnet-0abc".into(),
            subnet_cidr: "10.192.3.0/24".into(),
            gateway: "10.192.3.1".into(),
        };
        let installation: InstallationId = "inst000001".parse().unwrap();
        let spec = network_spec(&installation, &eni);
        assert_eq!(spec.name, "berth-inst000001-subnet-0abc");
        assert_eq!(spec.labels[LABEL_INSTALLATION], "inst000001");
        assert_eq!(spec.subnet, "10.192.3.0/24");
        assert_eq!(spec.gateway, "10.192.3.1");
    }
}
