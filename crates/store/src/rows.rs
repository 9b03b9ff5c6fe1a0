//! Reading typed values out of rows.

use std::str::FromStr;

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{StoreError, from_micros};

pub(crate) fn col<'r, T>(row: &'r AnyRow, column: &str) -> crate::Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(StoreError::from)
}

pub(crate) fn time(row: &AnyRow, column: &str) -> crate::Result<seva_domain::Timestamp> {
    from_micros(col(row, column)?)
}

pub(crate) fn opt_time(
    row: &AnyRow,
    column: &str,
) -> crate::Result<Option<seva_domain::Timestamp>> {
    col::<Option<i64>>(row, column)?
        .map(from_micros)
        .transpose()
}

/// Parses a stored enum spelling; an unknown one means the row was written by something else.
pub(crate) fn parse<T: FromStr>(row: &AnyRow, column: &str) -> crate::Result<T> {
    let text: String = col(row, column)?;
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} = {text:?}")))
}

/// `$first, $first+1, ...` for an `IN (...)` list of `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value bound to a numbered placeholder of a query built at run time.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

pub(crate) fn bind_all(
    mut query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
        };
    }
    query
}
