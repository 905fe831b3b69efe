//! EC2's errors: each variant is one of EC2's codes, carrying EC2's message.

use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    #[error("{0}")]
    VpcNotFound(String),
    #[error("{0}")]
    SubnetNotFound(String),
    #[error("{0}")]
    GroupNotFound(String),
    #[error("{0}")]
    InternetGatewayNotFound(String),
    #[error("{0}")]
    RouteTableNotFound(String),
    #[error("{0}")]
    AssociationNotFound(String),
    #[error("{0}")]
    SubnetConflict(String),
    #[error("{0}")]
    SubnetRange(String),
    #[error("{0}")]
    VpcRange(String),
    #[error("{0}")]
    GroupDuplicate(String),
    #[error("{0}")]
    PermissionDuplicate(String),
    #[error("{0}")]
    PermissionNotFound(String),
    #[error("{0}")]
    DependencyViolation(String),
    #[error("{0}")]
    CannotDelete(String),
    #[error("{0}")]
    AlreadyAssociated(String),
    #[error("{0}")]
    GatewayNotAttached(String),
    #[error("{0}")]
    RouteAlreadyExists(String),
    #[error("{0}")]
    RouteNotFound(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    InvalidParameterCombination(String),
    #[error("{0}")]
    MissingParameter(String),
    #[error("{0}")]
    InvalidId(String),
    #[error("{0}")]
    LaunchTemplateIdNotFound(String),
    #[error("{0}")]
    LaunchTemplateNameNotFound(String),
    #[error("{0}")]
    LaunchTemplateVersionNotFound(String),
    #[error("{0}")]
    LaunchTemplateNameExists(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Ec2Error {
    /// EC2's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Ec2Error::VpcNotFound(_) => "InvalidVpcID.NotFound",
            Ec2Error::SubnetNotFound(_) => "InvalidSubnetID.NotFound",
            Ec2Error::GroupNotFound(_) => "InvalidGroup.NotFound",
            Ec2Error::InternetGatewayNotFound(_) => "InvalidInternetGatewayID.NotFound",
            Ec2Error::RouteTableNotFound(_) => "InvalidRouteTableID.NotFound",
            Ec2Error::AssociationNotFound(_) => "InvalidAssociationID.NotFound",
            Ec2Error::SubnetConflict(_) => "InvalidSubnet.Conflict",
            Ec2Error::SubnetRange(_) => "InvalidSubnet.Range",
            Ec2Error::VpcRange(_) => "InvalidVpc.Range",
            Ec2Error::GroupDuplicate(_) => "InvalidGroup.Duplicate",
            Ec2Error::PermissionDuplicate(_) => "InvalidPermission.Duplicate",
            Ec2Error::PermissionNotFound(_) => "InvalidPermission.NotFound",
            Ec2Error::DependencyViolation(_) => "DependencyViolation",
            Ec2Error::CannotDelete(_) => "CannotDelete",
            Ec2Error::AlreadyAssociated(_) => "Resource.AlreadyAssociated",
            Ec2Error::GatewayNotAttached(_) => "Gateway.NotAttached",
            Ec2Error::RouteAlreadyExists(_) => "RouteAlreadyExists",
            Ec2Error::RouteNotFound(_) => "InvalidRoute.NotFound",
            Ec2Error::InvalidParameterValue(_) => "InvalidParameterValue",
            Ec2Error::InvalidParameterCombination(_) => "InvalidParameterCombination",
            Ec2Error::MissingParameter(_) => "MissingParameter",
            Ec2Error::InvalidId(_) => "InvalidID",
            Ec2Error::LaunchTemplateIdNotFound(_) => "InvalidLaunchTemplateId.NotFound",
            Ec2Error::LaunchTemplateNameNotFound(_) => {
                "InvalidLaunchTemplateName.NotFoundException"
            }
            Ec2Error::LaunchTemplateVersionNotFound(_) => "InvalidLaunchTemplateId.VersionNotFound",
            Ec2Error::LaunchTemplateNameExists(_) => {
                "InvalidLaunchTemplateName.AlreadyExistsException"
            }
            Ec2Error::Store(_) => "InternalError",
        }
    }

    /// Whether the fault is the server's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Ec2Error::Store(_))
    }
}

pub(crate) fn vpc_not_found(id: &str) -> Ec2Error {
    Ec2Error::VpcNotFound(format!("The vpc ID '{id}' does not exist"))
}

pub(crate) fn subnet_not_found(id: &str) -> Ec2Error {
    Ec2Error::SubnetNotFound(format!("The subnet ID '{id}' does not exist"))
}

pub(crate) fn group_not_found(id: &str) -> Ec2Error {
    Ec2Error::GroupNotFound(format!("The security group '{id}' does not exist"))
}

pub(crate) fn igw_not_found(id: &str) -> Ec2Error {
    Ec2Error::InternetGatewayNotFound(format!("The internetGateway ID '{id}' does not exist"))
}

pub(crate) fn route_table_not_found(id: &str) -> Ec2Error {
    Ec2Error::RouteTableNotFound(format!("The routeTable ID '{id}' does not exist"))
}

pub(crate) fn dependency(kind: &str, id: &str) -> Ec2Error {
    Ec2Error::DependencyViolation(format!(
        "The {kind} '{id}' has dependencies and cannot be deleted."
    ))
}

pub(crate) fn invalid_value(value: &str, parameter: &str, why: &str) -> Ec2Error {
    Ec2Error::InvalidParameterValue(format!(
        "Value ({value}) for parameter {parameter} is invalid. {why}"
    ))
}

pub(crate) fn missing(parameter: &str) -> Ec2Error {
    Ec2Error::MissingParameter(format!(
        "The request must contain the parameter {parameter}"
    ))
}
