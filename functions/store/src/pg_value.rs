//! Binary COPY encoding of the core's driver-independent values.

use bytes::BytesMut;
use medrec_core::{ColumnType, Value};
use postgres_types::{to_sql_checked, IsNull, ToSql, Type};

/// Borrowed [`Value`] that PostgreSQL's binary protocol can encode.
#[derive(Debug)]
pub struct PgValue<'a>(pub &'a Value);

impl ToSql for PgValue<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Text(Some(v)) => v.to_sql(ty, out),
            Value::Int4(Some(v)) => v.to_sql(ty, out),
            Value::Int8(Some(v)) => v.to_sql(ty, out),
            Value::Float8(Some(v)) => v.to_sql(ty, out),
            Value::Date(Some(v)) => v.to_sql(ty, out),
            Value::Bool(Some(v)) => v.to_sql(ty, out),
            _ => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        // The column types come from the same `Column` list as the values (checked in tests).
        true
    }

    to_sql_checked!();
}

pub fn pg_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Text => Type::TEXT,
        ColumnType::Int4 => Type::INT4,
        ColumnType::Int8 => Type::INT8,
        ColumnType::Float8 => Type::FLOAT8,
        ColumnType::Date => Type::DATE,
        ColumnType::Bool => Type::BOOL,
    }
}

pub fn sql_type_name(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "text",
        ColumnType::Int4 => "integer",
        ColumnType::Int8 => "bigint",
        ColumnType::Float8 => "double precision",
        ColumnType::Date => "date",
        ColumnType::Bool => "boolean",
    }
}
