//! What EC2 does with a VPC as a whole: CreateVpc makes its default security group and main
//! route table in the same transaction; DeleteVpc is refused while anything of the user's is
//! left in it, and takes those two with it.

use berth_store::{Change, Op, Update};

use crate::cidr::{Cidr, VPC_PREFIXES};
use crate::errors::{dependency, invalid_value, vpc_not_found};
use crate::groups::SecurityGroup;
use crate::keys::{Kind, new_id};
use crate::routing::{InternetGateway, RouteTable};
use crate::subnets::Subnet;
use crate::tag::Tag;
use crate::vpcs::Vpc;
use crate::{Ec2, Ec2Error, Ec2Scope, Result};

impl Ec2 {
    /// CreateVpc: the VPC, its default security group and its main route table.
    pub fn create_vpc(
        &self,
        scope: &Ec2Scope,
        cidr_block: &str,
        instance_tenancy: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<Vpc> {
        let cidr = Cidr::parse(cidr_block, "cidrBlock")?;
        if !VPC_PREFIXES.contains(&cidr.prefix) {
            return Err(Ec2Error::VpcRange(format!(
                "The CIDR '{cidr_block}' is invalid."
            )));
        }
        let tenancy = instance_tenancy.unwrap_or("default");
        if !matches!(tenancy, "default" | "dedicated") {
            return Err(invalid_value(
                tenancy,
                "instanceTenancy",
                "Valid values are default, dedicated.",
            ));
        }
        let vpc = Vpc {
            id: new_id("vpc"),
            cidr_block: cidr.to_string(),
            cidr_block_association_id: new_id("vpc-cidr-assoc"),
            owner_id: scope.account.clone(),
            is_default: false,
            instance_tenancy: tenancy.to_string(),
            enable_dns_support: true,
            enable_dns_hostnames: false,
            tags,
            generation: 0,
        };
        let (ops, _) = self.vpc_companions(scope, &vpc, None);
        let key = scope.key(Kind::Vpc, &vpc.id);
        let mut update = Update::from(Change::Put(vpc.clone()));
        update.ops = ops;
        berth_store::update(self.store(), &key, |_: Option<Vpc>| {
            Ok::<_, Ec2Error>(update.clone())
        })?;
        Ok(vpc)
    }

    /// What EC2 makes with every VPC: its default security group (and the name's index)
    /// and its main route table (with a route to `gateway` when given: the default VPC's);
    /// and the default group's id.
    pub(crate) fn vpc_companions(
        &self,
        scope: &Ec2Scope,
        vpc: &Vpc,
        gateway: Option<&str>,
    ) -> (Vec<Op>, String) {
        let group = SecurityGroup::default_for(scope, &vpc.id);
        let table = RouteTable::main_for(vpc, gateway);
        let ops = vec![
            Op::put(
                scope.key(Kind::SecurityGroup, &group.id),
                berth_store::encode(&group),
            ),
            Op::put(
                scope.group_name_key(&vpc.id, &group.name),
                group.id.clone().into_bytes(),
            ),
            Op::put(
                scope.key(Kind::RouteTable, &table.id),
                berth_store::encode(&table),
            ),
        ];
        (ops, group.id)
    }

    /// DeleteVpc: refused while it holds subnets, security groups other than its default
    /// one, route tables other than its main one, or an attached internet gateway; those
    /// two go with it.
    pub fn delete_vpc(&self, scope: &Ec2Scope, id: &str) -> Result<()> {
        let key = scope.key(Kind::Vpc, id);
        berth_store::update(
            self.store(),
            &key,
            |vpc: Option<Vpc>| -> Result<Update<Vpc>> {
                let vpc = vpc.ok_or_else(|| vpc_not_found(id))?;
                let subnets: Vec<Subnet> = self.all(&scope.prefix(Kind::Subnet))?;
                let groups: Vec<SecurityGroup> = self.all(&scope.prefix(Kind::SecurityGroup))?;
                let tables: Vec<RouteTable> = self.all(&scope.prefix(Kind::RouteTable))?;
                let gateways: Vec<InternetGateway> =
                    self.all(&scope.prefix(Kind::InternetGateway))?;
                let busy = subnets.iter().any(|s| s.vpc_id == vpc.id)
                    || groups.iter().any(|g| g.vpc_id == vpc.id && !g.is_default())
                    || tables.iter().any(|t| t.vpc_id == vpc.id && !t.is_main())
                    || gateways.iter().any(|g| g.is_attached_to(&vpc.id));
                if busy {
                    return Err(dependency("vpc", id));
                }
                let mut update = Update::from(Change::<Vpc>::Delete);
                for group in groups.iter().filter(|g| g.vpc_id == vpc.id) {
                    update = update
                        .also(Op::delete(scope.key(Kind::SecurityGroup, &group.id)))
                        .also(Op::delete(scope.group_name_key(&vpc.id, &group.name)));
                }
                for table in tables.iter().filter(|t| t.vpc_id == vpc.id) {
                    update = update.also(Op::delete(scope.key(Kind::RouteTable, &table.id)));
                }
                Ok(update)
            },
        )?;
        Ok(())
    }
}
