//! Network interfaces and attachments (awsvpc tasks, trunked instances, EBS attachments):
//! modelled so that frames carrying them round-trip. Berth uses `ElasticNetworkInterface`
//! on a task of a PayloadMessage for awsvpc tasks.

use crate::frame::shape;

shape! {
    /// Server → agent: a network interface has been attached for a task; the agent waits up
    /// to `waitTimeoutMs` for it to appear and answers [`super::AckRequest`]
    /// (`ecs-agent/acs/session/attach_task_eni_responder.go`).
    pub struct AttachTaskNetworkInterfacesMessage {
        container_instance_arn: String,
        cluster_arn: String,
        task_arn: String,
        task_cluster_arn: String,
        generated_at: i64,
        message_id: String,
        wait_timeout_ms: i64,
        elastic_network_interfaces: Vec<ElasticNetworkInterface>,
    }
}

shape! {
    /// Server → agent: a network interface has been attached to the instance (not to one
    /// task). Reply [`super::AckRequest`].
    pub struct AttachInstanceNetworkInterfacesMessage {
        container_instance_arn: String,
        cluster_arn: String,
        generated_at: i64,
        message_id: String,
        wait_timeout_ms: i64,
        elastic_network_interfaces: Vec<ElasticNetworkInterface>,
    }
}

shape! {
    /// Server → agent: a resource (e.g. an EBS volume, `attachmentType` `EBSTaskAttach`) has
    /// been attached for a task. The agent requires parseable ARNs for `clusterArn`,
    /// `containerInstanceArn` and the attachment, then answers [`super::AckRequest`]
    /// (`ecs-agent/acs/session/attach_resource_responder.go`).
    pub struct ConfirmAttachmentMessage {
        container_instance_arn: String,
        cluster_arn: String,
        task_arn: String,
        task_cluster_arn: String,
        generated_at: i64,
        message_id: String,
        wait_timeout_ms: i64,
        attachment: Attachment,
    }
}

shape! {
    /// An elastic network interface. `interfaceAssociationProtocol` is `default`, `tunnel`,
    /// `veth` or `vlan`.
    pub struct ElasticNetworkInterface {
        name: String,
        mac_address: String,
        attachment_arn: String,
        ec2_id: String,
        index: i64,
        interface_association_protocol: String,
        interface_tunnel_properties: NetworkInterfaceTunnelProperties,
        interface_veth_properties: NetworkInterfaceVethProperties,
        interface_vlan_properties: NetworkInterfaceVlanProperties,
        ipv4_addresses: Vec<IPv4AddressAssignment>,
        ipv6_addresses: Vec<IPv6AddressAssignment>,
        domain_name: Vec<String>,
        domain_name_servers: Vec<String>,
        private_dns_name: String,
        subnet_gateway_ipv4_address: String,
        subnet_gateway_ipv6_address: String,
        /// Berth's extension (the ACS model has no such member; other agents ignore it):
        /// the subnet the interface is in, after which Berth's agent names the subnet's
        /// Docker network.
        subnet_id: String,
        /// Berth's extension: the interface's security groups' rules, source and
        /// destination groups resolved by the control plane to their members' addresses.
        /// The agent enforces them in the task's network namespace. Absent: no rules
        /// (a control plane without EC2 security groups).
        berth_firewall: Firewall,
    }
}

shape! {
    /// A network interface's security groups as addresses: what may come in, what may go
    /// out (Berth's extension).
    pub struct Firewall {
        ingress: Vec<FirewallRule>,
        egress: Vec<FirewallRule>,
    }
}

shape! {
    /// One permission: EC2's `IpProtocol` (`tcp`, `udp`, `icmp`, `-1` for all, or a
    /// protocol number), its port range (`fromPort`..`toPort`; absent or `-1`: every port),
    /// and the peers' CIDRs (a source group's members as `/32`s).
    pub struct FirewallRule {
        ip_protocol: String,
        from_port: i64,
        to_port: i64,
        cidrs: Vec<String>,
    }
}

shape! {
    /// A tunnelled interface (e.g. GENEVE).
    pub struct NetworkInterfaceTunnelProperties {
        tunnel_id: String,
        interface_ip_address: String,
    }
}

shape! {
    /// A veth pair's peer.
    pub struct NetworkInterfaceVethProperties {
        peer_interface: String,
    }
}

shape! {
    /// A VLAN on a trunk interface.
    pub struct NetworkInterfaceVlanProperties {
        vlan_id: String,
        trunk_interface_mac_address: String,
    }
}

shape! {
    /// An IPv4 address of an interface.
    pub struct IPv4AddressAssignment {
        private_address: String,
        primary: bool,
    }
}

shape! {
    /// An IPv6 address of an interface.
    pub struct IPv6AddressAssignment {
        address: String,
        primary: bool,
    }
}

shape! {
    /// A task attachment (e.g. an EBS volume) and its properties.
    pub struct Attachment {
        attachment_arn: String,
        attachment_type: String,
        attachment_properties: Vec<AttachmentProperty>,
    }
}

shape! {
    /// One name/value property of an [`Attachment`].
    pub struct AttachmentProperty {
        name: String,
        value: String,
    }
}

shape! {
    /// A device associated with some containers of a [`super::Task`]; `type` is
    /// `elastic-inference` or `gpu`.
    pub struct Association {
        name: String,
        #[serde(rename = "type")]
        kind: String,
        content: EncodedString,
        containers: Vec<String>,
    }
}

shape! {
    /// A string with its encoding, `identity` or `base64`.
    pub struct EncodedString {
        value: String,
        encoding: String,
    }
}
