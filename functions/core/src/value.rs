//! Typed values of clean columns, independent of any database driver.

use chrono::NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int4,
    Int8,
    Float8,
    Date,
    Bool,
}

/// A table-specific clean column (the columns every table shares are added by the loader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
}

pub const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column { name, ty }
}

/// A Rust type a clean row's field has: the [`ColumnType`] of the [`Value`] it becomes (what
/// `clean_row!` checks a field's declared column type against).
pub trait ColumnValue: Into<Value> {
    const TYPE: ColumnType;
}

macro_rules! column_values {
    ($($ty:ty => $column:ident),* $(,)?) => {
        $(impl ColumnValue for $ty {
            const TYPE: ColumnType = ColumnType::$column;
        })*
    };
}

column_values! {
    String => Text,
    Option<String> => Text,
    Option<&'static str> => Text,
    Option<i32> => Int4,
    i64 => Int8,
    Option<i64> => Int8,
    Option<f64> => Float8,
    Option<NaiveDate> => Date,
    Option<bool> => Bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(Option<String>),
    Int4(Option<i32>),
    Int8(Option<i64>),
    Float8(Option<f64>),
    Date(Option<NaiveDate>),
    Bool(Option<bool>),
}

impl Value {
    pub fn column_type(&self) -> ColumnType {
        match self {
            Value::Text(_) => ColumnType::Text,
            Value::Int4(_) => ColumnType::Int4,
            Value::Int8(_) => ColumnType::Int8,
            Value::Float8(_) => ColumnType::Float8,
            Value::Date(_) => ColumnType::Date,
            Value::Bool(_) => ColumnType::Bool,
        }
    }

    pub fn is_null(&self) -> bool {
        match self {
            Value::Text(v) => v.is_none(),
            Value::Int4(v) => v.is_none(),
            Value::Int8(v) => v.is_none(),
            Value::Float8(v) => v.is_none(),
            Value::Date(v) => v.is_none(),
            Value::Bool(v) => v.is_none(),
        }
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<Option<i32>> for Value {
    fn from(v: Option<i32>) -> Self {
        Value::Int4(v)
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int8(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int8(Some(v))
    }
}
impl From<Option<f64>> for Value {
    fn from(v: Option<f64>) -> Self {
        Value::Float8(v)
    }
}
impl From<Option<NaiveDate>> for Value {
    fn from(v: Option<NaiveDate>) -> Self {
        Value::Date(v)
    }
}
impl From<Option<bool>> for Value {
    fn from(v: Option<bool>) -> Self {
        Value::Bool(v)
    }
}
