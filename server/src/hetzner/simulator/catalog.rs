//! What the simulated cloud offers — server types, locations with their datacenter, images —
//! and the complete JSON objects Hetzner's API returns for them (every field its reference
//! marks as always present), looked up by name or by id as the API accepts.

use serde_json::{Value, json};

/// A server type the simulator knows (a subset of Hetzner's, with their real ids).
pub struct ServerType {
    /// Hetzner's id.
    pub id: i64,
    /// e.g. `cx22`.
    pub name: &'static str,
    cores: u32,
    memory_gb: f64,
    /// Disk size in GB.
    pub disk_gb: u32,
    cpu_type: &'static str,
    category: &'static str,
    monthly_net_eur: &'static str,
    hourly_net_eur: &'static str,
}

#[allow(clippy::too_many_arguments)] // one row of the table below
const fn st(
    id: i64,
    name: &'static str,
    cores: u32,
    memory_gb: f64,
    disk_gb: u32,
    dedicated: bool,
    monthly_net_eur: &'static str,
    hourly_net_eur: &'static str,
) -> ServerType {
    ServerType {
        id,
        name,
        cores,
        memory_gb,
        disk_gb,
        cpu_type: if dedicated { "dedicated" } else { "shared" },
        category: if dedicated {
            "dedicated_cpu"
        } else {
            "cost_optimized"
        },
        monthly_net_eur,
        hourly_net_eur,
    }
}

/// The server types.
pub const SERVER_TYPES: &[ServerType] = &[
    st(104, "cx22", 2, 4.0, 40, false, "3.7900", "0.0060"),
    st(105, "cx32", 4, 8.0, 80, false, "6.8000", "0.0109"),
    st(106, "cx42", 8, 16.0, 160, false, "16.4000", "0.0263"),
    st(107, "cx52", 16, 32.0, 320, false, "32.4000", "0.0519"),
    st(22, "cpx11", 2, 2.0, 40, false, "4.3500", "0.0070"),
    st(23, "cpx21", 3, 4.0, 80, false, "7.5500", "0.0121"),
    st(24, "cpx31", 4, 8.0, 160, false, "13.6000", "0.0218"),
    st(25, "cpx41", 8, 16.0, 240, false, "25.2000", "0.0403"),
    st(26, "cpx51", 16, 32.0, 360, false, "54.9000", "0.0880"),
    st(96, "ccx13", 2, 8.0, 80, true, "12.4900", "0.0200"),
    st(97, "ccx23", 4, 16.0, 160, true, "24.4900", "0.0392"),
    st(98, "ccx33", 8, 32.0, 240, true, "48.4900", "0.0777"),
];

/// A location and its one datacenter.
pub struct Location {
    /// Hetzner's id.
    pub id: i64,
    /// e.g. `fsn1`.
    pub name: &'static str,
    description: &'static str,
    country: &'static str,
    city: &'static str,
    latitude: f64,
    longitude: f64,
    network_zone: &'static str,
    datacenter_id: i64,
    datacenter: &'static str,
    /// Its prices against Europe's, in percent: see [`price`].
    price_percent: u32,
}

/// The six locations of the spec.
pub const LOCATIONS: &[Location] = &[
    Location {
        id: 1,
        name: "fsn1",
        description: "Falkenstein DC Park 1",
        country: "DE",
        city: "Falkenstein",
        latitude: 50.47612,
        longitude: 12.370071,
        network_zone: "eu-central",
        datacenter_id: 4,
        datacenter: "fsn1-dc14",
        price_percent: 100,
    },
    Location {
        id: 2,
        name: "nbg1",
        description: "Nuremberg DC Park 1",
        country: "DE",
        city: "Nuremberg",
        latitude: 49.452102,
        longitude: 11.076665,
        network_zone: "eu-central",
        datacenter_id: 2,
        datacenter: "nbg1-dc3",
        price_percent: 100,
    },
    Location {
        id: 3,
        name: "hel1",
        description: "Helsinki DC Park 1",
        country: "FI",
        city: "Helsinki",
        latitude: 60.169855,
        longitude: 24.938379,
        network_zone: "eu-central",
        datacenter_id: 3,
        datacenter: "hel1-dc2",
        price_percent: 100,
    },
    Location {
        id: 4,
        name: "ash",
        description: "Ashburn, VA",
        country: "US",
        city: "Ashburn, VA",
        latitude: 39.045821,
        longitude: -77.487073,
        network_zone: "us-east",
        datacenter_id: 5,
        datacenter: "ash-dc1",
        price_percent: 120,
    },
    Location {
        id: 5,
        name: "hil",
        description: "Hillsboro, OR",
        country: "US",
        city: "Hillsboro, OR",
        latitude: 45.54222,
        longitude: -122.951924,
        network_zone: "us-west",
        datacenter_id: 6,
        datacenter: "hil-dc1",
        price_percent: 120,
    },
    Location {
        id: 6,
        name: "sin",
        description: "Singapore",
        country: "SG",
        city: "Singapore",
        latitude: 1.283333,
        longitude: 103.833333,
        network_zone: "ap-southeast",
        datacenter_id: 7,
        datacenter: "sin-dc1",
        price_percent: 160,
    },
];

/// A system image.
pub struct Image {
    /// Hetzner's id.
    pub id: i64,
    /// e.g. `ubuntu-24.04`.
    pub name: &'static str,
    description: &'static str,
    os_flavor: &'static str,
    os_version: &'static str,
    created: &'static str,
}

/// The system images.
pub const IMAGES: &[Image] = &[
    Image {
        id: 161_547_269,
        name: "ubuntu-24.04",
        description: "Ubuntu 24.04",
        os_flavor: "ubuntu",
        os_version: "24.04",
        created: "2024-04-25T13:18:32+00:00",
    },
    Image {
        id: 67_794_396,
        name: "ubuntu-22.04",
        description: "Ubuntu 22.04",
        os_flavor: "ubuntu",
        os_version: "22.04",
        created: "2022-04-21T13:32:38+00:00",
    },
    Image {
        id: 114_690_387,
        name: "debian-12",
        description: "Debian 12",
        os_flavor: "debian",
        os_version: "12",
        created: "2023-06-13T06:00:02+00:00",
    },
];

/// A reference to a catalog entry as a request gives it: its name or its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// By id.
    Id(i64),
    /// By name.
    Name(String),
}

impl Ref {
    /// Reads a JSON string or integer; `None` for anything else.
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s.parse().map_or_else(|_| Self::Name(s.clone()), Self::Id)),
            Value::Number(n) => n.as_i64().map(Self::Id),
            _ => None,
        }
    }

    fn matches(&self, id: i64, name: &str) -> bool {
        match self {
            Self::Id(x) => *x == id,
            Self::Name(x) => x == name,
        }
    }
}

/// The server type named or numbered `r`.
pub fn server_type(r: &Ref) -> Option<&'static ServerType> {
    SERVER_TYPES.iter().find(|t| r.matches(t.id, t.name))
}

/// The location named or numbered `r`.
pub fn location(r: &Ref) -> Option<&'static Location> {
    LOCATIONS.iter().find(|l| r.matches(l.id, l.name))
}

/// The image named or numbered `r`.
pub fn image(r: &Ref) -> Option<&'static Image> {
    IMAGES.iter().find(|i| r.matches(i.id, i.name))
}

/// Traffic included with every type: 20 TB.
pub const INCLUDED_TRAFFIC: u64 = 21_990_232_555_520;

/// The primary IPv4 address in Europe: €0.50 a month net (Hetzner's published figure), or
/// €0.0008 an hour.
const IPV4_MONTHLY_NET_EUR: &str = "0.5000";
const IPV4_HOURLY_NET_EUR: &str = "0.0008";

/// Hetzner's VAT rate for the simulated account (Germany).
const VAT_PERCENT: f64 = 19.0;

fn gross(net: &str) -> String {
    net.parse::<f64>().map_or_else(
        |_| net.to_owned(),
        |n| format!("{:.4}", n * (1.0 + VAT_PERCENT / 100.0)),
    )
}

/// The European net price `eur` (`"3.7900"`) at location `l`, in Hetzner's four-decimal form.
///
/// The European figures are Hetzner's published ones. Hetzner charges more in the US and in
/// Singapore; the simulator models that as a factor per location (`price_percent`: 120 in the
/// US, 160 in Singapore), an assumption of the simulator, not a Hetzner figure, so that margins
/// differ by region the way they do in production.
fn price(eur: &str, l: &Location) -> String {
    eur.parse::<f64>().map_or_else(
        |_| eur.to_owned(),
        |n| format!("{:.4}", n * f64::from(l.price_percent) / 100.0),
    )
}

/// One location's price entry in Hetzner's shape (`price_hourly` and `price_monthly`, net and
/// gross).
fn location_price(l: &Location, hourly_eur: &str, monthly_eur: &str) -> Value {
    let (hourly, monthly) = (price(hourly_eur, l), price(monthly_eur, l));
    json!({
        "location": l.name,
        "price_hourly": {"net": hourly, "gross": gross(&hourly)},
        "price_monthly": {"net": monthly, "gross": gross(&monthly)},
    })
}

/// `GET /pricing`'s body: the currency and VAT rate, then the price of every resource per
/// location. Nest reads `server_types` and `primary_ips`; the other keys are there because
/// Hetzner's answer always has them.
pub fn pricing_json() -> Value {
    let per_gb = |net: &str| json!({"net": net, "gross": gross(net)});
    let server_types: Vec<Value> = SERVER_TYPES
        .iter()
        .map(|t| json!({"id": t.id, "name": t.name, "prices": t.prices()}))
        .collect();
    let primary_ips: Vec<Value> = ["ipv4", "ipv6"]
        .iter()
        .map(|kind| {
            let prices: Vec<Value> = LOCATIONS
                .iter()
                .map(|l| match *kind {
                    "ipv4" => location_price(l, IPV4_HOURLY_NET_EUR, IPV4_MONTHLY_NET_EUR),
                    _ => location_price(l, "0.0000", "0.0000"),
                })
                .collect();
            json!({"type": kind, "prices": prices})
        })
        .collect();
    json!({
        "pricing": {
            "currency": "EUR",
            "vat_rate": format!("{VAT_PERCENT:.2}"),
            "image": {"price_per_gb_month": per_gb("0.0119")},
            "floating_ip": {"price_monthly": per_gb("3.5700")},
            "floating_ips": [],
            "primary_ips": primary_ips,
            "traffic": {"price_per_tb": per_gb("1.0000")},
            "server_backup": {"percentage": "20.00"},
            "volume": {"price_per_gb_month": per_gb("0.0440")},
            "server_types": server_types,
            "load_balancer_types": [],
        }
    })
}

impl ServerType {
    /// Its price in every location, as Hetzner lists it on the type and in `/pricing`.
    fn prices(&self) -> Vec<Value> {
        LOCATIONS
            .iter()
            .map(|l| {
                let mut entry = location_price(l, self.hourly_net_eur, self.monthly_net_eur);
                entry["included_traffic"] = json!(INCLUDED_TRAFFIC);
                entry["price_per_tb_traffic"] = json!({"net": "1.0000", "gross": "1.1900"});
                entry
            })
            .collect()
    }

    /// Its full JSON object.
    pub fn json(&self) -> Value {
        let prices = self.prices();
        let locations: Vec<Value> = LOCATIONS
            .iter()
            .map(|l| json!({"id": l.id, "name": l.name, "deprecation": null, "available": true, "recommended": true}))
            .collect();
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.name.to_uppercase(),
            "category": self.category,
            "cores": self.cores,
            "memory": self.memory_gb,
            "disk": self.disk_gb,
            "storage_type": "local",
            "cpu_type": self.cpu_type,
            "architecture": "x86",
            "deprecated": false,
            "deprecation": null,
            "included_traffic": INCLUDED_TRAFFIC,
            "prices": prices,
            "locations": locations,
        })
    }
}

impl Location {
    /// Its full JSON object.
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "country": self.country,
            "city": self.city,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "network_zone": self.network_zone,
        })
    }

    /// Its datacenter's full JSON object.
    pub fn datacenter_json(&self) -> Value {
        let ids: Vec<i64> = SERVER_TYPES.iter().map(|t| t.id).collect();
        json!({
            "id": self.datacenter_id,
            "name": self.datacenter,
            "description": format!("{} virtual DC", self.description),
            "location": self.json(),
            "server_types": {"supported": ids, "available": ids, "available_for_migration": ids},
        })
    }
}

impl Image {
    /// Its full JSON object.
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "system",
            "status": "available",
            "name": self.name,
            "description": self.description,
            "image_size": null,
            "disk_size": 5,
            "created": self.created,
            "created_from": null,
            "bound_to": null,
            "os_flavor": self.os_flavor,
            "os_version": self.os_version,
            "rapid_deploy": true,
            "protection": {"delete": false},
            "deprecated": null,
            "deleted": null,
            "labels": {},
            "architecture": "x86",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_entries_are_found_by_name_and_by_id() {
        assert_eq!(
            server_type(&Ref::Name("cx22".into())).map(|t| t.id),
            Some(104)
        );
        assert_eq!(server_type(&Ref::Id(105)).map(|t| t.name), Some("cx32"));
        assert_eq!(
            Ref::from_json(&json!("105"))
                .as_ref()
                .and_then(server_type)
                .map(|t| t.name),
            Some("cx32")
        );
        assert_eq!(location(&Ref::Id(2)).map(|l| l.name), Some("nbg1"));
        assert!(image(&Ref::Name("ubuntu-24.04".into())).is_some());
        assert!(server_type(&Ref::Name("cx9000".into())).is_none());
        assert_eq!(Ref::from_json(&json!(true)), None);
    }
}
