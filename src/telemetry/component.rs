//! The HyperFleet components, which name the service and the log lines' `component`.

/// A HyperFleet component, which names the service and the log lines' `component`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Component {
    /// `hyperfleet-api`
    Api,
    /// `hyperfleet-sentinel`
    Sentinel,
    /// `hyperfleet-adapter-validation`
    ValidationAdapter,
    /// `hyperfleet-adapter-provisioning`
    ProvisioningAdapter,
    /// Any other service: its service name and its log `component`.
    Custom {
        /// The default service name.
        service_name: String,
        /// The `component` of its log lines.
        component: String,
    },
}

impl Component {
    /// A custom component; the log `component` is the name without a `hyperfleet-` prefix.
    pub fn custom(service_name: impl Into<String>) -> Self {
        let service_name = service_name.into();
        let component = service_name
            .strip_prefix("hyperfleet-")
            .unwrap_or(&service_name)
            .to_owned();
        Self::Custom {
            service_name,
            component,
        }
    }

    /// The service name from the standard's table.
    pub fn service_name(&self) -> &str {
        match self {
            Self::Api => "hyperfleet-api",
            Self::Sentinel => "hyperfleet-sentinel",
            Self::ValidationAdapter => "hyperfleet-adapter-validation",
            Self::ProvisioningAdapter => "hyperfleet-adapter-provisioning",
            Self::Custom { service_name, .. } => service_name,
        }
    }

    /// The log lines' `component` (`api`, `sentinel`, `adapter-validation`, …).
    pub fn log_component(&self) -> &str {
        match self {
            Self::Api => "api",
            Self::Sentinel => "sentinel",
            Self::ValidationAdapter => "adapter-validation",
            Self::ProvisioningAdapter => "adapter-provisioning",
            Self::Custom { component, .. } => component,
        }
    }
}
