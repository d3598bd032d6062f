//! The Kubernetes API as data and pure functions: which resources exist and how they are
//! served (registry), how they print (tables), how they are selected (selectors, fields), and
//! how they are described (OpenAPI), and how their protobuf bodies read as JSON.

pub mod apply;
pub mod defaults;
pub mod fields;
pub mod openapi;
pub mod pairs;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod registry;
pub mod selector;
pub mod shared;
pub mod strategic;
pub mod table;
pub mod validation;

pub use registry::{RESOURCES, Resource, Subresource};
