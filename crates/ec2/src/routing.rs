//! Internet gateways and route tables, as records infrastructure tools create: gateways
//! attach to one VPC each; a route table belongs to a VPC, holds the `local` route to the
//! VPC's block and the routes added, and is associated with subnets (a VPC's main table
//! with the VPC itself). Nothing routes packets by them.

use berth_store::{Change, Op};
use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::errors::{dependency, igw_not_found, route_table_not_found};
use crate::filters::{Filter, Filtered, flag, matches, one};
use crate::keys::{Kind, new_id};
use crate::tag::Tag;
use crate::vpcs::Vpc;
use crate::{Ec2, Ec2Error, Ec2Scope, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternetGateway {
    pub id: String,
    pub owner_id: String,
    #[serde(default)]
    pub attachments: Vec<IgwAttachment>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgwAttachment {
    pub vpc_id: String,
}

impl InternetGateway {
    pub fn is_attached_to(&self, vpc_id: &str) -> bool {
        self.attachments.iter().any(|a| a.vpc_id == vpc_id)
    }
}

impl Filtered for InternetGateway {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(match name {
            "internet-gateway-id" => one(&self.id),
            "attachment.vpc-id" => self.attachments.iter().map(|a| a.vpc_id.clone()).collect(),
            "attachment.state" => self
                .attachments
                .iter()
                .map(|_| "available".into())
                .collect(),
            "owner-id" => one(&self.owner_id),
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub owner_id: String,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub associations: Vec<RouteTableAssociation>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub destination_cidr_block: String,
    /// `local` or an internet gateway's id.
    pub gateway_id: String,
    /// `CreateRouteTable` (the local route, the default VPC's) or `CreateRoute`.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableAssociation {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub main: bool,
}

impl RouteTable {
    /// A new VPC's main table: the local route, and one to `gateway` for everything else.
    pub(crate) fn main_for(vpc: &Vpc, gateway: Option<&str>) -> RouteTable {
        let mut table = RouteTable::new_in(vpc);
        table.associations.push(RouteTableAssociation {
            id: new_id("rtbassoc"),
            subnet_id: None,
            main: true,
        });
        if let Some(gateway) = gateway {
            table.routes.push(Route {
                destination_cidr_block: "0.0.0.0/0".into(),
                gateway_id: gateway.into(),
                origin: "CreateRouteTable".into(),
            });
        }
        table
    }

    fn new_in(vpc: &Vpc) -> RouteTable {
        RouteTable {
            id: new_id("rtb"),
            vpc_id: vpc.id.clone(),
            owner_id: vpc.owner_id.clone(),
            routes: vec![Route {
                destination_cidr_block: vpc.cidr_block.clone(),
                gateway_id: "local".into(),
                origin: "CreateRouteTable".into(),
            }],
            associations: Vec::new(),
            tags: Vec::new(),
        }
    }

    pub fn is_main(&self) -> bool {
        self.associations.iter().any(|a| a.main)
    }

    pub(crate) fn is_associated_with(&self, subnet_id: &str) -> bool {
        self.associations
            .iter()
            .any(|a| a.subnet_id.as_deref() == Some(subnet_id))
    }
}

impl Filtered for RouteTable {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let each = |f: fn(&RouteTableAssociation) -> Option<String>| {
            self.associations.iter().filter_map(f).collect::<Vec<_>>()
        };
        Some(match name {
            "route-table-id" => one(&self.id),
            "vpc-id" => one(&self.vpc_id),
            "owner-id" => one(&self.owner_id),
            "association.subnet-id" => each(|a| a.subnet_id.clone()),
            "association.route-table-association-id" => each(|a| Some(a.id.clone())),
            "association.main" => flag(self.is_main()),
            "route.gateway-id" => self.routes.iter().map(|r| r.gateway_id.clone()).collect(),
            "route.destination-cidr-block" => self
                .routes
                .iter()
                .map(|r| r.destination_cidr_block.clone())
                .collect(),
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

impl Ec2 {
    pub fn create_internet_gateway(
        &self,
        scope: &Ec2Scope,
        tags: Vec<Tag>,
    ) -> Result<InternetGateway> {
        let gateway = InternetGateway {
            id: new_id("igw"),
            owner_id: scope.account.clone(),
            attachments: Vec::new(),
            tags,
        };
        self.store().put(
            &scope.key(Kind::InternetGateway, &gateway.id),
            &berth_store::encode(&gateway),
        )?;
        Ok(gateway)
    }

    pub fn internet_gateway(&self, scope: &Ec2Scope, id: &str) -> Result<InternetGateway> {
        self.read(&scope.key(Kind::InternetGateway, id))?
            .ok_or_else(|| igw_not_found(id))
    }

    pub fn describe_internet_gateways(
        &self,
        scope: &Ec2Scope,
        ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<InternetGateway>> {
        let all: Vec<InternetGateway> = if ids.is_empty() {
            self.all(&scope.prefix(Kind::InternetGateway))?
        } else {
            ids.iter()
                .map(|id| self.internet_gateway(scope, id))
                .collect::<Result<_>>()?
        };
        let mut out = Vec::new();
        for g in all {
            if matches(filters, &g)? {
                out.push(g);
            }
        }
        Ok(out)
    }

    /// DeleteInternetGateway: refused while attached.
    pub fn delete_internet_gateway(&self, scope: &Ec2Scope, id: &str) -> Result<()> {
        let key = scope.key(Kind::InternetGateway, id);
        berth_store::update(
            self.store(),
            &key,
            |g: Option<InternetGateway>| -> Result<Change<InternetGateway>> {
                let g = g.ok_or_else(|| igw_not_found(id))?;
                if !g.attachments.is_empty() {
                    return Err(dependency("internetGateway", id));
                }
                Ok(Change::Delete)
            },
        )?;
        Ok(())
    }

    /// AttachInternetGateway: one VPC per gateway, one gateway per VPC.
    pub fn attach_internet_gateway(&self, scope: &Ec2Scope, id: &str, vpc_id: &str) -> Result<()> {
        self.internet_gateway(scope, id)?;
        self.under_vpc(scope, vpc_id, |vpc| {
            let mut gateway = self.internet_gateway(scope, id)?;
            if let Some(a) = gateway.attachments.first() {
                return Err(Ec2Error::AlreadyAssociated(format!(
                    "resource {id} is already attached to network {}",
                    a.vpc_id
                )));
            }
            let all: Vec<InternetGateway> = self.all(&scope.prefix(Kind::InternetGateway))?;
            if all.iter().any(|g| g.is_attached_to(&vpc.id)) {
                return Err(Ec2Error::AlreadyAssociated(format!(
                    "Network {} already has an internet gateway attached",
                    vpc.id
                )));
            }
            gateway.attachments.push(IgwAttachment {
                vpc_id: vpc.id.clone(),
            });
            let op = Op::put(
                scope.key(Kind::InternetGateway, id),
                berth_store::encode(&gateway),
            );
            Ok((vec![op], ()))
        })
    }

    /// DetachInternetGateway.
    pub fn detach_internet_gateway(&self, scope: &Ec2Scope, id: &str, vpc_id: &str) -> Result<()> {
        self.vpc(scope, vpc_id)?;
        let key = scope.key(Kind::InternetGateway, id);
        berth_store::update(
            self.store(),
            &key,
            |g: Option<InternetGateway>| -> Result<Change<InternetGateway>> {
                let mut g = g.ok_or_else(|| igw_not_found(id))?;
                if !g.is_attached_to(vpc_id) {
                    return Err(Ec2Error::GatewayNotAttached(format!(
                        "resource {id} is not attached to network {vpc_id}"
                    )));
                }
                g.attachments.retain(|a| a.vpc_id != vpc_id);
                Ok(Change::Put(g))
            },
        )?;
        Ok(())
    }

    pub fn create_route_table(
        &self,
        scope: &Ec2Scope,
        vpc_id: &str,
        tags: Vec<Tag>,
    ) -> Result<RouteTable> {
        self.under_vpc(scope, vpc_id, |vpc| {
            let mut table = RouteTable::new_in(vpc);
            table.tags = tags.clone();
            let op = Op::put(
                scope.key(Kind::RouteTable, &table.id),
                berth_store::encode(&table),
            );
            Ok((vec![op], table))
        })
    }

    pub fn route_table(&self, scope: &Ec2Scope, id: &str) -> Result<RouteTable> {
        self.read(&scope.key(Kind::RouteTable, id))?
            .ok_or_else(|| route_table_not_found(id))
    }

    pub fn describe_route_tables(
        &self,
        scope: &Ec2Scope,
        ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<RouteTable>> {
        let all: Vec<RouteTable> = if ids.is_empty() {
            self.all(&scope.prefix(Kind::RouteTable))?
        } else {
            ids.iter()
                .map(|id| self.route_table(scope, id))
                .collect::<Result<_>>()?
        };
        let mut out = Vec::new();
        for t in all {
            if matches(filters, &t)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// DeleteRouteTable: not a main table, nor one still associated with a subnet.
    pub fn delete_route_table(&self, scope: &Ec2Scope, id: &str) -> Result<()> {
        let key = scope.key(Kind::RouteTable, id);
        berth_store::update(
            self.store(),
            &key,
            |t: Option<RouteTable>| -> Result<Change<RouteTable>> {
                let t = t.ok_or_else(|| route_table_not_found(id))?;
                if !t.associations.is_empty() {
                    return Err(dependency("routeTable", id));
                }
                Ok(Change::Delete)
            },
        )?;
        Ok(())
    }

    /// One read-modify-write of a route table.
    fn change_route_table(
        &self,
        scope: &Ec2Scope,
        id: &str,
        mut change: impl FnMut(&mut RouteTable) -> Result<()>,
    ) -> Result<RouteTable> {
        let key = scope.key(Kind::RouteTable, id);
        let stored = berth_store::update(
            self.store(),
            &key,
            |t: Option<RouteTable>| -> Result<Change<RouteTable>> {
                let mut t = t.ok_or_else(|| route_table_not_found(id))?;
                change(&mut t)?;
                Ok(Change::Put(t))
            },
        )?;
        stored.ok_or_else(|| route_table_not_found(id))
    }

    /// CreateRoute to an internet gateway attached to the table's VPC.
    pub fn create_route(
        &self,
        scope: &Ec2Scope,
        table_id: &str,
        destination: &str,
        gateway_id: &str,
    ) -> Result<()> {
        let cidr = Cidr::parse(destination, "destinationCidrBlock")?;
        let table = self.route_table(scope, table_id)?;
        let gateway = self.internet_gateway(scope, gateway_id)?;
        if !gateway.is_attached_to(&table.vpc_id) {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "route table {table_id} and network gateway {gateway_id} belong to different networks"
            )));
        }
        self.change_route_table(scope, table_id, |t| {
            if t.routes
                .iter()
                .any(|r| r.destination_cidr_block == cidr.to_string())
            {
                return Err(Ec2Error::RouteAlreadyExists(format!(
                    "The route identified by {cidr} already exists."
                )));
            }
            t.routes.push(Route {
                destination_cidr_block: cidr.to_string(),
                gateway_id: gateway_id.into(),
                origin: "CreateRoute".into(),
            });
            Ok(())
        })?;
        Ok(())
    }

    /// DeleteRoute: not the local route.
    pub fn delete_route(&self, scope: &Ec2Scope, table_id: &str, destination: &str) -> Result<()> {
        self.change_route_table(scope, table_id, |t| {
            let at = t
                .routes
                .iter()
                .position(|r| r.destination_cidr_block == destination)
                .ok_or_else(|| {
                    Ec2Error::RouteNotFound(format!(
                        "no route with destination-cidr-block {destination} in route table {table_id}"
                    ))
                })?;
            if t.routes[at].gateway_id == "local" {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "cannot remove local route {destination} in route table {table_id}"
                )));
            }
            t.routes.remove(at);
            Ok(())
        })?;
        Ok(())
    }

    /// AssociateRouteTable with a subnet of the same VPC that no other table holds: the
    /// association's id.
    pub fn associate_route_table(
        &self,
        scope: &Ec2Scope,
        table_id: &str,
        subnet_id: &str,
    ) -> Result<String> {
        let table = self.route_table(scope, table_id)?;
        let subnet = self.subnet(scope, subnet_id)?;
        if subnet.vpc_id != table.vpc_id {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Route table {table_id} and subnet {} belong to different networks",
                subnet.id
            )));
        }
        let id = new_id("rtbassoc");
        self.under_vpc(scope, &table.vpc_id, |_| {
            let tables: Vec<RouteTable> = self.all(&scope.prefix(Kind::RouteTable))?;
            if tables.iter().any(|t| t.is_associated_with(&subnet.id)) {
                return Err(Ec2Error::AlreadyAssociated(format!(
                    "the specified association for route table {table_id} conflicts with an existing association"
                )));
            }
            let mut table = tables
                .into_iter()
                .find(|t| t.id == table_id)
                .ok_or_else(|| route_table_not_found(table_id))?;
            table.associations.push(RouteTableAssociation {
                id: id.clone(),
                subnet_id: Some(subnet.id.clone()),
                main: false,
            });
            let op = Op::put(
                scope.key(Kind::RouteTable, &table.id),
                berth_store::encode(&table),
            );
            Ok((vec![op], id.clone()))
        })
    }

    /// Whether a route table is associated with the subnet.
    pub(crate) fn is_subnet_associated(&self, scope: &Ec2Scope, subnet_id: &str) -> Result<bool> {
        let tables: Vec<RouteTable> = self.all(&scope.prefix(Kind::RouteTable))?;
        Ok(tables.iter().any(|t| t.is_associated_with(subnet_id)))
    }

    /// DisassociateRouteTable: not a main table's association with its VPC.
    pub fn disassociate_route_table(&self, scope: &Ec2Scope, association_id: &str) -> Result<()> {
        let tables: Vec<RouteTable> = self.all(&scope.prefix(Kind::RouteTable))?;
        let table = tables
            .iter()
            .find(|t| t.associations.iter().any(|a| a.id == association_id))
            .ok_or_else(|| {
                Ec2Error::AssociationNotFound(format!(
                    "The association ID '{association_id}' does not exist"
                ))
            })?;
        self.change_route_table(scope, &table.id, |t| {
            let at = t
                .associations
                .iter()
                .position(|a| a.id == association_id)
                .ok_or_else(|| {
                    Ec2Error::AssociationNotFound(format!(
                        "The association ID '{association_id}' does not exist"
                    ))
                })?;
            if t.associations[at].main {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "cannot disassociate the main route table association {association_id}"
                )));
            }
            t.associations.remove(at);
            Ok(())
        })?;
        Ok(())
    }
}
