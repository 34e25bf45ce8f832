//! [`clean_row!`]: a clean row's fields, columns and values written as one list.

/// Declares a clean row once: the struct, and its [`super::CleanRow`] impl whose `COLUMNS` and
/// `into_values` follow the fields in order, each column named after its field. Every field
/// names its SQL column type (`field: Type => ColumnType`), checked at compile time against the
/// [`crate::value::Value`] the field's type becomes ([`crate::value::ColumnValue`]).
///
/// ```ignore
/// clean_row! {
///     #[derive(Debug, Clone, PartialEq)]
///     pub struct LifestyleRow {
///         pub feature: String => Text,
///         /// The value as a number when it is one.
///         pub value_num: Option<f64> => Float8,
///     }
/// }
/// ```
macro_rules! clean_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field_vis:vis $field:ident: $ty:ty => $column:ident
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                $(#[$field_meta])*
                $field_vis $field: $ty,
            )*
        }

        impl $crate::clean::CleanRow for $name {
            const COLUMNS: &'static [$crate::value::Column] = &[
                $($crate::value::col(stringify!($field), $crate::value::ColumnType::$column),)*
            ];

            fn into_values(self) -> Vec<$crate::value::Value> {
                vec![$(<$ty as Into<$crate::value::Value>>::into(self.$field),)*]
            }
        }

        $(
            const _: () = assert!(
                <$ty as $crate::value::ColumnValue>::TYPE as u8
                    == $crate::value::ColumnType::$column as u8,
                concat!(
                    stringify!($name), ".", stringify!($field),
                    " does not become a ", stringify!($column), " value"
                ),
            );
        )*
    };
}
