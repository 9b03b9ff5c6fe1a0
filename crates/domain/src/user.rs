//! The shop's staff and how they are grouped.

use crate::Timestamp;
use crate::ids::{BrandId, TeamId, UserId};
use crate::macros::string_enum;

string_enum! {
    pub enum Role {
        Admin => "admin",
        Supervisor => "supervisor",
        Agent => "agent",
        #[serde(rename = "readonly")]
        ReadOnly => "readonly",
    }
}

impl Role {
    /// Whether this role may change anything at all.
    pub fn can_write(self) -> bool {
        self != Role::ReadOnly
    }

    /// Only admins may write history with its original times (imports from other help desks).
    pub fn can_import(self) -> bool {
        self == Role::Admin
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    /// The interface language the user chose, a BCP 47 tag.
    pub language: Option<String>,
    /// The IANA time zone dates are shown in; `None` shows UTC.
    pub time_zone: Option<String>,
    /// The digits numbers and dates are written with; `None` uses the language's usual ones.
    pub digits: Option<Digits>,
    pub created_at: Timestamp,
}

string_enum! {
    /// Which digits a user reads: Latin (0-9) or their language's own (Persian ۰-۹,
    /// Devanagari ०-९).
    pub enum Digits {
        #[serde(rename = "latn")]
        Latin => "latn",
        Native => "native",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    /// Its business hours; none: always open.
    pub business_hours_id: Option<crate::hours::BusinessHoursId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    pub id: BrandId,
    pub name: String,
    /// Its business hours; none: always open.
    pub business_hours_id: Option<crate::hours::BusinessHoursId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_users_cannot_write_and_only_admins_import() {
        assert!(!Role::ReadOnly.can_write());
        assert!(Role::Agent.can_write());
        assert!(Role::Admin.can_import());
        assert!(!Role::Supervisor.can_import());
        assert_eq!("readonly".parse::<Role>(), Ok(Role::ReadOnly));
    }
}
